// What a trace reader answers: the state at any step, and the questions a debugger asks about it.
// Everything here is plain data, independent of how the file stores it.

import type { Bytecode, FuncSym, LineInfo, MapDef, RegionKind } from '@rewind/vm';

/** A program as the trace stores it: its bytecode and what the debugger shows of it. */
export interface TraceProgram {
  name: string;
  type: string;
  section?: string;
  code: Bytecode;
  funcs: FuncSym[];
  lines: LineInfo[];
}

export interface TraceFault {
  message: string;
  kind: string;
  pc: number;
}

/** One run (one packet, one input): its steps are firstStep..lastStep. */
export interface TraceRun {
  index: number;
  /** The program the run entered. */
  program: string;
  firstStep: number;
  lastStep: number;
  verdict: string;
  /** r0 at exit (absent when the run faulted). */
  r0?: bigint;
  fault?: TraceFault;
  warnings: string[];
  /** The input packet (absent for runs without one). */
  packet?: Uint8Array;
  /** The packet as the run left it. */
  packetOut?: Uint8Array;
  /** Clock of the run (bpf_ktime_get_ns), nanoseconds. */
  timeNs: bigint;
}

/** What a register or a byte holds, as Rewind writes pointers: `pkt+14`, `stack-8`, `map_value(flows)+4`, `ctx+0`. */
export interface Provenance {
  region: number;
  kind: RegionKind;
  /** Offset from the region's origin (r10 for a stack frame, data for the packet). */
  offset: number;
  text: string;
}

/** A stack frame of the call chain at a step. */
export interface FrameState {
  depth: number;
  /** The function running in this frame. */
  func: string;
  /** The frame's 512 bytes, lowest address first (r10 of the frame is just past the end). */
  bytes: Uint8Array;
  /** Offsets (0..511) written by the step that led here. */
  written: number[];
}

/** A helper call or other event of a run, with the step it happened at. */
export type TraceEvent =
  | { kind: 'helper'; step: number; pc: number; id: number; name: string; args: bigint[]; r0: bigint }
  | { kind: 'print'; step: number; text: string }
  | { kind: 'map'; step: number; map: string; op: string; key?: Uint8Array; before?: Uint8Array; after?: Uint8Array; cpu?: number }
  | { kind: 'output'; step: number; map: string; data: Uint8Array }
  | { kind: 'tailcall'; step: number; program: string }
  | { kind: 'warning'; step: number; text: string }
  | { kind: 'fault'; step: number; text: string };

/** A map's entries at a step, in the shape of `rewind run --json` (hex keys; per-CPU maps list one value per CPU). */
export type MapsState = Record<string, { key: string; value: string | string[] }[]>;

/** The full state at one step. */
export interface StepState {
  step: number;
  /** The run the step belongs to, and the instructions it had executed at this step. */
  run: number;
  runStep: number;
  program: string;
  /**
   * The instruction about to execute. At the last step of a run, the one that ended it: the exit
   * (or tail call) executed last, or the faulting instruction, which did not execute.
   */
  pc: number;
  /** That instruction in llvm-objdump syntax. */
  insn: string;
  /** True at a run's last step. */
  atEnd: boolean;
  /** The fault the run ended with, at its last step. */
  fault?: TraceFault;
  /** Call depth (0 in the entry function). */
  depth: number;
  func: string;
  source?: { file: string; line: number; col: number; text: string };
  /** r0..r10 as unsigned 64-bit values. */
  regs: bigint[];
  /** What each register points to (undefined: a scalar). */
  prov: (Provenance | undefined)[];
  /** Registers the step that led here wrote. */
  changed: number[];
  /** The frames of the call chain, entry function first. */
  frames: FrameState[];
  /** The packet (data to data_end) and where data is in the buffer; absent for runs without one. */
  packet?: { bytes: Uint8Array; meta: Uint8Array; changed: number[] };
  maps: MapsState;
  /** The run's events up to this step. */
  events: TraceEvent[];
}

/** Something a step can write: a register, bytes of memory, or a map entry. */
export type WriteTarget =
  | { kind: 'reg'; reg: number }
  | { kind: 'mem'; region: number; offset: number; size: number }
  | { kind: 'map'; map: string; key: Uint8Array };

/** The step that produced a value, and the operands it was computed from. */
export interface Origin {
  step: number;
  pc: number;
  insn: string;
  /** The registers and memory the instruction read (for a load: the address register and the bytes). */
  operands: WriteTarget[];
  /** For a helper call: the helper's name. */
  helper?: string;
}

/** A search over steps. */
export type StepQuery =
  | { kind: 'pc'; pc: number; program?: string }
  | { kind: 'line'; line: number; file?: string }
  | { kind: 'helper'; name: string }
  | { kind: 'map'; map: string; op?: string }
  | { kind: 'verdict'; verdict: string };

/** Where a step is, cheaply (no state rebuilt): for stepping over calls and running to a point. */
export interface StepPosition {
  step: number;
  run: number;
  program: string;
  pc: number;
  depth: number;
}

/** A trace opened for reading: `Trace.open(path)` gives one. */
export interface TraceView {
  readonly path: string;
  /** Size of the file. */
  readonly bytes: number;
  /** The file ended before its end frame (a recording that was killed): what it holds is readable. */
  readonly truncated: boolean;
  readonly programs: readonly TraceProgram[];
  readonly maps: readonly MapDef[];
  readonly runs: readonly TraceRun[];
  /** The number of the last step (steps are 0..lastStep). */
  readonly lastStep: number;
  /** The run a step belongs to. */
  runOf(step: number): TraceRun;
  /** pc, program, run and call depth at a step, without rebuilding the whole state. */
  position(step: number): StepPosition;
  /** The full state at a step. */
  state(step: number): StepState;
  /** The last step at or before `step` that wrote the target (undefined: none since the trace began). */
  prevWrite(target: WriteTarget, step: number): number | undefined;
  /** The first step after `step` that writes the target. */
  nextWrite(target: WriteTarget, step: number): number | undefined;
  /** Where the target's value at `step` came from: the step that wrote it and what that step read. */
  origin(target: WriteTarget, step: number): Origin | undefined;
  /** The next (direction 1) or previous (-1) step after/before `from` that matches. */
  find(query: StepQuery, from: number, direction: 1 | -1): number | undefined;
  close(): void;
}
