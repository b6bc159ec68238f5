// Decodes the container's MessagePack from a ByteSource without trusting it: every length is
// checked against the bytes that exist before anything is read or allocated, nesting is
// bounded, and every loop consumes input, so damaged or hostile files cannot make the reader
// allocate gigabytes, recurse without end or spin.
import { crc32 } from './crc32.js';
import { CRC_ENTRY_BYTES, MAGIC, MAX_DEPTH, MAX_HEADER_BYTES } from './format.js';
import { type PlainMap, unpackPlain } from './plain.js';
import { type ByteSource, MemorySource } from './source.js';

/** The data ends before byte `needed - 1`: a torn tail when the source is a whole file. */
export class OutOfData {
  constructor(readonly needed: number) {}
}

/** The bytes are not what the format allows; `at` is the offending byte's offset. */
export class Malformed extends Error {
  override name = 'Malformed';
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

const WINDOW_BYTES = 1 << 20;

/** A cached stretch of the source, refilled on demand. */
export class Window {
  private buf: Uint8Array;
  private start = 0;
  private filled = 0;

  constructor(readonly source: ByteSource) {
    if (source instanceof MemorySource) {
      // Everything is in memory already: the window is the whole of it, never refilled.
      this.buf = source.bytes;
      this.start = source.base;
      this.filled = source.bytes.length;
    } else {
      this.buf = new Uint8Array(Math.min(WINDOW_BYTES, source.end));
    }
  }

  get end(): number {
    return this.source.end;
  }

  /** Bytes [pos, pos + n), valid until the next call; OutOfData when the source is shorter. */
  view(pos: number, n: number): Uint8Array {
    if (pos + n > this.source.end) throw new OutOfData(pos + n);
    if (pos < this.start || pos + n > this.start + this.filled) {
      // A memory source is one window; its bytes are the caller's and are never refilled.
      if (this.source instanceof MemorySource) throw new Malformed('a read before the start of the data', pos);
      // Callers bound n (headers by MAX_HEADER_BYTES), and it is within the source.
      if (n > this.buf.length) this.buf = new Uint8Array(n);
      this.start = pos;
      this.filled = this.source.read(this.buf.subarray(0, Math.min(this.buf.length, this.source.end - pos)), pos);
      if (this.filled < n) throw new OutOfData(pos + n); // the file shrank under us
    }
    return this.buf.subarray(pos - this.start, pos - this.start + n);
  }

  byte(pos: number): number {
    const i = pos - this.start;
    return i >= 0 && i < this.filled ? this.buf[i] : this.view(pos, 1)[0];
  }

