// ALU64 and ALU32 against a BigInt reference written from RFC 9669 section 4.1-4.2: every
// operation over edge operands (0, -1, INT32_MIN, INT64_MIN, shift counts 31/32/63/64, ...), then
// thousands of random straight-line programs with forward jumps, compared register by register.

import { describe, expect, it } from 'vitest';
import { formatInsn } from '../asm/disassemble.js';
import {
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
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
  BPF_K,
  BPF_LSH,
  BPF_MEM,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_STX,
  BPF_SUB,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_X,
  BPF_XOR,
  fromInsns,
  LDDW,
  type Bytecode,
  type Insn,
} from '../isa.js';
import { Machine } from './machine.js';
import { runOnMemory, RAW_ENTRY_REGS } from './raw.js';
import { LoadedProgram, programFromBytecode } from './vm.js';

// ---- the reference: unsigned 64-bit BigInts, RFC 9669 semantics ----

const u64 = (v: bigint) => BigInt.asUintN(64, v);
const s64 = (v: bigint) => BigInt.asIntN(64, v);
const u32 = (v: bigint) => BigInt.asUintN(32, v);
const s32 = (v: bigint) => BigInt.asIntN(32, v);

/** An ALU operation of the given width on dst and src (src already the sign-extended imm for K). Results are zero-extended. */
function refAlu(width: 32 | 64, op: number, off: number, dst: bigint, src: bigint): bigint {
  const U = width === 64 ? u64 : u32;
  const S = width === 64 ? s64 : s32;
  const a = U(dst);
  const b = U(src);
  const mask = BigInt(width - 1);
  switch (op) {
    case BPF_ADD: return U(a + b);
    case BPF_SUB: return U(a - b);
    case BPF_MUL: return U(a * b);
    // Division by 0 gives 0; signed division truncates toward 0, and MIN / -1 wraps to MIN.
    case BPF_DIV: return off === 1 ? (b === 0n ? 0n : U(S(a) / S(b))) : b === 0n ? 0n : a / b;
    // Modulo by 0 leaves dst (its low half for 32 bits); the signed remainder has the dividend's sign.
    case BPF_MOD: return off === 1 ? (b === 0n ? a : U(S(a) % S(b))) : b === 0n ? a : a % b;
    case BPF_OR: return a | b;
    case BPF_AND: return a & b;
    case BPF_XOR: return a ^ b;
    case BPF_LSH: return U(a << (b & mask));
    case BPF_RSH: return a >> (b & mask);
    case BPF_ARSH: return U(S(a) >> (b & mask));
    case BPF_NEG: return U(-a);
    case BPF_MOV: return off === 0 ? b : U(BigInt.asIntN(off, b));
  }
  throw new Error(`reference: ALU op 0x${op.toString(16)}`);
}

