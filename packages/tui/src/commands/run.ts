// `rewind run`: runs a program on its inputs and prints each run's verdict, output and a summary.

import { dumpMap, toHex, type RunOutcome, type OutputEvent } from '@rewind/vm';
import { prepare, UsageError, type InputArgs } from './inputs.js';

export interface RunArgs extends InputArgs {
  json?: boolean;
  dumpMaps?: string;
}

function outputJson(ev: OutputEvent): Record<string, unknown> {
  const o: Record<string, unknown> = { kind: ev.kind, step: ev.step };
  if (ev.text !== undefined) o.text = ev.text;
  if (ev.map !== undefined) o.map = ev.map;
  if (ev.data !== undefined) o.data = toHex(ev.data);
  if (ev.cpu !== undefined) o.cpu = ev.cpu;
  return o;
}

function outputText(ev: OutputEvent): string {
  if (ev.kind === 'printk') return `  printk: ${ev.text}`;
  return `  ${ev.kind} ${ev.map ?? ''}${ev.cpu !== undefined ? ` cpu ${ev.cpu}` : ''}: ${ev.data ? toHex(ev.data) : ''}`;
}

export async function run(args: RunArgs): Promise<number> {
  const p = prepare(args);
  const outcomes: RunOutcome[] = [];
  for (const r of p.runs) outcomes.push(p.session.run(p.program.name, r.input));
  const wanted = args.dumpMaps?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of wanted ?? []) if (!p.session.maps.some((m) => m.name === w)) throw new UsageError(`--dump-maps: no map '${w}' (maps: ${p.session.maps.map((m) => m.name).join(', ')})`);
  const maps = p.session.maps.filter((m) => !wanted || wanted.includes(m.name));
  const faults = outcomes.filter((o) => o.fault).length;
  if (args.json) {
    const doc = {
      runs: outcomes.map((o, index) => ({
        index,
        retval: o.retval,
        r0: '0x' + o.r0.toString(16).padStart(16, '0'),
        verdict: o.verdict,
        steps: o.steps,
        packet: o.packet ? toHex(o.packet) : '',
        output: o.output.map(outputJson),
        ...(o.fault ? { error: o.fault.message } : {}),
        ...(o.warnings.length ? { warnings: o.warnings.map((w) => w.message) } : {}),
      })),
      maps: Object.fromEntries(maps.map((m) => [m.name, dumpMap(m)])),
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    return faults ? 1 : 0;
  }
  const lines: string[] = [];
  lines.push(`${p.source.file}: ${p.program.name} (${p.program.type}${p.program.section ? `, section ${p.program.section}` : ''})${p.packets ? ` on ${p.packets.description}` : ''}`);
  if (p.packets?.note) lines.push(`note: ${p.packets.note}`);
  outcomes.forEach((o, i) => {
    const pkt = p.runs[i]!.packetIndex;
    const len = o.packet ? `, ${o.packet.length} bytes out` : '';
    const tail = o.program !== p.program.name ? `, ended in ${o.program}` : '';
    const verdict = o.verdict === String(o.retval) ? `r0 = 0x${o.r0.toString(16)}` : `${o.verdict} (r0 = 0x${o.r0.toString(16)})`;
    lines.push(`run ${i}${pkt !== undefined && p.runs.length !== p.packets?.packets.length ? ` (packet ${pkt})` : ''}: ${verdict}, ${o.steps} instructions${len}${tail}`);
    for (const ev of o.output) lines.push(outputText(ev));
    for (const w of o.warnings) lines.push(`  ${w.message}`);
    if (o.fault) lines.push(`  ${o.fault.message}`);
  });
  const counts = new Map<string, number>();
  for (const o of outcomes) counts.set(o.verdict, (counts.get(o.verdict) ?? 0) + 1);
  const steps = outcomes.reduce((a, o) => a + o.steps, 0);
  const verdicts = p.program.type === 'raw' ? '' : ` ${[...counts].map(([v, n]) => `${n} ${v}`).join(', ')};`;
  lines.push(`${outcomes.length} run${outcomes.length === 1 ? '' : 's'}:${verdicts} ${steps} instructions${faults ? `, ${faults} faulted` : ''}`);
  if (p.source.expected !== undefined && outcomes.length === 1) {
    const ok = outcomes[0]!.r0 === p.source.expected;
    lines.push(`expected r0 = 0x${p.source.expected.toString(16)}: ${ok ? 'ok' : 'differs'}`);
  }
  for (const m of args.dumpMaps ? maps : []) {
    const entries = dumpMap(m);
    lines.push(`map ${m.name} (${m.type}, ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} shown):`);
    for (const e of entries) lines.push(`  ${e.key} => ${Array.isArray(e.value) ? e.value.join(' | ') : e.value}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return faults ? 1 : 0;
}
