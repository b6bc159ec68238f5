// `rewind inspect`: the state at one step of a trace, or a summary of its runs, as text or JSON.

import { Trace, type StepState } from '@rewind/recorder';
import { eventText } from '../debugger/views.js';
import { UsageError } from './inputs.js';

export interface InspectArgs {
  trace: string;
  at?: number;
  run?: number;
  summary?: boolean;
  json?: boolean;
}

const hex16 = (v: bigint) => '0x' + v.toString(16).padStart(16, '0');

function hexRows(bytes: Uint8Array, base: number, label: (off: number) => string, indent = '  '): string[] {
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = Array.from(bytes.subarray(i, i + 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
    out.push(`${indent}${label(base + i).padStart(9)}  ${row}`);
  }
  return out;
}

function stateText(t: Trace, st: StepState): string {
  const run = t.runs[st.run]!;
  const lines: string[] = [];
  lines.push(`step ${st.step} of ${t.lastStep} · run ${st.run}/${t.runs.length - 1} (${run.verdict}, steps ${run.firstStep}..${run.lastStep}) · ${st.program} ${st.func}()${st.depth ? ` depth ${st.depth}` : ''}`);
  const what = st.atEnd ? (st.fault ? 'faulted at' : 'ended at') : 'next';
  lines.push(`  ${what} pc ${st.pc}: ${st.insn}`);
  if (st.fault) lines.push(`  ${st.fault.message}`);
  if (st.source) lines.push(`  ${st.source.file}:${st.source.line}  ${st.source.text.trim()}`);
  lines.push('registers:');
  st.regs.forEach((v, r) => {
    const mark = st.changed.includes(r) ? '*' : ' ';
    const signed = BigInt.asIntN(64, v);
    lines.push(`  ${mark}r${r}${r < 10 ? ' ' : ''} ${hex16(v)}  ${st.prov[r]?.text ?? signed.toString()}`);
  });
  const frame = st.frames[st.frames.length - 1]!;
  const r10 = Number(st.regs[10]! & 0xffffffffn);
  // The frame's bytes that were ever written show; leading zero rows are left out.
  let from = 0;
  while (from < Math.min(512, r10) - 16 && frame.bytes.subarray(from, from + 16).every((b) => b === 0)) from += 16;
  lines.push(`stack (frame ${frame.depth}, r10-${Math.min(512, r10) - from}..r10):`);
  lines.push(...hexRows(frame.bytes.subarray(from, Math.min(512, r10)), from - r10, (o) => `r10${o}`));
  if (st.packet) {
    lines.push(`packet (${st.packet.bytes.length} bytes${st.packet.changed.length ? `, ${st.packet.changed.length} changed` : ''}):`);
    lines.push(...hexRows(st.packet.bytes.subarray(0, 256), 0, (o) => `pkt+${o}`));
    if (st.packet.bytes.length > 256) lines.push(`  ... ${st.packet.bytes.length - 256} more bytes`);
  }
  const maps = Object.entries(st.maps);
  if (maps.length) {
    lines.push('maps:');
    for (const [name, entries] of maps) {
      lines.push(`  ${name}: ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`);
      for (const e of entries.slice(0, 20)) lines.push(`    ${e.key || '-'} => ${Array.isArray(e.value) ? e.value.join(' | ') : e.value}`);
      if (entries.length > 20) lines.push(`    ... ${entries.length - 20} more`);
    }
  }
  const events = st.events.slice(-10);
  if (events.length) {
    lines.push(`events (last ${events.length} of the run so far):`);
    for (const e of events) lines.push(`  step ${e.step}: ${eventText(e)}`);
  }
  return lines.join('\n');
}

function summaryText(t: Trace): string {
  const steps = t.lastStep + 1;
  const lines = [`${t.path}: ${t.runs.length} run${t.runs.length === 1 ? '' : 's'}, steps 0..${t.lastStep}, ${t.bytes.toLocaleString('en-US')} bytes (${(t.bytes / steps).toFixed(2)} bytes/step)${t.truncated ? ', truncated (the recording was cut; complete chunks are readable)' : ''}`];
  const counts = new Map<string, number>();
  for (const r of t.runs) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  lines.push(`verdicts: ${[...counts].map(([v, n]) => `${n} ${v}`).join(', ')}`);
  for (const r of t.runs) lines.push(`  run ${r.index}  steps ${r.firstStep}..${r.lastStep}  ${r.verdict}${r.fault ? `  ${r.fault.message}` : ''}`);
  return lines.join('\n');
}

export async function inspect(args: InspectArgs): Promise<number> {
  if (args.at !== undefined && args.summary) throw new UsageError('--at and --summary cannot be used together');
  const t = Trace.open(args.trace);
  try {
    if (args.at === undefined) {
      if (args.run !== undefined) throw new UsageError('--run needs --at N (the step counted from the run\'s first step)');
      if (args.json) {
        const doc: Record<string, unknown> = { steps: t.lastStep, runs: t.runs.map((r) => ({ index: r.index, firstStep: r.firstStep, lastStep: r.lastStep, verdict: r.verdict })), bytes: t.bytes };
        if (t.truncated) doc.truncated = true;
        process.stdout.write(JSON.stringify(doc) + '\n');
      } else process.stdout.write(summaryText(t) + '\n');
      return 0;
    }
    if (!Number.isSafeInteger(args.at) || args.at < 0) throw new UsageError(`--at must be a step number (0..${t.lastStep})`);
    let step = args.at;
    if (args.run !== undefined) {
      const run = t.runs[args.run];
      if (!Number.isSafeInteger(args.run) || !run) throw new UsageError(`--run ${args.run}: the trace has runs 0..${t.runs.length - 1}`);
      step = run.firstStep + args.at;
      if (step > run.lastStep) throw new UsageError(`--at ${args.at}: run ${args.run} has steps 0..${run.lastStep - run.firstStep} (global ${run.firstStep}..${run.lastStep})`);
    } else if (step > t.lastStep) throw new UsageError(`--at ${args.at}: the trace has steps 0..${t.lastStep}`);
    if (args.json) process.stdout.write(JSON.stringify(t.snapshot(step)) + '\n');
    else process.stdout.write(stateText(t, t.state(step)) + '\n');
    return 0;
  } finally {
    t.close();
  }
}
