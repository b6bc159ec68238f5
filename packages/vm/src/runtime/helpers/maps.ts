// Map helpers: bpf_map_lookup_elem, bpf_map_update_elem, bpf_map_delete_elem,
// bpf_map_push_elem, bpf_map_pop_elem, bpf_map_peek_elem (kernel/bpf/helpers.c).

import type { HelperFn } from '../../engine/machine.js';
import { isValueMap } from '../../maps/map.js';
import { FdArrayMap, HashOfMapsMap } from '../../maps/fd_maps.js';
import type { HelperEnv } from './index.js';
import { helperFault, mapArg, mapIndexArg, memArg, memArgTransient, writeArg } from './common.js';

export function mapHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // 1: void *bpf_map_lookup_elem(struct bpf_map *map, const void *key)
  h.set(1, (m) => {
    const mapIndex = mapIndexArg(env, m, 1, 1);
    const map = env.mapSpace.maps[mapIndex]!;
    const key = memArgTransient(m, 1, 2, map.keySize, 'the key');
    if (isValueMap(map)) {
      const slot = map.lookupSlot(key, env.session.cpu);
      if (slot < 0) return m.ret(0);
      m.retPointer(env.mapSpace.valueRegion(mapIndex, slot, m.pc), 0);
      return;
    }
    if (map instanceof FdArrayMap || map instanceof HashOfMapsMap) {
      if (map.type === 'prog_array') throw helperFault(m, 1, `map '${map.name}' is a prog_array: programs use bpf_tail_call, not lookups (the verifier refuses this)`);
      const inner = (map as FdArrayMap<unknown>).lookupTarget(key);
      if (!inner) return m.ret(0);
      const idx = env.mapSpace.maps.indexOf(inner as never);
      if (idx < 0) return m.ret(0);
      const p = env.mapSpace.handlePointer(idx);
      m.R[0] = p.lo;
      m.R[1] = p.hi;
      return;
    }
    throw helperFault(m, 1, `map '${map.name}' (${map.def.type}) cannot be looked up from a program`);
  });

  // 2: long bpf_map_update_elem(struct bpf_map *map, const void *key, const void *value, u64 flags)
  h.set(2, (m) => {
    const map = mapArg(env, m, 2, 1);
    // Maps copy what they keep of the key and the value.
    const key = memArgTransient(m, 2, 2, map.keySize, 'the key');
    const value = memArgTransient(m, 2, 3, map.valueSize, 'the value', true);
    const flags = m.argHi(4) !== 0 ? 0xffffffff : m.argLo(4) >>> 0;
    m.ret(map.update(key, value, flags, env.session.cpu));
  });

  // 3: long bpf_map_delete_elem(struct bpf_map *map, const void *key)
  h.set(3, (m) => {
    const map = mapArg(env, m, 3, 1);
    const key = memArgTransient(m, 3, 2, map.keySize, 'the key');
    m.ret(map.delete(key));
  });

  // 87: long bpf_map_push_elem(struct bpf_map *map, const void *value, u64 flags)
  h.set(87, (m) => {
    const map = mapArg(env, m, 87, 1);
    const value = memArg(m, 87, 2, map.valueSize, 'the value');
    // Flags above 32 bits make the value larger than BPF_EXIST, which the map refuses.
    m.ret(map.push(value, m.argHi(3) !== 0 ? 0xffffffff : m.argLo(3) >>> 0));
  });

  // 88: long bpf_map_pop_elem(struct bpf_map *map, void *value)
  // 89: long bpf_map_peek_elem(struct bpf_map *map, void *value)
  // The value argument is ARG_PTR_TO_MAP_VALUE | MEM_UNINIT: an empty queue zeroes it (-ENOENT).
  for (const [id, op] of [[88, 'pop'], [89, 'peek']] as const) {
    h.set(id, (m) => {
      const map = mapArg(env, m, id, 1);
      // A bloom filter's peek tests the value it is given.
      if (map.type === 'bloom_filter' && op === 'peek') return m.ret(map.peek(memArg(m, id, 2, map.valueSize, 'the value')));
      if (map.type !== 'queue' && map.type !== 'stack') throw helperFault(m, id, `map '${map.name}' (${map.type}) has no ${op} operation (the verifier refuses this)`);
      const out = new Uint8Array(map.valueSize);
      const r = op === 'pop' ? map.pop(out) : map.peek(out);
      writeArg(m, id, 2, out, 'the value');
      m.ret(r);
    });
  }
  return h;
}
