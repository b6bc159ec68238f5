// Reading a trace: the state at any step, rebuilt from the chunk's keyframe and the step records
// after it (walk.ts), and the questions a debugger asks (where was this written, where did this
// value come from, where is the next call of this helper). See FORMAT.md, "Rebuilding a step".

import {
  decode,
  formatInsn,
  sizeBytes,
  parseBtf,
  type Btf,
  HELPER_NAMES,
  REGION_HI_BASE,
  type Bytecode,
  type MapDef,
  type RegionKind,
} from '@rewind/vm';
import { TraceReader } from '../container/reader.js';
import { TraceCorruptError, TraceError, TraceFormatError } from '../container/errors.js';
import { unpackPlain, type PlainMap, type PlainValue } from '../container/plain.js';
import { MapState } from './mapstate.js';
import { walkChunk, WalkError, type ChunkSteps, type WalkEvent, type WalkProgram } from './walk.js';
import type {
  FrameState,
  MapsState,
  Origin,
  Provenance,
  StepPosition,
  StepQuery,
  StepState,
  TraceEvent,
  TraceFault,
  TraceProgram,
  TraceRun,
  TraceView,
  WriteTarget,
} from './types.js';

/** A chunk frame: the instructions from `first` to `last` (global steps) of a run. */
interface ChunkRef {
  frame: number;
  first: number;
  last: number;
  /** Events after its first step, when the header says (undefined: read the payload to know). */
  events?: number;
}

interface RunRef {
  info: TraceRun;
  frame: number;
  chunks: ChunkRef[];
  /** The run's last chunk is in the file (its outcome is known). */
  complete: boolean;
}

/** A region as the state at a step knows it. */
interface RegionState {
  index: number;
  kind: RegionKind;
  label: string;
  lo: number;
  hi: number;
  origin: number;
  map?: number;
  key?: Uint8Array;
  cpu?: number;
}

/** Memory and maps after step j of a chunk, and the next event then. */
interface Checkpoint {
  j: number;
  ei: number;
  mem: Map<number, { lo: number; bytes: Uint8Array }>;
  maps: MapState;
}

function cloneMem(m: Map<number, { lo: number; bytes: Uint8Array }>): Map<number, { lo: number; bytes: Uint8Array }> {
  const out = new Map<number, { lo: number; bytes: Uint8Array }>();
  for (const [i, v] of m) out.set(i, { lo: v.lo, bytes: v.bytes.slice() });
  return out;
}

/** Steps between the checkpoints a walk keeps inside a chunk. */
const CHECKPOINT_STEPS = 4096;

interface LoadedChunk {
  checkpoints: (Checkpoint | undefined)[];
  ref: ChunkRef;
  run: RunRef;
  payload: PlainMap;
  key: PlainMap;
  events: WalkEvent[];
  steps: ChunkSteps;
}

const u64 = (b: PlainValue | undefined): bigint => {
  if (!(b instanceof Uint8Array) || b.length !== 8) return 0n;
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
};
const num = (v: PlainValue | undefined, d = 0): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : d);
const str = (v: PlainValue | undefined, d = ''): string => (typeof v === 'string' ? v : d);
const bin = (v: PlainValue | undefined): Uint8Array | undefined => (v instanceof Uint8Array ? v : undefined);
const list = (v: PlainValue | undefined): PlainValue[] => (Array.isArray(v) ? (v as PlainValue[]) : []);
const obj = (v: PlainValue | undefined): PlainMap => (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) ? (v as PlainMap) : {});

/** Chunks kept decoded (each up to 65,536 steps, a few MB). */
const CHUNK_CACHE = 8;
/** Events a state lists: the run's last ones up to the step, from at most this many chunks that hold events. */
const STATE_EVENTS = 200;
const EVENT_CHUNKS = 8;
/** Runs between cached map snapshots. */
const MAP_SNAPSHOT_EVERY = 64;

export class Trace implements TraceView {
  readonly path: string;
  readonly bytes: number;
  readonly truncated: boolean;
  readonly programs: TraceProgram[];
  readonly maps: MapDef[];
  readonly runs: TraceRun[];
  readonly lastStep: number;
  /** The object's BTF, when the recording stored it (map keys and values through their C types). */
  get btf(): Btf | undefined {
    if (this.btfParsed === undefined) {
      const raw = bin(this.meta.btf);
      try {
        this.btfParsed = raw ? parseBtf(raw, this.path) : null;
      } catch {
        this.btfParsed = null;
      }
    }
    return this.btfParsed ?? undefined;
  }
  private btfParsed: Btf | null | undefined;
  /** Header meta as written (tool version, user meta, slice). */
  readonly meta: PlainMap;
  readonly cpus: number;
  private readonly reader: TraceReader;
  private readonly runRefs: RunRef[];
  private readonly walkPrograms: WalkProgram[];
  private readonly headerRegions: RegionState[];
  private readonly initialMaps: MapState;
  private readonly chunkCache = new Map<number, LoadedChunk>();
  private readonly runPayloads = new Map<number, PlainMap>();
  private readonly eventCache = new Map<number, WalkEvent[]>();
  /** Per program, the index of the last line-info entry at or before each pc (-1: none). */
  private readonly lineTables = new Map<TraceProgram, Int32Array>();
  /** What each decoded chunk wrote (registers, regions), kept for every chunk ever decoded: searches skip chunks by it. */
  private readonly summaries = new Map<number, { regMask: number; memRegions: Set<number> | 'any'; stack?: Uint8Array }>();
  private readonly mapSnapshots = new Map<number, MapState>();
  private lastRunMaps: { run: number; maps: MapState } | undefined;

