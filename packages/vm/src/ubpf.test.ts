// uBPF's own test files (tests/*.data, errors/, tcp-port-80/, tcp-sack/) run through the
// `.data` parser and the VM. A `-- result` is compared with r0; an `-- error` passes when Rewind
// rejects the program, at load or with a fault, as the kernel would. Where uBPF and the kernel
// disagree, Rewind follows the kernel: see KERNEL_DEVIATIONS and POINTER_RULES. When the kernel
// is available, each file is also loaded into it to check those verdicts.
//
// helpers/, extensions/ and elf/ test uBPF's own helper ids, API extensions and ELF loader, and
// are not run.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataFile, type DataTest } from './asm/datafile.js';
import { assemble } from './asm/assemble.js';
import { LoadError } from './errors.js';
import { encode, LDDW } from './isa.js';
import { Machine, type HelperFn } from './engine/machine.js';
import { LoadedProgram, programFromBytecode, type HelperTable } from './engine/vm.js';
import { runOnMemory, RAW_ENTRY_REGS } from './engine/raw.js';
import { Bpffs } from './kernel/bpffs.js';
import { kernelAvailable, KernelError, loadObject, runProgram } from './kernel/bpftool.js';
import { writeBpfObject } from './kernel/object.js';

const SHARED = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const UBPF = join(SHARED, 'bpf-tests/ubpf');
const haveShared = existsSync(UBPF);
if (!haveShared) console.log(`skipping uBPF's .data tests: ${UBPF} is missing`);

/** Folders of uBPF-only tests: its helper ids (call-memfrob), API extensions (unwind), ELF generator. */
const SKIPPED_DIRS = ['helpers', 'extensions', 'elf'];
const RUN_DIRS = ['', 'errors', 'tcp-port-80', 'tcp-sack'];
/** A test of writes to r10 that uBPF's tree names `.dst` instead of `.data`. */
const MISNAMED = ['err-write-r10.dst'];

/**
 * Files where uBPF's verdict is not the kernel's. Rewind follows the kernel. `kernel` is what
 * Linux 6.18 does with the program loaded as XDP (the verifier's message, or 'runs'); the tests
 * under "the kernel agrees" check it when the kernel is available.
 */
const KERNEL_DEVIATIONS: Record<string, { rewind: 'runs' | 'rejects'; kernel: string; why: string }> = {
  'errors/err-too-many-instructions.data': {
    rewind: 'runs',
    kernel: 'R0 !read_ok',
    why: "uBPF caps programs at 65,536 instructions; the kernel allows 1,000,000 (BPF_COMPLEXITY_LIMIT_INSNS) to a privileged loader. It rejects this program only because r0 is never written, which Rewind reports as a warning, or a fault in strict mode",
  },
  'reload.data': {
    rewind: 'runs',
    kernel: 'runs',
    why: "refusing a second ubpf_load_code() into the same VM is a rule of uBPF's C API; Rewind, like the kernel, loads a program any number of times",
  },
  'div-by-zero-imm.data': { rewind: 'rejects', kernel: 'div by zero', why: 'the verifier rejects division by a constant 0' },
  'mod-by-zero-imm.data': { rewind: 'rejects', kernel: 'div by zero', why: 'the verifier rejects modulo by a constant 0' },
  'div64-by-zero-imm.data': { rewind: 'rejects', kernel: 'div by zero', why: 'the verifier rejects division by a constant 0' },
  'mod64-by-zero-imm.data': { rewind: 'rejects', kernel: 'div by zero', why: 'the verifier rejects modulo by a constant 0' },
  'early-exit.data': { rewind: 'rejects', kernel: 'unreachable insn 2', why: "check_cfg rejects code that no path reaches (the second `mov %r0, 4; exit`)" },
};

/**
 * Programs uBPF runs and Rewind runs too, which the kernel's verifier rejects by its rules on
 * pointer types: Rewind checks every access at run time instead of typing registers at load.
 * The value is the verifier's message (Linux 6.18).
 */
const POINTER_RULES: Record<string, string> = {
  'stack3.data': 'R2 subtraction from stack pointer prohibited',
  // The program does arithmetic on r1 as a number; in the kernel r1 is the context pointer.
  'mul-loop.data': 'R1 pointer arithmetic with <<= operator prohibited',
};

/**
 * uBPF's error messages name a PC; Rewind's rejection names the same slot except in these files,
 * for the reason given.
 */
