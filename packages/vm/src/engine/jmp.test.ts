// Jumps and calls: every condition of BPF_JMP and BPF_JMP32 at its boundaries against a BigInt
// reference (RFC 9669 4.3), ja and gotol, loops, and bpf-to-bpf calls (arguments, r0, r6-r9
// preserved, a stack frame per call, the 8-frame and 512-byte limits).

import { describe, expect, it } from 'vitest';
import { assemble } from '../asm/assemble.js';
import { formatInsn } from '../asm/disassemble.js';
import { LoadError } from '../errors.js';
import {
  BPF_ALU64,
  BPF_DW,
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
  BPF_MEM,
  BPF_MOV,
  BPF_STX,
  BPF_X,
  fromInsns,
  LDDW,
  type Bytecode,
  type Insn,
} from '../isa.js';
import { Machine } from './machine.js';
import { runOnMemory, RAW_ENTRY_REGS } from './raw.js';
import { LoadedProgram, programFromBytecode } from './vm.js';

const u64 = (v: bigint) => BigInt.asUintN(64, v);

/** RFC 9669 4.3: the condition on 64 bits, or on the low 32 bits for BPF_JMP32. */
function refCond(width: 32 | 64, op: number, a: bigint, b: bigint): boolean {
  const U = (v: bigint) => BigInt.asUintN(width, v);
  const S = (v: bigint) => BigInt.asIntN(width, v);
  switch (op) {
    case BPF_JEQ: return U(a) === U(b);
    case BPF_JNE: return U(a) !== U(b);
    case BPF_JGT: return U(a) > U(b);
    case BPF_JGE: return U(a) >= U(b);
    case BPF_JLT: return U(a) < U(b);
    case BPF_JLE: return U(a) <= U(b);
    case BPF_JSET: return (U(a) & U(b)) !== 0n;
    case BPF_JSGT: return S(a) > S(b);
    case BPF_JSGE: return S(a) >= S(b);
    case BPF_JSLT: return S(a) < S(b);
    case BPF_JSLE: return S(a) <= S(b);
  }
  throw new Error(`jump op 0x${op.toString(16)}`);
}

const insn = (op: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ op, dst, src, off, imm });
const lddw = (dst: number, v: bigint): Insn[] => {
  const u = u64(v);
  return [insn(LDDW, dst, 0, 0, Number(BigInt.asIntN(32, u))), insn(0, 0, 0, 0, Number(BigInt.asIntN(32, u >> 32n)))];
};

function load(code: Bytecode): LoadedProgram {
  return new LoadedProgram(programFromBytecode(code), new Machine(), { entryRegs: RAW_ENTRY_REGS });
}

function run(src: string | Bytecode, mem = new Uint8Array(0)) {
  const code = typeof src === 'string' ? assemble(src) : src;
  const r = runOnMemory(load(code), mem, { strict: true });
  if (r.fault) throw r.fault;
  expect(r.warnings).toEqual([]);
  return r;
}

const CONDS: [string, number][] = [
  ['jeq', BPF_JEQ], ['jne', BPF_JNE], ['jgt', BPF_JGT], ['jge', BPF_JGE], ['jlt', BPF_JLT], ['jle', BPF_JLE],
  ['jset', BPF_JSET], ['jsgt', BPF_JSGT], ['jsge', BPF_JSGE], ['jslt', BPF_JSLT], ['jsle', BPF_JSLE],
];

/** Values at the signed and unsigned boundaries of both widths, and pairs equal in one half only. */
const BOUNDARY: bigint[] = [
  0n, 1n, 2n, 0x7fffffffn, 0x80000000n, 0x80000001n, 0xfffffffen, 0xffffffffn, 0x100000000n, 0x100000001n,
  0x1ffffffffn, 0x7fffffffffffffffn, 0x8000000000000000n, 0x8000000000000001n, 0xfffffffeffffffffn,
  0xffffffff00000000n, 0xffffffff7fffffffn, 0xffffffff80000000n, 0xfffffffffffffffen, 0xffffffffffffffffn,
];
const BOUNDARY_IMM = [0, 1, -1, 2, -2, 0x7fffffff, -0x80000000, 0x7ffffffe, -0x7fffffff];

/**
 * One program per condition: for each pair, r4 = 1 if the jump is taken else 0, stored to
 * mem[8i]. `jcc +1` skips `ja +1`, which would skip `r4 = 1`.
 */
