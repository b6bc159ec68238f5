import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { ArrayMap } from './array.js';
import { createMap } from './create.js';
import { isValueMap, type MapMutation } from './map.js';
import { BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT } from './uapi.js';

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const readU32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0, true);

function arrayDef(over: Partial<MapDef> = {}): MapDef {
  return { name: 'arr', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: 4, maxEntries: 4, flags: 0, ...over };
}

describe('array map', () => {
  it('starts with every element present and zero', () => {
    const m = createMap(arrayDef());
    expect(m.lookupSys(u32(3))).toEqual(new Uint8Array(4));
    expect(m.lookupSys(u32(4))).toBe(-ENOENT);
    expect(m.lookup(u32(4))).toBeUndefined();
  });

  it('updates with BPF_ANY and BPF_EXIST, refuses BPF_NOEXIST with -EEXIST', () => {
    const m = createMap(arrayDef());
    expect(m.update(u32(1), u32(7), BPF_ANY)).toBe(0);
    expect(m.update(u32(1), u32(8), BPF_EXIST)).toBe(0);
    expect(m.update(u32(1), u32(9), BPF_NOEXIST)).toBe(-EEXIST);
    expect(readU32(m.lookupSys(u32(1)) as Uint8Array)).toBe(8);
  });

  it('returns -E2BIG for an index past max_entries, -EINVAL for unknown flags and BPF_F_LOCK', () => {
    const m = createMap(arrayDef());
    expect(m.update(u32(4), u32(1), BPF_ANY)).toBe(-E2BIG);
    expect(m.update(u32(0), u32(1), 3)).toBe(-EINVAL);
    // No bpf_spin_lock in the value.
    expect(m.update(u32(0), u32(1), BPF_F_LOCK)).toBe(-EINVAL);
  });

  it('cannot delete elements (-EINVAL)', () => {
    expect(createMap(arrayDef()).delete(u32(0))).toBe(-EINVAL);
  });

  it('iterates keys 0..max-1 and restarts at 0 for a missing or out-of-range key', () => {
    const m = createMap(arrayDef({ maxEntries: 3 }));
    expect(m.getNextKey(undefined)).toEqual(u32(0));
    expect(m.getNextKey(u32(0))).toEqual(u32(1));
    expect(m.getNextKey(u32(1))).toEqual(u32(2));
    expect(m.getNextKey(u32(2))).toBeUndefined();
    expect(m.getNextKey(u32(17))).toEqual(u32(0));
  });

  it('hands out value slots at stride valueSize rounded up to 8, with live views', () => {
    const m = createMap(arrayDef({ valueSize: 12, maxEntries: 10 }));
    if (!isValueMap(m)) throw new Error('array is a value map');
    expect(m.stride).toBe(16);
    expect(m.slotCount).toBe(10);
    const slot = m.lookupSlot(u32(5), 0);
    expect(slot).toBe(5);
    const view = m.valueBytes(slot);
    expect(view.length).toBe(12);
    view[0] = 0xab;
    expect((m.lookupSys(u32(5)) as Uint8Array)[0]).toBe(0xab);
    // The page behind the view, for access without creating views.
    const page = m.pageOf(slot);
    expect(page[m.pageOffset(slot)]).toBe(0xab);
    page[m.pageOffset(slot) + 11] = 0xcd;
    expect(view[11]).toBe(0xcd);
    expect(m.lookupSlot(u32(10), 0)).toBe(-1);
  });

  it('does not allocate storage to read an untouched element', () => {
    const m = createMap(arrayDef({ maxEntries: 1 << 20 })) as ArrayMap;
    expect(m.readValue(12345)).toEqual(new Uint8Array(4));
    expect(m.lookupSys(u32(12345))).toEqual(new Uint8Array(4));
    expect(m.allocatedBytes).toBe(0);
    m.update(u32(12345), u32(1), BPF_ANY);
    expect(m.allocatedBytes).toBe(64 * 1024);
  });

  it('allocates a 33,554,432-entry array (Katran ch_rings) by page', () => {
    const global = globalThis as { gc?: () => void };
    global.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    const m = createMap(arrayDef({ name: 'ch_rings', maxEntries: 33_554_432 }));
    for (const i of [0, 1, 65_537, 16_000_000, 33_554_431]) expect(m.update(u32(i), u32(i + 1), BPF_ANY)).toBe(0);
    if (!isValueMap(m)) throw new Error('array is a value map');
    m.valueBytes(m.lookupSlot(u32(20_000_000), 0))[0] = 1;
    const grown = process.memoryUsage().arrayBuffers - before;
    // A dense array would be 33,554,432 * 8 = 268 MB. Pages hold 8192 values: indexes 0 and 1
    // share one, so five pages of 64 KiB are touched.
    expect(grown).toBeLessThan(8 * 1024 * 1024);
    expect(readU32(m.lookupSys(u32(33_554_431)) as Uint8Array)).toBe(33_554_432);
    expect(readU32(m.lookupSys(u32(33_554_430)) as Uint8Array)).toBe(0);
    expect((m as ArrayMap).allocatedBytes).toBe(5 * 64 * 1024);
  });

  it('lists only entries on touched pages, in index order', () => {
    const m = createMap(arrayDef({ maxEntries: 100_000 }));
    m.update(u32(90_000), u32(2), BPF_ANY);
    m.update(u32(3), u32(1), BPF_ANY);
    const keys = [...m.entries()].map((e) => readU32(e.key));
    expect(keys).toContain(3);
    expect(keys).toContain(90_000);
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    expect(keys.length).toBeLessThan(100_000);
  });

  it('reports updates to onMutate with the value before and after', () => {
    const m = createMap(arrayDef());
    const seen: MapMutation[] = [];
    m.onMutate = (ev) => seen.push(ev);
    m.update(u32(2), u32(5), BPF_ANY);
    m.update(u32(2), u32(6), BPF_ANY);
    m.update(u32(9), u32(6), BPF_ANY); // fails: not reported
    expect(seen).toEqual([
      { op: 'update', key: u32(2), before: u32(0), after: u32(5), cpu: undefined },
      { op: 'update', key: u32(2), before: u32(5), after: u32(6), cpu: undefined },
    ]);
  });

  it('clones independently', () => {
    const m = createMap(arrayDef());
    m.update(u32(1), u32(1), BPF_ANY);
    const c = m.clone();
    m.update(u32(1), u32(2), BPF_ANY);
    c.update(u32(2), u32(3), BPF_ANY);
    expect(readU32(c.lookupSys(u32(1)) as Uint8Array)).toBe(1);
    expect(readU32(m.lookupSys(u32(2)) as Uint8Array)).toBe(0);
    expect(c.onMutate).toBeUndefined();
  });
});

