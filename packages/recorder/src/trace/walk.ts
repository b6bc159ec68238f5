// Rebuilds the steps of one chunk from the trace alone: starting from the chunk's keyframe, it
// walks the program instruction by instruction, making the predictions the recording made
// (steps/instrument.ts) and taking the recorded value wherever a record says they were wrong;
// control flow comes from the program, the recorded jump directions and the events (tail calls,
// callbacks). Out comes, for every step, where execution is and everything the step wrote.

import {
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_EXIT,
  BPF_FETCH,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_PSEUDO_CALL,
  BPF_ST,
  BPF_STX,
  BPF_XCHG,
  LDDW,
  REGION_HI_BASE,
  sizeBytes,
  type Bytecode,
} from '@rewind/vm';
import { DELTA_ESCAPE, REC_ADDR, REC_FLIP, REC_HI, REC_LO } from '../steps/instrument.js';

/** Sites of an entry function of up to this many slots keep their predictions in locals (instrument.ts). */
const MAX_LOCAL_SITES = 4096;
const FRAME = 512;
const HELPER_TAIL_CALL = 12;

/** A program as the walk needs it. */
export interface WalkProgram {
  name: string;
  code: Bytecode;
  /** End of the entry function (its sites' predictions are locals when <= MAX_LOCAL_SITES). */
  entryEnd: number;
}

/** An event of a chunk, with its run-relative step (instructions executed when it happened). */
export interface WalkEvent {
  t: string;
  step: number;
  [k: string]: unknown;
}

export interface ChunkInput {
  programs: readonly WalkProgram[];
  /** Program index and pc at the chunk's first step; registers then (lo, hi pairs of r0..r10). */
  program: number;
  pc: number;
  regs: Int32Array;
  records: Uint8Array;
  events: readonly WalkEvent[];
  /** Run-relative step of the chunk's first state, and the number of instructions it holds. */
  base: number;
  count: number;
  /** For the last chunk of a run: the pc the run ended at (its last instruction, or the faulting one). */
  endPc?: number;
  endProgram?: number;
  /** Names the chunk in errors. */
  where: string;
}

/** Growable arrays of what each step wrote. */
class Writes {
  n = 0;
  a: Int32Array;
  b: Int32Array;
  c: Int32Array;
  d: Int32Array;
  constructor(cap: number) {
    this.a = new Int32Array(cap);
    this.b = new Int32Array(cap);
    this.c = new Int32Array(cap);
    this.d = new Int32Array(cap);
  }
  push(a: number, b: number, c: number, d: number): void {
    if (this.n === this.a.length) {
      const grow = (x: Int32Array) => {
        const y = new Int32Array(x.length * 2);
        y.set(x);
        return y;
      };
      this.a = grow(this.a);
      this.b = grow(this.b);
      this.c = grow(this.c);
      this.d = grow(this.d);
    }
    const i = this.n++;
    this.a[i] = a;
    this.b[i] = b;
    this.c[i] = c;
    this.d[i] = d;
  }
}

/**
 * A chunk's steps. State k (0..count) is the state after k of the chunk's instructions; arrays
 * indexed by k say where execution is then, and step k's writes are entries [start[k], start[k+1])
 * of the write arrays (step 0 writes nothing: it is the keyframe).
 */
export interface ChunkSteps {
  count: number;
  base: number;
  /** Program index, pc (the next instruction; at a run's end, the last or faulting one) and call depth at state k. */
  prog: Uint16Array;
  pc: Int32Array;
  depth: Uint8Array;
  /** Register writes: regStart[k]..regStart[k+1] for step k; reg number, lo, hi. */
  regStart: Int32Array;
  regNum: Uint8Array;
  regLo: Int32Array;
  regHi: Int32Array;
  /** Memory writes: memStart[k]..memStart[k+1]; region, offset, length, offset of the bytes in `pool`. */
  memStart: Int32Array;
  memRegion: Int32Array;
  memOff: Int32Array;
  memLen: Int32Array;
  memAt: Int32Array;
  pool: Uint8Array;
  /** Registers written anywhere in the chunk (bit r), for searches that skip whole chunks. */
  regMask: number;
  /** Regions written anywhere in the chunk. */
  memRegions: Set<number>;
}

/** What a step record of the instruction at pc can carry (a callback helper's result comes at its last callback's exit). */
function allowedFlags(code: Bytecode, pc: number): number {
  const op = code.op[pc]!;
  const klass = op & 7;
  const VALUE = REC_LO | REC_HI;
  switch (klass) {
    case BPF_ALU:
    case BPF_ALU64:
    case BPF_LDX:
    case BPF_LD:
      return VALUE;
    case BPF_ST:
    case BPF_STX:
      return VALUE | REC_ADDR;
    default: {
      const jop = op & 0xf0;
      if (jop === BPF_CALL || jop === BPF_EXIT) return VALUE;
      if (jop === BPF_JA) return 0;
      return REC_FLIP;
    }
  }
}

