// The vitest integration as a user meets it: a test file using the `bpf` fixture and the
// matchers, run by a nested `vitest run` in a fresh folder. Failing tests must leave their trace
// under traces/failures/ and print the command that opens it at the run that failed; the trace
// at that step must show that run's exit; passing tests leave nothing.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackets, toHex } from '@rewind/vm';
import { Trace } from '../index.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const INTEGRATION = fileURLToPath(new URL('./index.ts', import.meta.url));
const REPORTER = fileURLToPath(new URL('./reporter.ts', import.meta.url));
const VITEST = join(REPO, 'node_modules/vitest/vitest.mjs');
const FIREWALL = join(REPO, 'examples/xdp-firewall/xdp-firewall.o');
const MIXED = join(REPO, 'examples/pcaps/mixed.pcap');
const CLI = join(REPO, 'packages/tui/bin/rewind.js');
const haveExamples = existsSync(FIREWALL) && existsSync(MIXED);
if (!haveExamples) console.log('vitest integration tests skipped: examples/xdp-firewall or examples/pcaps/mixed.pcap is missing');

/**
 * Packets of mixed.pcap and what the kernel does with them (examples/README.md, kernel
 * verdicts without maps.json): #0 TCP SYN to :80 XDP_PASS (2), #4 SYN from the compiled-in
 * blocked prefix XDP_DROP (1), #6 SYN to port 23 XDP_DROP (1).
 */
const packet = (i: number) => toHex(loadPackets({ pcap: MIXED })!.packets[i]!.data);

function fixtureFile(): string {
  return `
import { test, expect } from ${JSON.stringify(INTEGRATION)};
const FW = ${JSON.stringify(FIREWALL)};
const P0 = Buffer.from('${haveExamples ? packet(0) : ''}', 'hex');
const P4 = Buffer.from('${haveExamples ? packet(4) : ''}', 'hex');
const P6 = Buffer.from('${haveExamples ? packet(6) : ''}', 'hex');

test('passes', ({ bpf }) => {
  expect(bpf.load(FW).run({ packet: P0 })).toExitWith('XDP_PASS');
});

test('the second of three runs has the wrong verdict', ({ bpf }) => {
  const fw = bpf.load(FW);
  fw.run({ packet: P0 });
  const dropped = fw.run({ packet: P4 });
  fw.run({ packet: P0 });
  expect(dropped).toExitWith('XDP_PASS');
});

// Two rows with the same name: their traces must not overwrite each other.
test.for([4, 6])('row', (i, { bpf }) => {
  expect(bpf.load(FW).run({ packet: i === 4 ? P4 : P6 })).toExitWith('XDP_PASS');
});

test('retried', { retry: 1 }, ({ bpf }) => {
  expect(bpf.load(FW).run({ packet: P4 })).toExitWith('XDP_PASS');
});

test('throws without a matcher', ({ bpf }) => {
  bpf.load(FW).run({ packet: P0 });
  throw new Error('boom');
});

test('a map entry differs', ({ bpf }) => {
  const fw = bpf.load(FW);
  fw.run({ packet: P0 });
  fw.run({ packet: P4 });
  // fw_stats[1] counts drops by prefix: one packet, 54 bytes.
  expect(fw).toHaveMapEntry('fw_stats', 1, '02000000000000003600000000000000');
});
`;
}

interface Nested {
  status: number;
  out: string;
  dir: string;
  traces: string[];
}

function runNested(dir: string, file: string, env: NodeJS.ProcessEnv = {}): Nested {
  writeFileSync(
    join(dir, 'vitest.config.mjs'),
    `export default { test: { include: ['*.test.ts'], reporters: ['default', ${JSON.stringify(REPORTER)}], testTimeout: 60000 } };\n`,
  );
  const r = spawnSync(process.execPath, [VITEST, 'run', file, '--no-color'], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env, FORCE_COLOR: '0', NO_COLOR: '1', REWIND_TRACES_DIR: '', REWIND_KEEP_TRACES: '', ...env }, timeout: 180_000 });
  const failures = join(dir, 'traces/failures');
  return { status: r.status ?? -1, out: r.stdout + r.stderr, dir, traces: existsSync(failures) ? readdirSync(failures).sort() : [] };
}

