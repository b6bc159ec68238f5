// Time, random numbers, the CPU, tail calls and trace_printk. Time, random numbers and the CPU
// are inputs of a run (RunInput.timeNs, SessionOptions.seed and cpu), so runs replay exactly.

import type { HelperFn } from '../../engine/machine.js';
import { FdArrayMap } from '../../maps/fd_maps.js';
import type { Program } from '../../program.js';
import type { HelperEnv } from './index.js';
import { EINVAL, helperFault, mapArg, memArg } from './common.js';
import { bprintf } from './printk.js';

/** MAX_TAIL_CALL_CNT: tail calls one run may take. */
export const MAX_TAIL_CALL_CNT = 33;
/** MAX_BPRINTF_BUF: trace_printk's output buffer, NUL included. */
const MAX_BPRINTF_BUF = 1024;
const decoder = new TextDecoder();

export function miscHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();
  // The run's clock stands for every kernel clock.
  for (const id of [5, 125, 160, 208]) {
    // bpf_ktime_get_ns, bpf_ktime_get_boot_ns, bpf_ktime_get_coarse_ns, bpf_ktime_get_tai_ns
    h.set(id, (m) => {
      env.run.nondeterministic.add(id);
      m.ret(env.session.timeNs);
    });
  }
  h.set(7, (m) => {
    // bpf_get_prandom_u32
    env.run.nondeterministic.add(7);
    m.ret(env.session.prng.next());
  });
  h.set(8, (m) => {
    // bpf_get_smp_processor_id
    env.run.nondeterministic.add(8);
    m.ret(env.session.cpu);
  });
  h.set(42, (m) => m.ret(0)); // bpf_get_numa_node_id: one node

  // 12: long bpf_tail_call(void *ctx, struct bpf_map *prog_array_map, u32 index)
  // On success control does not come back; on failure the program goes on with r0 unchanged.
  h.set(12, (m) => {
    const map = mapArg(env, m, 12, 2);
    if (map.type !== 'prog_array' || !(map instanceof FdArrayMap)) throw helperFault(m, 12, `map '${map.name}' is not a prog_array`);
    if (m.depth !== 0) throw helperFault(m, 12, 'tail calls from bpf-to-bpf subprograms are not supported by Rewind');
    const index = m.argLo(3) >>> 0;
    if (index >= map.maxEntries) return;
    if (env.session.tailCalls >= MAX_TAIL_CALL_CNT) return;
    const target = (map as FdArrayMap<Program>).lookupTarget(index);
    if (!target) return;
    const from = env.run.program?.program.type;
    // bpf_prog_array_compatible(): a prog_array only ever holds programs of its owner's type,
    // whose context r1 still points to (and whose compiled context loads assume).
    if (from !== undefined && target.type !== from) throw helperFault(m, 12, `slot ${index} of '${map.name}' holds '${target.name}', a ${target.type} program; a ${from} program can only tail-call ${from} programs (the kernel refuses to put it in the map)`);
    env.session.tailCalls++;
    const next = env.program(target.name);
    env.run.program = next;
    m.tailTarget = next;
  });

  // 6: long bpf_trace_printk(const char *fmt, u32 fmt_size, ...)
  // Returns the length of the whole formatted text; the trace line holds at most 1023 bytes.
  h.set(6, (m) => {
    const size = m.argLo(2) >>> 0;
    const fmt = memArg(m, 6, 1, size, 'the format');
    const nul = fmt.indexOf(0);
    if (nul < 0) return m.ret(EINVAL);
    const r = bprintf(m, fmt.subarray(0, nul), [m.arg(3), m.arg(4), m.arg(5)]);
    if (typeof r === 'number') return m.ret(r);
    const shown = r.bytes.subarray(0, MAX_BPRINTF_BUF - 1);
    env.emit({ kind: 'printk', text: decoder.decode(shown) });
    m.ret(r.bytes.length);
  });
  return h;
}
