// Maps in the machine's memory. Each map has a handle region (what `lddw r1, map` loads; not
// dereferenceable) and its values are reached through value regions: a lookup that finds slot
// S gets a region of exactly valueSize bytes over the map's own storage, so every access
// through the returned pointer is bounds-checked against that one value (`map_value(flows)+4`)
// and the compiled code reads and writes it inline.
//
// A slot keeps its value region for the whole session: the slot's storage never moves (a hash
// map reuses a deleted slot for a later key, and a pointer still addresses that storage, as a
// pointer to a freed element does in the kernel), and programs cannot carry pointers from one
// run to the next, so a later run looking up the same slot gets the same region back without
// defining it again. When region ids run out, the regions the current run has not used are
// dropped. Value regions of global data (.rodata, .data, .bss) are pointed to by lddw
// immediates in compiled code and are never dropped.

import { Fault } from '../errors.js';
import { MAX_REGIONS, REGION_HI_BASE, type Memory, type Region, type RegionHandler } from '../engine/memory.js';
import type { BpfMap, ValueMap } from '../maps/map.js';
import { isValueMap } from '../maps/map.js';
import { BPF_F_RDONLY_PROG } from '../maps/uapi.js';

/** A value region kept for a slot. */
interface ValueRegion {
  index: number;
  /** The storage the region views (pageOf(slot) when it was made). */
  page: Uint8Array;
  /** The run that last handed it out. */
  run: number;
}

interface MapEntryState {
  map: BpfMap;
  mapIndex: number;
  handle: Region;
  /** (slot → region) for value regions kept across runs: an array for maps of up to DENSE_SLOTS slots. */
  values: Map<number, ValueRegion> | (ValueRegion | undefined)[];
  /** (slot → region index) for value regions lddw immediates point to (global data). */
  fixed: Map<number, number>;
}

const viewCache = new WeakMap<Uint8Array, DataView>();
function viewOf(page: Uint8Array): DataView {
  let v = viewCache.get(page);
  if (!v) viewCache.set(page, (v = new DataView(page.buffer, page.byteOffset, page.byteLength)));
  return v;
}

const noAccess = (what: string): RegionHandler => ({
  read: () => `${what} cannot be read by a program`,
  write: () => `${what} cannot be written by a program`,
  describe: (off) => (off ? `${what}+${off}` : what),
});

/** Maps with at most this many value slots keep their value regions in an array indexed by slot. */
const DENSE_SLOTS = 4096;

export class MapSpace {
  private readonly entries: MapEntryState[] = [];
  /** Handle region index → map index + 1 (0: not a handle). */
  private byHandle = new Int32Array(0);
  private readonly byMap = new Map<BpfMap, number>();
  private readonly byRegion = new Map<number, { entry: MapEntryState; slot: number }>();
  /** Number of the current run (see beginRun). */
  private run = 0;
  /** Called when a value region is defined (a recorder notes which map slot it views). */
  onRegion?: (index: number, mapIndex: number, slot: number) => void;

  constructor(
    private readonly mem: Memory,
    readonly maps: readonly BpfMap[],
  ) {
    for (const map of maps) {
      const index = mem.nextIndex();
      const label = `map(${map.name})`;
      const handle = mem.define({ index, kind: 'map', name: map.name, label, base: 0, lo: 0, hi: 0, origin: 0, readable: false, writable: false, handler: noAccess(label) });
      const mapIndex = this.entries.length;
      const dense = isValueMap(map) && map.slotCount <= DENSE_SLOTS;
      this.entries.push({ map, mapIndex, handle, values: dense ? [] : new Map(), fixed: new Map() });
      if (index >= this.byHandle.length) {
        const grown = new Int32Array(Math.max(64, 2 * index));
        grown.set(this.byHandle);
        this.byHandle = grown;
      }
      this.byHandle[index] = mapIndex + 1;
      if (!this.byMap.has(map)) this.byMap.set(map, mapIndex);
    }
    mem.onExhausted = () => this.dropUnused();
  }

  /** The value of lddw with BPF_PSEUDO_MAP_IDX: a pointer to the map's handle. */
  handlePointer(mapIndex: number): { lo: number; hi: number } {
    return { lo: 0, hi: REGION_HI_BASE + this.entries[mapIndex]!.handle.index };
  }

  /** The index of the map a pointer refers to, or -1 when it is not a map handle. */
  mapIndexOfPointer(lo: number, hi: number): number {
    const i = (hi - REGION_HI_BASE) >>> 0;
    if (lo !== 0 || i >= this.byHandle.length) return -1;
    return this.byHandle[i]! - 1;
  }

