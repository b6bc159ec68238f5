import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { createMap } from './create.js';
import { dumpMap, loadMapEntries, parseHex, toHex } from './dump.js';
import { BPF_ANY, BPF_F_NO_PREALLOC } from './uapi.js';

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

function def(type: keyof typeof BPF_MAP_TYPE, over: Partial<MapDef> = {}): MapDef {
  return { name: type, type: BPF_MAP_TYPE[type], keySize: 4, valueSize: 4, maxEntries: 8, flags: 0, ...over };
}

describe('hex', () => {
  it('writes lowercase pairs and reads them with or without spaces and 0x', () => {
    expect(toHex(new Uint8Array([0, 0xab, 7]))).toBe('00ab07');
    expect(parseHex('0x00ab07', 'k')).toEqual(new Uint8Array([0, 0xab, 7]));
    expect(parseHex('00 AB 07', 'k')).toEqual(new Uint8Array([0, 0xab, 7]));
    expect(() => parseHex('abc', 'entry 0 key')).toThrow("entry 0 key: 'abc' is not hex bytes");
  });
});

describe('dumpMap', () => {
  it('lists array indexes whose value is not all zeros', () => {
    const m = createMap(def('array'));
    m.update(u32(5), u32(0x0a0b), BPF_ANY);
    m.update(u32(1), u32(0), BPF_ANY);
    expect(dumpMap(m)).toEqual([{ key: '05000000', value: '0b0a0000' }]);
  });

  it('lists per-CPU array values per CPU, skipping indexes zero on every CPU', () => {
    const m = createMap(def('percpu_array', { valueSize: 3 }), { cpus: 2 });
    m.update(u32(2), new Uint8Array([1, 2, 3]), BPF_ANY, 1);
    m.update(u32(3), new Uint8Array(3), BPF_ANY, 0);
    expect(dumpMap(m)).toEqual([{ key: '02000000', value: ['000000', '010203'] }]);
  });

  it('lists every hash entry, zero values included', () => {
    const m = createMap(def('hash'));
    m.update(u32(1), u32(0), BPF_ANY);
    m.update(u32(2), u32(3), BPF_ANY);
    expect(dumpMap(m)).toEqual([
      { key: '01000000', value: '00000000' },
      { key: '02000000', value: '03000000' },
    ]);
  });

  it('lists queue elements in pop order with empty keys; ring buffers have none', () => {
    const q = createMap(def('stack', { keySize: 0 }));
    q.push(u32(1), BPF_ANY);
    q.push(u32(2), BPF_ANY);
    expect(dumpMap(q)).toEqual([
      { key: '', value: '02000000' },
      { key: '', value: '01000000' },
    ]);
    expect(dumpMap(createMap(def('ringbuf', { keySize: 0, valueSize: 0, maxEntries: 4096 })))).toEqual([]);
  });
});

describe('loadMapEntries', () => {
  const roundTrip = (d: MapDef, entries: { key: string; value: string | string[] }[], cpus = 1) => {
    const m = createMap(d, { cpus });
    loadMapEntries(m, entries);
    return dumpMap(m);
  };

  it('restores what dumpMap wrote', () => {
    const hash = [
      { key: '07000000', value: '01020304' },
      { key: '03000000', value: '00000000' },
    ];
    expect(roundTrip(def('hash'), hash)).toEqual(hash);
    const pc = [{ key: '01000000', value: ['01000000', '00000000', '02000000'] }];
    expect(roundTrip(def('percpu_hash'), pc, 3)).toEqual(pc);
    expect(roundTrip(def('percpu_array'), pc, 3)).toEqual(pc);
    const lpm = [
      { key: '180000000a010200', value: '02000000' },
      { key: '080000000a000000', value: '01000000' },
    ];
    expect(roundTrip(def('lpm_trie', { keySize: 8, flags: BPF_F_NO_PREALLOC }), lpm)).toEqual(lpm);
    const stack = [
      { key: '', value: '03000000' },
      { key: '', value: '01000000' },
    ];
    expect(roundTrip(def('stack', { keySize: 0 }), stack)).toEqual(stack);
    expect(roundTrip(def('queue', { keySize: 0 }), stack)).toEqual(stack);
  });

  it('sets every CPU alike from a single per-CPU value string', () => {
    expect(roundTrip(def('percpu_array'), [{ key: '00000000', value: '05000000' }], 2)).toEqual([{ key: '00000000', value: ['05000000', '05000000'] }]);
  });

  it('names the entry that does not fit or fails', () => {
    const m = createMap(def('hash', { name: 'flows', maxEntries: 1 }));
    expect(() => loadMapEntries(m, [{ key: '0100', value: '00000000' }])).toThrow("map 'flows': entry 0 key has 2 bytes, expected 4");
    expect(() =>
      loadMapEntries(m, [
        { key: '01000000', value: '00000000' },
        { key: '02000000', value: '00000000' },
      ]),
    ).toThrow("map 'flows': entry 1: update failed with -E2BIG");
    expect(() => loadMapEntries(m, [{ key: '01000000', value: ['00000000'] }])).toThrow(/entry 0: map is not per-CPU/);
  });
});
