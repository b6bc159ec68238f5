// Helpers made for one map: where the compiler knows which map a call's map argument holds (an
// `lddw r1, map` on every path to the call, see mapHandleArgs), the call goes to a version of
// the helper that skips finding the map again and dispatches on that map's type once, at load
// time. The kernel does the same for array lookups, which the verifier inlines
// (array_map_gen_lookup). Each version handles the common case exactly as the generic helper
// does and hands anything else (a key the fast path cannot read, a call from a subprogram) to
// the generic helper, which checks it and reports what is wrong; so results, return codes and
// faults are the generic helper's.

import type { HelperFn } from '../../engine/machine.js';
import { REGION_HI_BASE } from '../../engine/memory.js';
import { ArrayMap } from '../../maps/array.js';
import { FdArrayMap } from '../../maps/fd_maps.js';
import { isValueMap } from '../../maps/map.js';
import type { Program } from '../../program.js';
import type { LoadedProgram } from '../../engine/vm.js';
import type { HelperEnv } from './index.js';
import { MAX_TAIL_CALL_CNT } from './misc.js';

/** A faster version of helper `id` for calls on map `mapIndex`, or undefined when there is none. */
export function specializedHelper(env: HelperEnv, id: number, mapIndex: number, generic: HelperFn | undefined): HelperFn | undefined {
  const map = env.mapSpace.maps[mapIndex];
  if (!map || !generic) return undefined;
  const { session, mapSpace } = env;
  switch (id) {
    case 1: {
      // void *bpf_map_lookup_elem(struct bpf_map *map, const void *key)
      if (map instanceof ArrayMap && map.keySize === 4) {
        const max = map.maxEntries;
        const cpus = map.cpus;
        const percpu = map.percpu;
        return (m) => {
          const R = m.R;
          const index = m.peekU32(R[4]!, R[5]!);
          if (index < 0) return generic(m);
          const cpu = session.cpu;
          R[0] = 0;
          R[1] = index >= max || cpu >= cpus ? 0 : REGION_HI_BASE + mapSpace.valueRegion(mapIndex, percpu ? index * cpus + cpu : index, m.pc);
        };
      }
      if (!isValueMap(map)) return undefined;
      const keySize = map.keySize;
      return (m) => {
        const R = m.R;
        const key = m.peekBytes(R[4]!, R[5]!, keySize);
        if (key === undefined) return generic(m);
        const slot = map.lookupSlot(key, session.cpu);
        R[0] = 0;
        R[1] = slot < 0 ? 0 : REGION_HI_BASE + mapSpace.valueRegion(mapIndex, slot, m.pc);
      };
    }
    case 2: {
      // long bpf_map_update_elem(struct bpf_map *map, const void *key, const void *value, u64 flags)
      if (!isValueMap(map)) return undefined;
      const keySize = map.keySize;
      const valueSize = map.valueSize;
      return (m) => {
        const R = m.R;
        const key = m.peekBytes(R[4]!, R[5]!, keySize);
        const value = key && m.peekBytes(R[6]!, R[7]!, valueSize, true);
        if (!value) return generic(m);
        m.ret(map.update(key!, value, R[9] !== 0 ? 0xffffffff : R[8]! >>> 0, session.cpu));
      };
    }
    case 3: {
      // long bpf_map_delete_elem(struct bpf_map *map, const void *key)
      if (!isValueMap(map)) return undefined;
      const keySize = map.keySize;
      return (m) => {
        const key = m.peekBytes(m.R[4]!, m.R[5]!, keySize);
        if (key === undefined) return generic(m);
        m.ret(map.delete(key));
      };
    }
    case 12: {
      // long bpf_tail_call(void *ctx, struct bpf_map *prog_array_map, u32 index)
      if (map.type !== 'prog_array' || !(map instanceof FdArrayMap)) return undefined;
      const slots = map as FdArrayMap<Program>;
      const max = map.maxEntries;
      // The loaded program of each slot's target, so a tail call does not look it up by name.
      const targets: (Program | undefined)[] = new Array(max);
      const loaded: (LoadedProgram | undefined)[] = new Array(max);
      return (m) => {
        const index = m.R[6]! >>> 0;
        if (m.depth !== 0 || index >= max || session.tailCalls >= MAX_TAIL_CALL_CNT) return generic(m);
        const target = slots.lookupTarget(index);
        if (!target) return;
        // The generic helper checks the target's type (and faults on a mismatch).
        if (target.type !== env.run.program?.program.type) return generic(m);
        let next = loaded[index];
        if (targets[index] !== target) {
          next = loaded[index] = env.program(target.name);
          targets[index] = target;
        }
        session.tailCalls++;
        env.run.program = next;
        m.tailTarget = next;
      };
    }
  }
  return undefined;
}
