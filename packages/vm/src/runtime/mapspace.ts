// Maps in the machine's memory. Each map has a handle region (what `lddw r1, map` loads; not
// dereferenceable) and its values are reached through value regions: a lookup that finds slot
// S gets a region of exactly valueSize bytes over the map's own storage, so every access
// through the returned pointer is bounds-checked against that one value (`map_value(flows)+4`)
// and the compiled code reads and writes it inline. Value regions made during a run are
// released when the run ends (programs cannot keep pointers across runs); those of global data
// (.rodata, .data, .bss) live as long as the session.

import { Fault } from '../errors.js';
import { MAX_REGIONS, REGION_HI_BASE, type Memory, type Region, type RegionHandler } from '../engine/memory.js';
import type { BpfMap, ValueMap } from '../maps/map.js';
import { isValueMap } from '../maps/map.js';
import { BPF_F_RDONLY_PROG } from '../maps/uapi.js';

interface MapEntryState {
  map: BpfMap;
  handle: Region;
  /** (slot → region index) for value regions made in the current run. */
  values: Map<number, number>;
  /** (slot → region index) for value regions kept for the session (global data). */
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

export class MapSpace {
  private readonly entries: MapEntryState[] = [];
  private readonly byRegion = new Map<number, { entry: MapEntryState; slot: number }>();

  constructor(
    private readonly mem: Memory,
    readonly maps: readonly BpfMap[],
  ) {
    for (const map of maps) {
      const index = mem.nextIndex();
      const label = `map(${map.name})`;
      const handle = mem.define({ index, kind: 'map', name: map.name, label, base: 0, lo: 0, hi: 0, origin: 0, readable: false, writable: false, handler: noAccess(label) });
      this.entries.push({ map, handle, values: new Map(), fixed: new Map() });
    }
  }

  /** The value of lddw with BPF_PSEUDO_MAP_IDX: a pointer to the map's handle. */
  handlePointer(mapIndex: number): { lo: number; hi: number } {
    return { lo: 0, hi: REGION_HI_BASE + this.entries[mapIndex]!.handle.index };
  }

  /** The map a pointer refers to, or undefined when it is not a map handle. */
  mapOfPointer(lo: number, hi: number): BpfMap | undefined {
    if (lo !== 0) return undefined;
    const i = (hi - REGION_HI_BASE) >>> 0;
    return this.entries.find((e) => e.handle.index === i)?.map;
  }

  mapIndexOf(map: BpfMap): number {
    return this.entries.findIndex((e) => e.map === map);
  }

  /** A pointer to `off` bytes into the value in `slot` (made for this run, or for the session). */
  valuePointer(mapIndex: number, slot: number, off = 0, pc = -1, session = false): { lo: number; hi: number } {
    const entry = this.entries[mapIndex]!;
    const cache = session ? entry.fixed : entry.values;
    let index = entry.fixed.get(slot) ?? cache.get(slot);
    if (index === undefined) {
      const map = entry.map as BpfMap & ValueMap;
      if (!isValueMap(entry.map)) throw new Error(`internal: map ${entry.map.name} has no values to point into`);
      index = this.mem.nextIndex();
      if (index < 0) throw new Fault(`fault at insn ${pc}: more than ${MAX_REGIONS} map values pointed to in one run`, 'helper', pc);
      const page = map.pageOf(slot);
      const readonly = (map.def.flags & BPF_F_RDONLY_PROG) !== 0;
      this.mem.define({
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
      });
      cache.set(slot, index);
      this.byRegion.set(index, { entry, slot });
    }
    return { lo: off, hi: REGION_HI_BASE + index };
  }

  /** Which map and slot a value region holds. */
  valueOfRegion(index: number): { map: BpfMap; slot: number } | undefined {
    const v = this.byRegion.get(index);
    return v && { map: v.entry.map, slot: v.slot };
  }

  /** Forgets the value regions of the run that ended (the memory releases the ids). */
  endRun(): void {
    for (const e of this.entries) {
      for (const index of e.values.values()) this.byRegion.delete(index);
      e.values.clear();
    }
  }
}
