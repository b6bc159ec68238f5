import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { createMap } from './create.js';
import { HashMap } from './hashtab.js';
import { isValueMap, type MapMutation } from './map.js';
import { BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_F_NO_COMMON_LRU, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT } from './uapi.js';

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const readU32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0, true);

function hashDef(over: Partial<MapDef> = {}): MapDef {
  return { name: 'h', type: BPF_MAP_TYPE.hash, keySize: 4, valueSize: 4, maxEntries: 3, flags: 0, ...over };
}

const keys = (m: { getNextKey(k: Uint8Array | undefined): Uint8Array | undefined }) => {
  const out: number[] = [];
  for (let k = m.getNextKey(undefined); k; k = m.getNextKey(k)) out.push(readU32(k));
  return out;
};

describe('hash map', () => {
  it('inserts, looks up, replaces and deletes', () => {
    const m = createMap(hashDef());
    expect(m.lookupSys(u32(1))).toBe(-ENOENT);
    expect(m.update(u32(1), u32(10), BPF_ANY)).toBe(0);
    expect(readU32(m.lookup(u32(1))!)).toBe(10);
    expect(m.update(u32(1), u32(11), BPF_ANY)).toBe(0);
    expect(readU32(m.lookupSys(u32(1)) as Uint8Array)).toBe(11);
    expect(m.delete(u32(1))).toBe(0);
    expect(m.delete(u32(1))).toBe(-ENOENT);
    expect(m.lookup(u32(1))).toBeUndefined();
  });

  it('checks BPF_NOEXIST and BPF_EXIST (check_flags)', () => {
    const m = createMap(hashDef());
    expect(m.update(u32(1), u32(1), BPF_EXIST)).toBe(-ENOENT);
    expect(m.update(u32(1), u32(1), BPF_NOEXIST)).toBe(0);
    expect(m.update(u32(1), u32(2), BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.update(u32(1), u32(3), BPF_EXIST)).toBe(0);
    expect(readU32(m.lookupSys(u32(1)) as Uint8Array)).toBe(3);
    expect(m.update(u32(1), u32(3), 3)).toBe(-EINVAL);
    expect(m.update(u32(1), u32(3), BPF_F_LOCK)).toBe(-EINVAL);
  });

  it('is full at max_entries: a new key is -E2BIG, replacing an existing one still works', () => {
    const m = createMap(hashDef());
    for (const k of [1, 2, 3]) expect(m.update(u32(k), u32(k), BPF_ANY)).toBe(0);
    expect(m.update(u32(4), u32(4), BPF_ANY)).toBe(-E2BIG);
    expect(m.update(u32(2), u32(20), BPF_ANY)).toBe(0);
    expect(m.delete(u32(1))).toBe(0);
    expect(m.update(u32(4), u32(4), BPF_ANY)).toBe(0);
  });

  it('iterates in insertion order; a missing key restarts from the first', () => {
    const m = createMap(hashDef({ maxEntries: 10 }));
    for (const k of [5, 3, 9]) m.update(u32(k), u32(k), BPF_ANY);
    expect(keys(m)).toEqual([5, 3, 9]);
    m.delete(u32(3));
    m.update(u32(4), u32(4), BPF_ANY);
    expect(keys(m)).toEqual([5, 9, 4]);
    expect(m.getNextKey(u32(77))).toEqual(u32(5));
    expect(m.getNextKey(u32(4))).toBeUndefined();
  });

  it('grows past its first table and finds every key again', () => {
    const m = createMap(hashDef({ keySize: 8, maxEntries: 5000 }));
    const key = (i: number) => new Uint8Array(new BigUint64Array([BigInt(i) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn]).buffer);
    for (let i = 0; i < 5000; i++) expect(m.update(key(i), u32(i), BPF_NOEXIST)).toBe(0);
    expect(m.update(key(5000), u32(0), BPF_ANY)).toBe(-E2BIG);
    for (let i = 0; i < 5000; i += 7) expect(readU32(m.lookupSys(key(i)) as Uint8Array)).toBe(i);
    for (let i = 0; i < 5000; i += 2) expect(m.delete(key(i))).toBe(0);
    for (let i = 1; i < 5000; i += 2) expect(readU32(m.lookupSys(key(i)) as Uint8Array)).toBe(i);
    expect((m as HashMap).count).toBe(2500);
  });

  it('reuses the slot of a deleted entry', () => {
    const m = createMap(hashDef());
    if (!isValueMap(m)) throw new Error('hash is a value map');
    m.update(u32(1), u32(1), BPF_ANY);
    m.update(u32(2), u32(2), BPF_ANY);
    const slot = m.lookupSlot(u32(2), 0);
    m.delete(u32(2));
    m.update(u32(3), u32(3), BPF_ANY);
    expect(m.lookupSlot(u32(3), 0)).toBe(slot);
    expect(readU32(m.valueBytes(slot))).toBe(3);
    expect(m.slotCount).toBe(3);
  });

  it('reports inserts and deletes to onMutate', () => {
    const m = createMap(hashDef());
    const seen: MapMutation[] = [];
    m.onMutate = (ev) => seen.push(ev);
    m.update(u32(1), u32(5), BPF_ANY);
    m.update(u32(1), u32(6), BPF_ANY);
    m.delete(u32(1));
    expect(seen).toEqual([
      { op: 'update', key: u32(1), before: undefined, after: u32(5), cpu: undefined },
      { op: 'update', key: u32(1), before: u32(5), after: u32(6), cpu: undefined },
      { op: 'delete', key: u32(1), before: u32(6) },
    ]);
  });

  it('clones independently', () => {
    const m = createMap(hashDef());
    m.update(u32(1), u32(1), BPF_ANY);
    const c = m.clone();
    m.delete(u32(1));
    c.update(u32(2), u32(2), BPF_ANY);
    expect(keys(c)).toEqual([1, 2]);
    expect(keys(m)).toEqual([]);
  });
});

describe('percpu_hash map', () => {
  const def = hashDef({ name: 'pch', type: BPF_MAP_TYPE.percpu_hash });

  it('a program insert sets its CPU and zeroes the others (pcpu_init_value)', () => {
    const m = createMap(def, { cpus: 2 });
    const all = new Uint8Array(16);
    all.set(u32(9), 0);
    all.set(u32(9), 8);
    expect(m.updateAllCpus(u32(1), all, BPF_ANY)).toBe(0);
    expect(m.delete(u32(1))).toBe(0);
    // The freed element still holds 9 on both CPUs; a new insert from CPU 1 must zero CPU 0.
    expect(m.update(u32(2), u32(5), BPF_ANY, 1)).toBe(0);
    expect(readU32(m.lookup(u32(2), 0)!)).toBe(0);
    expect(readU32(m.lookup(u32(2), 1)!)).toBe(5);
    // An update of an existing key changes only that CPU's copy.
    expect(m.update(u32(2), u32(6), BPF_ANY, 0)).toBe(0);
    const v = m.lookupSys(u32(2)) as Uint8Array;
    expect([readU32(v), readU32(v.subarray(8))]).toEqual([6, 5]);
  });

  it('refuses BPF_F_LOCK and flags above BPF_EXIST', () => {
    const m = createMap(def, { cpus: 2 });
    expect(m.update(u32(1), u32(1), BPF_F_LOCK)).toBe(-EINVAL);
  });

  it('gives each CPU its own slot', () => {
    const m = createMap(def, { cpus: 4 });
    if (!isValueMap(m)) throw new Error('percpu_hash is a value map');
    m.update(u32(1), u32(1), BPF_ANY, 0);
    const s0 = m.lookupSlot(u32(1), 0);
    expect(m.lookupSlot(u32(1), 3)).toBe(s0 + 3);
    expect(m.slotCount).toBe(12);
  });
});

describe('lru_hash map', () => {
  const def = hashDef({ name: 'lru', type: BPF_MAP_TYPE.lru_hash, maxEntries: 3 });

  it('evicts the least recently used entry when full', () => {
    const m = createMap(def);
    for (const k of [1, 2, 3]) m.update(u32(k), u32(k), BPF_ANY);
    expect(m.update(u32(4), u32(4), BPF_ANY)).toBe(0);
    expect(m.lookupSys(u32(1))).toBe(-ENOENT);
    expect(keys(m).sort()).toEqual([2, 3, 4]);
  });

  it("a program's lookup makes an entry recently used; the syscall's does not", () => {
    const m = createMap(def);
    for (const k of [1, 2, 3]) m.update(u32(k), u32(k), BPF_ANY);
    expect(m.lookup(u32(1))).toBeDefined();
    m.lookupSys(u32(2));
    m.update(u32(4), u32(4), BPF_ANY);
    expect(m.lookupSys(u32(2))).toBe(-ENOENT);
    expect(m.lookupSys(u32(1))).not.toBe(-ENOENT);
    // An update also counts as a use (made while the map has room, so nothing is evicted).
    m.delete(u32(4));
    expect(m.update(u32(3), u32(30), BPF_EXIST)).toBe(0);
    m.update(u32(5), u32(5), BPF_ANY);
    m.update(u32(6), u32(6), BPF_ANY);
    expect(keys(m).sort()).toEqual([3, 5, 6]);
  });

  it('in a full map, even replacing a key takes a free element first and so evicts', () => {
    const m = createMap(def);
    for (const k of [1, 2, 3]) m.update(u32(k), u32(k), BPF_ANY);
    expect(m.update(u32(2), u32(20), BPF_ANY)).toBe(0);
    expect(keys(m).sort()).toEqual([2, 3]);
    expect(readU32(m.lookupSys(u32(2)) as Uint8Array)).toBe(20);
  });

  it('evicts before checking flags, as prealloc_lru_pop runs first', () => {
    const m = createMap(def);
    const seen: MapMutation[] = [];
    for (const k of [1, 2, 3]) m.update(u32(k), u32(k), BPF_ANY);
    m.onMutate = (ev) => seen.push(ev);
    expect(m.update(u32(3), u32(0), BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.lookupSys(u32(1))).toBe(-ENOENT);
    expect(seen).toEqual([{ op: 'delete', key: u32(1), before: u32(1) }]);
  });

  it('rounds max_entries to a multiple of the CPUs with BPF_F_NO_COMMON_LRU', () => {
    const m = createMap({ ...def, maxEntries: 5, flags: BPF_F_NO_COMMON_LRU }, { cpus: 4 }) as HashMap;
    expect(m.capacity).toBe(8);
  });
});

describe('lru_percpu_hash map', () => {
  const def = hashDef({ name: 'lrupc', type: BPF_MAP_TYPE.lru_percpu_hash, maxEntries: 2 });

  it('writes per CPU and evicts the least recently used entry when full', () => {
    const m = createMap(def, { cpus: 2 });
    m.update(u32(1), u32(1), BPF_ANY, 0);
    m.update(u32(1), u32(3), BPF_EXIST, 1);
    m.update(u32(2), u32(2), BPF_ANY, 1);
    const v = m.lookupSys(u32(1)) as Uint8Array;
    expect([readU32(v), readU32(v.subarray(8))]).toEqual([1, 3]);
    expect(m.lookup(u32(1), 0)).toBeDefined();
    m.update(u32(3), u32(3), BPF_ANY, 0);
    expect(m.lookupSys(u32(2))).toBe(-ENOENT);
    expect(keys(m)).toEqual([1, 3]);
  });

  it('does not evict for a BPF_EXIST update, which only writes in place', () => {
    const m = createMap(def, { cpus: 2 });
    m.update(u32(1), u32(1), BPF_ANY, 0);
    m.update(u32(2), u32(2), BPF_ANY, 0);
    expect(m.update(u32(3), u32(3), BPF_EXIST, 0)).toBe(-ENOENT);
    expect(keys(m)).toEqual([1, 2]);
  });
});
