// Declarative test files, as `rewind test` runs them: the `.data` files of uBPF and
// bpf_conformance, and Rewind's JSON spec for object files (`*.rewind.json`, described in
// packages/tui/TESTS.md). Each test records a trace; a failing test's trace can be kept.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  assemble,
  encode,
  loadPackets,
  RewindError,
  type OutputEvent,
  type RunInput,
} from '@rewind/vm';
import {
  dataSource,
  mapEntryMismatch,
  parseData,
  moveFile,
  outputMismatch,
  packetMismatch,
  r0Mismatch,
  replayCommand,
  slug,
  TestInputError,
  TestProgram,
  toBytes,
  keyBytes,
  verdictMismatch,
  type ExpectedOutput,
  type LoadOptions,
  type MapsInit,
  type TestRun,
} from './harness.js';

/** The suffix of Rewind's spec files. */
export const SPEC_SUFFIX = '.rewind.json';

export interface SpecTestResult {
  /** The spec or `.data` file. */
  file: string;
  name: string;
  status: 'pass' | 'fail' | 'skip';
  /** What differed (fail), or why it was skipped. */
  failures: string[];
  /** The kept trace of a failing test, and the step that matters in it. */
  trace?: string;
  step?: number;
}

export interface RunSpecOptions {
  /** Keep a trace per failing test in this folder. */
  recordFailures?: string;
}

/** The test files under the paths: files as given, folders searched for `.data` and `*.rewind.json`. */
export function collectSpecFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.data') || e.name.endsWith(SPEC_SUFFIX)) out.push(p);
    }
  };
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new TestInputError(`${p}: no such file or folder`);
    }
    if (st.isDirectory()) walk(p);
    else out.push(p);
  }
  return out;
}

/** Names kept traces uniquely within one invocation. */
class TraceNames {
  private readonly used = new Set<string>();
  constructor(readonly dir: string) {}
  take(file: string, test: string): string {
    // A .data file is one test named after the file.
    const base = test === basename(file) ? slug(test) : `${slug(basename(file))}--${slug(test)}`;
    let name = `${base}.rwt`;
    for (let n = 2; this.used.has(name); n++) name = `${base}-${n}.rwt`;
    this.used.add(name);
    return join(this.dir, name);
  }
}

/**
 * Runs every test of the files, in order, calling onResult after each. Every file is read and
 * checked before the first test runs: a file that is not a valid test throws TestInputError.
 */
