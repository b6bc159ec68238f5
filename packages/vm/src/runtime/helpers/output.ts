// Samples for user space: the ring buffer helpers (kernel/bpf/ringbuf.c) and
// bpf_perf_event_output (kernel/trace/bpf_trace.c; bpf_xdp_event_output and
// bpf_skb_event_output in net/core/filter.c). Each committed sample is also an OutputEvent of
// the run.
//
// bpf_ringbuf_reserve returns a pointer to a region over exactly the sample's bytes in the
// ring's data area, so the program writes the sample in place and every access is checked
// against the sample's size. Submit and discard take that pointer back and close the region;
// a later access through it faults, as the verifier would have refused it.

import type { HelperFn, Machine } from '../../engine/machine.js';
import { REGION_HI_BASE } from '../../engine/memory.js';
import { RingbufMap } from '../../maps/ringbuf.js';
import { PerfEventArrayMap } from '../../maps/fd_maps.js';
import type { HelperEnv, RingbufReservation } from './index.js';
import { EFAULT, EINVAL, ctxArg, helperFault, mapArg, memArg, progType, sizeArg } from './common.js';

/** BPF_F_CTXLEN_MASK: bytes of the packet to append to a perf sample, in flags bits 32..51. */
const CTXLEN_MASK_HI = 0xfffff;

function ringArg(env: HelperEnv, m: Machine, id: number): RingbufMap {
  const map = mapArg(env, m, id, 1);
  if (!(map instanceof RingbufMap)) throw helperFault(m, id, `map '${map.name}' is a ${map.type}, not a ringbuf (the verifier refuses this)`);
  return map;
}

/** The reservation a sample pointer (argument 1 of submit/discard) refers to. */
function sampleArg(env: HelperEnv, m: Machine, id: number): { index: number; r: RingbufReservation } {
  const index = (m.argHi(1) - REGION_HI_BASE) >>> 0;
  const r = env.run.reservations.get(index);
  if (!r || m.argLo(1) !== 0) {
    throw helperFault(m, id, `argument 1 (r1) is ${m.mem.describePointer(m.argLo(1), m.argHi(1)) ?? 'a scalar'}, not a sample this run reserved and has not yet submitted or discarded (the verifier refuses this)`);
  }
  return { index, r };
}

/** Closes the region of a submitted or discarded sample. */
function closeSample(env: HelperEnv, m: Machine, index: number, what: string): void {
  const region = m.mem.regions[index];
  if (region) {
    region.readable = region.writable = false;
    region.name = `ring buffer sample (${what})`;
    m.mem.refresh(region);
  }
  env.run.reservations.delete(index);
}

function commit(env: HelperEnv, m: Machine, id: number, discard: boolean): void {
  const { index, r } = sampleArg(env, m, id);
  const ring = r.map as RingbufMap;
  if (discard) ring.discard(r.offset, m.argLo(2) >>> 0);
  else {
    ring.submit(r.offset, m.argLo(2) >>> 0);
    env.emit({ kind: 'ringbuf', map: ring.name, data: ring.samples[ring.samples.length - 1]!.slice(), cpu: env.session.cpu });
  }
  closeSample(env, m, index, discard ? 'discarded' : 'submitted');
}

export function outputHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // 131: void *bpf_ringbuf_reserve(void *ringbuf, u64 size, u64 flags): NULL when full or on bad flags.
  h.set(131, (m) => {
    const ring = ringArg(env, m, 131);
    if (m.argHi(2) !== 0 || m.argLo(3) !== 0 || m.argHi(3) !== 0) return m.ret(0);
    const size = m.argLo(2) >>> 0;
    const offset = ring.reserve(size, 0);
    if (offset < 0) return m.ret(0);
    const index = m.mem.nextIndex();
    if (index < 0) throw helperFault(m, 131, 'no memory region left for the sample');
    const data = ring.dataBytes();
    const label = `ringbuf(${ring.name})`;
    m.mem.define({ index, kind: 'ringbuf', name: label, label, view: new DataView(data.buffer, data.byteOffset, data.byteLength), base: offset, lo: 0, hi: size, origin: 0, readable: true, writable: true });
    env.run.reservations.set(index, { map: ring, offset, size, pc: m.pc, step: m.steps });
    m.retPointer(index, 0);
  });

  // 132: void bpf_ringbuf_submit(void *data, u64 flags)
  h.set(132, (m) => {
    commit(env, m, 132, false);
    m.ret(0);
  });

  // 133: void bpf_ringbuf_discard(void *data, u64 flags)
  h.set(133, (m) => {
    commit(env, m, 133, true);
    m.ret(0);
  });

  // 130: long bpf_ringbuf_output(void *ringbuf, void *data, u64 size, u64 flags): 0, -EINVAL or -EAGAIN.
  h.set(130, (m) => {
    const ring = ringArg(env, m, 130);
    const size = sizeArg(m, 130, 3, true);
    const data = memArg(m, 130, 2, size, 'the sample');
    const flags = m.argHi(4) !== 0 ? 0xffffffff : m.argLo(4) >>> 0;
    const r = ring.output(data, flags);
    if (r === 0) env.emit({ kind: 'ringbuf', map: ring.name, data: data.slice(), cpu: env.session.cpu });
    m.ret(r);
  });

  // 134: u64 bpf_ringbuf_query(void *ringbuf, u64 flags)
  h.set(134, (m) => {
    const ring = ringArg(env, m, 134);
    m.ret(m.argHi(2) !== 0 ? 0 : ring.query(m.argLo(2) >>> 0));
  });

  // 25: long bpf_perf_event_output(void *ctx, struct bpf_map *map, u64 flags, void *data, u64 size)
  // XDP and skb programs may append the first (flags >> 32) bytes of the packet to the sample.
  h.set(25, (m) => {
    const map = mapArg(env, m, 25, 2);
    if (!(map instanceof PerfEventArrayMap)) throw helperFault(m, 25, `map '${map.name}' is a ${map.type}, not a perf_event_array (the verifier refuses this)`);
    const type = progType(env);
    const packetProg = type === 'xdp' || type === 'tc' || type === 'socket' || type === 'cgroup_skb';
    if (packetProg) ctxArg(env, m, 25, 1);
    const hi = m.argHi(3) >>> 0;
    const index = m.argLo(3) >>> 0;
    const ctxLen = packetProg ? hi & CTXLEN_MASK_HI : 0;
    if (hi !== ctxLen) return m.ret(EINVAL);
    const size = sizeArg(m, 25, 5, true);
    const meta = memArg(m, 25, 4, size, 'the sample');
    if (ctxLen > env.packet.length) return m.ret(EFAULT);
    const sample = new Uint8Array(size + ctxLen);
    sample.set(meta);
    const p = env.packet;
    sample.set(p.buffer().subarray(p.data, p.data + ctxLen), size);
    const r = map.output(sample, index, env.session.cpu);
    if (r === 0) env.emit({ kind: 'perf', map: map.name, data: sample, cpu: env.session.cpu });
    m.ret(r);
  });
  return h;
}

/** At the end of a run: samples reserved and never submitted are discarded, with a warning. */
export function finishReservations(env: HelperEnv): void {
  for (const [index, r] of env.run.reservations) {
    env.run.warnings.push({
      pc: r.pc,
      step: r.step,
      message: `warning at insn ${r.pc}: a ${r.size}-byte sample reserved in ring buffer '${r.map.name}' was never submitted or discarded (the verifier refuses programs that leak a reservation); Rewind discarded it`,
    });
    (r.map as RingbufMap).discard(r.offset, 0);
    closeSample(env, env.machine, index, 'discarded at exit');
  }
}
