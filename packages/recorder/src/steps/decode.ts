// Reading the step records back: walks a run instruction by instruction, making the same
// predictions the recording made and taking the recorded value wherever a record says the
// prediction was wrong. Control flow comes from the program (the next slot, jump targets, calls
// and returns) and the recorded jump directions.

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
  sizeBytes,
  type Bytecode,
} from '@rewind/vm';
import { DELTA_ESCAPE, REC_ADDR, REC_FLIP, REC_HI, REC_LO } from './instrument.js';

/** One executed instruction as the records describe it. */
export interface DecodedStep {
  /** Instructions executed in the run, this one included. */
  step: number;
  pc: number;
  /** Register written and its value, or -1. */
  dst: number;
  lo: number;
  hi: number;
  /** A store: region, offset, size and value. */
  store?: { region: number; offset: number; size: number; lo: number; hi: number };
  /** Call depth after the instruction. */
  depth: number;
}

export class StepDecodeError extends Error {
  override name = 'StepDecodeError';
}

/** Walks the records of one run (or of one keyframe interval of it). */
export class StepDecoder {
  private readonly dv: DataView;
  private pos = 0;
  /** The step of the next record, and what it carries. */
  private nextStep = -1;
  private nextFlags = 0;
  private lastRecStep = 0;
  private readonly PL: Int32Array;
  private readonly PH: Int32Array;
  private readonly PS: Int32Array;
  private readonly PR: Int32Array;
  private readonly PO: Int32Array;
  private readonly POS: Int32Array;
  private readonly PB: Uint8Array;
  /** Return slots of the bpf-to-bpf calls in progress. */
  readonly callStack: number[] = [];
  step = 0;
  pc: number;
  done = false;

  constructor(
    private readonly code: Bytecode,
    private readonly records: Uint8Array,
    startPc = 0,
    /** Steps executed before the first record's counting starts (a keyframe mid-run). */
    baseStep = 0,
    /** Step counts (instructions executed in the run) after which the recording forgot its predictions: its keyframes. */
    private readonly resets: readonly number[] = [],
  ) {
    this.dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
    const n = code.length;
    this.PL = new Int32Array(n);
    this.PH = new Int32Array(n);
    this.PS = new Int32Array(n);
    this.PR = new Int32Array(n);
    this.PO = new Int32Array(n);
    this.POS = new Int32Array(n);
    this.PB = new Uint8Array(n);
    this.pc = startPc;
    this.step = baseStep;
    this.lastRecStep = baseStep;
    this.readHeader();
  }

  private resetIndex = 0;

  private resetPredictions(): void {
    this.PL.fill(0);
    this.PH.fill(0);
    this.PS.fill(0);
    this.PR.fill(0);
    this.PO.fill(0);
    this.POS.fill(0);
    this.PB.fill(0);
  }

  private readHeader(): void {
    if (this.pos >= this.records.length) {
      this.nextStep = -1;
      return;
    }
    if (this.pos + 2 > this.records.length) throw new StepDecodeError(`record at byte ${this.pos} is cut short`);
    const h = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    let d = h & DELTA_ESCAPE;
    if (d === DELTA_ESCAPE) {
      if (this.pos + 4 > this.records.length) throw new StepDecodeError(`record at byte ${this.pos - 2} is cut short`);
      d = this.dv.getUint32(this.pos, true);
      this.pos += 4;
    }
    this.nextStep = this.lastRecStep + d;
    this.lastRecStep = this.nextStep;
    this.nextFlags = h >>> 12;
  }

