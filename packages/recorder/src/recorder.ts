// Records a Session's runs into a .rwt trace: the programs and maps once (header frame), then
// per run a "run" frame (its inputs and registers at start) and one "chunk" frame per slice of
// RECORD_SLICE instructions (the step records of steps/instrument.ts plus what happened out of
// line: helper calls, their writes, map mutations, value regions, tail calls, callbacks). A
// reader rebuilds every step from these without executing the program. See FORMAT.md,
// "Chunk payloads".

import { dumpMap, encode, helperOfMapSlot, Session, type HelperFn, type LoadedProgram, type MapDef, type Program, type Region, type RunInput, type RunOutcome, type SessionOptions } from '@rewind/vm';
import { TraceWriter } from './container/writer.js';
import { type PlainMap, type PlainValue } from './container/plain.js';
import { packPayload } from './container/payload.js';
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
  /** The object's .BTF section, stored so a reader shows map keys and values through their C types. */
  btf?: Uint8Array;
  /** Called between slices of a long run with the instructions the run has executed so far. */
  onProgress?: (steps: number) => void;
}

/** A run as the end frame lists it. */
export interface RecordedRun {
  run: number;
  program: string;
  firstStep: number;
  lastStep: number;
  verdict: string;
  r0: bigint;
  fault?: { message: string; kind: string; pc: number };
  timeNs: bigint;
}

type RunFn = LoadedProgram['compiled']['run'];
type InvokeFn = LoadedProgram['compiled']['invoke'];

/**
 * Bytes the recorder copies for the frames it is building (registers, region bytes, helper
 * arguments), carved out of one block instead of a buffer each: the block is reused once
 * those frames are written, since the writer has copied them by then.
 */
class Arena {
  private block = new Uint8Array(256 * 1024);
  private view = new DataView(this.block.buffer);
  private used = 0;

  private room(n: number): number {
    if (this.used + n > this.block.length) {
      // The old block stays with the views still holding it.
      this.block = new Uint8Array(Math.max(n, this.block.length));
      this.view = new DataView(this.block.buffer);
      this.used = 0;
    }
    const at = this.used;
    this.used += n;
    return at;
  }

  /** A copy of `bytes`. */
  copy(bytes: Uint8Array): Uint8Array {
    const at = this.room(bytes.length);
    this.block.set(bytes, at);
    return this.block.subarray(at, at + bytes.length);
  }

  /** Registers from..to-1 as 8-byte little-endian values (the machine's halves as they are). */
  regs(R: ArrayLike<number>, from: number, to: number): Uint8Array[] {
    const at = this.room(8 * (to - from));
    const out: Uint8Array[] = [];
    for (let r = from; r < to; r++) {
      const p = at + 8 * (r - from);
      this.view.setInt32(p, R[2 * r]!, true);
      this.view.setInt32(p + 4, R[2 * r + 1]!, true);
      out.push(this.block.subarray(p, p + 8));
    }
    return out;
  }

  /** Everything taken so far may be written over. */
  reset(): void {
    this.used = 0;
  }
}

/** A region's bytes without their leading and trailing zeros (the reader fills the rest with zeros). */
export function trimmed(region: number, lo: number, bytes: Uint8Array): PlainMap {
  let a = 0;
  let b = bytes.length;
  // Whole 32-bit words first where the bytes are aligned (stack frames are, and are mostly zeros).
  if ((bytes.byteOffset & 3) === 0 && b >= 4) {
    const n = b >> 2;
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, n);
    let w = 0;
    while (w < n && words[w] === 0) w++;
    a = w << 2;
    if ((b & 3) === 0) {
      let e = n;
      while (e > w && words[e - 1] === 0) e--;
      b = e << 2;
    }
  }
  while (a < b && bytes[a] === 0) a++;
  while (b > a && bytes[b - 1] === 0) b--;
  return { region, lo: lo + a, bytes: bytes.subarray(a, b) };
}

