// `rewind test` as a user runs it: the example specs, a failing spec with --record-failures
// (the printed command opens the trace at the run that failed), bad input, and uBPF's files.

import { afterAll, describe, expect, test } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO, rewind } from '../testing.js';

const tmp = mkdtempSync(join(tmpdir(), 'rewind-test-cmd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SPECS = join(REPO, 'examples/specs');
const FIREWALL = join(REPO, 'examples/xdp-firewall/xdp-firewall.o');
const MIXED = join(REPO, 'examples/pcaps/mixed.pcap');
const haveExamples = existsSync(SPECS) && existsSync(FIREWALL) && existsSync(MIXED);
if (!haveExamples) console.log('rewind test: example specs missing, their tests skipped');

const UBPF = fileURLToPath(new URL('../../../../../shared/bpf-tests/ubpf', import.meta.url));
const haveUbpf = existsSync(UBPF);
if (!haveUbpf) console.log(`rewind test: ${UBPF} is missing, the uBPF tests are skipped`);

function spec(name: string, doc: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

describe.skipIf(!haveExamples)('rewind test on specs', () => {
  test('the example specs all pass, a line per test and a summary', () => {
    const files = readdirSync(SPECS).filter((f) => f.endsWith('.rewind.json'));
    const count = files.reduce((n, f) => n + (JSON.parse(readFileSync(join(SPECS, f), 'utf8')) as { tests: unknown[] }).tests.length, 0);
    const r = rewind(['test', 'examples/specs', 'examples/asm/tcp-dport.data']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('pass  '))).toHaveLength(count + 1);
    expect(r.stdout).toMatch(/^pass {2}examples\/specs\/xdp-firewall\.rewind\.json › mixed\.pcap #4: TCP SYN 198\.51\.100\.7/m);
    expect(lines.at(-1)).toBe(`${count + 1} tests: ${count + 1} passed, 0 failed`);
  });

  // mixed.pcap #0 is passed and #4 dropped by the firewall's compiled-in prefix (the kernel's
  // verdicts, examples/README.md). The spec claims #4 passes, in the second of three runs.
  const failing = () =>
    spec('fw.rewind.json', {
      program: FIREWALL,
      tests: [
        { name: 'passes #0', packet: { pcap: MIXED, index: 0 }, expect: { verdict: 'XDP_PASS' } },
        { name: 'claims #4 passes', packets: { pcap: MIXED, indexes: [0, 4, 0] }, expect: { verdict: 'XDP_PASS' } },
        { name: 'a wrong counter', packets: { pcap: MIXED, indexes: [0, 4] }, expect: { maps: { fw_stats: [{ key: 1, value: '02000000000000003600000000000000' }] } } },
      ],
    });

  test('a failing spec: FAIL lines say what differed, exit 1; --record-failures keeps only the failures, with their commands', () => {
    const file = failing();
    const dir = join(tmp, 'kept');
    const r = rewind(['test', file, '--record-failures', dir]);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^pass {2}.*fw\.rewind\.json › passes #0$/m);
    expect(r.stdout).toMatch(/^FAIL {2}.*fw\.rewind\.json › claims #4 passes\n {6}run 1: exited with XDP_DROP \(r0 = 0x1\), expected XDP_PASS\n {6}trace: rewind replay (\S+) --at (\d+)$/m);
    expect(r.stdout).toMatch(/map 'fw_stats' key 01000000 on CPU 0: first difference at byte 0: got 01/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`3 tests: 1 passed, 2 failed; 2 traces in ${dir}`);
    expect(readdirSync(dir).sort()).toEqual(['fw.rewind.json--a-wrong-counter.rwt', 'fw.rewind.json--claims-4-passes.rwt']);
  });

  test('the printed command opens the trace at the failing run\'s exit (rewind inspect --at agrees)', () => {
    const dir = join(tmp, 'inspect');
    const r = rewind(['test', failing(), '--record-failures', dir]);
    const [, trace, at] = /FAIL.*claims #4 passes\n.*\n {6}trace: rewind replay (\S+) --at (\d+)/.exec(r.stdout)!;
    const s = rewind(['inspect', trace!, '--at', at!, '--json']);
    expect(s.status, s.stderr).toBe(0);
    const state = JSON.parse(s.stdout) as { step: number; run: number; insn: string; regs: string[] };
    expect(state).toMatchObject({ step: Number(at), run: 1, insn: 'exit' });
    expect(BigInt(state.regs[0]!)).toBe(1n); // XDP_DROP
    // The step after is the next run's first.
    expect(JSON.parse(rewind(['inspect', trace!, '--at', String(Number(at) + 1), '--json']).stdout).run).toBe(2);
  });

  test('a kept trace copied to a fresh folder verifies there', () => {
    const dir = join(tmp, 'copy');
    const r = rewind(['test', failing(), '--record-failures', dir]);
    const trace = /trace: rewind replay (\S+) --at/.exec(r.stdout)![1]!;
    const elsewhere = mkdtempSync(join(tmpdir(), 'rewind-elsewhere-'));
    try {
      cpSync(trace, join(elsewhere, 'failure.rwt'));
      const v = rewind(['verify', 'failure.rwt'], { cwd: elsewhere });
      expect(v.status, v.stdout + v.stderr).toBe(0);
      expect(v.stdout).toMatch(/every step agrees/);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  test('without --record-failures nothing is written, and no trace line is printed', () => {
    const r = rewind(['test', failing()], { cwd: tmp });
    expect(r.status).toBe(1);
    expect(r.stdout).not.toMatch(/trace:/);
    expect(existsSync(join(tmp, 'traces'))).toBe(false);
  });

  test('a passing run with --record-failures leaves the folder empty (not even created)', () => {
    const dir = join(tmp, 'none');
    const r = rewind(['test', 'examples/specs/xdp-firewall.rewind.json', '--record-failures', dir]);
    expect(r.status).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  test('expectations on packets, output and absent keys are checked', () => {
    const file = spec('more.rewind.json', {
      program: FIREWALL,
      tests: [
        { name: 'packet differs', packet: { pcap: MIXED, index: 0 }, expect: { packet: '00' } },
        { name: 'unexpected output', packet: { pcap: MIXED, index: 0 }, expect: { output: [{ printk: 'hello' }] } },
        { name: 'key present', packet: { pcap: MIXED, index: 0 }, expect: { maps: { fw_stats: [{ key: 0, value: null }] } } },
        { name: 'fault expected', packet: { pcap: MIXED, index: 0 }, expect: { fault: true } },
      ],
    });
    const r = rewind(['test', file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/packet differs\n {6}emitted a different packet: first difference at byte 0 \(\d+ bytes, expected 1\)/);
    expect(r.stdout).toMatch(/unexpected output\n {6}output 0: none, expected \{"printk":"hello"\}/);
    expect(r.stdout).toMatch(/key present\n {6}map 'fw_stats' has key 00000000, expected it absent/);
    expect(r.stdout).toMatch(/fault expected\n {6}exited with XDP_PASS \(r0 = 0x2\), expected a fault/);
  });
});

describe('rewind test: bad input exits 2 with one line naming the file', () => {
  const bad = (doc: string) => {
    const file = join(tmp, `bad-${Math.random().toString(36).slice(2)}.rewind.json`);
    writeFileSync(file, doc);
    return file;
  };
  test.each([
    ['not JSON', '{ "program": ', /: not valid JSON/],
    ['an unknown field', JSON.stringify({ program: 'x.o', tests: [{ name: 't', expect: {} }], programm: 1 }), /: unknown field 'programm'/],
    ['a missing program', JSON.stringify({ program: 'nope.o', tests: [{ name: 't', expect: {} }] }), /: the program nope\.o does not exist/],
    ['a test without expect', JSON.stringify({ program: 'x.o', tests: [{ name: 't' }] }), /: tests\[0\] \(t\): "expect" is missing/],
  ])('%s', (_, doc, message) => {
    const file = bad(doc);
    const r = rewind(['test', file]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(message);
  });

  test('a path that does not exist', () => {
    const r = rewind(['test', join(tmp, 'missing.rewind.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/missing\.rewind\.json: no such file or folder/);
  });

  test('a malformed .data file', () => {
    const file = join(tmp, 'broken.data');
    writeFileSync(file, '-- asm\nmov %r0, \n-- result\n0x1\n');
    const r = rewind(['test', file]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('broken.data');
  });
});

describe.skipIf(!haveUbpf)("rewind test on uBPF's .data files", () => {
  test('runs every file; fails exactly where Rewind follows the kernel or uBPF-only helpers are needed', () => {
    const dir = join(tmp, 'ubpf');
    mkdirSync(dir);
    const r = rewind(['test', UBPF, '--record-failures', dir]);
    expect(r.status).toBe(1);
    const failed = [...r.stdout.matchAll(/^FAIL {2}\S*?ubpf\/(\S+)$/gm)].map((m) => m[1]).sort();
    // packages/vm/src/ubpf.test.ts, KERNEL_DEVIATIONS: the verifier rejects division by a
    // constant 0 and unreachable code; reloading is a rule of uBPF's API. The others call uBPF's
    // own test helpers (ids 0, 1, 4) or its unwind extension (helper 5).
    expect(failed).toEqual(
      [
        'div-by-zero-imm.data',
        'div64-by-zero-imm.data',
        'early-exit.data',
        'mod-by-zero-imm.data',
        'mod64-by-zero-imm.data',
        'reload.data',
        'extensions/call_unwind.data',
        'helpers/call-memfrob.data',
        'helpers/call-save.data',
        'helpers/call.data',
        'stack2.data',
        'string-stack.data',
      ].sort(),
    );
    // uBPF's ELF tests have no program Rewind can run.
    expect(r.stdout).toMatch(/^skip {2}\S+\/elf\/ok\.data: no program to run \(sections: pyelf, result\)$/m);
    expect(r.stdout).toMatch(/^pass {2}\S+\/errors\/err-infinite-loop\.data$/m);
    expect(r.stdout).toMatch(/^pass {2}\S+\/alu\.data$/m);
    // A trace for each failure that ran (the rejected ones have none), each named after its file.
    const kept = readdirSync(dir).sort();
    expect(kept).toEqual(['call-memfrob.data.rwt', 'call_unwind.data.rwt', 'reload.data.rwt']);
    for (const k of kept) expect(r.stdout).toContain(`trace: rewind replay ${join(dir, k)} --at `);
  });
});
