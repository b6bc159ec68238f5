// Helpers that call back into the program: bpf_loop (kernel/bpf/bpf_iter.c) and
// bpf_for_each_map_elem (bpf_for_each_array_elem in kernel/bpf/arraymap.c,
// bpf_for_each_hash_elem in kernel/bpf/hashtab.c). The callback is a subprogram whose pc the
// program loaded with `lddw rX, <func>` (BPF_PSEUDO_FUNC: hi 0, lo the pc); it runs one call
// frame deeper, in the running program, with its instructions counted in the run's steps.

import { MAX_CALL_FRAMES } from '../../isa.js';
import type { HelperFn, Machine } from '../../engine/machine.js';
import { REGION_HI_BASE } from '../../engine/memory.js';
import { isValueMap, type BpfMap } from '../../maps/map.js';
import type { HelperEnv } from './index.js';
import { E2BIG, EINVAL, helperFault, mapArg } from './common.js';

/** BPF_MAX_LOOPS: the most iterations bpf_loop runs. */
export const BPF_MAX_LOOPS = 1 << 23;

const FOR_EACH_MAPS = new Set(['array', 'percpu_array', 'hash', 'percpu_hash', 'lru_hash', 'lru_percpu_hash']);

/** The callback in argument i: the pc of a subprogram of the running program. */
function callbackArg(env: HelperEnv, m: Machine, id: number, i: number): number {
  const lp = env.run.program;
  const start = m.argLo(i);
  if (!lp || m.argHi(i) !== 0 || !lp.analysis.subprogs.some((s) => s.start === start && s.start !== 0)) {
    throw helperFault(m, id, `argument ${i} (r${i}) is not a callback function (load it with lddw rX, <function>; the verifier refuses this)`);
  }
  return start;
}

/**
 * Calls the callback at `start` with r1..r5 (lo, hi pairs) and returns its r0. Helpers the
 * callback calls overwrite the machine's argument registers, so callers read their own
 * arguments before the first call.
 */
function callBack(env: HelperEnv, m: Machine, start: number, args: number[]): { lo: number; hi: number } {
  if (m.depth + 1 >= MAX_CALL_FRAMES) throw m.callTooDeep(m.pc);
  const pc = m.pc;
  const depth = m.depth;
  env.run.program!.compiled.invoke(start, depth + 1, args);
  m.pc = pc;
  m.depth = depth;
  return { lo: m.T[0]!, hi: m.T[1]! };
}

export function callbackHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // 181: long bpf_loop(u32 nr_loops, void *callback_fn, void *callback_ctx, u64 flags)
  // callback(index, ctx): 0 goes on, anything else stops; returns the iterations run.
  h.set(181, (m) => {
    const start = callbackArg(env, m, 181, 2);
    if (m.argLo(4) !== 0 || m.argHi(4) !== 0) return m.ret(EINVAL);
    const n = m.argLo(1) >>> 0;
    if (n > BPF_MAX_LOOPS) return m.ret(E2BIG);
    const ctxLo = m.argLo(3);
    const ctxHi = m.argHi(3);
    for (let k = 0; k < n; k++) {
      const r = callBack(env, m, start, [k, 0, ctxLo, ctxHi, 0, 0, 0, 0, 0, 0]);
      if (r.lo !== 0 || r.hi !== 0) return m.ret(k + 1);
    }
    m.ret(n);
  });

  // 164: long bpf_for_each_map_elem(struct bpf_map *map, void *callback_fn, void *callback_ctx, u64 flags)
  // callback(map, key, value, ctx) for each element (this CPU's value for per-CPU maps); the
  // key is read-only. Returns the elements visited, the one that stopped the walk included.
  h.set(164, (m) => {
    const map = mapArg(env, m, 164, 1);
    if (!FOR_EACH_MAPS.has(map.type) || !isValueMap(map)) throw helperFault(m, 164, `map '${map.name}' (${map.type}) cannot be walked with bpf_for_each_map_elem (the verifier refuses this)`);
    const start = callbackArg(env, m, 164, 2);
    if (m.argLo(4) !== 0 || m.argHi(4) !== 0) return m.ret(EINVAL);
    const ctxLo = m.argLo(3);
    const ctxHi = m.argHi(3);
    const mapIndex = env.mapSpace.mapIndexOf(map);
    const handle = env.mapSpace.handlePointer(mapIndex);
    const key = keyRegion(env, m, map);
    const keys: Uint8Array[] = [];
    for (let k = map.getNextKey(undefined); k; k = map.getNextKey(k)) keys.push(k);
    const cpu = env.session.cpu;
    let visited = 0;
    for (const k of keys) {
      // Elements a callback deleted are not visited.
      const slot = map.lookupSlot(k, cpu);
      if (slot < 0) continue;
      key.bytes.set(k);
      const value = env.mapSpace.valuePointer(mapIndex, slot, 0, m.pc);
      visited++;
      const r = callBack(env, m, start, [handle.lo, handle.hi, 0, REGION_HI_BASE + key.index, value.lo, value.hi, ctxLo, ctxHi, 0, 0]);
      if (r.lo !== 0 || r.hi !== 0) break;
    }
    m.ret(visited);
  });
  return h;
}

/** The read-only key a for_each callback sees: one region per map and call depth in a run. */
function keyRegion(env: HelperEnv, m: Machine, map: BpfMap): { index: number; bytes: Uint8Array } {
  const id = `${env.mapSpace.mapIndexOf(map)}/${m.depth}`;
  let r = env.run.keyRegions.get(id);
  if (!r) {
    const bytes = new Uint8Array(Math.max(map.keySize, 1));
    const index = m.mem.nextIndex();
    if (index < 0) throw helperFault(m, 164, 'no memory region left for the key');
    m.mem.define({ index, kind: 'scratch', name: `key of ${map.name}`, label: `key(${map.name})`, view: new DataView(bytes.buffer), base: 0, lo: 0, hi: map.keySize, origin: 0, readable: true, writable: false });
    r = { index, bytes };
    env.run.keyRegions.set(id, r);
  }
  return r;
}
