// The engine: a program is compiled to one JavaScript function, with the registers as local
// 32-bit halves (r0l/r0h ... r9l/r9h) and basic blocks as `case` labels of a `for (;;) switch (pc)`.
// Measured on Node 20 against a switch interpreter (~4-5 ns per instruction) this runs the
// bench programs at about 1 ns per instruction. The generated code only ever contains numbers
// taken from the bytecode, never text from an input file.
//
// Per basic block the code adds the block's instruction count to the step counter and checks the
// budget once. A fault in the middle of a block subtracts the instructions not executed
// (REM[pc]), so the count is exact: steps = instructions fully executed.
//
// An optional Instrumentation adds code after every instruction and every memory write (the
// recorder's hook). Without one, nothing is emitted: the plain engine pays nothing for it.

import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_TO_BE,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  LDDW,
  MAX_CALL_FRAMES,
  sizeBytes,
  type Bytecode,
} from '../isa.js';
import type { Analysis } from '../validate.js';
import { ctxPointerRegs, mapHandleArgs, maybeUninitRegs, provenStackLoads } from './dataflow.js';
import { FRAME_SIZE, REGION_HI_BASE, MAX_REGIONS, STACK_REGION } from './memory.js';

/**
 * Code the recorder adds to the compiled program. Each returns JavaScript source or ''. `step` is
 * a JavaScript expression for the instructions the run has executed, the current one included.
 */
export interface Instrumentation {
  /** Declarations shared by the program's functions. */
  prologue(): string;
  /** At the start of the entry function (every run, every slice). */
  enter(): string;
  /** At every exit from the entry function (exit, tail call, slice end, fault), before returning. */
  epilogue(): string;
  /** After the instruction at pc; `dst` is the register it wrote (-1 for none), readable as `l<dst>` / `h<dst>`. */
  afterInsn(pc: number, dst: number, step: string): string;
  /**
   * After a fast-path store of `size` bytes; `region` and `at` are expressions for the region
   * index and the offset in the region, `vl`/`vh` for the value stored. (Slow-path stores go
   * through Machine.onWrite.)
   */
  afterStore(pc: number, size: number, region: string, at: string, vl: string, vh: string, step: string): string;
  /** When the conditional jump at pc is taken or not. */
  branch(pc: number, taken: boolean, step: string): string;
  /** Before a helper call or a slow-path store or atomic at pc (code that may write memory out of line). */
  beforeCall(pc: number, step: string): string;
  /** At the start of every function other than the entry function (bpf-to-bpf calls, callbacks). */
  enterCallee?(): string;
  /** Before a function other than the entry function returns to its caller. */
  leaveCallee?(): string;
  /** Before a bpf-to-bpf call (code that runs program code out of line). */
  beforeLocalCall?(): string;
  /** After a bpf-to-bpf call or a helper call returns (either may have run instrumented code). */
  afterCall?(): string;
  /**
   * After the instruction at pc inside a self-loop's later iterations (the third on), where the
   * low half of what it writes to `dst` is known to follow the site's prediction: it adds the
   * same constant every iteration. `is32`: the high half is zero. With stride, a self-loop block
   * that writes such registers runs its first two iterations with afterInsn and the rest with
   * this, then calls strideSettle for those sites where the loop ends or gives up its slice.
   */
  strideInsn?(pc: number, dst: number, step: string, is32: boolean): string;
  /** The state of site pc's prediction after a stride loop: its last value `lo` (an expression) and the difference `delta`. */
  strideSettle?(pc: number, lo: string, delta: number): string;
  /** When execution enters the basic block [pc, last] (once per entry of a self-loop block, not per iteration). */
  block?(pc: number, last: number): string;
  /** Called once before any code is asked for, with the program being compiled. */
  init?(code: Bytecode, an: Analysis): void;
}

export interface CompileOptions {
  /** Registers set before the first instruction (bit i = ri); r10 is always set. */
  entryRegs: number;
  /** Slots where callbacks (BPF_PSEUDO_FUNC targets) start. */
  callbackStarts: number[];
  instrument?: Instrumentation;
  /** Name given to the generated function, for profiles and stack traces. */
  name?: string;
  /**
   * The context's 4-byte slots that a 4-byte load may read straight from the machine's context
   * table (vm.ctxLo / vm.ctxHi, kept by the context's owner): nonzero for readable u32 fields and
   * for pointer fields (whose table entry is the 64-bit pointer the kernel's rewrite loads).
   * Loads from a register known to hold the context read the table instead of taking the slow path.
   */
  ctxSlots?: Uint8Array;
  /**
   * A helper call whose map argument is known at compile time (see mapHandleArgs) may call a
   * version of the helper made for that map: this returns its index in vm.helperByMap, or -1
   * to call the helper table's.
   */
  helperForMap?: (helper: number, mapIndex: number) => number;
}

/**
 * The entry function: executes the program's main function from `startPc` at call depth
 * `depth`, with the registers in vm.R, until it exits (returns 0), takes a tail call (returns 1)
 * or has executed instructions up to `sliceMax` on the step counter vm.steps (returns 2; call
 * again with vm.pc to go on). Registers are written back to vm.R.
 */
export type RunFn = (startPc: number, depth: number, sliceMax: number) => number;

/** A subprogram's function: (depth, r1 lo, r1 hi, ... r5 hi) → r0 lo; r0 hi via the machine. */
export type SubprogFn = (depth: number, ...args: number[]) => number;

/** What the compiled code needs from the machine that runs it. */
export interface CompiledEnv {
  /** The machine (see Machine in machine.ts); compiled code calls its slow paths. */
  vm: unknown;
  /** Map handles and callback pointers the loader resolved for each lddw with a pseudo source. */
  lddwValue(pc: number): { lo: number; hi: number };
}

export interface Compiled {
  run: RunFn;
  /** Calls the subprogram starting at `start` at call depth `depth` with r1..r5 (lo, hi pairs); r0 is left in vm.T. */
  invoke: (start: number, depth: number, args: ArrayLike<number>) => void;
  /** The generated JavaScript, for inspection and tests. */
  source: string;
  /** REM[pc]: instructions from pc to the end of its basic block, inclusive. */
  REM: Int32Array;
  /** The code checks the stack's written-bytes shadow (so a run must start with frame 0 cleared). */
  usesShadow: boolean;
  /**
   * The lowest frame byte the entry function's r10-relative stores mark in the shadow
   * (FRAME_SIZE when they mark none): see Machine.clearFrame.
   */
  shadowLow: number;
}

export function compileProgram(code: Bytecode, an: Analysis, env: CompiledEnv, opts: CompileOptions): Compiled {
  const { source, REM, usesShadow, shadowLow } = generate(code, an, env, opts);
  const made = factoryFor(source)(env.vm, REM, mulhu, bswap32);
  return { run: made.run, invoke: made.invoke, source, REM, usesShadow, shadowLow };
}

type Factory = (vm: unknown, rem: Int32Array, m: typeof mulhu, b: typeof bswap32) => Pick<Compiled, 'run' | 'invoke'>;

/**
 * Factories by generated source. Everything a program's code depends on is in its source or
 * reached through the factory's arguments, so a second machine loading the same program (a
 * new Session of the same object) gets functions from the same factory: they share V8's
 * feedback and optimized code instead of warming up again.
 */
const factories = new Map<string, Factory>();
const MAX_FACTORIES = 64;