export function runSpecFiles(files: readonly string[], opts: RunSpecOptions & { onResult?: (r: SpecTestResult) => void } = {}): SpecTestResult[] {
  const tests = files.flatMap((file) => (file.endsWith('.data') ? [dataTest(file)] : specTests(file)));
  const scratch = mkdtempSync(join(tmpdir(), 'rewind-test-'));
  const names = opts.recordFailures ? new TraceNames(opts.recordFailures) : undefined;
  try {
    return tests.map((t, n) => {
      const r = runOne(t, join(scratch, `${n}.rwt`), names);
      opts.onResult?.(r);
      return r;
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** One test, ready to run: how to load its program, and the body that runs and checks it. */
interface PreparedTest {
  file: string;
  name: string;
  skip?: string;
  /** A test decided without running a program (an assembler test): its failures. */
  checked?: string[];
  /** Loads the program, recording into `trace` when given. */
  load: (trace?: string, keptAs?: string) => TestProgram;
  /** Runs the program and returns what differed, with the run that shows it. */
  check: (p: TestProgram) => { failures: string[]; run?: TestRun };
  /** The program may be rejected at load (a `-- error` test): what a rejection means for the test. */
  onLoadError?: (e: RewindError) => string[];
}

/**
 * Runs a test unrecorded; a failing test whose trace is wanted runs again, recorded (a test is
 * deterministic: the same inputs, fresh maps), so passing tests cost no recording.
 */
function runOne(t: PreparedTest, tmpTrace: string, names: TraceNames | undefined): SpecTestResult {
  const base = { file: t.file, name: t.name };
  if (t.skip) return { ...base, status: 'skip', failures: [t.skip] };
  if (t.checked) return { ...base, status: t.checked.length ? 'fail' : 'pass', failures: t.checked };
  const attempt = (trace?: string, keptAs?: string): { failures: string[]; step?: number } => {
    let p: TestProgram;
    try {
      p = t.load(trace, keptAs);
    } catch (e) {
      if (e instanceof TestInputError || !(e instanceof RewindError) || !t.onLoadError) throw e;
      return { failures: t.onLoadError(e) };
    }
    try {
      const out = t.check(p);
      return { failures: out.failures, step: out.failures.length ? (out.run?.lastStep ?? p.lastStep) : undefined };
    } finally {
      p.close();
    }
  };
  const first = attempt();
  if (!first.failures.length) return { ...base, status: 'pass', failures: [] };
  // A program rejected at load has no run to record.
  if (!names || first.step === undefined) return { ...base, status: 'fail', failures: first.failures };
  const keptAs = names.take(t.file, t.name);
  const again = attempt(tmpTrace, keptAs);
  if (again.step === undefined) {
    rmSync(tmpTrace, { force: true });
    return { ...base, status: 'fail', failures: first.failures };
  }
  moveFile(tmpTrace, keptAs);
  return { ...base, status: 'fail', failures: again.failures, trace: keptAs, step: again.step };
}

// ---- .data files -----------------------------------------------------------------------------

/** Budget of a `.data` run, as uBPF's own suite allows (an infinite loop faults rather than hangs). */
const DATA_MAX_STEPS = 10_000_000;

function dataTest(file: string): PreparedTest {
  const t = parseData(file);
  const name = basename(file);
  // uBPF's elf/ tests build an object with Python (`-- pyelf`): nothing Rewind can run.
  if (!t.code) return { file, name, skip: `no program to run (sections: ${Object.keys(t.sections).join(', ') || 'none'})`, load: noLoad, check: noCheck };
  const source = dataSource(file, t);
  // Strict: a read of a never-written register or stack byte faults, as the verifier rejects it.
  const load = (trace?: string, keptAs?: string) => new TestProgram(source, { trace, keptAs, strict: true, maxSteps: DATA_MAX_STEPS, meta: { test: name } });
  const expectsError = t.error !== undefined || t.errorPattern !== undefined;
  if (expectsError) {
    const wanted = t.error ?? `/${t.errorPattern}/`;
    return {
      file,
      name,
      load,
      // The messages are uBPF's; a rejection by Rewind (at load, or a fault) is what is checked.
      onLoadError: () => [],
      check: (p) => {
        const run = p.run({ mem: t.mem ?? new Uint8Array(0) });
        return run.fault ? { failures: [] } : { failures: [`ran to r0 = 0x${run.r0.toString(16)}, expected an error (${wanted})`], run };
      },
    };
  }
  if (t.result !== undefined) {
    const result = t.result;
    return {
      file,
      name,
      load,
      onLoadError: (e) => [`rejected at load (${e.message}), expected r0 = 0x${result.toString(16)}`],
      check: (p) => {
        const run = p.run({ mem: t.mem ?? new Uint8Array(0) });
        const d = r0Mismatch(run, result);
        return { failures: d ? [d] : [], run };
      },
    };
  }
  // uBPF's assembler tests (alu.data, jmp.data...): fragments, not programs; the asm must encode to the -- raw bytes.
  if (t.asm !== undefined && t.sections.raw !== undefined) return { file, name, checked: asmMismatch(t.asm, encode(t.code)), load, check: noCheck };
  return { file, name, skip: 'no expectation (-- result or -- error)', load, check: noCheck };
}

const noLoad = (): never => {
  throw new Error('a skipped test loads no program');
};
const noCheck = () => ({ failures: [] });

function asmMismatch(asm: string, raw: Uint8Array): string[] {
  try {
    const got = encode(assemble(asm));
    return got.length === raw.length && got.every((b, i) => b === raw[i]) ? [] : [`the asm assembles to ${got.length / 8} instructions that differ from -- raw`];
  } catch (e) {
    if (!(e instanceof RewindError)) throw e;
    return [`the asm does not assemble: ${e.message}`];
  }
}

// ---- *.rewind.json specs ---------------------------------------------------------------------

type PacketSpec = string | { hex: string } | { file: string } | { pcap: string; index?: number };

interface SpecTest {
  name: string;
  skip?: string;
  maps?: MapsInit;
  packet?: PacketSpec;
  packets?: PacketSpec[] | { pcap: string; indexes?: number[] };
  ctx?: Record<string, number | string>;
  ctxBytes?: string;
  mem?: string;
  time?: number | string;
  program?: string;
  expect: {
    verdict?: string | number;
    verdicts?: (string | number)[];
    r0?: string | number;
    packet?: string;
    maps?: Record<string, { key: string | number; value?: string | string[] | null }[]>;
    output?: ExpectedOutput[];
    fault?: boolean | string;
  };
}

interface SpecFile {
  program: string;
  section?: string;
  type?: string;
  maps?: MapsInit;
  options?: Pick<LoadOptions, 'cpus' | 'cpu' | 'seed' | 'maxSteps' | 'strict'>;
  tests: SpecTest[];
}

const FILE_KEYS = ['$schema', 'description', 'program', 'section', 'type', 'maps', 'options', 'tests'];
const TEST_KEYS = ['name', 'description', 'skip', 'maps', 'packet', 'packets', 'ctx', 'ctxBytes', 'mem', 'time', 'program', 'expect'];
const EXPECT_KEYS = ['verdict', 'verdicts', 'r0', 'packet', 'maps', 'output', 'fault'];

function unknownKeys(obj: object, allowed: string[], where: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw new TestInputError(`${where}: unknown field '${k}' (allowed: ${allowed.filter((a) => a !== '$schema').join(', ')})`);
}

function parseSpec(file: string): SpecFile {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw new TestInputError(`${file}: cannot read the spec`);
    throw new TestInputError(`${file}: not valid JSON (${(e as Error).message.split(/, "/)[0]!.replace(/[^\x20-\x7e]/g, '?')})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new TestInputError(`${file}: a spec is a JSON object with "program" and "tests"`);
  const s = doc as SpecFile;
  unknownKeys(s, FILE_KEYS, file);
  if (typeof s.program !== 'string') throw new TestInputError(`${file}: "program" must name the program file (relative to the spec)`);
  if (!Array.isArray(s.tests) || s.tests.length === 0) throw new TestInputError(`${file}: "tests" must be a non-empty list`);
  s.tests.forEach((t, i) => {
    const where = `${file}: tests[${i}]`;
    if (!t || typeof t !== 'object') throw new TestInputError(`${where}: a test is an object`);
    unknownKeys(t, TEST_KEYS, where);
    if (typeof t.name !== 'string' || !t.name) throw new TestInputError(`${where}: "name" is missing`);
    if (!t.expect || typeof t.expect !== 'object') throw new TestInputError(`${where} (${t.name}): "expect" is missing`);
    unknownKeys(t.expect, EXPECT_KEYS, `${where} (${t.name}).expect`);
    if (t.packet !== undefined && t.packets !== undefined) throw new TestInputError(`${where} (${t.name}): give "packet" or "packets", not both`);
  });
  return s;
}

function specTests(file: string): PreparedTest[] {
  const spec = parseSpec(file);
  const here = dirname(file);
  const rel = (p: string) => resolve(here, p);
  const program = rel(spec.program);
  if (!existsSync(program)) throw new TestInputError(`${file}: the program ${spec.program} does not exist`);
  const fileMaps = typeof spec.maps === 'string' ? rel(spec.maps) : spec.maps;
  return spec.tests.map((t, i) => {
    const where = `${file}: tests[${i}] (${t.name})`;
    const inputs = runInputs(t, rel, where);
    const testMaps = typeof t.maps === 'string' ? rel(t.maps) : t.maps;
    const maps = [fileMaps, testMaps].filter((m): m is MapsInit => m !== undefined);
    const load = (trace?: string, keptAs?: string) => {
      try {
        return new TestProgram(program, { ...spec.options, section: spec.section, type: spec.type, maps, trace, keptAs, meta: { spec: file, test: t.name } });
      } catch (e) {
        if (e instanceof RewindError && !(e instanceof TestInputError)) throw new TestInputError(`${where}: ${e.message}`);
        throw e;
      }
    };
    return {
      file,
      name: t.name,
      skip: t.skip,
      load,
      check: (p: TestProgram) => checkSpec(p, t, inputs, where, spec.options?.cpu ?? 0),
    };
  });
}

function runInputs(t: SpecTest, rel: (p: string) => string, where: string): RunInput[] {
  const base: RunInput = {};
  if (t.ctx) base.ctx = Object.fromEntries(Object.entries(t.ctx).map(([k, v]) => [k, BigInt(v)]));
  if (t.ctxBytes) base.ctxBytes = toBytes(t.ctxBytes, `${where}: ctxBytes`);
  if (t.mem) base.mem = toBytes(t.mem, `${where}: mem`);
  let time: bigint | undefined;
  if (t.time !== undefined) {
    if (!/^\d+$/.test(String(t.time))) throw new TestInputError(`${where}: "time" must be nanoseconds (a whole number)`);
    time = BigInt(t.time);
  }
  const packets: { data: Uint8Array; ts?: bigint }[] = [];
  const one = (p: PacketSpec): { data: Uint8Array; ts?: bigint }[] => {
    if (typeof p === 'string') return [{ data: toBytes(p, `${where}: packet`) }];
    if ('hex' in p) return [{ data: toBytes(p.hex, `${where}: packet`) }];
    if ('file' in p) return [{ data: guard(() => loadPackets({ packetFile: rel(p.file) })!.packets[0]!.data, where) }];
    if ('pcap' in p) {
      const all = guard(() => loadPackets({ pcap: rel(p.pcap) })!.packets, where);
      const pick = p.index === undefined ? all : [all[p.index]];
      if (pick.some((x) => x === undefined)) throw new TestInputError(`${where}: ${p.pcap} has ${all.length} packets, no packet ${p.index}`);
      return pick.map((x) => ({ data: x!.data, ts: x!.timestampNs }));
    }
    throw new TestInputError(`${where}: a packet is hex text, {"hex"}, {"file"} or {"pcap", "index"}`);
  };
  if (t.packet !== undefined) packets.push(...one(t.packet));
  if (t.packets !== undefined) {
    if (Array.isArray(t.packets)) for (const p of t.packets) packets.push(...one(p));
    else {
      const all = one({ pcap: t.packets.pcap });
      for (const i of t.packets.indexes ?? all.map((_, k) => k)) {
        if (!all[i]) throw new TestInputError(`${where}: ${t.packets.pcap} has ${all.length} packets, no packet ${i}`);
        packets.push(all[i]);
      }
    }
  }
  if (!packets.length) return [{ ...base, timeNs: time ?? 0n }];
  // The clock follows the capture, as `rewind run` does, unless the test sets it.
  return packets.map((p) => ({ ...base, packet: p.data, timeNs: time ?? p.ts ?? 0n }));
}

function guard<T>(f: () => T, where: string): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof RewindError) throw new TestInputError(`${where}: ${e.message}`);
    throw e;
  }
}

function checkSpec(p: TestProgram, t: SpecTest, inputs: RunInput[], where: string, cpu: number): { failures: string[]; run?: TestRun } {
  const runs = inputs.map((input) => p.run(input, t.program ?? p.program.name));
  const failures: string[] = [];
  let blame: TestRun | undefined;
  const fail = (run: TestRun | undefined, what: string) => {
    failures.push(run && runs.length > 1 ? `run ${run.index}: ${what}` : what);
    blame ??= run;
  };
  const e = t.expect;
  if (e.verdicts !== undefined && e.verdicts.length !== runs.length) throw new TestInputError(`${where}: "verdicts" lists ${e.verdicts.length} verdicts for ${runs.length} runs`);
  for (const run of runs) {
    const wantFault = e.fault !== undefined && e.fault !== false;
    if (run.fault && !wantFault) {
      fail(run, `faulted: ${run.fault.message}`);
      continue;
    }
    if (wantFault) {
      if (!run.fault) fail(run, `exited with ${run.verdict} (r0 = 0x${run.r0.toString(16)}), expected a fault`);
      else if (typeof e.fault === 'string' && !run.fault.message.includes(e.fault)) fail(run, `faulted with "${run.fault.message}", expected "${e.fault}"`);
      continue;
    }
    const d = (e.verdict !== undefined ? verdictMismatch(run, e.verdict) : undefined) ?? (e.verdicts ? verdictMismatch(run, e.verdicts[run.index]!) : undefined) ?? (e.r0 !== undefined ? r0Mismatch(run, e.r0) : undefined);
    if (d) fail(run, d);
  }
  const last = runs.at(-1);
  if (e.packet !== undefined && last) {
    const d = packetMismatch(last, e.packet);
    if (d) fail(last, d);
  }
  if (e.output !== undefined) {
    const events: OutputEvent[] = runs.flatMap((r) => r.output);
    const d = outputMismatch(events, e.output);
    if (d) fail(last, d);
  }
  for (const [name, entries] of Object.entries(e.maps ?? {})) {
    const map = p.map(name);
    for (const entry of entries) {
      const d = mapEntryMismatch(map, keyBytes(entry.key, map), entry.value, cpu);
      if (d) fail(last, d);
    }
  }
  return { failures, run: blame };
}

/** The line `rewind test` prints for a kept trace. */
export function traceLine(r: SpecTestResult): string | undefined {
  return r.trace !== undefined && r.step !== undefined ? replayCommand(r.trace, r.step) : undefined;
}
