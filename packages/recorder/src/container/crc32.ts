// CRC-32 as in IEEE 802.3, zlib, gzip and PNG: reflected polynomial 0xEDB88320, initial
// value and final xor 0xFFFFFFFF. zlib.crc32 (Node 20.15 and later) computes it natively; on
// older Nodes, slicing-by-8 here (eight 256-entry tables, eight bytes per step).

import * as zlib from 'node:zlib';

const native = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

const POLY = 0xedb88320;

/** TABLES[k * 256 + n]: the CRC of byte n followed by k zero bytes. */
const TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n];
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
})();

/**
 * CRC-32 of `bytes[start, end)`, continuing from `previous` (the CRC of the bytes before, as
 * zlib's crc32(data, value) does), as an unsigned 32-bit number.
 */
export function crc32(bytes: Uint8Array, previous = 0, start = 0, end = bytes.length): number {
  if (native && end - start >= 64) return native(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end), previous) >>> 0;
  return crc32Table(bytes, previous, start, end);
}

/** The same CRC from the tables (short inputs, and Nodes without zlib.crc32). */
export function crc32Table(bytes: Uint8Array, previous = 0, start = 0, end = bytes.length): number {
  const t = TABLES;
  let c = ~previous;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c =
      t[7 * 256 + (c & 0xff)] ^
      t[6 * 256 + ((c >>> 8) & 0xff)] ^
      t[5 * 256 + ((c >>> 16) & 0xff)] ^
      t[4 * 256 + (c >>> 24)] ^
      t[3 * 256 + bytes[i + 4]] ^
      t[2 * 256 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
