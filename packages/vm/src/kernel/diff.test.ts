// Differential tests against the Linux kernel: the same bytecode run by the kernel (loaded as
// XDP with bpftool, test-run once on a 64-byte packet) and by Rewind, comparing the 32-bit return
// value. Programs only use their own stack and constants. Each folds what it computed into r0
// (FNV-style mixing into r9), and a common epilogue folds r0's two halves into 32 bits:
// w0 ^= (r0 >> 32) * 0x9e3779b1, which changes whenever either half does.
//
// Hand-written programs are LLVM BPF assembly, assembled by clang; Rewind runs the bytes read
// from the object (entry section, then .text with its call relocations applied, as libbpf lays
// them out). Random programs are generated as bytecode and written with writeBpfObject.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatInsn } from '../asm/disassemble.js';
import {
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_DIV,
  BPF_END,
  BPF_EXIT,
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
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_SUB,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_X,
  BPF_XOR,
  decode,
  fromInsns,
  LDDW,
  type Bytecode,
  type Insn,
} from '../isa.js';
import { Machine } from '../engine/machine.js';
import { runOnMemory, RAW_ENTRY_REGS } from '../engine/raw.js';
import { LoadedProgram, programFromBytecode } from '../engine/vm.js';
import { Bpffs } from './bpffs.js';
import { kernelAvailable, loadObject, runProgram } from './bpftool.js';
import { assembleLlvm, findClang } from './clang.js';
import { writeBpfObject } from './object.js';

// ---- reading an object's program: the entry section, then .text, calls relocated ----

interface Section {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
  info: number;
}

/** The bytecode libbpf would load for the object's first program section (`section`). */
function programFromObject(bytes: Uint8Array, section: string): Bytecode {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(dv.getBigUint64(40, true));
  const shnum = dv.getUint16(60, true);
  const shstrndx = dv.getUint16(62, true);
  const secs: Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * 64;
    secs.push({ name: '', type: dv.getUint32(h + 4, true), offset: Number(dv.getBigUint64(h + 24, true)), size: Number(dv.getBigUint64(h + 32, true)), link: dv.getUint32(h + 40, true), info: dv.getUint32(h + 44, true) });
    (secs[i] as Section & { nameOff: number }).nameOff = dv.getUint32(h, true);
  }
  const cstr = (at: number) => {
    let end = at;
    while (bytes[end] !== 0) end++;
    return new TextDecoder().decode(bytes.subarray(at, end));
  };
  for (const s of secs) s.name = cstr(secs[shstrndx]!.offset + (s as Section & { nameOff: number }).nameOff);
  const main = secs.findIndex((s) => s.name === section);
  const text = secs.findIndex((s) => s.name === '.text' && s.size > 0);
  if (main < 0) throw new Error(`no section ${section}`);
  const mainLen = secs[main]!.size / 8;
  const code = new Uint8Array(secs[main]!.size + (text >= 0 ? secs[text]!.size : 0));
  code.set(bytes.subarray(secs[main]!.offset, secs[main]!.offset + secs[main]!.size));
  if (text >= 0) code.set(bytes.subarray(secs[text]!.offset, secs[text]!.offset + secs[text]!.size), secs[main]!.size);
  const cdv = new DataView(code.buffer);
  // R_BPF_64_32 on a call: the callee is at symbol value / 8 + imm + 1 in .text.
  for (const rel of secs.filter((s) => s.type === 9 && (s.info === main || s.info === text))) {
    const symtab = secs[rel.link]!;
    const base = rel.info === main ? 0 : mainLen;
    for (let at = rel.offset; at < rel.offset + rel.size; at += 16) {
      const pc = base + Number(dv.getBigUint64(at, true)) / 8;
      const info = dv.getBigUint64(at + 8, true);
      if (Number(info & 0xffffffffn) !== 10) throw new Error(`relocation type ${info & 0xffffffffn} at pc ${pc}`);
      const value = Number(dv.getBigUint64(symtab.offset + Number(info >> 32n) * 24 + 8, true));
      const target = mainLen + value / 8 + cdv.getInt32(pc * 8 + 4, true) + 1;
      cdv.setInt32(pc * 8 + 4, target - pc - 1, true);
    }
  }
  return decode(code);
}

// ---- running in Rewind ----