function conditionBatch(op: Insn['op'], pairs: { setup: Insn[]; imm: number; expect: boolean }[]): void {
  const insns: Insn[] = [insn(BPF_ALU64 | BPF_MOV | BPF_X, 9, 1)];
  const jumps: number[] = [];
  pairs.forEach((p, i) => {
    insns.push(...p.setup, insn(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0));
    jumps.push(insns.length);
    insns.push(insn(op, 2, op & BPF_X ? 3 : 0, 1, p.imm), insn(BPF_JMP | BPF_JA, 0, 0, 1), insn(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 1), insn(BPF_STX | BPF_MEM | BPF_DW, 9, 4, 8 * i));
  });
  insns.push(insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0), insn(BPF_JMP | BPF_EXIT));
  const code = fromInsns(insns);
  const { memory } = run(code, new Uint8Array(8 * pairs.length));
  const dv = new DataView(memory.buffer, memory.byteOffset);
  pairs.forEach((p, i) => {
    const taken = dv.getBigUint64(8 * i, true) === 1n;
    if (taken !== p.expect) {
      const setup = p.setup.length ? `r2 = ${formatInsn(fromInsns(p.setup), 0)}` : '';
      expect.fail(`${formatInsn(code, jumps[i]!)} with ${setup}${p.setup.length > 2 ? `, r3 = ${formatInsn(fromInsns(p.setup.slice(2)), 0)}` : ''}: taken ${taken}, expected ${p.expect}`);
    }
  });
}

describe.each([
  ['BPF_JMP (64-bit)', BPF_JMP, 64],
  ['BPF_JMP32', BPF_JMP32, 32],
] as const)('%s conditions at their boundaries', (_, klass, width) => {
  it.each(CONDS)('%s with a register', (_, op) => {
    conditionBatch(
      klass | op | BPF_X,
      BOUNDARY.flatMap((a) => BOUNDARY.map((b) => ({ setup: [...lddw(2, a), ...lddw(3, b)], imm: 0, expect: refCond(width, op, a, b) }))),
    );
  });

  it.each(CONDS)('%s with an immediate (sign-extended to 64 bits for BPF_JMP)', (_, op) => {
    conditionBatch(
      klass | op | BPF_K,
      BOUNDARY.flatMap((a) => BOUNDARY_IMM.map((imm) => ({ setup: lddw(2, a), imm, expect: refCond(width, op, a, u64(BigInt(imm))) }))),
    );
  });
});

describe('conditions, spelled out', () => {
  it('-1 is greater than 0 unsigned and less signed; on 32 bits only the low half counts', () => {
    const r = run(`
      mov %r0, 0
      mov %r1, -1
      mov %r2, 0
      jgt %r1, %r2, +1
      ja +1
      or %r0, 1
      jslt %r1, %r2, +1
      ja +1
      or %r0, 2
      lddw %r3, 0x1700000005
      jeq32 %r3, 5, +1
      ja +1
      or %r0, 4
      jeq %r3, 5, +1
      ja +1
      or %r0, 8
      exit`);
    expect(r.r0).toBe(7n);
  });
});

describe('ja and gotol', () => {
  it('ja forward, ja +0 and ja backward (a loop)', () => {
    const r = run(`
      mov %r0, 0
      mov %r1, 5
      ja +0
    loop:
      add %r0, 3
      sub %r1, 1
      jeq %r1, 0, +1
      ja loop
      exit`);
    expect(r.r0).toBe(15n);
    // 3 before the loop, 4 per round (the last round exits through jeq): 3 + 4*5 - 1 + 1 (exit)
    expect(r.steps).toBe(3 + 5 * 4 - 1 + 1);
  });

  it('a block that jumps back to its own start (compiled as a do-while loop) counts every round', () => {
    const r = run('mov %r0, 0\nmov %r1, 1000\nloop:\nadd %r0, 7\nsub %r1, 1\njne %r1, 0, loop\nexit');
    expect(r.r0).toBe(7000n);
    expect(r.steps).toBe(2 + 3 * 1000 + 1);
  });

  it('gotol reaches 40,000 instructions forward and back, beyond a 16-bit offset', () => {
    const adds = Array(40_000).fill('add %r0, 1').join('\n');
    // mem[0] selects the path: 1 runs the adds, 0 jumps over them.
    const prog = `ldxb %r2, [%r1]\nmov %r0, 0\njeq %r2, 1, +1\nja32 over\n${adds}\nover:\nexit`;
    expect(run(prog, Uint8Array.of(1)).r0).toBe(40_000n);
    const skipped = run(prog, Uint8Array.of(0));
    expect(skipped.r0).toBe(0n);
    expect(skipped.steps).toBe(5);
    const back = run(`mov %r0, 0\nja32 start\nback:\nadd %r0, 2\nexit\nstart:\nmov %r1, 0\n${Array(40_000).fill('add %r1, 1').join('\n')}\nmov %r0, %r1\nja32 back`);
    expect(back.r0).toBe(40_002n);
    expect(back.steps).toBe(2 + 1 + 40_000 + 2 + 2);
  });
});

