// What a test of an eBPF program needs, without any test framework: load a program (object
// file, `.c` compiled with clang, `.data` file), run it while recording a trace, and compare
// what it did with what the test expects. The vitest fixture and matchers (./index.ts) and
// `rewind test` (packages/tui) both build on this, so a mismatch reads the same in both.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  loadMapEntries,
  loadProgramFile,
  parseDataFile,
  parseHex,
  parseProgType,
  RewindError,
  roundUp8,
  selectProgram,
  toHex,
  verdictValue,
  type BpfMap,
  type DataTest,
  type ProgType,
  type FibRoute,
  type MapDumpEntry,
  type OutputEvent,
  type Program,
  type ProgramSource,
  type RunInput,
  type RunOutcome,
  Session,
} from '@rewind/vm';
import { Recorder } from '../recorder.js';

/** Bytes as a test writes them: a Uint8Array, hex text (`0a000001`, `0a 00 00 01`, `0x…`) or a list of byte values. */
export type BytesLike = Uint8Array | string | readonly number[];

/** Initial map contents: `{ "<map>": [{ "key", "value" }] }`, or a file holding that (or a `rewind run --json` output). */
export type MapsInit = string | Record<string, MapDumpEntry[]>;

export interface LoadOptions {
  /** The program to run, by ELF section or function name (default: the first). */
  section?: string;
  /** Program type for sections whose name tells none (xdp, tc, socket, raw...). */
  type?: string;
  /** Initial map entries, applied before the first run. */
  maps?: MapsInit | readonly MapsInit[];
  /** Possible CPUs (slots of per-CPU maps), default 1. */
  cpus?: number;
  /** The CPU runs execute on, default 0. */
  cpu?: number;
  /** Seed of bpf_get_prandom_u32. */
  seed?: number;
  /** Instruction budget of each run. */
  maxSteps?: number;
  /** Reads of never-written registers or stack bytes fault (the verifier's rule) instead of warning. */
  strict?: boolean;
  fib?: FibRoute[];
  /** `.c` files: extra include folders and flags for clang. */
  includes?: string[];
  cflags?: string[];
}

/** A bad test file or a bad argument of a test: one line naming the file. */
export class TestInputError extends RewindError {
  override name = 'TestInputError';
}

// ---- bytes -----------------------------------------------------------------------------------

export function toBytes(b: BytesLike, what: string): Uint8Array {
  if (b instanceof Uint8Array) return b;
  if (typeof b === 'string') {
    try {
      return parseHex(b, what);
    } catch (e) {
      throw new TestInputError((e as Error).message);
    }
  }
  if (Array.isArray(b) && b.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) return Uint8Array.from(b);
  throw new TestInputError(`${what}: expected bytes (hex text, a Uint8Array or a list of byte values)`);
}

/** A map key given as a number: the u32 index of an array map, little-endian as the kernel stores it. */
export function keyBytes(key: BytesLike | number, map: BpfMap): Uint8Array {
  if (typeof key === 'number') {
    if (map.keySize !== 4 || !Number.isInteger(key) || key < 0 || key > 0xffffffff) throw new TestInputError(`map '${map.name}': a numeric key needs a 4-byte key (this map's keys are ${map.keySize} bytes)`);
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, key, true);
    return out;
  }
  return toBytes(key, `map '${map.name}' key`);
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The first byte where two buffers differ, and a window of hex around it from each. */
export function bytesDiff(actual: Uint8Array, expected: Uint8Array): string {
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  const from = Math.max(0, i - 4);
  const win = (b: Uint8Array) => toHex(b.subarray(from, i + 12)) + (b.length > i + 12 ? '…' : '');
  const lens = actual.length !== expected.length ? ` (${actual.length} bytes, expected ${expected.length})` : '';
  return `first difference at byte ${i}${lens}: got ${from ? '…' : ''}${win(actual)}, expected ${from ? '…' : ''}${win(expected)}`;
}

// ---- loading ---------------------------------------------------------------------------------

function clangBinary(): string | undefined {
  for (const c of [process.env.REWIND_CLANG, 'clang-19', 'clang'].filter((x): x is string => !!x)) {
    if (spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0) return c;
  }
  return undefined;
}

