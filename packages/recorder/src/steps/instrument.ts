// What the recorder adds to a compiled program: every register write, store and conditional
// jump is checked against a prediction, and only what the prediction gets wrong is written.
//
// Predictions (the reader makes the same ones, see decode.ts):
//   - a register write or the value of a store at pc: the value written there last time plus
//     the last difference between two successive values (low half), the high half unchanged;
//   - the address of a store at pc: the region of last time, the offset of last time plus the
//     last difference of offsets;
//   - a conditional jump at pc: the direction it took last time (not taken the first time).
// Every prediction starts from zero at the start of a run and at every keyframe.
//
// A record is a u16 header, little-endian: the low 12 bits are the number of instructions
// executed since the previous record (0xfff: the number follows as a u32), the high 4 bits say
// what follows: LO (the low half, i32), HI (the high half, i32), ADDR (region u16, offset u32),
// FLIP (the jump went the other way; nothing follows).

import {
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_EXIT,
  BPF_LD,
  BPF_LDX,
  BPF_PSEUDO_CALL,
  BPF_ST,
  BPF_STX,
  CALLBACK_HELPERS,
  LDDW,
  sizeBytes,
  type Bytecode,
  type Instrumentation,
} from '@rewind/vm';

export const REC_LO = 1;
export const REC_HI = 2;
export const REC_ADDR = 4;
export const REC_FLIP = 8;
export const DELTA_ESCAPE = 0xfff;

/** The buffer the compiled code writes records into, and the predictors' state. */
export class StepBuffer {
  u8: Uint8Array;
  dv: DataView;
  /** Bytes written. */
  tp = 0;
  /** Step (instructions executed in the run) of the last record. */
  ls = 0;
  /** Grow the buffer when tp passes this. */
  limit: number;
  /** Predictor state by pc: last value (lo, hi), last low-half difference; last region, offset, offset difference; last jump direction. */
  readonly PL: Int32Array;
  readonly PH: Int32Array;
  readonly PS: Int32Array;
  readonly PR: Int32Array;
  readonly PO: Int32Array;
  readonly POS: Int32Array;
  readonly PB: Uint8Array;
  /** The step of the instruction about to call out of line (helpers, slow-path stores). */
  step = 0;
  /**
   * Per compiled program: the basic blocks entered since the last chunk (1 at a block's first
   * pc), and what each block can write: registers (bit r) and whether it stores to memory.
   */
  readonly programs: BlockTable[] = [];

  /**
   * What the blocks entered since the last call wrote, as a chunk header summarises it:
   * registers (bit r), whether a store through a pointer other than r10 ran, and the frame
   * bytes r10-relative stores wrote (a 512-bit map, any call depth). Forgets the visits.
   */
  takeSummary(): { regs: number; stores: boolean; stack: Uint8Array | undefined } {
    let regs = 0;
    let stores = false;
    let stack: Uint8Array | undefined;
    for (const p of this.programs) {
      const vis = p.vis;
      for (let pc = 0; pc < vis.length; pc++) {
        if (!vis[pc]) continue;
        regs |= p.regs[pc]!;
        if (p.stores[pc]) stores = true;
        const bits = p.stack[pc];
        if (bits) {
          stack ??= new Uint8Array(64);
          for (let i = 0; i < 64; i++) stack[i]! |= bits[i]!;
        }
      }
      vis.fill(0);
    }
    return { regs, stores, stack };
  }

  constructor(slots: number, initial = 1 << 16) {
    this.u8 = new Uint8Array(initial);
    this.dv = new DataView(this.u8.buffer);
    this.limit = initial - 64;
    this.PL = new Int32Array(slots);
    this.PH = new Int32Array(slots);
    this.PS = new Int32Array(slots);
    this.PR = new Int32Array(slots);
    this.PO = new Int32Array(slots);
    this.POS = new Int32Array(slots);
    this.PB = new Uint8Array(slots);
  }

  grow(): void {
    const u8 = new Uint8Array(this.u8.length * 2);
    u8.set(this.u8.subarray(0, this.tp));
    this.u8 = u8;
    this.dv = new DataView(u8.buffer);
    this.limit = u8.length - 64;
  }

