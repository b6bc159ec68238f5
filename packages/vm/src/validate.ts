// Load-time validation: what the kernel's loader and the structural part of its verifier
// (kernel/bpf/verifier.c: check_subprogs, check_cfg, resolve_pseudo_ldimm64, check_max_stack_depth,
// and the reserved-field checks of do_check) reject before a program runs.

import { LoadError } from './errors.js';
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
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MAXINSNS,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  LDDW,
  MAX_BPF_STACK,
  sizeBytes,
  MAX_CALL_FRAMES,
  type Bytecode,
} from './isa.js';

export interface ValidateOptions {
  /** Number of maps lddw may reference by index (BPF_PSEUDO_MAP_IDX[_VALUE]). */
  mapCount?: number;
  /** Tells whether a helper id is available; returns a reason when it is not. */
  checkHelper?: (id: number) => string | undefined;
  /** Allow LD_ABS/LD_IND (socket filters, tc; the kernel refuses them elsewhere). */
  allowLdAbs?: boolean;
  /** Writes an instruction for error messages. */
  describe?: (pc: number) => string;
}

export interface Subprog {
  start: number;
  /** One past the last slot. */
  end: number;
  /** Bytes of stack the function uses, rounded up to 16 as the kernel counts it for a JIT-compiled program (round_up_stack_depth). */
  stackDepth: number;
  /** Starts of the subprograms it calls with bpf-to-bpf calls. */
  callees: number[];
}

export interface Analysis {
  subprogs: Subprog[];
  /** subprogIndex[pc]: which subprogram a slot belongs to. */
  subprogOf: Int32Array;
  /** jumpTarget[pc] = 1 when some jump, call or callback reference lands on pc. */
  isTarget: Uint8Array;
  /** isSecondSlot[pc] = 1 for the second half of an lddw. */
  isSecondSlot: Uint8Array;
}

const ALU_OPS = new Set([BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_NEG, 0x90, BPF_XOR, BPF_MOV, BPF_ARSH, BPF_END]);
const JMP_COND = new Set([0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0]);
const ATOMIC_OPS = new Set([BPF_ADD, BPF_OR, BPF_AND, BPF_XOR, BPF_ADD | BPF_FETCH, BPF_OR | BPF_FETCH, BPF_AND | BPF_FETCH, BPF_XOR | BPF_FETCH, BPF_XCHG, BPF_CMPXCHG]);

