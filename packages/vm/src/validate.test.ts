// Load-time validation. Each rejected program is also loaded into the kernel (as an XDP object,
// when the kernel is available), which must reject it for the reason named in the table: the
// verifier's own message is the independent oracle for what must be refused.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assemble } from './asm/assemble.js';
import { LoadError } from './errors.js';
import { BPF_MAXINSNS, fromInsns, type Bytecode, type Insn } from './isa.js';
import { validate, type ValidateOptions } from './validate.js';
import { Machine } from './engine/machine.js';
import { LoadedProgram, programFromBytecode } from './engine/vm.js';
import { Bpffs } from './kernel/bpffs.js';
import { kernelAvailable, KernelError, loadObject, runProgram } from './kernel/bpftool.js';
import { writeBpfObject } from './kernel/object.js';

/** One slot as a `.raw` line: the little-endian u64 of (op, dst | src << 4, off, imm). */
function raw(op: number, dst = 0, src = 0, off = 0, imm = 0): string {
  const v = (BigInt(imm >>> 0) << 32n) | (BigInt(off & 0xffff) << 16n) | (BigInt(((src & 15) << 4) | (dst & 15)) << 8n) | BigInt(op);
  return `.raw 0x${v.toString(16).padStart(16, '0')}`;
}

interface Case {
  name: string;
  src: string;
  /** Rewind's message, and the slot it names. */
  error: RegExp;
  pc?: number;
  /** The verifier's message for the same program (Linux 6.18), or null where no object can carry the program. */
  kernel: RegExp | null;
  opts?: ValidateOptions;
}

/** A helper table that provides bpf_ktime_get_ns (5) only. */
const onlyKtime: ValidateOptions = { checkHelper: (id) => (id === 5 ? undefined : `call to unknown helper ${id}`) };

