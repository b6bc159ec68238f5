// Map contents as a trace rebuilds them: per map, the entries by key (values laid out as user
// space reads them: per-CPU maps hold every CPU's value, each padded to 8 bytes), or the items of
// a queue or stack. Built from the recorded operations and the net changes runs and keyframes
// carry, never by running a map implementation.

import { BPF_MAP_TYPE, roundUp8, type MapDef } from '@rewind/vm';
import type { MapsState } from './types.js';

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

const T = BPF_MAP_TYPE as Record<string, number>;
const PERCPU = new Set([T.percpu_array, T.percpu_hash, T.lru_percpu_hash]);
const ARRAYS = new Set([T.array, T.percpu_array]);
const LISTS = new Set([T.queue, T.stack]);
/** Maps that hold no entries to show: their output is events. */
const NO_ENTRIES = new Set([T.ringbuf, T.perf_event_array, T.bloom_filter]);

export interface MapEntryValue {
  key: Uint8Array;
  /** Every CPU's value for per-CPU maps (stride roundUp8(valueSize)), else valueSize bytes. */
  value: Uint8Array;
}

export class MapState {
  /** Entries by map index, then by key in hex. */
  readonly entries: Map<string, MapEntryValue>[];
  /** Items of queues and stacks (front first for a queue, top first for a stack). */
  readonly lists: (Uint8Array[] | undefined)[];

  constructor(
    readonly defs: readonly MapDef[],
    readonly cpus: number,
    from?: MapState,
  ) {
    this.entries = defs.map((_, i) => new Map(from ? [...from.entries[i]!].map(([k, e]) => [k, { key: e.key, value: e.value.slice() }]) : []));
    this.lists = defs.map((d, i) => (LISTS.has(d.type) ? [...(from?.lists[i] ?? [])] : undefined));
  }

  clone(): MapState {
    return new MapState(this.defs, this.cpus, this);
  }

  percpu(map: number): boolean {
    return PERCPU.has(this.defs[map]!.type);
  }

  /** Bytes of a value as user space sees it. */
  valueBytes(map: number): number {
    const d = this.defs[map]!;
    return this.percpu(map) ? this.cpus * roundUp8(d.valueSize) : d.valueSize;
  }

  /** The entry's value (all CPUs), created zeroed when absent and `create`. */
  get(map: number, key: Uint8Array, create = false): Uint8Array | undefined {
    const m = this.entries[map]!;
    const id = hex(key);
    let e = m.get(id);
    if (!e && create) m.set(id, (e = { key: key.slice(), value: new Uint8Array(this.valueBytes(map)) }));
    return e?.value;
  }

  /** Sets an entry (all CPUs), or deletes it (null). */
  set(map: number, key: Uint8Array, value: Uint8Array | null): void {
    const m = this.entries[map]!;
    const id = hex(key);
    if (value === null) {
      m.delete(id);
      return;
    }
    const e = m.get(id);
    const size = this.valueBytes(map);
    if (e) e.value.set(value.subarray(0, size));
    else {
      const v = new Uint8Array(size);
      v.set(value.subarray(0, size));
      m.set(id, { key: key.slice(), value: v });
    }
  }

  /** One CPU's value of an entry (a view: writes change the entry). */
  cpuView(map: number, key: Uint8Array, cpu: number, create = true): Uint8Array | undefined {
    const v = this.get(map, key, create);
    if (!v) return undefined;
    const d = this.defs[map]!;
    if (!this.percpu(map)) return v.subarray(0, d.valueSize);
    const stride = roundUp8(d.valueSize);
    return v.subarray(cpu * stride, cpu * stride + d.valueSize);
  }

  /** Applies a recorded map operation (BpfMap.onMutate). */
  apply(ev: { map: number; op: string; key?: Uint8Array; after?: Uint8Array; cpu?: number }): void {
    const d = this.defs[ev.map];
    if (!d || NO_ENTRIES.has(d.type)) return;
    const list = this.lists[ev.map];
    if (list) {
      if (ev.op === 'push' && ev.after) {
        // The recorded queue/stack order: a queue pops from the front, a stack from the top.
        if (d.type === T.stack) list.unshift(ev.after.slice());
        else list.push(ev.after.slice());
      } else if (ev.op === 'pop') list.shift();
      return;
    }
    if (!ev.key) return;
    if (ev.op === 'delete') this.set(ev.map, ev.key, null);
    else if (ev.op === 'update' && ev.after) {
      if (ev.cpu !== undefined && this.percpu(ev.map)) {
        // A program's update writes its CPU's copy; a new element starts zero on the others.
        const view = this.cpuView(ev.map, ev.key, ev.cpu)!;
        view.set(ev.after.subarray(0, d.valueSize));
      } else this.set(ev.map, ev.key, ev.after);
    }
  }

  /** Applies net changes as runs and keyframes carry them (`mapChanges` in recorder.ts). */
  applyChanges(changes: readonly { map: number; key?: Uint8Array | null; value?: Uint8Array | null; items?: Uint8Array[] }[]): void {
    for (const c of changes) {
      if (c.items) {
        const list = this.lists[c.map];
        if (list) list.splice(0, list.length, ...c.items.map((x) => x.slice()));
        continue;
      }
      if (c.key) this.set(c.map, c.key, c.value ?? null);
    }
  }

  /** The maps in the shape of `rewind run --json`: arrays without their all-zero values, keys in order. */
  dump(names?: readonly string[]): MapsState {
    const out: MapsState = {};
    this.defs.forEach((d, i) => {
      if (names && !names.includes(d.name)) return;
      const list = this.lists[i];
      if (list) {
        out[d.name] = list.map((v) => ({ key: '', value: hex(v) }));
        return;
      }
      if (NO_ENTRIES.has(d.type)) {
        out[d.name] = [];
        return;
      }
      const array = ARRAYS.has(d.type);
      const rows = [...this.entries[i]!.values()].filter((e) => !array || e.value.some((b) => b !== 0));
      rows.sort((a, b) => (array ? keyNum(a.key) - keyNum(b.key) : compareBytes(a.key, b.key)));
      out[d.name] = rows.map((e) => {
        if (!this.percpu(i)) return { key: hex(e.key), value: hex(e.value) };
        const stride = roundUp8(d.valueSize);
        return { key: hex(e.key), value: Array.from({ length: this.cpus }, (_, c) => hex(e.value.subarray(c * stride, c * stride + d.valueSize))) };
      });
    });
    return out;
  }
}

function keyNum(k: Uint8Array): number {
  return (k[0]! | (k[1]! << 8) | (k[2]! << 16) | (k[3]! << 24)) >>> 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
