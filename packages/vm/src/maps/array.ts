// BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY (kernel/bpf/arraymap.c), and the global data
// maps (.data, .rodata, .bss) libbpf creates as one-entry arrays. Every element exists from
// creation and is zero; storage is allocated by page on first write.

import type { MapDef } from '../program.js';
import { BpfMap, MapError, checkValueSpace, indexKey, keyIndex, roundUp8, type MapEntry, type ValueMap } from './map.js';
import { PagedStore } from './paged.js';
import { BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT } from './uapi.js';

export class ArrayMap extends BpfMap implements ValueMap {
  readonly percpu: boolean;
  readonly stride: number;
  readonly slotCount: number;
  private store: PagedStore;

  constructor(def: MapDef, cpus: number, percpu = false, store?: PagedStore) {
    super(def, cpus);
    this.percpu = percpu;
    this.stride = roundUp8(def.valueSize);
    this.slotCount = def.maxEntries * (percpu ? cpus : 1);
    checkValueSpace(def, this.stride, this.slotCount);
    this.store = store ?? new PagedStore(this.slotCount, this.stride);
    if (!store && def.initialValue) this.store.write(0, def.initialValue.subarray(0, def.valueSize));
  }

  private slotOf(index: number, cpu: number): number {
    return this.percpu ? index * this.cpus + cpu : index;
  }

  lookupSlot(key: Uint8Array, cpu: number): number {
    const index = keyIndex(key);
    if (index >= this.def.maxEntries || cpu >= this.cpus) return -1;
    return this.slotOf(index, cpu);
  }

  slotKey(slot: number): { key: Uint8Array; cpu: number } | undefined {
    const index = this.percpu ? Math.floor(slot / this.cpus) : slot;
    return index < this.def.maxEntries ? { key: indexKey(index), cpu: this.percpu ? slot % this.cpus : 0 } : undefined;
  }

  valueBytes(slot: number): Uint8Array {
    return this.store.view(slot, this.def.valueSize);
  }

  readValue(slot: number): Uint8Array {
    return this.store.read(slot, this.def.valueSize);
  }

  pageOf(slot: number): Uint8Array {
    return this.store.page(slot);
  }
  pageOffset(slot: number): number {
    return this.store.offset(slot);
  }

  /** Storage actually allocated, in bytes. */
  get allocatedBytes(): number {
    return this.store.allocatedBytes;
  }

  override lookup(key: Uint8Array, cpu = 0): Uint8Array | undefined {
    const slot = this.lookupSlot(key, cpu);
    return slot < 0 ? undefined : this.valueBytes(slot);
  }

  lookupSys(key: Uint8Array): Uint8Array | number {
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -ENOENT;
    return this.copyOut(index);
  }

  private copyOut(index: number): Uint8Array {
    if (!this.percpu) return this.store.read(index, this.def.valueSize).slice();
    const out = new Uint8Array(this.cpus * this.stride);
    for (let cpu = 0; cpu < this.cpus; cpu++) out.set(this.store.read(this.slotOf(index, cpu), this.def.valueSize), cpu * this.stride);
    return out;
  }

  // array_map_update_elem(): every element exists, so BPF_NOEXIST always fails; there is no
  // bpf_spin_lock in a Rewind value, so BPF_F_LOCK is refused as for a value without one.
  update(key: Uint8Array, value: Uint8Array, flags: number, cpu = 0): number {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -E2BIG;
    if (flags & BPF_NOEXIST) return -EEXIST;
    if (flags & BPF_F_LOCK) return -EINVAL;
    if (cpu >= this.cpus) return -EINVAL;
    const slot = this.slotOf(index, cpu);
    const hook = this.onMutate;
    const before = hook ? this.store.read(slot, this.def.valueSize).slice() : undefined;
    this.store.write(slot, value.subarray(0, this.def.valueSize));
    if (hook) hook({ op: 'update', key: indexKey(index), before, after: value.slice(0, this.def.valueSize), cpu: this.percpu ? cpu : undefined });
    return 0;
  }

  // bpf_percpu_array_update(): user space writes every CPU's copy, each padded to 8 bytes.
  override updateAllCpus(key: Uint8Array, values: Uint8Array, flags: number): number {
    if (!this.percpu) return this.update(key, values, flags);
    if (flags > BPF_EXIST) return -EINVAL;
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -E2BIG;
    if (flags === BPF_NOEXIST) return -EEXIST;
    const step = perCpuStep(values, this.cpus, this.def.valueSize, this.stride, this.def.name);
    const hook = this.onMutate;
    const before = hook ? this.copyOut(index) : undefined;
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      this.store.write(this.slotOf(index, cpu), values.subarray(cpu * step, cpu * step + this.def.valueSize));
    }
    if (hook) hook({ op: 'update', key: indexKey(index), before, after: this.copyOut(index) });
    return 0;
  }

  // array_map_delete_elem(): elements of an array cannot be deleted.
  delete(_key: Uint8Array): number {
    return -EINVAL;
  }

  getNextKey(key: Uint8Array | undefined): Uint8Array | undefined {
    return arrayNextKey(key, this.def.maxEntries);
  }

  /** Entries on pages ever written, in index order; the others are all zeros. */
  *entries(): Iterable<MapEntry> {
    const per = this.percpu ? this.cpus : 1;
    let last = -1;
    for (const [first, end] of this.store.touchedRanges()) {
      for (let index = Math.max(Math.floor(first / per), last + 1); index * per < end && index < this.def.maxEntries; index++) {
        yield { key: indexKey(index), value: this.copyOut(index) };
        last = index;
      }
    }
  }

  clone(): ArrayMap {
    return new ArrayMap(this.def, this.cpus, this.percpu, this.store.clone());
  }
}

/** array_map_get_next_key(): a missing or out-of-range key restarts at 0; the last index ends. */
export function arrayNextKey(key: Uint8Array | undefined, maxEntries: number): Uint8Array | undefined {
  const index = key ? keyIndex(key) : 0xffffffff;
  if (index >= maxEntries) return indexKey(0);
  if (index === maxEntries - 1) return undefined;
  return indexKey(index + 1);
}

/**
 * Distance between CPUs in a user-space per-CPU value buffer: the kernel's layout pads each
 * CPU's value to 8 bytes; a buffer of exactly cpus * valueSize bytes is read packed.
 */
export function perCpuStep(values: Uint8Array, cpus: number, valueSize: number, stride: number, name: string): number {
  if (values.length >= cpus * stride) return stride;
  if (values.length >= cpus * valueSize) return valueSize;
  throw new MapError(`map '${name}': per-CPU value of ${values.length} bytes, expected ${cpus} CPUs x ${stride} bytes`);
}
