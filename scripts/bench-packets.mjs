#!/usr/bin/env node
// Per-packet figures for the examples (part of `pnpm bench`): Rewind beside the kernel on the
// same packets.
//
//   node scripts/bench-packets.mjs [--runs N] [--example NAME]
//
// The kernel's figure is bpftool prog run ... repeat N (its JIT, the program only): repetition
// k + 1 runs on the packet as repetition k left it, so it is timed on packets the program does
// not rewrite. Those are the capture's packets whose run leaves the packet as it was (distinct
// ones, at most MAX_TIMED). Rewind is timed the same way on each of them: one session,
// Session.run on that packet over and over (maps persisting, as in the kernel's loop), in steady
// state (the session first goes over the whole capture for WARM_MS, until V8 has optimized the
// program's generated code), best of 3 batches. "Rewind ns" and "kernel ns" are the means over
// those packets, "ratio" is their quotient and "worst" the largest per-packet ratio.
//
// "capture ns" is Rewind per packet over the whole capture in the same steady state (every
// packet, rewritten or not), and "cold ns" the first rounds of a fresh session (program
// compiled, V8 still tiering up).
//
// Each example is measured in processes of its own (--example NAME prints its row as JSON), as
// `rewind run` runs one object per process: code V8 optimized for one program's maps and helpers
// is not what another program's run meets. Two processes each, keeping the faster one's figures
// (and the kernel's best), so that a moment when another process slowed the machine down does
// not make the row.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(opt('runs', '5'));
const pad = (s, n) => String(s).padStart(n);

const EXAMPLES = [
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
const PROCESSES = 2;
const NO_COPIES = { copies: false };

const one = opt('example', '');
if (one) {
  const ex = EXAMPLES.find((e) => e[0] === one);
  if (!ex) {
    console.error(`bench-packets: no example named '${one}' (examples: ${EXAMPLES.map((e) => e[0]).join(', ')})`);
    process.exit(2);
  }
  console.log(JSON.stringify(await measure(...ex)));
} else {
  const kernel = await import('../packages/vm/dist/kernel/index.js');
  const status = kernel.kernelAvailable();
  if (!status.ok) console.log(`\n(kernel figures skipped: ${status.reason})`);
  const rows = [];
  for (const [name] of EXAMPLES) {
    // Two processes, the faster one's figures (and the kernel's best of both): a run of the
    // machine that another process slowed down does not count.
    let row;
    for (let proc = 0; proc < PROCESSES; proc++) {
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--example', name, '--runs', String(runs)], { encoding: 'utf8' });
      if (r.status !== 0) {
        const lines = (r.stderr || r.stdout).trim().split('\n');
        console.error(`bench-packets: ${name}: ${lines.find((l) => /Error/.test(l)) ?? lines.pop()}`);
        process.exitCode = 1;
        break;
      }
      const got = JSON.parse(r.stdout.trim().split('\n').pop());
      if (!row) row = got;
      else {
        const kns = row.kns !== undefined && got.kns !== undefined ? Math.min(row.kns, got.kns) : undefined;
        if (got.ns < row.ns) row = got;
        row.kns = kns;
      }
    }
    if (row) rows.push(row);
  }
  const f0 = (x) => (x === undefined || x === null ? '-' : x.toFixed(0));
  console.log(`\n${'example'.padEnd(16)} ${pad('packets', 8)} ${pad('insns/packet', 13)} ${pad('Rewind ns', 10)} ${pad('kernel ns', 10)} ${pad('ratio', 7)} ${pad('worst', 7)} ${pad('capture ns', 11)} ${pad('cold ns', 9)}`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(16)} ${pad(r.packets, 8)} ${pad(f0(r.insns), 13)} ${pad(f0(r.ns), 10)} ${pad(f0(r.kns), 10)} ${pad(r.kns ? (r.ns / r.kns).toFixed(1) + 'x' : '-', 7)} ${pad(r.worst ? r.worst.toFixed(1) + 'x' : '-', 7)} ${pad(f0(r.capture), 11)} ${pad(f0(r.cold), 9)}`,
    );
  }
  console.log(
    `\npackets: distinct packets of the capture the program does not rewrite (at most ${MAX_TIMED}); Rewind ns: Session.run on each of them ${REPEAT} times, best of 3, mean over the packets ` +
      `(steady state after ${WARM_MS} ms over the capture; runs with { copies: false }, the outcome has the verdict but no copies of packet and ctx); ` +
      `kernel ns: bpftool prog run repeat ${KERNEL_REPEAT} on each of the same packets, best of 3, mean (the kernel's JIT, program only); ratio: Rewind ns / kernel ns; worst: the largest per-packet ratio; ` +
      `capture ns: Rewind per packet over the whole capture in steady state (best of ${Math.max(runs, 3)} batches of ${ROUNDS} rounds); cold ns: the first ${ROUNDS} rounds of a fresh session. ` +
      `Each example runs in processes of its own, ${PROCESSES} of them: the figures of the faster one, the kernel's best of all.`,
  );
}

/** Runs every input once (one pass over the capture); returns the instructions executed. */
function runEach(s, name, inputs) {
  let steps = 0;
  for (let i = 0; i < inputs.length; i++) steps += s.run(name, inputs[i], NO_COPIES).steps;
  return steps;
}

/** Runs one input n times; returns the instructions executed. */
function runRepeated(s, name, input, n) {
  let steps = 0;
  for (let k = 0; k < n; k++) steps += s.run(name, input, NO_COPIES).steps;
  return steps;
}

async function measure(name, pcap, section) {
  const { loadProgramFile, selectProgram, Session, loadPackets } = await import('../packages/vm/dist/index.js');
  const kernel = await import('../packages/vm/dist/kernel/index.js');
  const status = kernel.kernelAvailable();
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
  // The timed runs keep only the verdict and the maps, like the kernel's repeat loop (no copies of packet and ctx).
  const s = new Session(src.programs, src.maps);
  const inputs = packets.map((p) => ({ packet: p.data, timeNs: p.timestampNs }));
  const timeCapture = () => {
    const t0 = performance.now();
    for (let k = 0; k < ROUNDS; k++) runEach(s, prog.name, inputs);
    return ((performance.now() - t0) * 1e6) / (ROUNDS * packets.length);
  };
  const cold = timeCapture();
  for (const t0 = performance.now(); performance.now() - t0 < WARM_MS; ) runEach(s, prog.name, inputs);
  let capture = Infinity;
  for (let rep = 0; rep < Math.max(runs, 3); rep++) capture = Math.min(capture, timeCapture());
  // Each unchanged packet over and over, as the kernel's repeat loop runs it: batches of BATCH
  // runs, so the loop around Session.run is optimized code like the rest (best of 3 rounds).
  const BATCH = 1000;
  const timed = unchanged.map((p) => {
    const input = { packet: p.data, timeNs: p.timestampNs };
    let best = Infinity;
    let steps = 0;
    for (let rep = 0; rep < 3; rep++) {
      steps = 0;
      const t0 = performance.now();
      for (let k = 0; k < REPEAT / BATCH; k++) steps += runRepeated(s, prog.name, input, BATCH);
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
  return row;
}
