import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, rewind } from '../testing.js';

const EX = join(REPO, 'examples');
let dir = '';
let trace = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-replay-'));
  trace = join(dir, 'fw.rwt');
  const r = rewind(['record', join(EX, 'xdp-firewall/xdp-firewall.o'), '--pcap', join(EX, 'pcaps/mixed.pcap'), '-o', trace]);
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('rewind replay without a terminal', () => {
  it('says to use rewind inspect and exits with 2', () => {
    const r = rewind(['replay', trace]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe(`rewind replay: not a terminal, so the debugger does not start; print the state at a step with: rewind inspect ${trace} --at N\n`);
  });

  it('checks --at and --run first, with one-line errors', () => {
    let r = rewind(['replay', trace, '--at', '999999']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^rewind: --at 999999: the trace has steps 0\.\.\d+\n$/);
    r = rewind(['replay', trace, '--run', '99']);
    expect(r.stderr).toMatch(/^rewind: --run 99: the trace has runs 0\.\.19\n$/);
    r = rewind(['replay', trace, '--run', '1', '--at', '3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--at and --run/);
  });

  it('names a missing file', () => {
    const r = rewind(['replay', join(dir, 'nope.rwt')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`rewind: ${join(dir, 'nope.rwt')}: no such trace file\n`);
  });

  it('--help says what happens without a terminal', () => {
    const r = rewind(['replay', '--help']);
    expect(r.stdout).toMatch(/without one it says to use `rewind inspect <trace> --at N` and\s+exits with 2/);
  });
});
