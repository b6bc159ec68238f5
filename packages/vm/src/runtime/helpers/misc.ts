// Time, random numbers, the CPU, tail calls and trace_printk.

import type { HelperFn } from '../../engine/machine.js';
import { FdArrayMap } from '../../maps/fd_maps.js';
import type { Program } from '../../program.js';
import type { HelperEnv } from './index.js';
import { helperFault, mapArg } from './common.js';
import { formatPrintk } from './printk.js';

/** MAX_TAIL_CALL_CNT: tail calls one run may take. */
export const MAX_TAIL_CALL_CNT = 33;

export function miscHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();
  const now: HelperFn = (m) => m.ret(env.session.timeNs);
  h.set(5, now); // bpf_ktime_get_ns
  h.set(125, now); // bpf_ktime_get_boot_ns
  h.set(160, now); // bpf_ktime_get_coarse_ns
  h.set(208, now); // bpf_ktime_get_tai_ns
  h.set(7, (m) => m.ret(env.session.prng.next())); // bpf_get_prandom_u32
  h.set(8, (m) => m.ret(env.session.cpu)); // bpf_get_smp_processor_id
  h.set(154, (m) => m.ret(0)); // bpf_get_numa_node_id

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
    env.session.tailCalls++;
    m.tailTarget = env.program(target.name);
  });

  // 6: long bpf_trace_printk(const char *fmt, u32 fmt_size, ...)
  h.set(6, (m) => {
    const size = m.argLo(2) >>> 0;
    const fmt = m.readBytes(m.pc, m.argLo(1), m.argHi(1), size, `bpf_trace_printk reads the format from r1`);
    const text = formatPrintk(m, 6, fmt, [m.arg(3), m.arg(4), m.arg(5)]);
    if (typeof text === 'number') return m.ret(text);
    env.emit({ kind: 'printk', text });
    m.ret(new TextEncoder().encode(text).length);
  });
  return h;
}
