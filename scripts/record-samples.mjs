#!/usr/bin/env node
// Records the sample traces in traces/samples/ and what a reader must find in them
// (traces/samples/expected.json). The samples are kept as they were recorded: a format change
// must still open them (src/trace/samples.test.ts). Run this only to add samples, after a
// format version bump whose reader keeps the old samples readable.

import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'packages/tui/bin/rewind.js');
const out = join(root, 'traces/samples');
const ex = (p) => join('examples', p);

const samples = [
  { name: 'xdp-firewall.rwt', args: [ex('xdp-firewall/xdp-firewall.o'), '--pcap', ex('pcaps/mixed.pcap'), '--maps', ex('xdp-firewall/maps.json')] },
  { name: 'tail-pipeline.rwt', args: [ex('tail-pipeline/tail-pipeline.o'), '--section', 'xdp_entry', '--pcap', ex('pcaps/mixed.pcap')] },
  { name: 'ringbuf-events.rwt', args: [ex('ringbuf-events/ringbuf-events.o'), '--pcap', ex('pcaps/events.pcapng')] },
  { name: 'tcp-dport.rwt', args: [ex('asm/tcp-dport.data')] },
];

const rewind = (args) => execFileSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
const expected = {};
for (const s of samples) {
  const file = join(out, s.name);
  if (existsSync(file)) rmSync(file);
  rewind(['record', ...s.args, '-o', file]);
  const summary = JSON.parse(rewind(['inspect', file, '--summary', '--json']));
  const last = summary.steps;
  const at = [0, 1, Math.floor(last / 3), Math.floor(last / 2), last];
  expected[s.name] = {
    recordedWith: ['rewind', 'record', ...s.args],
    summary: { steps: summary.steps, runs: summary.runs },
    states: Object.fromEntries(at.map((n) => [n, JSON.parse(rewind(['inspect', file, '--at', String(n), '--json']))])),
  };
  console.log(`${s.name}: ${summary.runs.length} runs, steps 0..${last}`);
}
writeFileSync(join(out, 'expected.json'), JSON.stringify(expected, null, 1) + '\n');
