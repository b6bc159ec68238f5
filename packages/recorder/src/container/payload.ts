// The recorder's payloads (a run's inputs, a chunk's records, events and keyframe) are plain
// MessagePack like every other part of a trace, and written often: a packet recorded is two of
// them. msgpackr's general encoder spends most of its time per value on the checks its
// extension types need (a bin costs it several instanceof tests), which plain values never
// use. This encoder writes exactly the bytes msgpackr writes for plain values with the options
// plain.ts gives it (a test compares them), into one buffer reused from payload to payload;
// what is not plain goes to packPlainMap, whose error names it.

import { MAX_DEPTH } from './format.js';
import { NOT_FAST, packPlainMap } from './plain.js';

const INT64_MIN = -(2n ** 63n);
const UINT64_END = 2n ** 64n;

const utf8 = new TextEncoder();

class PayloadPacker {
  private buf = new Uint8Array(64 * 1024);
  private dv = new DataView(this.buf.buffer);
  private at = 0;

  /** The value's bytes (a view the next call writes over); throws NOT_FAST for what is not plain. */
  pack(value: unknown): Uint8Array {
    this.at = 0;
    this.value(value, 0);
    return this.buf.subarray(0, this.at);
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(2 * this.buf.length, this.at + n));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  private value(v: unknown, depth: number): void {
    switch (typeof v) {
      case 'number':
        // msgpackr writes integers outside int 32 and uint 32 as float 64; plain values store them as int 64.
        if (Number.isSafeInteger(v) && (v < -0x8000_0000 || v > 0xffff_ffff)) return this.int64(BigInt(v));
        return this.number(v);
      case 'string':
        return this.string(v);
      case 'boolean':
        this.room(1);
        this.buf[this.at++] = v ? 0xc3 : 0xc2;
        return;
      case 'bigint':
        if (v < INT64_MIN || v >= UINT64_END) throw NOT_FAST;
        return this.int64(v);
      case 'object':
        if (v === null) {
          this.room(1);
          this.buf[this.at++] = 0xc0;
        } else if (v instanceof Uint8Array) {
          this.bin(v);
        } else {
          if (depth >= MAX_DEPTH) throw NOT_FAST;
          if (Array.isArray(v)) {
            this.header(v.length, 0x90, 0xdc, 0xdd);
            for (let i = 0; i < v.length; i++) this.value(v[i], depth + 1);
            return;
          }
          const proto = Object.getPrototypeOf(v) as unknown;
          if (proto !== Object.prototype && proto !== null) throw NOT_FAST;
          const keys = Object.keys(v);
          this.header(keys.length, 0x80, 0xde, 0xdf);
          for (let i = 0; i < keys.length; i++) {
            const k = keys[i]!;
            // msgpackr's decoder renames __proto__ (to keep prototypes safe): it would not round-trip.
            if (k === '__proto__') throw NOT_FAST;
            this.string(k);
            this.value((v as Record<string, unknown>)[k], depth + 1);
          }
        }
        return;
      default:
        // undefined, functions, symbols: not plain (packPlainMap's error names them).
        throw NOT_FAST;
    }
  }

  private int64(v: bigint): void {
    this.room(9);
    if (v < 0x8000000000000000n) {
      this.buf[this.at] = 0xd3;
      this.dv.setBigInt64(this.at + 1, v);
    } else {
      this.buf[this.at] = 0xcf;
      this.dv.setBigUint64(this.at + 1, v);
    }
    this.at += 9;
  }

  /** An array or map header: fix form under 16 entries, then 16 and 32-bit lengths. */
  private header(n: number, fix: number, t16: number, t32: number): void {
    this.room(5);
    const b = this.buf;
    if (n < 0x10) b[this.at++] = fix | n;
    else if (n < 0x10000) {
      b[this.at++] = t16;
      b[this.at++] = n >> 8;
      b[this.at++] = n & 0xff;
    } else {
      b[this.at++] = t32;
      this.dv.setUint32(this.at, n);
      this.at += 4;
    }
  }

  /** A tag for the smallest of three unsigned sizes (8, 16, 32 bits) that holds n, then n big-endian (room already made). */
  private sized(n: number, t8: number, t16: number, t32: number): void {
    const b = this.buf;
    if (n < 0x100) {
      b[this.at++] = t8;
      b[this.at++] = n;
    } else if (n < 0x10000) {
      b[this.at++] = t16;
      b[this.at++] = n >> 8;
      b[this.at++] = n & 0xff;
    } else {
      b[this.at++] = t32;
      this.dv.setUint32(this.at, n);
      this.at += 4;
    }
  }

  private number(v: number): void {
    this.room(9);
    const b = this.buf;
    if (v >>> 0 === v) {
      if (v < 0x80) b[this.at++] = v;
      else this.sized(v, 0xcc, 0xcd, 0xce);
    } else if (v >> 0 === v) {
      if (v >= -0x20) b[this.at++] = 0x100 + v;
      else if (v >= -0x80) {
        b[this.at++] = 0xd0;
        b[this.at++] = v + 0x100;
      } else if (v >= -0x8000) {
        b[this.at++] = 0xd1;
        this.dv.setInt16(this.at, v);
        this.at += 2;
      } else {
        b[this.at++] = 0xd2;
        this.dv.setInt32(this.at, v);
        this.at += 4;
      }
    } else {
      b[this.at++] = 0xcb;
      this.dv.setFloat64(this.at, v);
      this.at += 8;
    }
  }

  private string(s: string): void {
    // Short ASCII strings (keys, kinds, labels) byte by byte; others through TextEncoder.
    let ascii = s.length < 0x20;
    for (let i = 0; ascii && i < s.length; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
    if (ascii) {
      this.room(1 + s.length);
      const b = this.buf;
      b[this.at++] = 0xa0 | s.length;
      for (let i = 0; i < s.length; i++) b[this.at++] = s.charCodeAt(i);
      return;
    }
    const bytes = utf8.encode(s);
    const n = bytes.length;
    this.room(5 + n);
    const b = this.buf;
    if (n < 0x20) b[this.at++] = 0xa0 | n;
    else this.sized(n, 0xd9, 0xda, 0xdb);
    b.set(bytes, this.at);
    this.at += n;
  }

  private bin(v: Uint8Array): void {
    const n = v.length;
    this.room(5 + n);
    const b = this.buf;
    this.sized(n, 0xc4, 0xc5, 0xc6);
    // Short ones byte by byte: TypedArray#set costs more than a few stores.
    if (n <= 16) for (let i = 0; i < n; i++) b[this.at + i] = v[i]!;
    else b.set(v, this.at);
    this.at += n;
  }
}

const packer = new PayloadPacker();

/**
 * A plain map as MessagePack, as packPlainMap encodes it, for a payload the caller hands to
 * the writer at once: the bytes are a view that the next call writes over.
 */
export function packPayload(map: unknown, where: string): Uint8Array {
  if (typeof map === 'object' && map !== null && !Array.isArray(map) && !(map instanceof Uint8Array)) {
    try {
      return packer.pack(map);
    } catch (e) {
      if (e !== NOT_FAST) throw e;
    }
  }
  // packPlainMap names what is not plain.
  return packPlainMap(map, where);
}