function byteswap(v: bigint, bytes: number): bigint {
  let out = 0n;
  for (let i = 0; i < bytes; i++) out = (out << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** BPF_END: le truncates (the host is little-endian), be and the ALU64 bswap swap; all zero-extend. */
function refEnd(kind: 'le' | 'be' | 'bswap', width: 16 | 32 | 64, v: bigint): bigint {
  const w = v & ((1n << BigInt(width)) - 1n);
  return kind === 'le' ? w : byteswap(w, width / 8);
}

/** A jump condition, RFC 9669 4.3: 64-bit or 32-bit (low halves), unsigned or signed. */
function refCond(width: 32 | 64, op: number, a: bigint, b: bigint): boolean {
  const U = width === 64 ? u64 : u32;
  const S = width === 64 ? s64 : s32;
  const [ua, ub, sa, sb] = [U(a), U(b), S(a), S(b)];
  switch (op) {
    case BPF_JEQ: return ua === ub;
    case BPF_JNE: return ua !== ub;
    case BPF_JGT: return ua > ub;
    case BPF_JGE: return ua >= ub;
    case BPF_JLT: return ua < ub;
    case BPF_JLE: return ua <= ub;
    case BPF_JSET: return (ua & ub) !== 0n;
    case BPF_JSGT: return sa > sb;
    case BPF_JSGE: return sa >= sb;
    case BPF_JSLT: return sa < sb;
    case BPF_JSLE: return sa <= sb;
  }
  throw new Error(`reference: jump op 0x${op.toString(16)}`);
}

/** Runs straight-line code with forward jumps (ALU, JMP, JMP32, lddw, exit) on r0..r10. */
function refRun(code: Bytecode, regs: bigint[]): bigint[] {
  const R = regs.slice();
  for (let pc = 0; pc < code.length; ) {
    const op = code.op[pc]!;
    const d = code.dst[pc]!;
    const s = code.src[pc]!;
    const off = code.off[pc]!;
    const imm = code.imm[pc]!;
    const klass = op & 7;
    const srcVal = op & BPF_X ? R[s]! : u64(BigInt(imm));
    if (op === LDDW) {
      R[d] = (BigInt(code.imm[pc + 1]! >>> 0) << 32n) | BigInt(imm >>> 0);
      pc += 2;
      continue;
    }
    if (klass === BPF_ALU || klass === BPF_ALU64) {
      const width = klass === BPF_ALU64 ? 64 : 32;
      if ((op & 0xf0) === BPF_END) {
        const kind = klass === BPF_ALU64 ? 'bswap' : op & BPF_TO_BE ? 'be' : 'le';
        R[d] = refEnd(kind, imm as 16 | 32 | 64, R[d]!);
      } else {
        R[d] = refAlu(width, op & 0xf0, off, R[d]!, srcVal);
      }
      pc++;
      continue;
    }
    if (klass === BPF_JMP || klass === BPF_JMP32) {
      const jop = op & 0xf0;
      if (jop === BPF_EXIT) return R;
      if (jop === BPF_JA) pc += 1 + (klass === BPF_JMP32 ? imm : off);
      else pc += 1 + (refCond(klass === BPF_JMP ? 64 : 32, jop, R[d]!, srcVal) ? off : 0);
      continue;
    }
    throw new Error(`reference: opcode 0x${op.toString(16)} at pc ${pc}`);
  }
  throw new Error('reference: fell off the end');
}

// ---- running bytecode in the VM ----

const insn = (op: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ op, dst, src, off, imm });
const lddw = (dst: number, v: bigint): Insn[] => {
  const u = u64(v);
  return [insn(LDDW, dst, 0, 0, Number(BigInt.asIntN(32, u))), insn(0, 0, 0, 0, Number(BigInt.asIntN(32, u >> 32n)))];
};
const EXIT = insn(BPF_JMP | BPF_EXIT);

/** Runs in strict mode on `memSize` zero bytes; returns r0..r9 as unsigned BigInts and the memory. */
function vmRun(code: Bytecode, memSize = 0): { regs: bigint[]; memory: Uint8Array } {
  const m = new Machine();
  const p = new LoadedProgram(programFromBytecode(code), m, { entryRegs: RAW_ENTRY_REGS });
  const r = runOnMemory(p, new Uint8Array(memSize), { strict: true });
  if (r.fault) throw r.fault;
  expect(r.warnings).toEqual([]);
  const regs = Array.from({ length: 10 }, (_, i) => (BigInt(m.R[2 * i + 1]! >>> 0) << 32n) | BigInt(m.R[2 * i]! >>> 0));
  expect(regs[0]).toBe(r.r0);
  return { regs, memory: r.memory };
}

const listing = (code: Bytecode) =>
  Array.from({ length: code.length }, (_, pc) => pc)
    .filter((pc) => pc === 0 || code.op[pc - 1] !== LDDW)
    .map((pc) => `${pc}: ${formatInsn(code, pc)}`)
    .join('\n');

// ---- the reference itself, against values the RFC states ----

describe('the reference', () => {
  const MIN64 = 1n << 63n;
  it('follows RFC 9669 on the cases it spells out', () => {
    expect(refAlu(64, BPF_DIV, 1, MIN64, u64(-1n))).toBe(MIN64);
    expect(refAlu(64, BPF_MOD, 1, MIN64, u64(-1n))).toBe(0n);
    expect(refAlu(32, BPF_DIV, 1, 0x80000000n, u64(-1n))).toBe(0x80000000n);
    expect(refAlu(64, BPF_DIV, 0, 5n, 0n)).toBe(0n);
    expect(refAlu(64, BPF_MOD, 0, 5n, 0n)).toBe(5n);
    expect(refAlu(32, BPF_MOD, 0, 0xffffffff00000005n, 0n)).toBe(5n);
    expect(refAlu(64, BPF_MOD, 1, u64(-7n), 2n)).toBe(u64(-1n));
    expect(refAlu(64, BPF_DIV, 1, u64(-7n), 2n)).toBe(u64(-3n));
    expect(refAlu(32, BPF_MOV, 0, 0n, u64(-1n))).toBe(0xffffffffn);
    expect(refAlu(32, BPF_ARSH, 0, 0x80000000n, 16n)).toBe(0xffff8000n);
    expect(refAlu(64, BPF_LSH, 0, 1n, 64n)).toBe(1n);
    expect(refAlu(32, BPF_LSH, 0, 1n, 32n)).toBe(1n);
    expect(refAlu(64, BPF_MOV, 8, 0n, 0x180n)).toBe(u64(-128n));
    expect(refAlu(32, BPF_MOV, 16, 0n, 0x8000n)).toBe(0xffff8000n);
    expect(refEnd('be', 16, 0x12345678n)).toBe(0x7856n);
    expect(refEnd('le', 16, 0x12345678n)).toBe(0x5678n);
    expect(refEnd('bswap', 64, 0x0102030405060708n)).toBe(0x0807060504030201n);
    expect(refCond(64, BPF_JSGT, 0n, u64(-1n))).toBe(true);
    expect(refCond(64, BPF_JGT, 0n, u64(-1n))).toBe(false);
    expect(refCond(32, BPF_JEQ, 0xffffffff00000001n, 1n)).toBe(true);
  });
});

// ---- every operation over edge operands ----

const EDGE: bigint[] = [
  0n, 1n, 2n, 7n, 31n, 32n, 63n, 64n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn,
  0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x1_0000_0001n, 0x7fffffffffffffffn,
  0x8000000000000000n, 0xffffffffffffffffn, 0xfffffffffffffffen, 0xfffffffffffffff9n,
  0xffffffff80000000n, 0xffffffff7fffffffn, 0x123456789abcdef0n, 0xfedcba9876543210n,
];
/** 32-bit immediates: sign-extended for ALU64, used as is by ALU32. */
const EDGE_IMM: number[] = [0, 1, -1, 2, -2, 7, -7, 31, 32, 63, 64, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, -0x80000000, 0x12345678];

const ALU_OPS: [string, number, number][] = [
  ['add', BPF_ADD, 0], ['sub', BPF_SUB, 0], ['mul', BPF_MUL, 0], ['div', BPF_DIV, 0], ['sdiv', BPF_DIV, 1],
  ['mod', BPF_MOD, 0], ['smod', BPF_MOD, 1], ['or', BPF_OR, 0], ['and', BPF_AND, 0], ['xor', BPF_XOR, 0],
  ['lsh', BPF_LSH, 0], ['rsh', BPF_RSH, 0], ['arsh', BPF_ARSH, 0], ['mov', BPF_MOV, 0],
];

/**
 * One program per operation: for each operand pair, load the operands, apply the operation, and
 * store the 64-bit result to mem[8i] (r9 holds the memory pointer).
 */
function batch(cases: { setup: Insn[]; op: Insn; expect: bigint }[]): void {
  const insns: Insn[] = [insn(BPF_ALU64 | BPF_MOV | BPF_X, 9, 1)];
  cases.forEach((c, i) => insns.push(...c.setup, c.op, insn(BPF_STX | BPF_MEM | BPF_DW, 9, 2, 8 * i)));
  insns.push(insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0), EXIT);
  const code = fromInsns(insns);
  const { memory } = vmRun(code, cases.length * 8);
  const dv = new DataView(memory.buffer, memory.byteOffset);
  cases.forEach((c, i) => {
    const got = dv.getBigUint64(8 * i, true);
    if (got !== c.expect) {
      const pc = insns.indexOf(c.op);
      expect.fail(`${formatInsn(code, pc)} with operands ${c.setup.length ? listing(fromInsns(c.setup)).replace(/\n/g, '; ') : ''}: got 0x${got.toString(16)}, expected 0x${c.expect.toString(16)}`);
    }
  });
}

