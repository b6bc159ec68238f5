// Redirect targets for XDP: BPF_MAP_TYPE_DEVMAP and DEVMAP_HASH (kernel/bpf/devmap.c),
// BPF_MAP_TYPE_CPUMAP (kernel/bpf/cpumap.c) and BPF_MAP_TYPE_XSKMAP (net/xdp/xskmap.c).
//
// Values keep the bytes user space wrote: struct bpf_devmap_val { u32 ifindex; int prog_fd; },
// struct bpf_cpumap_val { u32 qsize; int prog_fd; }, an AF_XDP socket fd. A program attached to a
// devmap or cpumap entry (prog_fd > 0), or the socket of an xskmap entry, is the slot's target,
// found through `resolveFd`. Rewind has no network devices: any non-zero ifindex is accepted
// where the kernel would look the device up and fail with -EINVAL for an unknown one.

import type { MapDef } from '../program.js';
import { SlotArrayMap, type Slot } from './fd_maps.js';
import { KeyIndex } from './keyindex.js';
import { BpfMap, MapError, keyIndex, type MapEntry, type ValueMap } from './map.js';
import { PagedStore } from './paged.js';
import { BPF_EXIST, BPF_NOEXIST, E2BIG, EBADF, EEXIST, EINVAL, ENODEV, ENOENT, ENOMEM, EOPNOTSUPP, EOVERFLOW } from './uapi.js';

