// Two disassembly syntaxes for one instruction:
// - formatInsn: what `llvm-objdump -d` (LLVM 19) prints, without its address and bytes columns,
//   e.g. `r2 = *(u32 *)(r1 + 0x3e)`, `if r1 != 0x0 goto -0x4`.
// - formatAsm: the `.data` files' assembly syntax, which `assemble` reads back to the same bytes.

import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_NEG,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  BPF_ST,
  BPF_STX,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  LDDW,
  aluOp,
  cls,
  jmpOp,
  memMode,
  memSize,
  sizeBytes,
  srcBit,
  type Bytecode,
} from '../isa.js';
import { ALU_OPS, ATOMIC_OPS, JMP_OPS, SIZE_SUFFIX } from './assemble.js';

export interface FormatOptions {
  /**
   * Names a jump's target pc, appended llvm-objdump style: `goto +0x3 <LBB0_2>`. llvm-objdump
   * itself, on an object without symbols, prints the section offset: pass
   * `(pc) => pc === 0 ? '.text' : '.text+0x' + (pc * 8).toString(16)` to get its lines verbatim.
   */
  jumpLabel?(targetPc: number): string | undefined;
  /** Names the function starting at a pc: `call 0x3 <parse_tcp>` for bpf-to-bpf calls and callbacks. */
  funcName?(pc: number): string | undefined;
  /** Names a map by the index an lddw with src BPF_PSEUDO_MAP_IDX(_VALUE) or MAP_FD/VALUE holds. */
  mapName?(index: number): string | undefined;
  /** Names a helper by id: `call 0x1 <bpf_map_lookup_elem>`. */
  helperName?(id: number): string | undefined;
  /**
   * Print as `llvm-objdump -d --mcpu=v3` (and v4) do: 32-bit loads and stores through `w`
   * registers, and every 32-bit atomic decoded. Off by default, like llvm-objdump.
   */
  alu32?: boolean;
}

/** Slots the instruction at pc takes: 2 for lddw, else 1. */
export function insnSlots(code: Bytecode, pc: number): 1 | 2 {
  return code.op[pc] === LDDW ? 2 : 1;
}

/** The pcs where instructions start (skipping lddw's second slot). */
export function insnStarts(code: Bytecode): number[] {
  const out: number[] = [];
  for (let pc = 0; pc < code.length; pc += insnSlots(code, pc)) out.push(pc);
  return out;
}

const UNKNOWN = '<unknown>';

/** BPF_JMP | BPF_JCOND: may_goto (include/uapi/linux/bpf.h, Linux 6.9+). */
const BPF_JCOND = 0xe0;

/** llvm-objdump prints numbers as signed hex: 0x3e, -0x8. */
export function hex(v: number | bigint): string {
  const b = BigInt(v);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}

const annotate = (text: string, name: string | undefined): string => (name === undefined ? text : `${text} <${name}>`);

const LLVM_ALU: Record<number, string> = {
  0x00: '+=',
  0x10: '-=',
  0x20: '*=',
  0x30: '/=',
  0x40: '|=',
  0x50: '&=',
  0x60: '<<=',
  0x70: '>>=',
  0x90: '%=',
  0xa0: '^=',
  0xb0: '=',
  0xc0: 's>>=',
};

const LLVM_JMP: Record<number, string> = {
  0x10: '==',
  0x20: '>',
  0x30: '>=',
  0x40: '&',
  0x50: '!=',
  0x60: 's>',
  0x70: 's>=',
  0xa0: '<',
  0xb0: '<=',
  0xc0: 's<',
  0xd0: 's<=',
};

const LLVM_ATOMIC: Record<number, [string, string]> = {
  0x00: ['+=', 'add'],
  0x40: ['|=', 'or'],
  0x50: ['&=', 'and'],
  0xa0: ['^=', 'xor'],
};

const SIZE_TYPE = { 1: 'u8', 2: 'u16', 4: 'u32', 8: 'u64' } as const;