  /** Starts the records of a new run: steps count from 0 again, and predictions start over. */
  startRun(): void {
    this.resetPredictions();
    this.ls = 0;
  }

  /** Forgets every prediction (run start, keyframe); the step count of the run goes on. */
  resetPredictions(): void {
    this.PL.fill(0);
    this.PH.fill(0);
    this.PS.fill(0);
    this.PR.fill(0);
    this.PO.fill(0);
    this.POS.fill(0);
    this.PB.fill(0);
  }

  /**
   * Writes the header of a record `d` steps after the previous one with flags `f` at `tp` of
   * `dv`; returns the position after it. Called by the instrumented code.
   */
  static head(dv: DataView, tp: number, d: number, f: number): number {
    if (d < DELTA_ESCAPE) {
      dv.setUint16(tp, d | (f << 12), true);
      return tp + 2;
    }
    dv.setUint16(tp, DELTA_ESCAPE | (f << 12), true);
    dv.setUint32(tp + 2, d, true);
    return tp + 6;
  }

  /** Takes the records written so far (a copy, made by `copy` when given) and empties the buffer. */
  take(copy?: (bytes: Uint8Array) => Uint8Array): Uint8Array {
    const out = copy ? copy(this.u8.subarray(0, this.tp)) : this.u8.slice(0, this.tp);
    this.tp = 0;
    return out;
  }
}

/** Sites of the entry function keep their predictions in locals up to this many instructions. */
const MAX_LOCAL_SITES = 4096;
/**
 * In a program of up to this many slots the entry function keeps every site's predictions in
 * locals, and every site's check is inline. A larger program is compiled compact: V8 does not optimize a function
 * whose bytecode is too large, and takes long over one with thousands of locals. Only the sites
 * of the entry function's one-block loops (at most MAX_LOOP_LOCALS slots) keep locals and inline
 * checks; every other site is one call to a function of the program's prologue, and the entry
 * function's predictions live in an array zeroed where it is entered, as locals would be.
 */
const SMALL_ENTRY = 128;
const MAX_LOOP_LOCALS = 128;
/** The prediction arrays, in the order of the entry array's sections. */
const ARRAYS = ['PL', 'PH', 'PS', 'PR', 'PO', 'POS', 'PB'];

/**
 * The instrumentation for a program compiled on a machine whose `rec` field holds the
 * StepBuffer (set by the recorder before the program is loaded). Predictions of the entry
 * function's sites live in its locals, which start from zero whenever the function is entered
 * (a run, a slice): the same points where the recorder resets the arrays that hold the
 * predictions of the other functions' sites.
 */
/** A compiled program's basic blocks: entered since the last chunk, and what each can write (by its first pc). */
export interface BlockTable {
  code: Bytecode;
  vis: Uint8Array;
  regs: Int32Array;
  /** 1: a store through a pointer other than r10. */
  stores: Uint8Array;
  /** Frame bytes written by r10-relative stores (a 512-bit map), when there are any. */
  stack: (Uint8Array | undefined)[];
}

/** Registers an instruction can change (bit r), and whether it stores to memory inline through a pointer other than r10. */
function effects(code: Bytecode, pc: number): { regs: number; stores: boolean } {
  const op = code.op[pc]!;
  const klass = op & 7;
  const ALL = 0x7ff;
  switch (klass) {
    case BPF_ALU:
    case BPF_ALU64:
    case BPF_LDX:
      return { regs: 1 << code.dst[pc]!, stores: false };
    case BPF_LD:
      return { regs: op === LDDW ? 1 << code.dst[pc]! : 1, stores: false };
    case BPF_ST:
      return { regs: 0, stores: code.dst[pc] !== 10 };
    case BPF_STX:
      // Atomics write memory out of line (write events); fetching ones write a register.
      if ((op & 0xe0) === BPF_ATOMIC) return { regs: 1 | (1 << code.src[pc]!), stores: false };
      return { regs: 0, stores: code.dst[pc] !== 10 };
    default: {
      const jop = op & 0xf0;
      // Calls and returns switch frames (every register can change); a helper writes r0, and
      // one that calls back runs program code.
      if (jop === BPF_EXIT) return { regs: ALL, stores: false };
      if (jop === BPF_CALL) return code.src[pc] === BPF_PSEUDO_CALL || CALLBACK_HELPERS.has(code.imm[pc]!) ? { regs: ALL, stores: true } : { regs: 1, stores: false };
      return { regs: 0, stores: false };
    }
  }
}

