#!/usr/bin/env node
// `pnpm bench`: Rewind's engine on the shared bench programs (../shared/bench, when present)
// and its own (examples/bench). For each: instructions executed, seconds and ns per
// instruction in-process (best of several runs), and the whole-process time of
// `rewind conformance-plugin` on it (best of several runs); r0 is checked against the file.
//
//   pnpm bench [--runs N] [--filter NAME] [--only inproc|plugin|examples] [--no-examples]

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseDataFile, Machine, LoadedProgram, programFromBytecode, runOnMemory, RAW_ENTRY_REGS, encode } from '../packages/vm/dist/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(opt('runs', '5'));
const filter = opt('filter', '');
const only = opt('only', '');

const dirs = [join(root, '../shared/bench'), join(root, 'examples/bench')];
const files = [];
for (const d of dirs) {
  if (!existsSync(d)) {
    console.log(`(skipping ${d}: not present)`);
    continue;
  }
  for (const f of readdirSync(d).sort()) if (f.endsWith('.data') && f.includes(filter)) files.push(join(d, f));
}

// The rewind command itself (packages/tui/bin/rewind.js), without the package manager's shell shim.
const bin = join(root, 'packages/tui/bin/rewind.js');
const hex = (b) => Buffer.from(b).toString('hex');
const rows = [];
let failed = 0;
for (const file of only === 'examples' ? [] : files) {
  const t = parseDataFile(readFileSync(file, 'utf8'), { file });
  const name = file.split('/').pop().replace(/\.data$/, '');
  const mem = t.mem ?? new Uint8Array(0);
  let steps = 0;
  let best = Infinity;
  let r0 = 0n;
  if (only !== 'plugin') {
    for (let i = 0; i < runs; i++) {
      // A fresh machine each time: what a one-shot run pays, compilation included.
      const t0 = performance.now();
      const p = new LoadedProgram(programFromBytecode(t.code), new Machine(), { entryRegs: RAW_ENTRY_REGS });
      const r = runOnMemory(p, mem);
      const dt = (performance.now() - t0) / 1000;
      if (r.fault) throw new Error(`${name}: ${r.fault.message}`);
      steps = r.steps;
      r0 = r.r0;
      best = Math.min(best, dt);
    }
  }
  let plugin = Infinity;
  let pluginR0;
  if (only !== 'inproc') {
    const program = hex(encode(t.code));
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const out = spawnSync(bin, ['conformance-plugin', hex(mem)], { input: program, encoding: 'utf8' });
      const dt = (performance.now() - t0) / 1000;
      if (out.status !== 0) throw new Error(`${name}: conformance-plugin failed: ${out.stderr}`);
      pluginR0 = BigInt('0x' + out.stdout.trim());
      plugin = Math.min(plugin, dt);
    }
  }
  const check = t.result === undefined ? 'no result' : (only === 'plugin' ? pluginR0 : r0) === t.result && (pluginR0 === undefined || pluginR0 === t.result) ? 'r0 ok' : 'r0 WRONG';
  if (check === 'r0 WRONG') failed++;
  rows.push({ name, steps, best, plugin, check });
}

const pad = (s, n) => String(s).padStart(n);
if (rows.length) console.log(`\n${'program'.padEnd(14)} ${pad('instructions', 13)} ${pad('in-process s', 13)} ${pad('ns/insn', 8)} ${pad('plugin s', 9)}  check`);
for (const r of rows) {
  const ns = r.steps ? ((r.best * 1e9) / r.steps).toFixed(2) : '-';
  console.log(`${r.name.padEnd(14)} ${pad(r.steps || '-', 13)} ${pad(Number.isFinite(r.best) ? r.best.toFixed(3) : '-', 13)} ${pad(ns, 8)} ${pad(Number.isFinite(r.plugin) ? r.plugin.toFixed(3) : '-', 9)}  ${r.check}`);
}
if (rows.length) console.log(`\nbest of ${runs} runs each; "plugin s" is the whole process of \`rewind conformance-plugin\` (Node start-up included).`);
process.exitCode = failed ? 1 : 0;

// Per-packet figures for the examples, Rewind beside the kernel on the same packets
// (scripts/bench-packets.mjs, each example in a process of its own).
if (!args.includes('--no-examples') && !filter) {
  const r = spawnSync(process.execPath, [join(root, 'scripts/bench-packets.mjs'), '--runs', String(runs)], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = 1;
}
