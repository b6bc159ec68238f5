import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { createMap } from './create.js';
import { LpmTrieMap } from './lpm_trie.js';
import { isValueMap, type MapMutation } from './map.js';
import { BPF_ANY, BPF_EXIST, BPF_F_NO_PREALLOC, BPF_NOEXIST, EEXIST, EINVAL, ENOENT, ENOSPC } from './uapi.js';

const readU32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0, true);
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

/** struct bpf_lpm_trie_key_u8 for an IPv4 prefix: host-order prefixlen, address bytes. */
function v4(cidr: string): Uint8Array {
  const [addr, len = '32'] = cidr.split('/');
  const k = new Uint8Array(8);
  new DataView(k.buffer).setUint32(0, Number(len), true);
  k.set(addr.split('.').map(Number), 4);
  return k;
}

function v4Text(k: Uint8Array): string {
  return `${[...k.subarray(4)].join('.')}/${readU32(k)}`;
}

function lpmDef(over: Partial<MapDef> = {}): MapDef {
  return { name: 'lpm', type: BPF_MAP_TYPE.lpm_trie, keySize: 8, valueSize: 4, maxEntries: 16, flags: BPF_F_NO_PREALLOC, ...over };
}

function walk(m: LpmTrieMap): string[] {
  const out: string[] = [];
  for (let k = m.getNextKey(undefined); k; k = m.getNextKey(k)) out.push(v4Text(k));
  return out;
}

