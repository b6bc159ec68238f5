// A step's state as plain JSON (what `:export` writes, in the shape of `rewind inspect --json`),
// and the difference between two steps (`:diff A B`).

import { inspectJson } from '@rewind/recorder';
import { toHex } from '@rewind/vm';
import type { StepState, TraceEvent, TraceView } from './trace.js';

const hex64 = (v: bigint): string => '0x' + v.toString(16).padStart(16, '0');

function eventJson(e: TraceEvent): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (v instanceof Uint8Array) o[k] = toHex(v);
    else if (typeof v === 'bigint') o[k] = '0x' + v.toString(16);
    else if (Array.isArray(v)) o[k] = v.map((x) => (typeof x === 'bigint' ? '0x' + x.toString(16) : x));
    else o[k] = v;
  }
  return o;
}

/**
 * The state at a step as JSON-ready data: first what `rewind inspect --json` prints (step, run,
 * pc, insn, regs as 16-digit hex, source, the current frame's bytes below r10, maps), then what
 * the debugger adds (pointers, frames, packet, events).
 */
export function snapshot(trace: TraceView, s: StepState): Record<string, unknown> {
  const run = trace.runs[s.run];
  const out = inspectJson(s);
  Object.assign(out, {
    trace: trace.path,
    runStep: s.runStep,
    verdict: run?.verdict,
    program: s.program,
    atEnd: s.atEnd,
    ...(s.fault ? { fault: s.fault } : {}),
    depth: s.depth,
    func: s.func,
    pointers: Object.fromEntries(s.prov.flatMap((p, i) => (p ? [[`r${i}`, p.text]] : []))),
    changed: s.changed.map((r) => `r${r}`),
    frames: s.frames.map((f) => ({ depth: f.depth, func: f.func, bytes: toHex(f.bytes), written: f.written })),
    ...(s.packet ? { packet: { bytes: toHex(s.packet.bytes), meta: toHex(s.packet.meta), changed: s.packet.changed } } : {}),
    events: s.events.map(eventJson),
  });
  return out;
}

/** What differs between the states at two steps, one line each. */
export function diffStates(a: StepState, b: StepState): string[] {
  const out: string[] = [];
  if (a.run !== b.run) out.push(`run ${a.run} → ${b.run}`);
  if (a.pc !== b.pc || a.program !== b.program) out.push(`pc ${a.program}:${a.pc} → ${b.program}:${b.pc}`);
  if (a.source?.line !== b.source?.line) out.push(`line ${a.source?.line ?? '?'} → ${b.source?.line ?? '?'}`);
  if (a.depth !== b.depth) out.push(`call depth ${a.depth} → ${b.depth}`);
  for (let r = 0; r <= 10; r++) {
    const pa = a.prov[r]?.text;
    const pb = b.prov[r]?.text;
    if (a.regs[r] !== b.regs[r] || pa !== pb) out.push(`r${r}: ${hex64(a.regs[r]!)}${pa ? ` (${pa})` : ''} → ${hex64(b.regs[r]!)}${pb ? ` (${pb})` : ''}`);
  }
  const depth = Math.max(a.frames.length, b.frames.length);
  for (let d = 0; d < depth; d++) {
    const fa = a.frames[d];
    const fb = b.frames[d];
    if (!fa || !fb) {
      out.push(`frame #${d} ${fa ? `${fa.func} returned` : `${fb!.func} called`}`);
      continue;
    }
    out.push(...byteRuns(fa.bytes, fb.bytes, (i) => `stack${d ? `#${d}` : ''}${i - fa.bytes.length}`));
  }
  if (a.packet && b.packet) {
    if (a.packet.bytes.length !== b.packet.bytes.length) out.push(`packet length ${a.packet.bytes.length} → ${b.packet.bytes.length}`);
    else out.push(...byteRuns(a.packet.bytes, b.packet.bytes, (i) => `pkt+${i}`));
  }
  for (const name of new Set([...Object.keys(a.maps), ...Object.keys(b.maps)])) {
    const ea = new Map((a.maps[name] ?? []).map((e) => [e.key, JSON.stringify(e.value)]));
    const eb = new Map((b.maps[name] ?? []).map((e) => [e.key, JSON.stringify(e.value)]));
    for (const [k, v] of eb) {
      const was = ea.get(k);
      if (was === undefined) out.push(`${name}[${k}] added: ${JSON.parse(v)}`);
      else if (was !== v) out.push(`${name}[${k}]: ${JSON.parse(was)} → ${JSON.parse(v)}`);
    }
    for (const k of ea.keys()) if (!eb.has(k)) out.push(`${name}[${k}] deleted`);
  }
  const ev = b.run === a.run ? b.events.length - a.events.length : 0;
  if (ev > 0) out.push(`${ev} event${ev === 1 ? '' : 's'} in between`);
  return out;
}

/** Contiguous changed byte ranges as `where: old → new` lines. */
function byteRuns(x: Uint8Array, y: Uint8Array, where: (i: number) => string): string[] {
  const out: string[] = [];
  for (let i = 0; i < x.length; i++) {
    if (x[i] === y[i]) continue;
    let j = i;
    while (j < x.length && x[j] !== y[j]) j++;
    out.push(`${where(i)}: ${toHex(x.subarray(i, j))} → ${toHex(y.subarray(i, j))}`);
    i = j;
  }
  return out;
}
