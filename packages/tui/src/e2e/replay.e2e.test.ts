// End to end: `rewind replay` in a real terminal (tmux), driven with send-keys and read with
// capture-pane; what the screen shows at each step — step number, pc, source line, registers —
// must be what `rewind inspect --json` says about the same step.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO, rewind } from '../testing.js';

const haveTmux = spawnSync('tmux', ['-V']).status === 0;
if (!haveTmux) console.log('e2e: tmux is not installed; the terminal tests are skipped (apt-get install tmux)');

const EX = join(REPO, 'examples');
const sessions: string[] = [];
let dir = '';
let trace = '';

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Starts `rewind <args>` in a new detached tmux session of the given size; the shell reports its exit status. */
function start(args: string[], opts: { cols?: number; rows?: number; env?: Record<string, string>; cwd?: string } = {}): string {
  const name = `rewind-e2e-${process.pid}-${sessions.length}-${Date.now() % 100000}`;
  sessions.push(name);
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v} `).join('');
  const cmd = `cd ${opts.cwd ?? REPO} && ${env}${process.execPath} ${BIN} ${args.join(' ')}; echo "EXITED $?"; sleep 600`;
  tmux('new-session', '-d', '-s', name, '-x', String(opts.cols ?? 120), '-y', String(opts.rows ?? 40), 'sh', '-c', cmd);
  return name;
}

const capture = (name: string, escapes = false): string => tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', name);

async function waitFor(name: string, test: (screen: string) => boolean, what: string, escapes = false): Promise<string> {
  const until = Date.now() + 15_000;
  let screen = '';
  while (Date.now() < until) {
    screen = capture(name, escapes);
    if (test(screen)) return screen;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; the screen:\n${screen}`);
}

interface Shown {
  screen: string;
  step: number;
  last: number;
  pc: number;
  line?: number;
  regs: Map<number, bigint>;
}

/** Reads the status line, the source and disassembly cursors and the registers pane off the screen. */
function readScreen(screen: string): Shown {
  const lines = screen.split('\n');
  const status = lines.find((l) => /^step \d+\/\d+/.test(l));
  if (!status) throw new Error(`no status line on the screen:\n${screen}`);
  const [, step, last] = /^step (\d+)\/(\d+)/.exec(status)!;
  const pc = Number(/│ pc (\d+) │/.exec(status)![1]);
  const disasmTitle = lines.findIndex((l) => l.startsWith('2 Disassembly'));
  const regCol = lines[0]!.indexOf('3 Registers');
  let line: number | undefined;
  for (const l of lines.slice(1, disasmTitle)) {
    const m = /^.?▶\s*(\d+) /.exec(l.slice(0, regCol));
    if (m) line = Number(m[1]);
  }
  const disasmPc = lines.slice(disasmTitle).map((l) => /^.?▶\s*(\d+):/.exec(l.slice(0, regCol))).find(Boolean);
  expect(Number(disasmPc?.[1]), 'the disassembly cursor is at the status line pc').toBe(pc);
  const regs = new Map<number, bigint>();
  for (const l of lines) {
    const m = /^(r(?:10|\d))\s+\S+\s+(0x[0-9a-f]+)/.exec(l.slice(regCol));
    if (m) regs.set(Number(m[1]!.slice(1)), BigInt(m[2]!));
  }
  return { screen, step: Number(step), last: Number(last), pc, line, regs };
}

