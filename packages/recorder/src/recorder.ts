// Records a Session's runs into a .rwt trace: the programs and maps once (header frame), then
// per run a "run" frame (its inputs and registers at start) and one "chunk" frame per slice of
// RECORD_SLICE instructions (the step records of steps/instrument.ts plus what happened out of
// line: helper calls, their writes, map mutations, value regions, tail calls, callbacks). A
// reader rebuilds every step from these without executing the program. See FORMAT.md,
// "Chunk payloads".

import { encode, Session, type LoadedProgram, type MapDef, type Program, type RunInput, type RunOutcome, type SessionOptions } from '@rewind/vm';
import { TraceWriter } from './container/writer.js';
import { packPlainMap, type PlainMap, type PlainValue } from './container/plain.js';
import { StepBuffer, stepInstrumentation } from './steps/instrument.js';

/** Instructions per chunk: predictions start over at every chunk (a keyframe of the step records). */
export const RECORD_SLICE = 65_536;

export interface RecorderOptions {
  programs: readonly Program[];
  maps: readonly MapDef[];
  /** The session's options; `instrument` is the recorder's own. */
  sessionOptions?: Omit<SessionOptions, 'instrument'>;
  /** Stored in the header frame under `meta.user`. */
  meta?: PlainMap;
  /** Replace an existing trace file. */
  overwrite?: boolean;
}

/** A run as the end frame lists it. */
export interface RecordedRun {
  run: number;
  program: string;
  firstStep: number;
  lastStep: number;
  verdict: string;
}

type RunFn = LoadedProgram['compiled']['run'];
type InvokeFn = LoadedProgram['compiled']['invoke'];

/** Eight little-endian bytes of register i (lo, hi halves in R[2i], R[2i + 1]). */
function reg8(R: ArrayLike<number>, i: number): Uint8Array {
  const out = new Uint8Array(8);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, R[2 * i]!, true);
  dv.setInt32(4, R[2 * i + 1]!, true);
  return out;
}

/** A value as plain MessagePack data: undefined members dropped, typed arrays copied as bin. */
function plain(v: unknown): PlainValue {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof Uint8Array) return v.slice();
  if (Array.isArray(v)) return v.map(plain);
  const out: Record<string, PlainValue> = {};
  for (const [k, x] of Object.entries(v as object)) if (x !== undefined && typeof x !== 'function') out[k] = plain(x);
  return out;
}

export class Recorder {
  readonly session: Session;
  private readonly writer: TraceWriter;
  private readonly buf: StepBuffer;
  /** Events of the slice being recorded. */
  private events: PlainMap[] = [];
  private readonly runs: RecordedRun[] = [];
  /** The next run's first step across the trace. */
  private nextStep = 0;
  // State of the run being recorded.
  private runIndex = -1;
  private runFirst = 0;
  private sliceFrom = 0;
  private runFrame: PlainMap | undefined;
  private startRegs: Uint8Array[] | undefined;
  private startRegions: PlainMap[] | undefined;
  /** Where the current slice's first instruction is: the program and pc compiled.run was entered with. */
  private sliceStart: { program: string; pc: number } | undefined;

  private constructor(path: string, opts: RecorderOptions) {
    const largest = Math.max(1, ...opts.programs.map((p) => p.code.length));
    const buf = (this.buf = new StepBuffer(largest));
    // The StepBuffer must be on the machine before any program compiles: the prologue reads vm.rec.
    const session = new Session(opts.programs, opts.maps, { ...opts.sessionOptions, instrument: stepInstrumentation() });
    (session.machine as unknown as { rec: StepBuffer }).rec = buf;
    this.session = session;
    // Compile every program now, so that no later load replaces the wrapped helpers (LoadedProgram sets machine.helperTable).
    const loaded = opts.programs.map((p) => session.program(p.name));
    for (const lp of loaded) this.wrapCompiled(lp);
    this.wrapHelpers();
    const m = session.machine;
    m.onWrite = (r, offset, bytes) => {
      this.events.push({ t: 'write', step: buf.step, region: r.index, offset, bytes: bytes.slice() });
    };
    session.maps.forEach((map, mapIndex) => {
      map.onMutate = (ev) => this.events.push({ ...(plain(ev) as PlainMap), t: 'map', step: buf.step, map: mapIndex });
    });
    session.mapSpace.onRegion = (index, mapIndex, slot) => {
      const r = m.mem.regions[index];
      this.events.push({ t: 'region', step: buf.step, index, map: mapIndex, slot, lo: r?.lo ?? 0, hi: r?.hi ?? 0, label: r?.label ?? '' });
    };
    const meta: PlainMap = {
      programs: opts.programs.map((p) => ({
        name: p.name,
        type: p.type,
        section: p.section ?? null,
        bytecode: encode(p.code),
        funcs: p.funcs.map((f) => ({ name: f.name, start: f.start, end: f.end })),
        lines: (p.lines ?? []).map((l) => ({ pc: l.pc, file: l.file, line: l.line, col: l.col, text: l.text })),
      })),
      maps: opts.maps.map((d) => plain(d)),
      regions: this.regions(),
      slice: RECORD_SLICE,
      user: opts.meta ?? {},
    };
    this.writer = TraceWriter.create(path, { meta, overwrite: opts.overwrite });
  }

  /** Creates the trace at `path` and the session it records. */
  static create(path: string, opts: RecorderOptions): Recorder {
    return new Recorder(path, opts);
  }

