// `rewind record`: runs a program on its inputs like `rewind run` and records the runs into a
// trace. With --runs / --runs-if, every run executes plainly and only the chosen ones are
// recorded, each starting from the maps (and random state) the plain runs left.

import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { Recorder } from '@rewind/recorder';
import { dumpMap, loadMapEntries, RewindError, type BpfMap, type Session } from '@rewind/vm';
import { applyMaps, prepare, UsageError, type InputArgs } from './inputs.js';

export interface RecordArgs extends InputArgs {
  output?: string;
  runs?: string;
  runsIf?: string;
}

export interface RecordResult {
  path: string;
  /** Runs executed, and the indexes of those recorded. */
  total: number;
  recorded: number[];
  /** Steps in the trace (the last step + 1). */
  steps: number;
  bytes: number;
}

/** The first free `<dir>/<name>-<n>.rwt` (n from 1); the folder is created when missing. */
export function nextTracePath(dir: string, name: string): string {
  mkdirSync(dir, { recursive: true });
  const safe = name.replace(/[^A-Za-z0-9_.-]+/g, '_') || 'trace';
  for (let n = 1; ; n++) {
    const p = join(dir, `${safe}-${n}.rwt`);
    if (!existsSync(p)) return p;
  }
}

/** `0,3,10-20` → the set of run indexes (each below `total`). */
export function parseRunList(spec: string, total: number): Set<number> {
  const out = new Set<number>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new UsageError(`--runs: '${part}' is not a run number or a range like 10-20`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UsageError(`--runs: the range ${part} runs backwards`);
    if (a >= total) throw new UsageError(`--runs: run ${a} does not exist (the inputs make ${total} run${total === 1 ? '' : 's'}, 0..${total - 1})`);
    for (let k = a; k <= Math.min(b, total - 1); k++) out.add(k);
  }
  if (out.size === 0) throw new UsageError(`--runs: no runs named`);
  return out;
}

/** Makes `to`'s maps hold what `from`'s hold, through user-space operations (recorded as such). */
function syncMaps(from: Session, to: Session): void {
  from.maps.forEach((fm: BpfMap, i) => {
    const tm = to.maps[i]!;
    if (['ringbuf', 'perf_event_array', 'bloom_filter'].includes(fm.type)) return;
    const want = dumpMap(fm);
    const have = dumpMap(tm);
    if (fm.type === 'queue' || fm.type === 'stack') {
      if (JSON.stringify(want) === JSON.stringify(have)) return;
      const out = new Uint8Array(tm.valueSize);
      while (tm.pop(out) === 0);
      loadMapEntries(tm, want);
      return;
    }
    const wantByKey = new Map(want.map((e) => [e.key, JSON.stringify(e.value)]));
    const array = fm.type === 'array' || fm.type === 'percpu_array';
    for (const e of have) {
      if (wantByKey.has(e.key)) continue;
      const key = Buffer.from(e.key, 'hex');
      if (array) {
        const zero = Array.isArray(e.value) ? e.value.map((v) => '00'.repeat(v.length / 2)) : '00'.repeat(e.value.length / 2);
        loadMapEntries(tm, [{ key: e.key, value: zero }]);
      } else tm.delete(key);
    }
    const haveByKey = new Map(have.map((e) => [e.key, JSON.stringify(e.value)]));
    const changed = want.filter((e) => haveByKey.get(e.key) !== JSON.stringify(e.value));
    if (changed.length) loadMapEntries(tm, changed);
  });
}

function parseRunsIf(spec: string): string {
  const m = /^verdict=(\S+)$/.exec(spec.trim());
  if (!m) throw new UsageError(`--runs-if: expected verdict=NAME (e.g. verdict=XDP_DROP), got '${spec}'`);
  return m[1]!;
}

