import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE } from '../program.js';
import { BloomFilterMap, jhash, jhash2 } from './bloom_filter.js';
import { createMap } from './create.js';
import { BPF_ANY, BPF_EXIST, EINVAL, ENOENT, EOPNOTSUPP } from './uapi.js';

const text = (s: string) => new TextEncoder().encode(s);
const words = (...w: number[]) => new Uint8Array(new Uint32Array(w).buffer);

describe('jhash', () => {
  // The kernel's jhash() is lookup3's hashlittle(); these are the values Bob Jenkins' lookup3.c
  // driver5 prints.
  it('matches lookup3 hashlittle() test vectors', () => {
    expect(jhash(new Uint8Array(0), 0, 0)).toBe(0xdeadbeef);
    expect(jhash(text('Four score and seven years ago'), 30, 0)).toBe(0x17770551);
    expect(jhash(text('Four score and seven years ago'), 30, 1)).toBe(0xcd628161);
    expect(jhash(text('hello world\0'), 12, 0)).toBe(0x14973b58);
    expect(jhash(text('hello world\0'), 12, 1)).toBe(0x4746e99f);
  });

  // jhash2() is lookup3's hashword().
  it('matches lookup3 hashword() test vectors', () => {
    expect(jhash2(words(1), 1, 0)).toBe(0x72a82a9b);
    expect(jhash2(words(1, 2), 2, 1)).toBe(0x73989811);
    expect(jhash2(words(1, 2, 3), 3, 0)).toBe(0xa46158f5);
    expect(jhash2(words(1, 2, 3, 4), 4, 1)).toBe(0x044ec9ea);
    expect(jhash2(words(1, 2, 3, 4, 5), 5, 2)).toBe(0x39a100d5);
  });
});

describe('bloom_filter map', () => {
  const def = { name: 'bf', type: BPF_MAP_TYPE.bloom_filter, keySize: 0, valueSize: 4, maxEntries: 100, flags: 0 };

  it('sizes the bit array as bloom_map_alloc does', () => {
    // 100 entries * 5 hashes = 500; 500 / 5 * 7 = 700 bits, rounded up to 1024.
    expect((createMap(def) as BloomFilterMap).bitsetMask).toBe(1023);
    expect((createMap({ ...def, maxEntries: 1 }) as BloomFilterMap).bitsetMask).toBe(63);
    expect((createMap({ ...def, maxEntries: 2 ** 31 }) as BloomFilterMap).bitsetMask).toBe(0xffffffff);
  });

  it('finds every pushed value and rejects most others', () => {
    const m = createMap(def);
    for (let v = 0; v < 100; v++) expect(m.push(words(v * 7919), BPF_ANY)).toBe(0);
    for (let v = 0; v < 100; v++) expect(m.peek(words(v * 7919))).toBe(0);
    let positives = 0;
    for (let v = 1; v <= 1000; v++) if (m.peek(words(v * 7919 + 1)) === 0) positives++;
    expect(positives).toBeLessThan(100);
  });

  it('refuses flags other than BPF_ANY and has no pop, delete or update', () => {
    const m = createMap(def);
    expect(m.push(words(1), BPF_EXIST)).toBe(-EINVAL);
    expect(m.peek(words(1))).toBe(-ENOENT);
    expect(m.pop(new Uint8Array(4))).toBe(-EOPNOTSUPP);
    expect(m.delete(new Uint8Array(0))).toBe(-EOPNOTSUPP);
    expect(m.update(new Uint8Array(0), words(1), BPF_ANY)).toBe(-EINVAL);
  });
});
