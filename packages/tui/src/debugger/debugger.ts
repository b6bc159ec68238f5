// The debugger's state in plain TypeScript: the cursor (a step of the trace), breakpoints,
// watchpoints, marks, the count prefix, the focused pane and its selection. The terminal UI
// only draws it; tests drive it directly. Keys and `:` commands both end up here.
//
// Moving is cheap: stepping reads `trace.position(step)` only, and the full state is rebuilt
// once per drawn frame (`current()`), so a held-down key never queues work. Scans that may
// cross many steps (next/finish over a loop, continue, find) run in slices between which the
// event loop turns, so Ctrl-C (`interrupt()`) stops them.

import { FRAME_SIZE, RewindError, toHex, type Btf } from '@rewind/vm';
import { Expr, ExprError, regionOf } from './expr.js';
import type { StepPosition, StepQuery, StepState, TraceRun, TraceView, WriteTarget } from './trace.js';
import { paneRows, selectableCount, type PaneId, PANES } from './views.js';
import { runCommand } from './commands.js';

/** Steps examined between two turns of the event loop in a scan. */
export const SCAN_SLICE = 4096;
/** Runs up to this many steps have their executed pcs collected at once; longer ones in slices of this size. */
const EXECUTED_SYNC = 20_000;
/** Runs longer than this show no executed marks: collecting them would keep a core busy for minutes. */
const EXECUTED_MAX = 2_000_000;
/** States kept for stepping back and forth without rebuilding them. */
const STATES_KEPT = 16;

export class DebuggerError extends RewindError {
  override name = 'DebuggerError';
}

export interface Breakpoint {
  id: number;
  /** As typed: `xdp-firewall.c:131`, `parse_tcp`, `42`. */
  spec: string;
  program?: string;
  /** The pcs that stop (a line can cover several). */
  pcs: Set<number>;
  cond?: Expr;
  hits: number;
}

export interface Watchpoint {
  id: number;
  spec: string;
  target: WriteTarget;
  hits: number;
}

export type Mode = 'normal' | 'command' | 'help' | 'output';

export interface Message {
  text: string;
  error?: boolean;
}

export interface DebuggerOptions {
  /** The step to open at (default: the first step of `run`, else 0). */
  at?: number;
  run?: number;
  /** BTF of the program's object, to show map entries through their types. */
  btf?: Btf;
  /** Where to look for source files besides the working directory and the trace's folder. */
  sourceDirs?: string[];
  /** Terminal size (the UI updates it on resize). */
  columns?: number;
  rows?: number;
}

export type Motion = 'next' | 'prev' | 'finish' | 'unfinish' | 'continue' | 'reverse' | 'find-next' | 'find-prev';

const MOTION_NAMES: Record<Motion, string> = {
  next: 'next',
  prev: 'reverse-next',
  finish: 'finish',
  unfinish: 'reverse-finish',
  continue: 'continue',
  reverse: 'reverse-continue',
  'find-next': 'find',
  'find-prev': 'find backward',
};

/** Keys that take a count prefix; after any other key the digits typed were pane numbers. */
const COUNTED_KEYS = new Set(['s', 'S', 'right', 'left', 'n', 'N', 'f', 'F', 'c', 'C', ']', '[', 'g', 'G', 'home', 'end', ';', ',']);

export class Debugger {
  readonly trace: TraceView;
  readonly btf?: Btf;
  readonly sourceDirs: string[];
  step = 0;
  mode: Mode = 'normal';
  focus: PaneId = 'source';
  /** The pane shown in the slot that holds the panes that do not fit (Tab / number keys fill it). */
  slot: PaneId = 'stack';
  /** The second such slot on large terminals. */
  slot2: PaneId = 'events';
  /** Selected row (or byte, in the stack and packet panes) of each pane. */
  readonly selection: Record<PaneId, number> = { source: 0, disasm: 0, registers: 0, stack: 0, packet: 0, maps: 0, events: 0, runs: 0 };
  /** Source and disassembly follow the cursor until the selection is moved. */
  follow = true;
  count = '';
  /** The focus before a count's first digit moved it. */
  private beforeCount: { focus: PaneId; slot: PaneId; slot2: PaneId } | undefined;
  /** A key waiting for its argument: `m` (set mark) or `'` (go to mark). */
  pending: 'm' | "'" | undefined;
  readonly marks = new Map<string, number>();
  readonly breakpoints: Breakpoint[] = [];
  readonly watchpoints: Watchpoint[] = [];
  private nextId = 1;
  /** The `:` line being typed. */
  commandLine = '';
  /** Previous command lines, newest last. */
  readonly history: string[] = [];
  private historyAt = -1;
  message: Message | undefined;
  /** What a command printed (`info breakpoints`, `diff`, `help`), shown until a key. */
  output: { title: string; lines: string[]; scroll: number } | undefined;
  /** A running scan: its name, and the flag Ctrl-C sets. */
  busy: { what: string; cancelled: boolean; from: number } | undefined;
  lastFind: StepQuery | undefined;
  /** Runs pane: show only runs with this verdict. */
  runFilter: string | undefined;
  /** Maps pane: show the difference from the start of the run. */
  mapDiff = false;
  /** `w` followed a value here; pressing `w` again follows this operand. */
  chain: { target: WriteTarget; label: string } | undefined;
  columns: number;
  rows: number;
  /** Steps a scan examines before it lets the event loop turn (and Ctrl-C in). */
  scanSlice = SCAN_SLICE;
  /** Bytes per hex-dump row of the stack and packet panes (the UI sets them from the panes' widths). */
  readonly bytesPerRow = { stack: 16, packet: 16 };
  /** Set by `q` (and Ctrl-C when nothing runs): the UI exits. */
  quit = false;
  /** Bumped on every change; the UI draws when it moves. */
  version = 0;
  private readonly listeners = new Set<() => void>();
  /** Recent states by step, oldest first. */
  private readonly states = new Map<number, StepState>();
  private prefetching = false;
  private lastDrawn: number | undefined;
  private idleWaiters: (() => void)[] = [];
  private executed = new Map<number, Set<number>>();
  /** The run whose executed pcs are being collected in the background. */
  private executing: number | undefined;