describe.each([
  ['ALU64', BPF_ALU64, 64],
  ['ALU32', BPF_ALU, 32],
] as const)('%s over edge operands', (_, klass, width) => {
  it.each(ALU_OPS)('%s with a register source', (_, op, off) => {
    const cases = EDGE.flatMap((a) => EDGE.map((b) => ({ setup: [...lddw(2, a), ...lddw(3, b)], op: insn(klass | op | BPF_X, 2, 3, off), expect: refAlu(width, op, off, a, b) })));
    batch(cases);
  });

  it.each(ALU_OPS)('%s with an immediate', (_, op, off) => {
    // The verifier refuses a constant divisor of 0 and constant shifts of the width or more.
    const valid = (imm: number) => !((op === BPF_DIV || op === BPF_MOD) && imm === 0) && !((op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) && (imm < 0 || imm >= width));
    const cases = EDGE.flatMap((a) =>
      EDGE_IMM.filter(valid).map((imm) => ({ setup: lddw(2, a), op: insn(klass | op | BPF_K, 2, 0, off, imm), expect: refAlu(width, op, off, a, u64(BigInt(imm))) })),
    );
    batch(cases);
  });

  it('neg', () => {
    batch(EDGE.map((a) => ({ setup: lddw(2, a), op: insn(klass | BPF_NEG | BPF_K, 2), expect: refAlu(width, BPF_NEG, 0, a, 0n) })));
  });

  it('a register operated with itself (add, sub, mul, div, sdiv, xor, lsh)', () => {
    const ops = [BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_XOR, BPF_LSH].map((op) => [op, 0]).concat([[BPF_DIV, 1], [BPF_MOD, 1]]);
    batch(EDGE.flatMap((a) => ops.map(([op, off]) => ({ setup: lddw(2, a), op: insn(klass | op! | BPF_X, 2, 2, off), expect: refAlu(width, op!, off!, a, a) }))));
  });
});

