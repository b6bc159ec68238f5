import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, rewind } from '../testing.js';
import { compileC } from './debug.js';

const EX = join(REPO, 'examples');
const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'rewind-debug-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const haveClang = ['clang-19', 'clang'].some((c) => spawnSync(c, ['--version']).status === 0);
if (!haveClang) console.log('debug.test: no clang; compiling a .c file is not tested');

describe('rewind debug and rewind demo without a terminal', () => {
  it('demo records the bundled firewall over the bundled pcap into ./traces and names the trace', () => {
    const cwd = temp();
    const r = rewind(['demo'], { cwd });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      'rewind demo: recorded 20 runs (1555 steps) into traces/xdp-firewall-1.rwt\n' +
        'rewind demo: not a terminal, so the debugger does not start; print the state at a step with: rewind inspect traces/xdp-firewall-1.rwt --at N\n',
    );
    // The trace is the real recording: inspect reads it, and its verdicts are rewind run's.
    const summary = JSON.parse(rewind(['inspect', join(cwd, 'traces/xdp-firewall-1.rwt'), '--json']).stdout);
    const run = JSON.parse(rewind(['run', join(EX, 'xdp-firewall/xdp-firewall.o'), '--pcap', join(EX, 'pcaps/mixed.pcap'), '--maps', join(EX, 'xdp-firewall/maps.json'), '--json']).stdout);
    expect(summary.runs.map((x: { verdict: string }) => x.verdict)).toEqual(run.runs.map((x: { verdict: string }) => x.verdict));
    // A second demo never overwrites the first.
    expect(rewind(['demo'], { cwd }).stdout).toContain('traces/xdp-firewall-2.rwt');
  });

  it('debug takes the inputs of rewind run', () => {
    const cwd = temp();
    const r = rewind(['debug', join(EX, 'l4-lb/l4-lb.o'), '--pcap', join(EX, 'pcaps/lb.pcap'), '--maps', join(EX, 'l4-lb/maps.json')], { cwd });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^rewind debug: recorded \d+ runs \(\d+ steps\) into traces\/l4-lb-1\.rwt\n/);
    expect(existsSync(join(cwd, 'traces/l4-lb-1.rwt'))).toBe(true);
  });

  it.skipIf(!haveClang)('debug compiles a .c file with clang -target bpf and records it', () => {
    const cwd = temp();
    copyFileSync(join(EX, 'xdp-firewall/xdp-firewall.c'), join(cwd, 'fw.c'));
    const r = rewind(['debug', 'fw.c', '--pcap', join(EX, 'pcaps/mixed.pcap')], { cwd });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/into traces\/fw-1\.rwt/);
    const st = JSON.parse(rewind(['inspect', join(cwd, 'traces/fw-1.rwt'), '--at', '0', '--json']).stdout);
    expect(st.source.file).toMatch(/fw\.c$/);
  });

  it.skipIf(!haveClang)('a C file that does not compile: clang\'s messages, then one line', () => {
    const cwd = temp();
    const bad = join(cwd, 'bad.c');
    copyFileSync(join(EX, 'pcaps/expected.json'), bad);
    const r = rewind(['debug', bad], { cwd });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error/);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^rewind: .*bad\.c: clang(-19)? could not compile it \(exit 1\); its messages are above$/);
  });

  it('says clearly when no clang is there', () => {
    const c = join(temp(), 'x.c');
    copyFileSync(join(EX, 'xdp-firewall/xdp-firewall.c'), c);
    expect(() => compileC(c, temp(), ['no-such-clang-1', 'no-such-clang-2'])).toThrow(/compiling C needs clang \(no-such-clang-1 or no-such-clang-2 on PATH/);
  });
});