  constructor(trace: TraceView, opts: DebuggerOptions = {}) {
    if (trace.lastStep < 0 || trace.runs.length === 0) throw new DebuggerError(`${trace.path}: the trace holds no steps`);
    this.trace = trace;
    this.btf = opts.btf;
    this.sourceDirs = opts.sourceDirs ?? [];
    this.columns = opts.columns ?? 80;
    this.rows = opts.rows ?? 24;
    if (opts.run !== undefined) {
      const r = trace.runs[opts.run];
      if (!r) throw new DebuggerError(`--run ${opts.run}: the trace has runs 0..${trace.runs.length - 1}`);
      this.step = r.firstStep;
    }
    if (opts.at !== undefined) {
      if (!Number.isInteger(opts.at) || opts.at < 0 || opts.at > trace.lastStep) throw new DebuggerError(`--at ${opts.at}: the trace has steps 0..${trace.lastStep}`);
      this.step = opts.at;
    }
  }

  // ---- observation ----

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Tells the UI something changed. */
  changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
    if (!this.busy) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** Resolves when no scan runs. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((res) => this.idleWaiters.push(res));
  }

  /** The state at the cursor, rebuilt once per step (a few recent and prefetched ones are kept). */
  current(): StepState {
    return this.stateAt(this.step);
  }

  /**
   * The state to draw: the cursor's, or, when the trace cannot rebuild it (a corrupt chunk of a
   * damaged file), the last one drawn, with the cursor back there and the reason said.
   */
  drawable(): StepState {
    try {
      const st = this.current();
      this.lastDrawn = this.step;
      return st;
    } catch (e) {
      if (!(e instanceof RewindError) || this.lastDrawn === undefined || this.lastDrawn === this.step) throw e;
      this.say(`step ${this.step}: ${e.message}`, true);
      this.step = this.lastDrawn;
      return this.current();
    }
  }

  private stateAt(step: number): StepState {
    let st = this.states.get(step);
    if (st) {
      // Refresh its place in the insertion order (the oldest is dropped first).
      this.states.delete(step);
    } else st = this.trace.state(step);
    this.states.set(step, st);
    if (this.states.size > STATES_KEPT) this.states.delete(this.states.keys().next().value!);
    return st;
  }

  /**
   * Builds the states one step either side of the cursor while nothing else happens, so that the
   * next s or S draws at once even when the trace rebuilds states slowly. The UI calls it after a frame.
   */
  prefetch(): void {
    if (this.prefetching) return;
    this.prefetching = true;
    setImmediate(() => {
      this.prefetching = false;
      const at = this.step;
      for (const s of [at + 1, at - 1]) {
        if (this.step !== at || this.busy || this.quit) return;
        if (s >= 0 && s <= this.trace.lastStep && !this.states.has(s)) {
          let st: StepState;
          try {
            st = this.trace.state(s);
          } catch {
            // A step the trace cannot rebuild is reported when it is shown, not here.
            return;
          }
          this.states.set(s, st);
          if (this.states.size > STATES_KEPT) this.states.delete(this.states.keys().next().value!);
          // Let a key that arrived meanwhile be handled before the next one.
          if (s === at + 1) return void this.prefetch();
        }
      }
    });
  }

  position(step = this.step): StepPosition {
    return this.trace.position(step);
  }

  run(step = this.step): TraceRun {
    return this.trace.runOf(step);
  }

  /**
   * The pcs the cursor's run executed, for the disassembly. Short runs are scanned at once; longer
   * ones in the background, a slice per turn of the event loop (undefined until done, and for runs
   * over EXECUTED_MAX steps).
   */
  executedPcs(): Set<number> | undefined {
    const run = this.run();
    const set = this.executed.get(run.index);
    if (set) return set;
    if (run.lastStep - run.firstStep <= EXECUTED_SYNC) {
      const out = new Set<number>();
      for (let s = run.firstStep; s < run.lastStep; s++) {
        const p = this.trace.position(s);
        if (p.program === run.program) out.add(p.pc);
      }
      this.executed.set(run.index, out);
      return out;
    }
    if (this.executing !== run.index && run.lastStep - run.firstStep <= EXECUTED_MAX) this.scanExecuted(run);
    return undefined;
  }

  private scanExecuted(run: TraceRun): void {
    this.executing = run.index;
    const out = new Set<number>();
    let s = run.firstStep;
    const slice = () => {
      if (this.executing !== run.index || this.quit) return;
      const end = Math.min(run.lastStep, s + SCAN_SLICE);
      for (; s < end; s++) {
        const p = this.trace.position(s);
        if (p.program === run.program) out.add(p.pc);
      }
      if (s < run.lastStep) {
        setImmediate(slice);
        return;
      }
      this.executed.set(run.index, out);
      this.executing = undefined;
      this.changed();
    };
    setImmediate(slice);
  }

  say(text: string, error = false): void {
    this.message = { text, error };
  }

  // ---- moving ----

  /** Moves the cursor; source and disassembly follow it again. */
  goto(step: number): void {
    const s = Math.max(0, Math.min(this.trace.lastStep, Math.trunc(step)));
    if (s !== this.step) this.chain = undefined;
    this.step = s;
    this.follow = true;
  }

  gotoRun(k: number): void {
    const r = this.trace.runs[k];
    if (!r) throw new DebuggerError(`no run ${k}: the trace has runs 0..${this.trace.runs.length - 1}`);
    this.goto(r.firstStep);
  }

  private runsShown(): TraceRun[] {
    return this.runFilter === undefined ? [...this.trace.runs] : this.trace.runs.filter((r) => r.verdict === this.runFilter);
  }

  /** `]` and `[`: the first step of the next / previous run (of the filtered verdict, when the runs list is filtered). */
  nextRun(dir: 1 | -1): void {
    const cur = this.run().index;
    const runs = this.runsShown();
    const r = dir > 0 ? runs.find((x) => x.index > cur) : [...runs].reverse().find((x) => x.index < cur);
    if (!r) {
      this.say(dir > 0 ? 'no later run' : 'no earlier run' + (this.runFilter ? ` with verdict ${this.runFilter}` : ''));
      return;
    }
    this.goto(r.firstStep);
  }

  /**
   * Scans steps from `from` (exclusive) towards `to` (inclusive) for the first that `test` accepts,
   * in slices, yielding to the event loop between them. Returns the step, `to` when none matched
   * and `stopAtEnd`, or undefined when none matched or the scan was interrupted.
   */
  private async scan(from: number, to: number, test: (p: StepPosition) => boolean): Promise<number | undefined> {
    const dir = to >= from ? 1 : -1;
    let s = from;
    while (s !== to) {
      const end = dir > 0 ? Math.min(to, s + this.scanSlice) : Math.max(to, s - this.scanSlice);
      while (s !== end) {
        s += dir;
        if (test(this.trace.position(s))) return s;
      }
      if (s !== to) {
        await new Promise<void>((res) => setImmediate(res));
        if (this.busy?.cancelled) return undefined;
      }
    }
    return undefined;
  }

  /** Where a motion lands from `from`, or undefined (interrupted / nowhere to go). */
  private async motionTarget(m: Motion, from: number): Promise<number | undefined> {
    const t = this.trace;
    const p = t.position(from);
    const run = t.runOf(from);
    switch (m) {
      case 'next':
        if (from >= t.lastStep) return undefined;
        return (await this.scan(from, t.lastStep, (q) => q.depth <= p.depth || q.run !== p.run)) ?? undefined;
      case 'prev':
        if (from <= 0) return undefined;
        return (await this.scan(from, 0, (q) => q.depth <= p.depth || q.run !== p.run)) ?? undefined;
      case 'finish':
        if (p.depth === 0) return from === run.lastStep ? undefined : run.lastStep;
        return (await this.scan(from, run.lastStep, (q) => q.depth < p.depth)) ?? run.lastStep;
      case 'unfinish':
        if (p.depth === 0) return from === run.firstStep ? undefined : run.firstStep;
        return (await this.scan(from, run.firstStep, (q) => q.depth < p.depth)) ?? run.firstStep;
      case 'continue':
      case 'reverse':
        return this.continueTarget(m === 'continue' ? 1 : -1, from);
      case 'find-next':
      case 'find-prev':
        return this.findTarget(m === 'find-next' ? 1 : -1, from);
    }
  }

  /** continue / reverse-continue: the nearest breakpoint hit, watched write or run boundary. */
  private async continueTarget(dir: 1 | -1, from: number): Promise<number | undefined> {
    const t = this.trace;
    let run = t.runOf(from);
    // At a run's boundary already: go on through the next (previous) run.
    if (dir > 0 && from === run.lastStep) {
      if (run.index + 1 >= t.runs.length) return undefined;
      run = t.runs[run.index + 1]!;
    } else if (dir < 0 && from === run.firstStep) {
      if (run.index === 0) return undefined;
      run = t.runs[run.index - 1]!;
    }
    let limit = dir > 0 ? run.lastStep : run.firstStep;
    let watched: Watchpoint | undefined;
    for (const w of this.watchpoints) {
      // A write "at step s" is the instruction that led to s: its value shows at s.
      const s = dir > 0 ? t.nextWrite(w.target, from) : from > 0 ? t.prevWrite(w.target, from - 1) : undefined;
      if (s !== undefined && (dir > 0 ? s <= limit : s >= limit)) {
        limit = s;
        watched = w;
      }
    }
    const bps = this.breakpoints;
    if (bps.length > 0) {
      let hit: Breakpoint | undefined;
      let condError: string | undefined;
      const found = await this.scan(from, limit, (q) => {
        for (const b of bps) {
          if (!b.pcs.has(q.pc) || (b.program !== undefined && b.program !== q.program)) continue;
          if (b.cond) {
            try {
              if (!b.cond.test(t.state(q.step))) continue;
            } catch (e) {
              // A condition that cannot be evaluated here (a load outside the packet) stops, and says why.
              if (!(e instanceof ExprError)) throw e;
              condError = `breakpoint ${b.id}: ${e.message}`;
            }
          }
          hit = b;
          return true;
        }
        return false;
      });
      if (this.busy?.cancelled) return undefined;
      if (found !== undefined && hit) {
        hit.hits++;
        this.say(`breakpoint ${hit.id} (${hit.spec}) at step ${found}${condError ? `; ${condError}` : ''}`);
        return found;
      }
    }
    if (watched) {
      watched.hits++;
      this.say(`watchpoint ${watched.id} (${watched.spec}) written at step ${limit}`);
    } else this.say(dir > 0 ? `end of run ${run.index} (${run.verdict})` : `start of run ${run.index}`);
    return limit === from ? undefined : limit;
  }

  private async findTarget(dir: 1 | -1, from: number): Promise<number | undefined> {
    const q = this.lastFind;
    if (!q) {
      this.say('no search yet: :find helper=NAME | pc=N | line=L | map=NAME op=OP | verdict=V', true);
      return undefined;
    }
    let found: number | undefined;
    if (q.kind === 'pc' || q.kind === 'line') {
      // Positions are cheap to scan in slices; lines map to their pcs once.
      const pcs = q.kind === 'pc' ? new Set([q.pc]) : this.linePcs(q.line, q.file);
      found = await this.scan(from, dir > 0 ? this.trace.lastStep : 0, (p) => pcs.has(p.pc) && (q.kind !== 'pc' || q.program === undefined || q.program === p.program));
    } else {
      found = this.trace.find(q, from, dir);
    }
    if (this.busy?.cancelled) return undefined;
    if (found === undefined) this.say(`${describeQuery(q)}: no match ${dir > 0 ? 'after' : 'before'} step ${from}`, true);
    else this.say(`${describeQuery(q)}: step ${found} (; next, , previous)`);
    return found;
  }

  /** The pcs whose line info is `line` (of `file` when given, matched by its end). */
  linePcs(line: number, file?: string, program?: string): Set<number> {
    const out = new Set<number>();
    for (const p of this.trace.programs) {
      if (program !== undefined && p.name !== program) continue;
      for (const l of p.lines) if (l.line === line && (file === undefined || l.file === file || l.file.endsWith('/' + file) || file.endsWith('/' + l.file.replace(/^\.\//, '')))) out.add(l.pc);
    }
    return out;
  }

  /** Runs a motion `count` times; long ones keep the UI responsive and stop on Ctrl-C. */
  async motion(m: Motion, count = 1): Promise<void> {
    if (this.busy) return;
    this.busy = { what: MOTION_NAMES[m], cancelled: false, from: this.step };
    this.changed();
    let at = this.step;
    let moved = 0;
    try {
      for (let i = 0; i < count; i++) {
        const s = await this.motionTarget(m, at);
        if (s === undefined) break;
        at = s;
        moved++;
      }
    } catch (e) {
      this.say(e instanceof Error ? e.message : String(e), true);
    }
    const cancelled = this.busy.cancelled;
    this.busy = undefined;
    if (cancelled) this.say(`${MOTION_NAMES[m]} interrupted; stayed at step ${this.step}`);
    else if (moved === 0 && !this.message) this.say(`${MOTION_NAMES[m]}: nowhere to go from step ${at}`);
    else if (moved > 0) this.goto(at);
    this.changed();
  }

  /** Ctrl-C: stops a running scan. Returns false when none ran (the UI then quits). */
  interrupt(): boolean {
    if (!this.busy) return false;
    this.busy.cancelled = true;
    return true;
  }

  // ---- breakpoints, watchpoints ----

  /** `break <pc | file:line | function | program:pc> [if <condition>]`. */
  addBreakpoint(text: string): Breakpoint {
    const m = /^(.*?)(?:\s+if\s+(.+))?$/.exec(text.trim())!;
    const spec = m[1]!.trim();
    if (!spec) throw new DebuggerError('break: say where: a pc, file:line or a function');
    const cond = m[2] !== undefined ? Expr.parse(m[2]) : undefined;
    let pcs = new Set<number>();
    let program: string | undefined;
    const line = /^(.+):(\d+)$/.exec(spec);
    if (/^(0x[0-9a-f]+|\d+)$/i.test(spec)) {
      pcs.add(Number(spec));
      program = this.position().program;
      const prog = this.trace.programs.find((p) => p.name === program)!;
      if (Number(spec) >= prog.code.length) throw new DebuggerError(`break ${spec}: ${program} has pcs 0..${prog.code.length - 1}`);
    } else if (line && this.trace.programs.some((p) => p.name === line[1])) {
      program = line[1]!;
      pcs.add(Number(line[2]));
    } else if (line) {
      pcs = this.linePcs(Number(line[2]), line[1]);
      if (pcs.size === 0) throw new DebuggerError(`break ${spec}: no instruction has line ${line[2]} of ${line[1]}`);
    } else if (/^\d+$/.test(spec.replace(/^line\s*/, ''))) {
      pcs = this.linePcs(Number(spec));
    } else {
      for (const p of this.trace.programs) {
        const f = p.funcs.find((x) => x.name === spec);
        if (f) {
          pcs.add(f.start);
          program = p.name;
          break;
        }
      }
      if (pcs.size === 0) throw new DebuggerError(`break ${spec}: no function, pc or file:line of that name (functions: ${this.trace.programs.flatMap((p) => p.funcs.map((f) => f.name)).join(', ')})`);
    }
    const b: Breakpoint = { id: this.nextId++, spec: spec + (cond ? ` if ${cond.text}` : ''), program, pcs, cond, hits: 0 };
    this.breakpoints.push(b);
    return b;
  }

  /** Toggles a breakpoint on a pc of the cursor's program (the `b` key in source and disassembly). */
  toggleBreakpointAt(pcs: number[], spec: string): void {
    const program = this.position().program;
    const existing = this.breakpoints.find((b) => !b.cond && pcs.some((pc) => b.pcs.has(pc)) && (b.program === undefined || b.program === program));
    if (existing) {
      this.deleteBreakpoint(existing.id);
      this.say(`deleted breakpoint ${existing.id} (${existing.spec})`);
      return;
    }
    const b: Breakpoint = { id: this.nextId++, spec, program, pcs: new Set(pcs), hits: 0 };
    this.breakpoints.push(b);
    this.say(`breakpoint ${b.id} at ${spec}`);
  }

  /** `watch <register | *(u32 *)(address) | map NAME[key]>`. */
  addWatchpoint(text: string): Watchpoint {
    const spec = text.trim();
    let target: WriteTarget;
    const map = /^map\s+([^\s[]+)\s*\[\s*(.+?)\s*\]$/.exec(spec);
    if (map) {
      const def = this.trace.maps.find((d) => d.name === map[1]);
      if (!def) throw new DebuggerError(`watch: no map '${map[1]}' (maps: ${this.trace.maps.map((d) => d.name).join(', ')})`);
      target = { kind: 'map', map: def.name, key: parseKey(map[2]!, def.keySize) };
    } else {
      const e = Expr.parse(spec);
      const reg = e.register;
      if (reg !== undefined) target = { kind: 'reg', reg };
      else {
        const at = e.load(this.current());
        if (!at) throw new DebuggerError(`watch ${spec}: watch a register (r3), memory (*(u32 *)(r10 - 8)) or a map entry (map NAME[key])`);
        if (at.ptr.region < 0) throw new DebuggerError(`watch ${spec}: no register points to the ${at.ptr.kind} at step ${this.step}, so its region is unknown here`);
        if (at.ptr.origin < 0) throw new DebuggerError(`watch ${spec}: where the ${at.ptr.kind}'s origin is in its region is unknown at step ${this.step}`);
        target = { kind: 'mem', region: at.ptr.region, offset: at.ptr.origin + at.ptr.offset, size: at.size };
      }
    }
    const w: Watchpoint = { id: this.nextId++, spec, target, hits: 0 };
    this.watchpoints.push(w);
    return w;
  }

  deleteBreakpoint(id: number): void {
    const i = this.breakpoints.findIndex((b) => b.id === id);
    const j = this.watchpoints.findIndex((w) => w.id === id);
    if (i >= 0) this.breakpoints.splice(i, 1);
    else if (j >= 0) this.watchpoints.splice(j, 1);
    else throw new DebuggerError(`delete ${id}: no breakpoint or watchpoint ${id}`);
  }

  // ---- where did this come from ----

  /** The target under the selection of the focused pane (a register, a stack or packet byte, a map entry). */
  selectedTarget(): { target: WriteTarget; label: string } | undefined {
    const s = this.current();
    const sel = this.selection[this.focus];
    switch (this.focus) {
      case 'registers':
        return { target: { kind: 'reg', reg: sel }, label: `r${sel}` };
      case 'stack': {
        const rows = paneRows.stack(this, s);
        const per = this.bytesPerRow.stack;
        const row = rows[Math.floor(sel / per)];
        if (!row || row.header !== undefined || row.depth === undefined) return undefined;
        const offset = row.offset + (sel % per);
        // Stack frame d is region d; write targets count from the frame's lowest byte (r10 is at FRAME_SIZE).
        return { target: { kind: 'mem', region: row.depth, offset: FRAME_SIZE + offset, size: 1 }, label: `${row.depth === 0 ? 'stack' : `stack#${row.depth}`}${offset}` };
      }
      case 'packet': {
        const { region, origin } = regionOf(s, 'packet');
        if (region < 0) return undefined;
        return { target: { kind: 'mem', region, offset: origin + sel, size: 1 }, label: `pkt+${sel}` };
      }
      case 'maps': {
        const rows = paneRows.maps(this, s);
        const row = rows[sel];
        if (!row?.key) return undefined;
        return { target: { kind: 'map', map: row.map, key: hexBytes(row.key) }, label: `${row.map}[${row.key}]` };
      }
      default:
        return undefined;
    }
  }

  /** `w`: jumps to the instruction that produced the selected value; again follows what it read. */
  whereFrom(): void {
    const sel = this.chain ?? this.selectedTarget();
    if (!sel) {
      this.say(this.focus === 'packet' ? 'no register points to the packet at this step: step to where one does' : 'w: select a register, a stack or packet byte, or a map entry first', true);
      return;
    }
    const o = this.trace.origin(sel.target, this.step);
    if (!o) {
      this.say(`${sel.label}: not written since the run began (an input of the run)`);
      this.chain = undefined;
      return;
    }
    const run = this.run();
    // Show the producing instruction as the current one: the step before its write, with its operands in place.
    const at = o.step - 1 >= this.trace.runOf(o.step).firstStep ? o.step - 1 : o.step;
    this.goto(at);
    const next = o.operands.find((x) => x.kind === 'mem') ?? o.operands.find((x) => x.kind === 'reg' && x.reg !== 10) ?? o.operands[0];
    const from = o.helper ? `${o.helper}()` : o.insn;
    if (next) {
      const label = targetLabel(next, this.current());
      this.chain = { target: next, label };
      if (next.kind === 'reg') {
        this.focus = 'registers';
        this.selection.registers = next.reg;
      }
      this.say(`${sel.label} ← step ${o.step}: ${from}${run.index !== this.run().index ? ` (run ${this.run().index})` : ''}; w again follows ${label}`);
    } else {
      this.chain = undefined;
      this.say(`${sel.label} ← step ${o.step}: ${from} (a constant)`);
    }
  }

  // ---- keys ----

  /** One key press, by name: a character, or right/left/up/down/pageup/pagedown/home/end/tab/backtab/return/escape/backspace/ctrl-c. */
  key(k: string): void {
    try {
      this.dispatch(k);
    } catch (e) {
      if (!(e instanceof RewindError)) throw e;
      this.say(e.message, true);
    }
    this.changed();
  }

  private dispatch(k: string): void {
    if (k === 'ctrl-c') {
      if (!this.interrupt()) {
        if (this.mode === 'command') {
          this.mode = 'normal';
          this.commandLine = '';
        } else this.quit = true;
      }
      return;
    }
    if (this.busy) {
      this.say(`${this.busy.what} running from step ${this.busy.from}: Ctrl-C interrupts`);
      return;
    }
    if (this.mode === 'command') return this.commandKey(k);
    if (this.mode === 'help' || this.mode === 'output') {
      if (this.mode === 'output' && this.output && (k === 'down' || k === 'up' || k === 'pagedown' || k === 'pageup')) {
        const page = Math.max(1, this.rows - 6);
        const d = k === 'down' ? 1 : k === 'up' ? -1 : k === 'pagedown' ? page : -page;
        this.output.scroll = Math.max(0, Math.min(Math.max(0, this.output.lines.length - page), this.output.scroll + d));
        return;
      }
      this.mode = 'normal';
      this.output = undefined;
      if (k === 'escape' || k === 'q' || k === '?' || k === 'return') return;
    }
    this.message = undefined;
    if (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      if (!/^[a-zA-Z]$/.test(k)) {
        this.say(`${p === 'm' ? 'm' : "'"} needs a letter`, true);
        return;
      }
      if (p === 'm') {
        this.marks.set(k, this.step);
        this.say(`mark ${k} at step ${this.step}`);
      } else {
        const s = this.marks.get(k);
        if (s === undefined) this.say(`no mark ${k} (m${k} sets it)`, true);
        else this.goto(s);
      }
      return;
    }
    // A digit focuses its pane (1-8) at once and also starts a count; when a motion follows
    // (25s, 3n, 10g), the digits were a count and the focus goes back to where it was.
    if (/^[0-9]$/.test(k)) {
      if (this.count === '') {
        this.beforeCount = { focus: this.focus, slot: this.slot, slot2: this.slot2 };
        if (k !== '0' && k !== '9') this.focusPane(PANES[Number(k) - 1]!);
      }
      if (this.count !== '' || k !== '0') this.count += k;
      return;
    }
    let count: number | undefined;
    if (this.count !== '' && COUNTED_KEYS.has(k)) {
      count = Number(this.count);
      if (this.beforeCount) Object.assign(this, this.beforeCount);
    }
    this.count = '';
    this.beforeCount = undefined;
    const n = count ?? 1;
    switch (k) {
      case 's':
      case 'right':
        this.goto(this.step + n);
        return;
      case 'S':
      case 'left':
        this.goto(this.step - n);
        return;
      case 'n':
        void this.motion('next', n);
        return;
      case 'N':
        void this.motion('prev', n);
        return;
      case 'f':
        void this.motion('finish', n);
        return;
      case 'F':
        void this.motion('unfinish', n);
        return;
      case 'c':
        void this.motion('continue', n);
        return;
      case 'C':
        void this.motion('reverse', n);
        return;
      case ';':
        void this.motion('find-next', n);
        return;
      case ',':
        void this.motion('find-prev', n);
        return;
      case ']':
        for (let i = 0; i < n; i++) this.nextRun(1);
        return;
      case '[':
        for (let i = 0; i < n; i++) this.nextRun(-1);
        return;
      case 'g':
      case 'home':
        this.goto(count ?? 0);
        return;
      case 'G':
      case 'end':
        this.goto(count ?? this.trace.lastStep);
        return;
      case 'm':
      case "'":
        this.pending = k;
        return;
      case 'up':
      case 'k':
        return this.moveSelection(-n * this.rowBytes());
      case 'down':
      case 'j':
        return this.moveSelection(n * this.rowBytes());
      case 'h':
        return this.moveSelection(-n);
      case 'l':
        return this.moveSelection(n);
      case 'pageup':
        return this.moveSelection(-this.pageSize() * this.rowBytes());
      case 'pagedown':
        return this.moveSelection(this.pageSize() * this.rowBytes());
      case 'tab':
        this.focusPane(PANES[(PANES.indexOf(this.focus) + 1) % PANES.length]!);
        return;
      case 'backtab':
        this.focusPane(PANES[(PANES.indexOf(this.focus) + PANES.length - 1) % PANES.length]!);
        return;
      case 'w':
        this.whereFrom();
        return;
      case 'b':
        return this.breakpointKey();
      case 'return':
        return this.enterKey();
      case 'v':
        if (this.focus === 'runs') return this.cycleRunFilter();
        this.say('v filters the runs list by verdict (focus it with 8)', true);
        return;
      case 'd':
        if (this.focus === 'maps') {
          this.mapDiff = !this.mapDiff;
          this.say(this.mapDiff ? `maps: difference from the start of run ${this.run().index}` : 'maps: entries at this step');
          return;
        }
        this.say('d shows the maps\' difference from the run start (focus the maps pane with 6)', true);
        return;
      case ':':
        this.mode = 'command';
        this.commandLine = '';
        this.historyAt = this.history.length;
        return;
      case '?':
        this.mode = 'help';
        return;
      case 'q':
        this.quit = true;
        return;
      case 'escape':
        this.chain = undefined;
        this.follow = true;
        return;
      default:
        if (k.length === 1) this.say(`'${k}' does nothing here; ? lists the keys`, true);
    }
  }

  /** What ↑/↓ move by: a row of bytes in the hex panes, else one row. */
  private rowBytes(): number {
    return this.focus === 'stack' ? this.bytesPerRow.stack : this.focus === 'packet' ? this.bytesPerRow.packet : 1;
  }

  private pageSize(): number {
    return Math.max(1, Math.floor((this.rows - 4) / 2) - 2);
  }

  focusPane(p: PaneId): void {
    this.focus = p;
    this.chain = undefined;
    // Which panes the layout shows (ui/App.tsx): three columns from 120 columns with two slots, else one slot.
    const wide = this.columns >= 120;
    const visible: PaneId[] = wide ? ['source', 'disasm', 'registers', 'stack', this.slot, ...(this.rows >= 23 ? [this.slot2] : [])] : ['source', 'disasm', 'registers', this.slot];
    if (!visible.includes(p)) {
      if (wide && this.slot === 'stack') this.slot2 = p;
      else this.slot = p;
    }
  }

  private moveSelection(d: number): void {
    const p = this.focus;
    const s = this.current();
    if (p === 'source' || p === 'disasm') {
      if (this.follow) this.selection[p] = paneRows.cursorRow(this, s, p);
      this.follow = false;
    }
    const n = selectableCount(this, s, p);
    this.selection[p] = Math.max(0, Math.min(n - 1, this.selection[p] + d));
    this.chain = undefined;
  }

  private breakpointKey(): void {
    const s = this.current();
    if (this.focus === 'disasm') {
      const row = paneRows.disasm(this, s)[this.follow ? paneRows.cursorRow(this, s, 'disasm') : this.selection.disasm];
      if (row?.pc !== undefined) this.toggleBreakpointAt([row.pc], String(row.pc));
      return;
    }
    if (this.focus === 'source') {
      const rows = paneRows.source(this, s);
      const row = rows.lines[this.follow ? paneRows.cursorRow(this, s, 'source') : this.selection.source];
      if (!row) return;
      const pcs = [...this.linePcs(row.line, rows.file)];
      if (pcs.length === 0) this.say(`line ${row.line} has no instructions`, true);
      else this.toggleBreakpointAt(pcs, `${baseName(rows.file ?? '')}:${row.line}`);
      return;
    }
    this.say('b sets a breakpoint on the selected line (source) or instruction (disassembly)', true);
  }

  private enterKey(): void {
    const s = this.current();
    if (this.focus === 'runs') {
      const r = paneRows.runs(this)[this.selection.runs];
      if (r) this.goto(r.run.firstStep);
    } else if (this.focus === 'events') {
      const e = paneRows.events(this, s)[this.selection.events];
      if (e) this.goto(e.step);
    }
  }

  private cycleRunFilter(): void {
    const verdicts = [...new Set(this.trace.runs.map((r) => r.verdict))];
    const i = this.runFilter === undefined ? -1 : verdicts.indexOf(this.runFilter);
    this.runFilter = i + 1 < verdicts.length ? verdicts[i + 1] : undefined;
    this.selection.runs = 0;
    this.say(this.runFilter ? `runs: only ${this.runFilter}` : 'runs: all');
  }

  private commandKey(k: string): void {
    if (k === 'escape') {
      this.mode = 'normal';
      this.commandLine = '';
    } else if (k === 'return') {
      const line = this.commandLine.trim();
      this.mode = 'normal';
      this.commandLine = '';
      if (line) {
        this.history.push(line);
        this.command(line);
      }
    } else if (k === 'backspace') {
      if (this.commandLine === '') this.mode = 'normal';
      this.commandLine = this.commandLine.slice(0, -1);
    } else if (k === 'up' || k === 'down') {
      this.historyAt = Math.max(0, Math.min(this.history.length, this.historyAt + (k === 'up' ? -1 : 1)));
      this.commandLine = this.history[this.historyAt] ?? '';
    } else if (k === 'space') this.commandLine += ' ';
    else if ([...k].length === 1 && k >= ' ') this.commandLine += k;
  }

  /** Runs a `:` command (without the colon). */
  command(text: string): void {
    try {
      runCommand(this, text);
    } catch (e) {
      if (!(e instanceof RewindError)) throw e;
      this.say(e.message, true);
    }
    this.changed();
  }

  show(title: string, lines: string[]): void {
    this.mode = 'output';
    this.output = { title, lines, scroll: 0 };
  }
}

export function describeQuery(q: StepQuery): string {
  switch (q.kind) {
    case 'pc':
      return `pc=${q.pc}`;
    case 'line':
      return `line=${q.file ? `${q.file}:` : ''}${q.line}`;
    case 'helper':
      return `helper=${q.name}`;
    case 'map':
      return `map=${q.map}${q.op ? ` op=${q.op}` : ''}`;
    case 'verdict':
      return `verdict=${q.verdict}`;
  }
}

/** A write target as Rewind writes places: `r3`, `stack-8`, `pkt+23`, `flows[0a000001]`. */
export function targetLabel(t: WriteTarget, s?: StepState): string {
  if (t.kind === 'reg') return `r${t.reg}`;
  if (t.kind === 'map') return `${t.map}[${toHex(t.key)}]`;
  const n = `${t.size} byte${t.size === 1 ? '' : 's'} at `;
  // Stack frame d is region d, its origin r10 at FRAME_SIZE; other regions are named by a register pointing into them.
  if (t.region < 8) return `${n}${t.region === 0 ? 'stack' : `stack#${t.region}`}${t.offset - FRAME_SIZE}`;
  const i = s ? s.prov.findIndex((p) => p?.region === t.region) : -1;
  if (s && i >= 0) {
    const p = s.prov[i]!;
    const origin = Number(s.regs[i]! & 0xffffffffn) - p.offset;
    const label = p.text.replace(/[+-]\d+$/, '');
    const d = t.offset - origin;
    return `${n}${label}${d < 0 ? '' : '+'}${d}`;
  }
  return `${n}region ${t.region}+${t.offset}`;
}

/** A map key as typed: an integer (little-endian, the key's size) or hex bytes. */
export function parseKey(text: string, size: number): Uint8Array {
  const t = text.replace(/\s+/g, '');
  if (/^-?\d+$/.test(t) || (/^0x[0-9a-f]+$/i.test(t) && t.length - 2 <= size * 2 && size <= 8)) {
    const v = BigInt.asUintN(size * 8, BigInt(t));
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) out[i] = Number((v >> BigInt(8 * i)) & 0xffn);
    return out;
  }
  const hex = t.replace(/^0x/i, '');
  if (!/^([0-9a-f]{2})+$/i.test(hex)) throw new DebuggerError(`'${text}': a key is an integer or hex bytes`);
  const out = hexBytes(hex);
  if (out.length !== size) throw new DebuggerError(`'${text}': the map's keys are ${size} bytes, this is ${out.length}`);
  return out;
}

export function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
