// Maps whose values refer to kernel objects that user space names by file descriptor:
// BPF_MAP_TYPE_PROG_ARRAY, ARRAY_OF_MAPS and PERF_EVENT_ARRAY (the fd arrays of
// kernel/bpf/arraymap.c) and BPF_MAP_TYPE_HASH_OF_MAPS (kernel/bpf/hashtab.c).
//
// Rewind has no file descriptors: a map holds its referenced objects (programs, inner maps, perf
// events) directly, as a target of type T, next to the u32 that user space wrote (shown in
// dumps; the kernel shows the object's id there). `setSlot` installs a target directly;
// `update` with an fd goes through `resolveFd`, and an fd it cannot resolve is -EBADF, as an fd
// that is not open would be.

import type { MapDef } from '../program.js';
import { arrayNextKey } from './array.js';
import { checkFlags } from './hashtab.js';
import { KeyIndex } from './keyindex.js';
import { BpfMap, MapError, indexKey, keyIndex, type MapEntry } from './map.js';
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_CURRENT_CPU,
  BPF_F_INDEX_MASK,
  BPF_F_LOCK,
  E2BIG,
  EBADF,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
} from './uapi.js';

/** An occupied index: the value user space wrote and the object it refers to. */
export interface Slot<T> {
  value: Uint8Array;
  target?: T;
}

function u32Bytes(n: number): Uint8Array {
  return indexKey(n >>> 0);
}

/** Index-keyed maps whose elements may be empty: fd arrays, devmap, cpumap, xskmap. */
export abstract class SlotArrayMap<T> extends BpfMap {
  protected slots = new Map<number, Slot<T>>();
  /** Resolves the fd in a user-space update to the object it names. */
  resolveFd?: (fd: number) => T | undefined;

  /** The element at `index`, or undefined when empty. */
  slot(index: number): Slot<T> | undefined {
    return this.slots.get(index);
  }

  /** The object at `key` (a u32 key or an index): a tail call's program, an inner map. */
  lookupTarget(key: Uint8Array | number): T | undefined {
    return this.slots.get(typeof key === 'number' ? key : keyIndex(key))?.target;
  }

  get count(): number {
    return this.slots.size;
  }

  /** Sets or clears an element, reporting the change. */
  protected put(index: number, slot: Slot<T> | undefined): void {
    const hook = this.onMutate;
    const before = hook ? this.slots.get(index)?.value.slice() : undefined;
    if (slot) this.slots.set(index, slot);
    else this.slots.delete(index);
    if (hook) hook(slot ? { op: 'update', key: indexKey(index), before, after: slot.value.slice() } : { op: 'delete', key: indexKey(index), before });
  }

  lookupSys(key: Uint8Array): Uint8Array | number {
    const slot = this.slots.get(keyIndex(key));
    return slot ? slot.value.slice() : -ENOENT;
  }

  getNextKey(key: Uint8Array | undefined): Uint8Array | undefined {
    return arrayNextKey(key, this.def.maxEntries);
  }

  *entries(): Iterable<MapEntry> {
    for (const index of [...this.slots.keys()].sort((a, b) => a - b)) {
      yield { key: indexKey(index), value: this.slots.get(index)!.value.slice() };
    }
  }

  protected abstract blank(): SlotArrayMap<T>;

  /** A copy of the elements; targets are shared unless `remap` maps them (e.g. to cloned inner maps). */
  clone(remap?: (target: T) => T): SlotArrayMap<T> {
    const c = this.blank();
    for (const [i, s] of this.slots) c.slots.set(i, { value: s.value.slice(), target: s.target !== undefined && remap ? remap(s.target) : s.target });
    c.resolveFd = this.resolveFd;
    return c;
  }
}

/** PROG_ARRAY, ARRAY_OF_MAPS, PERF_EVENT_ARRAY: fd arrays of kernel/bpf/arraymap.c. */
export class FdArrayMap<T> extends SlotArrayMap<T> {
  /** Installs `target` at `index` (undefined clears it); `fd` is the u32 shown in dumps. */
  setSlot(index: number, target: T | undefined, fd = 0): void {
    if (index >= this.def.maxEntries) throw new MapError(`map '${this.def.name}': index ${index} is past max_entries ${this.def.maxEntries}`);
    this.put(index, target === undefined ? undefined : { value: u32Bytes(fd), target });
  }

  /** Programs never get a pointer into an fd array (fd_array_map_lookup_elem). */
  override lookup(_key: Uint8Array, _cpu = 0): Uint8Array | undefined {
    return undefined;
  }

  // bpf_fd_array_map_update_elem(): only BPF_ANY.
  update(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (flags !== BPF_ANY) return -EINVAL;
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -E2BIG;
    const fd = keyIndex(value);
    const target = this.resolveFd?.(fd);
    if (target === undefined) return -EBADF;
    this.put(index, { value: u32Bytes(fd), target });
    return 0;
  }

  // fd_array_map_delete_elem()
  delete(key: Uint8Array): number {
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -E2BIG;
    if (!this.slots.has(index)) return -ENOENT;
    this.put(index, undefined);
    return 0;
  }

  protected blank(): FdArrayMap<T> {
    return new FdArrayMap<T>(this.def, this.cpus);
  }
}

/** A BPF_PERF_EVENT_OUTPUT perf event, bound to one CPU. */
export interface PerfEvent {
  cpu: number;
}

/** A sample written by bpf_perf_event_output(). */
export interface PerfSample {
  cpu: number;
  /** The perf event array index the sample went to. */
  index: number;
  data: Uint8Array;
}

/**
 * BPF_MAP_TYPE_PERF_EVENT_ARRAY. A new map has, at index i < min(cpus, max_entries), an event on
 * CPU i: what libbpf's perf_buffer__new installs before a program runs.
 */
