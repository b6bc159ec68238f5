// The kernel's helpers, by id. Each reads its arguments from the machine's registers (r1..r5),
// checks them as the kernel's helper prototypes and the verifier would, and returns what the
// kernel's implementation returns (negative errno values included).

import type { HelperFn, Machine, Warning } from '../../engine/machine.js';
import type { ProgType } from '../../program.js';
import type { LoadedProgram } from '../../engine/vm.js';
import type { BpfMap } from '../../maps/map.js';
import type { MapSpace } from '../mapspace.js';
import type { PacketBuffer } from '../packet.js';
import type { Context } from '../contexts.js';
import type { Session } from '../session.js';
import { HELPER_NAMES } from '../../helpers/ids.js';
import { mapHelpers } from './maps.js';
import { miscHelpers } from './misc.js';
import { stringHelpers } from './strings.js';
import { callbackHelpers } from './callbacks.js';
import { lockHelpers } from './locks.js';
import { outputHelpers, finishReservations } from './output.js';
import { packetHelpers, installLdAbs } from './packet.js';
import { csumHelpers } from './csum.js';
import { skbHelpers } from './skb.js';
import { redirectHelpers } from './redirect.js';
import { fibHelpers } from './fib.js';

/** Something a run printed or emitted: trace_printk lines, ring buffer and perf event samples. */
export interface OutputEvent {
  kind: 'printk' | 'ringbuf' | 'perf';
  /** Instructions executed when it happened. */
  step: number;
  text?: string;
  map?: string;
  data?: Uint8Array;
  cpu?: number;
}

/** A route for bpf_fib_lookup. */
export interface FibRoute {
  /** Destination prefix, `10.0.0.0/8` or `2001:db8::/32`. */
  prefix: string;
  /** The egress device. */
  ifindex: number;
  /** Next hop's MAC (becomes dmac); without it the neighbour is unknown (BPF_FIB_LKUP_RET_NO_NEIGH). */
  dmac?: string;
  /** The egress device's MAC (becomes smac). */
  smac?: string;
  /** Gateway address, when the route has one. */
  gateway?: string;
  /** The route's MTU (default 1500). */
  mtu?: number;
  /** unicast (default), blackhole, unreachable or prohibit. */
  type?: 'unicast' | 'blackhole' | 'unreachable' | 'prohibit';
  /** The route's metric (rt_metric). */
  metric?: number;
  /** Preferred source address (BPF_FIB_LOOKUP_SRC). */
  src?: string;
  /** Routing table id for BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID (default 254, main). */
  table?: number;
}

/** Where a redirect sends the packet, as struct bpf_redirect_info holds it when the program returns. */
export interface RedirectTarget {
  /** The device, for bpf_redirect (and a bpf_redirect_map lookup that failed, which leaves the previous one). */
  ifindex?: number;
  /** The map and key, for bpf_redirect_map. */
  map?: string;
  key?: number;
  flags: number;
}

/** A ring buffer sample reserved by bpf_ringbuf_reserve and not yet submitted or discarded. */
export interface RingbufReservation {
  map: BpfMap;
  /** Offset of the sample in the ring's data area. */
  offset: number;
  size: number;
  pc: number;
  step: number;
}

/** What helpers keep during one run; beginHelperRun makes it fresh. */
export interface HelperRunState {
  /** The program running now: callbacks run in it, tail calls change it. */
  program: LoadedProgram | undefined;
  /** struct bpf_redirect_info. */
  redirect: RedirectTarget | undefined;
  /** Ring buffer samples by the region index of the pointer bpf_ringbuf_reserve returned. */
  reservations: Map<number, RingbufReservation>;
  /** The bpf_spin_lock held (a pointer into a map value) and where it was taken. */
  lock: { lo: number; hi: number; pc: number; step: number } | undefined;
  /** Tunnel metadata from bpf_skb_set_tunnel_key (struct bpf_tunnel_key, 44 bytes). */
  tunnel: { key: Uint8Array; flags: number } | undefined;
  /** skb->l4_hash / skb->sw_hash: whether skb->hash holds a computed or set hash. */
  hashValid: boolean;
  /** The read-only keys bpf_for_each_map_elem hands callbacks, by map index and call depth. */
  keyRegions: Map<string, { index: number; bytes: Uint8Array }>;
  /** Things the kernel's verifier would have refused, found at run time. */
  warnings: Warning[];
  /** Helpers whose results here are inputs of the run, not what a kernel would give (time, random numbers, the CPU, the flow hash). */
  nondeterministic: Set<number>;
}