/**
 * `buf`: the StepBuffer the recorder sets on the machine; with it, every basic block entered is
 * noted, so each chunk's header can say which registers and whether memory its steps wrote.
 * `stride: false` checks every site in every iteration (the records are the same either way).
 */
export function stepInstrumentation(buf?: StepBuffer, opts: { stride?: boolean } = {}): Instrumentation {
  // Every function keeps the write position (tp), the step of the last record (LS), the view and
  // its limit in locals, loaded from the StepBuffer where it starts and after calls, stored back
  // where control leaves it (in a compact program its functions share them instead). A record header goes through StepBuffer.head, one function shared
  // by every recorded program (V8 inlines it, and a new recording does not invalidate that).
  const prologue = `
const REC = vm.rec, RH = REC.constructor.head;
const PL = REC.PL, PH = REC.PH, PS = REC.PS, PR = REC.PR, PO = REC.PO, POS = REC.POS, PB = REC.PB;`;
  const load = `tp = REC.tp; LS = REC.ls; TD = REC.dv; TLIM = REC.limit;`;
  const store = `REC.tp = tp; REC.ls = LS;`;
  const head = (step: string, f: string) => `tp = RH(TD, tp, ${step} - LS, ${f}); LS = ${step};`;
  const grow = `if (tp > TLIM) { REC.tp = tp; REC.grow(); TD = REC.dv; TLIM = REC.limit; }`;
  let local: (pc: number) => boolean = () => false;
  // The program being compiled: its block table on the StepBuffer.
  let current: BlockTable | undefined;
  let programIndex = -1;
  let declarations = '';
  // A compact program (see SMALL_ENTRY): the entry function's other sites' predictions are
  // sections of E (ARRAYS order, entryEnd each), and tp, LS, TD, TLIM are shared by its functions.
  let entryEnd = 0;
  let compact = false;
  // The name of a prediction of site pc: a local of the entry function, an element of its E
  // array, or an element of the StepBuffer's arrays (other functions).
  const P = (arr: string, pc: number) =>
    local(pc) ? `${arr.toLowerCase()}${pc}` : compact && pc < entryEnd ? `E[${ARRAYS.indexOf(arr) * entryEnd + pc}]` : `${arr}[${pc}]`;
  // The checks of a site, as code: `at(arr)` names its prediction of array arr.
  const checkValue = (at: (arr: string) => string, L: string, H: string, step: string) => {
    const [pl, ph, ps] = [at('PL'), at('PH'), at('PS')];
    return (
      `t = (${L} - ${pl}) | 0; ` +
      `if (t !== ${ps} || ${H} !== ${ph}) { s = (t !== ${ps} ? ${REC_LO} : 0) | (${H} !== ${ph} ? ${REC_HI} : 0); ${head(step, 's')} ` +
      `if (s & ${REC_LO}) { TD.setInt32(tp, ${L}, true); tp += 4; } if (s & ${REC_HI}) { TD.setInt32(tp, ${H}, true); tp += 4; } ${grow} } ` +
      `${ps} = t; ${pl} = ${L}; ${ph} = ${H};`
    );
  };
  const checkStore = (at: (arr: string) => string, region: string, addr: string, vl: string, vh: string, step: string) => {
    const [pl, ph, ps, pr, po, pos] = [at('PL'), at('PH'), at('PS'), at('PR'), at('PO'), at('POS')];
    return (
      `t = (${vl} - ${pl}) | 0; q = (${addr} - ${po}) | 0; ` +
      `s = (t !== ${ps} ? ${REC_LO} : 0) | (${vh} !== ${ph} ? ${REC_HI} : 0) | ((${region}) !== ${pr} || q !== ${pos} ? ${REC_ADDR} : 0); ` +
      `if (s !== 0) { ${head(step, 's')} ` +
      `if (s & ${REC_LO}) { TD.setInt32(tp, ${vl}, true); tp += 4; } if (s & ${REC_HI}) { TD.setInt32(tp, ${vh}, true); tp += 4; } ` +
      `if (s & ${REC_ADDR}) { TD.setUint16(tp, ${region}, true); TD.setUint32(tp + 2, ${addr}, true); tp += 6; } ${grow} } ` +
      `${ps} = t; ${pl} = ${vl}; ${ph} = ${vh}; ${pos} = q; ${po} = ${addr}; ${pr} = ${region};`
    );
  };
  const checkBranch = (pb: string, want: string, step: string) => `if (${pb} !== ${want}) { ${pb} = ${want}; ${head(step, String(REC_FLIP))} ${grow} }`;
  // A compact program's site functions: suffix 0 for the entry function's sites (in E), 1 for the others'.
  const siteFunctions = () => {
    const inE = (arr: string) => `E[${ARRAYS.indexOf(arr) * entryEnd} + i]`;
    const shared = (arr: string) => `${arr}[i]`;
    return [inE, shared]
      .map(
        (at, k) =>
          `function SV${k}(i, l, h, st) { let t = 0, s = 0; ${checkValue(at, 'l', 'h', 'st')} }\n` +
          `function SS${k}(i, l, h, r, a, st) { let t = 0, s = 0, q = 0; ${checkStore(at, 'r', 'a', 'l', 'h', 'st')} }\n` +
          `function SB${k}(i, w, st) { ${checkBranch(at('PB'), 'w', 'st')} }`,
      )
      .join('\n');
  };
  // The call that does the checks of site pc of a compact program, or undefined for inline checks.
  const call = (pc: number) => (!compact || local(pc) ? undefined : pc < entryEnd ? 0 : 1);
  return {
    init(code, an) {
      local = () => false;
      declarations = '';
      current = undefined;
      programIndex = -1;
      compact = false;
      if (buf) {
        current = { code, vis: new Uint8Array(code.length), regs: new Int32Array(code.length), stores: new Uint8Array(code.length), stack: [] };
        programIndex = buf.programs.push(current) - 1;
      }
      entryEnd = an.subprogs[0]!.end;
      if (entryEnd > MAX_LOCAL_SITES) return;
      let inLocals: Uint8Array | undefined;
      if (code.length > SMALL_ENTRY) {
        // Loops of one basic block: a backward jump to a slot from which no other jump or call
        // comes before it, and which nothing else jumps into.
        compact = true;
        inLocals = new Uint8Array(entryEnd);
        let count = 0;
        const isJump = (q: number) => {
          const k = code.op[q]! & 7;
          return k === 5 || k === 6;
        };
        for (let pc = 0; pc < entryEnd; pc++) {
          const op = code.op[pc]!;
          if (an.isSecondSlot[pc] || !isJump(pc) || (op & 0xf0) === 0x80 || (op & 0xf0) === 0x90) continue;
          const target = pc + 1 + (op === 0x06 ? code.imm[pc]! : code.off[pc]!);
          if (target > pc || target < 0 || count + (pc + 1 - target) > MAX_LOOP_LOCALS) continue;
          let block = true;
          for (let q = target; q < pc && block; q++) if ((isJump(q) && !an.isSecondSlot[q]) || (q > target && an.isTarget[q])) block = false;
          if (!block) continue;
          for (let q = target; q <= pc; q++) inLocals[q] = 1;
          count += pc + 1 - target;
        }
      }
      local = inLocals ? (pc) => pc < entryEnd && inLocals[pc] === 1 : (pc) => pc < entryEnd;
      const names: string[] = [];
      for (let pc = 0; pc < entryEnd; pc++) {
        if (an.isSecondSlot[pc] || !local(pc)) continue;
        const klass = code.op[pc]! & 7;
        if (klass === 5 || klass === 6) names.push(`pb${pc} = 0`);
        names.push(`pl${pc} = 0`, `ph${pc} = 0`, `ps${pc} = 0`);
        if (klass === 2 || klass === 3) names.push(`pr${pc} = 0`, `po${pc} = 0`, `pos${pc} = 0`);
      }
      declarations = names.length ? `let ${names.join(', ')};` : '';
    },
    prologue: () =>
      (programIndex >= 0 ? `${prologue}\nconst VIS = REC.programs[${programIndex}].vis;` : prologue) +
      (compact ? `\nconst E = new Int32Array(${ARRAYS.length * entryEnd});\nlet tp = 0, LS = 0, TD = REC.dv, TLIM = 0;\n${siteFunctions()}` : ''),
    // A compact program's functions share tp, LS, TD and TLIM (the prologue's); the others keep them in locals.
    enter: () => (compact ? `${declarations} E.fill(0); ${load}` : `${declarations} let tp = REC.tp, LS = REC.ls, TD = REC.dv, TLIM = REC.limit;`),
    enterCallee: () => (compact ? '' : `let tp = REC.tp, LS = REC.ls, TD = REC.dv, TLIM = REC.limit;`),
    epilogue: () => store,
    leaveCallee: () => store,
    beforeLocalCall: () => store,
    afterCall: () => load,
    afterInsn(pc, dst, step) {
      if (dst < 0) return '';
      const k = call(pc);
      if (k !== undefined) return `SV${k}(${pc}, l${dst}, h${dst}, ${step});`;
      return checkValue((arr) => P(arr, pc), `l${dst}`, `h${dst}`, step);
    },
    afterStore(pc, _size, region, at, vl, vh, step) {
      const k = call(pc);
      if (k !== undefined) return `SS${k}(${pc}, ${vl}, ${vh}, ${region}, ${at}, ${step});`;
      return checkStore((arr) => P(arr, pc), region, at, vl, vh, step);
    },
    strideInsn: opts.stride === false ? undefined : (pc, dst, step, is32) => {
      // The low half is what the prediction says; the high half is zero (32-bit) or checked.
      if (is32) return '';
      const H = `h${dst}`;
      const ph = P('PH', pc);
      return `if (${H} !== ${ph}) { ${head(step, String(REC_HI))} TD.setInt32(tp, ${H}, true); tp += 4; ${grow} ${ph} = ${H}; }`;
    },
    strideSettle: (pc, lo, delta) => `${P('PL', pc)} = ${lo}; ${P('PS', pc)} = ${delta};`,
    branch(pc, taken, step) {
      const k = call(pc);
      if (k !== undefined) return `SB${k}(${pc}, ${taken ? 1 : 0}, ${step});`;
      return checkBranch(P('PB', pc), taken ? '1' : '0', step);
    },
    beforeCall: (_pc, step) => `REC.step = ${step}; ${store}`,
    block(pc, last) {
      const p = current;
      if (!p) return '';
      let regs = 0;
      let stores = 0;
      let stack: Uint8Array | undefined;
      for (let q = pc; q <= last; q += p.code.op[q] === LDDW ? 2 : 1) {
        const e = effects(p.code, q);
        regs |= e.regs;
        if (e.stores) stores = 1;
        const klass = p.code.op[q]! & 7;
        if ((klass === BPF_ST || (klass === BPF_STX && (p.code.op[q]! & 0xe0) !== BPF_ATOMIC)) && p.code.dst[q] === 10) {
          // r10 + off: frame bytes [512 + off, 512 + off + size).
          const at = 512 + p.code.off[q]!;
          const size = sizeBytes(p.code.op[q]!);
          stack ??= new Uint8Array(64);
          for (let b = Math.max(0, at); b < Math.min(512, at + size); b++) stack[b >> 3]! |= 1 << (b & 7);
        }
      }
      p.regs[pc] = regs;
      p.stores[pc] = stores;
      p.stack[pc] = stack;
      return `VIS[${pc}] = 1;`;
    },
  };
}
