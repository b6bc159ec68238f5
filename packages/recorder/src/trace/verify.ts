// `rewind verify`: re-executes the recorded programs from the inputs the trace holds (packets,
// contexts, clocks, random state, the map changes user space made between runs), records the
// re-execution, and compares the two traces step by step: where execution went, every register
// and memory write, every helper call, map operation and verdict. The first difference is
// named; none means today's VM does what the recording's did.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BPF_ANY, type MapDef, type ProgType, type Program, type RunInput, type SessionOptions } from '@rewind/vm';
import { Recorder } from '../recorder.js';
import type { PlainMap, PlainValue } from '../container/plain.js';
import { Trace } from './trace.js';
import type { ChunkSteps, WalkEvent } from './walk.js';

export interface VerifyResult {
  runs: number;
  steps: number;
  /** The first difference, one line; undefined when every step agrees. */
  difference?: string;
  /** The trace ends before its end frame: only its complete runs were checked. */
  truncated: boolean;
}

const bin = (v: unknown): Uint8Array | undefined => (v instanceof Uint8Array ? v : undefined);
const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : 'nothing');
const reg64 = (lo: number, hi: number) => '0x' + ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16);

/** The recorded runs, executed again. */
function reexecute(trace: Trace, out: string, runs: number, onRun?: (k: number) => void): void {
  const programs: Program[] = trace.programs.map((p) => ({ name: p.name, section: p.section, type: p.type as ProgType, code: p.code, funcs: p.funcs, lines: p.lines, maps: trace.maps as MapDef[] }));
  const sessionOptions = { ...(trace.meta.session as object) } as SessionOptions;
  const rec = Recorder.create(out, { programs, maps: trace.maps, sessionOptions });
  try {
    for (let k = 0; k < runs; k++) {
      const inp = trace.runInputs(k);
      // Map changes made from user space before the run, as they were made.
      for (const e of (inp.between as PlainMap[] | undefined) ?? []) {
        if (e.t !== 'map') continue;
        const map = rec.session.maps[e.map as number];
        const key = bin(e.key);
        const after = bin(e.after);
        if (!map) continue;
        if (e.op === 'update' && key && after) (e.cpu === undefined || e.cpu === null ? map.updateAllCpus(key, after, BPF_ANY) : map.update(key, after, BPF_ANY, e.cpu as number));
        else if (e.op === 'delete' && key) map.delete(key);
        else if (e.op === 'push' && after) map.push(after, BPF_ANY);
        else if (e.op === 'pop') map.pop(new Uint8Array(map.valueSize));
      }
      if (typeof inp.prng === 'number') rec.session.prng.seedState = inp.prng;
      const ctx = inp.ctx && typeof inp.ctx === 'object' ? Object.fromEntries(Object.entries(inp.ctx as PlainMap).map(([f, v]) => [f, BigInt(v as number | bigint)])) : undefined;
      const input: RunInput = {
        packet: bin(inp.packet),
        ctxBytes: bin(inp.ctxBytes),
        ctx,
        mem: bin(inp.mem),
        timeNs: typeof inp.timeNs === 'bigint' ? inp.timeNs : BigInt((inp.timeNs as number | undefined) ?? 0),
      };
      rec.run(trace.runs[k]!.program, input);
      onRun?.(k);
    }
  } finally {
    rec.close();
  }
}

/** The first step where two decodings of a chunk differ, described. */
function compareChunk(a: Trace, b: ChunkSteps, at: ChunkSteps, first: number, run: number): string | undefined {
  const where = (k: number) => {
    const pc = at.pc[Math.max(0, k - 1)]!;
    return `step ${first + k} (run ${run}, pc ${pc}: ${a.insnAt(at.prog[Math.max(0, k - 1)]!, pc)})`;
  };
  if (at.count !== b.count) return `run ${run}: the chunk from step ${first} holds ${at.count} instructions in the trace, ${b.count} re-executed`;
  for (let k = 0; k <= at.count; k++) {
    if (at.prog[k] !== b.prog[k] || at.pc[k] !== b.pc[k]) {
      return `step ${first + k} (run ${run}): the trace is at ${a.programs[at.prog[k]!]!.name} pc ${at.pc[k]}, the re-execution at ${a.programs[b.prog[k]!]?.name} pc ${b.pc[k]}`;
    }
    if (k === 0) continue;
    const ra = [at.regStart[k]!, at.regStart[k + 1]!];
    const rb = [b.regStart[k]!, b.regStart[k + 1]!];
    const regsA = new Map<number, string>();
    const regsB = new Map<number, string>();
    for (let i = ra[0]!; i < ra[1]!; i++) regsA.set(at.regNum[i]!, reg64(at.regLo[i]!, at.regHi[i]!));
    for (let i = rb[0]!; i < rb[1]!; i++) regsB.set(b.regNum[i]!, reg64(b.regLo[i]!, b.regHi[i]!));
    for (let r = 0; r <= 10; r++) {
      if (regsA.get(r) !== regsB.get(r)) return `${where(k)}: r${r} ${regsA.has(r) ? `becomes ${regsA.get(r)}` : 'is unchanged'} in the trace, ${regsB.has(r) ? `becomes ${regsB.get(r)}` : 'is unchanged'} re-executed`;
    }
    const memA: string[] = [];
    const memB: string[] = [];
    for (let i = at.memStart[k]!; i < at.memStart[k + 1]!; i++) memA.push(`region ${at.memRegion[i]} + ${at.memOff[i]}: ${hex(at.pool.subarray(at.memAt[i]!, at.memAt[i]! + at.memLen[i]!))}`);
    for (let i = b.memStart[k]!; i < b.memStart[k + 1]!; i++) memB.push(`region ${b.memRegion[i]} + ${b.memOff[i]}: ${hex(b.pool.subarray(b.memAt[i]!, b.memAt[i]! + b.memLen[i]!))}`);
    if (memA.join(';') !== memB.join(';')) return `${where(k)}: writes ${memA.join(', ') || 'no memory'} in the trace, ${memB.join(', ') || 'no memory'} re-executed`;
  }
  return undefined;
}

