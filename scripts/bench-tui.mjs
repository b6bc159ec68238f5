#!/usr/bin/env node
// Benchmark of the terminal debugger (issue 5's targets) through a pseudo-terminal: util-linux
// `script` gives `rewind replay` a pty of 120x40; keys are written to it and the time until the
// status line shows the new step is measured.
//   - startup to first frame, on a trace of more than 100M steps (crc32.data, 186M steps);
//   - keypress to updated screen, median of --reps presses, for each navigation key and `:goto`
//     (keys alternate forward and back, so they often land on a state the debugger kept or
//     prefetched; `:goto` to new steps shows what a state the trace must rebuild costs);
//   - reverse-continue to a watchpoint across the whole trace;
//   - resident memory of the debugger at the end.
// Run after `npx tsc -b`: node scripts/bench-tui.mjs [--reps N] [--trace FILE]

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// util-linux `script` provides the pseudo-terminal.
try {
  execFileSync('script', ['--version'], { stdio: 'ignore' });
} catch {
  console.log('(skipping the debugger benchmark: util-linux `script` is not installed)');
  process.exit(0);
}
const bin = join(root, 'packages/tui/bin/rewind.js');
const args = process.argv.slice(2);
const opt = (name, d) => (args.includes(name) ? args[args.indexOf(name) + 1] : d);
const reps = Number(opt('--reps', 15));
const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-tui-'));
let trace = opt('--trace');
if (!trace) {
  trace = join(dir, 'crc32.rwt');
  process.stderr.write('recording examples/bench/crc32.data (186M steps)...\n');
  execFileSync(process.execPath, [bin, 'record', join(root, 'examples/bench/crc32.data'), '-o', trace], { stdio: ['ignore', 'ignore', 'inherit'] });
}
const summary = JSON.parse(execFileSync(process.execPath, [bin, 'inspect', trace, '--json'], { encoding: 'utf8' }));
const last = summary.steps;
const mid = Math.floor(last / 2);

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]/g;
let out = '';
let waiters = [];
const t0 = performance.now();
// A session of its own: `script` then never stops for the terminal of whoever runs the benchmark.
const child = spawn('script', ['-qfec', `stty rows 40 cols 120; exec ${process.execPath} ${bin} replay ${trace} --at ${mid}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
const stop = () => {
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
};
process.on('exit', stop);
child.stdout.on('data', (d) => {
  out += d.toString('utf8');
  for (const w of waiters) w();
});

/** The step the latest status line shows in what the terminal got since `from`. */
function stepSince(from) {
  const text = out.slice(from).replace(ANSI, '');
  const all = [...text.matchAll(/step (\d+)\/\d+/g)];
  return all.length ? Number(all[all.length - 1][1]) : undefined;
}

function waitStep(from, test, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000);
    const check = () => {
      const s = stepSince(from);
      if (s !== undefined && test(s)) {
        clearTimeout(timer);
        waiters = waiters.filter((w) => w !== check);
        resolve(s);
      }
    };
    waiters.push(check);
    check();
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const settle = () => new Promise((r) => setTimeout(r, 120));

await waitStep(0, (s) => s === mid, 'the first frame');
const startup = performance.now() - t0;
let at = mid;

/** Presses a key and measures until the screen shows a step other than the current one. */
async function press(keys) {
  await settle();
  const from = out.length;
  const t = performance.now();
  child.stdin.write(keys);
  at = await waitStep(from, (s) => s !== at, JSON.stringify(keys));
  return performance.now() - t;
}

const rows = [];
async function measure(name, forward, backward) {
  // Every measurement starts from the middle of the trace.
  if (at !== mid) await press(`:goto ${mid}\r`);
  const times = [];
  for (let i = 0; i < reps; i++) {
    times.push(await press(forward));
    times.push(await press(backward));
  }
  rows.push([name, median(times), Math.max(...times)]);
}

await measure('s / S (step, step back)', 's', 'S');
await measure('→ / ← (arrows)', '\x1b[C', '\x1b[D');
await measure('n / N (next, back)', 'n', 'N');
await measure('25s / 25S (count)', '25s', '25S');
await measure('g / G (first, last step)', 'g', 'G');
await measure('f / F (finish, back)', 'f', 'F');
await measure('c / C (continue to run end, back)', 'c', 'C');
await measure(':goto N (two steps, kept states)', `:goto ${Math.floor(mid / 3)}\r`, `:goto ${mid}\r`);
// Steps never shown before: the trace rebuilds each state (the states kept and prefetched do not help).
{
  const times = [];
  for (let i = 0; i < 2 * reps; i++) times.push(await press(`:goto ${Math.floor(((i + 0.5) / (2 * reps)) * last) + 7}\r`));
  rows.push([':goto N (a new step each time)', median(times), Math.max(...times)]);
}

// Reverse-continue to a watchpoint: from the last step, back across the whole trace to the last
// write of a stack slot crc32 never writes (so the search covers every step, and stops at the start).
await press('G');
await settle();
child.stdin.write(':watch *(u32 *)(r10 - 8)\r');
await settle();
const rc = await press('C');
const rss = (() => {
  try {
    const pid = execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).trim().split('\n')[0];
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return NaN;
  }
})();
child.stdin.write('q');
await new Promise((r) => child.on('exit', r));
if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });

const f = (ms) => `${ms.toFixed(1)} ms`.padStart(10);
console.log(`rewind replay through a pty, 120x40, trace of ${(last + 1).toLocaleString('en-US')} steps, ${reps} presses each way`);
console.log(`startup to first frame (at step ${mid}): ${f(startup)}   (target 500 ms)`);
console.log(`${'key'.padEnd(38)}${'median'.padStart(10)}${'max'.padStart(10)}   (target: median 16 ms)`);
for (const [name, med, max] of rows) console.log(`${name.padEnd(38)}${f(med)}${f(max)}`);
console.log(`reverse-continue to a watchpoint across the trace: ${f(rc)}   (target 1 s)`);
console.log(`resident memory at the end: ${rss.toFixed(0)} MB   (target 300 MB)`);
