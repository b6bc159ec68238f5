// Encodes the container's own MessagePack: the frame envelope, the index payload and the
// trailer. The envelope is written byte by byte (not through msgpackr) because its layout is
// part of the format: the `c` entry must come last and be a uint 32 so the CRC's position is
// known, and the trailer must have a constant length. Header maps come from msgpackr
// (plain.ts) and are copied in unchanged.
import { crc32 } from './crc32.js';
import { CRC_ENTRY_BYTES, MAGIC, TRAILER_BYTES, TRAILER_CRC_AT, TRAILER_PREFIX } from './format.js';

const utf8 = new TextEncoder();
const encoded = new Map<string, Uint8Array>();

/** Grows as needed; the envelope's prefix is small, so simplicity beats avoiding copies. */
class Bytes {
  buf = new Uint8Array(64);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }

  raw(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** Big-endian unsigned of `size` bytes; values up to 2^53 (uint 64 through two halves). */
  be(value: number, size: 1 | 2 | 4 | 8): void {
    this.room(size);
    const b = this.buf;
    let at = this.length;
    if (size === 8) {
      const hi = Math.floor(value / 0x1_0000_0000);
      b[at++] = hi >>> 24;
      b[at++] = hi >>> 16;
      b[at++] = hi >>> 8;
      b[at++] = hi;
      value >>>= 0;
      size = 4;
    }
    for (let shift = (size - 1) * 8; shift >= 0; shift -= 8) b[at++] = Math.floor(value / 2 ** shift) & 0xff;
    this.length = at;
  }

  /** A type byte followed by a big-endian length or value. */
  tagged(tag: number, value: number, size: 1 | 2 | 4 | 8): void {
    this.u8(tag);
    this.be(value, size);
  }

  /** A non-negative integer in its smallest MessagePack form. */
  uint(n: number): void {
    if (n < 0x80) this.u8(n);
    else if (n <= 0xff) this.tagged(0xcc, n, 1);
    else if (n <= 0xffff) this.tagged(0xcd, n, 2);
    else if (n <= 0xffff_ffff) this.tagged(0xce, n, 4);
    else this.tagged(0xcf, n, 8);
  }

  str(s: string): void {
    // Envelope strings are a handful of keys and frame kinds: encoded once.
    let bytes = encoded.get(s);
    if (!bytes) {
      bytes = utf8.encode(s);
      if (encoded.size < 256) encoded.set(s, bytes);
    }
    const n = bytes.length;
    if (n < 32) this.u8(0xa0 | n);
    else if (n <= 0xff) this.tagged(0xd9, n, 1);
    else if (n <= 0xffff) this.tagged(0xda, n, 2);
    else this.tagged(0xdb, n, 4);
    this.raw(bytes);
  }

  binHeader(n: number): void {
    if (n <= 0xff) this.tagged(0xc4, n, 1);
    else if (n <= 0xffff) this.tagged(0xc5, n, 2);
    else this.tagged(0xc6, n, 4);
  }

  arrayHeader(n: number): void {
    if (n < 16) this.u8(0x90 | n);
    else if (n <= 0xffff) this.tagged(0xdc, n, 2);
    else this.tagged(0xdd, n, 4);
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * Appends `payload` and the `c` entry to the envelope prefix, in one buffer so that the writer
 * emits the frame with one write: a killed writer leaves whole frames or a torn last one.
 */
function finish(prefix: Bytes, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(prefix.length + 5 + payload.length + CRC_ENTRY_BYTES);
  return frame.subarray(0, appendPayload(prefix, payload, frame, 0));
}

/**
 * Writes the envelope prefix, the payload's bin header, the payload and the `c` entry (the
 * CRC of everything before it) into `out` at `at`; returns the frame's length.
 */
function appendPayload(prefix: Bytes, payload: Uint8Array, out: Uint8Array, at: number): number {
  prefix.binHeader(payload.length);
  const head = prefix.view();
  out.set(head, at);
  out.set(payload, at + head.length);
  const end = at + head.length + payload.length;
  const crc = crc32(out, 0, at, end);
  out[end] = 0xa1; // fixstr "c"
  out[end + 1] = 0x63;
  out[end + 2] = 0xce; // uint 32
  out[end + 3] = crc >>> 24;
  out[end + 4] = (crc >>> 16) & 0xff;
  out[end + 5] = (crc >>> 8) & 0xff;
  out[end + 6] = crc & 0xff;
  return end + CRC_ENTRY_BYTES - at;
}

/** A frame: { k: kind, i: number, h: header, d: payload, c: CRC-32 }. `header` is encoded MessagePack. */
export function encodeFrame(kind: string, number: number, header: Uint8Array, payload: Uint8Array): Uint8Array {
  const b = new Bytes();
  framePrefix(b, kind, number, header);
  return finish(b, payload);
}

/** A frame's envelope up to the payload's bin header (exclusive), appended to `b`. */
function framePrefix(b: Bytes, kind: string, number: number, header: Uint8Array): void {
  b.u8(0x85);
  b.str('k');
  b.str(kind);
  b.str('i');
  b.uint(number);
  b.str('h');
  b.raw(header);
  b.str('d');
}

const prefixScratch = new Bytes();

/**
 * The same frame as encodeFrame, written into `out` at `at` (which must have room for
 * frameSize more bytes) instead of a buffer of its own; returns the frame's length.
 */
export function encodeFrameInto(out: Uint8Array, at: number, kind: string, number: number, header: Uint8Array, payload: Uint8Array): number {
  const b = prefixScratch;
  b.length = 0;
  framePrefix(b, kind, number, header);
  return appendPayload(b, payload, out, at);
}

/** An upper bound of encodeFrameInto's length for these parts. */
export function frameSize(kind: string, header: Uint8Array, payload: Uint8Array): number {
  // fixmap, four one-letter keys, kind (str 8 at most), uint 64, bin 32 header, the c entry.
  return 1 + 4 * 2 + 2 + 3 * kind.length + 9 + header.length + 5 + payload.length + CRC_ENTRY_BYTES;
}

/**
 * The header frame, frame 0: { magic, version, tool, k: "header", i: 0, h, d: <empty>, c }.
 * magic, version and tool come first in every format version, so any later Rewind can say
 * which version and which Rewind wrote a file.
 */
export function encodeHeaderFrame(version: number, tool: string, header: Uint8Array): Uint8Array {
  const b = new Bytes();
  b.u8(0x88);
  b.str('magic');
  b.str(MAGIC);
  b.str('version');
  b.uint(version);
  b.str('tool');
  b.str(tool);
  b.str('k');
  b.str('header');
  b.str('i');
  b.uint(0);
  b.str('h');
  b.raw(header);
  b.str('d');
  return finish(b, new Uint8Array(0));
}

/** One index entry: [kind, frame number, byte offset, header]. */
export interface IndexEntry {
  readonly kind: string;
  readonly offset: number;
  /** The frame's encoded header map, byte for byte as in the frame. */
  readonly header: Uint8Array;
}

/** The index frame's payload: an array of [kind, number, offset, header], entry i for frame i. */
export function encodeIndexPayload(entries: readonly IndexEntry[]): Uint8Array {
  const b = new Bytes();
  b.arrayHeader(entries.length);
  entries.forEach((e, i) => {
    b.u8(0x94);
    b.str(e.kind);
    b.uint(i);
    b.uint(e.offset);
    b.raw(e.header);
  });
  return b.view();
}

/** The 33-byte trailer pointing at the index frame. */
export function encodeTrailer(indexOffset: number): Uint8Array {
  const t = new Uint8Array(TRAILER_BYTES);
  t.set(TRAILER_PREFIX);
  const dv = new DataView(t.buffer);
  dv.setUint32(TRAILER_PREFIX.length, Math.floor(indexOffset / 0x1_0000_0000));
  dv.setUint32(TRAILER_PREFIX.length + 4, indexOffset >>> 0);
  t[TRAILER_CRC_AT] = 0xa1;
  t[TRAILER_CRC_AT + 1] = 0x63;
  t[TRAILER_CRC_AT + 2] = 0xce;
  dv.setUint32(TRAILER_CRC_AT + 3, crc32(t, 0, 0, TRAILER_CRC_AT));
  return t;
}