  private take32(): number {
    if (this.pos + 4 > this.records.length) throw new StepDecodeError(`record payload at byte ${this.pos} is cut short`);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** The record for the current step, if there is one (consumes its header). */
  private recordHere(): number {
    if (this.nextStep === this.step) {
      const f = this.nextFlags;
      this.nextStep = -2; // consumed: payload follows at pos
      return f;
    }
    if (this.nextStep !== -1 && this.nextStep < this.step) throw new StepDecodeError(`a record for step ${this.nextStep} was not used (the records do not fit the program)`);
    return 0;
  }

  private valueAt(pc: number, f: number): { lo: number; hi: number } {
    const lo = f & REC_LO ? this.take32() : (this.PL[pc]! + this.PS[pc]!) | 0;
    const hi = f & REC_HI ? this.take32() : this.PH[pc]!;
    this.PS[pc] = (lo - this.PL[pc]!) | 0;
    this.PL[pc] = lo;
    this.PH[pc] = hi;
    return { lo, hi };
  }

  /**
   * Decodes the next instruction. `helperOutOfLine(pc)` tells whether the instruction at pc ran
   * out of line (a store that took the slow path has no record and changes no prediction).
   */
  next(outOfLine?: (step: number, pc: number) => boolean): DecodedStep {
    const code = this.code;
    const pc = this.pc;
    if (pc < 0 || pc >= code.length) throw new StepDecodeError(`pc ${pc} is outside the program`);
    while (this.resetIndex < this.resets.length && this.resets[this.resetIndex]! <= this.step) {
      if (this.resets[this.resetIndex] === this.step) this.resetPredictions();
      this.resetIndex++;
    }
    this.step++;
    const f = this.recordHere();
    const op = code.op[pc]!;
    const klass = op & 7;
    const dst = code.dst[pc]!;
    const out: DecodedStep = { step: this.step, pc, dst: -1, lo: 0, hi: 0, depth: this.callStack.length };
    let nextPc = pc + 1;
    const writeReg = (r: number) => {
      const v = this.valueAt(pc, f);
      out.dst = r;
      out.lo = v.lo;
      out.hi = v.hi;
    };
    switch (klass) {
      case BPF_ALU:
      case BPF_ALU64:
      case BPF_LDX:
        writeReg(dst);
        break;
      case BPF_LD:
        if (op === LDDW) nextPc = pc + 2;
        writeReg(op === LDDW ? dst : 0);
        break;
      case BPF_ST:
      case BPF_STX: {
        if (klass === BPF_STX && (op & 0xe0) === BPF_ATOMIC) {
          const imm = code.imm[pc]!;
          if (imm === BPF_CMPXCHG) writeReg(0);
          else if (imm & BPF_FETCH || imm === BPF_XCHG) writeReg(code.src[pc]!);
          break;
        }
        if (outOfLine?.(this.step, pc)) break;
        const v = this.valueAt(pc, f);
        let region = this.PR[pc]!;
        let offset = (this.PO[pc]! + this.POS[pc]!) | 0;
        if (f & REC_ADDR) {
          if (this.pos + 6 > this.records.length) throw new StepDecodeError(`record payload at byte ${this.pos} is cut short`);
          region = this.dv.getUint16(this.pos, true);
          offset = this.dv.getUint32(this.pos + 2, true) | 0;
          this.pos += 6;
        }
        this.POS[pc] = (offset - this.PO[pc]!) | 0;
        this.PO[pc] = offset;
        this.PR[pc] = region;
        out.store = { region, offset: offset >>> 0, size: sizeBytes(op), lo: v.lo, hi: v.hi };
        break;
      }
      case BPF_JMP:
      case BPF_JMP32: {
        const jop = op & 0xf0;
        if (jop === BPF_JA) nextPc = pc + 1 + (klass === BPF_JMP32 ? code.imm[pc]! : code.off[pc]!);
        else if (jop === BPF_EXIT) {
          if (this.callStack.length === 0) {
            this.done = true;
            nextPc = -1;
          } else nextPc = this.callStack.pop()!;
        } else if (jop === BPF_CALL) {
          if (code.src[pc] === BPF_PSEUDO_CALL) {
            this.callStack.push(pc + 1);
            nextPc = pc + 1 + code.imm[pc]!;
          } else writeReg(0);
        } else {
          if (f & REC_FLIP) this.PB[pc] ^= 1;
          if (this.PB[pc]) nextPc = pc + 1 + code.off[pc]!;
        }
        break;
      }
    }
    if (this.nextStep === -2) this.readHeader();
    out.depth = this.callStack.length;
    this.pc = nextPc;
    return out;
  }
}