/** Whether two region entries describe the same region (as the header lists it). */
function sameRegion(a: PlainMap, b: PlainMap): boolean {
  if (a.index !== b.index || a.kind !== b.kind || a.lo !== b.lo || a.hi !== b.hi || a.origin !== b.origin || a.map !== b.map) return false;
  const ka = a.key as Uint8Array | undefined;
  const kb = b.key as Uint8Array | undefined;
  if (!ka || !kb) return ka === kb;
  return ka.length === kb.length && ka.every((x, i) => x === kb[i]);
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
  private readonly arena = new Arena();
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
  /** The keyframe of the chunk being recorded: the full state at its first step. */
  private key: PlainMap | undefined;
  /** Some program has bpf-to-bpf calls or callbacks: keyframes hold every stack frame, not only the entry's. */
  private readonly deepStack: boolean;
  /** Map entries the run being recorded has changed (or could have, through value pointers). */
  private readonly touched = new Map<string, { map: number; key: Uint8Array | undefined }>();
  /** Regions defined or moved in the run being recorded. */
  private readonly moved = new Map<number, PlainMap>();
  /** Regions defined or moved since the header was written (candidates for a run frame's `regions`). */
  private readonly refreshed = new Set<number>();
  /** The regions defined when the session was made, as the header lists them. */
  private readonly headerRegions = new Map<number, PlainMap>();
  /** The program running now (the entry, or a tail call's target). */
  private current = '';

  private readonly onProgress: ((steps: number) => void) | undefined;

  private constructor(path: string, opts: RecorderOptions) {
    this.onProgress = opts.onProgress;
    const largest = Math.max(1, ...opts.programs.map((p) => p.code.length));
    const buf = (this.buf = new StepBuffer(largest));
    // The StepBuffer must be on the machine before any program compiles: the prologue reads vm.rec.
    const session = new Session(opts.programs, opts.maps, { ...opts.sessionOptions, instrument: stepInstrumentation(buf) });
    (session.machine as unknown as { rec: StepBuffer }).rec = buf;
    this.session = session;
    // Compile every program now, so that no later load replaces the wrapped helpers (LoadedProgram sets machine.helperTable).
    const loaded = opts.programs.map((p) => session.program(p.name));
    for (const lp of loaded) this.wrapCompiled(lp);
    this.wrapHelpers();
    const m = session.machine;
    m.onWrite = (r, offset, bytes) => {
      this.events.push({ t: 'write', step: buf.step, region: r.index, offset, bytes: this.arena.copy(bytes) });
    };
    session.maps.forEach((map, mapIndex) => {
      map.onMutate = (ev) => {
        this.events.push({ ...(plain(ev) as PlainMap), t: 'map', step: buf.step, map: mapIndex });
        if (this.recording) this.touch(mapIndex, ev.key);
      };
    });
    session.mapSpace.onRegion = (index, mapIndex, slot) => {
      const r = m.mem.regions[index];
      const at = this.slotKey(mapIndex, slot);
      this.events.push({ t: 'region', step: buf.step, index, map: mapIndex, slot, lo: r?.lo ?? 0, hi: r?.hi ?? 0, label: r?.label ?? '', key: at?.key ?? null, cpu: at?.cpu ?? 0 });
    };
    this.deepStack = loaded.some((lp) => lp.analysis.subprogs.length > 1);
    // Regions defined or moved while a program runs (packet bounds after xdp_adjust_head, ring
    // buffer samples, map values) with their bytes then.
    m.mem.onRefresh = (r) => {
      this.refreshed.add(r.index);
      if (!this.recording) return;
      const entry = this.regionEntry(r);
      this.moved.set(r.index, entry);
      this.events.push({ t: 'bounds', step: buf.step, ...entry, bytes: this.regionBytes(r) ?? null });
    };
    const headerRegions = this.regions();
    for (const r of headerRegions) this.headerRegions.set(r.index as number, r);
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
      regions: headerRegions,
      slice: RECORD_SLICE,
      cpus: session.cpus,
      cpu: session.cpu,
      // What a re-execution needs to make the same session (`rewind verify`).
      session: plain({ ...opts.sessionOptions, instrument: undefined }) as PlainMap,
      initial: this.initialMaps(),
      user: opts.meta ?? {},
      btf: opts.btf ?? null,
    };
    // Frames are written in batches (256 KiB, or 100 ms): a recorder killed meanwhile loses only those.
    this.writer = TraceWriter.create(path, { meta, overwrite: opts.overwrite, buffer: { bytes: 256 * 1024, ms: 100 } });
  }

  /** Creates the trace at `path` and the session it records. */
  static create(path: string, opts: RecorderOptions): Recorder {
    return new Recorder(path, opts);
  }

  /** True while a run is being recorded (from Recorder.run until its outcome is written). */
  private recording = false;

  /** The key (and CPU) whose value a map slot holds now. */
  private slotKey(mapIndex: number, slot: number): { key: Uint8Array; cpu: number } | undefined {
    const map = this.session.maps[mapIndex] as { slotKey?: (slot: number) => { key: Uint8Array; cpu: number } | undefined } | undefined;
    return map?.slotKey?.(slot);
  }

  private regionEntry(r: Region): Record<string, PlainValue> {
    const e: Record<string, PlainValue> = { index: r.index, kind: r.kind, label: r.label, origin: r.origin, lo: r.lo, hi: r.hi };
    const v = this.session.mapSpace.valueOfRegion(r.index);
    if (v) {
      const mapIndex = this.session.mapSpace.mapIndexOf(v.map);
      e.map = mapIndex;
      e.slot = v.slot;
      const at = this.slotKey(mapIndex, v.slot);
      if (at) {
        e.key = at.key;
        e.cpu = at.cpu;
      }
    }
    return e;
  }

  /** The bytes [lo, hi) of a region whose bytes a program reads directly (no handler), or undefined. */
  private regionBytes(r: Region): Uint8Array | undefined {
    const v = this.regionView(r);
    return v && this.arena.copy(v);
  }

  /** regionBytes without the copy: a view of the live bytes. */
  private regionView(r: Region): Uint8Array | undefined {
    if (r.handler || r.hi <= r.lo || !r.readable) return undefined;
    const dv = r.view ?? this.session.machine.mem.dv;
    return new Uint8Array(dv.buffer, dv.byteOffset + r.base + r.lo, r.hi - r.lo);
  }

  /** Maps as the object file initialises them (other maps start empty; user-space updates are events). */
  private initialMaps(): PlainMap[] {
    const out: PlainMap[] = [];
    this.session.maps.forEach((map, index) => {
      // Global data has its one value; prog_array and map-in-map slots the object fills (BTF `values`).
      const keys = map.def.globalData ? [0] : (map.def.initialSlots ?? []).map((s) => s.index);
      for (const i of keys) {
        const key = new Uint8Array(4);
        new DataView(key.buffer).setUint32(0, i, true);
        const value = map.lookupSys(key);
        if (value instanceof Uint8Array) out.push({ map: index, key, value });
      }
    });
    return out;
  }

  /**
   * The full state now, at a chunk's first step: where execution is, the registers, and the bytes
   * of every region the program can have written (stack frames, the packet, ring buffer samples,
   * map values it was handed in this run, global data).
   */
  private keyframe(program: string, pc: number): PlainMap {
    const m = this.session.machine;
    const mem: PlainMap[] = [];
    const seen = new Set<number>();
    for (const r of m.mem.regions) {
      if (!r || !r.writable) continue;
      if (r.kind === 'stack' && r.index > 0 && !this.deepStack) continue;
      if (r.kind === 'map_value') continue;
      const view = this.regionView(r);
      if (!view) continue;
      seen.add(r.index);
      // Trimmed in place, then copied: most of a frame is usually zeros.
      const t = trimmed(r.index, r.lo, view);
      mem.push({ ...t, bytes: this.arena.copy(t.bytes as Uint8Array) });
    }
    for (const v of this.session.mapSpace.writableRegions()) {
      const r = m.mem.regions[v.index];
      const bytes = r && !seen.has(v.index) ? this.regionBytes(r) : undefined;
      if (bytes) mem.push({ region: v.index, lo: r!.lo, bytes });
    }
    return { program, pc, regs: this.arena.regs(m.R, 0, 11), mem, regions: this.movedRegions(), maps: this.mapChanges() };
  }

  /** Notes a map entry (or a whole queue, stack or bloom filter: no key) the run changed. */
  private touch(mapIndex: number, key: Uint8Array | undefined): void {
    const id = key ? `${mapIndex}:${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}` : `${mapIndex}`;
    if (!this.touched.has(id)) this.touched.set(id, { map: mapIndex, key: key?.slice() });
  }

  /**
   * What the run has changed in the maps so far, as the maps hold it now: every entry an
   * operation changed or a value pointer could have written, with its value (all CPUs, as user
   * space reads it) or nil when it no longer exists; keyless maps (queues, stacks) whole.
   */
  private mapChanges(): PlainMap[] {
    for (const v of this.session.mapSpace.writableRegions()) {
      const at = this.slotKey(v.mapIndex, v.slot);
      if (at) this.touch(v.mapIndex, at.key);
    }
    const out: PlainMap[] = [];
    for (const { map: index, key } of this.touched.values()) {
      const map = this.session.maps[index]!;
      if (!key) {
        out.push({ map: index, items: dumpMap(map).map((e) => Buffer.from(e.value as string, 'hex')) });
        continue;
      }
      const value = map.lookupSys(key);
      out.push({ map: index, key, value: value instanceof Uint8Array ? value : null });
    }
    return out;
  }

  /** Regions the run defined or moved so far, as they are now. */
  private movedRegions(): PlainMap[] {
    return [...this.moved.keys()].map((i) => this.session.machine.mem.regions[i]).filter((r): r is Region => r !== undefined).map((r) => this.regionEntry(r));
  }

  /** The regions defined now: index, kind, label, origin, lo/hi; map values with their map and slot. */
  private regions(): PlainMap[] {
    const out: PlainMap[] = [];
    for (const r of this.session.machine.mem.regions) if (r) out.push(this.regionEntry(r));
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
        this.startRegs = this.arena.regs(m.R, 0, 11);
        // The regions that differ from the header's (the packet's bounds, a raw program's memory, map values).
        // Only regions defined or moved since the header was written can differ from it.
        const start: PlainMap[] = [];
        for (const index of this.refreshed) {
          const r = m.mem.regions[index];
          if (!r) {
            this.refreshed.delete(index);
            continue;
          }
          const e = this.regionEntry(r);
          const h = this.headerRegions.get(index);
          if (!h || !sameRegion(h, e)) start.push(e);
        }
        this.startRegions = start;
        this.key = this.keyframe(name, pc);
      }
      this.sliceStart ??= { program: name, pc };
      return run(pc, depth, limit);
    };
    c.invoke = (start, depth, args) => {
      const a = this.arena.regs(args, 0, 5);
      // m.steps: the instructions executed before the callback's first one (a callback helper's
      // call ends its block, so this is the call's step or the previous callback's exit).
      this.events.push({ t: 'callback', step: m.steps, program: name, start, args: a });
      invoke(start, depth, args);
    };
  }

  private wrapHelpers(): void {
    const m = this.session.machine;
    const table = m.helperTable;
    for (let id = 0; id < table.length; id++) table[id] = this.recordedHelper(id, table[id]!);
    // The versions of helpers made for one map (LoadOptions.specializeHelper) the programs call.
    const byMap = m.helperByMap;
    for (let k = 0; k < byMap.length; k++) if (byMap[k]) byMap[k] = this.recordedHelper(helperOfMapSlot(k), byMap[k]!);
  }

  /** Helper `fn` (kernel id `id`) recording its call, its result and what it printed or sent. */
  private recordedHelper(id: number, fn: HelperFn): HelperFn {
    const buf = this.buf;
    return (m) => {
      const ev: Record<string, PlainValue> = { t: 'helper', step: buf.step, pc: m.pc, id, args: this.arena.regs(m.R, 1, 6), r0: null };
      this.events.push(ev);
      const before = this.session.output.length;
      fn(m);
      ev.r0 = this.arena.regs(m.R, 0, 1)[0]!;
      // What the helper printed or sent (trace_printk, ring buffer, perf event output).
      const out = this.session.output;
      for (let k = before; k < out.length; k++) this.events.push({ ...(plain(out[k]) as PlainMap), t: 'output', step: buf.step });
    };
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
      prng: this.session.prng.seedState,
      between,
    };
    buf.startRun();
    buf.tp = 0;
    buf.step = 0;
    this.key = undefined;
    this.current = programName;
    this.touched.clear();
    this.moved.clear();
    this.recording = true;
    const m = this.session.machine;
    let outcome: RunOutcome;
    try {
      outcome = this.session.run(programName, input, {
        slice: RECORD_SLICE,
        onSlice: (steps) => {
          this.flush(programName, steps, undefined);
          buf.resetPredictions();
          // Step deltas of the next chunk count from its first step, so a chunk decodes alone.
          buf.ls = steps;
          // The next chunk starts here: at call depth 0 of the running program, at m.pc.
          this.key = this.keyframe(this.current, m.pc);
          this.onProgress?.(steps);
        },
        onTailCall: (p) => {
          this.current = p.program.name;
          this.events.push({ t: 'tailcall', step: buf.step, program: p.program.name });
        },
      });
    } finally {
      this.recording = false;
    }
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
      maps: this.mapChanges(),
      packetOut: outcome.packet ?? null,
    });
    const lastStep = this.runFirst + outcome.steps;
    this.runs.push({
      run: this.runIndex,
      program: programName,
      firstStep: this.runFirst,
      lastStep,
      verdict: outcome.verdict,
      r0: outcome.r0,
      fault: outcome.fault ? { message: outcome.fault.message, kind: outcome.fault.kind, pc: outcome.fault.pc } : undefined,
      timeNs,
    });
    this.nextStep = lastStep + 1;
    return outcome;
  }

  /** Writes the run frame (once) and the chunk of instructions sliceFrom+1..steps of the run. */
  private flush(program: string, steps: number, outcome: PlainMap | undefined): void {
    if (this.runFrame) {
      this.writer.append(
        'run',
        { run: this.runIndex, program, firstStep: this.runFirst },
        packPayload({ ...this.runFrame, regs: this.startRegs ?? null, regions: this.startRegions ?? [] }, 'the run payload'),
      );
      this.runFrame = undefined;
    }
    const payload: Record<string, PlainValue> = {
      records: this.buf.take((bytes) => this.arena.copy(bytes)),
      events: this.events,
      program: this.sliceStart?.program ?? program,
      pc: this.sliceStart?.pc ?? 0,
    };
    if (this.key) payload.key = this.key;
    this.key = undefined;
    if (outcome) payload.outcome = outcome;
    // What the chunk's steps wrote, so a search for the last write of a register or of memory
    // skips chunks by their header alone: registers (bit r), stores through pointers, frame bytes
    // written through r10, and the regions of out-of-line writes.
    const sum = this.buf.takeSummary();
    const written = [...new Set(this.events.filter((e) => e.t === 'write').map((e) => e.region as number))];
    this.writer.append(
      'chunk',
      {
        run: this.runIndex,
        firstStep: this.runFirst + this.sliceFrom,
        lastStep: this.runFirst + steps,
        regs: sum.regs,
        stores: sum.stores,
        stack: sum.stack ?? null,
        written,
        // Events after the chunk's first step: a reader listing a run's events skips chunks without any.
        events: this.events.filter((e) => (e.step as number) > this.sliceFrom).length,
      },
      packPayload(payload, 'the chunk payload'),
    );
    this.events = [];
    this.sliceFrom = steps;
    this.sliceStart = undefined;
    // The frames are written: what they were built from may be reused.
    this.arena.reset();
  }

  /** The runs recorded so far. */
  get recorded(): readonly RecordedRun[] {
    return this.runs;
  }

  /** Ends the trace: the end frame lists the runs and the total steps. */
  close(): void {
    this.writer.close({ runs: this.runs.map((r) => plain(r) as PlainMap), totalSteps: this.nextStep });
  }
}
