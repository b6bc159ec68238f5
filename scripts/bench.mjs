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

// Per-packet figures for the examples, Rewind beside the kernel on the same packets.
//
// The kernel's figure is bpftool prog run ... repeat N (its JIT, the program only): repetition
// k + 1 runs on the packet as repetition k left it, so it is timed on packets the program does
// not rewrite. Those are the capture's packets whose run leaves the packet as it was (distinct
// ones, at most MAX_TIMED). Rewind is timed the same way on each of them: one session, Session.run
// on that packet over and over (maps persisting, as in the kernel's loop), in steady state (the
// session first goes over the whole capture for WARM_MS, until V8 has optimized the program's
// generated code), best of 3 batches. "Rewind ns" and "kernel ns" are the means over those
// packets, "ratio" is their quotient and "worst" the largest per-packet ratio.
//
// "capture ns" is Rewind per packet over the whole capture in the same steady state (every
// packet, rewritten or not), and "cold ns" the first rounds of a fresh session (program
// compiled, V8 still tiering up).
if (!args.includes('--no-examples') && !filter) {
  const { loadProgramFile, selectProgram, Session, loadPackets } = await import('../packages/vm/dist/index.js');
  const kernel = await import('../packages/vm/dist/kernel/index.js');
  const status = kernel.kernelAvailable();
  if (!status.ok) console.log(`\n(kernel figures skipped: ${status.reason})`);
  const examples = [
    ['xdp-firewall', 'mixed', undefined],
    ['l4-lb', 'lb', undefined],
    ['pkt-parser', 'parser', undefined],
    ['tc-ratelimit', 'syn-flood', undefined],
    ['tail-pipeline', 'mixed', 'xdp_entry'],
    ['ringbuf-events', 'mixed', undefined],
  ];
  const ROUNDS = 200;
  const WARM_MS = 1000;
  const MAX_TIMED = 12;
  const REPEAT = 20_000;
  const KERNEL_REPEAT = 200_000;
  // The timed runs keep only the verdict and the maps, like the kernel's repeat loop (no copies of packet and ctx).
  const NO_COPIES = { copies: false };
  const packetRows = [];
  for (const [name, pcap, section] of examples) {
    const obj = join(root, `examples/${name}/${name}.o`);
    const src = loadProgramFile(obj);
    const prog = selectProgram(src, section);
    const packets = loadPackets({ pcap: join(root, `examples/pcaps/${pcap}.pcap`) }).packets;
    // The packets the program does not rewrite (first run of a fresh session), distinct.
    const unchanged = [];
    {
      const s = new Session(src.programs, src.maps);
      const seen = new Set();
      for (const p of packets) {
        const o = s.run(prog.name, { packet: p.data, timeNs: p.timestampNs });
        const key = Buffer.from(p.data).toString('hex');
        if (o.fault || seen.has(key) || Buffer.compare(Buffer.from(o.packet), Buffer.from(p.data)) !== 0) continue;
        seen.add(key);
        if (unchanged.length < MAX_TIMED) unchanged.push(p);
      }
    }
    const s = new Session(src.programs, src.maps);
    const pass = () => {
      let steps = 0;
      for (const p of packets) steps += s.run(prog.name, { packet: p.data, timeNs: p.timestampNs }, NO_COPIES).steps;
      return steps;
    };
    const timeCapture = () => {
      const t0 = performance.now();
      for (let k = 0; k < ROUNDS; k++) pass();
      return ((performance.now() - t0) * 1e6) / (ROUNDS * packets.length);
    };
    const cold = timeCapture();
    for (const t0 = performance.now(); performance.now() - t0 < WARM_MS; ) pass();
    let capture = Infinity;
    for (let rep = 0; rep < Math.max(runs, 3); rep++) capture = Math.min(capture, timeCapture());
    // Each unchanged packet over and over, as the kernel's repeat loop runs it.
    const timed = unchanged.map((p) => {
      const input = { packet: p.data, timeNs: p.timestampNs };
      let best = Infinity;
      let steps = 0;
      for (let rep = 0; rep < 3; rep++) {
        steps = 0;
        const t0 = performance.now();
        for (let k = 0; k < REPEAT; k++) steps += s.run(prog.name, input, NO_COPIES).steps;
        best = Math.min(best, ((performance.now() - t0) * 1e6) / REPEAT);
      }
      return { packet: p.data, ns: best, insns: steps / REPEAT };
    });
    if (status.ok && timed.length) {
      const fs = kernel.Bpffs.open();
      try {
        const dir = fs.subdir('progs');
        const type = prog.type === 'tc' ? 'tc' : 'xdp';
        kernel.runTool(kernel.findTool('bpftool') ?? 'bpftool', ['prog', 'loadall', obj, dir, 'type', type, 'pinmaps', fs.subdir('maps')], 'bpftool prog loadall');
        for (const t of timed) {
          t.kns = Infinity;
          for (let rep = 0; rep < 3; rep++) t.kns = Math.min(t.kns, kernel.runProgram(join(dir, prog.name), t.packet, { repeat: KERNEL_REPEAT, cpu: 0 }).durationNs);
        }
      } finally {
        fs.close();
      }
    }
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const row = { name, packets: timed.length, capture, cold };
    if (timed.length) {
      row.insns = mean(timed.map((t) => t.insns));
      row.ns = mean(timed.map((t) => t.ns));
      if (timed.every((t) => t.kns > 0 && Number.isFinite(t.kns))) {
        row.kns = mean(timed.map((t) => t.kns));
        row.worst = Math.max(...timed.map((t) => t.ns / t.kns));
      }
    }
    packetRows.push(row);
  }
  const f0 = (x) => (x === undefined ? '-' : x.toFixed(0));
  console.log(`\n${'example'.padEnd(16)} ${pad('packets', 8)} ${pad('insns/packet', 13)} ${pad('Rewind ns', 10)} ${pad('kernel ns', 10)} ${pad('ratio', 7)} ${pad('worst', 7)} ${pad('capture ns', 11)} ${pad('cold ns', 9)}`);
  for (const r of packetRows) {
    console.log(
      `${r.name.padEnd(16)} ${pad(r.packets, 8)} ${pad(f0(r.insns), 13)} ${pad(f0(r.ns), 10)} ${pad(f0(r.kns), 10)} ${pad(r.kns ? (r.ns / r.kns).toFixed(1) + 'x' : '-', 7)} ${pad(r.worst ? r.worst.toFixed(1) + 'x' : '-', 7)} ${pad(f0(r.capture), 11)} ${pad(f0(r.cold), 9)}`,
    );
  }
  console.log(
    `\npackets: distinct packets of the capture the program does not rewrite (at most ${MAX_TIMED}); Rewind ns: Session.run on each of them ${REPEAT} times, best of 3, mean over the packets ` +
      `(steady state after ${WARM_MS} ms over the capture; runs with { copies: false }, the outcome has the verdict but no copies of packet and ctx); ` +
      `kernel ns: bpftool prog run repeat ${KERNEL_REPEAT} on each of the same packets, best of 3, mean (the kernel's JIT, program only); ratio: Rewind ns / kernel ns; worst: the largest per-packet ratio; ` +
      `capture ns: Rewind per packet over the whole capture in steady state (best of ${Math.max(runs, 3)} batches of ${ROUNDS} rounds); cold ns: the first ${ROUNDS} rounds of a fresh session.`,
  );
}