function rewindRetval(code: Bytecode): number {
  const p = new LoadedProgram(programFromBytecode(code), new Machine(), { entryRegs: RAW_ENTRY_REGS });
  const r = runOnMemory(p, new Uint8Array(64), { strict: true });
  if (r.fault) throw r.fault;
  expect(r.warnings).toEqual([]);
  return Number(r.r0 & 0xffffffffn);
}

const listing = (code: Bytecode) =>
  Array.from({ length: code.length }, (_, pc) => pc)
    .filter((pc) => pc === 0 || code.op[pc - 1] !== LDDW)
    .map((pc) => `${pc}: ${formatInsn(code, pc)}`)
    .join('\n');

// ---- hand-written programs, in LLVM assembly ----

const mix = (reg: string) => `r9 ^= ${reg}\n\tr9 *= r8`;
const PROLOGUE = 'r9 = 0xcbf29ce484222325 ll\n\tr8 = 0x100000001b3 ll';
const EPILOGUE = 'r0 = r9\n\tr1 = r0\n\tr1 >>= 32\n\tw1 *= -1640531535\n\tw0 ^= w1\n\texit';

/** Every label in `.text` starts a subprogram: libbpf finds them by their function symbols and sizes. */
function subprograms(text: string): string {
  const out: string[] = [];
  let open: string | undefined;
  for (const line of text.trim().split('\n')) {
    const label = /^(\w+):$/.exec(line);
    if (label) {
      if (open) out.push(`\t.size ${open}, .-${open}`);
      open = label[1]!;
      out.push(`\t.type ${open},@function`);
    }
    out.push(line);
  }
  if (open) out.push(`\t.size ${open}, .-${open}`);
  return out.join('\n');
}

function llvmSource(body: string, text = ''): string {
  return [
    text ? `\t.text\n${subprograms(text)}` : '',
    '\t.section xdp,"ax"',
    '\t.globl prog',
    '\t.type prog,@function',
    'prog:',
    `\t${PROLOGUE}`,
    body.trim().replace(/^\s*/gm, '\t').replace(/^\t(\w+):$/gm, '$1:'),
    `\t${EPILOGUE}`,
    '\t.size prog, .-prog',
    '\t.section license,"aw"',
    '\t.globl _license',
    '_license:',
    '\t.asciz "GPL"',
    '',
  ].join('\n');
}

const each = <T>(xs: readonly T[], f: (x: T, i: number) => string) => xs.map(f).join('\n');
const SHIFTS = [0, 1, 31, 32, 33, 63, 64, 65, -1];

