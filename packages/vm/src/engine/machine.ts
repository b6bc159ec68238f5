// The machine a compiled program runs on: the register file at its boundaries, memory, the
// call-frame stack, the helper table, the step counter, and the slow paths the compiled code
// calls out to (memory accesses that need more than a bounds check, atomics, 64-bit division,
// faults, warnings).

import { Fault, RewindError } from '../errors.js';
import { BPF_ADD, BPF_AND, BPF_CMPXCHG, BPF_OR, BPF_XCHG, BPF_XOR, MAX_CALL_FRAMES } from '../isa.js';
import { boundsText, bytesText, formatRegionOffset, FRAME_SIZE, MAX_REGIONS, Memory, REGION_HI_BASE, STACK_REGION, type Region } from './memory.js';
import type { LoadedProgram } from './vm.js';

/** A helper reads its arguments from m.R (r1 = R[2], R[3] ...) and leaves r0 in R[0], R[1]. */
export type HelperFn = (m: Machine) => void;

export interface Warning {
  pc: number;
  /** Step at which it happened (instructions executed before it). */
  step: number;
  message: string;
}

/** Observes memory writes the compiled code does not see inline (slow paths, helpers). */
export interface WriteObserver {
  (region: Region, offset: number, bytes: Uint8Array): void;
}

const MASK64 = (1n << 64n) - 1n;
const counted = new WeakSet<object>();
/** Eight bytes seen as a 64-bit BigInt and as two 32-bit halves: converts without BigInt arithmetic. */
const U64 = new DataView(new ArrayBuffer(8));

export class Machine {
  /** r0..r10 as (lo, hi) pairs of int32: R[2i] = low half of ri, R[2i+1] = high half. */
  readonly R = new Int32Array(22);
  /** R as 8-byte words (one per register), for clearing them in few stores. */
  private readonly R64 = new Float64Array(this.R.buffer);
  /** Scratch results of slow paths (a 64-bit value as lo, hi). */
  readonly T = new Int32Array(2);
  readonly helperTable: HelperFn[] = new Array(512);
  /** Helpers made for one map (LoadOptions.helperForMap), by the index compiled code names them with. */
  readonly helperByMap: HelperFn[] = [];
  readonly mem = new Memory();
  steps = 0;
  maxSteps = Number.MAX_SAFE_INTEGER;
  depth = 0;
  pc = 0;
  /** The context as 4-byte loads see it (see CompileOptions.ctxSlots): low and high halves per slot. */
  readonly ctxLo = new Int32Array(64);
  readonly ctxHi = new Int32Array(64);
  /** Registers written so far (bit i = ri), kept by programs that need run-time init checks. */
  initRegs = 0;
  /** Set by bpf_tail_call when it succeeds; the run loop switches programs. */
  tailTarget: unknown = null;
  /** The program running (or that ran last): the entry program, or the one a tail call switched to. */
  program: LoadedProgram | undefined = undefined;
  /** Report reads of never-written registers and stack bytes as faults instead of warnings. */
  strict = false;
  warnings: Warning[] = [];
  /** Writes an instruction for messages (llvm-objdump syntax). */
  describeInsn: (pc: number) => string = (pc) => `pc ${pc}`;
  /** Called for every memory write done outside the compiled fast path. */
  onWrite: WriteObserver | undefined;

  constructor() {
    for (let i = 0; i < this.helperTable.length; i++) this.helperTable[i] = unknownHelper(i);
  }

  // ---- registers at the helper boundary ----

  /** Argument i (1..5) as an unsigned 64-bit BigInt. */
  arg(i: number): bigint {
    U64.setInt32(0, this.R[2 * i]!, true);
    U64.setInt32(4, this.R[2 * i + 1]!, true);
    return U64.getBigUint64(0, true);
  }
  argLo(i: number): number {
    return this.R[2 * i]!;
  }
  argHi(i: number): number {
    return this.R[2 * i + 1]!;
  }
  /** Sets r0 from a number (sign-extended from 53 bits) or a BigInt (mod 2^64). */
  ret(v: number | bigint): void {
    if (typeof v === 'bigint') {
      // setBigUint64 stores v mod 2^64, as BigInt.asUintN(64, v) gives it.
      U64.setBigUint64(0, v, true);
      this.R[0] = U64.getInt32(0, true);
      this.R[1] = U64.getInt32(4, true);
    } else {
      this.R[0] = v | 0;
      this.R[1] = v < 0 ? Math.floor(v / 4294967296) | 0 : Math.floor(v / 4294967296) | 0;
    }
  }
  retPointer(region: number, offset: number): void {
    this.R[0] = offset | 0;
    this.R[1] = REGION_HI_BASE + region;
  }

  // ---- memory slow paths ----