  /** The map a pointer refers to, or undefined when it is not a map handle. */
  mapOfPointer(lo: number, hi: number): BpfMap | undefined {
    const i = this.mapIndexOfPointer(lo, hi);
    return i < 0 ? undefined : this.entries[i]!.map;
  }

  mapIndexOf(map: BpfMap): number {
    return this.byMap.get(map) ?? -1;
  }

  /** A pointer to `off` bytes into the value in `slot` (for the session when `session`: lddw immediates). */
  valuePointer(mapIndex: number, slot: number, off = 0, pc = -1, session = false): { lo: number; hi: number } {
    return { lo: off, hi: REGION_HI_BASE + (session ? this.fixedRegion(mapIndex, slot, pc) : this.valueRegion(mapIndex, slot, pc)) };
  }

  /** The region index of the value in `slot`, for a pointer the current run hands to the program. */
  valueRegion(mapIndex: number, slot: number, pc = -1): number {
    const entry = this.entries[mapIndex]!;
    const fixed = entry.fixed.size ? entry.fixed.get(slot) : undefined;
    if (fixed !== undefined) return fixed;
    const map = entry.map as BpfMap & ValueMap;
    const values = entry.values;
    let v = Array.isArray(values) ? values[slot] : values.get(slot);
    if (v !== undefined) {
      v.run = this.run;
      // Storage that can be replaced (a devmap's value when user space updates the slot) gets a fresh view.
      if (map.pageOf(slot) === v.page) return v.index;
      this.drop(entry, slot, v);
    }
    const index = this.define(entry, slot, pc);
    v = { index, page: map.pageOf(slot), run: this.run };
    if (Array.isArray(values)) values[slot] = v;
    else values.set(slot, v);
    return index;
  }

  private drop(entry: MapEntryState, slot: number, v: ValueRegion): void {
    this.mem.remove(v.index);
    this.byRegion.delete(v.index);
    if (Array.isArray(entry.values)) entry.values[slot] = undefined;
    else entry.values.delete(slot);
  }

  private fixedRegion(mapIndex: number, slot: number, pc: number): number {
    const entry = this.entries[mapIndex]!;
    let index = entry.fixed.get(slot);
    if (index === undefined) {
      index = this.define(entry, slot, pc);
      entry.fixed.set(slot, index);
    }
    return index;
  }

  private define(entry: MapEntryState, slot: number, pc: number): number {
    if (!isValueMap(entry.map)) throw new Error(`internal: map ${entry.map.name} has no values to point into`);
    const map = entry.map;
    const index = this.mem.nextIndex();
    if (index < 0) throw new Fault(`fault at insn ${pc}: more than ${MAX_REGIONS} map values pointed to in one run`, 'helper', pc);
    const page = map.pageOf(slot);
    const readonly = (map.def.flags & BPF_F_RDONLY_PROG) !== 0;
    this.mem.define(
      {
        index,
        kind: 'map_value',
        name: map.name,
        label: `map_value(${map.name})`,
        view: viewOf(page),
        base: map.pageOffset(slot),
        lo: 0,
        hi: map.def.valueSize,
        origin: 0,
        readable: true,
        writable: !readonly,
      },
      true,
    );
    this.byRegion.set(index, { entry, slot });
    this.onRegion?.(index, entry.mapIndex, slot);
    return index;
  }

  /** Which map and slot a value region holds. */
  valueOfRegion(index: number): { map: BpfMap; slot: number } | undefined {
    const v = this.byRegion.get(index);
    return v && { map: v.entry.map, slot: v.slot };
  }

  /**
   * The value regions a program can have written in the current run: those handed out to it by
   * lookups, and every value region of global data (lddw immediates point to them).
   */
  writableRegions(): { index: number; mapIndex: number; slot: number }[] {
    const out: { index: number; mapIndex: number; slot: number }[] = [];
    for (const e of this.entries) {
      if (e.map.def.flags & BPF_F_RDONLY_PROG) continue;
      for (const [slot, index] of e.fixed) out.push({ index, mapIndex: e.mapIndex, slot });
      for (const [slot, v] of e.values.entries()) if (v !== undefined && v.run === this.run) out.push({ index: v.index, mapIndex: e.mapIndex, slot });
    }
    return out;
  }

  /** Starts a run: value regions handed out from now on belong to it. */
  beginRun(): void {
    this.run++;
  }

  /** Drops the kept value regions the current run has not handed out; true when it dropped any. */
  private dropUnused(): boolean {
    let dropped = false;
    for (const e of this.entries) {
      for (const [slot, v] of e.values.entries()) {
        if (v === undefined || v.run === this.run) continue;
        this.drop(e, slot, v);
        dropped = true;
      }
    }
    return dropped;
  }
}