  /** The regions defined now: index, kind, label, origin, lo/hi; map values with their map and slot. */
  private regions(): PlainMap[] {
    const out: PlainMap[] = [];
    for (const r of this.session.machine.mem.regions) {
      if (!r) continue;
      const e: Record<string, PlainValue> = { index: r.index, kind: r.kind, label: r.label, origin: r.origin, lo: r.lo, hi: r.hi };
      const v = this.session.mapSpace.valueOfRegion(r.index);
      if (v) {
        e.map = this.session.mapSpace.mapIndexOf(v.map);
        e.slot = v.slot;
      }
      out.push(e);
    }
    return out;
  }

  /** compiled.run is entered at the start of every slice and after a tail call; invoke for callbacks. */
  private wrapCompiled(lp: LoadedProgram): void {
    const c = lp.compiled as { run: RunFn; invoke: InvokeFn };
    const run = c.run;
    const invoke = c.invoke;
    const m = this.session.machine;
    const name = lp.program.name;
    c.run = (pc, depth, limit) => {
      if (this.startRegs === undefined) {
        this.startRegs = Array.from({ length: 11 }, (_, i) => reg8(m.R, i));
        this.startRegions = this.regions();
      }
      this.sliceStart ??= { program: name, pc };
      return run(pc, depth, limit);
    };
    c.invoke = (start, depth, args) => {
      const a = Array.from({ length: 5 }, (_, i) => reg8(args, i));
      this.events.push({ t: 'callback', step: this.buf.step, program: name, start, args: a });
      invoke(start, depth, args);
    };
  }

  private wrapHelpers(): void {
    const table = this.session.machine.helperTable;
    const buf = this.buf;
    for (let id = 0; id < table.length; id++) {
      const fn = table[id]!;
      table[id] = (m) => {
        const ev: Record<string, PlainValue> = { t: 'helper', step: buf.step, id, args: [1, 2, 3, 4, 5].map((i) => reg8(m.R, i)), r0: null };
        this.events.push(ev);
        fn(m);
        ev.r0 = reg8(m.R, 0);
      };
    }
  }

  /** Runs a program of the session on one input and records it. */
  run(programName: string, input: RunInput = {}): RunOutcome {
    if (this.writer.closed) throw new Error(`${this.writer.path}: the recorder is closed`);
    const buf = this.buf;
    this.runIndex = this.runs.length;
    this.runFirst = this.nextStep;
    this.sliceFrom = 0;
    // Map changes made from user space since the last run (step 0: before the first instruction).
    const between = this.events;
    this.events = [];
    this.startRegs = undefined;
    this.startRegions = undefined;
    this.sliceStart = undefined;
    const timeNs = input.timeNs ?? this.session.timeNs;
    this.runFrame = {
      packet: input.packet ?? null,
      ctxBytes: input.ctxBytes ?? null,
      ctx: input.ctx ? Object.fromEntries(Object.entries(input.ctx).map(([k, v]) => [k, BigInt(v)])) : null,
      mem: input.mem ?? null,
      timeNs,
      between,
    };
    buf.startRun();
    buf.tp = 0;
    buf.step = 0;
    const outcome = this.session.run(programName, input, {
      slice: RECORD_SLICE,
      onSlice: (steps) => {
        this.flush(programName, steps, undefined);
        buf.resetPredictions();
      },
      onTailCall: (p) => this.events.push({ t: 'tailcall', step: buf.step, program: p.program.name }),
    });
    this.flush(programName, outcome.steps, {
      verdict: outcome.verdict,
      retval: outcome.retval,
      r0: outcome.r0,
      steps: outcome.steps,
      program: outcome.program,
      pc: outcome.pc,
      fault: outcome.fault ? { message: outcome.fault.message, kind: outcome.fault.kind, pc: outcome.fault.pc } : null,
      warnings: plain(outcome.warnings),
      output: plain(outcome.output),
      redirect: plain(outcome.redirect),
    });
    const lastStep = this.runFirst + outcome.steps;
    this.runs.push({ run: this.runIndex, program: programName, firstStep: this.runFirst, lastStep, verdict: outcome.verdict });
    this.nextStep = lastStep + 1;
    return outcome;
  }

  /** Writes the run frame (once) and the chunk of instructions sliceFrom+1..steps of the run. */
  private flush(program: string, steps: number, outcome: PlainMap | undefined): void {
    if (this.runFrame) {
      this.writer.append(
        'run',
        { run: this.runIndex, program, firstStep: this.runFirst },
        packPlainMap({ ...this.runFrame, regs: this.startRegs ?? null, regions: this.startRegions ?? [] }, 'the run payload'),
      );
      this.runFrame = undefined;
    }
    const payload: Record<string, PlainValue> = {
      records: this.buf.take(),
      events: this.events,
      program: this.sliceStart?.program ?? program,
      pc: this.sliceStart?.pc ?? 0,
    };
    if (outcome) payload.outcome = outcome;
    this.writer.append('chunk', { run: this.runIndex, firstStep: this.runFirst + this.sliceFrom, lastStep: this.runFirst + steps }, packPlainMap(payload, 'the chunk payload'));
    this.events = [];
    this.sliceFrom = steps;
    this.sliceStart = undefined;
  }

  /** The runs recorded so far. */
  get recorded(): readonly RecordedRun[] {
    return this.runs;
  }

  /** Ends the trace: the end frame lists the runs and the total steps. */
  close(): void {
    this.writer.close({ runs: this.runs.map((r) => ({ ...r })), totalSteps: this.nextStep });
  }
}
