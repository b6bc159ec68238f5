import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encode, fromInsns, type Bytecode, type Insn } from '../isa.js';
import { assemble } from './assemble.js';
import { parseDataFile } from './datafile.js';
import { disassembleAsm, formatAsm, formatInsn, insnStarts, type FormatOptions } from './disassemble.js';

// ---------------------------------------------------------------------------------------------
// Instructions to disassemble: one of each form, and random well-formed ones.

/** mulberry32: a small seeded generator, so failures reproduce. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  // Immediates: often small, sometimes the extremes, sometimes anything.
  const imm32 = () => pick([() => int(-16, 16), () => pick([-0x80000000, 0x7fffffff, -1, 0]), () => int(-0x80000000, 0x7fffffff)])();
  const off16 = () => pick([() => int(-16, 16), () => pick([-0x8000, 0x7fff]), () => int(-0x8000, 0x7fff)])();
  return { next, int, pick, imm32, off16 };
}

const I = (op: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ op, dst, src, off, imm });
const ALU_OPS = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0];
const JMP_OPS = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];
const ATOMIC_IMMS = [0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1];
const SIZES = [0x00, 0x08, 0x10, 0x18];

/** One instruction of every form, each builder given the pc it lands on (jumps stay inside the program). */
type Form = (r: ReturnType<typeof rng>, pc: number, n: number) => Insn[];
const reg = (r: ReturnType<typeof rng>) => r.int(0, 10);
const jumpOff = (r: ReturnType<typeof rng>, pc: number, n: number) => r.int(0, n - 1) - pc - 1;

const FORMS: Form[] = [
  ...[0x04, 0x07].flatMap((cls): Form[] => [
    ...ALU_OPS.flatMap((o): Form[] => [(r) => [I(cls | o, reg(r), 0, 0, r.imm32())], (r) => [I(cls | o | 0x08, reg(r), reg(r))]]),
    (r) => [I(cls | 0x80, reg(r))], // neg
    (r) => [I(cls | 0x30, reg(r), 0, 1, r.imm32())], // sdiv
    (r) => [I(cls | 0x38, reg(r), reg(r), 1)],
    (r) => [I(cls | 0x90, reg(r), 0, 1, r.imm32())], // smod
    (r) => [I(cls | 0x98, reg(r), reg(r), 1)],
    (r) => [I(cls | 0xb8, reg(r), reg(r), r.pick(cls === 0x07 ? [8, 16, 32] : [8, 16]))], // movsx
  ]),
  (r) => [I(r.pick([0xd4, 0xdc, 0xd7]), reg(r), 0, 0, r.pick([16, 32, 64]))], // le, be, bswap
  (r) => {
    const lo = r.imm32();
    return [I(0x18, reg(r), 0, 0, lo), I(0, 0, 0, 0, r.pick([0, -1, r.imm32()]))]; // lddw
  },
  (r) => [I(0x18, reg(r), r.int(1, 6), 0, r.int(0, 40)), I(0, 0, 0, 0, r.int(0, 64))], // lddw with pseudo sources
  (r) => [I(0x20 | r.pick([0x00, 0x08, 0x10]), 0, 0, 0, r.imm32())], // ld_abs
  (r) => [I(0x40 | r.pick([0x00, 0x08, 0x10]), 0, reg(r), 0, r.imm32())], // ld_ind
  (r) => [I(0x61 | r.pick(SIZES), reg(r), reg(r), r.off16())], // ldx
  (r) => [I(0x81 | r.pick([0x00, 0x08, 0x10]), reg(r), reg(r), r.off16())], // ldxs
  (r) => [I(0x62 | r.pick(SIZES), reg(r), 0, r.off16(), r.imm32())], // st
  (r) => [I(0x63 | r.pick(SIZES), reg(r), reg(r), r.off16())], // stx
  (r) => [I(0xdb, reg(r), reg(r), r.off16(), r.pick(ATOMIC_IMMS))],
  (r) => [I(0xc3, reg(r), reg(r), r.off16(), r.pick(ATOMIC_IMMS))],
  ...[0x05, 0x06].flatMap((cls): Form[] =>
    JMP_OPS.flatMap((o): Form[] => [
      (r, pc, n) => [I(cls | o, reg(r), 0, jumpOff(r, pc, n), r.imm32())],
      (r, pc, n) => [I(cls | o | 0x08, reg(r), reg(r), jumpOff(r, pc, n))],
    ]),
  ),
  (r, pc, n) => [I(0x05, 0, 0, jumpOff(r, pc, n))], // ja
  (r, pc, n) => [I(0x06, 0, 0, 0, jumpOff(r, pc, n))], // gotol
  (r, pc, n) => [I(0xe5, 0, 0, jumpOff(r, pc, n))], // may_goto
  (r) => [I(0x85, 0, 0, 0, r.int(0, 211))], // helper call
  (r, pc, n) => [I(0x85, 0, 1, 0, jumpOff(r, pc, n))], // bpf-to-bpf call
  (r) => [I(0x85, 0, 2, 0, r.int(0, 100000))], // kfunc call
  (r) => [I(0x8d, reg(r))], // callx
  () => [I(0x95)], // exit
];

