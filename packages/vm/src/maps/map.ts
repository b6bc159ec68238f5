// The interface every Rewind map offers the VM, the helpers and the CLI. Operations mirror the
// kernel's struct bpf_map_ops: they take keys and values as bytes and return 0 or a negative
// errno exactly where the kernel's implementation for that map type does.

import { RewindError } from '../errors.js';
import { BPF_MAP_TYPE, type MapDef, type MapTypeName } from '../program.js';
import { BPF_F_RDONLY_PROG, ENOTSUPP, errnoName } from './uapi.js';

/** A change to a map, reported to `onMutate` (writes through value views are not reported). */
export interface MapMutation {
  op: 'update' | 'delete' | 'push' | 'pop' | 'reserve' | 'submit' | 'discard' | 'output';
  key?: Uint8Array;
  /** The value before the change (absent for an insert). */
  before?: Uint8Array;
  /** The value after the change (absent for a delete). */
  after?: Uint8Array;
  /** The CPU whose copy changed, for a per-CPU value written from a program. */
  cpu?: number;
  /** Byte offset in the map's data area (ring buffer record header). */
  offset?: number;
}

export interface MapEntry {
  key: Uint8Array;
  /** A copy of the value; per-CPU maps concatenate every CPU's value, each padded to 8 bytes. */
  value: Uint8Array;
}

/** The map could not be created, for the reason the kernel's map_alloc_check would give. */
export class MapCreateError extends RewindError {
  override name = 'MapCreateError';
  constructor(
    readonly mapName: string,
    readonly reason: string,
    /** The negative errno BPF_MAP_CREATE returns, or 0 for a limit of Rewind's own. */
    readonly errno: number,
  ) {
    super(`map '${mapName}': ${reason}${errno ? ` (${errnoName(errno)})` : ''}`);
  }
}

/** A map was used with arguments that do not fit it (sizes, hex text, unknown offsets). */
export class MapError extends RewindError {
  override name = 'MapError';
}

const TYPE_NAMES: Record<number, MapTypeName> = Object.fromEntries(
  Object.entries(BPF_MAP_TYPE).map(([name, id]) => [id, name as MapTypeName]),
);

export function mapTypeName(type: number): MapTypeName | undefined {
  return TYPE_NAMES[type];
}

/** round_up(x, 8): the distance between values in the kernel's element arrays. */
export function roundUp8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** A key of 4 bytes read as the kernel reads `*(u32 *)key` on a little-endian machine. */
export function keyIndex(key: Uint8Array): number {
  return (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
}

export function indexKey(index: number): Uint8Array {
  const k = new Uint8Array(4);
  k[0] = index;
  k[1] = index >>> 8;
  k[2] = index >>> 16;
  k[3] = index >>> 24;
  return k;
}

export abstract class BpfMap {
  readonly type: MapTypeName;
  readonly cpus: number;
  /** Called on every change made through the map's operations; unset costs nothing. */
  onMutate?: (ev: MapMutation) => void;

  constructor(
    readonly def: MapDef,
    cpus: number,
  ) {
    this.type = mapTypeName(def.type) ?? 'unspec';
    this.cpus = cpus;
  }

  get name(): string {
    return this.def.name;
  }
  get keySize(): number {
    return this.def.keySize;
  }
  get valueSize(): number {
    return this.def.valueSize;
  }
  get maxEntries(): number {
    return this.def.maxEntries;
  }
  /** Programs may only read values (BPF_F_RDONLY_PROG, .rodata, devmap). */
  get rdonlyProg(): boolean {
    return (this.def.flags & BPF_F_RDONLY_PROG) !== 0;
  }

  /** bpf_map_lookup_elem() from a program: a live view of the value (this CPU's copy), or undefined. */
  lookup(_key: Uint8Array, _cpu = 0): Uint8Array | undefined {
    return undefined;
  }

  /**
   * BPF_MAP_LOOKUP_ELEM from user space: a copy of the value (per-CPU maps: every CPU's value,
   * each padded to 8 bytes, as bpf_map_value_size() lays them out), or a negative errno.
   */
  abstract lookupSys(key: Uint8Array): Uint8Array | number;

  /** bpf_map_update_elem(): 0 or a negative errno. Per-CPU maps write `cpu`'s copy only. */
  abstract update(key: Uint8Array, value: Uint8Array, flags: number, cpu?: number): number;

  /** BPF_MAP_UPDATE_ELEM of a per-CPU map from user space: `values` holds every CPU's value. */
  updateAllCpus(key: Uint8Array, values: Uint8Array, flags: number): number {
    return this.update(key, values, flags);
  }

  abstract delete(key: Uint8Array): number;

  /** BPF_MAP_GET_NEXT_KEY: the key after `key` (the first key for undefined or a missing key). */
  abstract getNextKey(key: Uint8Array | undefined): Uint8Array | undefined;

  /** Every entry, in the order getNextKey visits them. */
  abstract entries(): Iterable<MapEntry>;

  /** bpf_map_push_elem(): 0 or a negative errno. */
  push(_value: Uint8Array, _flags: number): number {
    return -ENOTSUPP;
  }
  /** bpf_map_pop_elem(): copies the value into `out`. */
  pop(_out: Uint8Array): number {
    return -ENOTSUPP;
  }
  /** bpf_map_peek_elem(): copies the value into `out`. */
  peek(_out: Uint8Array): number {
    return -ENOTSUPP;
  }

  /** A deep copy of the map's state (without `onMutate`). */
  abstract clone(): BpfMap;
}

/**
 * A map whose values programs point into. A pointer is (map, slot * stride + offset in value);
 * per-CPU maps give every CPU's copy its own slot.
 */
export interface ValueMap {
  /** valueSize rounded up to 8. */
  readonly stride: number;
  /** Upper bound of slot indexes: stride * slotCount < 2^32. */
  readonly slotCount: number;
  /** The slot of `key`'s value (for per-CPU maps, `cpu`'s copy), or -1. */
  lookupSlot(key: Uint8Array, cpu: number): number;
  /** A live view of valueSize bytes of a slot; writes change the map. */
  valueBytes(slot: number): Uint8Array;
  /** The slot's bytes without allocating storage: do not write to the result. */
  readValue(slot: number): Uint8Array;
  /**
   * The backing array that holds `slot` (allocated on first use), for reads and writes without
   * creating a view: the value is at [pageOffset(slot), pageOffset(slot) + valueSize).
   */
  pageOf(slot: number): Uint8Array;
  pageOffset(slot: number): number;
  /**
   * The key (and CPU, for per-CPU maps) whose value is in `slot` now, or undefined when the slot
   * holds no element: a recorder names the entry a write through a value pointer changed.
   */
  slotKey?(slot: number): { key: Uint8Array; cpu: number } | undefined;
}

export function isValueMap(m: BpfMap): m is BpfMap & ValueMap {
  return typeof (m as Partial<ValueMap>).lookupSlot === 'function';
}

/** Rewind addresses a map's values with 32-bit offsets. */
export function checkValueSpace(def: MapDef, stride: number, slotCount: number): void {
  if (stride * slotCount >= 2 ** 32) {
    throw new MapCreateError(
      def.name,
      `${slotCount} values of ${stride} bytes need ${stride * slotCount} bytes, more than the 4 GiB Rewind can address in one map`,
      0,
    );
  }
}
