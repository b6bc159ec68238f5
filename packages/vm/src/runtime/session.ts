// A session: an object's programs and maps loaded into one machine. Maps persist across runs
// (one run per packet); time, random numbers and the CPU are inputs of each run, so a session
// replays the same way every time.

import { Fault, RewindError } from '../errors.js';
import { BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE } from '../isa.js';
import type { Program, ProgType, MapDef } from '../program.js';
import { BPF_MAP_TYPE } from '../program.js';
import { Machine, type Warning } from '../engine/machine.js';
import { LoadedProgram, executeIn, r0Value, runWarnings, type RunOptions, type HelperTable } from '../engine/vm.js';
import type { Instrumentation } from '../engine/compile.js';
import { REGION_HI_BASE } from '../engine/memory.js';
import { defineMemRegion, RAW_ENTRY_REGS } from '../engine/raw.js';
import { createMap } from '../maps/create.js';
import type { BpfMap } from '../maps/map.js';
import { FdArrayMap, HashOfMapsMap } from '../maps/fd_maps.js';
import { MapSpace } from './mapspace.js';
import { PacketBuffer } from './packet.js';
import { createContext, type Context } from './contexts.js';
import { beginHelperRun, endHelperRun, kernelHelpers, newHelperRunState, nondeterministicHelpers, type HelperEnv, type OutputEvent, type RedirectTarget } from './helpers/index.js';
import { Prng } from './prng.js';
import { specializedHelper } from './helpers/specialized.js';

export interface SessionOptions {
  /** Possible CPUs: per-CPU maps have this many slots (default 1). */
  cpus?: number;
  /** The CPU runs execute on (default 0). */
  cpu?: number;
  /** Seed of bpf_get_prandom_u32 (default 0). */
  seed?: number;
  maxSteps?: number;
  strict?: boolean;
  /** Code the recorder adds to each compiled program. */
  instrument?: Instrumentation;
  /** Routes for bpf_fib_lookup. */
  fib?: import('./helpers/index.js').FibRoute[];
  /**
   * false: every helper call goes to the generic helper, none to a version made for the map it
   * is given (LoadOptions.specializeHelper); for comparing the two. Default true.
   */
  specializeHelpers?: boolean;
}

export interface RunInput {
  /** The packet (XDP, TC, socket filter). */
  packet?: Uint8Array;
  /** Context fields to set (`mark`, `cb[0]`, `ingress_ifindex`...). */
  ctx?: Record<string, bigint | number>;
  /** The context as raw bytes (bpftool's ctx_in). */
  ctxBytes?: Uint8Array;
  /** The clock for bpf_ktime_get_ns and friends. */
  timeNs?: bigint;
  /** Programs of type raw (.data files): the memory r1 points to (r2 holds its length). */
  mem?: Uint8Array;
}

export interface RunOutcome {
  /** r0 at exit, 64 bits. */
  r0: bigint;
  /** The 32-bit value the kernel's test run reports. */
  retval: number;
  /** The verdict by name (XDP_PASS, TC_ACT_SHOT, ...), or the number. */
  verdict: string;
  steps: number;
  fault?: Fault;
  warnings: Warning[];
  /** The packet after the run (data to data_end); a copy, possibly a view into a buffer shared with other outcomes' copies. Absent when RunOptions.copies is false. */
  packet?: Uint8Array;
  /** The context after the run (a copy, like `packet`). */
  ctx?: Uint8Array;
  output: OutputEvent[];
  /** The program that exited (differs from the entry after tail calls). */
  program: string;
  /** Slot of the last instruction executed. */
  pc: number;
  /** Where the packet goes when the verdict is XDP_REDIRECT or TC_ACT_REDIRECT (bpf_redirect, bpf_redirect_map). */
  redirect?: RedirectTarget;
  /** XDP metadata before the packet (data_meta to data), when there is some: the kernel's data_out starts with it. */
  metadata?: Uint8Array;
  /** Helpers the run called whose results are inputs of the run rather than what a kernel would give (time, random numbers, the CPU, the flow hash). */
  nondeterministic?: string[];
}

const XDP_VERDICTS = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'];
/** TC verdicts from TC_ACT_UNSPEC (-1): TC_VERDICTS[v + 1]. */
const TC_VERDICTS = ['TC_ACT_UNSPEC', 'TC_ACT_OK', 'TC_ACT_RECLASSIFY', 'TC_ACT_SHOT', 'TC_ACT_PIPE', 'TC_ACT_STOLEN', 'TC_ACT_QUEUED', 'TC_ACT_REPEAT', 'TC_ACT_REDIRECT'];

