// Loading a program into a machine and running it.

import { Fault, LoadError } from '../errors.js';
import { BPF_PSEUDO_FUNC, LDDW, type Bytecode } from '../isa.js';
import type { Program } from '../program.js';
import { validate, type Analysis } from '../validate.js';
import { formatInsn } from '../asm/disassemble.js';
import { helperLabel, HELPER_NAMES } from '../helpers/ids.js';
import { compileProgram, type Compiled, type Instrumentation } from './compile.js';
import { Machine, type HelperFn, type Warning } from './machine.js';
import { REGION_HI_BASE } from './memory.js';

/** The kernel's helpers Rewind provides, by id. */
export type HelperTable = ReadonlyMap<number, HelperFn>;

export interface LoadOptions {
  /** Helpers available to the program, by kernel helper id. */
  helpers?: HelperTable;
  /** Resolves an lddw with a pseudo source (map handle, map value) to a pointer value. */
  resolveLddw?: (pc: number, src: number, imm: number, nextImm: number) => { lo: number; hi: number };
  /** Registers set on entry besides r10 (bit i = ri). Default r1. */
  entryRegs?: number;
  allowLdAbs?: boolean;
  instrument?: Instrumentation;
  /** See CompileOptions.ctxSlots. */
  ctxSlots?: Uint8Array;
  /**
   * A version of helper `helper` for calls whose map argument is known to be map `mapIndex`
   * (a faster path with the same results), or undefined to call the generic one. Asked for map
   * lookups, updates and deletes and bpf_tail_call. A recorder wraps Machine.helperByMap's
   * entries as it wraps the helper table's.
   */
  specializeHelper?: (helper: number, mapIndex: number) => HelperFn | undefined;
}

/** Helpers LoadOptions.specializeHelper is asked for, by their place in a map's row of Machine.helperByMap. */
const SPECIALIZED_IDS = [1, 2, 3, 12];
const SPECIALIZED: Record<number, number> = Object.fromEntries(SPECIALIZED_IDS.map((id, kind) => [id, kind]));

/** The kernel helper id of entry k of Machine.helperByMap. */
export function helperOfMapSlot(k: number): number {
  return SPECIALIZED_IDS[k % SPECIALIZED_IDS.length]!;
}

/** A program validated and compiled for one machine. */
export class LoadedProgram {
  readonly analysis: Analysis;
  readonly compiled: Compiled;
  /** Registers set on entry (bit i = ri). */
  readonly entryRegs: number;
  /** Machine.describeInsn while this program runs. */
  readonly describeInsn = (pc: number): string => this.describe(pc);

  constructor(
    readonly program: Program,
    readonly machine: Machine,
    opts: LoadOptions = {},
  ) {
    const code = program.code;
    const helpers = opts.helpers ?? new Map();
    this.entryRegs = opts.entryRegs ?? 0b10;
    const describe = (pc: number) => formatInsn(code, pc);
    this.analysis = validate(code, {
      mapCount: program.maps.length,
      allowLdAbs: opts.allowLdAbs,
      describe,
      checkHelper: (id) => {
        if (helpers.has(id)) return undefined;
        return id > 0 && id < HELPER_NAMES.length
          ? `call to ${helperLabel(id)}, which Rewind does not provide`
          : `call to unknown helper ${id}`;
      },
    });
    const callbackStarts: number[] = [];
    for (let pc = 0; pc < code.length; pc++) {
      if (code.op[pc] === LDDW && code.src[pc] === BPF_PSEUDO_FUNC && !this.analysis.isSecondSlot[pc]) callbackStarts.push(pc + 1 + code.imm[pc]!);
    }
    this.compiled = compileProgram(code, this.analysis, {
      vm: machine,
      lddwValue: (pc) => {
        const src = code.src[pc]!;
        if (src === BPF_PSEUDO_FUNC) return { lo: pc + 1 + code.imm[pc]!, hi: 0 };
        if (!opts.resolveLddw) throw new LoadError(`lddw at pc ${pc} references a map, and no maps were given`, pc);
        return opts.resolveLddw(pc, src, code.imm[pc]!, code.imm[pc + 1]!);
      },
    }, {
      entryRegs: opts.entryRegs ?? 0b10,
      callbackStarts,
      instrument: opts.instrument,
      ctxSlots: opts.ctxSlots,
      helperForMap: opts.specializeHelper
        ? (id, mapIndex) => {
            const kind = SPECIALIZED[id];
            if (kind === undefined) return -1;
            const k = mapIndex * SPECIALIZED_IDS.length + kind;
            const fn = machine.helperByMap[k] ?? opts.specializeHelper!(id, mapIndex);
            if (!fn) return -1;
            machine.helperByMap[k] = fn;
            return k;
          }
        : undefined,
    });
    for (const [id, fn] of helpers) machine.helperTable[id] = fn;
  }

  describe(pc: number): string {
    return formatInsn(this.program.code, pc);
  }
}