/** The instruction at pc in llvm-objdump's syntax (LLVM 19), without address and bytes. */
export function formatInsn(code: Bytecode, pc: number, opts: FormatOptions = {}): string {
  const op = code.op[pc]!;
  const dst = code.dst[pc]!;
  const src = code.src[pc]!;
  const off = code.off[pc]!;
  const imm = code.imm[pc]!;
  const r = (n: number) => `r${n}`;
  const w = (n: number) => `w${n}`;
  const memRef = (base: number) => `(r${base} ${off < 0 ? '-' : '+'} ${hex(Math.abs(off))})`;
  const jumpTo = (rel: number) => annotate(`${rel < 0 ? '' : '+'}${hex(rel)}`, opts.jumpLabel?.(pc + 1 + rel));

  switch (cls(op)) {
    case BPF_ALU:
    case BPF_ALU64: {
      const is64 = cls(op) === BPF_ALU64;
      const reg = is64 ? r : w;
      const o = aluOp(op);
      const x = srcBit(op) === BPF_X;
      if (o === BPF_END) {
        if (imm !== 16 && imm !== 32 && imm !== 64) return UNKNOWN;
        // BPF_ALU64 | BPF_END | BPF_TO_LE is the unconditional bswap (RFC 9669 4.2); ALU64 with BPF_X is unassigned.
        if (is64 && x) return UNKNOWN;
        const name = is64 ? 'bswap' : x ? 'be' : 'le';
        return `r${dst} = ${name}${imm} r${dst}`;
      }
      if (o === BPF_NEG) return x ? UNKNOWN : `${reg(dst)} = -${reg(dst)}`;
      const sym = LLVM_ALU[o];
      if (sym === undefined) return UNKNOWN;
      const rhs = x ? reg(src) : hex(imm);
      if (off === 0) return `${reg(dst)} ${sym} ${rhs}`;
      // Signed division and modulo (offset 1) and sign-extending moves (offset 8/16/32): RFC 9669 4.1.
      if (off === 1 && (o === BPF_DIV || o === BPF_MOD)) return `${reg(dst)} s${sym} ${rhs}`;
      if (o === BPF_MOV && x && (off === 8 || off === 16 || (is64 && off === 32))) return `${reg(dst)} = (s${off})${reg(src)}`;
      return UNKNOWN;
    }

    case BPF_LD: {
      if (op === LDDW) {
        if (pc + 1 >= code.length) return UNKNOWN;
        if (src === 0) {
          const v = (BigInt(code.imm[pc + 1]!) << 32n) | BigInt(imm >>> 0);
          return `r${dst} = ${hex(BigInt.asIntN(64, v))} ll`;
        }
        const text = `ld_pseudo\tr${dst}, ${hex(src)}, ${hex(imm)}`;
        if (src === BPF_PSEUDO_FUNC) return annotate(text, opts.funcName?.(pc + 1 + imm));
        if (src === BPF_PSEUDO_MAP_FD || src === BPF_PSEUDO_MAP_IDX) return annotate(text, opts.mapName?.(imm));
        if (src === BPF_PSEUDO_MAP_VALUE || src === BPF_PSEUDO_MAP_IDX_VALUE) {
          const name = opts.mapName?.(imm);
          const valueOff = code.imm[pc + 1]!;
          return annotate(text, name === undefined ? undefined : valueOff === 0 ? name : `${name}+${hex(valueOff)}`);
        }
        return text;
      }
      const size = sizeBytes(op);
      // Legacy packet loads; LLVM has no 64-bit form of them.
      if (size === 8) return UNKNOWN;
      if (memMode(op) === BPF_ABS) return `r0 = *(${SIZE_TYPE[size]} *)skb[${hex(imm)}]`;
      if (memMode(op) === BPF_IND) return `r0 = *(${SIZE_TYPE[size]} *)skb[r${src}]`;
      return UNKNOWN;
    }

    case BPF_LDX: {
      const size = sizeBytes(op);
      if (memMode(op) === BPF_MEM) {
        const d = opts.alu32 && size < 8 ? w(dst) : r(dst);
        return `${d} = *(${SIZE_TYPE[size]} *)${memRef(src)}`;
      }
      if (memMode(op) === BPF_MEMSX && size < 8) return `r${dst} = *(s${size * 8} *)${memRef(src)}`;
      return UNKNOWN;
    }

    case BPF_ST:
      if (memMode(op) !== BPF_MEM) return UNKNOWN;
      return `*(${SIZE_TYPE[sizeBytes(op)]} *)${memRef(dst)} = ${hex(imm)}`;

    case BPF_STX: {
      const size = sizeBytes(op);
      if (memMode(op) === BPF_MEM) {
        const s = opts.alu32 && size < 8 ? w(src) : r(src);
        return `*(${SIZE_TYPE[size]} *)${memRef(dst)} = ${s}`;
      }
      if (memMode(op) !== BPF_ATOMIC || (memSize(op) !== BPF_W && memSize(op) !== BPF_DW)) return UNKNOWN;
      const is64 = memSize(op) === BPF_DW;
      // llvm-objdump without --mcpu=v3 prints 32-bit atomic add through r registers and cannot decode
      // the other 32-bit atomics (it even shows a fetching add as a plain one); those get the v3 spelling.
      const reg = is64 || (!opts.alu32 && imm === 0) ? r : w;
      const t = SIZE_TYPE[size];
      const addr = `r${dst} ${off < 0 ? '-' : '+'} ${hex(Math.abs(off))}`;
      if (imm === BPF_XCHG) return `${reg(src)} = xchg${is64 ? '' : '32'}_${size * 8}(${addr}, ${reg(src)})`;
      if (imm === BPF_CMPXCHG) return `${reg(0)} = cmpxchg${is64 ? '' : '32'}_${size * 8}(${addr}, ${reg(0)}, ${reg(src)})`;
      const a = LLVM_ATOMIC[imm & ~BPF_FETCH];
      if (!a || (imm & ~(BPF_FETCH | 0xf0)) !== 0) return UNKNOWN;
      if (imm & BPF_FETCH) return `${reg(src)} = atomic_fetch_${a[1]}((${t} *)(${addr}), ${reg(src)})`;
      return `lock *(${t} *)(${addr}) ${a[0]} ${reg(src)}`;
    }

    case BPF_JMP:
    case BPF_JMP32: {
      const is64 = cls(op) === BPF_JMP;
      const o = jmpOp(op);
      const x = srcBit(op) === BPF_X;
      if (o === BPF_JA) {
        if (x) return UNKNOWN;
        // gotol (BPF_JMP32 | BPF_JA) jumps by imm (RFC 9669 4.3.2).
        return is64 ? `goto ${jumpTo(off)}` : `gotol ${jumpTo(imm)}`;
      }
      if (o === BPF_CALL && is64) {
        if (x) return `callx r${dst}`;
        const text = `call ${hex(imm)}`;
        if (src === BPF_PSEUDO_CALL) return annotate(text, opts.funcName?.(pc + 1 + imm));
        if (src === 0) return annotate(text, opts.helperName?.(imm));
        return text;
      }
      if (o === BPF_EXIT && is64) return x ? UNKNOWN : 'exit';
      if (o === BPF_JCOND && is64) return x ? UNKNOWN : `may_goto ${jumpTo(off)}`;
      const sym = LLVM_JMP[o];
      if (sym === undefined) return UNKNOWN;
      const reg = is64 ? r : w;
      return `if ${reg(dst)} ${sym} ${x ? reg(src) : hex(imm)} goto ${jumpTo(off)}`;
    }
  }
  return UNKNOWN;
}