/** Validates bytecode and computes its subprogram structure, or throws a LoadError. */
export function validate(code: Bytecode, opts: ValidateOptions = {}): Analysis {
  const n = code.length;
  const at = (pc: number) => (opts.describe ? ` (${safe(() => opts.describe!(pc))})` : '');
  const fail = (pc: number, what: string): never => {
    throw new LoadError(`invalid program: ${what} at pc ${pc}${at(pc)}`, pc);
  };
  if (n === 0) throw new LoadError('invalid program: the program is empty');
  if (n > BPF_MAXINSNS) throw new LoadError(`invalid program: ${n} instructions, the kernel's limit is ${BPF_MAXINSNS}`);

  const isSecondSlot = new Uint8Array(n);
  const isTarget = new Uint8Array(n);
  const starts = new Set<number>([0]);

  // Pass 1: encoding of each instruction.
  for (let pc = 0; pc < n; pc++) {
    const op = code.op[pc]!;
    const dst = code.dst[pc]!;
    const src = code.src[pc]!;
    const off = code.off[pc]!;
    const imm = code.imm[pc]!;
    const klass = op & 7;
    if (dst > 10) fail(pc, `invalid destination register r${dst}`);
    if (src > 10) fail(pc, `invalid source register r${src}`);
    const reserved = () => fail(pc, `reserved fields are not zero in opcode 0x${hex2(op)}`);
    switch (klass) {
      case BPF_ALU:
      case BPF_ALU64: {
        const aop = op & 0xf0;
        if (!ALU_OPS.has(aop)) fail(pc, `unknown opcode 0x${hex2(op)}`);
        if (aop === BPF_END) {
          if (klass === BPF_ALU64 && (op & BPF_X) !== 0) fail(pc, `unknown opcode 0x${hex2(op)}`);
          if (imm !== 16 && imm !== 32 && imm !== 64) fail(pc, `invalid endian immediate ${imm}`);
          if (src !== 0 || off !== 0) reserved();
        } else if (aop === BPF_NEG) {
          if ((op & BPF_X) !== 0 || src !== 0 || off !== 0 || imm !== 0) reserved();
        } else {
          const isX = (op & BPF_X) !== 0;
          if (isX ? imm !== 0 : src !== 0) reserved();
          if (aop === BPF_MOV) {
            const okOff = off === 0 || (isX && (off === 8 || off === 16 || (off === 32 && klass === BPF_ALU64)));
            if (!okOff) fail(pc, `invalid movsx offset ${off}`);
          } else if (aop === BPF_DIV || aop === BPF_MOD) {
            if (off !== 0 && off !== 1) fail(pc, `invalid ${aop === BPF_DIV ? 'div' : 'mod'} offset ${off}`);
            // check_alu_op: "div by zero" for a constant divisor of 0.
            if (!isX && imm === 0) fail(pc, `${aop === BPF_DIV ? 'division' : 'modulo'} by the constant 0`);
          } else if (off !== 0) reserved();
          // check_alu_op: "invalid shift" for a constant shift outside [0, width).
          const width = klass === BPF_ALU64 ? 64 : 32;
          if (!isX && (aop === BPF_LSH || aop === BPF_RSH || aop === BPF_ARSH) && (imm < 0 || imm >= width)) fail(pc, `invalid shift ${imm}: a ${width}-bit shift takes 0 to ${width - 1}`);
        }
        if (dst === 10) fail(pc, 'write to the frame pointer r10');
        break;
      }
      case BPF_JMP:
      case BPF_JMP32: {
        const jop = op & 0xf0;
        if (jop === BPF_JA) {
          if ((op & BPF_X) !== 0 || src !== 0 || dst !== 0) reserved();
          if (klass === BPF_JMP ? imm !== 0 : off !== 0) reserved();
          const target = pc + 1 + (klass === BPF_JMP ? off : imm);
          if (target === pc) fail(pc, 'infinite loop: the jump targets itself');
          checkJump(pc, target);
        } else if (jop === BPF_CALL) {
          if (klass !== BPF_JMP) fail(pc, `unknown opcode 0x${hex2(op)}`);
          if ((op & BPF_X) !== 0) fail(pc, 'indirect call (callx) is not supported by the kernel');
          if (off !== 0 || dst !== 0) reserved();
          if (src === BPF_PSEUDO_CALL) {
            const target = pc + 1 + imm;
            checkJump(pc, target, 'call');
            starts.add(target);
          } else if (src === BPF_PSEUDO_KFUNC_CALL) {
            fail(pc, 'kfunc calls are not supported');
          } else if (src !== 0) {
            reserved();
          } else {
            const why = opts.checkHelper?.(imm);
            if (why) fail(pc, why);
          }
        } else if (jop === BPF_EXIT) {
          if (klass !== BPF_JMP) fail(pc, `unknown opcode 0x${hex2(op)}`);
          if ((op & BPF_X) !== 0 || src !== 0 || dst !== 0 || off !== 0 || imm !== 0) reserved();
        } else if (JMP_COND.has(jop)) {
          if ((op & BPF_X) === 0 && src !== 0) reserved();
          if ((op & BPF_X) !== 0 && imm !== 0) reserved();
          checkJump(pc, pc + 1 + off);
        } else {
          fail(pc, `unknown opcode 0x${hex2(op)}`);
        }
        break;
      }
      case BPF_LD: {
        if (op === LDDW) {
          if (pc + 1 >= n) fail(pc, 'incomplete lddw: the second slot is missing');
          if (code.op[pc + 1] !== 0 || code.dst[pc + 1] !== 0 || code.src[pc + 1] !== 0 || code.off[pc + 1] !== 0) {
            fail(pc + 1, 'invalid lddw second half');
          }
          if (off !== 0) reserved();
          if (dst === 10) fail(pc, 'write to the frame pointer r10');
          switch (src) {
            case 0:
              break;
            case BPF_PSEUDO_MAP_IDX:
            case BPF_PSEUDO_MAP_IDX_VALUE:
              if (opts.mapCount === undefined || imm < 0 || imm >= opts.mapCount) fail(pc, `lddw references map ${imm}, the program has ${opts.mapCount ?? 0} maps`);
              break;
            case BPF_PSEUDO_FUNC: {
              const target = pc + 1 + imm;
              checkJump(pc, target, 'callback');
              starts.add(target);
              break;
            }
            case BPF_PSEUDO_MAP_FD:
            case BPF_PSEUDO_MAP_VALUE:
              fail(pc, 'lddw references a map by file descriptor; Rewind loads maps from the object file (BPF_PSEUDO_MAP_IDX)');
              break;
            case BPF_PSEUDO_BTF_ID:
              fail(pc, 'lddw of a kernel BTF id (ksym) is not supported');
              break;
            default:
              fail(pc, `invalid source register ${src} for lddw`);
          }
          isSecondSlot[pc + 1] = 1;
          pc++;
          break;
        }
        const mode = op & 0xe0;
        if ((mode === BPF_ABS || mode === BPF_IND) && (op & 0x18) !== BPF_DW) {
          if (!opts.allowLdAbs) fail(pc, 'legacy packet load (LD_ABS/LD_IND) is only allowed in socket filter and tc programs');
          if (dst !== 0 || off !== 0 || (mode === BPF_ABS && src !== 0)) reserved();
          break;
        }
        fail(pc, `unknown opcode 0x${hex2(op)}`);
        break;
      }
      case BPF_LDX: {
        if (src === 10) checkStackAlign(pc, off, op);
        const mode = op & 0xe0;
        if (mode !== BPF_MEM && !(mode === BPF_MEMSX && (op & 0x18) !== BPF_DW)) fail(pc, `unknown opcode 0x${hex2(op)}`);
        if (imm !== 0) reserved();
        if (dst === 10) fail(pc, 'write to the frame pointer r10');
        break;
      }
      case BPF_ST: {
        if (dst === 10) checkStackAlign(pc, off, op);
        if ((op & 0xe0) !== BPF_MEM) fail(pc, `unknown opcode 0x${hex2(op)}`);
        if (src !== 0) reserved();
        break;
      }
      case BPF_STX: {
        if (dst === 10) checkStackAlign(pc, off, op);
        const mode = op & 0xe0;
        if (mode === BPF_ATOMIC) {
          const size = op & 0x18;
          if (size !== BPF_W && size !== BPF_DW) fail(pc, `unknown opcode 0x${hex2(op)}`);
          if (!ATOMIC_OPS.has(imm)) fail(pc, `invalid atomic operation 0x${(imm >>> 0).toString(16)}`);
        } else if (mode !== BPF_MEM) {
          fail(pc, `unknown opcode 0x${hex2(op)}`);
        } else if (imm !== 0) reserved();
        break;
      }
    }
  }

  // The verifier requires stack accesses to be aligned to their size (check_ptr_alignment is
  // strict for PTR_TO_STACK).
  function checkStackAlign(pc: number, off: number, op: number): void {
    const size = sizeBytes(op);
    if (off % size !== 0) fail(pc, `misaligned stack access (r10 ${off < 0 ? '-' : '+'} ${Math.abs(off)}, size ${size})`);
  }

  function checkJump(pc: number, target: number, what = 'jump'): void {
    if (target < 0 || target >= n) fail(pc, `${what} out of range (to pc ${target}, the program has ${n} slots)`);
    isTarget[target] = 1;
  }

  for (let pc = 0; pc < n; pc++) {
    if (isTarget[pc] && isSecondSlot[pc]) {
      // Find who jumps there, for the message.
      for (let from = 0; from < n; from++) {
        if (targetOf(code, from) === pc) fail(from, `jump into the middle of lddw at pc ${pc - 1}`);
      }
      fail(pc, 'jump into the middle of lddw');
    }
  }

  // Subprograms: [start_i, start_{i+1}). Jumps stay inside their subprogram, and each one ends in
  // exit or an unconditional jump (the kernel's check_subprogs).
  const sorted = [...starts].sort((a, b) => a - b);
  const subprogOf = new Int32Array(n);
  const subprogs: Subprog[] = sorted.map((start, i) => ({ start, end: sorted[i + 1] ?? n, stackDepth: 0, callees: [] }));
  subprogs.forEach((sp, i) => subprogOf.fill(i, sp.start, sp.end));
  for (const sp of subprogs) {
    for (let pc = sp.start; pc < sp.end; pc++) {
      if (isSecondSlot[pc]) continue;
      const t = targetOf(code, pc);
      const op = code.op[pc]!;
      // Calls and callback references (lddw of BPF_PSEUDO_FUNC) lead to other functions by design.
      const leavesFunction = op === LDDW || ((op & 7) === BPF_JMP && (op & 0xf0) === BPF_CALL);
      if (t !== undefined && !leavesFunction && (t < sp.start || t >= sp.end)) {
        fail(pc, `jump out of its function (to pc ${t}, the function is pcs ${sp.start} to ${sp.end - 1})`);
      }
    }
    const lastPc = isSecondSlot[sp.end - 1] ? sp.end - 2 : sp.end - 1;
    const last = code.op[lastPc]!;
    const endsOk = last === (BPF_JMP | BPF_EXIT) || last === (BPF_JMP | BPF_JA) || last === (BPF_JMP32 | BPF_JA);
    if (!endsOk) {
      fail(lastPc, sp.start === 0 && subprogs.length === 1 ? 'the program falls off its end (the last instruction is not exit or a jump)' : `the function at pc ${sp.start} falls off its end (its last instruction is not exit or a jump)`);
    }
    sp.stackDepth = stackDepthOf(code, sp.start, sp.end);
    for (let pc = sp.start; pc < sp.end; pc++) {
      if (code.op[pc] === (BPF_JMP | BPF_CALL) && code.src[pc] === BPF_PSEUDO_CALL && !isSecondSlot[pc]) {
        const callee = pc + 1 + code.imm[pc]!;
        if (!sp.callees.includes(callee)) sp.callees.push(callee);
      }
    }
  }
  checkReachable(code, isSecondSlot, fail);
  checkCallChains(subprogs, fail);
  return { subprogs, subprogOf, isTarget, isSecondSlot };
}

