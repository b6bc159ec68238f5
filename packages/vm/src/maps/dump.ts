// Map contents as JSON-friendly hex, for the CLI: dumpMap() writes them, loadMapEntries() reads
// them back into a map through the same operations user space would use.

import { ArrayMap } from './array.js';
import { BloomFilterMap } from './bloom_filter.js';
import { PerfEventArrayMap } from './fd_maps.js';
import { HashMap } from './hashtab.js';
import { MapError, roundUp8, type BpfMap } from './map.js';
import { QueueStackMap } from './queue_stack.js';
import { RingbufMap } from './ringbuf.js';
import { BPF_ANY, errnoName } from './uapi.js';

export interface MapDumpEntry {
  /** Key bytes in hex ('' for queues and stacks). */
  key: string;
  /** Value bytes in hex; per-CPU maps give one string per CPU. */
  value: string | string[];
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
  return s;
}

/** Hex bytes, optionally prefixed with 0x and separated by spaces: `0a000001`, `0a 00 00 01`. */
export function parseHex(text: string, what: string): Uint8Array {
  const digits = text.replace(/^0x/i, '').replace(/\s+/g, '');
  if (digits.length % 2 !== 0 || /[^0-9a-f]/i.test(digits)) throw new MapError(`${what}: '${text}' is not hex bytes`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.substr(2 * i, 2), 16);
  return out;
}

function isPerCpu(map: BpfMap): map is ArrayMap | HashMap {
  return (map instanceof ArrayMap || map instanceof HashMap) && map.percpu;
}

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]) return false;
  return true;
}

/**
 * The map's elements. Hash-like maps, tries, queues and slot maps list every element; arrays list
 * only indexes whose value is not all zeros (per-CPU: not zero on some CPU). Ring buffers and
 * perf event arrays hold no elements (their output is in `samples`).
 */
export function dumpMap(map: BpfMap): MapDumpEntry[] {
  if (map instanceof RingbufMap || map instanceof PerfEventArrayMap || map instanceof BloomFilterMap) return [];
  const out: MapDumpEntry[] = [];
  const array = map instanceof ArrayMap;
  for (const { key, value } of map.entries()) {
    if (array && allZero(value)) continue;
    if (isPerCpu(map)) {
      const values: string[] = [];
      for (let cpu = 0; cpu < map.cpus; cpu++) values.push(toHex(value.subarray(cpu * map.stride, cpu * map.stride + map.valueSize)));
      out.push({ key: toHex(key), value: values });
    } else {
      out.push({ key: toHex(key), value: toHex(value) });
    }
  }
  return out;
}

/**
 * Writes entries (as dumpMap gives them) into the map with BPF_ANY updates, as user space would:
 * per-CPU values set every CPU (a single string sets all CPUs alike), queues and stacks are
 * pushed so that a dump lists them in the same order. Throws MapError naming the failing entry.
 */
export function loadMapEntries(map: BpfMap, entries: MapDumpEntry[]): void {
  const where = (i: number) => `map '${map.name}': entry ${i}`;
  const value1 = (v: string | string[], i: number): Uint8Array => {
    if (Array.isArray(v)) throw new MapError(`${where(i)}: map is not per-CPU, expected one value string`);
    return sized(parseHex(v, `${where(i)} value`), map.valueSize, `${where(i)} value`);
  };
  const check = (ret: number, i: number, op: string) => {
    if (ret < 0) throw new MapError(`${where(i)}: ${op} failed with ${errnoName(ret)}`);
  };

  if (map instanceof QueueStackMap || map instanceof BloomFilterMap) {
    // A stack dump lists the top first: push bottom-up.
    const order = map instanceof QueueStackMap && map.stack ? entries.map((_, i) => entries.length - 1 - i) : entries.map((_, i) => i);
    for (const i of order) check(map.push(value1(entries[i].value, i), BPF_ANY), i, 'push');
    return;
  }
  entries.forEach((e, i) => {
    const key = sized(parseHex(e.key, `${where(i)} key`), map.keySize, `${where(i)} key`);
    if (isPerCpu(map)) {
      const stride = roundUp8(map.valueSize);
      const all = new Uint8Array(map.cpus * stride);
      const per = Array.isArray(e.value) ? e.value : new Array<string>(map.cpus).fill(e.value);
      if (per.length !== map.cpus) throw new MapError(`${where(i)}: ${per.length} per-CPU values for ${map.cpus} CPUs`);
      per.forEach((v, cpu) => all.set(sized(parseHex(v, `${where(i)} value of CPU ${cpu}`), map.valueSize, `${where(i)} value of CPU ${cpu}`), cpu * stride));
      check(map.updateAllCpus(key, all, BPF_ANY), i, 'update');
    } else {
      check(map.update(key, value1(e.value, i), BPF_ANY), i, 'update');
    }
  });
}

function sized(b: Uint8Array, size: number, what: string): Uint8Array {
  if (b.length !== size) throw new MapError(`${what} has ${b.length} bytes, expected ${size}`);
  return b;
}