/** The name of a program's return value (XDP_PASS, TC_ACT_SHOT), or the number itself. */
export function verdictName(type: ProgType, retval: number): string {
  if (type === 'xdp') return XDP_VERDICTS[retval] ?? String(retval);
  if (type === 'tc') return TC_VERDICTS[(retval | 0) + 1] ?? String(retval | 0);
  if (type === 'socket' || type === 'cgroup_skb') return retval === 0 ? 'drop' : `keep ${retval}`;
  return String(retval);
}

/** A verdict name back to its number, for --runs-if and test expectations. */
export function verdictValue(name: string): number | undefined {
  const x = XDP_VERDICTS.indexOf(name);
  if (x >= 0) return x;
  const t = TC_VERDICTS.indexOf(name);
  if (t >= 0) return t - 1;
  return undefined;
}

/**
 * Copies of the packet and the context for a RunOutcome. V8 gives a typed array over 64 bytes
 * its own off-heap store, which costs about 0.7 µs to allocate, so larger copies are views into
 * shared 64 KiB chunks (a chunk is freed when no outcome refers to it any more).
 */
function copyOut(src: Uint8Array, from: number, to: number): Uint8Array {
  const n = to - from;
  if (n <= 64 || n > COPY_CHUNK / 4) return src.slice(from, to);
  if (copyTop + n > COPY_CHUNK) {
    copyChunk = new ArrayBuffer(COPY_CHUNK);
    copyTop = 0;
  }
  const out = new Uint8Array(copyChunk, copyTop, n);
  out.set(from === 0 && to === src.length ? src : src.subarray(from, to));
  copyTop += (n + 7) & ~7;
  return out;
}
const COPY_CHUNK = 64 * 1024;
let copyChunk = new ArrayBuffer(COPY_CHUNK);
let copyTop = 0;

const NO_INPUT: RunInput = {};
/** The output of a run that had none (shared by every such outcome, so never pushed to). */
const NO_OUTPUT: OutputEvent[] = Object.freeze([]) as unknown as OutputEvent[];
const NO_OPTIONS: RunOptions = {};
const NO_BYTES = new Uint8Array(0);

/** Kernel limits of the test run's packet buffers. */
export const XDP_PACKET_HEADROOM = 256;
const XDP_FRAME = 4096;
/** SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64. */
const XDP_TAILROOM = 320;
const NET_SKB_PAD = 64;
const SKB_MAX = 64 * 1024;

export class Session {
  readonly machine = new Machine();
  readonly maps: BpfMap[];
  readonly mapSpace: MapSpace;
  readonly packet: PacketBuffer;
  readonly cpus: number;
  cpu: number;
  readonly prng: Prng;
  private readonly loaded = new Map<string, LoadedProgram>();
  private readonly helpers: HelperTable;
  private readonly env: HelperEnv;
  private readonly contexts = new Map<ProgType, Context>();
  private readonly regionMark: number;
  private readonly flatMark: number;
  /** The context the machine's context table mirrors (the last run's). */
  private tableContext: Context | undefined;
  /** The program the last run looked up by name and its context, for the next run of the same name. */
  private last: { name: string | undefined; lp: LoadedProgram; ctx: Context | undefined } | undefined;
  /** RunOptions of a run given none. */
  private readonly runOpts: RunOptions;
  /** The session sets maxSteps or strict, so a caller's RunOptions are merged with runOpts. */
  private readonly mergeOpts: boolean;
  /** Output of the current run (printk lines, ring buffer and perf samples). */
  output: OutputEvent[] = [];
  timeNs = 0n;
  /** Number of runs so far. */
  runs = 0;
  /** Tail calls taken in the current run. */
  tailCalls = 0;