export interface RunResult {
  /** r0 at exit, as an unsigned 64-bit value. */
  r0: bigint;
  /** Instructions executed. */
  steps: number;
  fault?: Fault;
  warnings: Warning[];
  /** Slot of the last instruction: the exit, or the faulting instruction. */
  pc: number;
  /** The program that was running at the end (differs from the entry after tail calls). */
  program: string;
}

export interface RunOptions {
  maxSteps?: number;
  strict?: boolean;
  /**
   * Instructions per slice. By default slices start small and grow (so V8 optimizes the code
   * early); a recorder fixes them, and takes a keyframe between slices. Slices end at basic
   * block boundaries of the entry function, at or before this many instructions.
   */
  slice?: number;
  /** Called between slices of a long run with the instructions executed so far. */
  onSlice?: (steps: number) => void;
  /** Called when a tail call switches to another program. */
  onTailCall?: (p: LoadedProgram) => void;
  /**
   * Session.run: false leaves the packet, ctx and metadata copies out of the outcome, for callers
   * that only want the verdict and what the run did to the maps (default true).
   */
  copies?: boolean;
}

const SLICE_MAX = 1 << 24;

/**
 * Runs a loaded program from pc 0 with the registers already set in machine.R. Guest faults
 * become part of the result; anything else is a bug and propagates.
 */
export function execute(p: LoadedProgram, opts: RunOptions = {}): RunResult {
  const m = p.machine;
  const fault = executeIn(p, opts);
  return {
    r0: r0Value(m.R[0]!, m.R[1]!),
    steps: m.steps,
    fault,
    warnings: runWarnings(m),
    pc: m.pc,
    program: m.program!.program.name,
  };
}

/**
 * execute() without its result object: returns the fault, if any, and leaves the rest where
 * the run left it in the machine (registers in R, m.steps, m.pc, m.program the program that
 * exited; runWarnings(m) the warnings). Session.run builds its outcome from these directly.
 */
export function executeIn(p: LoadedProgram, opts: RunOptions): Fault | undefined {
  const m = p.machine;
  m.steps = 0;
  m.depth = 0;
  m.pc = 0;
  m.maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  m.strict = opts.strict ?? false;
  // An outcome may hold the last run's warnings: replace a used array, never clear it.
  if (m.warnings.length) m.warnings = [];
  m.tailTarget = null;
  m.describeInsn = p.describeInsn;
  m.initRegs = p.entryRegs | (1 << 10);
  // r10: frame 0, offset 512. Stack bytes start out unwritten.
  m.R[20] = 512;
  m.R[21] = REGION_HI_BASE;
  // Frame 0 starts unwritten (called functions clear their own frames on entry).
  m.clearFrame(0, p.compiled.shadowLow);
  let cur = p;
  m.program = p;
  try {
    // Slices start small and grow: V8 optimizes the program's function between slices.
    let slice = opts.slice ?? 4096;
    let pc = 0;
    // A basic block longer than the slice cannot start inside it: the next call allows more.
    let extra = 0;
    for (;;) {
      // The entry function checks the budget only where a slice ends: never past maxSteps.
      const before = m.steps;
      const status = cur.compiled.run(pc, 0, Math.min(m.steps + slice + extra, m.maxSteps));
      if (status === 0) return undefined;
      if (status === 2) {
        pc = m.pc;
        if (m.steps === before) {
          extra = extra ? extra * 2 : slice;
          continue;
        }
        extra = 0;
        if (slice < SLICE_MAX && opts.slice === undefined) slice *= 2;
        opts.onSlice?.(m.steps);
        continue;
      }
      // status 1, bpf_tail_call: the target starts at pc 0 in the same frame, with r1 (the context) kept.
      cur = m.program = m.tailTarget as LoadedProgram;
      m.tailTarget = null;
      m.describeInsn = cur.describeInsn;
      m.initRegs = 0b10000000010;
      m.clearFrame(0, cur.compiled.shadowLow);
      pc = 0;
      opts.onTailCall?.(cur);
    }
  } catch (e) {
    if (e instanceof Fault) return e;
    throw e;
  }
}

/** The warnings of the run that just ended (a shared empty array when it had none). */
export function runWarnings(m: Machine): Warning[] {
  return m.warnings.length ? m.warnings : NO_WARNINGS;
}

/** The warnings of a run that had none (shared by every such result, so never pushed to). */
const NO_WARNINGS: Warning[] = Object.freeze([]) as unknown as Warning[];

/** r0 as BigInts for the values programs return most (verdicts, small counts): no allocation per run. */
const SMALL_R0 = Array.from({ length: 256 }, (_, i) => BigInt(i));

export function r0Value(lo: number, hi: number): bigint {
  if (hi === 0 && lo >>> 0 < 256) return SMALL_R0[lo]!;
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Enough for every program in the bench (up to 400M instructions) with room to spare. */
export const DEFAULT_MAX_STEPS = 1_000_000_000;

/** A program made of bare bytecode (a `.data` file, the conformance plugin). */
export function programFromBytecode(code: Bytecode, name = 'prog'): Program {
  return { name, type: 'raw', code, funcs: [{ name, start: 0, end: code.length }], maps: [] };
}
