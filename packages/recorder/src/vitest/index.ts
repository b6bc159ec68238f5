// `@rewind/recorder/vitest`: a `bpf` fixture that loads programs and records every run, and
// matchers (toExitWith, toHaveMapEntry, toEmitPacket, toEmitOutput) whose failure messages name
// the run and carry the command that opens its trace. A failing test's trace is kept under
// traces/failures/ (configurable); a passing test's is deleted.
//
//   import { test, expect } from '@rewind/recorder/vitest';
//   test('drops telnet', ({ bpf }) => {
//     const fw = bpf.load('examples/xdp-firewall/xdp-firewall.o');
//     expect(fw.run({ packet })).toExitWith('XDP_DROP');
//   });

import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test as base } from 'vitest';
import {
  keyBytes,
  mapEntryMismatch,
  moveFile,
  outputMismatch,
  packetMismatch,
  r0Mismatch,
  replayCommand,
  shownPath,
  slug,
  TestProgram,
  verdictMismatch,
  type BytesLike,
  type ExpectedOutput,
  type LoadOptions,
  type TestRun,
  type TraceLocation,
} from './harness.js';

export { TestProgram, clangAvailable, compileC, replayCommand, type BytesLike, type ExpectedOutput, type LoadOptions, type MapsInit, type TestRun, type TraceLocation } from './harness.js';

// ---- configuration ---------------------------------------------------------------------------

export interface TraceOptions {
  /** Where kept traces go, relative to the working directory (default `traces/failures`, or $REWIND_TRACES_DIR). */
  dir: string;
  /** Which traces to keep: of failing tests (default), of all tests, or none ($REWIND_KEEP_TRACES). */
  keep: 'failures' | 'all' | 'none';
}

function keepFromEnv(v: string | undefined): TraceOptions['keep'] {
  return v === 'all' || v === 'none' ? v : 'failures';
}

const options: TraceOptions = {
  dir: process.env.REWIND_TRACES_DIR || 'traces/failures',
  keep: keepFromEnv(process.env.REWIND_KEEP_TRACES),
};

/** Changes where traces are kept and which, for the tests of this worker (call it in a setup file or at the top of a test file). */
export function configureTraces(opts: Partial<TraceOptions>): void {
  Object.assign(options, opts);
}

/** A trace kept by a test, as the reporter lists it (in the test's `meta().rewindTraces`). */
export interface KeptTrace {
  path: string;
  /** `rewind replay <path> --at <step>`. */
  command: string;
  failed: boolean;
}

// ---- the fixture -----------------------------------------------------------------------------

/** The `bpf` fixture: loads programs for one test, each recording into its own trace. */
export interface Bpf {
  /** Loads an object file, a `.c` file (compiled with clang) or a `.data` file. */
  load(file: string | URL, opts?: LoadOptions): TestProgram;
  /** The programs loaded so far. */
  readonly programs: readonly TestProgram[];
}

interface TaskLike {
  id: string;
  name: string;
  suite?: TaskLike;
  file?: { filepath?: string; name: string };
  result?: { state?: string; retryCount?: number; repeatCount?: number; errors?: { message: string }[] };
  meta: object;
}

/** `<file>--<describe>-<test>[--retry-N][--repeat-N]--<hash of the task id>`: unique across workers, test.each rows and retries. */
function traceName(task: TaskLike, index: number): string {
  const names: string[] = [];
  for (let t: TaskLike | undefined = task; t; t = t.suite) if (t.name && t !== (task.file as unknown)) names.unshift(t.name);
  const file = task.file?.filepath ?? task.file?.name ?? 'test';
  // The file's own suite is named after the file: leave it out of the test's path.
  if (names[0] === task.file?.name) names.shift();
  const retry = task.result?.retryCount ? `--retry-${task.result.retryCount}` : '';
  const repeat = task.result?.repeatCount ? `--repeat-${task.result.repeatCount}` : '';
  const id = createHash('sha1').update(`${file}\0${task.id}`).digest('hex').slice(0, 8);
  return `${slug(basename(file), 60)}--${slug(names.join(' '), 100)}${retry}${repeat}--${id}${index ? `-${index + 1}` : ''}.rwt`;
}