  constructor(
    readonly programs: readonly Program[],
    mapDefs: readonly MapDef[],
    readonly opts: SessionOptions = {},
  ) {
    this.cpus = opts.cpus ?? 1;
    this.cpu = opts.cpu ?? 0;
    if (!Number.isInteger(this.cpus) || this.cpus < 1 || this.cpus > 1024) throw new RewindError(`--cpus must be between 1 and 1024`);
    if (!Number.isInteger(this.cpu) || this.cpu < 0 || this.cpu >= this.cpus) throw new RewindError(`--cpu ${this.cpu} is not one of the ${this.cpus} CPUs (use --cpus)`);
    this.prng = new Prng(opts.seed ?? 0);
    this.maps = mapDefs.map((d) => createMap(d, { cpus: this.cpus }));
    const mem = this.machine.mem;
    this.mapSpace = new MapSpace(mem, this.maps);
    this.packet = new PacketBuffer(mem, Math.max(XDP_FRAME, SKB_MAX + NET_SKB_PAD + XDP_TAILROOM), XDP_PACKET_HEADROOM, mem.nextIndex());
    // Contexts of every type a program of this session can have.
    const types = new Set(programs.map((p) => p.type));
    for (const t of types) {
      const ctx = createContext(mem, t, this.packet);
      if (ctx) this.contexts.set(t, ctx);
    }
    // Program arrays and maps of maps filled from the object's `values` initialisers.
    this.maps.forEach((map, i) => {
      const def = mapDefs[i]!;
      for (const s of def.initialSlots ?? []) {
        if (map instanceof FdArrayMap || map instanceof HashOfMapsMap) {
          const target = def.type === BPF_MAP_TYPE.prog_array ? programs.find((p) => p.name === s.name) : this.maps.find((m) => m.name === s.name);
          if (!target) throw new RewindError(`map '${map.name}': slot ${s.index} names '${s.name}', which the object does not define`);
          if (map instanceof FdArrayMap) (map as FdArrayMap<unknown>).setSlot(s.index, target);
          else (map as HashOfMapsMap<unknown>).setSlot(new Uint8Array(new Uint32Array([s.index]).buffer), target);
        }
      }
    });
    this.env = {
      session: this,
      machine: this.machine,
      mapSpace: this.mapSpace,
      packet: this.packet,
      context: (t) => this.contexts.get(t),
      emit: (ev) => this.output.push({ ...ev, step: this.machine.steps }),
      program: (name) => this.program(name),
      run: newHelperRunState(),
    };
    this.helpers = kernelHelpers(this.env, opts.fib ?? []);
    // Global data is pointed to by lddw immediates, so its value regions live for the session.
    mapDefs.forEach((d, i) => {
      if (d.globalData) this.mapSpace.valuePointer(i, 0, 0, -1, true);
    });
    this.regionMark = mem.regionMark;
    this.flatMark = mem.flatMark;
    this.runOpts = { maxSteps: opts.maxSteps, strict: opts.strict };
    this.mergeOpts = opts.maxSteps !== undefined || opts.strict !== undefined;
  }

  /** The program by name (default: the first), compiled on first use. */
  program(name?: string): LoadedProgram {
    const known = name === undefined ? undefined : this.loaded.get(name);
    if (known) return known;
    const prog = name === undefined ? this.programs[0] : this.programs.find((p) => p.name === name);
    if (!prog) throw new RewindError(name === undefined ? 'the object has no programs' : `no program named '${name}' (programs: ${this.programs.map((p) => p.name).join(', ')})`);
    let lp = this.loaded.get(prog.name);
    if (!lp) {
      lp = new LoadedProgram(prog, this.machine, {
        helpers: this.helpers,
        allowLdAbs: prog.type === 'socket' || prog.type === 'tc',
        entryRegs: prog.type === 'raw' ? RAW_ENTRY_REGS : 0b10,
        instrument: this.opts.instrument,
        ctxSlots: this.contexts.get(prog.type)?.slots,
        specializeHelper: this.opts.specializeHelpers === false ? undefined : (id, mapIndex) => specializedHelper(this.env, id, mapIndex, this.helpers.get(id)),
        resolveLddw: (pc, src, imm, nextImm) => {
          if (src === BPF_PSEUDO_MAP_IDX) return this.mapSpace.handlePointer(imm);
          if (src === BPF_PSEUDO_MAP_IDX_VALUE) return this.mapSpace.valuePointer(imm, 0, nextImm, pc, true);
          throw new RewindError(`lddw at pc ${pc}: unsupported source ${src}`);
        },
      });
      this.loaded.set(prog.name, lp);
    }
    return lp;
  }