export class PerfEventArrayMap extends FdArrayMap<PerfEvent> {
  samples: PerfSample[] = [];

  constructor(def: MapDef, cpus: number, empty = false) {
    super(def, cpus);
    if (!empty) for (let cpu = 0; cpu < Math.min(cpus, def.maxEntries); cpu++) this.slots.set(cpu, { value: u32Bytes(cpu), target: { cpu } });
  }

  /** No syscall lookup for perf event arrays (no map_fd_sys_lookup_elem). */
  override lookupSys(_key: Uint8Array): Uint8Array | number {
    return -EOPNOTSUPP;
  }

  /**
   * __bpf_perf_event_output(): `flags` is the index (or BPF_F_CURRENT_CPU) with any context length
   * bits (BPF_F_CTXLEN_MASK) already taken off by the helper.
   */
  output(data: Uint8Array, flags: number, cpu: number): number {
    if (flags > BPF_F_INDEX_MASK) return -EINVAL;
    const index = flags === BPF_F_CURRENT_CPU ? cpu : flags;
    if (index >= this.def.maxEntries) return -E2BIG;
    const event = this.slots.get(index)?.target;
    if (!event) return -ENOENT;
    if (event.cpu !== cpu) return -EOPNOTSUPP;
    const sample = { cpu, index, data: data.slice() };
    this.samples.push(sample);
    if (this.onMutate) this.onMutate({ op: 'output', key: indexKey(index), after: sample.data.slice(), cpu });
    return 0;
  }

  protected override blank(): PerfEventArrayMap {
    return new PerfEventArrayMap(this.def, this.cpus, true);
  }

  override clone(remap?: (target: PerfEvent) => PerfEvent): PerfEventArrayMap {
    const c = super.clone(remap) as PerfEventArrayMap;
    c.samples = this.samples.map((s) => ({ ...s, data: s.data.slice() }));
    return c;
  }
}

/** BPF_MAP_TYPE_HASH_OF_MAPS: a hash map whose values are inner maps. */
export class HashOfMapsMap<T> extends BpfMap {
  resolveFd?: (fd: number) => T | undefined;
  private index: KeyIndex;
  private slots: (Slot<T> | undefined)[] = [];

  constructor(def: MapDef, cpus: number) {
    super(def, cpus);
    this.index = new KeyIndex(def.keySize, def.maxEntries);
  }

  get count(): number {
    return this.index.count;
  }

  /** The inner map at `key`, as a program's bpf_map_lookup_elem() returns it. */
  lookupTarget(key: Uint8Array): T | undefined {
    const e = this.index.find(key);
    return e < 0 ? undefined : this.slots[e]?.target;
  }

  /** Installs `target` at `key` (undefined removes it); `fd` is the u32 shown in dumps. */
  setSlot(key: Uint8Array, target: T | undefined, fd = 0): void {
    if (target === undefined) {
      this.delete(key);
      return;
    }
    const ret = this.updateTarget(key, target, fd, BPF_ANY);
    if (ret) throw new MapError(`map '${this.def.name}': no room for another inner map (max_entries ${this.def.maxEntries})`);
  }

  lookupSys(key: Uint8Array): Uint8Array | number {
    const e = this.index.find(key);
    return e < 0 ? -ENOENT : this.slots[e]!.value.slice();
  }

  // bpf_fd_htab_map_update_elem(): the fd is resolved first, then htab_map_update_elem() rules.
  update(key: Uint8Array, value: Uint8Array, flags: number): number {
    const fd = keyIndex(value);
    const target = this.resolveFd?.(fd);
    if (target === undefined) return -EBADF;
    return this.updateTarget(key, target, fd, flags);
  }

  private updateTarget(key: Uint8Array, target: T, fd: number, flags: number): number {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST || flags & BPF_F_LOCK) return -EINVAL;
    let e = this.index.find(key);
    const err = checkFlags(e >= 0, flags);
    if (err) return err;
    const hook = this.onMutate;
    const before = e >= 0 && hook ? this.slots[e]!.value.slice() : undefined;
    if (e < 0) {
      if (this.index.count >= this.def.maxEntries) return -E2BIG;
      e = this.index.insert(key);
    }
    this.slots[e] = { value: u32Bytes(fd), target };
    if (hook) hook({ op: 'update', key: key.slice(0, this.def.keySize), before, after: u32Bytes(fd) });
    return 0;
  }

  delete(key: Uint8Array): number {
    const e = this.index.find(key);
    if (e < 0) return -ENOENT;
    const before = this.slots[e]!.value;
    this.index.remove(e);
    this.slots[e] = undefined;
    if (this.onMutate) this.onMutate({ op: 'delete', key: key.slice(0, this.def.keySize), before });
    return 0;
  }

  getNextKey(key: Uint8Array | undefined): Uint8Array | undefined {
    const at = key ? this.index.find(key) : -1;
    const next = at < 0 ? this.index.first() : this.index.next(at);
    return next < 0 ? undefined : this.index.keyAt(next);
  }

  *entries(): Iterable<MapEntry> {
    for (let e = this.index.first(); e >= 0; e = this.index.next(e)) yield { key: this.index.keyAt(e), value: this.slots[e]!.value.slice() };
  }

  /** A copy of the entries; targets are shared unless `remap` maps them. */
  clone(remap?: (target: T) => T): HashOfMapsMap<T> {
    const c = new HashOfMapsMap<T>(this.def, this.cpus);
    c.index = this.index.clone();
    c.slots = this.slots.map((s) => s && { value: s.value.slice(), target: s.target !== undefined && remap ? remap(s.target) : s.target });
    c.resolveFd = this.resolveFd;
    return c;
  }
}
