#!/usr/bin/env node
// Benchmarks of the recorder and the trace reader (issue 4's targets), run by `pnpm bench`:
//   - size on disk per executed instruction and recording cost against a plain run, on the four
//     programs of ../shared/bench with their iteration counts divided by 10, and on the examples
//     over their pcaps;
//   - random access in a trace of 100M steps: the state at a random step, one step back, the last
//     write of a register or address across the whole trace;
//   - resident memory of `rewind inspect` on the full alu-loop trace (400M steps).
// Options: --runs N (best of N, default 3), --quick (skip the 400M-step trace).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { Recorder, Trace } = await import(join(root, 'packages/recorder/dist/index.js'));
const vm = await import(join(root, 'packages/vm/dist/index.js'));
const { parseDataFile, programFromBytecode, Session, loadProgramFile, loadPackets, selectProgram } = vm;

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 3) || 3;
const quick = args.includes('--quick');
const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-trace-'));
const pad = (s, n) => String(s).padStart(n);
const best = (f) => {
  let b = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f(i);
    b = Math.min(b, performance.now() - t0);
  }
  return b;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A .data program with its loop count (the first `mov %rN, <big>`) divided by `by`. */
function benchProgram(file, by) {
  const t = parseDataFile(readFileSync(file, 'utf8'), { file });
  const code = t.code;
  for (let pc = 0; pc < code.length; pc++) {
    if (code.op[pc] === 0xb7 && code.imm[pc] >= 100_000) {
      code.imm[pc] = Math.round(code.imm[pc] / by);
      break;
    }
  }
  return { program: { ...programFromBytecode(code, 'prog'), type: 'raw' }, mem: t.mem ?? new Uint8Array(0) };
}

function recordOnce(path, programs, maps, inputs, name, fill) {
  if (existsSync(path)) rmSync(path);
  const rec = Recorder.create(path, { programs, maps });
  fill?.(rec.session);
  let steps = 0;
  for (const input of inputs) steps += rec.run(name, input).steps;
  rec.close();
  return steps;
}

/** The trace's size (programs, inputs, keyframes and index included). */
function stepBytes(path) {
  return statSync(path).size;
}

// ---- 1. Bench programs: size and recording cost ----
const benchDir = join(root, '../shared/bench');
if (!existsSync(benchDir)) console.log(`(skipping the bench programs: ${benchDir} is not present)`);
else {
  console.log(`\nrecording the bench programs (iterations / 10), best of ${runs}:`);
  console.log(`${'program'.padEnd(12)} ${pad('instructions', 13)} ${pad('plain ms', 9)} ${pad('record ms', 10)} ${pad('ratio', 6)} ${pad('bytes', 11)} ${pad('B/insn', 7)}`);
  for (const f of ['alu-loop', 'mem-loop', 'fnv-hash', 'call-loop']) {
    const file = join(benchDir, `${f}.data`);
    if (!existsSync(file)) continue;
    const { program, mem } = benchProgram(file, 10);
    const s = new Session([program], []);
    let steps = 0;
    const plain = best(() => (steps = s.run('prog', { mem: mem.slice() }, { copies: false }).steps));
    const path = join(dir, `${f}.rwt`);
    const rec = best(() => recordOnce(path, [program], [], [{ mem: mem.slice() }], 'prog'));
    const bytes = stepBytes(path);
    console.log(`${f.padEnd(12)} ${pad(steps.toLocaleString('en-US'), 13)} ${pad(plain.toFixed(0), 9)} ${pad(rec.toFixed(0), 10)} ${pad((rec / plain).toFixed(1) + 'x', 6)} ${pad(bytes.toLocaleString('en-US'), 11)} ${pad((bytes / steps).toFixed(2), 7)}`);
    rmSync(path, { force: true });
  }
  console.log('bytes: the whole file (programs, inputs, keyframes, index included).');
}