const LLVM_PROGRAMS: { name: string; body: string; text?: string }[] = [
  {
    name: 'add and sub wrap around at 64 and 32 bits',
    body: `
      r1 = 0x7fffffffffffffff ll
      r1 += 1
      ${mix('r1')}
      r2 = 0
      r2 -= 1
      ${mix('r2')}
      r3 = -1
      w3 += 1
      ${mix('r3')}
      w4 = 0
      w4 -= 1
      ${mix('r4')}
      r5 = 0x80000000 ll
      r5 += r5
      ${mix('r5')}`,
  },
  {
    name: 'mul keeps the low 64 bits of the product; mul32 the low 32',
    body: `
      r1 = 0x123456789abcdef1 ll
      r2 = 0xfedcba9876543211 ll
      r3 = r1
      r3 *= r2
      ${mix('r3')}
      r3 *= -3
      ${mix('r3')}
      w4 = w1
      w4 *= w2
      ${mix('r4')}
      r5 = -1
      r5 *= r5
      ${mix('r5')}`,
  },
  {
    name: 'unsigned div and mod, 64 and 32 bits, by a register that is 0',
    body: `
      r1 = -7
      r2 = 3
      r3 = r1
      r3 /= r2
      ${mix('r3')}
      r3 = r1
      r3 %= r2
      ${mix('r3')}
      r4 = 0
      r3 = r1
      r3 /= r4
      ${mix('r3')}
      r3 = r1
      r3 %= r4
      ${mix('r3')}
      r3 = r1
      w3 /= w4
      ${mix('r3')}
      r3 = r1
      w3 %= w4
      ${mix('r3')}
      r3 = 0x8000000000000000 ll
      r5 = 0x100000001 ll
      r3 /= r5
      ${mix('r3')}
      w3 = -1
      w3 /= 7
      ${mix('r3')}`,
  },
  {
    name: 'sdiv and smod: signs, MIN / -1, and by 0',
    body: `
      r1 = -7
      r2 = 2
      r3 = r1
      r3 s/= r2
      ${mix('r3')}
      r3 = r1
      r3 s%= r2
      ${mix('r3')}
      r3 = 7
      r3 s%= -2
      ${mix('r3')}
      r1 = 0x8000000000000000 ll
      r2 = -1
      r3 = r1
      r3 s/= r2
      ${mix('r3')}
      r3 = r1
      r3 s%= r2
      ${mix('r3')}
      r4 = 0
      r3 = r1
      r3 s/= r4
      ${mix('r3')}
      r3 = r1
      r3 s%= r4
      ${mix('r3')}
      w5 = -2147483648
      w3 = w5
      w3 s/= -1
      ${mix('r3')}
      w3 = w5
      w3 s%= -1
      ${mix('r3')}
      r3 = -1
      w3 s/= w4
      ${mix('r3')}
      r3 = -1
      w3 s%= w4
      ${mix('r3')}
      w3 = -9
      w3 s/= 4
      ${mix('r3')}
      w3 = -9
      w3 s%= 4
      ${mix('r3')}`,
  },
  {
    name: 'shifts by a register are masked to the width',
    body: `
      r1 = 0x8000000000000001 ll
      ${each(SHIFTS, (s) => `r2 = ${s}\n${['<<=', '>>=', 's>>='].map((op) => `r3 = r1\nr3 ${op} r2\n${mix('r3')}\nw3 = w1\nw3 ${op} w2\n${mix('r3')}`).join('\n')}`)}
      r1 = 0x80000000 ll
      ${each(SHIFTS, (s) => `r2 = ${s}\nw3 = w1\nw3 s>>= w2\n${mix('r3')}`)}`,
  },
  {
    name: 'shifts by immediates at the edges of each width',
    body: `
      r1 = 0x8000000180000001 ll
      ${each([1, 31, 32, 63], (s) => ['<<=', '>>=', 's>>='].map((op) => `r3 = r1\nr3 ${op} ${s}\n${mix('r3')}`).join('\n'))}
      ${each([1, 16, 31], (s) => ['<<=', '>>=', 's>>='].map((op) => `w3 = w1\nw3 ${op} ${s}\n${mix('r3')}`).join('\n'))}`,
  },
  {
    name: '32-bit operations zero-extend into the upper half',
    body: `
      r1 = -1
      ${each(['w3 += 0', 'w3 -= 0', 'w3 *= 1', 'w3 |= 0', 'w3 &= -1', 'w3 ^= 0', 'w3 = w3', 'w3 = -w3', 'w3 /= 1', 'w3 %= 0x7fffffff', 'w3 <<= 0', 'w3 s>>= 0'], (op) => `r3 = r1\n${op}\n${mix('r3')}`)}`,
  },
  {
    name: 'neg of 0, 1, MIN and -1 on both widths',
    body: each(['0', '1', '-1', '0x8000000000000000 ll', '0x80000000 ll'], (v) => `r3 = ${v}\nr3 = -r3\n${mix('r3')}\nr3 = ${v}\nw3 = -w3\n${mix('r3')}`),
  },
  {
    name: 'movsx from 8, 16 and 32 bits into 64 and 32',
    body: each(['0x8000ff80807f7f80 ll', '0x7f7f7fff00017fff ll', '-1', '0'], (v) => `r1 = ${v}\n${each(['r3 = (s8)r1', 'r3 = (s16)r1', 'r3 = (s32)r1', 'w3 = (s8)w1', 'w3 = (s16)w1'], (op) => `r3 = -1\n${op}\n${mix('r3')}`)}`),
  },
  {
    name: 'byte swaps: bswap, be and le of each width',
    body: each(['0x0102030405060708 ll', '0x8090a0b0c0d0e0f0 ll'], (v) => `r1 = ${v}\n${each(['bswap16', 'bswap32', 'bswap64', 'be16', 'be32', 'be64', 'le16', 'le32', 'le64'], (op) => `r3 = r1\nr3 = ${op} r3\n${mix('r3')}`)}`),
  },
  {
    name: 'ja back into a loop, gotol forward',
    body: `
      r1 = 10
      r3 = 0
    LOOP:
      r3 += r1
      r3 *= 3
      r1 += -1
      if r1 == 0 goto DONE
      goto LOOP
    DONE:
      ${mix('r3')}
      if r3 == 0 goto SKIPPED
      gotol OVER
    SKIPPED:
      r3 = 999
      ${mix('r3')}
    OVER:
      ${mix('r1')}`,
  },
  {
    name: 'a bounded loop of 1000 rounds mixing its counter',
    body: `
      r1 = 0
      r3 = 1
    LOOP:
      r3 *= 0x5bd1e995
      r3 ^= r1
      r4 = r3
      r4 >>= 13
      r3 ^= r4
      r1 += 1
      if r1 < 1000 goto LOOP
      ${mix('r3')}`,
  },
  {
    name: 'stack stores and loads of every size, sign-extending loads',
    body: `
      r1 = 0x8182838485868788 ll
      *(u64 *)(r10 - 8) = r1
      *(u32 *)(r10 - 16) = r1
      *(u16 *)(r10 - 18) = r1
      *(u8 *)(r10 - 19) = r1
      *(u8 *)(r10 - 20) = 0x7f
      *(u16 *)(r10 - 22) = -2
      *(u32 *)(r10 - 28) = -3
      *(u64 *)(r10 - 40) = -4
      *(u64 *)(r10 - 48) = 0x7fffffff
      ${each(['u64 *)(r10 - 8', 'u32 *)(r10 - 8', 'u32 *)(r10 - 4', 'u16 *)(r10 - 2', 'u8 *)(r10 - 1', 'u32 *)(r10 - 16', 'u16 *)(r10 - 18', 'u8 *)(r10 - 19', 'u8 *)(r10 - 20', 'u16 *)(r10 - 22', 'u32 *)(r10 - 28', 'u64 *)(r10 - 40', 'u64 *)(r10 - 48'], (m) => `r3 = *(${m})\n${mix('r3')}`)}
      ${each(['s8 *)(r10 - 1', 's8 *)(r10 - 20', 's16 *)(r10 - 2', 's16 *)(r10 - 22', 's32 *)(r10 - 4', 's32 *)(r10 - 28', 's32 *)(r10 - 48'], (m) => `r3 = *(${m})\n${mix('r3')}`)}`,
  },
  {
    name: 'atomics on the stack: add, or, and, xor with and without fetch, xchg, cmpxchg',
    body: `
      r1 = 0x8000000180000001 ll
      r2 = 0x00000003ffffffff ll
      ${each(['+=', '|=', '&=', '^='], (op) => `*(u64 *)(r10 - 8) = r1\nr3 = r2\nlock *(u64 *)(r10 - 8) ${op} r3\nr4 = *(u64 *)(r10 - 8)\n${mix('r4')}\n${mix('r3')}\n*(u64 *)(r10 - 8) = r1\nw3 = w2\nlock *(u32 *)(r10 - 8) ${op} w3\nr4 = *(u64 *)(r10 - 8)\n${mix('r4')}`)}
      ${each(['add', 'or', 'and', 'xor'], (op) => `*(u64 *)(r10 - 8) = r1\nr3 = r2\nr3 = atomic_fetch_${op}((u64 *)(r10 - 8), r3)\nr4 = *(u64 *)(r10 - 8)\n${mix('r3')}\n${mix('r4')}\n*(u64 *)(r10 - 8) = r1\nr3 = r2\nw3 = atomic_fetch_${op}((u32 *)(r10 - 8), w3)\nr4 = *(u64 *)(r10 - 8)\n${mix('r3')}\n${mix('r4')}`)}
      *(u64 *)(r10 - 8) = r1
      r3 = r2
      r3 = xchg_64(r10 - 8, r3)
      r4 = *(u64 *)(r10 - 8)
      ${mix('r3')}
      ${mix('r4')}
      *(u64 *)(r10 - 8) = r1
      r3 = r2
      w3 = xchg32_32(r10 - 8, w3)
      r4 = *(u64 *)(r10 - 8)
      ${mix('r3')}
      ${mix('r4')}
      ${each(['r1', 'r2'], (cmp) => `*(u64 *)(r10 - 8) = r1\nr0 = ${cmp}\nr0 = cmpxchg_64(r10 - 8, r0, r2)\nr4 = *(u64 *)(r10 - 8)\n${mix('r0')}\n${mix('r4')}\n*(u64 *)(r10 - 8) = r1\nr0 = ${cmp}\nw0 = cmpxchg32_32(r10 - 8, w0, w2)\nr4 = *(u64 *)(r10 - 8)\n${mix('r0')}\n${mix('r4')}`)}
      *(u64 *)(r10 - 8) = r1
      r0 = 0x1234567880000001 ll
      w0 = cmpxchg32_32(r10 - 8, w0, w2)
      r4 = *(u64 *)(r10 - 8)
      ${mix('r0')}
      ${mix('r4')}`,
  },
  {
    name: 'bpf-to-bpf: arguments, r0, and the caller’s r6-r9 kept',
    body: `
      r6 = 6
      r7 = 7
      r1 = 1
      r2 = 2
      r3 = 3
      r4 = 4
      r5 = 5
      call sum
      ${mix('r0')}
      ${mix('r6')}
      ${mix('r7')}
      r1 = -1
      r2 = 0x7fffffff
      r3 = 0
      r4 = 0
      r5 = 0
      call sum
      ${mix('r0')}`,
    text: `
sum:
	r6 = 100
	r7 = 200
	r8 = 300
	r9 = 400
	r0 = r1
	r2 *= 10
	r0 += r2
	r3 *= 100
	r0 += r3
	r4 *= 1000
	r0 += r4
	r5 *= 10000
	r0 += r5
	exit`,
  },
  {
    name: 'bpf-to-bpf: a stack frame per call, and writes through a pointer to the caller’s',
    body: `
      r1 = 111
      *(u64 *)(r10 - 8) = r1
      r1 = r10
      r1 += -16
      call frame
      ${mix('r0')}
      r3 = *(u64 *)(r10 - 8)
      ${mix('r3')}
      r3 = *(u64 *)(r10 - 16)
      ${mix('r3')}`,
    text: `
frame:
	r2 = 222
	*(u64 *)(r10 - 8) = r2
	r2 = 333
	*(u64 *)(r1 + 0) = r2
	r0 = *(u64 *)(r10 - 8)
	exit`,
  },
  {
    name: 'bpf-to-bpf: eight frames',
    body: `
      r1 = 1
      call f1
      ${mix('r0')}`,
    text: [1, 2, 3, 4, 5, 6, 7]
      .map((d) => `f${d}:\n\tr6 = r1\n\t*(u64 *)(r10 - 8) = r6\n\tr1 *= 3\n${d < 7 ? `\tcall f${d + 1}\n` : '\tr0 = 0\n'}\tr2 = *(u64 *)(r10 - 8)\n\tr0 *= 7\n\tr0 += r2\n\texit`)
      .join('\n'),
  },
];

