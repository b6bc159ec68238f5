import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { createMap } from './create.js';
import { CpuMap, DevMap, DevMapHash, XskMap } from './dev_maps.js';
import { FdArrayMap, HashOfMapsMap, PerfEventArrayMap } from './fd_maps.js';
import { isValueMap, type BpfMap } from './map.js';
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_CURRENT_CPU,
  BPF_NOEXIST,
  E2BIG,
  EBADF,
  EEXIST,
  EINVAL,
  ENODEV,
  ENOENT,
  ENOMEM,
  EOPNOTSUPP,
  EOVERFLOW,
} from './uapi.js';

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const pair = (a: number, b: number) => new Uint8Array(new Uint32Array([a, b]).buffer);

function def(type: keyof typeof BPF_MAP_TYPE, over: Partial<MapDef> = {}): MapDef {
  return { name: type, type: BPF_MAP_TYPE[type], keySize: 4, valueSize: 4, maxEntries: 4, flags: 0, ...over };
}

const inner: MapDef = def('array', { name: 'inner' });

describe('prog_array map', () => {
  it('holds programs by index for tail calls, updated with BPF_ANY only', () => {
    const m = createMap(def('prog_array')) as FdArrayMap<string>;
    m.resolveFd = (fd) => (fd === 5 ? 'xdp_pass' : undefined);
    expect(m.update(u32(1), u32(5), BPF_NOEXIST)).toBe(-EINVAL);
    expect(m.update(u32(4), u32(5), BPF_ANY)).toBe(-E2BIG);
    expect(m.update(u32(1), u32(6), BPF_ANY)).toBe(-EBADF);
    expect(m.update(u32(1), u32(5), BPF_ANY)).toBe(0);
    expect(m.lookupTarget(u32(1))).toBe('xdp_pass');
    expect(m.lookupTarget(2)).toBeUndefined();
    // Programs get no value pointer; user space reads back the u32 it wrote.
    expect(m.lookup(u32(1))).toBeUndefined();
    expect(m.lookupSys(u32(1))).toEqual(u32(5));
    expect(m.lookupSys(u32(0))).toBe(-ENOENT);
  });

  it('deletes: -E2BIG past the end, -ENOENT for an empty index', () => {
    const m = createMap(def('prog_array')) as FdArrayMap<string>;
    m.setSlot(2, 'p', 7);
    expect(m.delete(u32(4))).toBe(-E2BIG);
    expect(m.delete(u32(1))).toBe(-ENOENT);
    expect(m.delete(u32(2))).toBe(0);
    expect(m.lookupTarget(2)).toBeUndefined();
  });

  it('iterates every index like an array', () => {
    const m = createMap(def('prog_array', { maxEntries: 2 }));
    expect(m.getNextKey(undefined)).toEqual(u32(0));
    expect(m.getNextKey(u32(0))).toEqual(u32(1));
    expect(m.getNextKey(u32(1))).toBeUndefined();
  });
});