const CASES: Case[] = [
  // ---- unknown opcodes ----
  { name: 'ALU operation 0xe0', src: `mov %r0, 0\n${raw(0xe4)}\nexit`, error: /unknown opcode 0xe4/, pc: 1, kernel: /unknown opcode e4/ },
  { name: 'ALU64 operation 0xf0', src: `mov %r0, 0\n${raw(0xf7)}\nexit`, error: /unknown opcode 0xf7/, pc: 1, kernel: /unknown opcode f7/ },
  { name: 'jump operation 0xf0', src: `mov %r0, 0\n${raw(0xf5)}\nexit`, error: /unknown opcode 0xf5/, pc: 1, kernel: /unknown opcode f5/ },
  { name: 'exit in the 32-bit jump class', src: `mov %r0, 0\n${raw(0x96)}`, error: /unknown opcode 0x96/, pc: 1, kernel: /last insn is not an exit or jmp/ },
  { name: 'call in the 32-bit jump class', src: `mov %r0, 0\n${raw(0x86, 0, 0, 0, 5)}\nexit`, error: /unknown opcode 0x86/, pc: 1, kernel: /unknown opcode 86/ },
  { name: 'bswap with the register source bit (0xdf)', src: `mov %r0, 0\n${raw(0xdf, 0, 0, 0, 16)}\nexit`, error: /unknown opcode 0xdf/, pc: 1, kernel: /unknown opcode df/ },
  { name: 'a 32-bit immediate load (0x00)', src: `mov %r0, 0\n${raw(0x00, 0, 0, 0, 1)}\nexit`, error: /unknown opcode 0x00/, pc: 1, kernel: /unknown opcode 00/ },
  { name: 'sign-extending 64-bit load (0x99)', src: `mov %r0, 0\n${raw(0x99, 0, 10, -8)}\nexit`, error: /unknown opcode 0x99/, pc: 1, kernel: /unknown opcode 99/ },
  { name: 'LDX with the ABS mode (0x21)', src: `mov %r0, 0\n${raw(0x21, 0, 10, -8)}\nexit`, error: /unknown opcode 0x21/, pc: 1, kernel: /BPF_LDX uses reserved fields/ },
  { name: 'ST with the atomic mode (0xdA)', src: `mov %r0, 0\n${raw(0xda, 10, 0, -8, 1)}\nexit`, error: /unknown opcode 0xda/, pc: 1, kernel: /unknown opcode da/ },
  { name: 'byte-sized atomic add (0xd3)', src: `mov %r0, 0\nmov %r1, 1\n${raw(0xd3, 10, 1, -8, 0)}\nexit`, error: /unknown opcode 0xd3/, pc: 2, kernel: /invalid atomic operand size/ },
  { name: 'STX with the MEMSX mode (0x9b)', src: `mov %r0, 0\nmov %r1, 1\n${raw(0x9b, 10, 1, -8)}\nexit`, error: /unknown opcode 0x9b/, pc: 2, kernel: /unknown opcode 9b/ },
  { name: 'atomic operation 0x02', src: `mov %r0, 0\nmov %r1, 1\nstxdw [%r10-8], %r1\n${raw(0xdb, 10, 1, -8, 0x02)}\nexit`, error: /invalid atomic operation 0x2/, pc: 3, kernel: /BPF_ATOMIC uses invalid atomic opcode 02/ },

  // ---- register numbers ----
  { name: 'destination r11', src: 'mov %r11, 1\nmov %r0, 0\nexit', error: /invalid destination register r11/, pc: 0, kernel: /R11 is invalid/ },
  { name: 'source r11', src: 'mov %r0, %r11\nexit', error: /invalid source register r11/, pc: 0, kernel: /R11 is invalid/ },
  { name: 'source r15 of a store', src: 'mov %r0, 0\nstxdw [%r10-8], %r15\nexit', error: /invalid source register r15/, pc: 1, kernel: /R15 is invalid/ },

  // ---- jumps ----
  { name: 'a jump past the end', src: 'mov %r0, 0\nja +5\nexit', error: /jump out of range \(to pc 7, the program has 3 slots\)/, pc: 1, kernel: /jump out of range from insn 1 to 7/ },
  { name: 'a jump before the start', src: 'mov %r0, 0\njeq %r0, 0, -3\nexit', error: /jump out of range \(to pc -1/, pc: 1, kernel: /jump out of range from insn 1 to -1/ },
  { name: 'a gotol past the end', src: 'mov %r0, 0\nja32 +100000\nexit', error: /jump out of range \(to pc 100002/, pc: 1, kernel: /jump out of range from insn 1 to 100002/ },
  { name: 'a jump into the second half of lddw', src: 'mov %r0, 0\njeq %r0, 1, +1\nlddw %r1, 0x1122334455667788\nexit', error: /jump into the middle of lddw at pc 2/, pc: 1, kernel: /jump into the middle of ldimm64 insn 2/ },
  {
    name: 'a jump out of its function',
    src: 'mov %r1, 1\ncall local next\nmov %r0, 0\nexit\nnext:\nadd %r1, 1\nja -6\nexit',
    error: /jump out of its function \(to pc 0, the function is pcs 4 to 6\)/,
    pc: 5,
    kernel: /jump out of range from insn 5 to 0/,
  },
  { name: 'a call past the end', src: 'mov %r0, 0\ncall local +10\nexit', error: /call out of range \(to pc 12/, pc: 1, kernel: null },
  // r2 = ctx->ingress_ifindex, unknown to the verifier, so that it explores the loop.
  { name: 'a jump to itself', src: 'ldxw %r2, [%r1+12]\nmov %r0, 0\njeq %r2, 0, +1\nja -1\nexit', error: /infinite loop: the jump targets itself/, pc: 3, kernel: /infinite loop detected at insn 3/ },

  // ---- writes to r10 ----
  { name: 'mov to r10', src: 'mov %r10, 1\nmov %r0, 0\nexit', error: /write to the frame pointer r10/, pc: 0, kernel: /frame pointer is read only/ },
  { name: 'add to r10', src: 'mov %r0, 0\nadd %r10, -8\nexit', error: /write to the frame pointer r10/, pc: 1, kernel: /frame pointer is read only/ },
  { name: 'a load into r10', src: 'mov %r0, 0\nstdw [%r10-8], 0\nldxdw %r10, [%r10-8]\nexit', error: /write to the frame pointer r10/, pc: 2, kernel: /frame pointer is read only/ },
  { name: 'lddw into r10', src: 'mov %r0, 0\nlddw %r10, 1\nexit', error: /write to the frame pointer r10/, pc: 1, kernel: /frame pointer is read only/ },

  // ---- program structure ----
  { name: 'a program that falls off its end', src: 'mov %r0, 0', error: /the program falls off its end/, pc: 0, kernel: /last insn is not an exit or jmp/ },
  { name: 'a subprogram that falls off its end', src: 'mov %r0, 0\ncall local f\nexit\nf:\nmov %r0, 1', error: /the function at pc 3 falls off its end/, pc: 3, kernel: /last insn is not an exit or jmp/ },
  { name: 'an lddw without its second slot', src: `mov %r0, 0\nja +0\n${raw(0x18, 1, 0, 0, 1)}`, error: /incomplete lddw: the second slot is missing/, pc: 2, kernel: /last insn is not an exit or jmp/ },
  { name: 'an lddw whose second slot has an opcode', src: `mov %r0, 0\n${raw(0x18, 1, 0, 0, 1)}\n${raw(0x95)}\nexit`, error: /invalid lddw second half/, pc: 2, kernel: /invalid bpf_ld_imm64 insn/ },
  { name: 'an lddw whose second slot has a register', src: `mov %r0, 0\n${raw(0x18, 1, 0, 0, 1)}\n${raw(0x00, 1)}\nexit`, error: /invalid lddw second half/, pc: 2, kernel: /invalid bpf_ld_imm64 insn/ },
  { name: 'code no path reaches', src: 'mov %r0, 0\nexit\nmov %r0, 1\nexit', error: /unreachable instruction: no path from the entry reaches it/, pc: 2, kernel: /unreachable insn 2/ },
  { name: 'code after an unconditional jump', src: 'mov %r0, 0\nja +1\nmov %r0, 1\nexit', error: /unreachable instruction/, pc: 2, kernel: /unreachable insn 2/ },

  // ---- reserved fields ----
  { name: 'an immediate ALU operation with a source register', src: `mov %r0, 0\n${raw(0x07, 0, 1, 0, 1)}\nexit`, error: /reserved fields are not zero in opcode 0x07/, pc: 1, kernel: /BPF_ALU uses reserved fields/ },
  { name: 'a register ALU operation with an immediate', src: `mov %r0, 0\nmov %r1, 0\n${raw(0x0f, 0, 1, 0, 1)}\nexit`, error: /reserved fields are not zero in opcode 0x0f/, pc: 2, kernel: /BPF_ALU uses reserved fields/ },
  { name: 'an add with an offset', src: `mov %r0, 0\n${raw(0x07, 0, 0, 1, 1)}\nexit`, error: /reserved fields are not zero in opcode 0x07/, pc: 1, kernel: /BPF_ALU uses reserved fields/ },
  { name: 'neg with an immediate', src: `mov %r0, 0\n${raw(0x87, 0, 0, 0, 1)}\nexit`, error: /reserved fields are not zero in opcode 0x87/, pc: 1, kernel: /BPF_NEG uses reserved fields/ },
  { name: 'a movsx from 24 bits', src: `mov %r0, 0\nmov %r1, 0\n${raw(0xbf, 0, 1, 24)}\nexit`, error: /invalid movsx offset 24/, pc: 2, kernel: /BPF_MOV uses reserved fields/ },
  { name: 'a 32-bit movsx from 32 bits', src: `mov %r0, 0\nmov %r1, 0\n${raw(0xbc, 0, 1, 32)}\nexit`, error: /invalid movsx offset 32/, pc: 2, kernel: /BPF_MOV uses reserved fields/ },
  { name: 'an immediate mov with an offset', src: `${raw(0xb7, 0, 0, 8, 1)}\nexit`, error: /invalid movsx offset 8/, pc: 0, kernel: /BPF_MOV uses reserved fields/ },
  { name: 'a div with offset 2', src: `mov %r0, 0\n${raw(0x37, 0, 0, 2, 3)}\nexit`, error: /invalid div offset 2/, pc: 1, kernel: /BPF_ALU uses reserved fields/ },
  { name: 'an immediate jump with a source register', src: `mov %r0, 0\n${raw(0x15, 0, 1, 0, 0)}\nexit`, error: /reserved fields are not zero in opcode 0x15/, pc: 1, kernel: /BPF_JMP\/JMP32 uses reserved fields/ },
  { name: 'a register jump with an immediate', src: `mov %r0, 0\nmov %r1, 0\n${raw(0x1d, 0, 1, 0, 7)}\nexit`, error: /reserved fields are not zero in opcode 0x1d/, pc: 2, kernel: /BPF_JMP\/JMP32 uses reserved fields/ },
  { name: 'ja with a destination register', src: `mov %r0, 0\n${raw(0x05, 1, 0, 0, 0)}\nexit`, error: /reserved fields are not zero in opcode 0x05/, pc: 1, kernel: /BPF_JA uses reserved fields/ },
  { name: 'exit with a destination register', src: `mov %r0, 0\n${raw(0x95, 1)}`, error: /reserved fields are not zero in opcode 0x95/, pc: 1, kernel: /BPF_EXIT uses reserved fields/ },
  { name: 'a helper call with an offset', src: `${raw(0x85, 0, 0, 1, 5)}\nexit`, error: /reserved fields are not zero in opcode 0x85/, pc: 0, kernel: /BPF_CALL uses reserved fields/, opts: onlyKtime },
  { name: 'a call with source 3', src: `${raw(0x85, 0, 3, 0, 5)}\nexit`, error: /reserved fields are not zero in opcode 0x85/, pc: 0, kernel: /BPF_CALL uses reserved fields/, opts: onlyKtime },
  { name: 'a load with an immediate', src: `mov %r0, 0\nstdw [%r10-8], 0\n${raw(0x79, 1, 10, -8, 1)}\nexit`, error: /reserved fields are not zero in opcode 0x79/, pc: 2, kernel: /BPF_LDX uses reserved fields/ },
  { name: 'an immediate store with a source register', src: `mov %r0, 0\n${raw(0x7a, 10, 1, -8, 1)}\nexit`, error: /reserved fields are not zero in opcode 0x7a/, pc: 1, kernel: /BPF_ST uses reserved fields/ },
  { name: 'a register store with an immediate', src: `mov %r0, 0\nmov %r1, 0\n${raw(0x7b, 10, 1, -8, 1)}\nexit`, error: /reserved fields are not zero in opcode 0x7b/, pc: 2, kernel: /BPF_STX uses reserved fields/ },
  { name: 'lddw with an offset', src: `mov %r0, 0\n${raw(0x18, 1, 0, 1, 1)}\n${raw(0)}\nexit`, error: /reserved fields are not zero in opcode 0x18/, pc: 1, kernel: /BPF_LD_IMM64 uses reserved fields/ },

  // ---- byte swaps ----
  { name: 'be48', src: `mov %r0, 0\n${raw(0xdc, 0, 0, 0, 48)}\nexit`, error: /invalid endian immediate 48/, pc: 1, kernel: /BPF_END uses reserved fields/ },
  { name: 'le0', src: `mov %r0, 0\n${raw(0xd4, 0, 0, 0, 0)}\nexit`, error: /invalid endian immediate 0/, pc: 1, kernel: /BPF_END uses reserved fields/ },
  { name: 'bswap8', src: `mov %r0, 0\n${raw(0xd7, 0, 0, 0, 8)}\nexit`, error: /invalid endian immediate 8/, pc: 1, kernel: /BPF_END uses reserved fields/ },

  // ---- constants the verifier refuses ----
  { name: 'a 64-bit division by the constant 0', src: 'mov %r0, 1\ndiv %r0, 0\nexit', error: /division by the constant 0/, pc: 1, kernel: /div by zero/ },
  { name: 'a 32-bit signed modulo by the constant 0', src: 'mov %r0, 1\nsmod32 %r0, 0\nexit', error: /modulo by the constant 0/, pc: 1, kernel: /div by zero/ },
  { name: 'a 64-bit shift by 64', src: 'mov %r0, 1\nlsh %r0, 64\nexit', error: /invalid shift 64: a 64-bit shift takes 0 to 63/, pc: 1, kernel: /invalid shift 64/ },
  { name: 'a 32-bit shift by 32', src: 'mov %r0, 1\nrsh32 %r0, 32\nexit', error: /invalid shift 32: a 32-bit shift takes 0 to 31/, pc: 1, kernel: /invalid shift 32/ },
  { name: 'a shift by -1', src: 'mov %r0, 1\narsh %r0, -1\nexit', error: /invalid shift -1/, pc: 1, kernel: /invalid shift -1/ },

  // ---- calls ----
  { name: 'a helper id that does not exist', src: 'call 9999\nexit', error: /call to unknown helper 9999/, pc: 0, kernel: /invalid func unknown#9999/, opts: onlyKtime },
  { name: 'callx', src: 'mov %r0, 0\nmov %r2, 0\ncallx %r2\nexit', error: /indirect call \(callx\) is not supported by the kernel/, pc: 2, kernel: /unknown opcode 8d/ },
  { name: 'a kfunc call', src: 'mov %r0, 0\ncall runtime 5\nexit', error: /kfunc calls are not supported/, pc: 1, kernel: null },
  {
    name: 'a function that calls itself',
    src: 'mov %r1, 0\ncall local f\nexit\nf:\njeq %r1, 0, +1\ncall local f\nmov %r0, 1\nexit',
    error: /recursive call to the function at pc 3/,
    pc: 3,
    kernel: /the call stack of 8 frames is too deep/,
  },
  {
    name: 'two functions that call each other',
    src: 'mov %r1, 0\ncall local f\nexit\nf:\ncall local g\nexit\ng:\nmov %r0, 0\njeq %r1, 0, +1\ncall local f\nexit',
    error: /recursive call to the function at pc 3/,
    pc: 3,
    kernel: /the call stack of 8 frames is too deep/,
  },
  {
    name: 'a combined stack of 528 bytes',
    src: 'mov %r0, 0\nstdw [%r10-512], 0\ncall local f\nexit\nf:\nstdw [%r10-8], 0\nmov %r0, 0\nexit',
    error: /combined stack size of 2 calls is 528 bytes, the kernel allows 512/,
    pc: 4,
    kernel: /combined stack size of 2 calls is 528\. Too large/,
  },
  {
    name: 'nine frames',
    src: ['mov %r0, 0', 'call local f1', 'exit', ...[1, 2, 3, 4, 5, 6, 7].flatMap((i) => [`f${i}:`, `call local f${i + 1}`, 'exit']), 'f8:', 'mov %r0, 1', 'exit'].join('\n'),
    error: /the call stack of 9 frames is too deep \(the kernel allows 8\)/,
    pc: 17,
    kernel: /the call stack of 9 frames is too deep/,
  },

  // ---- other sources of lddw and legacy loads ----
  { name: 'lddw of map 0 in a program without maps', src: `mov %r0, 0\n${raw(0x18, 1, 5, 0, 0)}\n${raw(0)}\nexit`, error: /lddw references map 0, the program has 0 maps/, pc: 1, kernel: null },
  { name: 'lddw of a map by fd', src: `mov %r0, 0\n${raw(0x18, 1, 1, 0, 3)}\n${raw(0)}\nexit`, error: /lddw references a map by file descriptor/, pc: 1, kernel: null },
  { name: 'lddw of a kernel BTF id', src: `mov %r0, 0\n${raw(0x18, 1, 3, 0, 3)}\n${raw(0)}\nexit`, error: /lddw of a kernel BTF id/, pc: 1, kernel: null },
  { name: 'lddw with source 7', src: `mov %r0, 0\n${raw(0x18, 1, 7, 0, 3)}\n${raw(0)}\nexit`, error: /invalid source register 7 for lddw/, pc: 1, kernel: null },
  { name: 'LD_ABS outside socket filters and tc', src: 'mov %r6, %r1\nldabsb 12\nexit', error: /legacy packet load \(LD_ABS\/LD_IND\) is only allowed/, pc: 1, kernel: /BPF_LD_\[ABS\|IND\] instructions not allowed for this program type/ },
];

function code(src: string): Bytecode {
  return assemble(src);
}

describe('validate rejects', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_, c) => {
    let err: unknown;
    try {
      validate(code(c.src), c.opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoadError);
    const e = err as LoadError;
    expect(e.message).toMatch(/^invalid program: /);
    expect(e.message).toMatch(c.error);
    expect(e.message).not.toContain('\n');
    if (c.pc !== undefined) {
      expect(e.pc).toBe(c.pc);
      expect(e.message).toContain(`at pc ${c.pc}`);
    }
  });

  it('an empty program', () => {
    expect(() => validate(fromInsns([]))).toThrow(new LoadError('invalid program: the program is empty'));
  });

  it("a program longer than the kernel's 1,000,000 instructions, but not one at the limit", () => {
    const mov: Insn = { op: 0xb7, dst: 0, src: 0, off: 0, imm: 0 };
    const exit: Insn = { op: 0x95, dst: 0, src: 0, off: 0, imm: 0 };
    const make = (n: number) => fromInsns([...Array<Insn>(n - 1).fill(mov), exit]);
    expect(() => validate(make(BPF_MAXINSNS + 1))).toThrow(/1000001 instructions, the kernel's limit is 1000000/);
    expect(validate(make(BPF_MAXINSNS)).subprogs).toHaveLength(1);
  });

  it('through the loader, the message shows the instruction as llvm-objdump writes it', () => {
    const p = programFromBytecode(code('mov %r0, 1\ndiv %r0, 0\nexit'));
    expect(() => new LoadedProgram(p, new Machine())).toThrow(new LoadError('invalid program: division by the constant 0 at pc 1 (r0 /= 0x0)', 1));
    const q = programFromBytecode(code('mov %r0, 0\ncall 1\nexit'));
    expect(() => new LoadedProgram(q, new Machine())).toThrow(/call to bpf_map_lookup_elem \(1\), which Rewind does not provide at pc 1 \(call 0x1\)/);
  });
});

describe('validate accepts', () => {
  it('every jump condition at its boundary offsets, gotol, and lddw next to jumps', () => {
    const an = validate(code('mov %r0, 0\njeq %r0, 1, +2\nlddw %r1, 5\nja32 +0\njsle32 %r0, %r0, -4\nja +0\nexit'));
    expect(an.subprogs).toEqual([{ start: 0, end: 8, stackDepth: 0, callees: [] }]);
    expect(Array.from(an.isSecondSlot)).toEqual([0, 0, 0, 1, 0, 0, 0, 0]);
    expect(an.isTarget[4]).toBe(1);
  });

  it('bpf-to-bpf calls: subprograms, callees and stack depths rounded up to 16', () => {
    const an = validate(
      code(`
        stdw [%r10-8], 0
        call local f
        call local g
        exit
      f:
        stw [%r10-36], 0
        call local g
        exit
      g:
        mov %r1, %r10
        add %r1, -96
        stb [%r1+0], 1
        mov %r0, 0
        exit`),
    );
    expect(an.subprogs).toEqual([
      { start: 0, end: 4, stackDepth: 16, callees: [4, 7] },
      { start: 4, end: 7, stackDepth: 48, callees: [7] },
      { start: 7, end: 12, stackDepth: 96, callees: [] },
    ]);
    expect(Array.from(an.subprogOf)).toEqual([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]);
  });

  it('eight frames, and a combined stack of exactly 512 bytes', () => {
    const chain = ['mov %r0, 0', 'call local f1', 'exit', ...[1, 2, 3, 4, 5, 6].flatMap((i) => [`f${i}:`, `call local f${i + 1}`, 'exit']), 'f7:', 'mov %r0, 1', 'exit'].join('\n');
    expect(validate(code(chain)).subprogs).toHaveLength(8);
    const stack = 'mov %r0, 0\nstdw [%r10-496], 0\ncall local f\nexit\nf:\nstdw [%r10-8], 0\nexit';
    expect(validate(code(stack)).subprogs.map((s) => s.stackDepth)).toEqual([496, 16]);
  });

  it('a callback reference (lddw of BPF_PSEUDO_FUNC) to another function', () => {
    const code = assemble('lddw %r2, 0\nmov %r1, 1\nmov %r3, 0\nmov %r4, 0\ncall 181\nexit\ncb:\nmov %r0, 0\nexit');
    code.src[0] = 4; // BPF_PSEUDO_FUNC: imm is the callback's pc relative to the next slot
    code.imm[0] = 7 - 1;
    const an = validate(code, { checkHelper: () => undefined });
    expect(an.subprogs.map((s) => [s.start, s.end])).toEqual([
      [0, 7],
      [7, 9],
    ]);
    expect(an.isTarget[7]).toBe(1);
  });

  it('shifts by 63 and 31, and division by a register that may be 0', () => {
    expect(() => validate(code('mov %r0, 1\nlsh %r0, 63\narsh32 %r0, 31\nmov %r1, 0\ndiv %r0, %r1\nmod32 %r0, %r1\nexit'))).not.toThrow();
  });
});

// ---- the kernel as the oracle ----

const kernel = kernelAvailable();
if (!kernel.ok) console.log(`skipping the kernel's verdicts on the validation cases: ${kernel.reason}`);

describe.skipIf(!kernel.ok)('the kernel rejects the same programs', () => {
  let fs: Bpffs;
  let scratch: string;
  beforeAll(() => {
    fs = Bpffs.open();
    scratch = mkdtempSync(join(tmpdir(), 'rewind-validate-'));
  });
  afterAll(() => {
    fs?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  let n = 0;
  const inKernel = (src: string): { retval: number } | { rejected: string } => {
    const slug = `p${n++}`;
    const obj = join(scratch, `${slug}.o`);
    writeFileSync(obj, writeBpfObject(code(src)));
    try {
      return { retval: runProgram(loadObject(obj, 'xdp', fs.subdir(slug)).pin, new Uint8Array(64)).retval };
    } catch (e) {
      if (e instanceof KernelError) return { rejected: e.message };
      throw e;
    }
  };

  it.each(CASES.filter((c) => c.kernel).map((c) => [c.name, c] as const))('%s', (_, c) => {
    const k = inKernel(c.src);
    expect(k).toHaveProperty('rejected');
    expect((k as { rejected: string }).rejected).toMatch(c.kernel!);
  });

  it('and accepts eight frames and a combined stack of 512 bytes', () => {
    const chain = ['mov %r0, 0', 'call local f1', 'exit', ...[1, 2, 3, 4, 5, 6].flatMap((i) => [`f${i}:`, `call local f${i + 1}`, 'exit']), 'f7:', 'mov %r0, 1', 'exit'].join('\n');
    expect(inKernel(chain)).toEqual({ retval: 1 });
    expect(inKernel('mov %r0, 0\nstdw [%r10-496], 0\ncall local f\nexit\nf:\nstdw [%r10-8], 0\nmov %r0, 7\nexit')).toEqual({ retval: 7 });
  });
});
