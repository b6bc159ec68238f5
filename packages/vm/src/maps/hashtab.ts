// BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH (kernel/bpf/hashtab.c).
//
// Differences from the kernel, all invisible to a program that follows the verifier's rules:
// - Iteration (getNextKey, dumps) follows insertion order; the kernel walks its buckets.
// - Replacing an existing key's value writes it in place. The kernel links a fresh element
//   (except for per-CPU maps), so a value pointer taken before the update still shows the old
//   value there; in Rewind it shows the new one.
// - LRU maps evict the exact least recently used entry, and only when the map is full. The
//   kernel's LRU (kernel/bpf/bpf_lru_list.c) is approximate: per-CPU free lists refilled in
//   batches from active/inactive lists with reference bits, so it may evict earlier and pick a
//   different victim. Like the kernel, an LRU update takes its element before checking flags,
//   so a failed update of a full map still evicts.

import type { MapDef } from '../program.js';
import { perCpuStep } from './array.js';
import { KeyIndex } from './keyindex.js';
import { BpfMap, checkValueSpace, roundUp8, type MapEntry, type ValueMap } from './map.js';
import { PagedStore } from './paged.js';
import { BPF_EXIST, BPF_F_LOCK, BPF_F_NO_COMMON_LRU, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT } from './uapi.js';

export type HashFlavor = { percpu: boolean; lru: boolean };

/** check_flags(): BPF_NOEXIST needs the key absent, BPF_EXIST present. */
export function checkFlags(exists: boolean, flags: number): number {
  if (exists && (flags & ~BPF_F_LOCK) === BPF_NOEXIST) return -EEXIST;
  if (!exists && (flags & ~BPF_F_LOCK) === BPF_EXIST) return -ENOENT;
  return 0;
}

/** max_entries as htab_map_alloc() adjusts it for BPF_F_NO_COMMON_LRU: a multiple of the CPU count. */
export function lruMaxEntries(def: MapDef, cpus: number): number {
  if (!(def.flags & BPF_F_NO_COMMON_LRU)) return def.maxEntries;
  const up = Math.ceil(def.maxEntries / cpus) * cpus;
  return up <= 0xffffffff ? up : Math.floor(def.maxEntries / cpus) * cpus;
}

export class HashMap extends BpfMap implements ValueMap {
  readonly percpu: boolean;
  readonly lru: boolean;
  readonly stride: number;
  readonly slotCount: number;
  /** Entries the map holds at most (max_entries, rounded for per-CPU LRU lists). */
  readonly capacity: number;
  private index: KeyIndex;
  private store: PagedStore;

  constructor(def: MapDef, cpus: number, flavor: HashFlavor, state?: { index: KeyIndex; store: PagedStore }) {
    super(def, cpus);
    this.percpu = flavor.percpu;
    this.lru = flavor.lru;
    this.capacity = this.lru ? lruMaxEntries(def, cpus) : def.maxEntries;
    this.stride = roundUp8(def.valueSize);
    this.slotCount = this.capacity * (this.percpu ? cpus : 1);
    checkValueSpace(def, this.stride, this.slotCount);
    this.index = state?.index ?? new KeyIndex(def.keySize, this.capacity, this.lru);
    this.store = state?.store ?? new PagedStore(this.slotCount, this.stride);
  }

  get count(): number {
    return this.index.count;
  }

  private slotOf(entry: number, cpu: number): number {
    return this.percpu ? entry * this.cpus + cpu : entry;
  }

  // htab_map_lookup_elem() / htab_lru_map_lookup_elem(): a program's lookup marks an LRU entry used.
  lookupSlot(key: Uint8Array, cpu: number): number {
    const entry = this.index.find(key);
    if (entry < 0 || cpu >= this.cpus) return -1;
    if (this.lru) this.index.touch(entry);
    return this.slotOf(entry, cpu);
  }