  private constructor(reader: TraceReader) {
    this.reader = reader;
    this.path = reader.file;
    this.bytes = reader.size;
    this.truncated = reader.truncated;
    const meta = (this.meta = obj(reader.header.meta as PlainValue));
    this.programs = list(meta.programs).map((p, i) => {
      const m = obj(p);
      const bytes = bin(m.bytecode);
      if (!bytes || bytes.length % 8 !== 0) throw new TraceFormatError(`${this.path}: header: program ${i} has no bytecode`, this.path);
      return {
        name: str(m.name, `prog${i}`),
        type: str(m.type, 'raw'),
        section: typeof m.section === 'string' ? m.section : undefined,
        code: decode(bytes),
        funcs: list(m.funcs).map((f) => ({ name: str(obj(f).name), start: num(obj(f).start), end: num(obj(f).end) })),
        lines: list(m.lines).map((l) => {
          const x = obj(l);
          return { pc: num(x.pc), file: str(x.file), line: num(x.line), col: num(x.col), text: str(x.text) };
        }),
      };
    });
    if (this.programs.length === 0) throw new TraceFormatError(`${this.path}: header: the trace holds no program`, this.path);
    this.maps = list(meta.maps).map((d) => {
      const x = obj(d);
      return { ...(x as unknown as MapDef), name: str(x.name), type: num(x.type), keySize: num(x.keySize), valueSize: num(x.valueSize), maxEntries: num(x.maxEntries), flags: num(x.flags) };
    });
    this.cpus = Math.max(1, num(meta.cpus, 1));
    this.walkPrograms = this.programs.map((p) => ({ name: p.name, code: p.code, entryEnd: p.funcs.find((f) => f.start === 0)?.end ?? p.code.length }));
    this.headerRegions = list(meta.regions).map(regionOf);
    this.initialMaps = new MapState(this.maps, this.cpus);
    for (const x of list(meta.initial)) {
      const e = obj(x);
      const key = bin(e.key);
      const value = bin(e.value);
      if (key && value && this.maps[num(e.map)]) this.initialMaps.set(num(e.map), key, value);
    }

    // Runs and their chunks, from the frame list (the index, or a scan of a truncated file).
    const runs: RunRef[] = [];
    for (const f of reader.frames) {
      const h = obj(f.header as PlainValue);
      if (f.kind === 'run') {
        const first = num(h.firstStep);
        runs.push({
          info: { index: num(h.run, runs.length), program: str(h.program), firstStep: first, lastStep: first, verdict: 'truncated', warnings: [], timeNs: 0n },
          frame: f.number,
          chunks: [],
          complete: false,
        });
      } else if (f.kind === 'chunk') {
        const run = runs[runs.length - 1];
        if (!run) throw new TraceFormatError(`${this.path}: frame ${f.number} (chunk) comes before any run`, this.path);
        const c: ChunkRef = { frame: f.number, first: num(h.firstStep), last: num(h.lastStep), events: typeof h.events === 'number' ? h.events : undefined };
        // The recorder's summary of what the chunk wrote: searches skip chunks by it.
        if (typeof h.regs === 'number') this.summaries.set(f.number, { regMask: h.regs, memRegions: h.stores ? 'any' : new Set(list(h.written).map((x) => num(x))), stack: bin(h.stack) });
        run.chunks.push(c);
        run.info.lastStep = c.last;
      }
    }
    const ended = this.reader.finalMeta ? list(this.reader.finalMeta.runs).map(obj) : [];
    runs.forEach((r, k) => {
      const e = ended[k];
      if (e) {
        endRun(r, e);
        r.info.lastStep = num(e.lastStep, r.info.lastStep);
        r.info.timeNs = big(e.timeNs);
      } else if (r.chunks.length) {
        // No end frame (a killed recording): the run's last chunk holds its outcome, if it was saved.
        const last = r.chunks[r.chunks.length - 1]!;
        const out = obj(this.payload(last.frame).outcome);
        if ('verdict' in out) endRun(r, out);
      }
    });
    // A run without any chunk in the file was cut before its first instruction was saved: drop it.
    while (runs.length && runs[runs.length - 1]!.chunks.length === 0) runs.pop();
    this.runRefs = runs;
    this.runs = runs.map((r) => r.info);
    this.lastStep = runs.length ? runs[runs.length - 1]!.info.lastStep : 0;
    if (runs.length === 0) throw new TraceTruncatedEmpty(this.path, this.truncated);
  }

  /** Opens a trace. Throws a TraceError (one line naming the file and what is wrong) for anything that is not a readable trace. */
  static open(path: string): Trace {
    const reader = TraceReader.open(path);
    try {
      return new Trace(reader);
    } catch (e) {
      reader.close();
      throw e;
    }
  }

  close(): void {
    this.reader.close();
    this.chunkCache.clear();
  }

  private payload(frame: number): PlainMap {
    try {
      return obj(unpackPlain(this.reader.readPayload(frame)));
    } catch (e) {
      if (e instanceof TraceError) throw e;
      throw new TraceCorruptError(`${this.path}: frame ${frame}: ${(e as Error).message}`, this.path, this.reader.frames[frame]?.offset ?? 0, frame, this.reader.frames[frame]?.kind);
    }
  }

  private runPayload(r: RunRef): PlainMap {
    let p = this.runPayloads.get(r.frame);
    if (!p) {
      p = this.payload(r.frame);
      if (this.runPayloads.size > 256) this.runPayloads.clear();
      this.runPayloads.set(r.frame, p);
    }
    return p;
  }

  // ---- Finding steps ----

  private checkStep(step: number): void {
    if (!Number.isInteger(step) || step < 0 || step > this.lastStep) throw new RangeError(`step ${step} is not in the trace (steps 0..${this.lastStep})`);
  }

