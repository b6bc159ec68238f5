// The kernel's helpers, by id. Each reads its arguments from the machine's registers (r1..r5),
// checks them as the kernel's helper prototypes and the verifier would, and returns what the
// kernel's implementation returns (negative errno values included).

import type { HelperFn, Machine } from '../../engine/machine.js';
import type { ProgType } from '../../program.js';
import type { LoadedProgram } from '../../engine/vm.js';
import type { MapSpace } from '../mapspace.js';
import type { PacketBuffer } from '../packet.js';
import type { Context } from '../contexts.js';
import type { Session } from '../session.js';
import { mapHelpers } from './maps.js';
import { miscHelpers } from './misc.js';

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
  ifindex: number;
  /** Next hop's MAC (becomes dmac) and the egress MAC (smac), `aa:bb:cc:dd:ee:ff`. */
  dmac: string;
  smac: string;
  /** Gateway address, when the route has one. */
  gateway?: string;
  mtu?: number;
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
}

export type HelperFactory = (env: HelperEnv, fib: FibRoute[]) => Map<number, HelperFn>;

/** Every helper Rewind provides. */
export function kernelHelpers(env: HelperEnv, fib: FibRoute[]): Map<number, HelperFn> {
  const all = new Map<number, HelperFn>();
  for (const factory of [mapHelpers, miscHelpers] as HelperFactory[]) for (const [id, fn] of factory(env, fib)) all.set(id, fn);
  return all;
}
