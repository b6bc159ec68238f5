// Error kinds. A guest fault (the eBPF program did something the kernel would not allow at
// run time) is distinct from a load-time rejection and from a bug in Rewind itself: the run
// loop turns guest faults into results and rethrows everything else.

/** Base class of every error Rewind reports to a user as a one-line message. */
export class RewindError extends Error {
  override name = 'RewindError';
}

/** The program was rejected before running, as the kernel's loader or verifier would. */
export class LoadError extends RewindError {
  override name = 'LoadError';
  constructor(
    message: string,
    /** Slot of the offending instruction, when there is one. */
    readonly pc?: number,
  ) {
    super(message);
  }
}

export type FaultKind =
  | 'read' // out-of-bounds or not-permitted read
  | 'write' // out-of-bounds or not-permitted write
  | 'uninit' // read of a register or stack byte never written (with strict checks)
  | 'call' // call stack too deep, bad call target
  | 'helper' // a helper refused its arguments
  | 'budget'; // instruction budget exhausted

/** The running program faulted. The run ends at the state it faulted in. */
export class Fault extends RewindError {
  override name = 'Fault';
  constructor(
    message: string,
    readonly kind: FaultKind,
    /** Slot of the faulting instruction. */
    readonly pc: number,
  ) {
    super(message);
  }
}