  private runRefOf(step: number): RunRef {
    this.checkStep(step);
    let lo = 0;
    let hi = this.runRefs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runRefs[mid]!.info.firstStep <= step) lo = mid;
      else hi = mid - 1;
    }
    return this.runRefs[lo]!;
  }

  runOf(step: number): TraceRun {
    return this.runRefOf(step).info;
  }

  /** The chunk holding state `step`: first <= step <= last, the earlier one at a boundary. */
  private chunkIndexOf(run: RunRef, step: number): number {
    let lo = 0;
    let hi = run.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (run.chunks[mid]!.last < step) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private chunk(run: RunRef, index: number): LoadedChunk {
    const ref = run.chunks[index]!;
    const cached = this.chunkCache.get(ref.frame);
    if (cached) {
      this.chunkCache.delete(ref.frame);
      this.chunkCache.set(ref.frame, cached);
      return cached;
    }
    const payload = this.payload(ref.frame);
    const where = `${this.path}: frame ${ref.frame} (chunk, first=${ref.first}, last=${ref.last})`;
    const key = obj(payload.key);
    if (list(key.regs).length !== 11) throw new TraceCorruptError(`${where}: the chunk has no keyframe`, this.path, this.reader.frames[ref.frame]?.offset ?? 0, ref.frame, 'chunk');
    const regs = keyRegs(key);
    const program = this.walkPrograms.findIndex((p) => p.name === str(key.program));
    if (program < 0) throw new TraceCorruptError(`${where}: keyframe names an unknown program '${str(key.program)}'`, this.path, 0, ref.frame, 'chunk');
    const base = ref.first - run.info.firstStep;
    const events = list(payload.events).map((e) => obj(e) as unknown as WalkEvent);
    const outcome = obj(payload.outcome);
    const isLast = 'verdict' in outcome;
    const fault = obj(outcome.fault);
    const endPc = isLast ? (typeof fault.message === 'string' ? num(fault.pc) : num(outcome.pc)) : undefined;
    const endProgram = isLast ? this.walkPrograms.findIndex((p) => p.name === str(outcome.program)) : -1;
    let steps: ChunkSteps;
    try {
      steps = walkChunk({
        programs: this.walkPrograms,
        program,
        pc: num(key.pc),
        regs,
        records: bin(payload.records) ?? new Uint8Array(0),
        events,
        base,
        count: ref.last - ref.first,
        endPc,
        endProgram: endProgram >= 0 ? endProgram : undefined,
        where,
      });
    } catch (e) {
      if (e instanceof WalkError) throw new TraceCorruptError(e.message, this.path, this.reader.frames[ref.frame]?.offset ?? 0, ref.frame, 'chunk');
      throw e;
    }
    const loaded: LoadedChunk = { ref, run, payload, key, events, steps, checkpoints: [] };
    this.summaries.set(ref.frame, { regMask: steps.regMask, memRegions: steps.memRegions });
    this.chunkCache.set(ref.frame, loaded);
    if (this.chunkCache.size > CHUNK_CACHE) this.chunkCache.delete(this.chunkCache.keys().next().value!);
    return loaded;
  }

  /** The chunks of a run (for `verify`, which compares traces chunk by chunk). */
  chunkCount(run: number): number {
    return this.runRefs[run]!.chunks.length;
  }

  /** A run's chunk, decoded: its first global step, its steps and its events (run-relative steps). */
  decodedChunk(run: number, index: number): { first: number; steps: ChunkSteps; events: readonly WalkEvent[] } {
    const c = this.chunk(this.runRefs[run]!, index);
    return { first: c.ref.first, steps: c.steps, events: c.events };
  }

  /** A run's inputs as its run frame holds them, and the map changes user space made before it. */
  runInputs(run: number): PlainMap {
    return this.runPayload(this.runRefs[run]!);
  }

  /** Whether the run's end is in the file (false for the last run of a killed recording). */
  runComplete(run: number): boolean {
    return this.runRefs[run]!.complete;
  }

  /** A pc in llvm-objdump syntax. */
  insnAt(program: number, pc: number): string {
    return this.describe(pc, this.programs[program]!);
  }

  private locate(step: number): { run: RunRef; c: LoadedChunk; k: number; ci: number } {
    const run = this.runRefOf(step);
    const ci = this.chunkIndexOf(run, step);
    const c = this.chunk(run, ci);
    return { run, c, k: step - c.ref.first, ci };
  }

  position(step: number): StepPosition {
    const { run, c, k } = this.locate(step);
    return { step, run: run.info.index, program: this.programs[c.steps.prog[k]!]!.name, pc: c.steps.pc[k]!, depth: c.steps.depth[k]! };
  }

  // ---- The state at a step ----

  private describe(pc: number, p: TraceProgram): string {
    if (pc < 0 || pc >= p.code.length) return '';
    const funcAt = new Map(p.funcs.map((f) => [f.start, f.name]));
    return formatInsn(p.code, pc, {
      helperName: (id) => HELPER_NAMES[id],
      funcName: (at) => funcAt.get(at),
      mapName: (i) => this.maps[i]?.name,
    });
  }

  /** The function and source line of a pc. */
  private where(p: TraceProgram, pc: number): { func: string; source?: { file: string; line: number; col: number; text: string } } {
    const f = p.funcs.find((x) => pc >= x.start && pc < x.end);
    // The last line at or before pc, if it is in pc's function (lines are sorted by pc).
    let table = this.lineTables.get(p);
    if (!table) {
      table = new Int32Array(p.code.length).fill(-1);
      for (let i = 0, at = 0; at < table.length; at++) {
        while (i < p.lines.length && p.lines[i]!.pc <= at) i++;
        table[at] = i - 1;
      }
      this.lineTables.set(p, table);
    }
    const found = pc >= 0 && pc < table.length ? p.lines[table[pc]!] : undefined;
    const line = found && (!f || found.pc >= f.start) ? found : undefined;
    return { func: f?.name ?? p.name, source: line && line.line > 0 ? { file: line.file, line: line.line, col: line.col, text: line.text } : undefined };
  }

  /** Regions at state k of a chunk: the run's start table, the keyframe's moved regions, then bounds and region events up to k. */
  private regionsAt(c: LoadedChunk, k: number): Map<number, RegionState> {
    const table = new Map<number, RegionState>();
    for (const r of this.headerRegions) table.set(r.index, r);
    for (const r of list(this.runPayload(c.run).regions).map(regionOf)) table.set(r.index, r);
    for (const r of list(c.key.regions).map(regionOf)) table.set(r.index, r);
    const upto = c.steps.base + k;
    for (const e of c.events) {
      if (e.step <= c.steps.base || e.step > upto) continue;
      if (e.t === 'bounds' || e.t === 'region') {
        const prev = table.get(num(e.index as number));
        const r = regionOf(e as unknown as PlainMap);
        table.set(r.index, { ...prev, ...r, kind: (e.kind as RegionKind) ?? prev?.kind ?? 'map_value' });
      }
    }
    return table;
  }

  /**
   * Map contents at the start of a run (before its first instruction): from the nearest snapshot,
   * each earlier run's user-space changes and the net changes its outcome lists.
   */
  private mapsAtRunStart(run: number): MapState {
    if (this.lastRunMaps?.run === run) return this.lastRunMaps.maps.clone();
    // mapSnapshots.get(j): the maps before run j's user-space changes.
    let from = 0;
    let st: MapState | undefined;
    for (const [j, snap] of this.mapSnapshots) {
      if (j <= run && j >= from) {
        from = j;
        st = snap;
      }
    }
    st = st ? st.clone() : this.initialMaps.clone();
    for (let j = from; j < run; j++) {
      const r = this.runRefs[j]!;
      this.applyBetween(st, r);
      const last = r.chunks[r.chunks.length - 1];
      if (last) {
        const p = this.payload(last.frame);
        const out = obj(p.outcome);
        st.applyChanges(changesOf('maps' in out ? out.maps : obj(p.key).maps));
      }
      if ((j + 1) % MAP_SNAPSHOT_EVERY === 0 && !this.mapSnapshots.has(j + 1)) this.mapSnapshots.set(j + 1, st.clone());
    }
    this.applyBetween(st, this.runRefs[run]!);
    this.lastRunMaps = { run, maps: st.clone() };
    return st;
  }

  private applyBetween(st: MapState, r: RunRef): void {
    for (const e of list(this.runPayload(r).between).map(obj)) if (e.t === 'map') st.apply(mapEvent(e));
  }

  /** Registers, memory and maps at state k of a chunk. */
  private rebuild(c: LoadedChunk, k: number): { R: Int32Array; mem: Map<number, { lo: number; bytes: Uint8Array }>; maps: MapState; regions: Map<number, RegionState> } {
    const s = c.steps;
    const R = this.rebuildRegs(c, k);
    const regions = this.regionsAt(c, k);
    let maps: MapState;
    let mem: Map<number, { lo: number; bytes: Uint8Array }>;
    const valueRegion = (index: number): Uint8Array | undefined => {
      const r = regions.get(index);
      if (r?.kind !== 'map_value' || r.map === undefined || !r.key) return undefined;
      return maps.cpuView(r.map, r.key, r.cpu ?? 0, true);
    };
    const evs = c.events;
    let ei = 0;
    let j0 = 0;
    // Start from the nearest checkpoint at or before k (taken on earlier walks of this chunk).
    let cp: Checkpoint | undefined;
    for (let i = Math.floor(k / CHECKPOINT_STEPS); i > 0 && !cp; i--) cp = c.checkpoints[i];
    if (cp) {
      maps = cp.maps.clone();
      mem = cloneMem(cp.mem);
      ei = cp.ei;
      j0 = cp.j;
    } else {
      // Maps at this step: the run's start, the net changes up to the keyframe, then operations after it.
      maps = this.mapsAtRunStart(c.run.info.index);
      maps.applyChanges(changesOf(c.key.maps));
      mem = new Map();
      // Keyframe dumps leave out a region's leading and trailing zeros: each region is its whole [lo, hi).
      for (const x of list(c.key.mem).map(obj)) {
        const index = num(x.region);
        const bytes = bin(x.bytes);
        if (!bytes) continue;
        const view = valueRegion(index);
        const at = num(x.lo);
        if (view) {
          if (at >= 0 && at < view.length) view.set(bytes.subarray(0, view.length - at), at);
          continue;
        }
        const r = regions.get(index);
        const lo = Math.min(r?.lo ?? at, at);
        const hi = Math.max(r?.hi ?? at + bytes.length, at + bytes.length);
        const full = new Uint8Array(hi - lo);
        full.set(bytes, at - lo);
        mem.set(index, { lo, bytes: full });
      }
      while (ei < evs.length && evs[ei]!.step <= s.base) ei++;
    }
    const bytesOf = (index: number): { lo: number; bytes: Uint8Array } | undefined => {
      const view = valueRegion(index);
      if (view) return { lo: 0, bytes: view };
      let m = mem.get(index);
      if (!m) {
        const r = regions.get(index);
        if (!r) return undefined;
        m = { lo: r.lo, bytes: new Uint8Array(Math.max(0, r.hi - r.lo)) };
        mem.set(index, m);
      }
      return m;
    };
    // Walk steps j0+1..k: map operations and memory writes in step order.
    for (let j = j0 + 1; j <= k; j++) {
      const step = s.base + j;
      while (ei < evs.length && evs[ei]!.step <= step) {
        const e = evs[ei++]!;
        if (e.t === 'map') maps.apply(mapEvent(e as unknown as PlainMap));
        else if (e.t === 'bounds') {
          // A region defined or moved: its bytes then.
          const b = bin(e.bytes as PlainValue);
          const index = num(e.index as number);
          if (b && !valueRegion(index)) mem.set(index, { lo: num(e.lo as number), bytes: b.slice() });
        }
      }
      for (let i = s.memStart[j]!; i < s.memStart[j + 1]!; i++) {
        let m = bytesOf(s.memRegion[i]!);
        if (!m) continue;
        let at = s.memOff[i]! - m.lo;
        const len = s.memLen[i]!;
        if (at < 0) {
          // Below what is known of the region (bounds moved down: xdp_adjust_head): widen it.
          if (valueRegion(s.memRegion[i]!)) continue;
          const grown = new Uint8Array(m.bytes.length - at);
          grown.set(m.bytes, -at);
          m = { lo: s.memOff[i]!, bytes: grown };
          mem.set(s.memRegion[i]!, m);
          at = 0;
        }
        if (at + len > m.bytes.length) {
          if (valueRegion(s.memRegion[i]!)) continue;
          const grown = new Uint8Array(at + len);
          grown.set(m.bytes);
          m.bytes = grown;
        }
        m.bytes.set(s.pool.subarray(s.memAt[i]!, s.memAt[i]! + len), at);
      }
      // Every CHECKPOINT_STEPS steps, keep the memory and maps: a later step back starts there.
      if (j % CHECKPOINT_STEPS === 0 && !c.checkpoints[j / CHECKPOINT_STEPS]) c.checkpoints[j / CHECKPOINT_STEPS] = { j, ei, mem: cloneMem(mem), maps: maps.clone() };
    }
    return { R, mem, maps, regions };
  }

  state(step: number): StepState {
    const { run, c, k } = this.locate(step);
    const s = c.steps;
    const prog = this.programs[s.prog[k]!]!;
    const pc = s.pc[k]!;
    const depth = s.depth[k]!;
    const { R, mem, maps, regions } = this.rebuild(c, k);
    const atEnd = step === run.info.lastStep && run.complete;
    const regsOut: bigint[] = [];
    const prov: (Provenance | undefined)[] = [];
    for (let r = 0; r <= 10; r++) {
      const lo = R[2 * r]! >>> 0;
      const hi = R[2 * r + 1]! >>> 0;
      regsOut.push((BigInt(hi) << 32n) | BigInt(lo));
      prov.push(provenanceOf(regions, R[2 * r]!, R[2 * r + 1]!));
    }
    const changed: number[] = [];
    if (k > 0) for (let i = s.regStart[k]!; i < s.regStart[k + 1]!; i++) if (!changed.includes(s.regNum[i]!)) changed.push(s.regNum[i]!);
    // Frames of the call chain: frame d is stack region d.
    const frames: FrameState[] = [];
    for (let d = 0; d <= depth; d++) {
      const m = mem.get(d);
      const bytes = new Uint8Array(512);
      if (m) bytes.set(m.bytes.subarray(0, 512 - m.lo), m.lo);
      const written: number[] = [];
      if (k > 0) for (let i = s.memStart[k]!; i < s.memStart[k + 1]!; i++) if (s.memRegion[i] === d) for (let b = 0; b < s.memLen[i]!; b++) written.push(s.memOff[i]! + b);
      frames.push({ depth: d, func: d === depth ? this.where(prog, pc).func : '', bytes, written });
    }
    // Names of the callers' functions: the return pcs are not kept per state, so callers are named by depth.
    let packet: StepState['packet'];
    const pktRegion = [...regions.values()].find((r) => r.kind === 'packet');
    if (pktRegion && run.info.index >= 0) {
      const m = mem.get(pktRegion.index);
      if (m) {
        const slice = (a: number, b: number) => m.bytes.slice(Math.max(0, a - m.lo), Math.max(0, b - m.lo));
        const bytes = slice(pktRegion.origin, pktRegion.hi);
        const input = this.runPayload(run).packet;
        const orig = bin(input);
        const changedBytes: number[] = [];
        if (orig) for (let i = 0; i < bytes.length; i++) if (i >= orig.length || bytes[i] !== orig[i]) changedBytes.push(i);
        packet = { bytes, meta: slice(pktRegion.lo, pktRegion.origin), changed: changedBytes };
      }
    }
    const where = this.where(prog, pc);
    return {
      step,
      run: run.info.index,
      runStep: step - run.info.firstStep,
      program: prog.name,
      pc,
      insn: this.describe(pc, prog),
      atEnd,
      fault: atEnd ? run.info.fault : undefined,
      depth,
      func: where.func,
      source: where.source,
      regs: regsOut,
      prov,
      changed,
      frames,
      packet,
      maps: maps.dump(),
      events: this.eventsUpTo(run, c, step),
    };
  }

  /** The run's events up to a step (its last STATE_EVENTS). */
  private eventsUpTo(run: RunRef, c: LoadedChunk, step: number): TraceEvent[] {
    const out: TraceEvent[] = [];
    const upto = step - run.info.firstStep;
    const ci = this.chunkIndexOf(run, step);
    let read = 0;
    for (let i = ci; i >= 0 && read < EVENT_CHUNKS && out.length < STATE_EVENTS; i--) {
      const base = run.chunks[i]!.first - run.info.firstStep;
      // Chunks whose header says they hold no events are skipped without reading them.
      if (i !== ci && run.chunks[i]!.events === 0) continue;
      read++;
      const events = i === ci ? c.events : this.chunkEvents(run.chunks[i]!);
      const evs = events.filter((e) => e.step <= upto && (e.step > base || i === 0));
      const mapped: TraceEvent[] = [];
      for (const e of evs) {
        const ev = this.traceEvent(e, run);
        if (ev) mapped.push(ev);
      }
      out.unshift(...mapped.slice(-(STATE_EVENTS - out.length)));
    }
    if (step === run.info.lastStep && run.info.fault) out.push({ kind: 'fault', step, text: run.info.fault.message });
    return out;
  }

  /** A chunk's events without walking its steps (cached with the chunk when it is decoded). */
  private chunkEvents(ref: ChunkRef): WalkEvent[] {
    const cached = this.chunkCache.get(ref.frame);
    if (cached) return cached.events;
    let events = this.eventCache.get(ref.frame);
    if (!events) {
      events = list(this.payload(ref.frame).events).map((e) => obj(e) as unknown as WalkEvent);
      if (this.eventCache.size >= 64) this.eventCache.delete(this.eventCache.keys().next().value!);
      this.eventCache.set(ref.frame, events);
    }
    return events;
  }

  private traceEvent(e: WalkEvent, run: RunRef): TraceEvent | undefined {
    const step = run.info.firstStep + e.step;
    const x = e as unknown as PlainMap;
    switch (e.t) {
      case 'helper': {
        const id = num(x.id);
        return { kind: 'helper', step, pc: num(x.pc, -1), id, name: HELPER_NAMES[id] ?? `helper #${id}`, args: list(x.args).map(u64), r0: u64(x.r0) };
      }
      case 'output':
        if (str(x.kind) === 'printk') return { kind: 'print', step, text: str(x.text) };
        return { kind: 'output', step, map: str(x.map), data: bin(x.data) ?? new Uint8Array(0) };
      case 'map':
        return { kind: 'map', step, map: this.maps[num(x.map)]?.name ?? `map #${num(x.map)}`, op: str(x.op), key: bin(x.key), before: bin(x.before), after: bin(x.after), cpu: typeof x.cpu === 'number' ? x.cpu : undefined };
      case 'tailcall':
        return { kind: 'tailcall', step, program: str(x.program) };
      default:
        return undefined;
    }
  }

  /** The state as `rewind inspect --json` prints it. */
  snapshot(step: number): Record<string, unknown> {
    return inspectJson(this.state(step));
  }

  // ---- Writes, origins, searches ----

  /** Whether step j (1..count) of a loaded chunk writes the target. */
  private writes(c: LoadedChunk, j: number, t: WriteTarget): boolean {
    const s = c.steps;
    if (t.kind === 'reg') {
      for (let i = s.regStart[j]!; i < s.regStart[j + 1]!; i++) if (s.regNum[i] === t.reg) return true;
      return false;
    }
    if (t.kind === 'mem') {
      for (let i = s.memStart[j]!; i < s.memStart[j + 1]!; i++) {
        if (s.memRegion[i] !== t.region) continue;
        if (s.memOff[i]! < t.offset + t.size && t.offset < s.memOff[i]! + s.memLen[i]!) return true;
      }
      return false;
    }
    return false;
  }

  /** Whether a chunk can hold a write of the target (false: skip it whole, without decoding it again). */
  private mayWrite(ref: ChunkRef, t: WriteTarget): boolean {
    const s = this.summaries.get(ref.frame);
    if (!s) return true;
    if (t.kind === 'reg') return (s.regMask & (1 << t.reg)) !== 0;
    if (t.kind === 'mem') {
      if (s.memRegions === 'any' || s.memRegions.has(t.region)) return true;
      // A stack frame: the frame bytes r10-relative stores wrote (at any depth).
      if (t.region < 8 && s.stack) {
        for (let b = Math.max(0, t.offset); b < Math.min(512, t.offset + t.size); b++) if (s.stack[b >> 3]! & (1 << (b & 7))) return true;
      }
      return false;
    }
    return true;
  }

  /** Steps of a chunk that wrote a map entry: operations on the key, and writes through a value pointer to it. */
  private mapWriteSteps(c: LoadedChunk, t: { map: string; key: Uint8Array }): number[] {
    const mi = this.maps.findIndex((m) => m.name === t.map);
    if (mi < 0) return [];
    const hexKey = Buffer.from(t.key).toString('hex');
    const out: number[] = [];
    for (const e of c.events) {
      if (e.step <= c.steps.base) continue;
      if (e.t === 'map' && num(e.map as number) === mi && e.key instanceof Uint8Array && Buffer.from(e.key).toString('hex') === hexKey) out.push(e.step - c.steps.base);
    }
    // Writes through value regions of that entry.
    const regions = this.regionsAt(c, c.steps.count);
    const mine = new Set([...regions.values()].filter((r) => r.kind === 'map_value' && r.map === mi && r.key && Buffer.from(r.key).toString('hex') === hexKey).map((r) => r.index));
    if (mine.size) {
      const s = c.steps;
      for (let j = 1; j <= s.count; j++) for (let i = s.memStart[j]!; i < s.memStart[j + 1]!; i++) if (mine.has(s.memRegion[i]!)) out.push(j);
    }
    return [...new Set(out)].sort((a, b) => a - b);
  }

  prevWrite(target: WriteTarget, step: number): number | undefined {
    this.checkStep(step);
    let { run, ci } = this.locate(step);
    let r = run.info.index;
    let limit = step;
    for (;;) {
      const rr = this.runRefs[r]!;
      for (let i = ci; i >= 0; i--) {
        if (target.kind !== 'map' && !this.mayWrite(rr.chunks[i]!, target)) continue;
        const c = this.chunk(rr, i);
        const kMax = Math.min(c.steps.count, limit - c.ref.first);
        if (target.kind === 'map') {
          const hits = this.mapWriteSteps(c, target).filter((j) => j <= kMax);
          if (hits.length) return c.ref.first + hits[hits.length - 1]!;
          continue;
        }
        for (let j = kMax; j >= 1; j--) if (this.writes(c, j, target)) return c.ref.first + j;
      }
      // Registers and stack belong to a run; map entries and other memory go on across runs.
      if (target.kind === 'reg' || r === 0) return undefined;
      r--;
      const prev = this.runRefs[r]!;
      ci = prev.chunks.length - 1;
      limit = prev.info.lastStep;
    }
  }

  nextWrite(target: WriteTarget, step: number): number | undefined {
    this.checkStep(step);
    let { run, ci } = this.locate(step);
    let r = run.info.index;
    let from = step;
    for (;;) {
      const rr = this.runRefs[r]!;
      for (let i = ci; i < rr.chunks.length; i++) {
        if (target.kind !== 'map' && !this.mayWrite(rr.chunks[i]!, target)) continue;
        const c = this.chunk(rr, i);
        const kMin = Math.max(1, from - c.ref.first + 1);
        if (target.kind === 'map') {
          const hit = this.mapWriteSteps(c, target).find((j) => j >= kMin);
          if (hit !== undefined) return c.ref.first + hit;
          continue;
        }
        for (let j = kMin; j <= c.steps.count; j++) if (this.writes(c, j, target)) return c.ref.first + j;
      }
      if (target.kind === 'reg' || r === this.runRefs.length - 1) return undefined;
      r++;
      ci = 0;
      from = this.runRefs[r]!.info.firstStep;
    }
  }

  origin(target: WriteTarget, step: number): Origin | undefined {
    const at = this.prevWrite(target, step);
    if (at === undefined) return undefined;
    const { c, k } = this.locate(at);
    // The instruction that executed at step `at` is where execution was at state at-1.
    const pos = k > 0 ? { prog: c.steps.prog[k - 1]!, pc: c.steps.pc[k - 1]! } : { prog: c.steps.prog[0]!, pc: c.steps.pc[0]! };
    const p = this.programs[pos.prog]!;
    const pc = pos.pc;
    const insn = this.describe(pc, p);
    const operands: WriteTarget[] = [];
    const code = p.code;
    const op = code.op[pc]!;
    const klass = op & 7;
    const src = code.src[pc]!;
    const dst = code.dst[pc]!;
    let helper: string | undefined;
    if (klass === 7 || klass === 4) {
      // ALU: dst (unless mov) and src (when BPF_X).
      const aluOp = op & 0xf0;
      if (aluOp !== 0xb0 && aluOp !== 0x80) operands.push({ kind: 'reg', reg: dst });
      if (op & 0x08) operands.push({ kind: 'reg', reg: src });
    } else if (klass === 1) {
      // A load: the address register, and the bytes it read then.
      operands.push({ kind: 'reg', reg: src });
      const before = k > 0 ? this.rebuildRegs(c, k - 1) : undefined;
      if (before) {
        const lo = before[2 * src]!;
        const hi = before[2 * src + 1]!;
        const region = ((lo | 0) < 0 ? hi + 1 : hi) - REGION_HI_BASE;
        operands.push({ kind: 'mem', region, offset: (lo + code.off[pc]!) >>> 0, size: sizeBytes(op) });
      }
    } else if (klass === 3 || klass === 2) {
      operands.push({ kind: 'reg', reg: dst });
      if (klass === 3) operands.push({ kind: 'reg', reg: src });
    } else if (klass === 5 && (op & 0xf0) === 0x80) {
      helper = HELPER_NAMES[code.imm[pc]!];
      for (let r = 1; r <= 5; r++) operands.push({ kind: 'reg', reg: r });
    }
    return { step: at, pc, insn, operands, helper };
  }

  /** Registers at state k of a chunk: the keyframe's, then every register write of steps 1..k. */
  private rebuildRegs(c: LoadedChunk, k: number): Int32Array {
    const R = keyRegs(c.key);
    const s = c.steps;
    for (let i = 0; i < s.regStart[k + 1]!; i++) {
      R[2 * s.regNum[i]!] = s.regLo[i]!;
      R[2 * s.regNum[i]! + 1] = s.regHi[i]!;
    }
    return R;
  }

  find(query: StepQuery, from: number, direction: 1 | -1): number | undefined {
    this.checkStep(from);
    if (query.kind === 'verdict') {
      const runs = direction > 0 ? this.runRefs.filter((r) => r.info.lastStep > from) : [...this.runRefs].reverse().filter((r) => r.info.lastStep < from);
      return runs.find((r) => r.info.verdict === query.verdict)?.info.lastStep;
    }
    const progIndex = query.kind === 'pc' && query.program ? this.programs.findIndex((p) => p.name === query.program) : -1;
    const lineMatch = (p: TraceProgram, pc: number): boolean => {
      if (query.kind !== 'line') return false;
      const w = this.where(p, pc).source;
      return !!w && w.line === query.line && (!query.file || w.file.endsWith(query.file));
    };
    const helperId = query.kind === 'helper' ? HELPER_NAMES.findIndex((n) => n === query.name || n === `bpf_${query.name}`) : -1;
    const mapIndex = query.kind === 'map' ? this.maps.findIndex((m) => m.name === query.map) : -1;
    // A state matches when the instruction about to execute matches (pc, line, helper call), or
    // (map) when the step that led to it changed the map.
    let { run, ci } = this.locate(from);
    let r = run.info.index;
    for (;;) {
      const rr = this.runRefs[r]!;
      for (let i = ci; direction > 0 ? i < rr.chunks.length : i >= 0; i += direction) {
        const c = this.chunk(rr, i);
        const s = c.steps;
        const mapSteps = query.kind === 'map' ? new Set(c.events.filter((e) => e.t === 'map' && num(e.map as number) === mapIndex && (!query.op || e.op === query.op)).map((e) => e.step - s.base)) : undefined;
        const start = direction > 0 ? Math.max(0, from - c.ref.first + 1) : Math.min(s.count, from - c.ref.first - 1);
        for (let k = start; direction > 0 ? k <= s.count : k >= 0; k += direction) {
          const step = c.ref.first + k;
          if (direction > 0 ? step <= from : step >= from) continue;
          const p = this.programs[s.prog[k]!]!;
          const pc = s.pc[k]!;
          let hit = false;
          switch (query.kind) {
            case 'pc':
              hit = pc === query.pc && (progIndex < 0 || s.prog[k] === progIndex) && !(k === s.count && step === rr.info.lastStep && k > 0 && s.pc[k - 1] === pc && rr.complete);
              break;
            case 'line':
              hit = lineMatch(p, pc) && (k === 0 || !lineMatch(this.programs[s.prog[k - 1]!]!, s.pc[k - 1]!));
              break;
            case 'helper':
              hit = k < s.count && (p.code.op[pc]! === 0x85) && p.code.src[pc] === 0 && p.code.imm[pc] === helperId;
              break;
            case 'map':
              hit = mapSteps!.has(k);
              break;
          }
          if (hit) return step;
        }
      }
      r += direction;
      if (r < 0 || r >= this.runRefs.length) return undefined;
      ci = direction > 0 ? 0 : this.runRefs[r]!.chunks.length - 1;
    }
  }
}