  /** The bytes a flat-accessed region lives in. */
  bytesOf(r: Region): Uint8Array {
    return r.view ? new Uint8Array(r.view.buffer, r.view.byteOffset, r.view.byteLength) : this.mem.u8;
  }

  private what(pc: number): () => string {
    return () => this.describeInsn(pc);
  }

  /**
   * Copies the `size` bytes at pointer (hi:lo) into `out` when they lie in memory compiled code
   * reads inline (flat regions, map values) and returns true; false when the access needs the
   * slow path, which checks it and reports what is wrong.
   */
  copyFlat(lo: number, hi: number, size: number, out: Uint8Array): boolean {
    const i = (hi - REGION_HI_BASE) >>> 0;
    const u = lo >>> 0;
    const mem = this.mem;
    if (i >= MAX_REGIONS || u < mem.RLO[i]! || u + size > mem.RHR[i]!) return false;
    const dv = mem.RV[i]!;
    const p = mem.RB[i]! + u;
    if (size > 32) out.set(new Uint8Array(dv.buffer, dv.byteOffset + p, size));
    else for (let k = 0; k < size; k++) out[k] = dv.getUint8(p + k);
    return true;
  }

  /** The u32 at pointer (hi:lo) when it lies where copyFlat copies from, else -1. */
  peekU32(lo: number, hi: number): number {
    const i = (hi - REGION_HI_BASE) >>> 0;
    const u = lo >>> 0;
    const mem = this.mem;
    if (i >= MAX_REGIONS || u < mem.RLO[i]! || u + 4 > mem.RHR[i]!) return -1;
    return mem.RV[i]!.getUint32(mem.RB[i]! + u, true);
  }

  /**
   * `size` bytes at a pointer for a helper that only reads them before it returns: when they
   * lie in flat memory or a map value, a copy in a buffer that the next call of the same size
   * and `second` reuses (a helper reading two arguments passes `second` for the other one);
   * undefined when the access needs `readBytes`.
   */
  peekBytes(lo: number, hi: number, size: number, second = false): Uint8Array | undefined {
    if (size === 0 || size > 512) return undefined;
    const bufs = second ? this.peeked2 : this.peeked;
    const out = (bufs[size] ??= new Uint8Array(size));
    return this.copyFlat(lo, hi, size, out) ? out : undefined;
  }
  private readonly peeked: Uint8Array[] = [];
  private readonly peeked2: Uint8Array[] = [];

  /** Reads bytes at a pointer for a helper (argument memory), checking bounds. */
  readBytes(pc: number, lo: number, hi: number, size: number, what: string): Uint8Array {
    if (size === 0) return new Uint8Array(0);
    const out = new Uint8Array(size);
    if (this.copyFlat(lo, hi, size, out)) return out;
    const { r, at } = this.mem.resolve(pc, lo, hi, 0, size, false, () => what);
    if (r.handler) {
      const got = r.handler.read(at, size, pc);
      if (typeof got === 'string') throw new Fault(`fault at insn ${pc} (${what}): ${got}`, 'read', pc);
      return got;
    }
    const p = r.base + at;
    return this.bytesOf(r).slice(p, p + size);
  }

  /** Writes bytes at a pointer for a helper, checking bounds; observed like any other write. */
  writeBytes(pc: number, lo: number, hi: number, bytes: Uint8Array, what: string): void {
    if (bytes.length === 0) return;
    const { r, at } = this.mem.resolve(pc, lo, hi, 0, bytes.length, true, () => what);
    this.writeResolved(pc, r, at, bytes);
  }

  private writeResolved(pc: number, r: Region, at: number, bytes: Uint8Array): void {
    if (r.handler) {
      const why = r.handler.write(at, bytes, pc);
      if (why) throw new Fault(`fault at insn ${pc} (${this.describeInsn(pc)}): ${why}`, 'write', pc);
    } else {
      const p = r.base + at;
      this.bytesOf(r).set(bytes, p);
      if (r.trackInit) {
        this.mem.shadow.fill(1, p, p + bytes.length);
        const d = this.mem.shadowDirty;
        if (r.index < d.length && p < d[r.index]!) d[r.index] = p;
      }
    }
    this.onWrite?.(r, at, bytes);
  }

