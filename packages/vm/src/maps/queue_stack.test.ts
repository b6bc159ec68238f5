import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { createMap } from './create.js';
import type { MapMutation } from './map.js';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EINVAL, ENOENT } from './uapi.js';

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const readU32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0, true);

function def(type: 'queue' | 'stack', maxEntries = 3): MapDef {
  return { name: type, type: BPF_MAP_TYPE[type], keySize: 0, valueSize: 4, maxEntries, flags: 0 };
}

function drain(m: { pop(out: Uint8Array): number }): number[] {
  const out: number[] = [];
  const buf = new Uint8Array(4);
  while (m.pop(buf) === 0) out.push(readU32(buf));
  return out;
}

describe('queue map', () => {
  it('pops in FIFO order; peek does not remove', () => {
    const m = createMap(def('queue'));
    for (const v of [1, 2, 3]) expect(m.push(u32(v), BPF_ANY)).toBe(0);
    const buf = new Uint8Array(4);
    expect(m.peek(buf)).toBe(0);
    expect(readU32(buf)).toBe(1);
    expect(drain(m)).toEqual([1, 2, 3]);
  });

  it('refuses a push into a full queue with -E2BIG; BPF_EXIST drops the oldest', () => {
    const m = createMap(def('queue'));
    for (const v of [1, 2, 3]) m.push(u32(v), BPF_ANY);
    expect(m.push(u32(4), BPF_ANY)).toBe(-E2BIG);
    expect(m.push(u32(4), BPF_EXIST)).toBe(0);
    expect(drain(m)).toEqual([2, 3, 4]);
  });

  it('returns -ENOENT and zeroes the buffer when empty', () => {
    const m = createMap(def('queue'));
    const buf = new Uint8Array([9, 9, 9, 9]);
    expect(m.pop(buf)).toBe(-ENOENT);
    expect(buf).toEqual(new Uint8Array(4));
    expect(m.lookupSys(new Uint8Array(0))).toBe(-ENOENT);
  });

  it('refuses BPF_NOEXIST and unknown flags; has no update, delete or keys', () => {
    const m = createMap(def('queue'));
    expect(m.push(u32(1), BPF_NOEXIST)).toBe(-EINVAL);
    expect(m.push(u32(1), 4)).toBe(-EINVAL);
    expect(m.update(new Uint8Array(0), u32(1), BPF_ANY)).toBe(-EINVAL);
    expect(m.delete(new Uint8Array(0))).toBe(-EINVAL);
    expect(m.getNextKey(undefined)).toBeUndefined();
  });

  it('wraps around its ring many times', () => {
    const m = createMap(def('queue', 4));
    const model: number[] = [];
    for (let i = 0; i < 50; i++) {
      m.push(u32(i), BPF_EXIST);
      model.push(i);
      if (model.length > 4) model.shift();
      if (i % 3 === 0) {
        const buf = new Uint8Array(4);
        m.pop(buf);
        expect(readU32(buf)).toBe(model.shift());
      }
    }
    expect([...m.entries()].map((e) => readU32(e.value))).toEqual(model);
    expect(drain(m)).toEqual(model);
  });

  it('reports pushes, pops and overwritten elements', () => {
    const m = createMap(def('queue', 1));
    const seen: MapMutation[] = [];
    m.onMutate = (ev) => seen.push(ev);
    m.push(u32(1), BPF_ANY);
    m.push(u32(2), BPF_EXIST);
    m.pop(new Uint8Array(4));
    expect(seen).toEqual([
      { op: 'push', after: u32(1) },
      { op: 'pop', before: u32(1) },
      { op: 'push', after: u32(2) },
      { op: 'pop', before: u32(2) },
    ]);
  });
});

describe('stack map', () => {
  it('pops in LIFO order', () => {
    const m = createMap(def('stack'));
    for (const v of [1, 2, 3]) m.push(u32(v), BPF_ANY);
    expect([...m.entries()].map((e) => readU32(e.value))).toEqual([3, 2, 1]);
    expect(drain(m)).toEqual([3, 2, 1]);
  });

  it('with BPF_EXIST, a push into a full stack drops the bottom (oldest) element', () => {
    const m = createMap(def('stack'));
    for (const v of [1, 2, 3]) m.push(u32(v), BPF_ANY);
    expect(m.push(u32(4), BPF_ANY)).toBe(-E2BIG);
    expect(m.push(u32(4), BPF_EXIST)).toBe(0);
    expect(drain(m)).toEqual([4, 3, 2]);
  });

  it('clones independently', () => {
    const m = createMap(def('stack'));
    m.push(u32(1), BPF_ANY);
    const c = m.clone();
    m.push(u32(2), BPF_ANY);
    expect(drain(c)).toEqual([1]);
    expect(drain(m)).toEqual([2, 1]);
  });
});