/**
 * A step's state in the shape `rewind inspect --json` prints: step, run, pc, insn (llvm-objdump
 * syntax), regs (16 hex digits each), source, stack (the current frame from its lowest address
 * up to r10, in hex) and maps (as `rewind run --json`).
 */
export function inspectJson(st: StepState): Record<string, unknown> {
  const frame = st.frames[st.frames.length - 1];
  const r10 = Number(st.regs[10]! & 0xffffffffn);
  const out: Record<string, unknown> = {
    step: st.step,
    run: st.run,
    pc: st.pc,
    insn: st.insn,
    regs: st.regs.map((v) => '0x' + v.toString(16).padStart(16, '0')),
  };
  if (st.source) out.source = { file: st.source.file, line: st.source.line, text: st.source.text };
  out.stack = frame ? Buffer.from(frame.bytes.subarray(0, Math.min(frame.bytes.length, r10))).toString('hex') : '';
  out.maps = st.maps;
  return out;
}

class TraceTruncatedEmpty extends TraceError {
  override name = 'TraceTruncatedError';
  constructor(file: string, truncated: boolean) {
    super(truncated ? `${file}: the recording was cut before any instruction was saved: nothing to replay` : `${file}: the trace holds no runs`, file);
  }
}

/** A MessagePack integer as a BigInt (msgpackr gives numbers, and BigInts beyond 2^53). */
function big(v: PlainValue | undefined): bigint {
  return typeof v === 'bigint' ? v : BigInt(num(v));
}