const PC_DIFFERS: Record<string, string> = {
  'errors/err-incomplete-lddw.data': 'uBPF blames the lddw for a missing second half; Rewind, like uBPF for the other lddw cases, names the bad second slot',
  'errors/err-incomplete-lddw2.data': 'as err-incomplete-lddw.data',
  // 0x06 is BPF_JMP32 | BPF_JA with imm 0: gotol +0 (cpuv4), which uBPF does not know. The
  // program is still rejected, by the kernel and by Rewind's strict run, because exit reads an r0
  // never written (the verifier's "R0 !read_ok").
  'errors/err-unknown-opcode.data': 'opcode 0x06 is gotol; the rejection is for r0, at the exit (pc 1)',
};

// ---- uBPF's test helpers (test_helpers.h), for the two top-level files that call them ----

/** gather_bytes(a, b, c, d, e): the low bytes of the five arguments, a on top. */
const gatherBytes: HelperFn = (m) => {
  let v = 0n;
  for (let i = 1; i <= 5; i++) v = (v << 8n) | (m.arg(i) & 0xffn);
  m.ret(v);
};

/** memfrob(ptr, n): XOR each byte with 42, in place. */
const memfrob: HelperFn = (m) => {
  const n = m.argLo(2);
  const bytes = m.readBytes(m.pc, m.argLo(1), m.argHi(1), n, 'memfrob');
  m.writeBytes(m.pc, m.argLo(1), m.argHi(1), bytes.map((b) => b ^ 42), 'memfrob');
  m.ret(0);
};

/** strcmp_ext(a, b): C strcmp of two NUL-terminated strings. */
const strcmpExt: HelperFn = (m) => {
  const cstr = (i: number): number[] => {
    const out: number[] = [];
    for (let k = 0; ; k++) {
      const b = m.readBytes(m.pc, m.argLo(i) + k, m.argHi(i), 1, 'strcmp_ext')[0]!;
      if (b === 0) return out;
      out.push(b);
    }
  };
  const a = cstr(1);
  const b = cstr(2);
  let r = 0;
  for (let k = 0; r === 0 && k <= Math.max(a.length, b.length); k++) r = (a[k] ?? 0) - (b[k] ?? 0);
  m.ret(BigInt(r));
};

const HELPERS: Record<string, HelperTable> = {
  'string-stack.data': new Map([[4, strcmpExt]]),
  'stack2.data': new Map([
    [0, gatherBytes],
    [1, memfrob],
  ]),
};

function dataFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.data') || (dir === UBPF && MISNAMED.includes(f)))
    .map((f) => join(dir, f))
    .sort();
}

function load(path: string): DataTest {
  return parseDataFile(readFileSync(path, 'utf8'), {
    file: relative(UBPF, path),
    readFile: (rel) => readFileSync(join(dirname(path), rel), 'utf8'),
  });
}

type Outcome = { kind: 'load-error'; error: LoadError } | { kind: 'run'; result: ReturnType<typeof runOnMemory> };

function runTest(t: DataTest, name: string, machine = new Machine(), strict = true): Outcome {
  let p: LoadedProgram;
  try {
    p = new LoadedProgram(programFromBytecode(t.code!, name), machine, { entryRegs: RAW_ENTRY_REGS, helpers: HELPERS[name] });
  } catch (e) {
    if (e instanceof LoadError) return { kind: 'load-error', error: e };
    throw e;
  }
  // Strict: a read of a register or stack byte never written is a fault, as the verifier rejects it.
  return { kind: 'run', result: runOnMemory(p, t.mem ?? new Uint8Array(0), { maxSteps: 10_000_000, strict }) };
}

/** The PC uBPF's message names (`... at PC 5`), if any. */
function ubpfPc(t: DataTest): number | undefined {
  const m = /at PC (\d+)/.exec(t.error ?? t.errorPattern ?? '');
  return m ? Number(m[1]) : undefined;
}

const kernel = kernelAvailable();
if (haveShared && !kernel.ok) console.log(`skipping the kernel's verdicts on uBPF's tests: ${kernel.reason}`);

