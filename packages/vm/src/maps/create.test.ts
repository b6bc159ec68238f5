import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { ArrayMap } from './array.js';
import { createMap } from './create.js';
import { HashMap } from './hashtab.js';
import { MapCreateError } from './map.js';
import {
  BPF_F_MMAPABLE,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY_PROG,
  E2BIG,
  EBADF,
  EINVAL,
  ENOTSUPP,
} from './uapi.js';

function def(type: keyof typeof BPF_MAP_TYPE, over: Partial<MapDef> = {}): MapDef {
  return { name: `m_${type}`, type: BPF_MAP_TYPE[type], keySize: 4, valueSize: 4, maxEntries: 4, flags: 0, ...over };
}

/** The negative errno createMap refuses `d` with, or 0 when it creates the map. */
function createErrno(d: MapDef, cpus = 1): number {
  try {
    createMap(d, { cpus });
    return 0;
  } catch (e) {
    if (e instanceof MapCreateError) return e.errno;
    throw e;
  }
}

describe('createMap', () => {
  it('creates every supported type from a valid definition', () => {
    const valid: MapDef[] = [
      def('array'),
      def('percpu_array'),
      def('hash'),
      def('percpu_hash'),
      def('lru_hash'),
      def('lru_percpu_hash'),
      def('lpm_trie', { keySize: 8, flags: BPF_F_NO_PREALLOC }),
      def('prog_array'),
      def('perf_event_array'),
      def('array_of_maps', { inner: def('array') }),
      def('hash_of_maps', { inner: def('array') }),
      def('queue', { keySize: 0 }),
      def('stack', { keySize: 0 }),
      def('ringbuf', { keySize: 0, valueSize: 0, maxEntries: 4096 }),
      def('devmap', { valueSize: 8 }),
      def('devmap_hash'),
      def('cpumap'),
      def('xskmap'),
      def('bloom_filter', { keySize: 0 }),
    ];
    for (const d of valid) expect([d.name, createErrno(d, 2)]).toEqual([d.name, 0]);
  });

  it('checks arrays as array_map_alloc_check does', () => {
    expect(createErrno(def('array', { keySize: 8 }))).toBe(-EINVAL);
    expect(createErrno(def('array', { valueSize: 0 }))).toBe(-EINVAL);
    expect(createErrno(def('array', { maxEntries: 0 }))).toBe(-EINVAL);
    expect(createErrno(def('array', { flags: 1 << 20 }))).toBe(-EINVAL);
    expect(createErrno(def('array', { flags: BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG }))).toBe(-EINVAL);
    expect(createErrno(def('percpu_array', { flags: BPF_F_MMAPABLE }))).toBe(-EINVAL);
    expect(createErrno(def('percpu_array', { valueSize: 32 * 1024 + 1 }))).toBe(-E2BIG);
    expect(createErrno(def('prog_array', { valueSize: 8 }))).toBe(-EINVAL);
    expect(createErrno(def('array_of_maps'))).toBe(-EBADF);
  });

  it('checks hash maps as htab_map_alloc_check does', () => {
    expect(createErrno(def('hash', { keySize: 0 }))).toBe(-EINVAL);
    expect(createErrno(def('hash', { flags: BPF_F_NO_COMMON_LRU }))).toBe(-EINVAL);
    expect(createErrno(def('lru_hash', { flags: BPF_F_NO_PREALLOC }))).toBe(-ENOTSUPP);
    expect(createErrno(def('hash', { maxEntries: 2 ** 31 + 1 }))).toBe(-E2BIG);
    expect(createErrno(def('hash_of_maps', { valueSize: 8, inner: def('array') }))).toBe(-EINVAL);
  });

  it('checks the other types as their map_alloc does', () => {
    expect(createErrno(def('lpm_trie', { keySize: 8 }))).toBe(-EINVAL);
    expect(createErrno(def('lpm_trie', { keySize: 4, flags: BPF_F_NO_PREALLOC }))).toBe(-EINVAL);
    expect(createErrno(def('queue'))).toBe(-EINVAL);
    expect(createErrno(def('ringbuf', { keySize: 0, valueSize: 0, maxEntries: 6000 }))).toBe(-EINVAL);
    expect(createErrno(def('ringbuf', { keySize: 0, valueSize: 0, maxEntries: 2048 }))).toBe(-EINVAL);
    expect(createErrno(def('ringbuf', { maxEntries: 4096 }))).toBe(-EINVAL);
    expect(createErrno(def('devmap', { valueSize: 6 }))).toBe(-EINVAL);
    expect(createErrno(def('cpumap', { maxEntries: 10000 }))).toBe(-E2BIG);
    expect(createErrno(def('xskmap', { valueSize: 8 }))).toBe(-EINVAL);
    expect(createErrno(def('bloom_filter'))).toBe(-EINVAL);
  });

  it('names the map, the reason and the errno in its message', () => {
    expect(() => createMap(def('lpm_trie', { name: 'routes', keySize: 8 }))).toThrow(
      "map 'routes': LPM tries must be created with BPF_F_NO_PREALLOC (-EINVAL)",
    );
  });

  it('refuses map types Rewind does not implement', () => {
    expect(() => createMap(def('sockmap'))).toThrow(/map type sockmap \(15\) is not supported by Rewind/);
    expect(createErrno(def('sockmap'))).toBe(0);
    expect(() => createMap({ ...def('array'), type: 999 })).toThrow(/unknown map type 999/);
  });

  it('refuses a map whose values would not fit 4 GiB of value space', () => {
    expect(() => createMap(def('array', { name: 'huge', maxEntries: 2 ** 29, valueSize: 8 }))).toThrow(
      /map 'huge': 536870912 values of 8 bytes need 4294967296 bytes, more than the 4 GiB/,
    );
    expect(() => createMap(def('percpu_array', { maxEntries: 2 ** 26, valueSize: 8 }), { cpus: 8 })).toThrow(MapCreateError);
    expect(createMap(def('array', { maxEntries: 2 ** 29 - 1, valueSize: 8 }))).toBeInstanceOf(ArrayMap);
  });

  it('creates per-CPU maps with the CPU count given', () => {
    const m = createMap(def('percpu_hash'), { cpus: 6 }) as HashMap;
    expect(m.cpus).toBe(6);
    expect(m.slotCount).toBe(24);
    expect(() => createMap(def('array'), { cpus: 0 })).toThrow(/cpus must be a positive integer/);
  });

  it('checks global data definitions', () => {
    const init = new Uint8Array(8).fill(1);
    expect(() => createMap({ ...def('array', { name: '.data', maxEntries: 1, valueSize: 4 }), globalData: true, initialValue: init })).toThrow(
      /map '.data': initial value of 8 bytes does not fit value_size 4/,
    );
  });
});