/** A run's end, as the end frame or its last chunk's outcome says it: verdict, r0, fault. */
function endRun(r: RunRef, x: PlainMap): void {
  r.complete = true;
  r.info.verdict = str(x.verdict);
  r.info.r0 = big(x.r0);
  const fault = obj(x.fault);
  if (typeof fault.message === 'string') r.info.fault = { message: fault.message, kind: str(fault.kind), pc: num(fault.pc) };
}

/** Registers r0..r10 from a keyframe's 11 eight-byte values, as lo/hi halves. */
function keyRegs(key: PlainMap): Int32Array {
  const R = new Int32Array(22);
  list(key.regs).forEach((b, i) => {
    const v = bin(b);
    if (v && v.length === 8 && i < 11) {
      const dv = new DataView(v.buffer, v.byteOffset, 8);
      R[2 * i] = dv.getInt32(0, true);
      R[2 * i + 1] = dv.getInt32(4, true);
    }
  });
  return R;
}

function regionOf(v: PlainValue): RegionState {
  const x = obj(v);
  return {
    index: num(x.index),
    kind: str(x.kind, 'mem') as RegionKind,
    label: str(x.label),
    lo: num(x.lo),
    hi: num(x.hi),
    origin: num(x.origin),
    map: typeof x.map === 'number' ? x.map : undefined,
    key: bin(x.key),
    cpu: typeof x.cpu === 'number' ? x.cpu : undefined,
  };
}

