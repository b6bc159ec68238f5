// Static analyses the compiler uses to leave checks out of the generated code: which register
// reads and which r10-relative stack reads can see a value never written. They mirror the
// verifier's tracking of NOT_INIT registers and STACK_INVALID slots, but as a must-analysis over
// the control-flow graph: where every path has written the value, no check is emitted; elsewhere
// the check runs at run time and reports only reads that really happen.

import {
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_MOV,
  BPF_NEG,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_MAP_IDX,
  BPF_ST,
  BPF_STX,
  BPF_X,
  LDDW,
  sizeBytes,
  type Bytecode,
} from '../isa.js';
import { FRAME_SIZE } from './memory.js';
import { targetOf, type Analysis } from '../validate.js';

const ALL_REGS = 0x7ff;
const CALLER_SAVED = 0x3e; // r1..r5

/** Registers an instruction reads and writes, as bit masks (bit i = ri). */
export function regUse(code: Bytecode, pc: number): { reads: number; writes: number } {
  const op = code.op[pc]!;
  const dst = code.dst[pc]!;
  const src = code.src[pc]!;
  const klass = op & 7;
  const bit = (r: number) => 1 << r;
  switch (klass) {
    case BPF_ALU:
    case BPF_ALU64: {
      const aop = op & 0xf0;
      if (aop === BPF_MOV) return { reads: op & BPF_X ? bit(src) : 0, writes: bit(dst) };
      if (aop === BPF_NEG || aop === BPF_END) return { reads: bit(dst), writes: bit(dst) };
      return { reads: bit(dst) | (op & BPF_X ? bit(src) : 0), writes: bit(dst) };
    }
    case BPF_JMP:
    case BPF_JMP32: {
      const jop = op & 0xf0;
      if (jop === BPF_JA) return { reads: 0, writes: 0 };
      if (jop === BPF_EXIT) return { reads: bit(0), writes: 0 };
      if (jop === BPF_CALL) return { reads: 0, writes: bit(0) };
      return { reads: bit(dst) | (op & BPF_X ? bit(src) : 0), writes: 0 };
    }
    case BPF_LD:
      if (op === LDDW) return { reads: 0, writes: bit(dst) };
      // LD_ABS / LD_IND read the context from r6 (and the index register) and write r0.
      return { reads: bit(6) | ((op & 0xe0) === BPF_IND ? bit(src) : 0), writes: bit(0) };
    case BPF_LDX:
      return { reads: bit(src), writes: bit(dst) };
    case BPF_ST:
      return { reads: bit(dst), writes: 0 };
    case BPF_STX: {
      if ((op & 0xe0) === BPF_ATOMIC) {
        const imm = code.imm[pc]!;
        if (imm === BPF_CMPXCHG) return { reads: bit(dst) | bit(src) | bit(0), writes: bit(0) };
        return { reads: bit(dst) | bit(src), writes: imm & BPF_FETCH ? bit(src) : 0 };
      }
      return { reads: bit(dst) | bit(src), writes: 0 };
    }
  }
  return { reads: 0, writes: 0 };
}

/**
 * For each slot, the registers that may be read there before being written on some path
 * (0 where every read is of a written register). `entryRegs` are the registers set when the
 * program starts (r1 and r10; r2 too for programs run on caller memory).
 */
export function maybeUninitRegs(code: Bytecode, an: Analysis, entryRegs: number, callbackStarts: Iterable<number>): Int32Array {
  const n = code.length;
  const IN = new Int32Array(n).fill(ALL_REGS);
  const seen = new Uint8Array(n);
  const work: number[] = [];
  const flow = (pc: number, mask: number) => {
    if (pc >= n) return;
    const m = seen[pc] ? IN[pc]! & mask : mask;
    if (!seen[pc] || m !== IN[pc]) {
      seen[pc] = 1;
      IN[pc] = m;
      work.push(pc);
    }
  };
  flow(0, entryRegs | (1 << 10));
  for (const s of callbackStarts) flow(s, CALLER_SAVED | (1 << 10));
  while (work.length) {
    const pc = work.pop()!;
    const op = code.op[pc]!;
    const klass = op & 7;
    const inMask = IN[pc]!;
    const { writes } = regUse(code, pc);
    if (op === LDDW) {
      flow(pc + 2, inMask | writes);
      continue;
    }
    if (klass === BPF_JMP || klass === BPF_JMP32) {
      const jop = op & 0xf0;
      if (jop === BPF_EXIT) continue;
      if (jop === BPF_CALL) {
        if (code.src[pc] === BPF_PSEUDO_CALL) flow(pc + 1 + code.imm[pc]!, (inMask & (CALLER_SAVED | (1 << 10))) | (1 << 10));
        flow(pc + 1, (inMask & ~CALLER_SAVED) | 1);
        continue;
      }
      const t = targetOf(code, pc)!;
      flow(t, inMask);
      if (jop !== BPF_JA) flow(pc + 1, inMask);
      continue;
    }
    flow(pc + 1, inMask | writes);
  }
  const out = new Int32Array(n);
  for (let pc = 0; pc < n; pc++) {
    if (!seen[pc] || an.isSecondSlot[pc]) continue;
    const { reads } = regUse(code, pc);
    out[pc] = reads & ~IN[pc]!;
  }
  return out;
}

