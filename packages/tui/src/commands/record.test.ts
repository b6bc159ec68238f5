// `rewind record`, `rewind inspect` and `rewind verify` as a user runs them.

import { afterAll, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packPlainMap, Trace, TraceReader, TraceWriter, unpackPlain } from '@rewind/recorder';
import { loadPackets, loadProgramFile, Session } from '@rewind/vm';
import { REPO, rewind } from '../testing.js';

const ex = (p: string) => join(REPO, 'examples', p);
const fw = ex('xdp-firewall/xdp-firewall.o');
const mixed = ex('pcaps/mixed.pcap');
const fwMaps = ex('xdp-firewall/maps.json');
const have = existsSync(fw) && existsSync(mixed);
if (!have) console.log('record/inspect/verify CLI tests skipped: examples/xdp-firewall or examples/pcaps/mixed.pcap is missing');

const dir = mkdtempSync(join(tmpdir(), 'rewind-record-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The verdicts of the firewall over mixed.pcap, from a plain session (no recorder). */
function plainVerdicts(): string[] {
  const src = loadProgramFile(fw);
  const s = new Session(src.programs, src.maps);
  const json = JSON.parse(readFileSync(fwMaps, 'utf8')) as Record<string, { key: string; value: string }[]>;
  for (const [name, entries] of Object.entries(json)) for (const e of entries) s.maps.find((m) => m.name === name)!.update(Buffer.from(e.key, 'hex'), Buffer.from(e.value, 'hex'), 0);
  return loadPackets({ pcap: mixed })!.packets.map((p) => s.run(src.programs[0]!.name, { packet: p.data, timeNs: p.timestampNs ?? 0n }).verdict);
}

describe.skipIf(!have)('rewind record', () => {
  test('names traces traces/<program>-<n>.rwt in the working folder, never overwriting, and prints a summary', () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const a = rewind(['record', fw, '--pcap', mixed, '--maps', fwMaps], { cwd });
    expect(a.stderr).toBe('');
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(/^recorded 20 runs, [\d,]+ steps, [\d,]+ bytes \([\d.]+ bytes\/step\) into traces\/xdp-firewall-1\.rwt\n/);
    const b = rewind(['record', fw, '--pcap', mixed, '--maps', fwMaps], { cwd });
    expect(b.stdout).toContain('into traces/xdp-firewall-2.rwt');
    expect(readdirSync(join(cwd, 'traces')).sort()).toEqual(['xdp-firewall-1.rwt', 'xdp-firewall-2.rwt']);
    // -o never replaces a file either.
    const c = rewind(['record', fw, '--pcap', mixed, '-o', join(cwd, 'traces/xdp-firewall-1.rwt')], { cwd });
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/^rewind: .*xdp-firewall-1\.rwt: already exists/);
  });

  test('--runs records the chosen runs with the maps the runs before them left; --runs-if by verdict', () => {
    const verdicts = plainVerdicts();
    const drops = join(dir, 'drops.rwt');
    const r = rewind(['record', fw, '--pcap', mixed, '--maps', fwMaps, '--runs-if', 'verdict=XDP_DROP', '-o', drops]);
    expect(r.status).toBe(0);
    const want = verdicts.filter((v) => v === 'XDP_DROP').length;
    expect(want).toBeGreaterThan(0);
    expect(r.stdout).toContain(`recorded ${want} of ${verdicts.length} runs`);
    const t = Trace.open(drops);
    expect(t.runs.map((x) => x.verdict)).toEqual(verdicts.filter((v) => v === 'XDP_DROP'));
    // The firewall counts every packet under one of its verdict reasons (fw_stats, a per-CPU
    // array of {packets, bytes}): at the end of the last recorded run, every packet up to it is counted.
    const stats = t.state(t.lastStep).maps.fw_stats!;
    const lastDrop = verdicts.lastIndexOf('XDP_DROP');
    const packets = stats.reduce((n, e) => n + Buffer.from((e.value as string[])[0]!, 'hex').readBigUInt64LE(0), 0n);
    expect(packets).toBe(BigInt(lastDrop + 1));
    t.close();
    expect(rewind(['verify', drops]).status).toBe(0);

    const sel = join(dir, 'sel.rwt');
    expect(rewind(['record', fw, '--pcap', mixed, '--maps', fwMaps, '--runs', '2,5-6', '-o', sel]).status).toBe(0);
    const s = Trace.open(sel);
    expect(s.runs.map((x) => x.verdict)).toEqual([verdicts[2], verdicts[5], verdicts[6]]);
    s.close();
  });

  test('bad arguments are one-line errors', () => {
    const cases: [string[], RegExp][] = [
      [['record', fw, '--pcap', mixed, '--runs', '3-1', '-o', join(dir, 'x.rwt')], /--runs: the range 3-1 runs backwards/],
      [['record', fw, '--pcap', mixed, '--runs', '99', '-o', join(dir, 'x.rwt')], /--runs: run 99 does not exist \(the inputs make 20 runs, 0\.\.19\)/],
      [['record', fw, '--pcap', mixed, '--runs-if', 'drop', '-o', join(dir, 'x.rwt')], /--runs-if: expected verdict=NAME/],
      [['record', fw, '--pcap', mixed, '--runs', '1', '--runs-if', 'verdict=XDP_DROP', '-o', join(dir, 'x.rwt')], /cannot be used together/],
    ];
    for (const [args, msg] of cases) {
      const r = rewind(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
    expect(existsSync(join(dir, 'x.rwt'))).toBe(false);
  });
});

describe.skipIf(!have)('rewind inspect and verify', () => {
  const path = join(dir, 'fw.rwt');
  rewind(['record', fw, '--pcap', mixed, '--maps', fwMaps, '-o', path]);

  test('--summary --json: runs with verdicts and step ranges, the last step, the file size', () => {
    const r = rewind(['inspect', path, '--summary', '--json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { steps: number; runs: { index: number; firstStep: number; lastStep: number; verdict: string }[]; bytes: number };
    expect(Object.keys(doc)).toEqual(['steps', 'runs', 'bytes']);
    expect(doc.runs.map((x) => x.verdict)).toEqual(plainVerdicts());
    expect(doc.runs[0]!.firstStep).toBe(0);
    doc.runs.slice(1).forEach((x, i) => expect(x.firstStep).toBe(doc.runs[i]!.lastStep + 1));
    expect(doc.steps).toBe(doc.runs.at(-1)!.lastStep);
    expect(doc.bytes).toBe(statSync(path).size);
    expect(rewind(['inspect', path]).stdout).toMatch(/^.*fw\.rwt: 20 runs, steps 0\.\.\d+, [\d,]+ bytes/);
  });

  test('--at N --json has the documented shape; --run K counts from the run; r0 at a run\'s end is its return value', () => {
    const t = Trace.open(path);
    const run = t.runs[3]!;
    const a = JSON.parse(rewind(['inspect', path, '--at', String(run.lastStep), '--json']).stdout);
    const b = JSON.parse(rewind(['inspect', path, '--at', String(run.lastStep - run.firstStep), '--run', '3', '--json']).stdout);
    expect(b).toEqual(a);
    expect(Object.keys(a)).toEqual(['step', 'run', 'pc', 'insn', 'regs', 'source', 'stack', 'maps']);
    expect(a.step).toBe(run.lastStep);
    expect(a.run).toBe(3);
    expect(a.insn).toBe('exit');
    expect(a.regs).toHaveLength(11);
    for (const x of a.regs) expect(x).toMatch(/^0x[0-9a-f]{16}$/);
    expect(BigInt(a.regs[0])).toBe(run.r0);
    // r10 is the frame pointer: the stack printed is the frame below it.
    expect(a.stack.length).toBe(2 * 512);
    expect(Object.keys(a.maps)).toEqual(t.maps.map((m) => m.name));
    expect(a.source.file).toMatch(/xdp-firewall\.c$/);
    t.close();
    const text = rewind(['inspect', path, '--at', '10']);
    expect(text.stdout).toMatch(/^step 10 of \d+ · run 0\/19/);
    expect(text.stdout).toMatch(/\n {2}[ *]r10 0x0000100000000200 {2}stack\+0\n/);
  });

  test('steps and runs out of range, and files that are not traces, are one-line errors', () => {
    const notTrace = join(dir, 'not.rwt');
    writeFileSync(notTrace, 'hello');
    const cases: [string[], RegExp, number][] = [
      [['inspect', path, '--at', '999999'], /--at 999999: the trace has steps 0\.\.\d+/, 2],
      [['inspect', path, '--at', '500', '--run', '0'], /--at 500: run 0 has steps 0\.\.\d+/, 2],
      [['inspect', path, '--at', '1', '--run', '40'], /--run 40: the trace has runs 0\.\.19/, 2],
      [['inspect', notTrace, '--summary'], /not\.rwt: /, 1],
      [['verify', join(dir, 'missing.rwt')], /missing\.rwt/, 1],
    ];
    for (const [args, msg, status] of cases) {
      const r = rewind(args);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
      expect(r.status).toBe(status);
    }
  });

  test('verify agrees with an untouched trace and names the first difference of a changed one', () => {
    const ok = rewind(['verify', path]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/20 runs, [\d,]+ steps re-executed: every step agrees/);
    // The same trace with run 0's input packet changed (its IPv4 source address): a re-execution
    // of that input does not do what the recorded steps say.
    const r = TraceReader.open(path);
    const changed = join(dir, 'changed.rwt');
    const w = TraceWriter.create(changed, { meta: r.header.meta as never });
    let edited = false;
    for (const f of r.frames) {
      if (f.kind === 'header' || f.kind === 'end' || f.kind === 'index') continue;
      let payload = r.readPayload(f.number);
      if (f.kind === 'run' && !edited) {
        const p = unpackPlain(payload) as { packet: Uint8Array };
        p.packet = Uint8Array.from(p.packet);
        p.packet[26]! ^= 0xff;
        payload = packPlainMap(p, 'the run payload');
        edited = true;
      }
      w.append(f.kind, f.header as never, payload);
    }
    w.close(r.finalMeta as never);
    r.close();
    const bad = rewind(['verify', changed]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/changed\.rwt: differs: step \d+ \(run 0, pc \d+: .*\): r\d+ becomes 0x[0-9a-f]+ in the trace, becomes 0x[0-9a-f]+ re-executed/);
  });
});