function changesOf(v: PlainValue | undefined): { map: number; key?: Uint8Array | null; value?: Uint8Array | null; items?: Uint8Array[] }[] {
  return list(v).map((c) => {
    const x = obj(c);
    const items = Array.isArray(x.items) ? (x.items as PlainValue[]).map((b) => bin(b) ?? new Uint8Array(0)) : undefined;
    return { map: num(x.map), key: bin(x.key), value: x.value === null ? null : bin(x.value), items };
  });
}

function mapEvent(e: PlainMap): { map: number; op: string; key?: Uint8Array; after?: Uint8Array; cpu?: number } {
  return { map: num(e.map), op: str(e.op), key: bin(e.key), after: bin(e.after), cpu: typeof e.cpu === 'number' ? e.cpu : undefined };
}

/** What a 64-bit value points to, as Rewind writes pointers (`pkt+14`, `stack-8`). */
function provenanceOf(regions: Map<number, RegionState>, lo: number, hi: number): Provenance | undefined {
  const idx = ((lo | 0) < 0 ? hi + 1 : hi) - REGION_HI_BASE;
  const r = regions.get(idx);
  if (!r || idx < 0) return undefined;
  const d = (lo | 0) - r.origin;
  return { region: idx, kind: r.kind, offset: d, text: d < 0 ? `${r.label}${d}` : `${r.label}+${d}` };
}

export type { TraceFault, MapsState };