export function newHelperRunState(): HelperRunState {
  return { program: undefined, redirect: undefined, reservations: new Map(), lock: undefined, tunnel: undefined, hashValid: false, keyRegions: new Map(), warnings: [], nondeterministic: new Set() };
}

/** What helpers reach besides the registers. */
export interface HelperEnv {
  session: Session;
  machine: Machine;
  mapSpace: MapSpace;
  packet: PacketBuffer;
  context(type: ProgType): Context | undefined;
  emit(ev: Omit<OutputEvent, 'step'>): void;
  program(name: string): LoadedProgram;
  /** The current run's state. */
  run: HelperRunState;
}

export type HelperFactory = (env: HelperEnv, fib: FibRoute[]) => Map<number, HelperFn>;

/** Every helper Rewind provides. Also routes the machine's LD_ABS/LD_IND to the run's packet. */
export function kernelHelpers(env: HelperEnv, fib: FibRoute[]): Map<number, HelperFn> {
  installLdAbs(env);
  const all = new Map<number, HelperFn>();
  const factories: HelperFactory[] = [mapHelpers, miscHelpers, stringHelpers, callbackHelpers, lockHelpers, outputHelpers, packetHelpers, csumHelpers, skbHelpers, redirectHelpers, fibHelpers];
  for (const factory of factories) for (const [id, fn] of factory(env, fib)) all.set(id, fn);
  return all;
}

/** Starts a run of `program`: helper state from the previous run is gone (reset in place). */
export function beginHelperRun(env: HelperEnv, program: LoadedProgram): void {
  const run = env.run;
  run.program = program;
  run.redirect = undefined;
  if (run.reservations.size) run.reservations.clear();
  run.lock = undefined;
  run.tunnel = undefined;
  run.hashValid = false;
  if (run.keyRegions.size) run.keyRegions.clear();
  // The previous run's outcome may hold the warnings array: never clear it, replace it.
  if (run.warnings.length) run.warnings = [];
  if (run.nondeterministic.size) run.nondeterministic.clear();
}

const XDP_REDIRECT = 4;
const TC_ACT_REDIRECT = 7;

/**
 * Ends a run: what the verifier would have refused but the run left behind (a reserved ring
 * buffer sample, a held spin lock) becomes a warning in env.run.warnings and is undone, and the
 * run's context `ctx` gets the values the kernel's test run copies back. Returns where a
 * redirect verdict sends the packet.
 */
export function endHelperRun(env: HelperEnv, ctx: Context | undefined, faulted: boolean, retval: number): RedirectTarget | undefined {
  const run = env.run;
  if (run.reservations.size) finishReservations(env);
  const lock = run.lock;
  if (lock) {
    run.warnings.push({ pc: lock.pc, step: lock.step, message: `warning at insn ${lock.pc}: bpf_spin_lock was taken and never released (the verifier refuses programs that exit holding a lock); Rewind released it` });
    run.lock = undefined;
    env.machine.writeBytes(lock.pc, lock.lo, lock.hi, new Uint8Array(4), 'releasing the lock at exit');
  }
  // The context of the entry program's type (tail calls keep the type).
  ctx?.finishRun();
  const type = run.program?.program.type;
  const redirected = !faulted && ((type === 'xdp' && retval === XDP_REDIRECT) || (type === 'tc' && retval === TC_ACT_REDIRECT));
  return redirected ? run.redirect : undefined;
}

/** The helpers whose results were inputs of the run (see HelperRunState.nondeterministic), by name. */
export function nondeterministicHelpers(run: HelperRunState): string[] | undefined {
  return run.nondeterministic.size ? [...run.nondeterministic].map((id) => HELPER_NAMES[id]!) : undefined;
}