/** The slot a jump, call or callback reference at pc leads to, if any. */
export function targetOf(code: Bytecode, pc: number): number | undefined {
  const op = code.op[pc]!;
  const klass = op & 7;
  if (op === LDDW) return code.src[pc] === BPF_PSEUDO_FUNC ? pc + 1 + code.imm[pc]! : undefined;
  if (klass !== BPF_JMP && klass !== BPF_JMP32) return undefined;
  const jop = op & 0xf0;
  if (jop === BPF_EXIT) return undefined;
  if (jop === BPF_CALL) return code.src[pc] === BPF_PSEUDO_CALL ? pc + 1 + code.imm[pc]! : undefined;
  if (jop === BPF_JA && klass === BPF_JMP32) return pc + 1 + code.imm[pc]!;
  return pc + 1 + code.off[pc]!;
}

/**
 * Stack bytes a function uses: the deepest r10-relative access, following r10 through register
 * copies and constant adds inside straight-line code (what clang emits for &local), rounded up to
 * 16 as the kernel's check_max_stack_depth counts for a JIT-compiled program (the interpreter's
 * rounding to 32 is stricter). A pointer whose offset is not known makes the function count as
 * using the whole 512 bytes.
 */
function stackDepthOf(code: Bytecode, start: number, end: number): number {
  let deepest = 0;
  // fpOff[r] = offset from r10 held by register r, or NaN when not known to be one.
  const fpOff = new Array<number>(11).fill(NaN);
  for (let pc = start; pc < end; pc++) {
    const op = code.op[pc]!;
    const dst = code.dst[pc]!;
    const src = code.src[pc]!;
    const off = code.off[pc]!;
    const imm = code.imm[pc]!;
    const klass = op & 7;
    fpOff[10] = 0;
    const touch = (base: number, o: number) => {
      const b = fpOff[base]!;
      if (!Number.isNaN(b)) deepest = Math.max(deepest, -(b + o));
    };
    if (klass === BPF_LDX) {
      touch(src, off);
      fpOff[dst] = NaN;
    } else if (klass === BPF_ST || klass === BPF_STX) {
      touch(dst, off);
      if (klass === BPF_STX && (op & 0xe0) === BPF_ATOMIC && (imm & BPF_FETCH)) fpOff[imm === BPF_CMPXCHG ? 0 : src] = NaN;
    } else if (klass === BPF_ALU64 && (op & 0xf0) === BPF_MOV && (op & BPF_X) && off === 0) {
      fpOff[dst] = fpOff[src]!;
    } else if (klass === BPF_ALU64 && (op & 0xf0) === BPF_ADD && !(op & BPF_X)) {
      fpOff[dst] = fpOff[dst]! + imm;
    } else if (klass === BPF_ALU64 && (op & 0xf0) === BPF_SUB && !(op & BPF_X)) {
      fpOff[dst] = fpOff[dst]! - imm;
    } else if (klass === BPF_ALU || klass === BPF_ALU64 || (klass === BPF_LD && op === LDDW)) {
      if (!Number.isNaN(fpOff[dst]!) && klass === BPF_ALU64 && (op & 0xf0) === BPF_ADD) deepest = MAX_BPF_STACK; // variable offset
      fpOff[dst] = NaN;
      if (op === LDDW) pc++;
    } else if (klass === BPF_JMP && (op & 0xf0) === BPF_CALL) {
      // A pointer to the stack passed to a helper: the helper may touch any byte above it.
      for (let r = 1; r <= 5; r++) {
        const b = fpOff[r]!;
        if (!Number.isNaN(b)) deepest = Math.max(deepest, -b);
      }
      for (let r = 0; r <= 5; r++) fpOff[r] = NaN;
    }
  }
  deepest = Math.min(Math.max(deepest, 0), MAX_BPF_STACK);
  return Math.ceil(deepest / 16) * 16;
}