describe('percpu_array map', () => {
  const def = arrayDef({ name: 'pc', type: BPF_MAP_TYPE.percpu_array, valueSize: 4, maxEntries: 2 });

  it('keeps one copy per CPU; a program updates its own CPU only', () => {
    const m = createMap(def, { cpus: 3 });
    expect(m.update(u32(1), u32(11), BPF_ANY, 1)).toBe(0);
    expect(readU32(m.lookup(u32(1), 1)!)).toBe(11);
    expect(readU32(m.lookup(u32(1), 0)!)).toBe(0);
    // The syscall sees every CPU, each value padded to 8 bytes.
    const all = m.lookupSys(u32(1)) as Uint8Array;
    expect(all.length).toBe(3 * 8);
    expect([0, 8, 16].map((o) => readU32(all.subarray(o)))).toEqual([0, 11, 0]);
  });

  it('gives each CPU its own slot', () => {
    const m = createMap(def, { cpus: 4 });
    if (!isValueMap(m)) throw new Error('percpu_array is a value map');
    expect(m.slotCount).toBe(8);
    expect(m.lookupSlot(u32(1), 2)).toBe(1 * 4 + 2);
    expect(m.lookupSlot(u32(1), 4)).toBe(-1);
  });

  it('updates all CPUs from user space, with padded or packed layouts', () => {
    const m = createMap(def, { cpus: 2 });
    const padded = new Uint8Array(16);
    padded.set(u32(5), 0);
    padded.set(u32(6), 8);
    expect(m.updateAllCpus(u32(0), padded, BPF_ANY)).toBe(0);
    expect([readU32(m.lookup(u32(0), 0)!), readU32(m.lookup(u32(0), 1)!)]).toEqual([5, 6]);
    const packed = new Uint8Array([7, 0, 0, 0, 8, 0, 0, 0]);
    expect(m.updateAllCpus(u32(1), packed, BPF_ANY)).toBe(0);
    expect([readU32(m.lookup(u32(1), 0)!), readU32(m.lookup(u32(1), 1)!)]).toEqual([7, 8]);
    expect(m.updateAllCpus(u32(1), padded, BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.updateAllCpus(u32(2), padded, BPF_ANY)).toBe(-E2BIG);
  });
});

describe('global data map', () => {
  it('is a one-entry array holding the section initial value', () => {
    const init = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const m = createMap({ name: '.rodata', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: 6, maxEntries: 1, flags: 0x80, globalData: true, initialValue: init });
    expect(m.lookupSys(u32(0))).toEqual(init);
    expect(m.rdonlyProg).toBe(true);
  });
});