// ---- jump conditions, generated ----

const COND_SYM: [number, string][] = [
  [BPF_JEQ, '=='], [BPF_JNE, '!='], [BPF_JGT, '>'], [BPF_JGE, '>='], [BPF_JLT, '<'], [BPF_JLE, '<='],
  [BPF_JSET, '&'], [BPF_JSGT, 's>'], [BPF_JSGE, 's>='], [BPF_JSLT, 's<'], [BPF_JSLE, 's<='],
];
const COND_VALUES = ['0', '1', '-1', '0x7fffffff', '0x80000000 ll', '0xffffffff ll', '0x100000000 ll', '0x7fffffffffffffff ll', '0x8000000000000000 ll', '0xffffffff7fffffff ll'];
const COND_IMMS = ['0', '1', '-1', '0x7fffffff', '-2147483648'];

/** Programs of up to 64 conditions each: bit k of r9 tells whether jump k was taken. */
function conditionPrograms(): { name: string; body: string }[] {
  const out: { name: string; body: string }[] = [];
  for (const w of ['r', 'w']) {
    for (const [, sym] of COND_SYM) {
      const cases: string[] = [];
      for (const a of COND_VALUES) {
        for (const b of COND_VALUES) cases.push(`r1 = ${a}\nr2 = ${b}\nif ${w}1 ${sym} ${w}2 goto`);
        for (const imm of COND_IMMS) cases.push(`r1 = ${a}\nif ${w}1 ${sym} ${imm} goto`);
      }
      for (let start = 0, part = 0; start < cases.length; start += 64, part++) {
        const chunk = cases.slice(start, start + 64);
        const body = chunk.map((c, k) => `${c} T${k}\ngoto N${k}\nT${k}:\nr3 = 1\nr3 <<= ${k}\nr7 |= r3\nN${k}:`).join('\n');
        out.push({ name: `if ${w}1 ${sym} …, part ${part + 1}`, body: `r7 = 0\n${body}\n${mix('r7')}` });
      }
    }
  }
  return out;
}