  load(pc: number, lo: number, hi: number, off: number, size: number, signed: boolean): void {
    const { r, at } = this.mem.resolve(pc, lo, hi, off, size, false, this.what(pc));
    let bytes: Uint8Array;
    if (r.handler?.loadValue) {
      const v = r.handler.loadValue(at, size, pc);
      if (typeof v === 'string') throw new Fault(`fault at insn ${pc} (${this.describeInsn(pc)}): ${v}`, 'read', pc);
      this.T[0] = v.lo;
      this.T[1] = v.hi;
      return;
    }
    if (r.handler) {
      const got = r.handler.read(at, size, pc);
      if (typeof got === 'string') throw new Fault(`fault at insn ${pc} (${this.describeInsn(pc)}): ${got}`, 'read', pc);
      bytes = got;
    } else {
      const p = r.base + at;
      if (r.trackInit) this.checkInit(pc, r, at, size);
      bytes = this.bytesOf(r).subarray(p, p + size);
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset, size);
    const T = this.T;
    switch (size) {
      case 1:
        T[0] = signed ? dv.getInt8(0) : dv.getUint8(0);
        break;
      case 2:
        T[0] = signed ? dv.getInt16(0, true) : dv.getUint16(0, true);
        break;
      case 4:
        T[0] = dv.getInt32(0, true);
        break;
      default:
        T[0] = dv.getInt32(0, true);
        T[1] = dv.getInt32(4, true);
        return;
    }
    T[1] = signed || (size === 4 && signed) ? T[0]! >> 31 : 0;
  }

  store(pc: number, lo: number, hi: number, off: number, size: number, vl: number, vh: number): void {
    const { r, at } = this.mem.resolve(pc, lo, hi, off, size, true, this.what(pc));
    const bytes = new Uint8Array(size);
    const dv = new DataView(bytes.buffer);
    if (size === 1) dv.setInt8(0, vl);
    else if (size === 2) dv.setInt16(0, vl, true);
    else if (size === 4) dv.setInt32(0, vl, true);
    else {
      dv.setInt32(0, vl, true);
      dv.setInt32(4, vh, true);
    }
    this.writeResolved(pc, r, at, bytes);
  }

  /** BPF_ATOMIC read-modify-write; leaves the old value in T. */
  atomic(pc: number, lo: number, hi: number, off: number, size: number, op: number, sl: number, sh: number, r0l: number, r0h: number): void {
    this.load(pc, lo, hi, off, size, false);
    const oldLo = this.T[0]!;
    const oldHi = size === 8 ? this.T[1]! : 0;
    let nl = oldLo;
    let nh = oldHi;
    const base = op & ~1;
    if (op === BPF_CMPXCHG) {
      // cmpxchg: compare with r0 (its low 32 bits for the 32-bit form).
      const equal = size === 8 ? oldLo === r0l && oldHi === r0h : oldLo === r0l;
      if (equal) {
        nl = sl;
        nh = sh;
      }
    } else if (op === BPF_XCHG) {
      nl = sl;
      nh = sh;
    } else if (base === BPF_ADD) {
      const t = (oldLo >>> 0) + (sl >>> 0);
      nl = t | 0;
      nh = (oldHi + sh + (t > 4294967295 ? 1 : 0)) | 0;
    } else if (base === BPF_OR) {
      nl = oldLo | sl;
      nh = oldHi | sh;
    } else if (base === BPF_AND) {
      nl = oldLo & sl;
      nh = oldHi & sh;
    } else if (base === BPF_XOR) {
      nl = oldLo ^ sl;
      nh = oldHi ^ sh;
    }
    if (nl !== oldLo || (size === 8 && nh !== oldHi) || op === BPF_XCHG || op === BPF_CMPXCHG) {
      this.store(pc, lo, hi, off, size, nl, nh);
    }
    this.T[0] = oldLo;
    this.T[1] = oldHi;
  }

  /** Packet access for LD_ABS/LD_IND; set by the context that owns the packet. */
  ldPacket(pc: number, _imm: number, _index: number, _size: number): boolean {
    throw new Fault(`fault at insn ${pc} (${this.describeInsn(pc)}): legacy packet load without a packet`, 'read', pc);
  }

  private checkInit(pc: number, r: Region, at: number, size: number, step?: number): void {
    const p = r.base + at;
    let missing = 0;
    for (let k = 0; k < size; k++) if (!this.mem.shadow[p + k]) missing++;
    if (missing) this.uninitRead(pc, step, `read of ${bytesText(size)} at ${formatRegionOffset(r, at)}${missing < size ? `, ${missing} of which ${missing === 1 ? 'was' : 'were'}` : size === 1 ? ', which was' : ', which were'} never written`);
  }

  /** Sets r0..r9 to 0 (a run's registers before its entry values go in). */
  clearRegs(): void {
    const w = this.R64;
    w[0] = 0; w[1] = 0; w[2] = 0; w[3] = 0; w[4] = 0;
    w[5] = 0; w[6] = 0; w[7] = 0; w[8] = 0; w[9] = 0;
  }