// ---------------------------------------------------------------------------------------------
// The `.data` assembly syntax.

const ALU_NAME = Object.fromEntries(Object.entries(ALU_OPS).map(([k, v]) => [v, k])) as Record<number, string>;
const JMP_NAME = Object.fromEntries(Object.entries(JMP_OPS).map(([k, v]) => [v, k])) as Record<number, string>;
const SIZE_NAME = Object.fromEntries(Object.entries(SIZE_SUFFIX).map(([k, v]) => [v, k])) as Record<number, string>;
const ATOMIC_NAME = Object.fromEntries(Object.entries(ATOMIC_OPS).map(([k, v]) => [v, k])) as Record<number, string>;

/** Small numbers in decimal, others in signed hex: `1`, `-8`, `0x33`, `-0x14`. */
function num(v: number | bigint): string {
  const b = BigInt(v);
  return b > -10n && b < 10n ? b.toString() : hex(b);
}

const signed = (v: number): string => (v < 0 ? `${v}` : `+${v}`);
const memAsm = (reg: number, off: number): string => (off === 0 ? `[%r${reg}]` : `[%r${reg}${signed(off)}]`);

/** The slot as a `.raw` line: the little-endian u64 a `-- raw` section holds. */
export function rawSlot(code: Bytecode, pc: number): string {
  const v =
    (BigInt(code.imm[pc]! >>> 0) << 32n) |
    (BigInt(code.off[pc]! & 0xffff) << 16n) |
    (BigInt(((code.src[pc]! & 0xf) << 4) | (code.dst[pc]! & 0xf)) << 8n) |
    BigInt(code.op[pc]!);
  return `.raw 0x${v.toString(16).padStart(16, '0')}`;
}