/**
 * Every slot must be reachable from pc 0 along jumps (both ways of a conditional one), calls and
 * callback references, as the kernel's check_cfg requires ("unreachable insn N").
 */
function checkReachable(code: Bytecode, isSecondSlot: Uint8Array, fail: (pc: number, what: string) => never): void {
  const n = code.length;
  const seen = new Uint8Array(n);
  const work = [0];
  seen[0] = 1;
  const visit = (pc: number) => {
    if (pc < n && !seen[pc]) {
      seen[pc] = 1;
      work.push(pc);
    }
  };
  while (work.length) {
    const pc = work.pop()!;
    const op = code.op[pc]!;
    const klass = op & 7;
    const t = targetOf(code, pc);
    if (t !== undefined) visit(t);
    if (op === LDDW) {
      seen[pc + 1] = 1;
      visit(pc + 2);
    } else if (klass === BPF_JMP || klass === BPF_JMP32) {
      const jop = op & 0xf0;
      if (jop !== BPF_EXIT && jop !== BPF_JA) visit(pc + 1);
    } else {
      visit(pc + 1);
    }
  }
  for (let pc = 0; pc < n; pc++) {
    if (!seen[pc] && !isSecondSlot[pc]) fail(pc, 'unreachable instruction: no path from the entry reaches it');
  }
}

function checkCallChains(subprogs: Subprog[], fail: (pc: number, what: string) => never): void {
  const byStart = new Map(subprogs.map((s) => [s.start, s]));
  const onPath = new Set<number>();
  const walk = (sp: Subprog, depth: number, frames: number): void => {
    if (frames > MAX_CALL_FRAMES) fail(sp.start, `the call stack of ${frames} frames is too deep (the kernel allows ${MAX_CALL_FRAMES})`);
    const total = depth + sp.stackDepth;
    if (total > MAX_BPF_STACK) fail(sp.start, `combined stack size of ${frames} calls is ${total} bytes, the kernel allows ${MAX_BPF_STACK}`);
    onPath.add(sp.start);
    for (const c of sp.callees) {
      if (onPath.has(c)) fail(c, `recursive call to the function at pc ${c}`);
      walk(byStart.get(c)!, total, frames + 1);
    }
    onPath.delete(sp.start);
  };
  walk(subprogs[0]!, 0, 1);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function safe(f: () => string): string {
  try {
    return f();
  } catch {
    return '?';
  }
}