/**
 * For each r10-relative load (`rX = *(uN *)(r10 + off)`), whether every path from its function's
 * entry has written all of its bytes with r10-relative stores. Loads not proven need a run-time
 * check of the stack's written-bytes shadow.
 */
export function provenStackLoads(code: Bytecode, an: Analysis): Uint8Array {
  const n = code.length;
  const W = 16; // 512 bits
  const proven = new Uint8Array(n);
  for (const sp of an.subprogs) {
    const len = sp.end - sp.start;
    const IN: (Uint32Array | undefined)[] = new Array(len);
    const work: number[] = [];
    const flow = (pc: number, set: Uint32Array) => {
      if (pc < sp.start || pc >= sp.end) return;
      const cur = IN[pc - sp.start];
      if (!cur) {
        IN[pc - sp.start] = set.slice();
        work.push(pc);
        return;
      }
      let changed = false;
      for (let i = 0; i < W; i++) {
        const v = (cur[i]! & set[i]!) >>> 0;
        if (v !== cur[i]) {
          cur[i] = v;
          changed = true;
        }
      }
      if (changed) work.push(pc);
    };
    flow(sp.start, new Uint32Array(W));
    while (work.length) {
      const pc = work.pop()!;
      const set = IN[pc - sp.start]!.slice();
      const op = code.op[pc]!;
      const klass = op & 7;
      if ((klass === BPF_ST || klass === BPF_STX) && code.dst[pc] === 10) {
        const at = FRAME_SIZE + code.off[pc]!;
        const size = sizeBytes(op);
        if (at >= 0 && at + size <= FRAME_SIZE) for (let b = at; b < at + size; b++) set[b >>> 5]! |= 1 << (b & 31);
      }
      if (op === LDDW) {
        flow(pc + 2, set);
        continue;
      }
      if (klass === BPF_JMP || klass === BPF_JMP32) {
        const jop = op & 0xf0;
        if (jop === BPF_EXIT) continue;
        if (jop !== BPF_CALL) {
          flow(targetOf(code, pc)!, set);
          if (jop === BPF_JA) continue;
        }
      }
      flow(pc + 1, set);
    }
    for (let pc = sp.start; pc < sp.end; pc++) {
      const set = IN[pc - sp.start];
      if (!set || (code.op[pc]! & 7) !== BPF_LDX || code.src[pc] !== 10) continue;
      const at = FRAME_SIZE + code.off[pc]!;
      const size = sizeBytes(code.op[pc]!);
      let ok = at >= 0 && at + size <= FRAME_SIZE;
      for (let b = at; ok && b < at + size; b++) if (!(set[b >>> 5]! & (1 << (b & 31)))) ok = false;
      if (ok) proven[pc] = 1;
    }
  }
  return proven;
}

/**
 * What each register is known to hold at each slot of a function (NaN: nothing known), the
 * state on entry being `entry`: a forward analysis over the function's control-flow graph where
 * two paths agree on a register only when they give it the same value. An `lddw` gives the
 * register `lddw(pc)`, a copy (`rX = rY`) keeps the value, an `rX += imm` gives `addImm(value,
 * imm)`, a call clobbers r0-r5 and any other write forgets the register. Slots the function
 * never reaches stay undefined.
 */