/**
 * The instruction at pc in the `.data` assembly syntax. Jumps and local calls are written as
 * relative offsets (`+3`, `-1`). An encoding the mnemonics cannot express (an unused field set, a
 * pseudo lddw, an unknown opcode) comes out as `.raw` lines, one per slot, so that `assemble` always
 * gives back the same bytes.
 */
export function formatAsm(code: Bytecode, pc: number): string {
  const text = asmText(code, pc);
  if (text !== undefined) return text;
  if (code.op[pc] === LDDW && pc + 1 < code.length) return `${rawSlot(code, pc)}\n${rawSlot(code, pc + 1)}`;
  return rawSlot(code, pc);
}

/** A whole program in the `.data` assembly syntax, one instruction per line. */
export function disassembleAsm(code: Bytecode): string {
  return insnStarts(code)
    .map((pc) => formatAsm(code, pc) + '\n')
    .join('');
}

function asmText(code: Bytecode, pc: number): string | undefined {
  const op = code.op[pc]!;
  const dst = code.dst[pc]!;
  const src = code.src[pc]!;
  const off = code.off[pc]!;
  const imm = code.imm[pc]!;
  // Each form below names the fields it writes; any other field must be zero to round-trip.
  const only = (fields: { dst?: boolean; src?: boolean; off?: boolean; imm?: boolean }, text: string) =>
    (fields.dst || dst === 0) && (fields.src || src === 0) && (fields.off || off === 0) && (fields.imm || imm === 0) ? text : undefined;

  switch (cls(op)) {
    case BPF_ALU:
    case BPF_ALU64: {
      const sfx = cls(op) === BPF_ALU ? '32' : '';
      const o = aluOp(op);
      const x = srcBit(op) === BPF_X;
      if (o === BPF_END) {
        if (imm !== 16 && imm !== 32 && imm !== 64) return undefined;
        if (sfx === '' && x) return undefined;
        const name = sfx === '' ? 'bswap' : x ? 'be' : 'le';
        return only({ dst: true, imm: true }, `${name}${imm} %r${dst}`);
      }
      if (o === BPF_NEG) return x ? undefined : only({ dst: true }, `neg${sfx} %r${dst}`);
      const name = ALU_NAME[o];
      if (name === undefined) return undefined;
      let mnemonic: string;
      if (off === 0) mnemonic = name + sfx;
      else if (off === 1 && (o === BPF_DIV || o === BPF_MOD)) mnemonic = `s${name}${sfx}`;
      else if (o === BPF_MOV && x && (off === 8 || off === 16 || (sfx === '' && off === 32))) mnemonic = `movsx${off}${sfx || '64'}`;
      else return undefined;
      return x
        ? only({ dst: true, src: true, off: true }, `${mnemonic} %r${dst}, %r${src}`)
        : only({ dst: true, off: true, imm: true }, `${mnemonic} %r${dst}, ${num(imm)}`);
    }

    case BPF_LD: {
      if (op === LDDW) {
        if (pc + 1 >= code.length || src !== 0 || off !== 0) return undefined;
        if (code.op[pc + 1] !== 0 || code.dst[pc + 1] !== 0 || code.src[pc + 1] !== 0 || code.off[pc + 1] !== 0) return undefined;
        const v = (BigInt(code.imm[pc + 1]! >>> 0) << 32n) | BigInt(imm >>> 0);
        return `lddw %r${dst}, 0x${v.toString(16)}`;
      }
      const size = SIZE_NAME[memSize(op)]!;
      if (memMode(op) === BPF_ABS) return only({ imm: true }, `ldabs${size} ${num(imm)}`);
      if (memMode(op) === BPF_IND) return only({ src: true, imm: true }, `ldind${size} %r${src}, ${num(imm)}`);
      return undefined;
    }

    case BPF_LDX: {
      const size = SIZE_NAME[memSize(op)]!;
      const all = { dst: true, src: true, off: true };
      if (memMode(op) === BPF_MEM) return only(all, `ldx${size} %r${dst}, ${memAsm(src, off)}`);
      if (memMode(op) === BPF_MEMSX && size !== 'dw') return only(all, `ldxs${size} %r${dst}, ${memAsm(src, off)}`);
      return undefined;
    }

    case BPF_ST:
      if (memMode(op) !== BPF_MEM) return undefined;
      return only({ dst: true, off: true, imm: true }, `st${SIZE_NAME[memSize(op)]} ${memAsm(dst, off)}, ${num(imm)}`);

    case BPF_STX: {
      const all = { dst: true, src: true, off: true };
      if (memMode(op) === BPF_MEM) return only(all, `stx${SIZE_NAME[memSize(op)]} ${memAsm(dst, off)}, %r${src}`);
      if (memMode(op) !== BPF_ATOMIC || (memSize(op) !== BPF_W && memSize(op) !== BPF_DW)) return undefined;
      const sfx = memSize(op) === BPF_W ? '32' : '';
      const operands = `${memAsm(dst, off)}, %r${src}`;
      if (imm === BPF_XCHG || imm === BPF_CMPXCHG) return `lock ${ATOMIC_NAME[imm]}${sfx} ${operands}`;
      const name = ATOMIC_NAME[imm & ~BPF_FETCH];
      if (name === undefined || (imm & ~(BPF_FETCH | 0xf0)) !== 0 || name === 'xchg' || name === 'cmpxchg') return undefined;
      return `lock ${imm & BPF_FETCH ? 'fetch ' : ''}${name}${sfx} ${operands}`;
    }

    case BPF_JMP:
    case BPF_JMP32: {
      const is64 = cls(op) === BPF_JMP;
      const o = jmpOp(op);
      const x = srcBit(op) === BPF_X;
      if (o === BPF_JA) {
        if (x) return undefined;
        return is64 ? only({ off: true }, `ja ${signed(off)}`) : only({ imm: true }, `ja32 ${signed(imm)}`);
      }
      if (o === BPF_JCOND) return is64 && !x ? only({ off: true }, `may_goto ${signed(off)}`) : undefined;
      if (o === BPF_CALL || o === BPF_EXIT) {
        if (!is64) return undefined;
        if (o === BPF_EXIT) return x ? undefined : only({}, 'exit');
        if (x) return only({ dst: true }, `call %r${dst}`);
        if (src === BPF_PSEUDO_CALL) return only({ src: true, imm: true }, `call local ${signed(imm)}`);
        if (src === BPF_PSEUDO_KFUNC_CALL) return only({ src: true, imm: true }, `call runtime ${num(imm)}`);
        return only({ imm: true }, `call ${num(imm)}`);
      }
      const name = JMP_NAME[o];
      if (name === undefined) return undefined;
      const sfx = is64 ? '' : '32';
      return x
        ? only({ dst: true, src: true, off: true }, `${name}${sfx} %r${dst}, %r${src}, ${signed(off)}`)
        : only({ dst: true, off: true, imm: true }, `${name}${sfx} %r${dst}, ${num(imm)}, ${signed(off)}`);
    }
  }
  return undefined;
}
