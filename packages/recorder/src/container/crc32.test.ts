import { describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { crc32 } from './crc32.js';

const ascii = (s: string) => new TextEncoder().encode(s);

/** A small seeded PRNG (mulberry32), so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('crc32', () => {
  // Check values from the CRC catalogue (CRC-32/ISO-HDLC, "check" = crc of "123456789") and
  // the ones zlib's and PNG's documentation quote.
  test.each([
    ['', 0x00000000],
    ['a', 0xe8b7be43],
    ['123456789', 0xcbf43926],
    ['The quick brown fox jumps over the lazy dog', 0x414fa339],
  ])('crc32(%j) = %i', (text, expected) => {
    expect(crc32(ascii(text))).toBe(expected);
  });

  test('continues from a previous value and honours start/end, like zlib.crc32(data, value)', () => {
    const bytes = ascii('The quick brown fox jumps over the lazy dog');
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut)))).toBe(0x414fa339);
      expect(crc32(bytes, crc32(bytes, 0, 0, cut), cut)).toBe(0x414fa339);
    }
  });

  const python = '/usr/bin/python3';
  const hasPython = existsSync(python) && spawnSync(python, ['-c', 'import zlib'], { stdio: 'ignore' }).status === 0;
  if (!hasPython) console.log(`crc32: skipping the comparison with zlib: ${python} not found`);
  test.skipIf(!hasPython)("agrees with python's zlib.crc32 on random data of every length up to 300 and a few large ones", () => {
    const rand = prng(1);
    const samples: Uint8Array[] = [];
    for (let n = 0; n <= 300; n++) samples.push(Uint8Array.from({ length: n }, () => Math.floor(rand() * 256)));
    for (const n of [4095, 65536, 1 << 20]) samples.push(Uint8Array.from({ length: n }, () => Math.floor(rand() * 256)));
    const input = samples.map((s) => Buffer.from(s).toString('hex')).join('\n');
    const out = spawnSync(python, ['-c', 'import sys, zlib\nfor line in sys.stdin.read().split("\\n"): print(zlib.crc32(bytes.fromhex(line)))'], {
      input,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout.trim().split('\n').map(Number)).toEqual(samples.map((s) => crc32(s)));
  });
});

test('the table CRC and zlib.crc32 agree on inputs of every length around the native cut-over', async () => {
  const { crc32Table } = await import('./crc32.js');
  const bytes = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff);
  for (const n of [0, 1, 7, 63, 64, 65, 1000, 4096]) {
    expect(crc32(bytes.subarray(0, n))).toBe(crc32Table(bytes.subarray(0, n)));
    expect(crc32(bytes, 0x12345678, 3, Math.max(3, n))).toBe(crc32Table(bytes, 0x12345678, 3, Math.max(3, n)));
  }
});