describe('bpf-to-bpf calls', () => {
  it('pass r1-r5, return r0, and keep the caller’s r6-r9', () => {
    const r = run(`
      mov %r6, 6
      mov %r7, 7
      mov %r8, 8
      mov %r9, 9
      mov %r1, 1
      mov %r2, 2
      mov %r3, 3
      mov %r4, 4
      mov %r5, 5
      call local f
      # r0 = 1 + 20 + 300 + 4000 + 50000 from f; r6-r9 are the caller's again.
      mul %r6, 1000000
      add %r0, %r6
      mul %r7, 10000000
      add %r0, %r7
      mul %r8, 100000000
      add %r0, %r8
      lddw %r1, 1000000000
      mul %r9, %r1
      add %r0, %r9
      exit
    f:
      mov %r6, 0
      mov %r7, 0
      mov %r8, 0
      mov %r9, 0
      mov %r0, %r1
      mul %r2, 10
      add %r0, %r2
      mul %r3, 100
      add %r0, %r3
      mul %r4, 1000
      add %r0, %r4
      mul %r5, 10000
      add %r0, %r5
      exit`);
    expect(r.r0).toBe(9_876_054_321n);
    expect(r.steps).toBe(9 + 1 + 14 + 10);
  });

  it('give each call its own stack frame, and let a callee write through a pointer to its caller’s', () => {
    const r = run(`
      stdw [%r10-8], 111
      mov %r1, %r10
      add %r1, -16
      call local f
      # f wrote 222 into its own frame's -8 and 333 through r1 into ours at -16.
      ldxdw %r2, [%r10-8]
      ldxdw %r3, [%r10-16]
      mov %r0, %r0
      mul %r2, 1000
      add %r0, %r2
      mul %r3, 1000000
      add %r0, %r3
      exit
    f:
      stdw [%r10-8], 222
      stdw [%r1+0], 333
      ldxdw %r0, [%r10-8]
      exit`);
    expect(r.r0).toBe(333_111_222n);
  });

  it('run eight frames deep, each with its own stack', () => {
    // Frame d stores d at its -8 and calls frame d+1; on the way back each adds its own -8 times 10^d.
    const lines = ['mov %r1, 0', 'call local f1', 'exit'];
    for (let d = 1; d <= 7; d++) {
      lines.push(`f${d}:`, `stdw [%r10-8], ${d}`, 'mov %r6, %r1');
      lines.push(d < 7 ? `call local f${d + 1}` : 'mov %r0, 0');
      lines.push('ldxdw %r2, [%r10-8]', `mul %r2, ${10 ** (d - 1)}`, 'add %r0, %r2', 'exit');
    }
    const r = run(lines.join('\n'));
    expect(r.r0).toBe(7654321n);
  });

  it('refuse, at load, a ninth frame and a combined stack over 512 bytes', () => {
    const chain = ['mov %r0, 0', 'call local f1', 'exit', ...[1, 2, 3, 4, 5, 6, 7].flatMap((i) => [`f${i}:`, `call local f${i + 1}`, 'exit']), 'f8:', 'mov %r0, 1', 'exit'];
    expect(() => load(assemble(chain.join('\n')))).toThrow(new LoadError('invalid program: the call stack of 9 frames is too deep (the kernel allows 8) at pc 17 (r0 = 0x1)', 17));
    expect(() => load(assemble('mov %r0, 0\nstdw [%r10-512], 0\ncall local f\nexit\nf:\nstdw [%r10-8], 0\nexit'))).toThrow(/combined stack size of 2 calls is 528 bytes, the kernel allows 512/);
  });
});