  /** Runs a program once on one input. Maps keep what the run did to them. */
  run(programName: string | undefined, input: RunInput = NO_INPUT, opts: RunOptions = NO_OPTIONS): RunOutcome {
    let last = this.last;
    if (last === undefined || last.name !== programName) {
      const found = this.program(programName);
      last = this.last = { name: programName, lp: found, ctx: this.contexts.get(found.program.type) };
    }
    const { lp, ctx } = last;
    const type = lp.program.type;
    const m = this.machine;
    // An outcome holds the last run's output when it had some: replace that array, never clear it.
    if (this.output.length) this.output = [];
    this.tailCalls = 0;
    this.timeNs = input.timeNs ?? this.timeNs;
    if (input.packet) {
      if (type === 'xdp') this.packet.load(input.packet, XDP_FRAME - XDP_PACKET_HEADROOM - XDP_TAILROOM);
      else this.packet.load(input.packet, SKB_MAX);
    } else {
      this.packet.load(NO_BYTES);
    }
    if (ctx && input.ctxBytes === undefined && input.ctx === undefined && this.tableContext === ctx && ctx.repeatXdpNone()) {
      // Another XDP run without ctx_in: the context is as the last one's prepare left it.
    } else if (ctx) {
      ctx.clear();
      if (input.ctxBytes) {
        if (input.ctxBytes.length > ctx.bytes.length) throw new RewindError(`--ctx-file: ${input.ctxBytes.length} bytes, ${ctx.structName} is ${ctx.bytes.length}`);
        ctx.bytes.set(input.ctxBytes);
      }
      let fields = false;
      if (input.ctx) {
        for (const [k, v] of Object.entries(input.ctx)) {
          ctx.set(k, BigInt(v));
          fields = true;
        }
      }
      // The machine's context table mirrors the running program's context.
      if (this.tableContext !== ctx) {
        this.tableContext?.unbindTable();
        ctx.bindTable(m.ctxLo, m.ctxHi);
        this.tableContext = ctx;
      }
      // What bpf_prog_test_run_xdp/skb make of the packet and the ctx_in.
      ctx.prepare(type, input.ctxBytes ? 'bytes' : fields ? 'fields' : 'none');
    } else if (input.ctxBytes) {
      // Program types without a modelled context get their bytes as plain memory.
      throw new RewindError(`programs of type ${type} take no context in Rewind; run them with --type xdp|tc|socket`);
    }
    const R = m.R;
    // r10 is set by executeIn.
    m.clearRegs();
    this.mapSpace.beginRun();
    m.mem.releaseRegions(this.regionMark);
    m.mem.resetFlat(this.flatMark);
    if (type === 'raw') {
      const bytes = input.mem ?? new Uint8Array(0);
      const region = defineMemRegion(m.mem, bytes);
      R[2] = 0;
      R[3] = REGION_HI_BASE + region.index;
      R[4] = bytes.length;
    } else {
      // r1: the context (offset 0 of its region), or 0 for types without one.
      R[2] = 0;
      R[3] = ctx ? REGION_HI_BASE + ctx.region.index : 0;
    }
    beginHelperRun(this.env, lp);
    const fault = executeIn(lp, opts === NO_OPTIONS ? this.runOpts : this.mergeOpts ? { ...this.runOpts, ...opts } : opts);
    // The low half of r0, as the run left it in the machine.
    const retval = R[0]! >>> 0;
    const redirect = endHelperRun(this.env, ctx, fault !== undefined, retval);
    this.runs++;
    const copies = opts.copies !== false;
    const helperWarnings = this.env.run.warnings;
    return {
      r0: r0Value(R[0]!, R[1]!),
      retval,
      verdict: fault ? 'fault' : verdictName(type, retval),
      steps: m.steps,
      fault,
      warnings: helperWarnings.length ? [...runWarnings(m), ...helperWarnings] : runWarnings(m),
      packet: copies && (input.packet || type === 'xdp' || type === 'tc') ? copyOut(m.mem.u8, this.packet.region.base + this.packet.data, this.packet.region.base + this.packet.end) : undefined,
      ctx: copies && ctx ? copyOut(ctx.bytes, 0, ctx.bytes.length) : undefined,
      output: this.output.length ? this.output : NO_OUTPUT,
      program: m.program!.program.name,
      pc: m.pc,
      redirect,
      metadata: copies && this.packet.data > this.packet.meta ? this.packet.buffer().slice(this.packet.meta, this.packet.data) : undefined,
      nondeterministic: nondeterministicHelpers(this.env.run),
    };
  }

  /** A pointer to the context of the current run's program type. */
  contextPointer(type: ProgType): { lo: number; hi: number } {
    const c = this.contexts.get(type);
    return c ? c.pointer : { lo: 0, hi: REGION_HI_BASE };
  }
}