function u32At(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

/** The `int bpf_prog.fd` member of a devmap/cpumap value (0 when the value is 4 bytes). */
function progFdOf(value: Uint8Array, valueSize: number): number {
  return valueSize >= 8 ? u32At(value, 4) | 0 : 0;
}

/** BPF_MAP_TYPE_DEVMAP: an array of devices, read-only to programs (lookups point at the value). */
export class DevMap<T> extends SlotArrayMap<T> implements ValueMap {
  readonly stride = 8;
  get slotCount(): number {
    return this.def.maxEntries;
  }
  /** dev_map_init_map() sets BPF_F_RDONLY_PROG: lookups return a pointer to the device's value. */
  override get rdonlyProg(): boolean {
    return true;
  }

  lookupSlot(key: Uint8Array, cpu: number): number {
    const index = keyIndex(key);
    return cpu < this.cpus && this.slots.has(index) ? index : -1;
  }
  valueBytes(slot: number): Uint8Array {
    return this.slots.get(slot)?.value ?? new Uint8Array(this.def.valueSize);
  }
  readValue(slot: number): Uint8Array {
    return this.valueBytes(slot);
  }
  pageOf(slot: number): Uint8Array {
    return this.valueBytes(slot);
  }
  pageOffset(_slot: number): number {
    return 0;
  }
  override lookup(key: Uint8Array, cpu = 0): Uint8Array | undefined {
    const slot = this.lookupSlot(key, cpu);
    return slot < 0 ? undefined : this.valueBytes(slot);
  }

  /** Installs a device (ifindex 0 clears the index) and the program attached to it. */
  setSlot(index: number, ifindex: number, prog?: T, progFd = 0): void {
    if (index >= this.def.maxEntries) throw new MapError(`map '${this.def.name}': index ${index} is past max_entries ${this.def.maxEntries}`);
    this.put(index, ifindex ? { value: devValue(ifindex, progFd, this.def.valueSize), target: prog } : undefined);
  }

  // __dev_map_update_elem()
  update(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (flags > BPF_EXIST) return -EINVAL;
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -E2BIG;
    if (flags === BPF_NOEXIST) return -EEXIST;
    const ifindex = u32At(value, 0);
    const progFd = progFdOf(value, this.def.valueSize);
    if (!ifindex) {
      // An fd without a device is refused; ifindex 0 otherwise empties the index.
      if (progFd > 0) return -EINVAL;
      this.put(index, undefined);
      return 0;
    }
    const slot = devSlot(value, this.def.valueSize, progFd, this.resolveFd);
    if (typeof slot === 'number') return slot;
    this.put(index, slot);
    return 0;
  }

  // dev_map_delete_elem(): deleting an empty index succeeds.
  delete(key: Uint8Array): number {
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -EINVAL;
    if (this.slots.has(index)) this.put(index, undefined);
    return 0;
  }

  protected blank(): DevMap<T> {
    return new DevMap<T>(this.def, this.cpus);
  }
}

function devValue(ifindex: number, progFd: number, valueSize: number): Uint8Array {
  const v = new Uint8Array(valueSize);
  const dv = new DataView(v.buffer);
  dv.setUint32(0, ifindex, true);
  if (valueSize >= 8) dv.setInt32(4, progFd, true);
  return v;
}

/** __dev_map_alloc_node(): a program fd that does not name an XDP program is -EINVAL. */
function devSlot<T>(value: Uint8Array, valueSize: number, progFd: number, resolve: ((fd: number) => T | undefined) | undefined): Slot<T> | number {
  let target: T | undefined;
  if (progFd > 0) {
    target = resolve?.(progFd);
    if (target === undefined) return -EINVAL;
  }
  return { value: value.slice(0, valueSize), target };
}

/** BPF_MAP_TYPE_DEVMAP_HASH: devices keyed by any u32 (usually the ifindex). */
export class DevMapHash<T> extends BpfMap implements ValueMap {
  readonly stride = 8;
  resolveFd?: (fd: number) => T | undefined;
  private index: KeyIndex;
  private store: PagedStore;
  private targets: (T | undefined)[] = [];

  constructor(def: MapDef, cpus: number) {
    super(def, cpus);
    this.index = new KeyIndex(4, def.maxEntries);
    this.store = new PagedStore(def.maxEntries, this.stride);
  }

  get slotCount(): number {
    return this.def.maxEntries;
  }
  override get rdonlyProg(): boolean {
    return true;
  }
  get count(): number {
    return this.index.count;
  }

  lookupSlot(key: Uint8Array, cpu: number): number {
    return cpu < this.cpus ? this.index.find(key) : -1;
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
  /** The program attached to the device at `key`. */
  lookupTarget(key: Uint8Array): T | undefined {
    const e = this.index.find(key);
    return e < 0 ? undefined : this.targets[e];
  }

  lookupSys(key: Uint8Array): Uint8Array | number {
    const e = this.index.find(key);
    return e < 0 ? -ENOENT : this.store.read(e, this.def.valueSize).slice();
  }

  // __dev_map_hash_update_elem(): BPF_EXIST is not checked, so it inserts too.
  update(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (flags > BPF_EXIST) return -EINVAL;
    let e = this.index.find(key);
    if (e >= 0 && flags & BPF_NOEXIST) return -EEXIST;
    // dev_get_by_index(net, 0) finds no device.
    if (!u32At(value, 0)) return -EINVAL;
    const slot = devSlot(value, this.def.valueSize, progFdOf(value, this.def.valueSize), this.resolveFd);
    if (typeof slot === 'number') return slot;
    if (e < 0 && this.index.count >= this.def.maxEntries) return -E2BIG;
    const hook = this.onMutate;
    const before = e >= 0 && hook ? this.store.read(e, this.def.valueSize).slice() : undefined;
    if (e < 0) e = this.index.insert(key);
    this.store.write(e, slot.value);
    this.targets[e] = slot.target;
    if (hook) hook({ op: 'update', key: key.slice(0, 4), before, after: slot.value.slice() });
    return 0;
  }

  delete(key: Uint8Array): number {
    const e = this.index.find(key);
    if (e < 0) return -ENOENT;
    const before = this.onMutate ? this.store.read(e, this.def.valueSize).slice() : undefined;
    this.index.remove(e);
    this.targets[e] = undefined;
    if (this.onMutate) this.onMutate({ op: 'delete', key: key.slice(0, 4), before });
    return 0;
  }

  getNextKey(key: Uint8Array | undefined): Uint8Array | undefined {
    const at = key ? this.index.find(key) : -1;
    const next = at < 0 ? this.index.first() : this.index.next(at);
    return next < 0 ? undefined : this.index.keyAt(next);
  }

  *entries(): Iterable<MapEntry> {
    for (let e = this.index.first(); e >= 0; e = this.index.next(e)) {
      yield { key: this.index.keyAt(e), value: this.store.read(e, this.def.valueSize).slice() };
    }
  }

  clone(remap?: (target: T) => T): DevMapHash<T> {
    const c = new DevMapHash<T>(this.def, this.cpus);
    c.index = this.index.clone();
    c.store = this.store.clone();
    c.targets = this.targets.map((t) => (t !== undefined && remap ? remap(t) : t));
    c.resolveFd = this.resolveFd;
    return c;
  }
}

/** cpu_map_update_elem()'s sanity limit on the queue size. */
const CPUMAP_MAX_QSIZE = 16384;

/** BPF_MAP_TYPE_CPUMAP: index = destination CPU; programs only redirect into it. */
export class CpuMap<T> extends SlotArrayMap<T> {
  /** Installs a CPU entry with queue size `qsize` (0 clears it) and an attached program. */
  setSlot(index: number, qsize: number, prog?: T, progFd = 0): void {
    if (index >= this.def.maxEntries) throw new MapError(`map '${this.def.name}': index ${index} is past max_entries ${this.def.maxEntries}`);
    this.put(index, qsize ? { value: devValue(qsize, progFd, this.def.valueSize), target: prog } : undefined);
  }

  // cpu_map_update_elem()
  update(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (flags > BPF_EXIST) return -EINVAL;
    const cpu = keyIndex(key);
    if (cpu >= this.def.maxEntries) return -E2BIG;
    if (flags === BPF_NOEXIST) return -EEXIST;
    const qsize = u32At(value, 0);
    if (qsize > CPUMAP_MAX_QSIZE) return -EOVERFLOW;
    // The CPU must be a possible one.
    if (cpu >= this.cpus) return -ENODEV;
    if (qsize === 0) {
      this.put(cpu, undefined);
      return 0;
    }
    const progFd = progFdOf(value, this.def.valueSize);
    let target: T | undefined;
    if (progFd > 0) {
      // __cpu_map_entry_alloc() fails as a whole when the program cannot be loaded.
      target = this.resolveFd?.(progFd);
      if (target === undefined) return -ENOMEM;
    }
    this.put(cpu, { value: value.slice(0, this.def.valueSize), target });
    return 0;
  }

  // cpu_map_delete_elem()
  delete(key: Uint8Array): number {
    const cpu = keyIndex(key);
    if (cpu >= this.def.maxEntries) return -EINVAL;
    if (this.slots.has(cpu)) this.put(cpu, undefined);
    return 0;
  }

  protected blank(): CpuMap<T> {
    return new CpuMap<T>(this.def, this.cpus);
  }
}

/** BPF_MAP_TYPE_XSKMAP: AF_XDP sockets by queue index. */
export class XskMap<T> extends SlotArrayMap<T> {
  /** Installs a socket (undefined clears the index); `fd` is the u32 shown in dumps. */
  setSlot(index: number, socket: T | undefined, fd = 0): void {
    if (index >= this.def.maxEntries) throw new MapError(`map '${this.def.name}': index ${index} is past max_entries ${this.def.maxEntries}`);
    this.put(index, socket === undefined ? undefined : { value: devValue(fd, 0, 4), target: socket });
  }

  /** xsk_map_lookup_elem_sys_only(): user space cannot read sockets back. */
  override lookupSys(_key: Uint8Array): Uint8Array | number {
    return -EOPNOTSUPP;
  }

  // xsk_map_update_elem()
  update(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (flags > BPF_EXIST) return -EINVAL;
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -E2BIG;
    const socket = this.resolveFd?.(u32At(value, 0));
    if (socket === undefined) return -EBADF;
    const old = this.slots.get(index);
    if (old?.target === socket) return 0;
    if (old && flags === BPF_NOEXIST) return -EEXIST;
    if (!old && flags === BPF_EXIST) return -ENOENT;
    this.put(index, { value: value.slice(0, 4), target: socket });
    return 0;
  }

  // xsk_map_delete_elem()
  delete(key: Uint8Array): number {
    const index = keyIndex(key);
    if (index >= this.def.maxEntries) return -EINVAL;
    if (this.slots.has(index)) this.put(index, undefined);
    return 0;
  }

  protected blank(): XskMap<T> {
    return new XskMap<T>(this.def, this.cpus);
  }
}