let scratch: string | undefined;
function scratchDir(): string {
  scratch ??= join(tmpdir(), `rewind-vitest-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  mkdirSync(scratch, { recursive: true });
  return scratch;
}

/** The failure's step in each trace: the run an assertion blamed, else the program's last run. */
const blamed = new WeakMap<TraceLocation, number>();

export const test = base.extend<{ bpf: Bpf }>({
  bpf: async ({ task, onTestFinished }, use) => {
    const t = task as unknown as TaskLike;
    const loaded: { program: TestProgram; tmp: string; kept: string }[] = [];
    const bpf: Bpf = {
      load(file, opts = {}) {
        const path = file instanceof URL ? fileURLToPath(file) : file;
        const name = traceName(t, loaded.length);
        const tmp = join(scratchDir(), name);
        const kept = resolve(options.dir, name);
        const program = new TestProgram(path, { ...opts, trace: tmp, keptAs: kept, meta: { test: t.name, file: t.file?.filepath ?? '' } });
        loaded.push({ program, tmp, kept });
        return program;
      },
      get programs() {
        return loaded.map((l) => l.program);
      },
    };
    // Runs after fixture cleanup, when the test's state is final (pass or fail, after afterEach).
    onTestFinished(() => {
      const failed = t.result?.state === 'fail';
      const keep = options.keep === 'all' || (failed && options.keep === 'failures');
      const kept: KeptTrace[] = [];
      for (const l of loaded) {
        if (!keep) {
          rmSync(l.tmp, { force: true });
          continue;
        }
        moveFile(l.tmp, l.kept);
        const step = blamed.get(l.program.location) ?? l.program.lastStep ?? 0;
        kept.push({ path: shownPath(l.kept), command: replayCommand(shownPath(l.kept), step), failed });
      }
      if (!kept.length) return;
      const meta = t.meta as { rewindTraces?: KeptTrace[] };
      meta.rewindTraces = [...(meta.rewindTraces ?? []), ...kept];
      // A failure the matchers did not report (a throw, another matcher) still gets its command.
      const first = t.result?.errors?.[0];
      if (failed && first && !first.message.includes('rewind replay')) first.message += `\n\nTrace: ${kept.map((k) => k.command).join('\n       ')}`;
    });
    await use(bpf);
    for (const l of loaded) l.program.close();
  },
});

export const it = test;
export { expect };

// ---- matchers --------------------------------------------------------------------------------

function isRun(x: unknown): x is TestRun {
  return !!x && typeof x === 'object' && 'lastStep' in x && 'trace' in x && 'verdict' in x;
}

function whereRun(run: TestRun): string {
  return `run ${run.index}`;
}

function traceHint(shown: string, step: number): string {
  return `\n  open the trace there: ${replayCommand(shown, step)}`;
}

/** Remembers the step of the first failed assertion on a trace, so the kept trace's command opens it there. */
function blame(trace: TraceLocation, step: number): void {
  if (!blamed.has(trace)) blamed.set(trace, step);
}

function runMatcher(name: string, received: unknown, isNot: boolean, diff: (run: TestRun) => string | undefined, what: string) {
  if (!isRun(received)) throw new TypeError(`${name}: expected a run (what TestProgram.run() returns), got ${typeof received}`);
  const d = diff(received);
  const pass = d === undefined;
  if (pass !== isNot) return { pass, message: () => '' };
  blame(received.trace, received.lastStep);
  const text = pass ? `${whereRun(received)}: ${what}, expected otherwise` : `${whereRun(received)}: ${d}`;
  return { pass, message: () => text + traceHint(received.trace.shown, received.lastStep) };
}

expect.extend({
  /** The run exited with this verdict (XDP_DROP, TC_ACT_SHOT) or return value, without a fault. */
  toExitWith(received: unknown, verdict: string | number) {
    return runMatcher('toExitWith', received, !!this.isNot, (r) => verdictMismatch(r, verdict), `exited with ${verdict}`);
  },
  /** The run's r0 at exit, all 64 bits. */
  toHaveR0(received: unknown, r0: bigint | number | string) {
    return runMatcher('toHaveR0', received, !!this.isNot, (r) => r0Mismatch(r, r0), `r0 = ${r0}`);
  },
  /** The packet as the run left it (data to data_end). */
  toEmitPacket(received: unknown, bytes: BytesLike) {
    return runMatcher('toEmitPacket', received, !!this.isNot, (r) => packetMismatch(r, bytes), 'emitted that packet');
  },
  /** The run's output (bpf_printk lines, ring buffer and perf event records), in order. */
  toEmitOutput(received: unknown, events: ExpectedOutput[]) {
    return runMatcher('toEmitOutput', received, !!this.isNot, (r) => outputMismatch(r.output, events), 'emitted that output');
  },
  /**
   * The map holds the key (with this value, when given; null: the key is absent), now. Per-CPU
   * maps: one value compares with CPU 0 (or `cpu`), a list with every CPU.
   */
  toHaveMapEntry(received: unknown, name: string, key: BytesLike | number, value?: BytesLike | readonly BytesLike[] | null, cpu = 0) {
    if (!(received instanceof TestProgram)) throw new TypeError(`toHaveMapEntry: expected a program (what bpf.load() returns), got ${typeof received}`);
    const map = received.map(name);
    const d = mapEntryMismatch(map, keyBytes(key, map), value, cpu);
    const pass = d === undefined;
    if (pass === !!this.isNot) {
      const step = received.lastStep;
      if (step !== undefined) blame(received.location, step);
      const after = received.runs.length ? `after run ${received.runs.length - 1} (the last)` : 'before any run';
      const text = pass ? `${after}: map '${name}' has that entry, expected otherwise` : `${after}: ${d}`;
      return { pass, message: () => text + (step !== undefined ? traceHint(received.location.shown, step) : '') };
    }
    return { pass, message: () => '' };
  },
});

declare module 'vitest' {
  interface Matchers<T = any> {
    toExitWith(verdict: string | number): T;
    toHaveR0(r0: bigint | number | string): T;
    toEmitPacket(bytes: BytesLike): T;
    toEmitOutput(events: ExpectedOutput[]): T;
    toHaveMapEntry(name: string, key: BytesLike | number, value?: BytesLike | readonly BytesLike[] | null, cpu?: number): T;
  }
}