/** A program of every form in order, then `extra` random ones, with jump targets inside it. */
function program(seed: number, extra: number): Bytecode {
  const r = rng(seed);
  const picks = [...FORMS, ...Array.from({ length: extra }, () => r.pick(FORMS))];
  // Lay out once to know the length (lddw takes two slots), then build with targets in range.
  const n = picks.reduce((sum, f) => sum + f(rng(0), 0, 1).length, 0);
  const insns: Insn[] = [];
  for (const f of picks) insns.push(...f(r, insns.length, n));
  return fromInsns(insns);
}

// ---------------------------------------------------------------------------------------------
// llvm-objdump as the reference for formatInsn.

const CLANG = '/usr/bin/clang-19';
const OBJDUMP = '/usr/bin/llvm-objdump-19';
const haveLlvm = existsSync(CLANG) && existsSync(OBJDUMP);
if (!haveLlvm) console.log(`skipping the llvm-objdump comparison: ${CLANG} or ${OBJDUMP} is missing`);

/** llvm-objdump -d of the bytecode placed in .text of an object with no symbols: pc → text. */
function llvmObjdump(code: Bytecode, mcpu?: string): Map<number, string> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-objdump-'));
  try {
    const bytes = encode(code);
    const lines = ['\t.text'];
    for (let i = 0; i < bytes.length; i += 8) lines.push(`\t.byte ${[...bytes.subarray(i, i + 8)].join(',')}`);
    writeFileSync(join(dir, 'p.s'), lines.join('\n') + '\n');
    execFileSync(CLANG, ['-target', 'bpf', '-c', join(dir, 'p.s'), '-o', join(dir, 'p.o')]);
    const out = execFileSync(OBJDUMP, ['-d', '-z', ...(mcpu ? [`--mcpu=${mcpu}`] : []), join(dir, 'p.o')], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    const byPc = new Map<number, string>();
    for (const line of out.split('\n')) {
      const m = /^\s*(\d+):\t(?:[0-9a-f]{2} )*[0-9a-f]{2}\t(.*)$/.exec(line);
      if (m) byPc.set(Number(m[1]), m[2]!);
    }
    return byPc;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How llvm-objdump names a jump target in an object without symbols. */
const textLabel = (pc: number) => (pc === 0 ? '.text' : `.text+0x${(pc * 8).toString(16)}`);

/** 32-bit atomics other than a plain add, which llvm-objdump decodes only with --mcpu=v3 and up. */
const isAlu32Atomic = (code: Bytecode, pc: number) => code.op[pc] === 0xc3 && code.imm[pc] !== 0;

describe.skipIf(!haveLlvm)('formatInsn matches llvm-objdump 19', () => {
  const code = program(1, 3000);
  const starts = insnStarts(code);
  const compare = (mcpu: string | undefined, opts: FormatOptions, skip: (pc: number) => boolean = () => false) => {
    const llvm = llvmObjdump(code, mcpu);
    expect(llvm.size).toBe(starts.length);
    const mismatches: string[] = [];
    for (const pc of starts) {
      if (skip(pc)) continue;
      const ours = formatInsn(code, pc, { ...opts, jumpLabel: textLabel });
      if (ours !== llvm.get(pc)) mismatches.push(`pc ${pc} ${formatAsm(code, pc)}: llvm '${llvm.get(pc)}', ours '${ours}'`);
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
  };

  it('llvm-objdump -d, line by line', () => compare(undefined, {}, (pc) => isAlu32Atomic(code, pc)));
  it('llvm-objdump -d --mcpu=v4, line by line, with alu32', () => compare('v4', { alu32: true }));

  it('by default gives 32-bit atomics the v4 spelling, where plain llvm-objdump -d misreads them', () => {
    const v4 = llvmObjdump(code, 'v4');
    const plain = llvmObjdump(code);
    const pcs = starts.filter((pc) => isAlu32Atomic(code, pc));
    expect(pcs.length).toBeGreaterThan(10);
    for (const pc of pcs) {
      expect(plain.get(pc)).toMatch(/^<unknown>$|^lock \*\(u32 \*\)/);
      expect(formatInsn(code, pc)).toBe(v4.get(pc));
    }
  });

  it('prints <unknown> where llvm-objdump does', () => {
    const bad = fromInsns([
      I(0x8f, 1), // neg with a register source
      I(0x07, 1, 0, 3, 5), // add with an offset
      I(0xbf, 0, 1, 7), // movsx from 7 bits
      I(0xbc, 0, 1, 32), // movsx32 from 32 bits
      I(0xd4, 0, 0, 0, 8), // le8
      I(0xdf, 1), // ALU64 | END | X
      I(0x38, 0, 0, 0, 4), // ld_abs dw
      I(0x99, 1, 2), // ldxsdw
      I(0xdb, 10, 1, -8, 0xe0), // xchg without fetch
      I(0x0d, 0, 1, 1), // ja with a register source
      I(0xf5, 1, 0, 1, 1), // jmp op 0xf0
      I(0xe6, 0, 0, 1), // may_goto in the JMP32 class
      I(0x86, 0, 0, 0, 1), // call in the JMP32 class
      I(0xff),
    ]);
    const llvm = llvmObjdump(bad);
    for (let pc = 0; pc < bad.length; pc++) {
      expect(llvm.get(pc), `pc ${pc}`).toBe('<unknown>');
      expect(formatInsn(bad, pc), `pc ${pc}`).toBe('<unknown>');
    }
  });
});

describe('formatInsn', () => {
  // Expected text from llvm-objdump 19 (see the comparison above), written out so it also runs without LLVM.
  const cases: [string, string][] = [
    ['ldxw %r2, [%r1+0x3e]', 'r2 = *(u32 *)(r1 + 0x3e)'],
    ['stxdw [%r10-8], %r1', '*(u64 *)(r10 - 0x8) = r1'],
    ['jne %r1, 0, -4', 'if r1 != 0x0 goto -0x4'],
    ['lddw %r1, 0x1122334455667788', 'r1 = 0x1122334455667788 ll'],
    ['lock add [%r10-8], %r1', 'lock *(u64 *)(r10 - 0x8) += r1'],
    ['lock fetch add [%r10-8], %r0', 'r0 = atomic_fetch_add((u64 *)(r10 - 0x8), r0)'],
    ['lock cmpxchg [%r10-8], %r1', 'r0 = cmpxchg_64(r10 - 0x8, r0, r1)'],
    ['movsx864 %r0, %r1', 'r0 = (s8)r1'],
    ['sdiv %r0, %r1', 'r0 s/= r1'],
    ['be16 %r0', 'r0 = be16 r0'],
    ['ja32 -2', 'gotol -0x2'],
    ['jgt32 %r1, 5, +3', 'if w1 > 0x5 goto +0x3'],
    ['call 1', 'call 0x1'],
    ['call local -1', 'call -0x1'],
    ['add32 %r0, 1', 'w0 += 0x1'],
    ['ldabsw 0x3e', 'r0 = *(u32 *)skb[0x3e]'],
    ['may_goto +2', 'may_goto +0x2'],
    ['exit', 'exit'],
  ];
  for (const [asm, text] of cases) it(`${asm} → ${text}`, () => expect(formatInsn(assemble(asm), 0)).toBe(text));

  it('annotates targets when asked', () => {
    const code = assemble('call local f\nja f\nlddw %r1, 0\nexit\nf: call 1\nexit');
    code.src[2] = 5; // BPF_PSEUDO_MAP_IDX
    code.imm[2] = 1;
    const opts: FormatOptions = {
      funcName: (pc) => (pc === 5 ? 'f' : undefined),
      jumpLabel: (pc) => `pc ${pc}`,
      mapName: (i) => ['a', 'counters'][i],
      helperName: (id) => (id === 1 ? 'bpf_map_lookup_elem' : undefined),
    };
    expect(formatInsn(code, 0, opts)).toBe('call 0x4 <f>');
    expect(formatInsn(code, 1, opts)).toBe('goto +0x3 <pc 5>');
    expect(formatInsn(code, 2, opts)).toBe('ld_pseudo\tr1, 0x5, 0x1 <counters>');
    expect(formatInsn(code, 5, opts)).toBe('call 0x1 <bpf_map_lookup_elem>');
    expect(formatInsn(code, 0)).toBe('call 0x4');
  });
});

// ---------------------------------------------------------------------------------------------
// formatAsm: the `.data` syntax, read back by assemble.

const SHARED = fileURLToPath(new URL('../../../../../shared/', import.meta.url));
const haveShared = existsSync(join(SHARED, 'bpf-tests/ubpf'));
if (!haveShared) console.log(`skipping the .data round trip: ${SHARED}bpf-tests/ubpf is missing`);

function dataFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? dataFiles(join(dir, e.name)) : e.name.endsWith('.data') ? [join(dir, e.name)] : [],
  );
}

const roundTrip = (code: Bytecode) => [...encode(assemble(disassembleAsm(code)))];

describe('formatAsm', () => {
  it.skipIf(!haveShared)('round-trips every program of the uBPF and bench .data files', () => {
    let programs = 0;
    for (const path of [...dataFiles(join(SHARED, 'bpf-tests/ubpf')), ...dataFiles(join(SHARED, 'bench'))]) {
      const t = parseDataFile(readFileSync(path, 'utf8'), {
        file: relative(SHARED, path),
        readFile: (rel) => readFileSync(join(dirname(path), rel), 'utf8'),
      });
      if (!t.code) continue;
      programs++;
      expect(roundTrip(t.code), t.file).toEqual([...encode(t.code)]);
    }
    expect(programs).toBeGreaterThan(80);
  });

  it('round-trips every instruction form without falling back to .raw, except pseudo lddw', () => {
    const code = program(2, 5000);
    expect(roundTrip(code)).toEqual([...encode(code)]);
    for (const pc of insnStarts(code)) {
      const text = formatAsm(code, pc);
      if (code.op[pc] === 0x18 && code.src[pc] !== 0) expect(text).toMatch(/^\.raw /);
      else expect(text).not.toMatch(/\.raw/);
    }
  });

  it('round-trips random slots, whatever they hold', () => {
    const r = rng(3);
    const insns = Array.from({ length: 20000 }, () =>
      // Half random opcodes with random fields, half valid opcodes with one stray field.
      r.next() < 0.5
        ? I(r.int(0, 255), r.int(0, 15), r.int(0, 15), r.off16(), r.imm32())
        : { ...r.pick(FORMS)(r, 0, 1)[0]!, [r.pick(['dst', 'src', 'off', 'imm'])]: r.int(0, 3) },
    );
    const code = fromInsns(insns);
    expect(roundTrip(code)).toEqual([...encode(code)]);
  });

  it('writes the .data syntax', () => {
    const code = assemble(
      'mov %r0, 1\nadd %r1, -20\nldxw %r0, [%r1+4]\nstb [%r10-4], 0x21\njne %r1, 0, -4\nlddw %r0, 0x1122334455667788\n' +
        'lock fetch add32 [%r10-4], %r1\nmovsx1664 %r0, %r1\ncall local -1\ncall %r2\nja32 +7\nbe16 %r0\nldindh %r3, 12',
    );
    expect(disassembleAsm(code)).toBe(
      'mov %r0, 1\nadd %r1, -0x14\nldxw %r0, [%r1+4]\nstb [%r10-4], 0x21\njne %r1, 0, -4\nlddw %r0, 0x1122334455667788\n' +
        'lock fetch add32 [%r10-4], %r1\nmovsx1664 %r0, %r1\ncall local -1\ncall %r2\nja32 +7\nbe16 %r0\nldindh %r3, 0xc\n',
    );
  });
});