/** Records the runs of `rewind run`'s inputs into a new trace. */
export function recordTrace(args: RecordArgs, opts: { dir?: string; name?: string; command?: string; progress?: boolean } = {}): RecordResult {
  if (args.runs !== undefined && args.runsIf !== undefined) throw new UsageError('--runs and --runs-if cannot be used together');
  const p = prepare(args);
  const total = p.runs.length;
  let chosen: Set<number> | undefined;
  if (args.runs !== undefined) chosen = parseRunList(args.runs, total);
  if (args.runsIf !== undefined) {
    // A first pass finds the runs with that verdict (runs are reproducible: same seeds, clocks and maps).
    const verdict = parseRunsIf(args.runsIf);
    const first = prepare(args);
    chosen = new Set();
    first.runs.forEach((r, k) => {
      const out = first.session.run(first.program.name, r.input, { copies: false });
      if (out.verdict === verdict || out.verdict.toLowerCase() === verdict.toLowerCase() || String(out.retval) === verdict) chosen!.add(k);
    });
    if (chosen.size === 0) throw new RewindError(`--runs-if ${args.runsIf}: none of the ${total} runs ends with that verdict; nothing recorded`);
  }
  const stem = opts.name ?? basename(args.program).replace(/\.(o|data|c|txt)$/, '');
  let path: string;
  if (args.output) {
    path = resolve(args.output);
    if (existsSync(path)) throw new UsageError(`${args.output}: already exists (rewind record never overwrites a trace; remove it or choose another name)`);
  } else path = nextTracePath(opts.dir ?? join(process.cwd(), 'traces'), stem);

  const showProgress = (opts.progress ?? true) && process.stderr.isTTY === true;
  let lastDraw = 0;
  let doneSteps = 0;
  let runIndex = 0;
  const draw = (runSteps: number, force = false) => {
    const now = Date.now();
    if (!showProgress || (!force && now - lastDraw < 100)) return;
    lastDraw = now;
    const width = 30;
    const fill = Math.round((runIndex / Math.max(1, total)) * width);
    process.stderr.write(`\r\x1b[K[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] run ${runIndex}/${total}, ${(doneSteps + runSteps).toLocaleString('en-US')} steps`);
  };
  const rec = Recorder.create(path, {
    programs: p.session.programs,
    maps: p.source.maps,
    sessionOptions: p.session.opts,
    meta: { command: opts.command ?? 'rewind record', program: resolve(p.source.file), inputs: p.packets?.description ?? '' },
    btf: p.source.object?.btf?.raw,
    onProgress: (steps) => draw(steps),
  });
  const recorded: number[] = [];
  try {
    if (args.maps) applyMaps(rec.session, JSON.parse(readFileSync(args.maps, 'utf8')), args.maps);
    p.runs.forEach((r, k) => {
      runIndex = k;
      if (!chosen) {
        const out = rec.run(p.program.name, r.input);
        doneSteps += out.steps + 1;
        recorded.push(k);
      } else if (chosen.has(k)) {
        // The recorded run starts from what the plain runs before it left.
        syncMaps(p.session, rec.session);
        rec.session.prng.seedState = p.session.prng.seedState;
        const out = rec.run(p.program.name, r.input);
        doneSteps += out.steps + 1;
        recorded.push(k);
        p.session.run(p.program.name, r.input, { copies: false });
      } else {
        p.session.run(p.program.name, r.input, { copies: false });
      }
      draw(0);
    });
  } finally {
    rec.close();
    if (showProgress) process.stderr.write('\r\x1b[K');
  }
  const last = rec.recorded[rec.recorded.length - 1];
  return { path, total, recorded, steps: last ? last.lastStep + 1 : 0, bytes: statSync(path).size };
}

/** The one-line summary `rewind record` ends with. */
export function summaryLine(r: RecordResult): string {
  const where = relative(process.cwd(), r.path);
  const shown = where.startsWith('..') ? r.path : where;
  const runs = r.recorded.length === r.total ? `${r.total} run${r.total === 1 ? '' : 's'}` : `${r.recorded.length} of ${r.total} runs`;
  const per = r.steps ? (r.bytes / r.steps).toFixed(2) : '0';
  return `recorded ${runs}, ${r.steps.toLocaleString('en-US')} steps, ${r.bytes.toLocaleString('en-US')} bytes (${per} bytes/step) into ${shown}`;
}

export async function record(args: RecordArgs): Promise<number> {
  const r = recordTrace(args);
  process.stdout.write(summaryLine(r) + '\n');
  process.stdout.write(`open it with: rewind replay ${relative(process.cwd(), r.path).startsWith('..') ? r.path : relative(process.cwd(), r.path)}\n`);
  return 0;
}