describe('sign-extending moves (movsx)', () => {
  it.each([
    ['ALU64', BPF_ALU64, 64, [8, 16, 32]],
    ['ALU32', BPF_ALU, 32, [8, 16]],
  ] as const)('%s from 8, 16 and 32 bits', (_, klass, width, froms) => {
    batch(EDGE.flatMap((a) => froms.map((from) => ({ setup: [...lddw(2, 0xdeadbeefcafef00dn), ...lddw(3, a)], op: insn(klass | BPF_MOV | BPF_X, 2, 3, from), expect: refAlu(width, BPF_MOV, from, 0n, a) }))));
  });

  it('examples: (s8)0x80, (s16)0x7fff, (s32)0x80000000', () => {
    batch([
      { setup: lddw(3, 0x180n), op: insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 3, 8), expect: 0xffffffffffffff80n },
      { setup: lddw(3, 0xffff7fffn), op: insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 3, 16), expect: 0x7fffn },
      { setup: lddw(3, 0x180000000n), op: insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 3, 32), expect: 0xffffffff80000000n },
      { setup: lddw(3, 0x80n), op: insn(BPF_ALU | BPF_MOV | BPF_X, 2, 3, 8), expect: 0xffffff80n },
    ]);
  });
});

describe('byte swaps', () => {
  const forms = [
    ['le', BPF_ALU | BPF_END | BPF_TO_LE],
    ['be', BPF_ALU | BPF_END | BPF_TO_BE],
    ['bswap', BPF_ALU64 | BPF_END | BPF_TO_LE],
  ] as const;
  it.each(forms)('%s16, %s32 and %s64 over edge values', (kind, op) => {
    batch(EDGE.flatMap((a) => ([16, 32, 64] as const).map((w) => ({ setup: lddw(2, a), op: insn(op, 2, 0, 0, w), expect: refEnd(kind, w, a) }))));
  });

  it('examples from the RFC: be16/be32/be64 and bswap of 0x0102030405060708, le truncates', () => {
    const v = 0x0102030405060708n;
    batch([
      { setup: lddw(2, v), op: insn(BPF_ALU | BPF_END | BPF_TO_BE, 2, 0, 0, 16), expect: 0x0807n },
      { setup: lddw(2, v), op: insn(BPF_ALU | BPF_END | BPF_TO_BE, 2, 0, 0, 32), expect: 0x08070605n },
      { setup: lddw(2, v), op: insn(BPF_ALU | BPF_END | BPF_TO_BE, 2, 0, 0, 64), expect: 0x0807060504030201n },
      { setup: lddw(2, v), op: insn(BPF_ALU | BPF_END | BPF_TO_LE, 2, 0, 0, 16), expect: 0x0708n },
      { setup: lddw(2, v), op: insn(BPF_ALU | BPF_END | BPF_TO_LE, 2, 0, 0, 32), expect: 0x05060708n },
      { setup: lddw(2, v), op: insn(BPF_ALU | BPF_END | BPF_TO_LE, 2, 0, 0, 64), expect: v },
      { setup: lddw(2, v), op: insn(BPF_ALU64 | BPF_END | BPF_TO_LE, 2, 0, 0, 16), expect: 0x0807n },
    ]);
  });
});