// ---- random programs, generated as bytecode ----

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

const insn = (op: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ op, dst, src, off, imm });
const lddw = (dst: number, v: bigint): Insn[] => {
  const u = BigInt.asUintN(64, v);
  return [insn(LDDW, dst, 0, 0, Number(BigInt.asIntN(32, u))), insn(0, 0, 0, 0, Number(BigInt.asIntN(32, u >> 32n)))];
};
const EDGE = [0n, 1n, 0x7fn, 0x80n, 0x7fffn, 0x8000n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, 0xffffffff80000000n];
const EDGE_IMM = [0, 1, -1, 31, 32, 63, 0x7fffffff, -0x80000000, 0x80, -0x80];
const ALU: [number, number][] = [
  [BPF_ADD, 0], [BPF_SUB, 0], [BPF_MUL, 0], [BPF_DIV, 0], [BPF_DIV, 1], [BPF_MOD, 0], [BPF_MOD, 1],
  [BPF_OR, 0], [BPF_AND, 0], [BPF_XOR, 0], [BPF_LSH, 0], [BPF_RSH, 0], [BPF_ARSH, 0], [BPF_MOV, 0],
];
const CONDS = COND_SYM.map(([op]) => op);

/**
 * `cases` independent random cases in one program. Each sets r0-r9 to random values, runs 40
 * random ALU64/ALU32 instructions and forward jumps, then folds r0-r9 into the accumulator kept
 * at r10-8.
 */
