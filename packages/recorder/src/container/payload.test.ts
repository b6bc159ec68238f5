import { describe, expect, test } from 'vitest';
import { packPayload } from './payload.js';
import { packPlainMap, unpackPlain } from './plain.js';

/** A seeded generator of plain values covering every MessagePack form's boundaries. */
function generator(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
  const ints = [0, 1, 0x1f, 0x20, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, -1, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001, -0x80000000, -0];
  const bigs = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n, 1700000000000000000n];
  const floats = [0.5, -2.25, 1e300, Number.NaN, 2 ** 60, -(2 ** 70)];
  // The largest forms (str 32, bin 32) once in a while: every size is drawn again for each value.
  const strings = ['', 'k', 'helper', 'map_value(fw_stats)', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(255), 'w'.repeat(256), 'Größe ✓', 'é'.repeat(20)];
  const binSizes = [0, 1, 8, 16, 17, 255, 256, 300, 4];
  const huge = () => (next() % 40 === 0 ? [65_535, 65_536, 70_000][next() % 3]! : 0);
  const value = (depth: number): unknown => {
    switch (next() % (depth >= 2 ? 6 : 8)) {
      case 0:
        return pick(ints);
      case 1:
        return pick(bigs);
      case 2:
        return pick(floats);
      case 3:
        return huge() ? 'v'.repeat(huge() || 70_000) : pick(strings);
      case 4: {
        const n = huge() || pick(binSizes);
        return Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);
      }
      case 5:
        return pick([null, true, false]);
      case 6:
        return Array.from({ length: pick([0, 1, 15, 16, 17]) }, () => value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = 0, n = pick([0, 3, 15, 16, 20]); i < n; i++) o[`${pick(['k', 't', 'step', 'é', 'key'])}${i}`] = value(depth + 1);
        return o;
      }
    }
  };
  return () => ({ root: value(0), n: next() % 1000 });
}

describe('the payload encoder', () => {
  test('writes the bytes msgpackr writes for the same plain values', () => {
    const gen = generator(20261125);
    for (let k = 0; k < 300; k++) {
      const v = gen();
      const ours = packPayload(v, 'v').slice();
      expect(Buffer.compare(ours, packPlainMap(v, 'v')), `value ${k}`).toBe(0);
    }
  });

  test('integers beyond 32 bits come out as packPlainMap writes them; values that are not plain get its error', () => {
    const big = { timeNs: 2 ** 40, nested: [{ at: -(2 ** 33) }] };
    expect(Buffer.compare(packPayload(big, 'p').slice(), packPlainMap(big, 'p'))).toBe(0);
    expect(unpackPlain(packPayload(big, 'p'))).toEqual({ timeNs: 2 ** 40, nested: [{ at: -(2 ** 33) }] });
    expect(() => packPayload({ when: new Date(0) }, 'the chunk payload')).toThrow(/the chunk payload\.when is a Date/);
    expect(() => packPayload({ gone: undefined }, 'the run payload')).toThrow(/the run payload\.gone is undefined/);
    expect(() => packPayload({ regs: [new Int32Array(2)] }, 'p')).toThrow(/p\.regs\[0\] is a Int32Array/);
    expect(() => packPayload({ r0: 2n ** 64n }, 'p')).toThrow(/does not fit in 64 bits/);
    expect(() => packPayload(JSON.parse('{"__proto__": 1}'), 'p')).toThrow(/__proto__/);
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    expect(() => packPayload({ deep }, 'p')).toThrow(/nested more than/);
  });
});