describe('lddw', () => {
  it('loads every 64-bit edge value exactly', () => {
    // The value goes through `r2 = r2` to the store unchanged.
    batch(EDGE.map((a) => ({ setup: lddw(2, a), op: insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 2), expect: a })));
  });
});

// ---- random programs ----

/** mulberry32: a small seeded PRNG, so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const JMP_OPS = [BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE, BPF_JSET, BPF_JSGT, BPF_JSGE, BPF_JSLT, BPF_JSLE];

function randomProgram(rand: () => number, length: number): { code: Bytecode; init: bigint[] } {
  const pick = <T>(xs: readonly T[]): T => xs[rand() % xs.length]!;
  const value = (): bigint => (rand() % 3 === 0 ? pick(EDGE) : (BigInt(rand()) << 32n) | BigInt(rand()));
  const imm = (): number => (rand() % 2 ? pick(EDGE_IMM) : rand() | 0);
  const init: bigint[] = Array.from({ length: 10 }, value);
  const insns: Insn[] = init.flatMap((v, r) => lddw(r, v));
  const body: Insn[] = [];
  while (body.length < length) {
    const klass = rand() % 2 ? BPF_ALU64 : BPF_ALU;
    const width = klass === BPF_ALU64 ? 64 : 32;
    const dst = rand() % 10;
    const src = rand() % 10;
    const k = rand() % 9;
    if (k === 0) {
      // A forward conditional jump over up to 3 instructions, on 64 or 32 bits.
      const jclass = rand() % 2 ? BPF_JMP : BPF_JMP32;
      const skip = rand() % 4;
      body.push(rand() % 2 ? insn(jclass | pick(JMP_OPS) | BPF_X, dst, src, skip) : insn(jclass | pick(JMP_OPS) | BPF_K, dst, 0, skip, imm()));
    } else if (k === 1) {
      const e = rand() % 3;
      body.push(insn(e === 0 ? BPF_ALU | BPF_END | BPF_TO_LE : e === 1 ? BPF_ALU | BPF_END | BPF_TO_BE : BPF_ALU64 | BPF_END | BPF_TO_LE, dst, 0, 0, pick([16, 32, 64])));
    } else if (k === 2) {
      body.push(insn(klass | BPF_NEG, dst));
    } else if (k === 3) {
      body.push(insn(klass | BPF_MOV | BPF_X, dst, src, pick(klass === BPF_ALU64 ? [0, 8, 16, 32] : [0, 8, 16])));
    } else {
      const [, op, off] = pick(ALU_OPS);
      if (rand() % 2) {
        body.push(insn(klass | op | BPF_X, dst, src, off));
      } else {
        let i = imm();
        if ((op === BPF_DIV || op === BPF_MOD) && i === 0) i = 3;
        if (op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) i = (i >>> 0) % width;
        body.push(insn(klass | op | BPF_K, dst, 0, off, i));
      }
    }
  }
  // Jumps that would land past the body land on the exit instead.
  body.forEach((b, i) => {
    if ((b.op & 7) === BPF_JMP || (b.op & 7) === BPF_JMP32) b.off = Math.min(b.off, body.length - i - 1);
  });
  insns.push(...body, EXIT);
  return { code: fromInsns(insns), init };
}

describe('random programs against the reference', () => {
  const SEEDS = 30;
  const PER_SEED = 100;
  it.each(Array.from({ length: SEEDS }, (_, i) => (0x5eed0000 + i).toString(16)))(`seed 0x%s: ${PER_SEED} programs of 40 instructions`, (hex) => {
    const seed = parseInt(hex, 16);
    const rand = prng(seed);
    for (let n = 0; n < PER_SEED; n++) {
      const { code, init } = randomProgram(rand, 40);
      const expected = refRun(code, [...init, 0n]).slice(0, 10);
      const { regs } = vmRun(code);
      if (regs.some((v, i) => v !== expected[i])) {
        const diff = regs.map((v, i) => (v === expected[i] ? '' : `r${i}: got 0x${v.toString(16)}, expected 0x${expected[i]!.toString(16)}`)).filter(Boolean);
        expect.fail(`program ${n} of seed 0x${hex}:\n${listing(code)}\n${diff.join('\n')}`);
      }
    }
  });
});