  /** CRC-32 of [from, to), read a window at a time. */
  crc(from: number, to: number): number {
    let c = 0;
    for (let pos = from; pos < to; ) {
      const n = Math.min(to - pos, WINDOW_BYTES);
      c = crc32(this.view(pos, n), c);
      pos += n;
    }
    return c;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

/** Reads MessagePack items at `pos`, never past `limit`. */
export class Cursor {
  constructor(
    readonly win: Window,
    public pos: number,
    readonly limit = win.end,
  ) {}

  u8(): number {
    if (this.pos >= this.limit) throw new OutOfData(this.pos + 1);
    return this.win.byte(this.pos++);
  }

  skip(n: number): void {
    if (this.pos + n > this.limit) throw new OutOfData(this.pos + n);
    this.pos += n;
  }

  bytes(n: number): Uint8Array {
    if (this.pos + n > this.limit) throw new OutOfData(this.pos + n);
    const v = this.win.view(this.pos, n);
    this.pos += n;
    return v;
  }

  /** Big-endian unsigned; 8-byte values must be at most 2^53 - 1. */
  be(size: 1 | 2 | 4 | 8): number {
    const at = this.pos;
    const b = this.bytes(size);
    if (size === 8) {
      const hi = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
      const lo = ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0;
      if (hi > 0x1f_ffff) throw new Malformed('a 64-bit value beyond 2^53', at);
      return hi * 0x1_0000_0000 + lo;
    }
    let v = 0;
    for (let i = 0; i < size; i++) v = v * 256 + b[i];
    return v;
  }

  mapHeader(what: string): number {
    const at = this.pos;
    const b = this.u8();
    if ((b & 0xf0) === 0x80) return b & 0x0f;
    if (b === 0xde) return this.be(2);
    if (b === 0xdf) return this.be(4);
    throw new Malformed(`expected a map (${what}), found ${hex(b)}`, at);
  }

  arrayHeader(what: string): number {
    const at = this.pos;
    const b = this.u8();
    if ((b & 0xf0) === 0x90) return b & 0x0f;
    if (b === 0xdc) return this.be(2);
    if (b === 0xdd) return this.be(4);
    throw new Malformed(`expected an array (${what}), found ${hex(b)}`, at);
  }

  uint(what: string): number {
    const at = this.pos;
    const b = this.u8();
    if (b < 0x80) return b;
    if (b >= 0xcc && b <= 0xcf) return this.be((1 << (b - 0xcc)) as 1 | 2 | 4 | 8);
    throw new Malformed(`expected an unsigned integer (${what}), found ${hex(b)}`, at);
  }

  binHeader(what: string): number {
    const at = this.pos;
    const b = this.u8();
    if (b >= 0xc4 && b <= 0xc6) return this.be((1 << (b - 0xc4)) as 1 | 2 | 4);
    throw new Malformed(`expected a bin (${what}), found ${hex(b)}`, at);
  }

  /** A str of at most `maxBytes` bytes of valid UTF-8. */
  str(what: string, maxBytes: number): string {
    const at = this.pos;
    const b = this.u8();
    let n: number;
    if ((b & 0xe0) === 0xa0) n = b & 0x1f;
    else if (b >= 0xd9 && b <= 0xdb) n = this.be((1 << (b - 0xd9)) as 1 | 2 | 4);
    else throw new Malformed(`expected a string (${what}), found ${hex(b)}`, at);
    if (n > maxBytes) throw new Malformed(`${what} is ${n} bytes long, more than ${maxBytes}`, at);
    try {
      return utf8.decode(this.bytes(n));
    } catch (e) {
      if (e instanceof OutOfData) throw e;
      throw new Malformed(`${what} is not valid UTF-8`, at);
    }
  }

  /** Reads a map key and checks it is `name`. */
  key(name: string): void {
    const at = this.pos;
    const k = this.str('a map key', 16);
    if (k !== name) throw new Malformed(`expected the entry '${name}', found '${k}'`, at);
  }

  /**
   * Steps over one plain value (nil, bool, int, float, str, bin, array, map with str keys) and
   * checks it is one; with `map`, the value must be a map. Iterative, nesting bounded by
   * MAX_DEPTH; each element needs at least one byte, so a count larger than the bytes left is
   * caught before it is looped over.
   */
  skipPlain(what: string, map: boolean): void {
    const counts = [1]; // values left to read in each open container; the root holds one
    const inMap = [false];
    while (counts.length > 0) {
      const top = counts.length - 1;
      if (counts[top] === 0) {
        counts.pop();
        inMap.pop();
        continue;
      }
      const isKey = inMap[top] && counts[top] % 2 === 0;
      counts[top]--;
      const at = this.pos;
      const b = this.u8();
      if (isKey && !((b & 0xe0) === 0xa0 || (b >= 0xd9 && b <= 0xdb))) {
        throw new Malformed(`a map key in ${what} is not a string (${hex(b)})`, at);
      }
      if (top === 0 && map && !((b & 0xf0) === 0x80 || b === 0xde || b === 0xdf)) {
        throw new Malformed(`expected a map (${what}), found ${hex(b)}`, at);
      }
      let elements = -1; // set for arrays and maps
      let isMap = false;
      if (b < 0x80 || b >= 0xe0) continue; // positive and negative fixint
      if (b < 0x90) {
        elements = (b & 0x0f) * 2;
        isMap = true;
      } else if (b < 0xa0) elements = b & 0x0f;
      else if (b < 0xc0) this.skip(b & 0x1f);
      else
        switch (b) {
          case 0xc0: // nil
          case 0xc2: // false
          case 0xc3: // true
            break;
          case 0xc4: // bin 8/16/32
          case 0xc5:
          case 0xc6:
            this.skip(this.be((1 << (b - 0xc4)) as 1 | 2 | 4));
            break;
          case 0xca: // float 32
            this.skip(4);
            break;
          case 0xcb: // float 64
            this.skip(8);
            break;
          case 0xcc: // uint 8/16/32/64
          case 0xcd:
          case 0xce:
          case 0xcf:
            this.skip(1 << (b - 0xcc));
            break;
          case 0xd0: // int 8/16/32/64
          case 0xd1:
          case 0xd2:
          case 0xd3:
            this.skip(1 << (b - 0xd0));
            break;
          case 0xd9: // str 8/16/32
          case 0xda:
          case 0xdb:
            this.skip(this.be((1 << (b - 0xd9)) as 1 | 2 | 4));
            break;
          case 0xdc: // array 16/32
          case 0xdd:
            elements = this.be(b === 0xdc ? 2 : 4);
            break;
          case 0xde: // map 16/32
          case 0xdf:
            elements = this.be(b === 0xde ? 2 : 4) * 2;
            isMap = true;
            break;
          default: // 0xc1 (never used) and the extension types, which plain data has none of
            throw new Malformed(`${hex(b)} is not a plain MessagePack type (in ${what})`, at);
        }
      if (elements < 0) continue;
      if (counts.length > MAX_DEPTH) throw new Malformed(`${what} nests more than ${MAX_DEPTH} deep`, at);
      if (elements > this.limit - this.pos) throw new OutOfData(this.pos + elements);
      counts.push(elements);
      inMap.push(isMap);
    }
  }
}

/** The `magic`, `version` and `tool` entries that start the header frame in every version. */
export interface Identity {
  readonly version: number;
  readonly tool: string;
}

/**
 * Reads the first three entries of the header frame, the part of the format that no version
 * changes. Returns undefined when the file does not start with the magic.
 */
export function readIdentity(cur: Cursor): Identity | undefined {
  const b = cur.u8();
  if (b < 0x83 || b > 0x8f) return undefined;
  try {
    cur.key('magic');
    if (cur.str('the magic', 64) !== MAGIC) return undefined;
  } catch (e) {
    if (e instanceof Malformed) return undefined;
    throw e;
  }
  cur.key('version');
  const version = cur.uint('the format version');
  cur.key('tool');
  const tool = cur.str('the tool', 255);
  return { version, tool };
}

/** A frame as found in the file (format version 1). */
export interface ParsedFrame {
  readonly type: 'frame';
  readonly start: number;
  readonly end: number;
  readonly kind: string;
  readonly number: number;
  readonly header: PlainMap;
  readonly payloadStart: number;
  readonly payloadLength: number;
  /** The stored checksum. */
  readonly crc: number;
}

export interface ParsedTrailer {
  readonly type: 'trailer';
  readonly start: number;
  readonly end: number;
  readonly indexOffset: number;
  readonly crc: number;
}

/**
 * Parses the frame at `cur.pos` (version 1 layout) and leaves the cursor after it; does not
 * check the CRC (see checkCrc). Throws Malformed or OutOfData.
 */
export function parseFrame(cur: Cursor): ParsedFrame | ParsedTrailer {
  const start = cur.pos;
  const entries = cur.mapHeader('a frame');
  const first = cur.pos;
  const firstKey = cur.str('a map key', 16);
  if (firstKey === 'magic') {
    if (entries !== 8) throw new Malformed(`the header frame has ${entries} entries, not 8`, start);
    cur.pos = start;
    if (!readIdentity(cur)) throw new Malformed(`the header frame's magic is not '${MAGIC}'`, start);
    cur.key('k');
  } else if (firstKey !== 'k') {
    throw new Malformed(`expected the entry 'k', found '${firstKey}'`, first);
  }
  const kindAt = cur.pos;
  const kind = cur.str('the frame kind', 255);
  if (kind === 'trailer') {
    if (entries !== 3) throw new Malformed(`the trailer has ${entries} entries, not 3`, start);
    cur.key('index');
    const tagAt = cur.pos;
    if (cur.u8() !== 0xcf) throw new Malformed("the trailer's index offset is not a uint 64", tagAt);
    const indexOffset = cur.be(8);
    const crc = readCrcEntry(cur);
    return { type: 'trailer', start, end: cur.pos, indexOffset, crc };
  }
  if ((firstKey === 'magic') !== (kind === 'header')) {
    throw new Malformed(kind === 'header' ? 'a header frame without the magic' : `the header frame has kind '${kind}'`, kindAt);
  }
  if (firstKey === 'k' && entries !== 5) throw new Malformed(`the frame has ${entries} entries, not 5`, start);
  cur.key('i');
  const number = cur.uint('the frame number');
  cur.key('h');
  const headerStart = cur.pos;
  cur.skipPlain('the frame header', true);
  const headerLength = cur.pos - headerStart;
  if (headerLength > MAX_HEADER_BYTES) throw new Malformed(`the frame header is ${headerLength} bytes, more than ${MAX_HEADER_BYTES}`, headerStart);
  cur.key('d');
  const payloadLength = cur.binHeader('the payload');
  const payloadStart = cur.pos;
  cur.skip(payloadLength);
  const crc = readCrcEntry(cur);
  const header = unpackPlain(cur.win.view(headerStart, headerLength)) as PlainMap;
  return { type: 'frame', start, end: cur.pos, kind, number, header, payloadStart, payloadLength, crc };
}

/** The closing `c` entry: fixstr "c", then a uint 32 in its 0xce form. */
function readCrcEntry(cur: Cursor): number {
  const at = cur.pos;
  if (cur.u8() !== 0xa1 || cur.u8() !== 0x63) throw new Malformed(`expected the entry 'c' at the frame's end`, at);
  if (cur.u8() !== 0xce) throw new Malformed('the checksum is not a uint 32', at + 2);
  return cur.be(4);
}

/** Whether the stored CRC matches the frame's bytes before its `c` entry. */
export function checkCrc(win: Window, frame: { start: number; end: number; crc: number }): boolean {
  return win.crc(frame.start, frame.end - CRC_ENTRY_BYTES) === frame.crc;
}