describe.skipIf(!haveShared)("uBPF's .data tests", () => {
  const files = RUN_DIRS.flatMap((d) => dataFiles(join(UBPF, d)));
  const names = files.map((f) => relative(UBPF, f));

  it('finds every file, and skips only the uBPF-specific folders', () => {
    expect(files.length).toBeGreaterThanOrEqual(70);
    for (const d of RUN_DIRS.slice(1)) expect(names.some((n) => n.startsWith(`${d}/`))).toBe(true);
    for (const d of SKIPPED_DIRS) expect(dataFiles(join(UBPF, d)).length).toBeGreaterThan(0);
    for (const name of [...Object.keys(KERNEL_DEVIATIONS), ...Object.keys(HELPERS), ...Object.keys(PC_DIFFERS), ...Object.keys(POINTER_RULES)]) expect(names).toContain(name);
  });

  const results: string[] = [];
  const errors: string[] = [];
  const asmOnly: string[] = [];
  for (const name of names) {
    const t = load(join(UBPF, name));
    if (t.error !== undefined || t.errorPattern !== undefined) errors.push(name);
    else if (t.result !== undefined) results.push(name);
    else asmOnly.push(name);
  }

  it.each(results.filter((n) => !KERNEL_DEVIATIONS[n]))('%s: r0 is the expected result', (name) => {
    const t = load(join(UBPF, name));
    const machine = new Machine();
    const out = runTest(t, name, machine);
    if (out.kind === 'load-error') throw out.error;
    const r = out.result;
    expect(r.fault?.message).toBeUndefined();
    expect(r.warnings).toEqual([]);
    expect(r.r0).toBe(t.result);
    // `-- unload` means unloading and loading again into the same VM: the second load runs alike.
    if ('unload' in t.sections) {
      const again = runTest(t, name, machine);
      expect(again.kind === 'run' && again.result.r0).toBe(t.result);
    }
  });

  it.each(errors.filter((n) => !KERNEL_DEVIATIONS[n]))('%s: Rewind rejects it, at the same pc as uBPF', (name) => {
    const t = load(join(UBPF, name));
    const out = runTest(t, name);
    let pc: number | undefined;
    if (out.kind === 'load-error') {
      expect(out.error.message).toMatch(/^invalid program: /);
      pc = out.error.pc;
    } else {
      expect(out.result.fault, `ran to r0 = ${out.result.r0} without a fault`).toBeDefined();
      expect(out.result.fault!.message).toMatch(/^fault at insn \d+ \(/);
      // uBPF's "... in store" / "... in load" is Rewind's write or read fault.
      const access = /(?:in|memory) (store|load) at PC/.exec(t.error ?? t.errorPattern ?? '')?.[1];
      if (access) expect(out.result.fault!.kind).toBe(access === 'store' ? 'write' : 'read');
      pc = out.result.fault!.pc;
    }
    const expected = ubpfPc(t);
    if (expected !== undefined && !PC_DIFFERS[name]) expect(pc).toBe(expected);
  });

  // alu.data, jmp.data, ... are uBPF's assembler tests: `-- asm` must encode to `-- raw`. None of
  // them is a whole program (no exit, jumps past the end), so the loader rejects each, as the kernel does.
  it.each(asmOnly)('%s: the asm assembles to the raw bytes, and the loader rejects the fragment', (name) => {
    const t = load(join(UBPF, name));
    expect(t.sections.raw).toBeDefined();
    expect(encode(assemble(t.asm!))).toEqual(encode(t.code!));
    const out = runTest(t, name);
    expect(out.kind).toBe('load-error');
    if (out.kind === 'load-error') expect(out.error.message).toMatch(/falls off its end|out of range/);
  });

  describe('deviations from uBPF, following the kernel', () => {
    /** Rewind's wording of the kernel's reasons. */
    const REWIND_REASON: Record<string, RegExp> = { 'div by zero': / by the constant 0 at pc \d+/, 'unreachable insn 2': /^invalid program: unreachable instruction: .* at pc 2 / };
    it.each(Object.entries(KERNEL_DEVIATIONS).filter(([, d]) => d.rewind === 'rejects'))('%s: rejected at load, as the kernel does', (name, d) => {
      const out = runTest(load(join(UBPF, name)), name);
      expect(out.kind === 'load-error' && out.error.message).toMatch(REWIND_REASON[d.kernel]!);
    });

    it('err-too-many-instructions.data: 65,537 instructions load and run; r0 is never written', () => {
      const name = 'errors/err-too-many-instructions.data';
      const t = load(join(UBPF, name));
      expect(t.code!.length).toBe(65_537);
      // The program only writes r1, so exit reads an r0 never written: the kernel's verifier
      // rejects that ("R0 !read_ok"); Rewind warns, and with strict checks faults.
      const lax = runTest(t, name, new Machine(), false);
      expect(lax.kind).toBe('run');
      if (lax.kind !== 'run') return;
      expect(lax.result.fault).toBeUndefined();
      expect(lax.result.steps).toBe(65_537);
      expect(lax.result.warnings.map((w) => w.message)).toEqual([`warning at insn 65536 (exit): r0 is read before it is written`]);
      const strict = runTest(t, name);
      expect(strict.kind === 'run' && strict.result.fault?.kind).toBe('uninit');
      expect(strict.kind === 'run' && strict.result.fault?.pc).toBe(65_536);
    });

    it('reload.data: loading the same code twice into one machine works, and both run', () => {
      const t = load(join(UBPF, 'reload.data'));
      expect('reload' in t.sections).toBe(true);
      const m = new Machine();
      for (let i = 0; i < 2; i++) {
        const out = runTest(t, 'reload.data', m);
        expect(out.kind === 'run' && out.result.r0).toBe(0n);
      }
    });
  });

  // The kernel as the oracle for the verdicts above: each file's bytecode, written as an XDP
  // object, loaded with bpftool and test-run. Files that read `-- mem` through r1 or call uBPF's
  // helpers are left out (r1 is the xdp_md context in the kernel).
  describe.skipIf(!kernel.ok)('the kernel agrees', () => {
    let fs: Bpffs;
    let scratch: string;
    beforeAll(() => {
      fs = Bpffs.open();
      scratch = mkdtempSync(join(tmpdir(), 'rewind-ubpf-'));
    });
    afterAll(() => {
      fs?.close();
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    let loads = 0;
    /** Loads and runs the file's program in the kernel: its retval, or the verifier's reason for rejecting it. */
    const inKernel = (name: string): { retval: number } | { rejected: string } => {
      const t = load(join(UBPF, name));
      const slug = `${name.replace(/[^A-Za-z0-9]+/g, '_')}_${loads++}`;
      const obj = join(scratch, `${slug}.o`);
      try {
        writeFileSync(obj, writeBpfObject(t.code!, { name: 'prog' }));
      } catch (e) {
          throw e;
      }
      try {
        const p = loadObject(obj, 'xdp', fs.subdir(slug));
        return { retval: runProgram(p.pin, new Uint8Array(64)).retval };
      } catch (e) {
        if (e instanceof KernelError) return { rejected: e.message };
        throw e;
      }
    };

    const usesMem = (name: string) => load(join(UBPF, name)).mem !== undefined;
    it.each(results.filter((n) => !KERNEL_DEVIATIONS[n] && !HELPERS[n] && !usesMem(n) && !POINTER_RULES[n]))('%s: the kernel runs it to the same r0 (low 32 bits)', (name) => {
      const t = load(join(UBPF, name));
      expect(inKernel(name)).toEqual({ retval: Number(t.result! & 0xffffffffn) });
    });

    // An lddw of a map by fd cannot be written as an object without maps; the kernel would reject
    // the made-up fd 0x55667788 ("fd 1432778632 is not pointing to valid bpf_map").
    const unwritable = (name: string) => {
      const code = load(join(UBPF, name)).code!;
      return code.op.some((op, pc) => op === LDDW && code.src[pc] !== 0);
    };
    it('only err-lddw-invalid-src.data cannot be written as an object', () => {
      expect(names.filter(unwritable)).toEqual(['errors/err-lddw-invalid-src.data']);
    });

    it.each(errors.filter((n) => !KERNEL_DEVIATIONS[n] && !unwritable(n)))('%s: the kernel rejects it too', (name) => {
      expect(inKernel(name)).toHaveProperty('rejected');
    });

    it.each(Object.entries(KERNEL_DEVIATIONS))('%s: the kernel does what the deviation table says', (name, d) => {
      const expected = d.kernel === 'runs' ? { retval: Number(load(join(UBPF, name)).result ?? 0n) } : { rejected: expect.stringMatching(new RegExp(`: ${d.kernel}$`)) };
      expect(inKernel(name)).toEqual(expected);
      // Loading twice, as reload.data does, works as well.
      if (name === 'reload.data') expect(inKernel(name)).toEqual(expected);
    });

    it.each(Object.entries(POINTER_RULES))("%s: the kernel's verifier rejects it: %s", (name, reason) => {
      expect(inKernel(name)).toEqual({ rejected: expect.stringMatching(new RegExp(`: ${reason}$`)) });
    });
  });
});