function inspect(step: number): { pc: number; regs: string[]; source?: { line: number } } {
  const r = rewind(['inspect', trace, '--at', String(step), '--json']);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

function expectMatchesInspect(shown: Shown): void {
  const want = inspect(shown.step);
  expect(shown.pc, `pc at step ${shown.step}`).toBe(want.pc);
  expect(shown.line, `source line at step ${shown.step} on\n${shown.screen}`).toBe(want.source?.line);
  expect(shown.regs.size).toBe(11);
  for (let r = 0; r <= 10; r++) expect(shown.regs.get(r), `r${r} at step ${shown.step}`).toBe(BigInt(want.regs[r]!));
}

async function keys(name: string, expectStep: number, ...ks: string[]): Promise<Shown> {
  tmux('send-keys', '-t', name, ...ks);
  const screen = await waitFor(name, (s) => new RegExp(`^step ${expectStep}/`, 'm').test(s), `step ${expectStep}`);
  return readScreen(screen);
}

describe.skipIf(!haveTmux)('rewind replay in a terminal', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rewind-e2e-'));
    trace = join(dir, 'fw.rwt');
    const r = rewind(['record', join(EX, 'xdp-firewall/xdp-firewall.o'), '--pcap', join(EX, 'pcaps/mixed.pcap'), '--maps', join(EX, 'xdp-firewall/maps.json'), '-o', trace]);
    expect(r.status, r.stderr).toBe(0);
  });

  afterAll(() => {
    for (const s of sessions) spawnSync('tmux', ['kill-session', '-t', s]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows what inspect --json says, stepping forward and backward across a run boundary', async () => {
    const summary = JSON.parse(rewind(['inspect', trace, '--json']).stdout) as { runs: { firstStep: number; lastStep: number }[] };
    const run0 = summary.runs[0]!;
    const name = start(['replay', trace]);
    let shown = readScreen(await waitFor(name, (s) => /^step 0\//m.test(s), 'the first frame'));
    expectMatchesInspect(shown);
    for (const [step, k] of [[1, 's'], [2, 'Right'], [7, '5s'], [6, 'S'], [5, 'Left']] as const) {
      shown = await keys(name, step, ...(k === '5s' ? ['5', 's'] : [k]));
      expectMatchesInspect(shown);
    }
    // The run boundary: to the next run's first step, one back onto run 0's last step, and forward again.
    shown = await keys(name, run0.lastStep + 1, ']');
    expectMatchesInspect(shown);
    shown = await keys(name, run0.lastStep, 'S');
    expectMatchesInspect(shown);
    shown = await keys(name, run0.lastStep - 1, 'S');
    expectMatchesInspect(shown);
    shown = await keys(name, run0.lastStep + 1, 's', 's');
    expectMatchesInspect(shown);
    shown = await keys(name, shown.last, 'G');
    expectMatchesInspect(shown);
    shown = await keys(name, 40, ':', 'goto 40', 'Enter');
    expectMatchesInspect(shown);
    tmux('send-keys', '-t', name, 'q');
    const after = await waitFor(name, (s) => s.includes('EXITED 0'), 'the exit');
    // The alternate screen is gone: none of the debugger's screen is left.
    expect(after).not.toContain('3 Registers');
  });

  it('continue stops at a breakpoint on a source line that inspect places there', async () => {
    const name = start(['replay', trace]);
    await waitFor(name, (s) => /^step 0\//m.test(s), 'the first frame');
    tmux('send-keys', '-t', name, ':', 'break xdp-firewall.c:133', 'Enter');
    await waitFor(name, (s) => s.includes('breakpoint 1 at xdp-firewall.c:133'), 'the breakpoint');
    tmux('send-keys', '-t', name, 'c');
    const screen = await waitFor(name, (s) => /breakpoint 1 \(xdp-firewall\.c:133\) at step \d+/.test(s), 'the stop');
    const shown = readScreen(screen);
    expect(shown.line).toBe(133);
    expectMatchesInspect(shown);
  });

  it('follows a resize, and a terminal of 80x24 keeps the other panes one key away', async () => {
    const name = start(['replay', trace, '--at', '30']);
    await waitFor(name, (s) => /^step 30\//m.test(s), 'the first frame');
    expect(capture(name)).toContain('4 Stack');
    tmux('resize-window', '-t', name, '-x', '80', '-y', '24');
    const small = await waitFor(name, (s) => s.includes('[4 Stack]'), 'the narrow layout');
    expect(small.split('\n').filter((l) => l.length > 80)).toEqual([]);
    tmux('send-keys', '-t', name, '5');
    await waitFor(name, (s) => s.includes('[5 Packet]') && s.includes('IPv4 10.0.0.1'), 'the packet pane');
    tmux('send-keys', '-t', name, 'C-c');
    await waitFor(name, (s) => s.includes('EXITED 0'), 'Ctrl-C to quit');
  });

  it('restores the terminal on SIGTERM', async () => {
    const name = start(['replay', trace]);
    await waitFor(name, (s) => /^step 0\//m.test(s), 'the first frame');
    const pids = spawnSync('pgrep', ['-f', `^${process.execPath} ${BIN} replay ${trace}`], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(Number(pid), 'SIGTERM');
    const after = await waitFor(name, (s) => s.includes('EXITED 143'), 'the exit');
    expect(after).not.toContain('3 Registers');
  });

  it('rewind demo records the bundled example and opens it with its source', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'rewind-e2e-demo-'));
    try {
      const name = start(['demo'], { cwd });
      const screen = await waitFor(name, (s) => /^step 0\/1554/m.test(s), 'the demo');
      expect(screen).toMatch(/^1 Source {2}xdp-firewall\.c {2}/m);
      expect(screen).toMatch(/▶ 120 int xdp_firewall\(struct xdp_md \*ctx\)/);
      tmux('send-keys', '-t', name, 'q');
      const after = await waitFor(name, (s) => s.includes('EXITED 0'), 'the exit');
      expect(after).toContain('rewind demo: the trace is traces/xdp-firewall-1.rwt (rewind replay traces/xdp-firewall-1.rwt opens it again)');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('NO_COLOR: no colour sequences at all; without it, colours', async () => {
    const plain = start(['replay', trace, '--at', '30'], { env: { NO_COLOR: '1' } });
    const coloured = start(['replay', trace, '--at', '30']);
    // SGR colours (30-38, 40-48, 90-97, 100-107); 39 and 49 only reset to the default, tmux writes them anyway.
    const colour = /\x1b\[(?:[0-9;]*;)?(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9;]*)?m/;
    const a = await waitFor(plain, (s) => /step 30\//.test(s), 'the NO_COLOR frame', true);
    const b = await waitFor(coloured, (s) => /step 30\//.test(s), 'the coloured frame', true);
    expect(a).not.toMatch(colour);
    // Bold and inverse are not colours: the status line is still inverse.
    expect(a).toMatch(/\x1b\[[0-9;]*7[0-9;]*m/);
    expect(b).toMatch(colour);
  });
});