/** The records of a chunk do not fit its program: the trace is damaged (or not this program's). */
export class WalkError extends Error {
  override name = 'WalkError';
}

function corrupt(where: string, why: string): WalkError {
  return new WalkError(`${where}: ${why}`);
}

/** Walks one chunk. Throws TraceCorruptError when the records do not fit the program. */
export function walkChunk(inp: ChunkInput): ChunkSteps {
  const { programs, records, events, count, where } = inp;
  const dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const largest = Math.max(...programs.map((p) => p.code.length));
  // Predictions: shared arrays for sites outside entry functions, and a second set for an entry
  // function's sites (locals of the compiled function, fresh whenever it is entered).
  const A = [0, 1, 2, 3, 4, 5, 6].map(() => new Int32Array(largest)) as Int32Array[];
  const L = [0, 1, 2, 3, 4, 5, 6].map(() => new Int32Array(largest)) as Int32Array[];
  let prog = inp.program;
  let P = programs[prog]!;
  let code = P.code;
  let localEnd = P.entryEnd <= MAX_LOCAL_SITES ? P.entryEnd : 0;

  const R = new Int32Array(22);
  R.set(inp.regs);
  // Saved registers of the frames below: [kind (0 call, 1 callback), return pc, 22 registers].
  const frames: { kind: number; ret: number; regs: Int32Array }[] = [];

  const outProg = new Uint16Array(count + 1);
  const outPc = new Int32Array(count + 1);
  const outDepth = new Uint8Array(count + 1);
  const regStart = new Int32Array(count + 2);
  const memStart = new Int32Array(count + 2);
  const regs = new Writes(Math.min(count + 16, 1 << 16));
  const mems = new Writes(1024);
  let pool = new Uint8Array(4096);
  let poolTop = 0;
  let regMask = 0;
  const memRegions = new Set<number>();

  const poolPut = (bytes: Uint8Array): number => {
    if (poolTop + bytes.length > pool.length) {
      let size = pool.length * 2;
      while (size < poolTop + bytes.length) size *= 2;
      const p = new Uint8Array(size);
      p.set(pool.subarray(0, poolTop));
      pool = p;
    }
    pool.set(bytes, poolTop);
    const at = poolTop;
    poolTop += bytes.length;
    return at;
  };
  /** A register write; `always`: an instruction's own write, kept even when the value does not change (a frame switch's are kept only when it does). */
  const setReg = (r: number, lo: number, hi: number, always = false) => {
    if (!always && R[2 * r] === lo && R[2 * r + 1] === hi) return;
    R[2 * r] = lo;
    R[2 * r + 1] = hi;
    regs.push(r, lo, hi, 0);
    regMask |= 1 << r;
  };
  const memWrite = (region: number, off: number, bytes: Uint8Array) => {
    mems.push(region, off, bytes.length, poolPut(bytes));
    memRegions.add(region);
  };
  const le = new Uint8Array(8);
  const leDv = new DataView(le.buffer);

  // Records.
  let pos = 0;
  let recStep = inp.base;
  let nextRec = -1;
  let flags = 0;
  const readHeader = () => {
    if (pos >= records.length) {
      nextRec = -1;
      return;
    }
    if (pos + 2 > records.length) throw corrupt(where, `step record at byte ${pos} is cut short`);
    const h = dv.getUint16(pos, true);
    pos += 2;
    let d = h & DELTA_ESCAPE;
    if (d === DELTA_ESCAPE) {
      if (pos + 4 > records.length) throw corrupt(where, `step record at byte ${pos - 2} is cut short`);
      d = dv.getUint32(pos, true);
      pos += 4;
    }
    recStep += d;
    nextRec = recStep;
    flags = h >>> 12;
  };
  readHeader();
  const take32 = () => {
    if (pos + 4 > records.length) throw corrupt(where, `step record payload at byte ${pos} is cut short`);
    const v = dv.getInt32(pos, true);
    pos += 4;
    return v;
  };
  /** Flags of the record for step s (0: none); its payload is read next, then endStep reads the next header. */
  const flagsAt = (s: number): number => {
    if (nextRec === s) {
      nextRec = -2;
      return flags;
    }
    if (nextRec >= 0 && nextRec < s) throw corrupt(where, `a step record for step ${nextRec} was not used (the records do not fit the program)`);
    return 0;
  };
  const endStep = () => {
    if (nextRec === -2) readHeader();
  };

  const pred = (pc: number) => (pc < localEnd ? L : A);
  const value = (pc: number, f: number): void => {
    const p = pred(pc);
    const lo = f & REC_LO ? take32() : (p[0]![pc]! + p[2]![pc]!) | 0;
    const hi = f & REC_HI ? take32() : p[1]![pc]!;
    p[2]![pc] = (lo - p[0]![pc]!) | 0;
    p[0]![pc] = lo;
    p[1]![pc] = hi;
    vLo = lo;
    vHi = hi;
  };
  let vLo = 0;
  let vHi = 0;

  // Events in step order, with a cursor.
  let ei = 0;
  while (ei < events.length && events[ei]!.step <= inp.base) ei++;
  const outOfLine = new Set<number>();
  for (const e of events) if (e.t === 'write') outOfLine.add(e.step);
  const eventsAt = (s: number, fn: (e: WalkEvent) => boolean | void): void => {
    while (ei < events.length && events[ei]!.step === s) {
      if (fn(events[ei]!) === false) return;
      ei++;
    }
  };

  let pc = inp.pc;
  let s = inp.base;
  /** Callback helpers whose results are due when their callbacks are done: their pcs. */
  const pendingHelper: number[] = [];
  const enterFrame = (kind: number, ret: number, start: number, args: Int32Array | undefined) => {
    if (frames.length >= 7) throw corrupt(where, `call depth passes 8 frames at step ${s}`);
    frames.push({ kind, ret, regs: R.slice() });
    const depth = frames.length;
    setReg(0, 0, 0);
    for (let r = 6; r <= 9; r++) setReg(r, 0, 0);
    if (args) for (let r = 1; r <= 5; r++) setReg(r, args[2 * r - 2]!, args[2 * r - 1]!);
    setReg(10, FRAME, REGION_HI_BASE + depth);
    pc = start;
  };
  const handleEvents = (step: number) => {
    eventsAt(step, (e) => {
      switch (e.t) {
        case 'write':
          memWrite(e.region as number, e.offset as number, e.bytes as Uint8Array);
          break;
        case 'callback':
          // Stop here: the callback runs next (one at a time).
          return false;
      }
    });
  };
  /** A callback event now: enter it. */
  const callbackNext = (step: number): boolean => {
    const e = events[ei];
    if (!e || e.step !== step || e.t !== 'callback') return false;
    ei++;
    const args = new Int32Array(10);
    const a = e.args as Uint8Array[];
    for (let i = 0; i < 5; i++) {
      const v = new DataView(a[i]!.buffer, a[i]!.byteOffset, 8);
      args[2 * i] = v.getInt32(0, true);
      args[2 * i + 1] = v.getInt32(4, true);
    }
    enterFrame(1, -1, e.start as number, args);
    return true;
  };

  for (let k = 0; k < count; k++) {
    outProg[k] = prog;
    outPc[k] = pc;
    outDepth[k] = frames.length;
    regStart[k + 1] = regs.n;
    memStart[k + 1] = mems.n;
    if (pc < 0 || pc >= code.length) throw corrupt(where, `step ${s + 1} is at pc ${pc}, outside program ${P.name}`);
    s++;
    const f = flagsAt(s);
    const op = code.op[pc]!;
    const klass = op & 7;
    const dst = code.dst[pc]!;
    let next = pc + 1;
    if (f & ~allowedFlags(code, pc)) throw corrupt(where, `the step record for step ${s} (${P.name} pc ${pc}) carries what that instruction cannot record (flags ${f})`);
    switch (klass) {
      case BPF_ALU:
      case BPF_ALU64:
      case BPF_LDX:
        value(pc, f);
        setReg(dst, vLo, vHi, true);
        break;
      case BPF_LD:
        if (op === LDDW) next = pc + 2;
        value(pc, f);
        setReg(op === LDDW ? dst : 0, vLo, vHi, true);
        break;
      case BPF_ST:
      case BPF_STX: {
        if (klass === BPF_STX && (op & 0xe0) === BPF_ATOMIC) {
          const imm = code.imm[pc]!;
          if (imm === BPF_CMPXCHG) {
            value(pc, f);
            setReg(0, vLo, vHi, true);
          } else if (imm & BPF_FETCH || imm === BPF_XCHG) {
            value(pc, f);
            setReg(code.src[pc]!, vLo, vHi, true);
          }
          break;
        }
        if (outOfLine.has(s)) break;
        value(pc, f);
        const p = pred(pc);
        let region = p[3]![pc]!;
        let offset = (p[4]![pc]! + p[5]![pc]!) | 0;
        if (f & REC_ADDR) {
          if (pos + 6 > records.length) throw corrupt(where, `step record payload at byte ${pos} is cut short`);
          region = dv.getUint16(pos, true);
          offset = dv.getUint32(pos + 2, true) | 0;
          pos += 6;
        }
        p[5]![pc] = (offset - p[4]![pc]!) | 0;
        p[4]![pc] = offset;
        p[3]![pc] = region;
        const size = sizeBytes(op);
        leDv.setInt32(0, vLo, true);
        leDv.setInt32(4, vHi, true);
        memWrite(region, offset >>> 0, le.subarray(0, size));
        break;
      }
      case BPF_JMP:
      case BPF_JMP32: {
        const jop = op & 0xf0;
        if (jop === BPF_JA) next = pc + 1 + (klass === BPF_JMP32 ? code.imm[pc]! : code.off[pc]!);
        else if (jop === BPF_EXIT) {
          const fr = frames.pop();
          if (!fr) next = pc; // the run's last instruction: the run ends here
          else {
            const r0l = R[0]!;
            const r0h = R[1]!;
            for (let r = 1; r <= 10; r++) setReg(r, fr.regs[2 * r]!, fr.regs[2 * r + 1]!);
            if (fr.kind === 0) {
              setReg(0, r0l, r0h);
              next = fr.ret;
            } else {
              // Back in the helper that called back: another callback, or the helper's result
              // (its record carries this step's number: the call's block ends with it).
              setReg(0, fr.regs[0]!, fr.regs[1]!);
              handleEvents(s);
              if (callbackNext(s)) {
                endStep();
                continue;
              }
              const hpc = pendingHelper.pop();
              if (hpc === undefined) throw corrupt(where, `a callback returns at step ${s} with no helper to return to`);
              value(hpc, f);
              setReg(0, vLo, vHi, true);
              next = hpc + 1;
            }
          }
        } else if (jop === BPF_CALL) {
          if (code.src[pc] === BPF_PSEUDO_CALL) {
            handleEvents(s);
            enterFrame(0, pc + 1, pc + 1 + code.imm[pc]!, undefined);
            endStep();
            continue;
          }
          let tail: string | undefined;
          eventsAt(s, (e) => {
            if (e.t === 'write') memWrite(e.region as number, e.offset as number, e.bytes as Uint8Array);
            else if (e.t === 'tailcall') tail = e.program as string;
            else if (e.t === 'callback') return false;
          });
          if (code.imm[pc] === HELPER_TAIL_CALL && tail !== undefined) {
            const to = programs.findIndex((q) => q.name === tail);
            if (to < 0) throw corrupt(where, `tail call at step ${s} to unknown program ${tail}`);
            prog = to;
            P = programs[prog]!;
            code = P.code;
            localEnd = P.entryEnd <= MAX_LOCAL_SITES ? P.entryEnd : 0;
            for (const x of L) x.fill(0);
            pc = 0;
            endStep();
            continue;
          }
          if (callbackNext(s)) {
            pendingHelper.push(pc);
            endStep();
            continue;
          }
          value(pc, f);
          setReg(0, vLo, vHi, true);
        } else {
          const p = pred(pc);
          if (f & REC_FLIP) p[6]![pc] ^= 1;
          if (p[6]![pc]) next = pc + 1 + code.off[pc]!;
        }
        break;
      }
    }
    endStep();
    handleEvents(s);
    pc = next;
  }
  outProg[count] = inp.endProgram ?? prog;
  outPc[count] = inp.endPc ?? pc;
  outDepth[count] = frames.length;
  regStart[count + 1] = regs.n;
  memStart[count + 1] = mems.n;
  if (nextRec >= 0) throw corrupt(where, `a step record for step ${nextRec} is past the chunk's last step ${inp.base + count}`);
  if (pos < records.length) throw corrupt(where, `${records.length - pos} bytes of step records are left over`);
  return {
    count,
    base: inp.base,
    prog: outProg,
    pc: outPc,
    depth: outDepth,
    regStart,
    regNum: Uint8Array.from(regs.a.subarray(0, regs.n)),
    regLo: regs.b.slice(0, regs.n),
    regHi: regs.c.slice(0, regs.n),
    memStart,
    memRegion: mems.a.slice(0, mems.n),
    memOff: mems.b.slice(0, mems.n),
    memLen: mems.c.slice(0, mems.n),
    memAt: mems.d.slice(0, mems.n),
    pool: pool.slice(0, poolTop),
    regMask,
    memRegions,
  };
}