/** Helper calls and map operations of a chunk, as comparable lines. */
function eventLines(events: readonly WalkEvent[], first: number, base: number): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.step <= base && base > 0) continue;
    const step = first - base + e.step;
    const x = e as unknown as Record<string, PlainValue>;
    if (e.t === 'helper') out.push(`step ${step}: helper #${x.id} (${((x.args as Uint8Array[]) ?? []).map(hex).join(', ')}) returned ${hex(bin(x.r0))}`);
    else if (e.t === 'map') out.push(`step ${step}: map #${x.map} ${x.op} key ${hex(bin(x.key))} value ${hex(bin(x.after))}`);
    else if (e.t === 'output') out.push(`step ${step}: output ${x.kind} ${x.text ?? hex(bin(x.data))}`);
    else if (e.t === 'tailcall') out.push(`step ${step}: tail call to ${x.program}`);
  }
  return out;
}

/** Re-executes a trace and compares it step by step. Throws TraceError for a file that is not a readable trace. */
export function verifyTrace(path: string, opts: { onRun?: (done: number, total: number) => void } = {}): VerifyResult {
  const trace = Trace.open(path);
  const dir = mkdtempSync(join(tmpdir(), 'rewind-verify-'));
  try {
    let runs = trace.runs.length;
    while (runs > 0 && !trace.runComplete(runs - 1)) runs--;
    if (runs === 0) return { runs: 0, steps: 0, truncated: trace.truncated };
    const out = join(dir, 'reexecuted.rwt');
    reexecute(trace, out, runs, (k) => opts.onRun?.(k + 1, runs));
    const again = Trace.open(out);
    try {
      for (let k = 0; k < runs; k++) {
        const a = trace.runs[k]!;
        const b = again.runs[k]!;
        const chunks = trace.chunkCount(k);
        const limit = Math.min(chunks, again.chunkCount(k));
        for (let i = 0; i < limit; i++) {
          const ca = trace.decodedChunk(k, i);
          const cb = again.decodedChunk(k, i);
          const diff = compareChunk(trace, cb.steps, ca.steps, ca.first, k);
          if (diff) return { runs, steps: a.lastStep, difference: diff, truncated: trace.truncated };
          const ea = eventLines(ca.events, ca.first, ca.steps.base);
          const eb = eventLines(cb.events, cb.first, cb.steps.base);
          for (let j = 0; j < Math.max(ea.length, eb.length); j++) {
            if (ea[j] !== eb[j]) return { runs, steps: a.lastStep, difference: `run ${k}: the trace has "${ea[j] ?? 'no more events'}", the re-execution "${eb[j] ?? 'no more events'}"`, truncated: trace.truncated };
          }
        }
        if (a.lastStep - a.firstStep !== b.lastStep - b.firstStep) return { runs, steps: a.lastStep, difference: `run ${k}: ${a.lastStep - a.firstStep} instructions in the trace, ${b.lastStep - b.firstStep} re-executed`, truncated: trace.truncated };
        if (a.verdict !== b.verdict || a.r0 !== b.r0) return { runs, steps: a.lastStep, difference: `run ${k}: ends ${a.verdict} (r0 = 0x${a.r0?.toString(16)}) in the trace, ${b.verdict} (r0 = 0x${b.r0?.toString(16)}) re-executed`, truncated: trace.truncated };
        if ((a.fault?.message ?? '') !== (b.fault?.message ?? '')) return { runs, steps: a.lastStep, difference: `run ${k}: ${a.fault?.message ?? 'no fault'} in the trace, ${b.fault?.message ?? 'no fault'} re-executed`, truncated: trace.truncated };
      }
      return { runs, steps: runs ? trace.runs[runs - 1]!.lastStep : 0, truncated: trace.truncated };
    } finally {
      again.close();
    }
  } finally {
    trace.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