  /**
   * Makes stack frame k's written-bytes shadow all unwritten, as a run (frame 0) or a called
   * function finds its frame: only from the lowest byte marked since the last clear. `low` is
   * the lowest frame byte the function now running in the frame marks through r10 (its
   * compiled stores mark without noting it); marks through pointers and helpers lower it.
   */
  clearFrame(k: number, low: number): void {
    const mem = this.mem;
    const end = (k + 1) * FRAME_SIZE;
    const from = mem.shadowDirty[k]!;
    if (from < end) {
      // By 8-byte words from the word holding `from`: the frame's bytes below `from` are already
      // unwritten (nothing marked them since the last clear). A few stores beat
      // TypedArray#fill's call for the small frames most functions use.
      const w = mem.shadow64;
      const last = end >> 3;
      let j = from >> 3;
      if (last - j <= 16) for (; j < last; j++) w[j] = 0;
      else w.fill(0, j, last);
    }
    mem.shadowDirty[k] = k * FRAME_SIZE + low;
  }

  uninitStack(pc: number, off: number, size: number, depth: number, step: number): void {
    const r = this.mem.regions[STACK_REGION + depth]!;
    this.checkInit(pc, r, FRAME_SIZE + off, size, step);
  }

  uninitReg(pc: number, mask: number, step: number): void {
    const regs: string[] = [];
    for (let i = 0; i <= 10; i++) if (mask & (1 << i)) regs.push(`r${i}`);
    this.uninitRead(pc, step, `${regs.join(', ')} ${regs.length > 1 ? 'are' : 'is'} read before ${regs.length > 1 ? 'they are' : 'it is'} written`);
  }

  private uninitRead(pc: number, step: number | undefined, what: string): void {
    if (this.strict) throw new Fault(`fault at insn ${pc} (${this.describeInsn(pc)}): ${what}`, 'uninit', pc);
    this.warnings.push({ pc, step: step ?? this.steps, message: `warning at insn ${pc} (${this.describeInsn(pc)}): ${what}` });
  }

  // ---- 64-bit division, the cases the compiled fast path does not cover ----

  private static big(lo: number, hi: number): bigint {
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }
  private setT(v: bigint): void {
    const u = v & MASK64;
    this.T[0] = Number(u & 0xffffffffn) | 0;
    this.T[1] = Number(u >> 32n) | 0;
  }
  udiv64(al: number, ah: number, bl: number, bh: number): void {
    const b = Machine.big(bl, bh);
    this.setT(b === 0n ? 0n : Machine.big(al, ah) / b);
  }
  umod64(al: number, ah: number, bl: number, bh: number): void {
    const b = Machine.big(bl, bh);
    const a = Machine.big(al, ah);
    this.setT(b === 0n ? a : a % b);
  }
  sdiv64(al: number, ah: number, bl: number, bh: number): void {
    const b = BigInt.asIntN(64, Machine.big(bl, bh));
    const a = BigInt.asIntN(64, Machine.big(al, ah));
    // LLONG_MIN / -1 is LLONG_MIN (the kernel negates), BigInt gives 2^63 which wraps to it.
    this.setT(b === 0n ? 0n : a / b);
  }
  smod64(al: number, ah: number, bl: number, bh: number): void {
    const b = BigInt.asIntN(64, Machine.big(bl, bh));
    const a = BigInt.asIntN(64, Machine.big(al, ah));
    this.setT(b === 0n ? a : a % b);
  }

  // ---- faults ----

  budgetFault(pc: number): Fault {
    return new Fault(
      `instruction budget exhausted at insn ${pc} (${this.describeInsn(pc)}): the run reached its limit of ${this.maxSteps} instructions (raise it with --max-steps)`,
      'budget',
      pc,
    );
  }
  callTooDeep(pc: number): Fault {
    return new Fault(`fault at insn ${pc} (${this.describeInsn(pc)}): the call stack is too deep (the kernel allows ${MAX_CALL_FRAMES} frames)`, 'call', pc);
  }
  stackFault(pc: number, off: number, size: number, write: boolean, depth: number): Fault {
    const r = this.mem.regions[STACK_REGION + depth]!;
    return new Fault(
      `fault at insn ${pc} (${this.describeInsn(pc)}): ${write ? 'write' : 'read'} of ${bytesText(size)} at ${formatRegionOffset(r, FRAME_SIZE + off)}, ${boundsText(r)}`,
      write ? 'write' : 'read',
      pc,
    );
  }
  internalError(pc: number): Error {
    return new RewindError(`internal error: no code at pc ${pc}`);
  }
  isUncounted(e: unknown): e is Fault {
    return e instanceof Fault && !counted.has(e);
  }
  markCounted(e: object): void {
    counted.add(e);
  }
}

function unknownHelper(id: number): HelperFn {
  return (m) => {
    throw new Fault(`fault at insn ${m.pc} (${m.describeInsn(m.pc)}): helper ${id} is not available`, 'helper', m.pc);
  };
}