  slotKey(slot: number): { key: Uint8Array; cpu: number } | undefined {
    const entry = this.percpu ? Math.floor(slot / this.cpus) : slot;
    const key = this.index.keyAt(entry);
    // The slot holds an element when its key finds it.
    if (this.index.find(key) !== entry) return undefined;
    return { key, cpu: this.percpu ? slot % this.cpus : 0 };
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

  override lookup(key: Uint8Array, cpu = 0): Uint8Array | undefined {
    const slot = this.lookupSlot(key, cpu);
    return slot < 0 ? undefined : this.valueBytes(slot);
  }

  /** The syscall's lookup does not mark LRU entries (htab_lru_map_lookup_elem_sys). */
  lookupSys(key: Uint8Array): Uint8Array | number {
    const entry = this.index.find(key);
    return entry < 0 ? -ENOENT : this.copyOut(entry);
  }

  private copyOut(entry: number): Uint8Array {
    if (!this.percpu) return this.store.read(entry, this.def.valueSize).slice();
    const out = new Uint8Array(this.cpus * this.stride);
    for (let cpu = 0; cpu < this.cpus; cpu++) out.set(this.store.read(this.slotOf(entry, cpu), this.def.valueSize), cpu * this.stride);
    return out;
  }

  /** Writes a new entry's value: `cpu`'s copy, zeros elsewhere (pcpu_init_value), or all CPUs. */
  private initValue(entry: number, value: Uint8Array, cpu: number | undefined, step: number): void {
    if (!this.percpu) {
      this.store.write(entry, value.subarray(0, this.def.valueSize));
      return;
    }
    for (let c = 0; c < this.cpus; c++) {
      const slot = this.slotOf(entry, c);
      if (cpu === undefined) this.store.write(slot, value.subarray(c * step, c * step + this.def.valueSize));
      else if (c === cpu) this.store.write(slot, value.subarray(0, this.def.valueSize));
      else this.store.zero(slot);
    }
  }

  /** Frees room for one element in a full LRU map by evicting the least recently used entry. */
  private evictForInsert(): void {
    if (this.index.count < this.capacity) return;
    const victim = this.index.leastRecent();
    const hook = this.onMutate;
    const key = hook ? this.index.keyAt(victim) : undefined;
    const before = hook ? this.copyOut(victim) : undefined;
    this.index.remove(victim);
    if (hook) hook({ op: 'delete', key, before });
  }

  update(key: Uint8Array, value: Uint8Array, flags: number, cpu = 0): number {
    if (cpu >= this.cpus) return -EINVAL;
    return this.updateElem(key, value, flags, this.percpu ? cpu : undefined, 0);
  }

  override updateAllCpus(key: Uint8Array, values: Uint8Array, flags: number): number {
    if (!this.percpu) return this.update(key, values, flags);
    return this.updateElem(key, values, flags, undefined, perCpuStep(values, this.cpus, this.def.valueSize, this.stride, this.def.name));
  }

  /** `cpu` undefined with a per-CPU map: `value` holds every CPU's value, `step` bytes apart. */
  private updateElem(key: Uint8Array, value: Uint8Array, flags: number, cpu: number | undefined, step: number): number {
    if (this.percpu || this.lru) {
      // __htab_percpu_map_update_elem(), htab_lru_map_update_elem(): no BPF_F_LOCK.
      if (flags > BPF_EXIST) return -EINVAL;
    } else {
      if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
      // No Rewind value holds a bpf_spin_lock.
      if (flags & BPF_F_LOCK) return -EINVAL;
    }
    // LRU maps pop a free element before looking the key up (prealloc_lru_pop), except a per-CPU
    // LRU update with BPF_EXIST, which only ever writes in place.
    if (this.lru && !(this.percpu && flags === BPF_EXIST)) this.evictForInsert();
    let entry = this.index.find(key);
    const err = checkFlags(entry >= 0, flags);
    if (err) return err;
    const hook = this.onMutate;
    let before: Uint8Array | undefined;
    if (entry >= 0) {
      if (hook) before = cpu === undefined ? this.copyOut(entry) : this.store.read(this.slotOf(entry, cpu), this.def.valueSize).slice();
      if (this.percpu && cpu === undefined) this.initValue(entry, value, undefined, step);
      else this.store.write(this.slotOf(entry, cpu ?? 0), value.subarray(0, this.def.valueSize));
    } else {
      // alloc_htab_elem(): no free element left.
      if (this.index.count >= this.capacity) return -E2BIG;
      entry = this.index.insert(key);
      this.initValue(entry, value, cpu, step);
    }
    if (this.lru) this.index.touch(entry);
    if (hook) {
      const after = cpu === undefined ? this.copyOut(entry) : value.slice(0, this.def.valueSize);
      hook({ op: 'update', key: key.slice(0, this.def.keySize), before, after, cpu });
    }
    return 0;
  }

  delete(key: Uint8Array): number {
    const entry = this.index.find(key);
    if (entry < 0) return -ENOENT;
    const hook = this.onMutate;
    const before = hook ? this.copyOut(entry) : undefined;
    this.index.remove(entry);
    if (hook) hook({ op: 'delete', key: key.slice(0, this.def.keySize), before });
    return 0;
  }

  /** htab_map_get_next_key(): a missing key restarts from the first entry. */
  getNextKey(key: Uint8Array | undefined): Uint8Array | undefined {
    const at = key ? this.index.find(key) : -1;
    const next = at < 0 ? this.index.first() : this.index.next(at);
    return next < 0 ? undefined : this.index.keyAt(next);
  }

  *entries(): Iterable<MapEntry> {
    for (let e = this.index.first(); e >= 0; e = this.index.next(e)) {
      yield { key: this.index.keyAt(e), value: this.copyOut(e) };
    }
  }

  clone(): HashMap {
    return new HashMap(this.def, this.cpus, { percpu: this.percpu, lru: this.lru }, { index: this.index.clone(), store: this.store.clone() });
  }
}