function factoryFor(source: string): Factory {
  let f = factories.get(source);
  if (f) {
    // Most recently used last: the oldest is dropped first.
    factories.delete(source);
  } else {
    f = new Function('vm', 'REM', 'mulhu', 'bswap32', source) as Factory;
    if (factories.size >= MAX_FACTORIES) factories.delete(factories.keys().next().value!);
  }
  factories.set(source, f);
  return f;
}

/** Upper 32 bits of the unsigned 64-bit product of two 32-bit values. */
export function mulhu(a: number, b: number): number {
  // Exact in a double while the product stays below 2^53 (a small factor, the common case).
  const x = (a >>> 0) * (b >>> 0);
  if (x < 9007199254740992) return (x / 4294967296) | 0;
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const m1 = a1 * b0 + ((a0 * b0) >>> 16);
  const m2 = a0 * b1 + (m1 & 0xffff);
  return (a1 * b1 + (m1 >>> 16) + (m2 >>> 16)) | 0;
}

export function bswap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | ((x >>> 24) & 0xff);
}

const HB = REGION_HI_BASE;
/** Helpers that call back into the program: bpf_for_each_map_elem (164), bpf_loop (181). */
export const CALLBACK_HELPERS: ReadonlySet<number> = new Set([164, 181]);

/**
 * Helpers after which the block ends, so that the steps counted up front for a block are exact
 * where execution leaves it: bpf_tail_call (12) does not come back, and callbacks run between
 * the call and the next slot.
 */
export const BLOCK_ENDING_HELPERS: ReadonlySet<number> = new Set([12, ...CALLBACK_HELPERS]);