// ---- 2. Examples over their pcaps ----
const ex = (p) => join(root, 'examples', p);
const examples = [
  ['xdp-firewall', ex('xdp-firewall/xdp-firewall.o'), ex('pcaps/mixed.pcap'), undefined, ex('xdp-firewall/maps.json')],
  ['l4-lb', ex('l4-lb/l4-lb.o'), ex('pcaps/lb.pcap'), undefined, ex('l4-lb/maps.json')],
  ['pkt-parser', ex('pkt-parser/pkt-parser.o'), ex('pcaps/parser.pcap')],
  ['tc-ratelimit', ex('tc-ratelimit/tc-ratelimit.o'), ex('pcaps/mixed.pcap')],
  ['tail-pipeline', ex('tail-pipeline/tail-pipeline.o'), ex('pcaps/mixed.pcap'), 'xdp_entry'],
  ['ringbuf-events', ex('ringbuf-events/ringbuf-events.o'), ex('pcaps/events.pcapng')],
];
console.log(`\nrecording the examples over their pcaps (each pcap 20 times over), best of ${runs}:`);
console.log(`${'example'.padEnd(15)} ${pad('runs', 5)} ${pad('steps', 8)} ${pad('plain ms', 9)} ${pad('record ms', 10)} ${pad('ratio', 6)} ${pad('B/step', 7)}`);
for (const [name, obj, pcap, section, mapsFile] of examples) {
  if (!existsSync(obj) || !existsSync(pcap)) continue;
  const src = loadProgramFile(obj);
  const prog = selectProgram(src, section);
  const packets = loadPackets({ pcap }).packets;
  const inputs = [];
  for (let k = 0; k < 20; k++) for (const p of packets) inputs.push({ packet: p.data, timeNs: p.timestampNs ?? 0n });
  const json = mapsFile ? JSON.parse(readFileSync(mapsFile, 'utf8')) : {};
  const fill = (s) => {
    for (const [m, entries] of Object.entries(json)) for (const e of entries) s.maps.find((x) => x.name === m).update(Buffer.from(e.key, 'hex'), Buffer.from(e.value, 'hex'), 0);
  };
  let steps = 0;
  const plain = best(() => {
    const s = new Session(src.programs, src.maps);
    fill(s);
    steps = 0;
    for (const input of inputs) steps += s.run(prog.name, input, { copies: false }).steps + 1;
  });
  const path = join(dir, `${name}.rwt`);
  const rec = best(() => recordOnce(path, src.programs, src.maps, inputs, prog.name, fill));
  const bytes = statSync(path).size;
  console.log(`${name.padEnd(15)} ${pad(inputs.length, 5)} ${pad(steps, 8)} ${pad(plain.toFixed(1), 9)} ${pad(rec.toFixed(1), 10)} ${pad((rec / plain).toFixed(1) + 'x', 6)} ${pad((bytes / steps).toFixed(1), 7)}`);
  rmSync(path, { force: true });
}
console.log('plain: a session running the same inputs without recording (a session created per repetition in both).');