function registerValues(
  code: Bytecode,
  sp: { start: number; end: number },
  entry: Float64Array,
  lddw: (pc: number) => number,
  addImm: (value: number, imm: number) => number,
  IN: (Float64Array | undefined)[],
): void {
  const work: number[] = [];
  const flow = (pc: number, st: Float64Array) => {
    if (pc < sp.start || pc >= sp.end) return;
    const cur = IN[pc];
    if (!cur) {
      IN[pc] = st.slice();
      work.push(pc);
      return;
    }
    let changed = false;
    for (let r = 0; r < 11; r++) {
      if (!Number.isNaN(cur[r]!) && cur[r] !== st[r]) {
        cur[r] = NaN;
        changed = true;
      }
    }
    if (changed) work.push(pc);
  };
  flow(sp.start, entry);
  while (work.length) {
    const pc = work.pop()!;
    const st = IN[pc]!.slice();
    const op = code.op[pc]!;
    const klass = op & 7;
    const dst = code.dst[pc]!;
    if (op === LDDW) {
      st[dst] = lddw(pc);
      flow(pc + 2, st);
      continue;
    }
    if (klass === BPF_JMP || klass === BPF_JMP32) {
      const jop = op & 0xf0;
      if (jop === BPF_EXIT) continue;
      if (jop === BPF_CALL) {
        for (let r = 0; r <= 5; r++) st[r] = NaN;
        flow(pc + 1, st);
        continue;
      }
      flow(targetOf(code, pc)!, st);
      if (jop !== BPF_JA) flow(pc + 1, st);
      continue;
    }
    if (klass === BPF_ALU64 && (op & 0xf0) === BPF_MOV && (op & BPF_X) && code.off[pc] === 0) st[dst] = st[code.src[pc]!]!;
    else if (klass === BPF_ALU64 && (op & 0xf0) === 0x00 && !(op & BPF_X)) st[dst] = addImm(st[dst]!, code.imm[pc]!);
    else {
      const { writes } = regUse(code, pc);
      for (let r = 0; r <= 10; r++) if (writes & (1 << r)) st[r] = NaN;
    }
    flow(pc + 1, st);
  }
}

/**
 * For each slot of the entry function, the offset into the context that each register is known
 * to point to (NaN when it is not known to hold the context pointer). r1 holds the context when
 * the program starts; copies (`rX = rY`) and constant adds keep it, calls clobber r1-r5, and
 * any other write forgets it. The verifier tracks PTR_TO_CTX the same way.
 */
export function ctxPointerRegs(code: Bytecode, an: Analysis): (Float64Array | undefined)[] {
  const IN: (Float64Array | undefined)[] = new Array(code.length);
  const start = new Float64Array(11).fill(NaN);
  start[1] = 0;
  registerValues(code, an.subprogs[0]!, start, () => NaN, (v, imm) => v + imm, IN);
  return IN;
}

/** Helpers whose map argument is r1 (map lookups and updates) or r2 (bpf_tail_call). */
function mapArgReg(helper: number): number {
  return helper === 12 ? 2 : 1;
}

/**
 * For each helper call, the index of the map whose handle its map argument (see mapArgReg) is
 * known to hold on every path to the call, or -1. An `lddw rX, map` (BPF_PSEUDO_MAP_IDX) loads
 * a handle, copies (`rX = rY`) keep it, calls clobber r0-r5 and any other write forgets it
 * (a handle plus a constant is no handle); each function starts knowing nothing. The verifier
 * tracks CONST_PTR_TO_MAP the same way.
 */
export function mapHandleArgs(code: Bytecode, an: Analysis): Int32Array {
  const IN: (Float64Array | undefined)[] = new Array(code.length);
  const lddw = (pc: number) => (code.src[pc] === BPF_PSEUDO_MAP_IDX ? code.imm[pc]! : NaN);
  for (const sp of an.subprogs) registerValues(code, sp, new Float64Array(11).fill(NaN), lddw, () => NaN, IN);
  const out = new Int32Array(code.length).fill(-1);
  for (let pc = 0; pc < code.length; pc++) {
    const st = IN[pc];
    if (!st || code.op[pc] !== (BPF_JMP | BPF_CALL) || code.src[pc] === BPF_PSEUDO_CALL) continue;
    const m = st[mapArgReg(code.imm[pc]!)]!;
    if (!Number.isNaN(m)) out[pc] = m;
  }
  return out;
}