describe('array_of_maps and hash_of_maps', () => {
  it('array_of_maps lookups return the inner map; clone can remap inner maps', () => {
    const m = createMap(def('array_of_maps', { inner })) as FdArrayMap<BpfMap>;
    const a = createMap(inner);
    m.setSlot(0, a, 3);
    expect(m.lookupTarget(u32(0))).toBe(a);
    const a2 = a.clone();
    const c = m.clone((t) => (t === a ? a2 : t));
    expect(c.lookupTarget(0)).toBe(a2);
    expect(m.lookupTarget(0)).toBe(a);
  });

  it('hash_of_maps follows hash update rules', () => {
    const m = createMap(def('hash_of_maps', { inner, maxEntries: 1 })) as HashOfMapsMap<BpfMap>;
    const a = createMap(inner);
    m.resolveFd = (fd) => (fd === 3 ? a : undefined);
    expect(m.update(u32(10), u32(4), BPF_ANY)).toBe(-EBADF);
    expect(m.update(u32(10), u32(3), BPF_EXIST)).toBe(-ENOENT);
    expect(m.update(u32(10), u32(3), BPF_NOEXIST)).toBe(0);
    expect(m.update(u32(10), u32(3), BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.update(u32(11), u32(3), BPF_ANY)).toBe(-E2BIG);
    expect(m.lookupTarget(u32(10))).toBe(a);
    expect(m.lookupSys(u32(10))).toEqual(u32(3));
    expect(m.delete(u32(10))).toBe(0);
    expect(m.delete(u32(10))).toBe(-ENOENT);
  });
});

describe('perf_event_array map', () => {
  it('has an event per CPU and appends samples for BPF_F_CURRENT_CPU', () => {
    const m = createMap(def('perf_event_array'), { cpus: 2 }) as PerfEventArrayMap;
    expect(m.output(new Uint8Array([1, 2]), BPF_F_CURRENT_CPU, 1)).toBe(0);
    expect(m.output(new Uint8Array([3]), 0, 0)).toBe(0);
    expect(m.samples).toEqual([
      { cpu: 1, index: 1, data: new Uint8Array([1, 2]) },
      { cpu: 0, index: 0, data: new Uint8Array([3]) },
    ]);
  });

  it('returns the kernel errors of __bpf_perf_event_output', () => {
    const m = createMap(def('perf_event_array'), { cpus: 2 }) as PerfEventArrayMap;
    expect(m.output(new Uint8Array(1), 4, 0)).toBe(-E2BIG);
    expect(m.output(new Uint8Array(1), 3, 0)).toBe(-ENOENT);
    // The event at index 1 is on CPU 1, not the current CPU.
    expect(m.output(new Uint8Array(1), 1, 0)).toBe(-EOPNOTSUPP);
    expect(m.output(new Uint8Array(1), 2 ** 32, 0)).toBe(-EINVAL);
    expect(m.samples).toEqual([]);
  });
});

describe('devmap and devmap_hash', () => {
  it('devmap: array rules, ifindex 0 empties, delete of an empty index succeeds', () => {
    const m = createMap(def('devmap', { valueSize: 8 })) as DevMap<string>;
    expect(m.update(u32(0), pair(3, 0), BPF_ANY)).toBe(0);
    expect(m.update(u32(0), pair(3, 0), BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.update(u32(4), pair(3, 0), BPF_ANY)).toBe(-E2BIG);
    expect(m.update(u32(1), pair(0, 5), BPF_ANY)).toBe(-EINVAL);
    expect(m.update(u32(1), pair(4, 5), BPF_ANY)).toBe(-EINVAL);
    m.resolveFd = (fd) => (fd === 5 ? 'devmap_prog' : undefined);
    expect(m.update(u32(1), pair(4, 5), BPF_ANY)).toBe(0);
    expect(m.slot(1)?.target).toBe('devmap_prog');
    expect(m.update(u32(1), pair(0, 0), BPF_ANY)).toBe(0);
    expect(m.lookupSys(u32(1))).toBe(-ENOENT);
    expect(m.delete(u32(3))).toBe(0);
    expect(m.delete(u32(4))).toBe(-EINVAL);
  });

  it('devmap: programs read the value through a read-only pointer', () => {
    const m = createMap(def('devmap')) as DevMap<never>;
    m.setSlot(2, 7);
    if (!isValueMap(m)) throw new Error('devmap is a value map');
    expect(m.rdonlyProg).toBe(true);
    expect(m.valueBytes(m.lookupSlot(u32(2), 0))).toEqual(u32(7));
    expect(m.lookupSlot(u32(1), 0)).toBe(-1);
  });

  it('devmap_hash: hash rules, BPF_EXIST inserts, -E2BIG when full', () => {
    const m = createMap(def('devmap_hash', { maxEntries: 1 })) as DevMapHash<never>;
    expect(m.update(u32(9), u32(0), BPF_ANY)).toBe(-EINVAL);
    expect(m.update(u32(9), u32(9), BPF_EXIST)).toBe(0);
    expect(m.update(u32(9), u32(9), BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.update(u32(8), u32(8), BPF_ANY)).toBe(-E2BIG);
    expect(m.lookup(u32(9))).toEqual(u32(9));
    expect(m.delete(u32(8))).toBe(-ENOENT);
    expect(m.delete(u32(9))).toBe(0);
  });
});

describe('cpumap and xskmap', () => {
  it('cpumap: qsize limit, possible CPUs, qsize 0 empties', () => {
    const m = createMap(def('cpumap'), { cpus: 2 }) as CpuMap<string>;
    expect(m.update(u32(0), u32(16385), BPF_ANY)).toBe(-EOVERFLOW);
    expect(m.update(u32(3), u32(256), BPF_ANY)).toBe(-ENODEV);
    expect(m.update(u32(4), u32(256), BPF_ANY)).toBe(-E2BIG);
    expect(m.update(u32(0), u32(256), BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.update(u32(1), u32(256), BPF_ANY)).toBe(0);
    expect(m.lookupSys(u32(1))).toEqual(u32(256));
    expect(m.update(u32(1), u32(0), BPF_ANY)).toBe(0);
    expect(m.lookupSys(u32(1))).toBe(-ENOENT);
    expect(m.delete(u32(4))).toBe(-EINVAL);
  });

  it('cpumap: a program fd that cannot be loaded fails the whole entry with -ENOMEM', () => {
    const m = createMap(def('cpumap', { valueSize: 8 }), { cpus: 2 }) as CpuMap<string>;
    expect(m.update(u32(0), pair(64, 5), BPF_ANY)).toBe(-ENOMEM);
    m.resolveFd = () => 'cpumap_prog';
    expect(m.update(u32(0), pair(64, 5), BPF_ANY)).toBe(0);
    expect(m.lookupTarget(0)).toBe('cpumap_prog');
  });

  it('xskmap: sockets by index, flags checked against the current socket', () => {
    const m = createMap(def('xskmap')) as XskMap<string>;
    expect(m.update(u32(0), u32(10), BPF_ANY)).toBe(-EBADF);
    m.resolveFd = (fd) => `xsk${fd}`;
    expect(m.update(u32(0), u32(10), BPF_EXIST)).toBe(-ENOENT);
    expect(m.update(u32(0), u32(10), BPF_ANY)).toBe(0);
    // The same socket again is a no-op even with BPF_NOEXIST.
    expect(m.update(u32(0), u32(10), BPF_NOEXIST)).toBe(0);
    expect(m.update(u32(0), u32(11), BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.lookupTarget(0)).toBe('xsk10');
    expect(m.lookupSys(u32(0))).toBe(-EOPNOTSUPP);
    expect(m.delete(u32(1))).toBe(0);
    expect(m.delete(u32(4))).toBe(-EINVAL);
  });
});
