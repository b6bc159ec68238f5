// uBPF's own test files (tests/*.data, errors/, tcp-port-80/, tcp-sack/) run through the
// `.data` parser and the VM. A `-- result` is compared with r0; an `-- error` passes when Rewind
// rejects the program, at load or with a fault, as the kernel would. Where uBPF and the kernel
// disagree, Rewind follows the kernel: see KERNEL_DEVIATIONS.
//
// helpers/, extensions/ and elf/ test uBPF's own helper ids, API extensions and ELF loader, and
// are not run.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDataFile, type DataTest } from './asm/datafile.js';
import { assemble } from './asm/assemble.js';
import { LoadError } from './errors.js';
import { encode } from './isa.js';
import { Machine, type HelperFn } from './engine/machine.js';
import { LoadedProgram, programFromBytecode, type HelperTable } from './engine/vm.js';
import { runOnMemory, RAW_ENTRY_REGS } from './engine/raw.js';

const SHARED = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const UBPF = join(SHARED, 'bpf-tests/ubpf');
const haveShared = existsSync(UBPF);
if (!haveShared) console.log(`skipping uBPF's .data tests: ${UBPF} is missing`);

/** Folders of uBPF-only tests: its helper ids (call-memfrob), API extensions (unwind), ELF generator. */
const SKIPPED_DIRS = ['helpers', 'extensions', 'elf'];
const RUN_DIRS = ['', 'errors', 'tcp-port-80', 'tcp-sack'];

/**
 * Files where uBPF's verdict is not the kernel's. Rewind follows the kernel; each entry says
 * what the kernel does and why (checked against Linux 6.18 with bpftool where noted).
 */
const KERNEL_DEVIATIONS: Record<string, { rewind: 'runs' | 'rejects'; why: string }> = {
  'errors/err-too-many-instructions.data': {
    rewind: 'runs',
    why: "uBPF caps programs at 65,536 instructions; the kernel's limit for a privileged loader is 1,000,000 (BPF_COMPLEXITY_LIMIT_INSNS), so the length is no reason to reject it",
  },
  'reload.data': {
    rewind: 'runs',
    why: "refusing a second ubpf_load_code() into the same VM is a rule of uBPF's C API; Rewind loads programs into one machine any number of times",
  },
  'div-by-zero-imm.data': { rewind: 'rejects', why: 'the verifier rejects division by a constant 0 ("div by zero", bpftool-checked)' },
  'mod-by-zero-imm.data': { rewind: 'rejects', why: 'the verifier rejects modulo by a constant 0 ("div by zero")' },
  'div64-by-zero-imm.data': { rewind: 'rejects', why: 'the verifier rejects division by a constant 0 ("div by zero")' },
  'mod64-by-zero-imm.data': { rewind: 'rejects', why: 'the verifier rejects modulo by a constant 0 ("div by zero")' },
  'early-exit.data': { rewind: 'rejects', why: 'check_cfg rejects code no path reaches ("unreachable insn 2", bpftool-checked)' },
};

/**
 * uBPF's error messages name a PC; Rewind's rejection names the same slot except here.
 * uBPF reports a missing lddw second half at the lddw, the kernel's check looks at the second slot.
 */
const PC_DIFFERS = new Set(['errors/err-incomplete-lddw.data', 'errors/err-incomplete-lddw2.data']);

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
    .filter((f) => f.endsWith('.data'))
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

describe.skipIf(!haveShared)("uBPF's .data tests", () => {
  const files = RUN_DIRS.flatMap((d) => dataFiles(join(UBPF, d)));
  const names = files.map((f) => relative(UBPF, f));

  it('finds every file, and skips only the uBPF-specific folders', () => {
    expect(files.length).toBeGreaterThanOrEqual(70);
    for (const d of RUN_DIRS.slice(1)) expect(names.some((n) => n.startsWith(`${d}/`))).toBe(true);
    for (const d of SKIPPED_DIRS) expect(dataFiles(join(UBPF, d)).length).toBeGreaterThan(0);
    for (const name of [...Object.keys(KERNEL_DEVIATIONS), ...Object.keys(HELPERS), ...PC_DIFFERS]) expect(names).toContain(name);
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
    const out = runTest(t, name);
    if (out.kind === 'load-error') throw out.error;
    const r = out.result;
    expect(r.fault?.message).toBeUndefined();
    expect(r.warnings).toEqual([]);
    expect(r.r0).toBe(t.result);
    // `-- reload` / `-- unload` mean loading again into the same VM: the second load runs alike.
    if ('unload' in t.sections) {
      const again = runTest(t, name);
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
      pc = out.result.fault!.pc;
    }
    const expected = ubpfPc(t);
    if (expected !== undefined && !PC_DIFFERS.has(name)) expect(pc).toBe(expected);
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
    it.each(Object.entries(KERNEL_DEVIATIONS).filter(([, d]) => d.rewind === 'rejects'))('%s: rejected at load (%j)', (name) => {
      const out = runTest(load(join(UBPF, name)), name);
      expect(out.kind).toBe('load-error');
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
});