function randomProgram(rand: () => number, cases: number): Bytecode {
  const pick = <T>(xs: readonly T[]): T => xs[rand() % xs.length]!;
  const value = () => (rand() % 3 === 0 ? pick(EDGE) : (BigInt(rand()) << 32n) | BigInt(rand()));
  const imm = () => (rand() % 2 ? pick(EDGE_IMM) : rand() | 0);
  const out: Insn[] = [insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0), { op: 0x7b, dst: 10, src: 0, off: -8, imm: 0 }];
  for (let c = 0; c < cases; c++) {
    for (let r = 0; r < 10; r++) out.push(...lddw(r, value()));
    const body: Insn[] = [];
    while (body.length < 40) {
      const klass = rand() % 2 ? BPF_ALU64 : BPF_ALU;
      const width = klass === BPF_ALU64 ? 64 : 32;
      const dst = rand() % 10;
      const src = rand() % 10;
      const k = rand() % 9;
      if (k === 0) {
        const j = rand() % 2 ? BPF_JMP : BPF_JMP32;
        body.push(rand() % 2 ? insn(j | pick(CONDS) | BPF_X, dst, src, rand() % 4) : insn(j | pick(CONDS) | BPF_K, dst, 0, rand() % 4, imm()));
      } else if (k === 1) {
        const e = rand() % 3;
        body.push(insn(e === 0 ? BPF_ALU | BPF_END | BPF_TO_LE : e === 1 ? BPF_ALU | BPF_END | BPF_TO_BE : BPF_ALU64 | BPF_END | BPF_TO_LE, dst, 0, 0, pick([16, 32, 64])));
      } else if (k === 2) {
        body.push(insn(klass | BPF_NEG, dst));
      } else if (k === 3) {
        body.push(insn(klass | BPF_MOV | BPF_X, dst, src, pick(klass === BPF_ALU64 ? [0, 8, 16, 32] : [0, 8, 16])));
      } else {
        const [op, off] = pick(ALU);
        if (rand() % 2) body.push(insn(klass | op | BPF_X, dst, src, off));
        else {
          let i = imm();
          if ((op === BPF_DIV || op === BPF_MOD) && i === 0) i = 3;
          if (op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) i = (i >>> 0) % width;
          body.push(insn(klass | op | BPF_K, dst, 0, off, i));
        }
      }
    }
    body.forEach((b, i) => {
      if ((b.op & 7) === BPF_JMP || (b.op & 7) === BPF_JMP32) b.off = Math.min(b.off, body.length - i - 1);
    });
    out.push(...body);
    // r0 = r0 * odd + r_i for each register, then acc = (acc ^ r0) * odd.
    for (let r = 1; r < 10; r++) out.push(insn(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 0x01000193), insn(BPF_ALU64 | BPF_ADD | BPF_X, 0, r));
    out.push({ op: 0x79, dst: 1, src: 10, off: -8, imm: 0 }, insn(BPF_ALU64 | BPF_XOR | BPF_X, 1, 0), insn(BPF_ALU64 | BPF_MUL | BPF_K, 1, 0, 0, 0x5bd1e995), { op: 0x7b, dst: 10, src: 1, off: -8, imm: 0 });
  }
  out.push({ op: 0x79, dst: 0, src: 10, off: -8, imm: 0 });
  out.push(insn(BPF_ALU64 | BPF_MOV | BPF_X, 1, 0), insn(BPF_ALU64 | BPF_RSH | BPF_K, 1, 0, 0, 32), insn(BPF_ALU | BPF_MUL | BPF_K, 1, 0, 0, -1640531535), insn(BPF_ALU | BPF_XOR | BPF_X, 0, 1));
  out.push(insn(BPF_JMP | BPF_EXIT));
  return fromInsns(out);
}