describe('lpm_trie map', () => {
  it('returns the longest matching prefix', () => {
    const m = createMap(lpmDef());
    m.update(v4('10.0.0.0/8'), u32(8), BPF_ANY);
    m.update(v4('10.1.0.0/16'), u32(16), BPF_ANY);
    m.update(v4('10.1.2.0/24'), u32(24), BPF_ANY);
    m.update(v4('10.1.2.3/32'), u32(32), BPF_ANY);
    m.update(v4('0.0.0.0/0'), u32(0), BPF_ANY);
    const at = (ip: string) => readU32(m.lookup(v4(ip))!);
    expect(at('10.1.2.3')).toBe(32);
    expect(at('10.1.2.4')).toBe(24);
    expect(at('10.1.3.1')).toBe(16);
    expect(at('10.200.0.1')).toBe(8);
    expect(at('192.168.1.1')).toBe(0);
    // The syscall's lookup matches the same way.
    expect(readU32(m.lookupSys(v4('10.1.9.9')) as Uint8Array)).toBe(16);
  });

  it("limits a lookup to the key's own prefixlen", () => {
    const m = createMap(lpmDef());
    m.update(v4('10.1.0.0/16'), u32(16), BPF_ANY);
    m.update(v4('10.0.0.0/8'), u32(8), BPF_ANY);
    expect(readU32(m.lookup(v4('10.1.0.0/12'))!)).toBe(8);
    expect(m.lookup(v4('10.1.0.0/33'))).toBeUndefined();
  });

  it('iterates in post-order, more specific prefixes first (the example in lpm_trie.c)', () => {
    const m = createMap(lpmDef()) as LpmTrieMap;
    for (const p of ['192.168.0.0/16', '192.168.0.0/24', '192.168.1.0/24', '192.168.128.0/24']) m.update(v4(p), u32(1), BPF_ANY);
    expect(walk(m)).toEqual(['192.168.0.0/24', '192.168.1.0/24', '192.168.128.0/24', '192.168.0.0/16']);
    expect([...m.entries()].map((e) => v4Text(e.key))).toEqual(walk(m));
    // A key that is not in the trie restarts from the leftmost node.
    expect(v4Text(m.getNextKey(v4('1.2.3.4/32'))!)).toBe('192.168.0.0/24');
  });

  it('checks flags as trie_update_elem does', () => {
    const m = createMap(lpmDef({ maxEntries: 2 }));
    expect(m.update(v4('10.0.0.0/8'), u32(1), BPF_EXIST)).toBe(-ENOENT);
    expect(m.update(v4('10.0.0.0/8'), u32(1), BPF_NOEXIST)).toBe(0);
    expect(m.update(v4('10.0.0.0/8'), u32(2), BPF_NOEXIST)).toBe(-EEXIST);
    expect(m.update(v4('10.0.0.0/8'), u32(3), BPF_EXIST)).toBe(0);
    expect(m.update(v4('10.1.0.0/16'), u32(4), BPF_ANY)).toBe(0);
    // Full: a new prefix is -ENOSPC, replacing one is fine.
    expect(m.update(v4('10.2.0.0/16'), u32(5), BPF_ANY)).toBe(-ENOSPC);
    expect(m.update(v4('10.1.0.0/16'), u32(6), BPF_ANY)).toBe(0);
    expect(m.update(v4('10.0.0.0/33'), u32(6), BPF_ANY)).toBe(-EINVAL);
    expect(m.update(v4('10.0.0.0/8'), u32(6), 3)).toBe(-EINVAL);
  });

  it('turns an intermediate node into a real one, counting it as a new element', () => {
    const m = createMap(lpmDef({ maxEntries: 3 })) as LpmTrieMap;
    m.update(v4('10.0.0.0/16'), u32(1), BPF_ANY);
    m.update(v4('10.128.0.0/16'), u32(2), BPF_ANY);
    // 10.0.0.0/8 is now an intermediate node: BPF_EXIST does not find it.
    expect(m.update(v4('10.0.0.0/8'), u32(3), BPF_EXIST)).toBe(-ENOENT);
    expect(m.update(v4('10.0.0.0/8'), u32(3), BPF_NOEXIST)).toBe(0);
    expect(m.count).toBe(3);
    expect(readU32(m.lookup(v4('10.7.0.1'))!)).toBe(3);
    expect(walk(m)).toEqual(['10.0.0.0/16', '10.128.0.0/16', '10.0.0.0/8']);
  });

  it('deletes exact prefixes only and keeps the others reachable', () => {
    const m = createMap(lpmDef()) as LpmTrieMap;
    for (const p of ['10.0.0.0/8', '10.1.0.0/16', '10.2.0.0/16', '10.1.1.0/24']) m.update(v4(p), u32(readU32(v4(p))), BPF_ANY);
    expect(m.delete(v4('10.1.0.0/17'))).toBe(-ENOENT);
    expect(m.delete(v4('10.1.0.0/33'))).toBe(-EINVAL);
    expect(m.delete(v4('10.0.0.0/8'))).toBe(0);
    expect(m.delete(v4('10.0.0.0/8'))).toBe(-ENOENT);
    expect(m.lookup(v4('10.9.9.9'))).toBeUndefined();
    expect(readU32(m.lookup(v4('10.1.1.1'))!)).toBe(24);
    expect(m.delete(v4('10.1.1.0/24'))).toBe(0);
    expect(readU32(m.lookup(v4('10.1.1.1'))!)).toBe(16);
    expect(walk(m)).toEqual(['10.1.0.0/16', '10.2.0.0/16']);
  });

  it('keeps the data bits past prefixlen as they were given', () => {
    const m = createMap(lpmDef()) as LpmTrieMap;
    m.update(v4('10.1.2.3/8'), u32(1), BPF_ANY);
    expect(walk(m)).toEqual(['10.1.2.3/8']);
    expect(readU32(m.lookup(v4('10.200.0.0'))!)).toBe(1);
  });

  it('agrees with a brute-force longest-prefix match over random operations', () => {
    let seed = 12345;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const m = createMap(lpmDef({ keySize: 6, maxEntries: 64 })) as LpmTrieMap;
    const model = new Map<string, { len: number; data: number; value: number }>();
    const key = (len: number, data: number) => {
      const k = new Uint8Array(6);
      new DataView(k.buffer).setUint32(0, len, true);
      k[4] = data >> 8;
      k[5] = data;
      return k;
    };
    const prefixOf = (data: number, len: number) => (len === 0 ? 0 : (data >> (16 - len)) << (16 - len));
    for (let step = 0; step < 3000; step++) {
      const len = rand(17);
      const data = rand(1 << 16) & 0xf0f0;
      const id = `${prefixOf(data, len)}/${len}`;
      if (rand(3) === 0) {
        expect(m.delete(key(len, data))).toBe(model.delete(id) ? 0 : -ENOENT);
      } else {
        const ret = m.update(key(len, data), u32(step), BPF_ANY);
        if (model.has(id) || model.size < 64) {
          expect(ret).toBe(0);
          model.set(id, { len, data: prefixOf(data, len), value: step });
        } else expect(ret).toBe(-ENOSPC);
      }
      const probe = rand(1 << 16);
      let best: { len: number; value: number } | undefined;
      for (const p of model.values()) if (prefixOf(probe, p.len) === p.data && (!best || p.len > best.len)) best = p;
      const got = m.lookup(key(16, probe));
      expect(got ? readU32(got) : undefined).toBe(best?.value);
    }
    expect(walk(m).length).toBe(model.size);
  });

  it('hands out value slots bounded by max_entries and reports changes', () => {
    const m = createMap(lpmDef({ maxEntries: 4, valueSize: 3 }));
    if (!isValueMap(m)) throw new Error('lpm_trie is a value map');
    expect(m.stride).toBe(8);
    expect(m.slotCount).toBe(4);
    const seen: MapMutation[] = [];
    m.onMutate = (ev) => seen.push(ev);
    m.update(v4('10.0.0.0/8'), new Uint8Array([1, 2, 3]), BPF_ANY);
    const slot = m.lookupSlot(v4('10.1.1.1'), 0);
    m.valueBytes(slot)[0] = 9;
    expect(m.lookupSys(v4('10.0.0.0/8'))).toEqual(new Uint8Array([9, 2, 3]));
    m.delete(v4('10.0.0.0/8'));
    expect(seen.map((e) => e.op)).toEqual(['update', 'delete']);
    expect(seen[1].before).toEqual(new Uint8Array([9, 2, 3]));
  });

  it('clones independently', () => {
    const m = createMap(lpmDef()) as LpmTrieMap;
    m.update(v4('10.0.0.0/8'), u32(1), BPF_ANY);
    const c = m.clone();
    m.update(v4('10.1.0.0/16'), u32(2), BPF_ANY);
    c.delete(v4('10.0.0.0/8'));
    expect(walk(m)).toEqual(['10.1.0.0/16', '10.0.0.0/8']);
    expect(walk(c)).toEqual([]);
  });
});