// ---- 3. Random access in a 100M-step trace ----
function access(label, path, targets) {
  const t0 = performance.now();
  const t = Trace.open(path);
  const open = performance.now() - t0;
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const states = [];
  const steps = [];
  for (let i = 0; i < 41; i++) {
    const n = Math.floor(rand() * t.lastStep);
    const a = performance.now();
    t.state(n);
    states.push(performance.now() - a);
    steps.push(n);
  }
  const backs = [];
  for (const n of steps.slice(0, 21)) {
    t.state(n);
    const a = performance.now();
    t.state(n - 1);
    backs.push(performance.now() - a);
  }
  console.log(`\n${label}: ${(t.lastStep + 1).toLocaleString('en-US')} steps, ${statSync(path).size.toLocaleString('en-US')} bytes; open ${open.toFixed(0)} ms`);
  console.log(`  state at a random step: median ${median(states).toFixed(1)} ms, max ${Math.max(...states).toFixed(1)} ms (41 steps)`);
  console.log(`  one step back: median ${median(backs).toFixed(2)} ms, max ${Math.max(...backs).toFixed(2)} ms (21 steps)`);
  for (const [what, target, from] of targets) {
    // A fresh reader each time: nothing decoded before.
    const fresh = Trace.open(path);
    const a = performance.now();
    const at = fresh.prevWrite(target, from ?? fresh.lastStep);
    console.log(`  last write of ${what} before step ${(from ?? fresh.lastStep).toLocaleString('en-US')}: step ${at} in ${(performance.now() - a).toFixed(0)} ms`);
    fresh.close();
  }
  t.close();
}
if (existsSync(benchDir)) {
  const alu = benchProgram(join(benchDir, 'alu-loop.data'), 4);
  const aluPath = join(dir, 'alu-100M.rwt');
  recordOnce(aluPath, [alu.program], [], [{ mem: alu.mem }], 'prog');
  access('alu-loop, 25M iterations', aluPath, [
    ['r1 (written every iteration)', { kind: 'reg', reg: 1 }],
    ['r5 (never written: the whole trace)', { kind: 'reg', reg: 5 }],
  ]);
  rmSync(aluPath, { force: true });
  const fnv = benchProgram(join(benchDir, 'fnv-hash.data'), 2);
  const fnvPath = join(dir, 'fnv-97M.rwt');
  recordOnce(fnvPath, [fnv.program], [], [{ mem: fnv.mem }], 'prog');
  access('fnv-hash, 250,000 passes', fnvPath, [
    ['r3 (written at step 2 only)', { kind: 'reg', reg: 3 }],
    ['r6 (a byte loaded every inner iteration)', { kind: 'reg', reg: 6 }],
  ]);
  rmSync(fnvPath, { force: true });
  const memLoop = benchProgram(join(benchDir, 'mem-loop.data'), 2.5);
  const memPath = join(dir, 'mem-100M.rwt');
  recordOnce(memPath, [memLoop.program], [], [{ mem: memLoop.mem }], 'prog');
  access('mem-loop, 20M iterations', memPath, [
    ['stack-8 (stored every iteration)', { kind: 'mem', region: 0, offset: 504, size: 8 }],
    ['stack-16 (never written: the whole trace)', { kind: 'mem', region: 0, offset: 496, size: 8 }],
  ]);
  rmSync(memPath, { force: true });

  // ---- 4. Memory of inspecting the full alu-loop trace ----
  if (!quick) {
    const full = benchProgram(join(benchDir, 'alu-loop.data'), 1);
    const fullPath = join(dir, 'alu-400M.rwt');
    const t0 = performance.now();
    const steps = recordOnce(fullPath, [full.program], [], [{ mem: full.mem }], 'prog');
    const recMs = performance.now() - t0;
    // What `rewind inspect --at N --json` does (open the trace, rebuild the step, print its JSON),
    // in a child process that reports its peak resident memory.
    const probe = `const { Trace } = await import(${JSON.stringify('file://' + join(root, 'packages/recorder/dist/index.js'))});
const t = Trace.open(process.argv[1]);
process.stdout.write(JSON.stringify(t.snapshot(Number(process.argv[2]))).slice(0, 0));
t.close();
process.stdout.write('maxrss ' + process.resourceUsage().maxRSS + '\\n');`;
    const rss = [];
    for (const at of [1, 123_456_789, 399_999_999, steps]) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe, fullPath, String(at)], { encoding: 'utf8' });
      const m = /maxrss (\d+)/.exec(r.stdout);
      if (r.status !== 0 || !m) throw new Error(`inspecting step ${at} failed: ${r.stderr}`);
      rss.push(Number(m[1]) / 1024);
    }
    console.log(`\nalu-loop, full (${steps.toLocaleString('en-US')} steps): recorded in ${(recMs / 1000).toFixed(1)} s, ${statSync(fullPath).size.toLocaleString('en-US')} bytes`);
    console.log(`  the state of one step as rewind inspect --json builds it, in a fresh process: max resident ${Math.max(...rss).toFixed(0)} MB over steps 1, 123456789, 399999999, ${steps}`);
    rmSync(fullPath, { force: true });
  }
}
rmSync(dir, { recursive: true, force: true });