// ---- the tests ----

const kernel = kernelAvailable();
const clang = findClang();
if (!kernel.ok) console.log(`skipping the differential tests against the kernel: ${kernel.reason}`);
else if (!clang) console.log('skipping the LLVM-assembly differential tests: clang is not installed');

describe.skipIf(!kernel.ok)('Rewind and the kernel return the same value', () => {
  let fs: Bpffs;
  let scratch: string;
  let n = 0;
  beforeAll(() => {
    fs = Bpffs.open();
    scratch = mkdtempSync(join(tmpdir(), 'rewind-diff-'));
  });
  afterAll(() => {
    fs?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const kernelRetval = (obj: string) => runProgram(loadObject(obj, 'xdp', fs.subdir(`p${n++}`)).pin, new Uint8Array(64)).retval;

  describe.skipIf(!clang)('hand-written programs, assembled by clang', () => {
    const compare = (body: string, text?: string) => {
      const obj = join(scratch, `llvm${n}.o`);
      assembleLlvm(llvmSource(body, text), obj);
      const code = programFromObject(readFileSync(obj), 'xdp');
      const k = kernelRetval(obj);
      const rw = rewindRetval(code);
      if (rw !== k) expect.fail(`Rewind returned 0x${rw.toString(16)}, the kernel 0x${k.toString(16)}:\n${listing(code)}`);
    };

    it.each(LLVM_PROGRAMS.map((p) => [p.name, p] as const))('%s', (_, p) => compare(p.body, p.text));
    it.each(conditionPrograms().map((p) => [p.name, p] as const))('%s', (_, p) => compare(p.body));

    it('reads the object as libbpf lays it out: the callee after the entry function', () => {
      const obj = join(scratch, 'layout.o');
      assembleLlvm(llvmSource('r1 = 1\ncall f\nr9 = r0', 'f:\n\tr0 = r1\n\texit'), obj);
      const code = programFromObject(readFileSync(obj), 'xdp');
      const call = Array.from(code.op).findIndex((op) => op === 0x85);
      expect(code.src[call]).toBe(1);
      // The callee is the two instructions after the entry function's last (exit).
      expect(call + 1 + code.imm[call]!).toBe(code.length - 2);
      expect(formatInsn(code, code.length - 2)).toBe('r0 = r1');
    });
  });

  describe('random programs, written as objects by writeBpfObject', () => {
    it.each(Array.from({ length: 24 }, (_, i) => (0xd1ff0000 + i).toString(16)))('seed 0x%s: 10 cases of 40 random instructions', (hex) => {
      const code = randomProgram(prng(parseInt(hex, 16)), 10);
      const obj = join(scratch, `random-${hex}.o`);
      writeFileSync(obj, writeBpfObject(code));
      const k = kernelRetval(obj);
      const rw = rewindRetval(code);
      if (rw !== k) expect.fail(`seed 0x${hex}: Rewind returned 0x${rw.toString(16)}, the kernel 0x${k.toString(16)}:\n${listing(code)}`);
    });
  });
});