function generate(code: Bytecode, an: Analysis, env: CompiledEnv, opts: CompileOptions): { source: string; REM: Int32Array; usesShadow: boolean; shadowLow: number } {
  const n = code.length;
  const ins = opts.instrument;
  ins?.init?.(code, an);
  const uninit = maybeUninitRegs(code, an, opts.entryRegs, opts.callbackStarts);
  const dynInit = uninit.some((m) => m !== 0);
  const proven = provenStackLoads(code, an);
  const ctxRegs = opts.ctxSlots ? ctxPointerRegs(code, an) : [];
  const mapArgs = opts.helperForMap ? mapHandleArgs(code, an) : undefined;
  /** Load sites whose region is cached in locals (see the self-loop blocks below). */
  const cachedSites = new Set<number>();
  /**
   * Plain runs: loads and stores through a pointer register that share their region lookup with
   * the other accesses through that register in their basic block (see baseRoles): KEEP looks
   * the region up and keeps it in the register's b<r> locals, USE checks the pointer against what
   * was kept and looks the region up (keeping it) only when it differs.
   */
  const baseRole = new Uint8Array(n);
  const KEEP = 1;
  const USE = 2;

  // Does a pointer to the stack ever exist outside r10-relative addressing? If not, and every
  // r10-relative load is proven initialised, the written-bytes shadow is never consulted and
  // stores need not maintain it.
  let stackEscapes = false;
  let allProven = true;
  for (let pc = 0; pc < n; pc++) {
    if (an.isSecondSlot[pc]) continue;
    const op = code.op[pc]!;
    const klass = op & 7;
    if (klass === BPF_LDX && code.src[pc] === 10 && !proven[pc]) allProven = false;
    // An atomic on r10 reads through vm.atomic, which checks the written-bytes shadow.
    if (klass === BPF_STX && (op & 0xe0) === BPF_ATOMIC && code.dst[pc] === 10) allProven = false;
    const readsR10AsValue =
      ((klass === BPF_ALU || klass === BPF_ALU64 || klass === BPF_JMP || klass === BPF_JMP32) && (op & BPF_X) !== 0 && (code.src[pc] === 10 || code.dst[pc] === 10)) ||
      ((klass === BPF_JMP || klass === BPF_JMP32) && code.dst[pc] === 10 && (op & 0xf0) !== BPF_CALL && (op & 0xf0) !== BPF_EXIT && (op & 0xf0) !== BPF_JA) ||
      (klass === BPF_STX && code.src[pc] === 10);
    if (readsR10AsValue) stackEscapes = true;
  }
  const trackShadow = stackEscapes || !allProven;
  /** The lowest frame byte a function's r10-relative stores mark (FRAME_SIZE: none), by its first pc. */
  const frameLow = (sp: { start: number; end: number }): number => {
    let low = FRAME_SIZE;
    if (!trackShadow) return low;
    for (let pc = sp.start; pc < sp.end; pc++) {
      if (an.isSecondSlot[pc]) continue;
      const op = code.op[pc]!;
      const klass = op & 7;
      if ((klass === BPF_ST || (klass === BPF_STX && (op & 0xe0) !== BPF_ATOMIC)) && code.dst[pc] === 10) low = Math.min(low, Math.max(0, FRAME_SIZE + code.off[pc]!));
    }
    return low;
  };

  // Basic blocks: leaders are pc 0, jump/call targets and the slot after any jump, call or exit.
  const leader = new Uint8Array(n + 1);
  leader[0] = 1;
  for (let pc = 0; pc < n; pc++) {
    if (an.isTarget[pc]) leader[pc] = 1;
    const op = code.op[pc]!;
    const klass = op & 7;
    if (an.isSecondSlot[pc]) continue;
    if (klass === BPF_JMP || klass === BPF_JMP32) {
      const jop = op & 0xf0;
      if (jop !== BPF_CALL || code.src[pc] === BPF_PSEUDO_CALL || BLOCK_ENDING_HELPERS.has(code.imm[pc]!)) leader[pc + (op === LDDW ? 2 : 1)] = 1;
    }
    for (const s of an.subprogs) leader[s.start] = 1;
  }
  // Instructions (not slots) remaining in the block from each pc, inclusive.
  const REM = new Int32Array(n);
  {
    let count = 0;
    for (let pc = n - 1; pc >= 0; pc--) {
      if (an.isSecondSlot[pc]) continue;
      if (leader[pc + (code.op[pc] === LDDW ? 2 : 1)]) count = 0;
      count++;
      REM[pc] = count;
    }
  }

  const lo = (r: number) => (r === 10 ? String(FRAME_SIZE) : `l${r}`);
  const hi = (r: number) => (r === 10 ? `(${HB + STACK_REGION} + depth)` : `h${r}`);
  const setInit = (r: number) => (dynInit ? `INIT |= ${1 << r};` : '');
  const stepAfter = (pc: number) => `(steps - ${REM[pc]! - 1})`;
  /** Sites of the self-loop body being emitted whose low half is a known stride (see strideInsn). */
  let strideSites: Map<number, boolean> | undefined;
  const after = (pc: number, dst: number) => {
    if (!ins) return '';
    const is32 = strideSites?.get(pc);
    if (is32 !== undefined && ins.strideInsn) return ins.strideInsn(pc, dst, stepAfter(pc), is32);
    return ins.afterInsn(pc, dst, stepAfter(pc));
  };

  const out: string[] = [];
  const emit = (s: string) => out.push(s);

  // Each subprogram is its own JavaScript function, so a bpf-to-bpf call is a JavaScript call:
  // the caller's r6-r9 stay in its locals (callee-saved for free) and V8 can inline small
  // callees. Callees take (depth, r1..r5) and return r0's low half, leaving the high half in
  // RETHI. The entry function (subprogram 0) starts from the registers in vm.R at any pc and
  // gives control back every `slice` instructions (returns 2), so the run loop can report
  // progress and V8 tiers the function up between slices instead of replacing it mid-loop.
  emit(`"use strict";`);
  emit(`const R = vm.R, T = vm.T, H = vm.helperTable, HM = vm.helperByMap, mem = vm.mem;`);
  emit(`const RV = mem.RV, RB = mem.RB, RLO = mem.RLO, RHR = mem.RHR, RHW = mem.RHW, CTXL = vm.ctxLo, CTXH = vm.ctxHi, SDL = mem.shadowDirty;`);
  emit(`let STEPS = 0, RETHI = 0, CINIT = 0, M = mem.dv, SH = mem.shadow, SD = mem.shadowDv;`);
  if (ins) emit(ins.prologue());
  const saveRegs = () => {
    const parts: string[] = [];
    for (let r = 0; r < 10; r++) parts.push(`R[${2 * r}] = l${r}; R[${2 * r + 1}] = h${r};`);
    parts.push(`R[20] = ${FRAME_SIZE}; R[21] = ${HB + STACK_REGION} + depth; vm.steps = steps; vm.depth = depth; vm.initRegs = INIT;`);
    if (ins) parts.push(ins.epilogue());
    return parts.join(' ');
  };
  const fnName = (start: number) => `f${start}`;
  for (const sp of an.subprogs) {
    const entry = sp.start === 0;
    if (entry) {
      emit(`function ${fnName(0)}(startPc, depth, sliceMax) {`);
      emit(`M = mem.dv; SH = mem.shadow; SD = mem.shadowDv;`);
      for (let r = 0; r < 10; r++) emit(`let l${r} = R[${2 * r}] | 0, h${r} = R[${2 * r + 1}] | 0;`);
      emit(`let pc = startPc | 0, steps = vm.steps, max = sliceMax, hard = vm.maxSteps, INIT = vm.initRegs | 0;`);
      if (ins) emit(ins.enter());
    } else {
      emit(`function ${fnName(sp.start)}(depth, l1, h1, l2, h2, l3, h3, l4, h4, l5, h5) {`);
      emit(`let l0 = 0, h0 = 0, l6 = 0, h6 = 0, l7 = 0, h7 = 0, l8 = 0, h8 = 0, l9 = 0, h9 = 0;`);
      emit(`let pc = ${sp.start}, steps = STEPS, hard = vm.maxSteps, INIT = CINIT;`);
      if (ins?.enterCallee) emit(ins.enterCallee());
    }
    emit(`let fp = depth * ${FRAME_SIZE} + ${FRAME_SIZE}, t = 0, u = 0, i = 0, s = 0, q = 0;`);
    // The b<r> locals of the registers whose region lookups this function keeps (filled in below).
    const baseDecl = out.length;
    emit('');
    const baseRegs = new Set<number>();
    // A called function's frame starts out unwritten, whatever an earlier call at this depth left:
    // Machine.clearFrame inline (fp is the frame's end), by 8-byte words of the shadow.
    if (!entry && trackShadow) {
      emit(`q = SDL[depth]; if (q < fp) { const W = mem.shadow64; for (q >>= 3; q < fp >> 3; q++) W[q] = 0; } SDL[depth] = fp - ${FRAME_SIZE - frameLow(sp)};`);
    }
    emit(`try {`);
    if (entry) emit(`slice: {`);
    emit(`dispatch: for (;;) switch (pc) {`);
    for (let pc = sp.start; pc < sp.end; pc++) {
      if (an.isSecondSlot[pc]) continue;
      if (leader[pc]) {
        emit(`case ${pc}:`);
        // A block whose last instruction jumps back to its start becomes a do-while loop.
        let last = pc;
        for (let q = pc; q < sp.end && (q === pc || !leader[q]); q += code.op[q] === LDDW ? 2 : 1) last = q;
        const lop = code.op[last]!;
        const lk = lop & 7;
        const selfLoop = (lk === BPF_JMP || lk === BPF_JMP32) && (lop & 0xf0) !== BPF_CALL && (lop & 0xf0) !== BPF_EXIT && (lop & 0xf0) !== BPF_JA && last + 1 + code.off[last]! === pc && !uninit[last];
        const n = REM[pc]!;
        const budget = entry
          ? `if ((steps += ${n}) > max) { steps -= ${n}; pc = ${pc}; break slice; }`
          : `if ((steps += ${n}) > hard) throw vm.budgetFault(${pc});`;
        if (selfLoop) {
          // Loads through pointers in a loop body without helper calls keep the region they last
          // resolved in locals: nothing in the loop can move a region's bounds.
          let helperCall = false;
          for (let q = pc; q < last; q += code.op[q] === LDDW ? 2 : 1) if ((code.op[q]! & 7) === BPF_JMP && (code.op[q]! & 0xf0) === BPF_CALL) helperCall = true;
          if (!helperCall && !trackShadow) {
            for (let q = pc; q < last; q += code.op[q] === LDDW ? 2 : 1) {
              if ((code.op[q]! & 7) === BPF_LDX && code.src[q] !== 10) {
                cachedSites.add(q);
                emit(`let c${q}h = -1, c${q}l = 0, c${q}u = 0, c${q}b = 0, c${q}v = M;`);
              }
            }
          }
          if (ins?.block) emit(ins.block(pc, last));
          const strides = ins?.strideInsn && ins.strideSettle ? strideRegs(pc, last) : undefined;
          // With stride registers, the iterations are counted (see below).
          if (strides) emit(`let k${pc} = 0;`);
          emit(`do { ${budget}`);
          for (let q = pc; q < last; q += code.op[q] === LDDW ? 2 : 1) emit(insnCode(q));
          const c = cond(lop & 0xf0, code.dst[last]!, (lop & BPF_X) !== 0 ? code.src[last]! : null, code.imm[last]!, lk === BPF_JMP32);
          if (ins && strides) {
            // Iterations from the third on: the stride sites' low halves need no checks (see
            // strideInsn); their prediction state is settled where the loop is left.
            const sites = new Map<number, boolean>();
            const settle: string[] = [];
            for (let q = pc; q < last; q += code.op[q] === LDDW ? 2 : 1) {
              const d = strides.get(code.dst[q]!);
              if (!d || !writesReg(q)) continue;
              sites.set(q, (code.op[q]! & 7) === BPF_ALU);
              settle.push(ins.strideSettle!(q, `(l${code.dst[q]} - ${d.after.get(q)}) | 0`, d.delta));
            }
            const all = settle.join(' ');
            const fastBudget = entry
              ? `if ((steps += ${n}) > max) { steps -= ${n}; ${all} pc = ${pc}; break slice; }`
              : `if ((steps += ${n}) > hard) throw vm.budgetFault(${pc});`;
            strideSites = sites;
            const body: string[] = [];
            for (let q = pc; q < last; q += code.op[q] === LDDW ? 2 : 1) body.push(insnCode(q));
            strideSites = undefined;
            emit(
              `if (${c}) { ${ins.branch(last, true, stepAfter(last))} if (++k${pc} < 2) continue; ` +
                `do { ${fastBudget}\n${body.join('\n')}\n} while (${c}); ${all} ${ins.branch(last, false, stepAfter(last))} break; } ` +
                `${ins.branch(last, false, stepAfter(last))} break; } while (true);`,
            );
          } else if (ins) emit(`if (${c}) { ${ins.branch(last, true, stepAfter(last))} continue; } ${ins.branch(last, false, stepAfter(last))} break; } while (true);`);
          else emit(`} while (${c});`);
          pc = last;
          continue;
        }
        emit(budget);
        if (ins?.block) emit(ins.block(pc, last));
        if (!ins) baseRoles(pc, last, baseRegs);
      }
      emit(insnCode(pc));
    }
    out[baseDecl] = [...baseRegs].map((r) => `let b${r}h = -1, b${r}l = 0, b${r}r = 0, b${r}w = 0, b${r}b = 0, b${r}i = 0, b${r}v = M;`).join(' ');
    emit(`default: throw vm.internalError(pc);`);
    emit(`}`); // switch
    if (entry) {
      // The slice is used up at the start of the block at pc: either the budget is exhausted, or
      // control goes back to the run loop, which calls again from pc.
      emit(`}`);
      emit(`if (steps + REM[pc] > hard) { steps += REM[pc]; throw vm.budgetFault(pc); }`);
      emit(`${saveRegs()} vm.pc = pc; return 2;`);
    }
    emit(`} catch (e) {`);
    emit(`if (vm.isUncounted(e)) { steps -= REM[e.pc]; ${saveRegs()} vm.pc = e.pc; vm.markCounted(e); }`);
    emit(`throw e;`);
    emit(`}`);
    emit(`}`);
  }
  emit(`const FN = [];`);
  for (const sp of an.subprogs) emit(`FN[${sp.start}] = ${fnName(sp.start)};`);
  // Calls a subprogram from a helper (bpf_loop and other callbacks): args are r1..r5 as lo, hi pairs.
  emit(`function invoke(start, depth, a) { STEPS = vm.steps; CINIT = ${0x3e | (1 << 10)}; const l = FN[start](depth, a[0] | 0, a[1] | 0, a[2] | 0, a[3] | 0, a[4] | 0, a[5] | 0, a[6] | 0, a[7] | 0, a[8] | 0, a[9] | 0); vm.steps = STEPS; T[0] = l; T[1] = RETHI; }`);
  emit(`return { run: ${fnName(0)}, invoke };`);
  return { source: out.join('\n'), REM, usesShadow: trackShadow || !allProven, shadowLow: frameLow(an.subprogs[0]!) };

  /** Does the instruction at q write its dst register (an ALU or load instruction)? */
  function writesReg(q: number): boolean {
    const k = code.op[q]! & 7;
    return k === BPF_ALU || k === BPF_ALU64 || k === BPF_LDX || (k === BPF_LD && code.op[q] === LDDW);
  }

  /**
   * The registers of the self-loop body [pc, last) whose every write adds a constant (add or sub
   * with an immediate, 32 or 64 bits), with the low-half difference one iteration makes and, per
   * writing site, what the writes after it in the body add. Undefined when there are none.
   */
  function strideRegs(pc: number, last: number): Map<number, { delta: number; after: Map<number, number> }> | undefined {
    const ok = new Int8Array(11).fill(-1); // -1 unwritten, 1 stride writes only, 0 other writes
    const sites: number[][] = Array.from({ length: 11 }, () => []);
    for (let q = pc; q < last; q += code.op[q] === LDDW ? 2 : 1) {
      const op = code.op[q]!;
      const k = op & 7;
      const no = (r: number) => (ok[r] = 0);
      if (k === BPF_ALU || k === BPF_ALU64) {
        const aop = op & 0xf0;
        const d = code.dst[q]!;
        if ((aop === BPF_ADD || aop === BPF_SUB) && (op & BPF_X) === 0 && code.off[q] === 0) {
          if (ok[d] !== 0) ok[d] = 1;
          sites[d]!.push(q);
        } else no(d);
      } else if (k === BPF_LDX || k === BPF_LD) {
        no(code.dst[q]!);
        if (op !== LDDW) for (let r = 0; r <= 5; r++) no(r); // legacy packet loads write r0, clobber r1-r5
      } else if (k === BPF_STX && (op & 0xe0) === BPF_ATOMIC) {
        no(0);
        no(code.src[q]!);
      } else if ((k === BPF_JMP || k === BPF_JMP32) && (op & 0xf0) === BPF_CALL) {
        for (let r = 0; r <= 5; r++) no(r);
      }
    }
    let out: Map<number, { delta: number; after: Map<number, number> }> | undefined;
    for (let r = 0; r < 10; r++) {
      if (ok[r] !== 1) continue;
      const adds = sites[r]!.map((q) => ((code.op[q]! & 0xf0) === BPF_SUB ? -code.imm[q]! : code.imm[q]!) | 0);
      const after = new Map<number, number>();
      let sum = 0;
      for (let j = adds.length - 1; j >= 0; j--) {
        after.set(sites[r]![j]!, sum);
        sum = (sum + adds[j]!) | 0;
      }
      (out ??= new Map()).set(r, { delta: sum, after });
    }
    return out;
  }

  /** Does the 4-byte load at pc read the machine's context table (see CompileOptions.ctxSlots)? */
  function ctxTableLoad(pc: number): boolean {
    const op = code.op[pc]!;
    const ctxBase = ctxRegs[pc]?.[code.src[pc]!];
    if (ctxBase === undefined || Number.isNaN(ctxBase) || sizeBytes(op) !== 4 || (op & 0xe0) === BPF_MEMSX) return false;
    const o = ctxBase + code.off[pc]!;
    return o >= 0 && o % 4 === 0 && opts.ctxSlots![o >> 2] === 1;
  }

  /**
   * Roles of the accesses through pointer registers in the block [pc, last] (baseRole): where a
   * register is the base of two or more accesses with no call between them, the first keeps its
   * region lookup and the later ones use it. Region bounds only move in helpers (a call ends the
   * run of accesses); a pointer whose high half differs from the kept one (another region) looks
   * its region up again.
   */
  function baseRoles(pc: number, last: number, regs: Set<number>): void {
    const first = new Map<number, number>();
    for (let q = pc; q <= last; q += code.op[q] === LDDW ? 2 : 1) {
      const op = code.op[q]!;
      const k = op & 7;
      let base = -1;
      if (k === BPF_LDX && code.src[q] !== 10 && !ctxTableLoad(q)) base = code.src[q]!;
      else if ((k === BPF_ST || (k === BPF_STX && (op & 0xe0) !== BPF_ATOMIC)) && code.dst[q] !== 10) base = code.dst[q]!;
      else if ((k === BPF_JMP && (op & 0xf0) === BPF_CALL) || (k === BPF_STX && (op & 0xe0) === BPF_ATOMIC) || (k === BPF_LD && op !== LDDW)) {
        // Out-of-line code: helpers, atomics and legacy packet loads call into the machine.
        first.clear();
        continue;
      }
      if (base < 0) continue;
      const f = first.get(base);
      if (f === undefined) {
        first.set(base, q);
        continue;
      }
      baseRole[f] = KEEP;
      baseRole[q] = USE;
      regs.add(base);
    }
  }

  function insnCode(pc: number): string {
    const op = code.op[pc]!;
    const dst = code.dst[pc]!;
    const src = code.src[pc]!;
    const off = code.off[pc]!;
    const imm = code.imm[pc]!;
    const klass = op & 7;
    const check = uninit[pc] ? `if ((INIT & ${uninit[pc]}) !== ${uninit[pc]}) vm.uninitReg(${pc}, ${uninit[pc]} & ~INIT, steps - ${REM[pc]});` : '';
    switch (klass) {
      case BPF_ALU64:
        return check + alu64(pc, op, dst, src, off, imm) + setInit(dst) + after(pc, dst);
      case BPF_ALU:
        return check + alu32(op, dst, src, off, imm) + setInit(dst) + after(pc, dst);
      case BPF_JMP:
      case BPF_JMP32:
        return check + jmp(pc, op, dst, src, off, imm, klass === BPF_JMP32);
      case BPF_LD:
        return check + ld(pc, op, dst, src, imm);
      case BPF_LDX:
        return check + ldx(pc, op, dst, src, off) + setInit(dst) + after(pc, dst);
      case BPF_ST:
        return check + store(pc, op, dst, off, String(imm), String(imm >> 31)) + after(pc, -1);
      case BPF_STX:
        if ((op & 0xe0) === BPF_ATOMIC) return check + atomic(pc, op, dst, src, off, imm);
        return check + store(pc, op, dst, off, lo(src), hi(src)) + after(pc, -1);
    }
    throw new Error(`internal: unexpected class at pc ${pc}`);
  }

  function alu64(pc: number, op: number, d: number, s: number, off: number, imm: number): string {
    const isX = (op & BPF_X) !== 0;
    const L = `l${d}`;
    const Hd = `h${d}`;
    const sl = isX ? lo(s) : String(imm | 0);
    const sh = isX ? hi(s) : String(imm >> 31);
    const su = isX ? `(${lo(s)} >>> 0)` : String(imm >>> 0);
    switch (op & 0xf0) {
      case BPF_MOV:
        if (!isX) return `${L} = ${imm | 0}; ${Hd} = ${imm >> 31};`;
        if (off === 8) return `${L} = (${sl} << 24) >> 24; ${Hd} = ${L} >> 31;`;
        if (off === 16) return `${L} = (${sl} << 16) >> 16; ${Hd} = ${L} >> 31;`;
        if (off === 32) return `${L} = ${sl}; ${Hd} = ${L} >> 31;`;
        return `${L} = ${sl}; ${Hd} = ${sh};`;
      case BPF_ADD:
        return `t = (${L} >>> 0) + ${su}; ${Hd} = (${Hd} + ${sh} + (t > 4294967295 ? 1 : 0)) | 0; ${L} = t | 0;`;
      case BPF_SUB:
        return `t = (${L} >>> 0) - ${su}; ${Hd} = (${Hd} - ${sh} - (t < 0 ? 1 : 0)) | 0; ${L} = t | 0;`;
      case BPF_MUL:
        return `t = Math.imul(${L}, ${sl}); ${Hd} = (Math.imul(${Hd}, ${sl}) + Math.imul(${L}, ${sh}) + mulhu(${L}, ${sl})) | 0; ${L} = t;`;
      case BPF_DIV:
      case BPF_MOD: {
        const isMod = (op & 0xf0) === BPF_MOD;
        if (off === 1) {
          // Signed (sdiv/smod). Operands that fit in 32 bits take the exact double path.
          const fast = isMod
            ? `if (${sl} !== 0) { t = ${L} % ${sl}; ${L} = t | 0; ${Hd} = t < 0 ? -1 : 0; }`
            : `if (${sl} === 0) { ${L} = 0; ${Hd} = 0; } else { t = Math.trunc(${L} / ${sl}); ${L} = t | 0; ${Hd} = t < 0 ? -1 : 0; }`;
          return `if (${Hd} === (${L} >> 31) && ${sh} === (${sl} >> 31)) { ${fast} } else { vm.${isMod ? 'smod64' : 'sdiv64'}(${L}, ${Hd}, ${sl}, ${sh}); ${L} = T[0]; ${Hd} = T[1]; }`;
        }
        const fast = isMod ? `if (${sl} !== 0) ${L} = ((${L} >>> 0) % ${su}) | 0;` : `${L} = ${sl} === 0 ? 0 : ((${L} >>> 0) / ${su}) | 0;`;
        return `if ((${Hd} | ${sh}) === 0) { ${fast} } else { vm.${isMod ? 'umod64' : 'udiv64'}(${L}, ${Hd}, ${sl}, ${sh}); ${L} = T[0]; ${Hd} = T[1]; }`;
      }
      case BPF_OR:
        return `${L} |= ${sl}; ${Hd} |= ${sh};`;
      case BPF_AND:
        return `${L} &= ${sl}; ${Hd} &= ${sh};`;
      case BPF_XOR:
        return `${L} ^= ${sl}; ${Hd} ^= ${sh};`;
      case BPF_LSH:
      case BPF_RSH:
      case BPF_ARSH:
        return isX ? `s = ${lo(s)} & 63; ${shift64(op & 0xf0, L, Hd, 's')}` : shift64Const(op & 0xf0, L, Hd, imm & 63);
      case BPF_NEG:
        return `t = ${L}; ${L} = (-t) | 0; ${Hd} = (~${Hd} + (t === 0 ? 1 : 0)) | 0;`;
      case BPF_END:
        // BPF_ALU64 | BPF_END: the unconditional byte swap (cpuv4 bswap).
        return bswap(L, Hd, imm);
    }
    throw new Error(`internal: alu64 op at pc ${pc}`);
  }

  function alu32(op: number, d: number, s: number, off: number, imm: number): string {
    const isX = (op & BPF_X) !== 0;
    const L = `l${d}`;
    const Hd = `h${d}`;
    const x = isX ? lo(s) : String(imm | 0);
    const xu = isX ? `(${lo(s)} >>> 0)` : String(imm >>> 0);
    const z = `${Hd} = 0;`;
    switch (op & 0xf0) {
      case BPF_MOV:
        if (isX && off === 8) return `${L} = (${x} << 24) >> 24; ${z}`;
        if (isX && off === 16) return `${L} = (${x} << 16) >> 16; ${z}`;
        return `${L} = ${x}; ${z}`;
      case BPF_ADD:
        return `${L} = (${L} + ${x}) | 0; ${z}`;
      case BPF_SUB:
        return `${L} = (${L} - ${x}) | 0; ${z}`;
      case BPF_MUL:
        return `${L} = Math.imul(${L}, ${x}); ${z}`;
      case BPF_DIV:
        if (off === 1) return `${L} = ${x} === 0 ? 0 : (${L} / ${x}) | 0; ${z}`;
        return `${L} = ${x} === 0 ? 0 : ((${L} >>> 0) / ${xu}) | 0; ${z}`;
      case BPF_MOD:
        if (off === 1) return `if (${x} !== 0) ${L} = (${L} % ${x}) | 0; ${z}`;
        return `if (${x} !== 0) ${L} = ((${L} >>> 0) % ${xu}) | 0; ${z}`;
      case BPF_OR:
        return `${L} |= ${x}; ${z}`;
      case BPF_AND:
        return `${L} &= ${x}; ${z}`;
      case BPF_XOR:
        return `${L} ^= ${x}; ${z}`;
      case BPF_LSH:
        return `${L} = ${L} << (${x} & 31); ${z}`;
      case BPF_RSH:
        return `${L} = (${L} >>> (${x} & 31)) | 0; ${z}`;
      case BPF_ARSH:
        return `${L} = ${L} >> (${x} & 31); ${z}`;
      case BPF_NEG:
        return `${L} = (-${L}) | 0; ${z}`;
      case BPF_END:
        if ((op & BPF_TO_BE) === BPF_TO_BE) return bswap(L, Hd, imm);
        // To little-endian on a little-endian machine: truncate to the width.
        if (imm === 16) return `${L} &= 0xffff; ${z}`;
        if (imm === 32) return z;
        return '';
    }
    throw new Error('internal: alu32 op');
  }

  function bswap(L: string, Hd: string, width: number): string {
    if (width === 16) return `${L} = ((${L} & 0xff) << 8) | ((${L} >>> 8) & 0xff); ${Hd} = 0;`;
    if (width === 32) return `${L} = bswap32(${L}); ${Hd} = 0;`;
    return `t = bswap32(${L}); ${L} = bswap32(${Hd}); ${Hd} = t;`;
  }

  function shift64Const(kind: number, L: string, Hd: string, k: number): string {
    if (k === 0) return '';
    if (kind === BPF_LSH) return k < 32 ? `${Hd} = (${Hd} << ${k}) | (${L} >>> ${32 - k}); ${L} = ${L} << ${k};` : `${Hd} = ${L} << ${k - 32}; ${L} = 0;`;
    if (kind === BPF_RSH) return k < 32 ? `${L} = (${L} >>> ${k}) | (${Hd} << ${32 - k}); ${Hd} = (${Hd} >>> ${k}) | 0;` : `${L} = (${Hd} >>> ${k - 32}) | 0; ${Hd} = 0;`;
    return k < 32 ? `${L} = (${L} >>> ${k}) | (${Hd} << ${32 - k}); ${Hd} = ${Hd} >> ${k};` : `${L} = ${Hd} >> ${k - 32}; ${Hd} = ${Hd} >> 31;`;
  }

  function shift64(kind: number, L: string, Hd: string, v: string): string {
    const small = (k: string) =>
      kind === BPF_LSH
        ? `${Hd} = (${Hd} << ${k}) | (${L} >>> (32 - ${k})); ${L} = ${L} << ${k};`
        : kind === BPF_RSH
          ? `${L} = (${L} >>> ${k}) | (${Hd} << (32 - ${k})); ${Hd} = (${Hd} >>> ${k}) | 0;`
          : `${L} = (${L} >>> ${k}) | (${Hd} << (32 - ${k})); ${Hd} = ${Hd} >> ${k};`;
    const big =
      kind === BPF_LSH
        ? `${Hd} = ${L} << (${v} - 32); ${L} = 0;`
        : kind === BPF_RSH
          ? `${L} = (${Hd} >>> (${v} - 32)) | 0; ${Hd} = 0;`
          : `${L} = ${Hd} >> (${v} - 32); ${Hd} = ${Hd} >> 31;`;
    return `if (${v} >= 32) { ${big} } else if (${v} !== 0) { ${small(v)} }`;
  }

  function cond(jop: number, a: number, b: number | null, imm: number, is32: boolean): string {
    const al = lo(a);
    const ah = hi(a);
    const bl = b === null ? String(imm | 0) : lo(b);
    const bh = b === null ? String(imm >> 31) : hi(b);
    const alu = `(${al} >>> 0)`;
    const blu = b === null ? String(imm >>> 0) : `(${bl} >>> 0)`;
    if (is32) {
      switch (jop) {
        case BPF_JEQ: return `${al} === ${bl}`;
        case BPF_JNE: return `${al} !== ${bl}`;
        case BPF_JGT: return `${alu} > ${blu}`;
        case BPF_JGE: return `${alu} >= ${blu}`;
        case BPF_JLT: return `${alu} < ${blu}`;
        case BPF_JLE: return `${alu} <= ${blu}`;
        case BPF_JSGT: return `${al} > ${bl}`;
        case BPF_JSGE: return `${al} >= ${bl}`;
        case BPF_JSLT: return `${al} < ${bl}`;
        case BPF_JSLE: return `${al} <= ${bl}`;
        case BPF_JSET: return `(${al} & ${bl}) !== 0`;
      }
    } else {
      const ahu = `(${ah} >>> 0)`;
      const bhu = b === null ? String((imm >> 31) >>> 0) : `(${bh} >>> 0)`;
      switch (jop) {
        case BPF_JEQ: return `${al} === ${bl} && ${ah} === ${bh}`;
        case BPF_JNE: return `${al} !== ${bl} || ${ah} !== ${bh}`;
        case BPF_JGT: return `${ahu} > ${bhu} || (${ah} === ${bh} && ${alu} > ${blu})`;
        case BPF_JGE: return `${ahu} > ${bhu} || (${ah} === ${bh} && ${alu} >= ${blu})`;
        case BPF_JLT: return `${ahu} < ${bhu} || (${ah} === ${bh} && ${alu} < ${blu})`;
        case BPF_JLE: return `${ahu} < ${bhu} || (${ah} === ${bh} && ${alu} <= ${blu})`;
        case BPF_JSGT: return `${ah} > ${bh} || (${ah} === ${bh} && ${alu} > ${blu})`;
        case BPF_JSGE: return `${ah} > ${bh} || (${ah} === ${bh} && ${alu} >= ${blu})`;
        case BPF_JSLT: return `${ah} < ${bh} || (${ah} === ${bh} && ${alu} < ${blu})`;
        case BPF_JSLE: return `${ah} < ${bh} || (${ah} === ${bh} && ${alu} <= ${blu})`;
        case BPF_JSET: return `(${al} & ${bl}) !== 0 || (${ah} & ${bh}) !== 0`;
      }
    }
    throw new Error('internal: jump condition');
  }

  function jmp(pc: number, op: number, d: number, s: number, off: number, imm: number, is32: boolean): string {
    const jop = op & 0xf0;
    if (jop === BPF_JA) {
      const target = pc + 1 + (is32 ? imm : off);
      return `${after(pc, -1)} pc = ${target}; continue dispatch;`;
    }
    if (jop === BPF_EXIT) {
      const sp = an.subprogs[an.subprogOf[pc]!]!;
      if (sp.start === 0) return `${after(pc, -1)} ${saveRegs()} vm.pc = ${pc}; return 0;`;
      return `${after(pc, -1)} ${ins?.leaveCallee?.() ?? ''} STEPS = steps; RETHI = h0; return l0;`;
    }
    if (jop === BPF_CALL) {
      if (code.src[pc] === BPF_PSEUDO_CALL) {
        const target = pc + 1 + imm;
        const args = [1, 2, 3, 4, 5].map((r) => `l${r}, h${r}`).join(', ');
        const initIn = dynInit ? `CINIT = INIT & ${0x3e | (1 << 10)};` : '';
        const initOut = dynInit ? ` INIT = (INIT & ~${0x3e}) | 1;` : '';
        return `if (depth === ${MAX_CALL_FRAMES - 1}) throw vm.callTooDeep(${pc}); ${after(pc, -1)} ${ins?.beforeLocalCall?.() ?? ''} STEPS = steps; ${initIn} l0 = f${target}(depth + 1, ${args}); h0 = RETHI; steps = STEPS;${initOut} ${ins?.afterCall?.() ?? ''}`;
      }
      // Helper call: arguments through vm.R, result in r0.
      // r0 goes too: a helper that fails without a result (bpf_tail_call) leaves it unchanged.
      const args: string[] = [];
      for (let r = 0; r <= 5; r++) args.push(`R[${2 * r}] = l${r}; R[${2 * r + 1}] = h${r};`);
      const tail = imm === 12 ? ` if (vm.tailTarget !== null) { ${saveRegs()} vm.pc = ${pc}; return 1; }` : '';
      const initFix = dynInit ? ` INIT = (INIT & ~${0x3e}) | 1;` : '';
      const special = mapArgs && mapArgs[pc]! >= 0 ? opts.helperForMap!(imm, mapArgs[pc]!) : -1;
      const fn = special >= 0 ? `HM[${special}]` : `H[${imm}]`;
      return `${args.join(' ')} vm.pc = ${pc}; vm.steps = steps; vm.depth = depth; ${ins ? ins.beforeCall(pc, stepAfter(pc)) : ''} ${fn}(vm); steps = vm.steps; ${ins?.afterCall?.() ?? ''}${tail} l0 = R[0]; h0 = R[1];${initFix} ${after(pc, 0)}`;
    }
    const c = cond(jop, d, (op & BPF_X) !== 0 ? s : null, imm, is32);
    if (ins) return `if (${c}) { ${ins.branch(pc, true, stepAfter(pc))} pc = ${pc + 1 + off}; continue dispatch; } ${ins.branch(pc, false, stepAfter(pc))}`;
    return `if (${c}) { pc = ${pc + 1 + off}; continue dispatch; }`;
  }

  function ld(pc: number, op: number, d: number, s: number, imm: number): string {
    if (op === LDDW) {
      const srcKind = code.src[pc]!;
      let l: number;
      let h: number;
      if (srcKind === 0) {
        l = imm | 0;
        h = code.imm[pc + 1]! | 0;
      } else if (srcKind === BPF_PSEUDO_MAP_IDX || srcKind === BPF_PSEUDO_MAP_IDX_VALUE || srcKind === BPF_PSEUDO_FUNC) {
        const v = env.lddwValue(pc);
        l = v.lo | 0;
        h = v.hi | 0;
      } else {
        throw new Error(`internal: lddw source ${srcKind} at pc ${pc}`);
      }
      return `l${d} = ${l}; h${d} = ${h}; ${setInit(d)} ${after(pc, d)}`;
    }
    // LD_ABS / LD_IND: r0 = ntoh(*(packet + imm [+ src])); out of bounds ends the program with 0.
    const size = sizeBytes(op);
    const index = (op & 0xe0) === BPF_ABS ? '0' : lo(s);
    return `if (!vm.ldPacket(${pc}, ${imm | 0}, ${index}, ${size})) { l0 = 0; h0 = 0; ${after(pc, 0)} ${saveRegs()} vm.pc = ${pc}; return 0; } l0 = T[0]; h0 = 0; ${setInit(0)} ${after(pc, 0)}`;
  }

  function ldx(pc: number, op: number, d: number, s: number, off: number): string {
    const size = sizeBytes(op);
    const signed = (op & 0xe0) === BPF_MEMSX;
    const L = `l${d}`;
    const Hd = `h${d}`;
    const read = (p: string, V = 'M') => {
      switch (size) {
        case 1: return signed ? `${L} = ${V}.getInt8(${p}); ${Hd} = ${L} >> 31;` : `${L} = ${V}.getUint8(${p}); ${Hd} = 0;`;
        case 2: return signed ? `${L} = ${V}.getInt16(${p}, true); ${Hd} = ${L} >> 31;` : `${L} = ${V}.getUint16(${p}, true); ${Hd} = 0;`;
        case 4: return signed ? `${L} = ${V}.getInt32(${p}, true); ${Hd} = ${L} >> 31;` : `${L} = ${V}.getInt32(${p}, true); ${Hd} = 0;`;
        default: return `${Hd} = ${V}.getInt32(${p} + 4, true); ${L} = ${V}.getInt32(${p}, true);`;
      }
    };
    const ctxBase = ctxRegs[pc]?.[s];
    if (ctxBase !== undefined && !Number.isNaN(ctxBase) && size === 4 && !signed) {
      const o = ctxBase + off;
      if (o >= 0 && o % 4 === 0 && opts.ctxSlots![o >> 2]) return `${L} = CTXL[${o >> 2}]; ${Hd} = CTXH[${o >> 2}];`;
    }
    if (s === 10) {
      const at = FRAME_SIZE + off;
      if (at < 0 || at + size > FRAME_SIZE) return `throw vm.stackFault(${pc}, ${off}, ${size}, false, depth);`;
      const p = `fp + ${off}`;
      let chk = '';
      if (!proven[pc]) {
        const bytes = Array.from({ length: size }, (_, k) => `SH[${p} + ${k}]`).join(' & ');
        chk = `if ((${bytes}) === 0) vm.uninitStack(${pc}, ${off}, ${size}, depth, steps - ${REM[pc]}); `;
      }
      return chk + read(p);
    }
    // A pointer into a stack frame (regions 0..7) checks that the bytes were written.
    const stackCheck = trackShadow ? `if (i < ${MAX_CALL_FRAMES}) { q = RB[i] + u; if (${shadowMissing(size, 'q')}) vm.uninitStack(${pc}, u - ${FRAME_SIZE}, ${size}, i, steps - ${REM[pc]}); } ` : '';
    if (cachedSites.has(pc)) {
      const c = `c${pc}`;
      return (
        `u = (${lo(s)} >>> 0) + ${off}; ` +
        `if (${hi(s)} === ${c}h && u >= ${c}l && u + ${size} <= ${c}u) { ${read(`${c}b + u`, `${c}v`)} } ` +
        `else { i = (${hi(s)} - ${HB}) >>> 0; ` +
        `if (i < ${MAX_REGIONS} && u >= RLO[i] && u + ${size} <= RHR[i]) { ${c}h = ${hi(s)}; ${c}l = RLO[i]; ${c}u = RHR[i]; ${c}b = RB[i]; ${c}v = RV[i]; ${read('RB[i] + u', 'RV[i]')} } ` +
        `else { vm.load(${pc}, ${lo(s)}, ${hi(s)}, ${off}, ${size}, ${signed}); ${L} = T[0]; ${Hd} = T[1]; } }`
      );
    }
    const role = baseRole[pc];
    const b = `b${s}`;
    const keep = role ? keepRegion(s) : '';
    const lookup =
      `i = (${hi(s)} - ${HB}) >>> 0; ` +
      `if (i < ${MAX_REGIONS} && u >= RLO[i] && u + ${size} <= RHR[i]) { ${keep}${stackCheck}${read('RB[i] + u', 'RV[i]')} } ` +
      `else { ${role ? `${b}h = -1; ` : ''}vm.load(${pc}, ${lo(s)}, ${hi(s)}, ${off}, ${size}, ${signed}); ${L} = T[0]; ${Hd} = T[1]; }`;
    if (role !== USE) return `u = (${lo(s)} >>> 0) + ${off}; ${lookup}`;
    const keptCheck = trackShadow ? `if (${b}i < ${MAX_CALL_FRAMES}) { q = ${b}b + u; if (${shadowMissing(size, 'q')}) vm.uninitStack(${pc}, u - ${FRAME_SIZE}, ${size}, ${b}i, steps - ${REM[pc]}); } ` : '';
    return `u = (${lo(s)} >>> 0) + ${off}; if (${hi(s)} === ${b}h && u >= ${b}l && u + ${size} <= ${b}r) { ${keptCheck}${read(`${b}b + u`, `${b}v`)} } else { ${lookup} }`;
  }

  /** Keeps region i, just looked up for register r, in r's b<r> locals (see baseRoles). */
  function keepRegion(r: number): string {
    const b = `b${r}`;
    return `${b}h = ${hi(r)}; ${b}l = RLO[i]; ${b}r = RHR[i]; ${b}w = RHW[i]; ${b}b = RB[i]; ${b}i = i; ${b}v = RV[i]; `;
  }

  function writeFlat(size: number, p: string, vl: string, vh: string, V = 'M'): string {
    switch (size) {
      case 1: return `${V}.setInt8(${p}, ${vl});`;
      case 2: return `${V}.setInt16(${p}, ${vl}, true);`;
      case 4: return `${V}.setInt32(${p}, ${vl}, true);`;
      default: return `${V}.setInt32(${p}, ${vl}, true); ${V}.setInt32(${p} + 4, ${vh}, true);`;
    }
  }

  function shadowMissing(size: number, p: string): string {
    switch (size) {
      case 1: return `SH[${p}] === 0`;
      case 2: return `SD.getInt16(${p}) !== 0x0101`;
      case 4: return `SD.getInt32(${p}) !== 0x01010101`;
      default: return `(SD.getInt32(${p}) & SD.getInt32(${p} + 4)) !== 0x01010101`;
    }
  }

  function markShadow(size: number, p: string): string {
    switch (size) {
      case 1: return `SH[${p}] = 1;`;
      case 2: return `SD.setInt16(${p}, 0x0101);`;
      case 4: return `SD.setInt32(${p}, 0x01010101);`;
      default: return `SD.setInt32(${p}, 0x01010101); SD.setInt32(${p} + 4, 0x01010101);`;
    }
  }

  function store(pc: number, op: number, d: number, off: number, vl: string, vh: string): string {
    const size = sizeBytes(op);
    if (d === 10) {
      const at = FRAME_SIZE + off;
      if (at < 0 || at + size > FRAME_SIZE) return `throw vm.stackFault(${pc}, ${off}, ${size}, true, depth);`;
      const shadow = trackShadow ? markShadow(size, 'u') : '';
      const rec = ins ? ins.afterStore(pc, size, `${STACK_REGION} + depth`, String(at), vl, vh, stepAfter(pc)) : '';
      return `u = fp + ${off}; ${writeFlat(size, 'u', vl, vh)} ${shadow} ${rec}`;
    }
    const rec = ins ? ins.afterStore(pc, size, 'i', 'u', vl, vh, stepAfter(pc)) : '';
    // Marks through a pointer can land anywhere in a frame: the frame's next clear starts there.
    const stackMark = trackShadow ? `if (i < ${MAX_CALL_FRAMES}) { q = RB[i] + u; ${markShadow(size, 'q')} if (q < SDL[i]) SDL[i] = q; } ` : '';
    const role = baseRole[pc];
    const b = `b${d}`;
    const keep = role ? keepRegion(d) : '';
    const lookup =
      `i = (${hi(d)} - ${HB}) >>> 0; ` +
      `if (i < ${MAX_REGIONS} && u >= RLO[i] && u + ${size} <= RHW[i]) { ${keep}${writeFlat(size, 'RB[i] + u', vl, vh, 'RV[i]')} ${stackMark}${rec} } ` +
      `else { ${role ? `${b}h = -1; ` : ''}${ins ? ins.beforeCall(pc, stepAfter(pc)) : ''} vm.store(${pc}, ${lo(d)}, ${hi(d)}, ${off}, ${size}, ${vl}, ${vh}); }`;
    if (role !== USE) return `u = (${lo(d)} >>> 0) + ${off}; ${lookup}`;
    const keptMark = trackShadow ? `if (${b}i < ${MAX_CALL_FRAMES}) { q = ${b}b + u; ${markShadow(size, 'q')} if (q < SDL[${b}i]) SDL[${b}i] = q; } ` : '';
    return `u = (${lo(d)} >>> 0) + ${off}; if (${hi(d)} === ${b}h && u >= ${b}l && u + ${size} <= ${b}w) { ${writeFlat(size, `${b}b + u`, vl, vh, `${b}v`)} ${keptMark}} else { ${lookup} }`;
  }

  function atomic(pc: number, op: number, d: number, s: number, off: number, imm: number): string {
    const size = (op & 0x18) === BPF_DW ? 8 : 4;
    // vm.atomic performs the read-modify-write through the slow path and leaves the old value in T.
    let result = '';
    const extra: number[] = [];
    if (imm === BPF_CMPXCHG) {
      result = `l0 = T[0]; h0 = T[1]; ${setInit(0)}`;
      extra.push(0);
    } else if (imm & BPF_FETCH || imm === BPF_XCHG) {
      result = `l${s} = T[0]; h${s} = T[1]; ${setInit(s)}`;
      extra.push(s);
    }
    const rec = after(pc, extra.length ? extra[0]! : -1);
    const slow = `${ins ? ins.beforeCall(pc, stepAfter(pc)) : ''} vm.atomic(${pc}, ${lo(d)}, ${hi(d)}, ${off}, ${size}, ${imm}, ${lo(s)}, ${hi(s)}, l0, h0); ${result} ${rec}`;
    // Without a recorder, and with nothing observing out-of-line writes, an atomic on a readable
    // and writable flat region other than a stack frame (vm.atomic checks the frame's written
    // bytes) is done inline: map value counters are the common case.
    const inline = ins || d === 10 ? undefined : inlineAtomic(size, imm, s);
    if (!inline) return slow;
    return (
      `u = (${lo(d)} >>> 0) + ${off}; i = (${hi(d)} - ${HB}) >>> 0; ` +
      `if (i >= ${MAX_CALL_FRAMES} && i < ${MAX_REGIONS} && u >= RLO[i] && u + ${size} <= RHR[i] && u + ${size} <= RHW[i] && vm.onWrite === undefined) { ${inline} } ` +
      `else { ${slow} }`
    );
  }

  /** The read-modify-write of an atomic at RV[i], RB[i] + u (old value in t, s), as vm.atomic does it. */
  function inlineAtomic(size: number, imm: number, src: number): string | undefined {
    const sl = lo(src);
    const sh = hi(src);
    const put = (vl: string, vh: string) => (size === 8 ? `V.setInt32(q, ${vl}, true); V.setInt32(q + 4, ${vh}, true);` : `V.setInt32(q, ${vl}, true);`);
    let write: string;
    switch (imm & ~BPF_FETCH) {
      case BPF_ADD:
        write = size === 8 ? `{ const a = (t >>> 0) + (${sl} >>> 0); ${put('a | 0', `(s + ${sh} + (a > 4294967295 ? 1 : 0)) | 0`)} }` : put(`(t + ${sl}) | 0`, '');
        break;
      case BPF_OR:
        write = put(`t | ${sl}`, `s | ${sh}`);
        break;
      case BPF_AND:
        write = put(`t & ${sl}`, `s & ${sh}`);
        break;
      case BPF_XOR:
        write = put(`t ^ ${sl}`, `s ^ ${sh}`);
        break;
      case BPF_XCHG & ~BPF_FETCH:
        if (imm !== BPF_XCHG) return undefined;
        write = put(sl, sh);
        break;
      case BPF_CMPXCHG & ~BPF_FETCH:
        if (imm !== BPF_CMPXCHG) return undefined;
        write = `if (t === l0${size === 8 ? ' && s === h0' : ''}) { ${put(sl, sh)} }`;
        break;
      default:
        return undefined;
    }
    // 32-bit forms zero-extend the old value.
    const oldHi = size === 8 ? 's' : '0';
    let result = '';
    if (imm === BPF_CMPXCHG) result = `l0 = t; h0 = ${oldHi}; ${setInit(0)}`;
    else if (imm & BPF_FETCH) result = `l${src} = t; h${src} = ${oldHi}; ${setInit(src)}`;
    const read = size === 8 ? 't = V.getInt32(q, true); s = V.getInt32(q + 4, true);' : 't = V.getInt32(q, true); s = 0;';
    return `const V = RV[i]; q = RB[i] + u; ${read} ${write} ${result}`;
  }
}