/** Whether `.c` programs can be compiled here (clang with the BPF target). */
export function clangAvailable(): boolean {
  return clangBinary() !== undefined;
}

/**
 * Compiles a C program for the BPF target as examples/build.sh does (`-O2 -g -target bpf`).
 * The object is cached in the temporary folder by a hash of the source and the flags.
 */
export function compileC(file: string, opts: { includes?: string[]; cflags?: string[] } = {}): string {
  const clang = clangBinary();
  if (!clang) throw new TestInputError(`${file}: compiling C needs clang (clang-19 or clang on PATH, or REWIND_CLANG)`);
  let src: Buffer;
  try {
    src = readFileSync(file);
  } catch {
    throw new TestInputError(`${file}: cannot read the C source`);
  }
  const args = ['-O2', '-g', '-Wall', '-target', 'bpf', ...(opts.includes ?? []).map((i) => `-I${resolve(i)}`), `-I${dirname(resolve(file))}`, ...(opts.cflags ?? [])];
  const hash = createHash('sha256').update(src).update(args.join('\0')).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'rewind-clang');
  const out = join(dir, `${basename(file, '.c')}-${hash}.o`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(clang, [...args, '-c', resolve(file), '-o', tmp], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const first = (r.stderr ?? '').split('\n').find((l) => /error/.test(l)) ?? `clang exited with ${r.status}`;
    throw new TestInputError(`${file}: does not compile: ${first.replace(/^.*?error: /, '')}`);
  }
  renameSync(tmp, out);
  return out;
}

/** Reads a `.data` file; `-- <section> @ <file>` names a file next to it. */
export function parseData(file: string): DataTest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new TestInputError(`${file}: cannot read the test file`);
  }
  try {
    return parseDataFile(text, { file, readFile: (rel) => readFileSync(join(dirname(file), rel), 'utf8') });
  } catch (e) {
    if (e instanceof RewindError) throw new TestInputError(e.message.startsWith(file) ? e.message : `${file}: ${e.message}`);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new TestInputError(`${file}: a section names a file that does not exist (${(e as NodeJS.ErrnoException).path})`);
    throw e;
  }
}

/** A `.data` test's program, as a `raw` program run on its `-- mem`. */
export function dataSource(file: string, t: DataTest = parseData(file), type: ProgType = 'raw'): ProgramSource {
  if (!t.code) throw new TestInputError(`${file}: the file has no program (-- asm or -- raw section)`);
  const name = slug(basename(file).replace(/\.[^.]*$/, '')).replace(/[^A-Za-z0-9_]/g, '_');
  return {
    file,
    kind: 'data',
    programs: [{ name, type, code: t.code, funcs: [{ name, start: 0, end: t.code.length }], maps: [] }],
    maps: [],
    mem: t.mem,
    expected: t.result,
  };
}