describe.skipIf(!haveExamples)('the vitest integration, in a nested vitest run', () => {
  let work: string;
  let failing: Nested;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'rewind-vitest-it-'));
    writeFileSync(join(work, 'fw.test.ts'), fixtureFile());
    failing = runNested(work, 'fw.test.ts');
  }, 200_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('fails the run, keeps one trace per failing test attempt, none for the passing test', () => {
    expect(failing.status, failing.out).toBe(1);
    // The wrong verdict, two rows, two attempts of the retried test, the throw, the map entry.
    expect(failing.traces).toHaveLength(7);
    expect(failing.traces.every((t) => /^fw\.test\.ts--.+--[0-9a-f]{8}\.rwt$/.test(t))).toBe(true);
    expect(failing.traces.some((t) => t.startsWith('fw.test.ts--passes--'))).toBe(false);
    expect(failing.traces.filter((t) => t.startsWith('fw.test.ts--row--'))).toHaveLength(2);
    expect(failing.traces.filter((t) => /^fw\.test\.ts--retried--[0-9a-f]{8}\.rwt$/.test(t))).toHaveLength(1);
    expect(failing.traces.filter((t) => t.startsWith('fw.test.ts--retried--retry-1--'))).toHaveLength(1);
  });

  it('says what differed, in which run, and prints the command that opens the trace there', () => {
    const m = /run 1: exited with XDP_DROP \(r0 = 0x1\), expected XDP_PASS\s+open the trace there: rewind replay (traces\/failures\/fw\.test\.ts--the-second-of-three-runs-has-the-wrong-verdict--[0-9a-f]{8}\.rwt) --at (\d+)/.exec(failing.out);
    expect(m, failing.out).not.toBeNull();
    const trace = Trace.open(join(work, m![1]!));
    try {
      const step = Number(m![2]);
      expect(trace.runs).toHaveLength(3);
      // The command's step is run 1's last: the state after its exit, r0 = XDP_DROP.
      expect(trace.runs[1]!.lastStep).toBe(step);
      const s = trace.state(step);
      expect(s.run).toBe(1);
      expect(s.atEnd).toBe(true);
      expect(s.regs[0]).toBe(1n);
      expect(trace.runs[1]!.verdict).toBe('XDP_DROP');
      expect(trace.state(step + 1).run).toBe(2);
    } finally {
      trace.close();
    }
  });

  it('rewind inspect --at agrees with the printed step', () => {
    const m = /rewind replay (traces\/failures\/fw\.test\.ts--the-second[^ ]+\.rwt) --at (\d+)/.exec(failing.out)!;
    const r = spawnSync(process.execPath, [CLI, 'inspect', m[1]!, '--at', m[2]!, '--json'], { cwd: work, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { step: number; run: number; insn: string; regs: string[] };
    expect(s).toMatchObject({ step: Number(m[2]), run: 1, insn: 'exit' });
    expect(BigInt(s.regs[0]!)).toBe(1n);
  });

  it('a map entry failure names the map, the key and the first differing byte', () => {
    expect(failing.out).toMatch(/after run 1 \(the last\): map 'fw_stats' key 01000000 on CPU 0: first difference at byte 0: got 01/);
  });

  it('a failure outside the matchers still carries the command', () => {
    expect(failing.out).toMatch(/boom[\s\S]*Trace: rewind replay traces\/failures\/fw\.test\.ts--throws-without-a-matcher--[0-9a-f]{8}\.rwt --at \d+/);
  });

  it('the reporter lists every kept trace with its command', () => {
    const list = failing.out.slice(failing.out.indexOf('Rewind traces (7, 7 of failing tests):'));
    expect(list.length, failing.out).toBeGreaterThan(0);
    for (const t of failing.traces) expect(list).toContain(`rewind replay traces/failures/${t} --at `);
  });

  it('a kept trace verifies in a fresh folder (as on another machine)', () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'rewind-elsewhere-'));
    try {
      const name = failing.traces[0]!;
      cpSync(join(work, 'traces/failures', name), join(elsewhere, name));
      const r = spawnSync(process.execPath, [CLI, 'verify', name], { cwd: elsewhere, encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/every step agrees/);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('passing tests leave nothing behind; REWIND_KEEP_TRACES=all keeps theirs; the folder is configurable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rewind-vitest-pass-'));
    try {
      writeFileSync(join(dir, 'ok.test.ts'), fixtureFile().split("\n\ntest('the second")[0]!);
      const pass = runNested(dir, 'ok.test.ts');
      expect(pass.status, pass.out).toBe(0);
      expect(existsSync(join(dir, 'traces'))).toBe(false);
      expect(pass.out).not.toMatch(/Rewind traces/);
      mkdirSync(join(dir, 'ci'));
      const all = runNested(dir, 'ok.test.ts', { REWIND_KEEP_TRACES: 'all', REWIND_TRACES_DIR: 'ci/traces' });
      expect(all.status, all.out).toBe(0);
      expect(readdirSync(join(dir, 'ci/traces'))).toEqual([expect.stringMatching(/^ok\.test\.ts--passes--[0-9a-f]{8}\.rwt$/)]);
      expect(all.out).toMatch(/Rewind traces \(1\):/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