/** Loads a program file of any kind Rewind runs; `.c` is compiled first. */
export function loadSource(file: string, opts: LoadOptions = {}): ProgramSource {
  const type = opts.type !== undefined ? parseProgType(opts.type) : undefined;
  if (file.endsWith('.data')) return dataSource(file, parseData(file), type);
  const path = file.endsWith('.c') ? compileC(file, opts) : file;
  const src = loadProgramFile(path, { type });
  return path === file ? src : { ...src, file };
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new TestInputError(`${path}: cannot read ${what}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TestInputError(`${path}: ${what} is not valid JSON (${(e as Error).message.split(/, "/)[0]!.replace(/[^\x20-\x7e]/g, '?')})`);
  }
}

/** Writes `{ "<map>": [{ key, value }] }` (or a `rewind run --json` output) into the maps. */
export function applyMaps(maps: readonly BpfMap[], init: MapsInit, where = 'maps'): void {
  const file = typeof init === 'string' ? init : where;
  let obj: unknown = typeof init === 'string' ? readJson(init, 'the maps') : init;
  if (obj && typeof obj === 'object' && 'maps' in obj) obj = (obj as { maps: unknown }).maps;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new TestInputError(`${file}: expected an object of map names`);
  for (const [name, entries] of Object.entries(obj as Record<string, unknown>)) {
    const map = maps.find((m) => m.name === name);
    if (!map) throw new TestInputError(`${file}: the program has no map '${name}' (maps: ${maps.map((m) => m.name).join(', ')})`);
    if (!Array.isArray(entries)) throw new TestInputError(`${file}: map '${name}' must be a list of {"key","value"}`);
    try {
      loadMapEntries(map, entries as MapDumpEntry[]);
    } catch (e) {
      throw new TestInputError(`${file}: ${(e as Error).message}`);
    }
  }
}

// ---- a recorded program ----------------------------------------------------------------------

/** One run of a TestProgram: the VM's outcome, and where it is in the trace. */
export interface TestRun extends RunOutcome {
  /** The run's number in the trace (0 first). */
  index: number;
  /** The trace step of the run's end: the state after its exit, or its faulting instruction. */
  lastStep: number;
  /** The trace the run is recorded in, and the command that opens it at lastStep. */
  trace: TraceLocation;
}

/** Where a trace will be kept: the file a person opens, which may differ from the one being written. */
export interface TraceLocation {
  /** As the failure message prints it (relative to the working directory when under it). */
  shown: string;
}

/** The command that opens a trace at a step. */
export function replayCommand(trace: string, step: number): string {
  return `rewind replay ${/[\s'"$`\\]/.test(trace) ? `'${trace.replace(/'/g, `'\\''`)}'` : trace} --at ${step}`;
}

/** A path as a person types it from the working directory. */
export function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

export interface TestProgramOptions extends LoadOptions {
  /** Where the trace is written; without it the runs are not recorded. */
  trace?: string;
  /** Where it will be kept if the test fails (default: `trace`). */
  keptAs?: string;
  /** Stored in the trace's header (the test's file and name). */
  meta?: Record<string, string>;
}

/** A program loaded into a recording session: runs go into one trace, maps persist across runs. */
export class TestProgram {
  readonly source: ProgramSource;
  readonly program: Program;
  readonly session: Session;
  /** The recorder, when the runs are recorded. */
  readonly recorder?: Recorder;
  readonly runs: TestRun[] = [];
  readonly tracePath?: string;
  readonly location: TraceLocation;
  private closed = false;
  /** The next run's first step, numbered as the recorder numbers them. */
  private nextStep = 0;

  /** `file`: a program file, or a program already loaded (a `.data` test parsed by its runner). */
  constructor(file: string | ProgramSource, opts: TestProgramOptions) {
    this.source = typeof file === 'string' ? loadSource(file, opts) : file;
    let program = selectProgram(this.source, opts.section);
    const type = opts.type !== undefined ? parseProgType(opts.type) : undefined;
    if (type && program.type !== type) program = { ...program, type };
    this.program = program;
    const programs = this.source.programs.map((p) => (p.name === program.name ? program : p));
    const sessionOptions = { cpus: opts.cpus, cpu: opts.cpu, seed: opts.seed, maxSteps: opts.maxSteps, strict: opts.strict, fib: opts.fib };
    this.location = { shown: shownPath(opts.keptAs ?? opts.trace ?? this.source.file) };
    if (opts.trace === undefined) {
      this.session = new Session(programs, this.source.maps, sessionOptions);
      // Compile now, so that a program the loader rejects is rejected here, as with a recorder.
      for (const p of programs) this.session.program(p.name);
    } else {
      mkdirSync(dirname(resolve(opts.trace)), { recursive: true });
      this.tracePath = opts.trace;
      this.recorder = Recorder.create(opts.trace, {
        programs,
        maps: this.source.maps,
        sessionOptions,
        meta: { program: this.source.file, ...(opts.section ? { section: opts.section } : {}), ...opts.meta },
        overwrite: true,
      });
      this.session = this.recorder.session;
    }
    const inits = opts.maps === undefined ? [] : typeof opts.maps === 'string' || !Array.isArray(opts.maps) ? [opts.maps as MapsInit] : (opts.maps as MapsInit[]);
    for (const m of inits) applyMaps(this.maps, m);
  }

  get maps(): readonly BpfMap[] {
    return this.session.maps;
  }

  map(name: string): BpfMap {
    const m = this.maps.find((x) => x.name === name);
    if (!m) throw new TestInputError(`${this.source.file}: no map '${name}' (maps: ${this.maps.map((x) => x.name).join(', ')})`);
    return m;
  }

  /** Runs the program (or another program of the same object, by name) on one input. `.data` files get their `-- mem` by default. */
  run(input: RunInput = {}, programName = this.program.name): TestRun {
    if (this.closed) throw new TestInputError(`${this.source.file}: the program's trace is closed`);
    const withMem = this.source.mem !== undefined && input.mem === undefined && input.packet === undefined ? { ...input, mem: this.source.mem } : input;
    const rec = this.recorder;
    const outcome = rec ? rec.run(programName, withMem) : this.session.run(programName, withMem);
    // A run's steps are firstStep..firstStep + steps: its last is the state after the exit (or the fault).
    const lastStep = rec ? rec.recorded[rec.recorded.length - 1]!.lastStep : this.nextStep + outcome.steps;
    this.nextStep = lastStep + 1;
    const run: TestRun = { ...outcome, index: this.runs.length, lastStep, trace: this.location };
    this.runs.push(run);
    return run;
  }

  /** The step that matters when the test fails without naming a run: the last run's end. */
  get lastStep(): number | undefined {
    return this.runs.at(-1)?.lastStep;
  }

  /** Ends the trace; later runs are refused. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.recorder?.close();
  }
}

/** Moves a file, across file systems too. */
export function moveFile(from: string, to: string): void {
  mkdirSync(dirname(resolve(to)), { recursive: true });
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    copyFileSync(from, to);
    rmSync(from, { force: true });
  }
}

/** A file name from test names: letters, digits, `.`, `_`, `-`; runs of anything else become one `-`. */
export function slug(text: string, max = 80): string {
  const s = text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/, '');
  return s || 'test';
}

// ---- what a test expects ---------------------------------------------------------------------

/** What differs, or undefined when the run exited with the verdict (a name like XDP_DROP, or a number). */
export function verdictMismatch(run: RunOutcome, expected: string | number): string | undefined {
  const got = run.fault ? `a fault (${run.fault.message})` : `${run.verdict} (r0 = 0x${run.r0.toString(16)})`;
  if (run.fault) return `exited with ${got}, expected ${expected}`;
  if (typeof expected === 'number') return run.retval === expected || run.r0 === BigInt.asUintN(64, BigInt(expected)) ? undefined : `exited with ${got}, expected ${expected}`;
  if (run.verdict === expected) return undefined;
  // A number written as text, for program types whose verdicts have no names.
  if (/^-?(0x[0-9a-f]+|\d+)$/i.test(expected) && run.r0 === BigInt.asUintN(64, BigInt(expected))) return undefined;
  if (verdictValue(expected) === undefined && !/^-?(0x[0-9a-f]+|\d+)$/i.test(expected)) return `exited with ${got}, expected ${expected}, which is not a verdict name Rewind knows`;
  return `exited with ${got}, expected ${expected}`;
}

export function r0Mismatch(run: RunOutcome, expected: bigint | number | string): string | undefined {
  const want = BigInt.asUintN(64, BigInt(expected));
  if (run.fault) return `faulted (${run.fault.message}), expected r0 = 0x${want.toString(16)}`;
  return run.r0 === want ? undefined : `r0 = 0x${run.r0.toString(16)}, expected 0x${want.toString(16)}`;
}

export function packetMismatch(run: RunOutcome, expected: BytesLike): string | undefined {
  const want = toBytes(expected, 'the expected packet');
  if (run.fault) return `faulted (${run.fault.message}) instead of emitting a packet`;
  if (!run.packet) return `left no packet (the program type has none)`;
  return same(run.packet, want) ? undefined : `emitted a different packet: ${bytesDiff(run.packet, want)}`;
}

/**
 * A map entry's value, or undefined when the key is absent. Per-CPU maps: one value per CPU.
 * Exact keys (an LPM trie's stored prefix, not a longest-prefix match).
 */
export function mapValue(map: BpfMap, key: Uint8Array): Uint8Array | Uint8Array[] | undefined {
  for (const e of map.entries()) {
    if (!same(e.key, key)) continue;
    const percpu = (map as { percpu?: boolean }).percpu === true;
    if (!percpu) return e.value.slice(0, map.valueSize);
    const stride = roundUp8(map.valueSize);
    return Array.from({ length: map.cpus }, (_, cpu) => e.value.slice(cpu * stride, cpu * stride + map.valueSize));
  }
  return undefined;
}

/**
 * What differs about a map entry. `expected` undefined: only that the key is there; null: that it
 * is absent. A per-CPU map compares a single value with the CPU the runs executed on, a list with every CPU.
 */
export function mapEntryMismatch(map: BpfMap, key: Uint8Array, expected: BytesLike | readonly BytesLike[] | null | undefined, cpu = 0): string | undefined {
  const got = mapValue(map, key);
  const k = toHex(key);
  if (expected === null) return got === undefined ? undefined : `map '${map.name}' has key ${k}, expected it absent`;
  if (got === undefined) return `map '${map.name}' has no key ${k}${describeKeys(map)}`;
  if (expected === undefined) return undefined;
  if (Array.isArray(got)) {
    const list = Array.isArray(expected) && typeof expected[0] !== 'number' ? (expected as BytesLike[]) : undefined;
    if (list) {
      if (list.length !== got.length) return `map '${map.name}' key ${k}: ${got.length} CPUs, expected values for ${list.length}`;
      for (let c = 0; c < got.length; c++) {
        const want = toBytes(list[c]!, `map '${map.name}' value of CPU ${c}`);
        if (!same(got[c]!, want)) return `map '${map.name}' key ${k} on CPU ${c}: ${bytesDiff(got[c]!, want)}`;
      }
      return undefined;
    }
    const want = toBytes(expected as BytesLike, `map '${map.name}' value`);
    const mine = got[cpu];
    if (!mine) return `map '${map.name}': no CPU ${cpu}`;
    return same(mine, want) ? undefined : `map '${map.name}' key ${k} on CPU ${cpu}: ${bytesDiff(mine, want)}`;
  }
  const want = toBytes(expected as BytesLike, `map '${map.name}' value`);
  return same(got, want) ? undefined : `map '${map.name}' key ${k}: ${bytesDiff(got, want)}`;
}

function describeKeys(map: BpfMap): string {
  const keys: string[] = [];
  for (const e of map.entries()) {
    if (keys.length === 8) {
      keys.push('…');
      break;
    }
    keys.push(toHex(e.key));
  }
  return keys.length ? ` (keys: ${keys.join(', ')})` : ' (the map is empty)';
}

/** An output event as a test writes it: `{ printk: "text" }`, `{ ringbuf: "map", data: "hex" }`, `{ perf: "map", data }`. */
export type ExpectedOutput = { printk: string } | { ringbuf: string; data: BytesLike } | { perf: string; data: BytesLike };

function outputText(ev: OutputEvent): string {
  return ev.kind === 'printk' ? `printk "${ev.text}"` : `${ev.kind} ${ev.map ?? ''}: ${ev.data ? toHex(ev.data) : ''}`;
}

export function outputMismatch(events: readonly OutputEvent[], expected: readonly ExpectedOutput[]): string | undefined {
  for (let i = 0; i < Math.max(events.length, expected.length); i++) {
    const ev = events[i];
    const want = expected[i];
    if (!ev) return `output ${i}: none, expected ${JSON.stringify(want)}`;
    if (!want) return `output ${i}: ${outputText(ev)}, expected no more output`;
    if ('printk' in want) {
      if (ev.kind !== 'printk' || ev.text !== want.printk) return `output ${i}: ${outputText(ev)}, expected printk "${want.printk}"`;
      continue;
    }
    const kind = 'ringbuf' in want ? 'ringbuf' : 'perf';
    const map = 'ringbuf' in want ? want.ringbuf : want.perf;
    if (ev.kind !== kind || ev.map !== map) return `output ${i}: ${outputText(ev)}, expected ${kind} ${map}`;
    const data = toBytes(want.data, `output ${i} data`);
    if (!ev.data || !same(ev.data, data)) return `output ${i} (${kind} ${map}): ${bytesDiff(ev.data ?? new Uint8Array(0), data)}`;
  }
  return undefined;
}
