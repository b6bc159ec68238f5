// The debugger on traces recorded from the examples (recorded into a temporary folder here):
// each motion is checked against what the bytecode and the trace reader say independently.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Trace } from '@rewind/recorder';
import { BPF_CALL, BPF_JMP, BPF_PSEUDO_CALL } from '@rewind/vm';
import { recordTrace } from '../commands/record.js';
import { REPO } from '../testing.js';
import { Debugger } from './debugger.js';
import { snapshot } from './snapshot.js';

const EX = join(REPO, 'examples');
let dir = '';
let parser: Trace;
let firewall: Trace;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-dbg-'));
  const rec = (program: string, pcap: string, maps?: string) =>
    recordTrace({ program: join(EX, program), pcap: join(EX, 'pcaps', pcap), maps: maps && join(EX, maps), repeat: 1, cpus: 1, cpu: 0, seed: 0 }, { dir, progress: false }).path;
  parser = Trace.open(rec('pkt-parser/pkt-parser.o', 'parser.pcap'));
  firewall = Trace.open(rec('xdp-firewall/xdp-firewall.o', 'mixed.pcap', 'xdp-firewall/maps.json'));
});

afterAll(() => {
  parser?.close();
  firewall?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const keys = async (dbg: Debugger, ...ks: string[]) => {
  for (const k of ks) {
    dbg.key(k);
    await dbg.idle();
  }
};

/** Steps about to execute a bpf-to-bpf call (BPF_JMP | BPF_CALL with src BPF_PSEUDO_CALL). */
function callSteps(t: Trace): number[] {
  const code = t.programs[0]!.code;
  const out: number[] = [];
  for (let s = 0; s <= t.lastStep && out.length < 5; s++) {
    const p = t.position(s);
    if (p.program === t.programs[0]!.name && code.op[p.pc] === (BPF_JMP | BPF_CALL) && code.src[p.pc] === BPF_PSEUDO_CALL && !t.state(s).atEnd) out.push(s);
  }
  return out;
}

describe('stepping over bpf-to-bpf calls in pkt-parser', () => {
  it('n lands after the call at the same depth, with every step in between deeper; N comes back', async () => {
    const steps = callSteps(parser);
    expect(steps.length).toBeGreaterThan(0);
    for (const s of steps) {
      const dbg = new Debugger(parser, { at: s });
      const call = parser.position(s);
      await keys(dbg, 'n');
      const after = dbg.position();
      expect(after).toMatchObject({ pc: call.pc + 1, depth: call.depth, run: call.run });
      for (let k = s + 1; k < after.step; k++) expect(parser.position(k).depth).toBeGreaterThan(call.depth);
      await keys(dbg, 'N');
      expect(dbg.step).toBe(s);
    }
  });

  it('f inside a callee returns after its call; F goes back to the call', async () => {
    const s = callSteps(parser)[0]!;
    const call = parser.position(s);
    const dbg = new Debugger(parser, { at: s + 2 });
    expect(dbg.position().depth).toBe(call.depth + 1);
    await keys(dbg, 'f');
    expect(dbg.position()).toMatchObject({ pc: call.pc + 1, depth: call.depth });
    dbg.goto(s + 2);
    await keys(dbg, 'F');
    expect(dbg.step).toBe(s);
  });

  it('the stack pane lists one frame per call depth', async () => {
    const s = callSteps(parser)[0]!;
    const st = parser.state(s + 1);
    expect(st.frames.map((f) => f.depth)).toEqual([0, 1]);
  });
});

describe('the firewall trace', () => {
  it('find helper= stops at the call of that helper; ; finds the next', async () => {
    const dbg = new Debugger(firewall);
    dbg.command('find helper=bpf_map_lookup_elem');
    await dbg.idle();
    const first = dbg.step;
    expect(firewall.state(first).insn).toMatch(/^call 0x1/);
    await keys(dbg, ';');
    expect(dbg.step).toBeGreaterThan(first);
    expect(firewall.state(dbg.step).insn).toMatch(/^call 0x1/);
  });

  it('watch r0: continue stops where the step wrote r0', async () => {
    const dbg = new Debugger(firewall);
    dbg.command('watch r0');
    let stops = 0;
    for (let i = 0; i < 6; i++) {
      await keys(dbg, 'c');
      if (!/^watchpoint 1/.test(dbg.message?.text ?? '')) continue;
      stops++;
      expect(firewall.state(dbg.step).changed).toContain(0);
    }
    expect(stops).toBeGreaterThan(1);
  });

  it('a conditional breakpoint on a source line stops only where the condition holds', async () => {
    const dbg = new Debugger(firewall);
    // Line 164 tests iph->protocol == IPPROTO_TCP for every IPv4 packet; the condition keeps UDP ones.
    dbg.command('break xdp-firewall.c:164 if *(u8 *)(pkt + 23) == 17');
    expect(dbg.message?.error).toBeFalsy();
    let hits = 0;
    while (dbg.step < firewall.lastStep && hits < 3) {
      await keys(dbg, 'c');
      if (!/^breakpoint 1/.test(dbg.message?.text ?? '')) continue;
      hits++;
      const st = firewall.state(dbg.step);
      expect(st.source?.line).toBe(164);
      expect(st.packet!.bytes[23]).toBe(17);
    }
    expect(hits).toBeGreaterThan(0);
  });

  it('w goes to the instruction that wrote the selected register', async () => {
    const from = 60;
    const want = firewall.prevWrite({ kind: 'reg', reg: 3 }, from)!;
    expect(want).toBeGreaterThan(firewall.runs[0]!.firstStep);
    const dbg = new Debugger(firewall, { at: from });
    await keys(dbg, '3', 'down', 'down', 'down', 'w');
    // The cursor is on the producing instruction: the next step shows the value it wrote.
    expect(dbg.step + 1).toBe(want);
    expect(firewall.state(want).changed).toContain(3);
    expect(firewall.state(want).regs[3]).toBe(firewall.state(from).regs[3]);
    expect(dbg.message?.text).toMatch(new RegExp(`^r3 ← step ${want}: `));
  });

  it('export writes what rewind inspect --json prints, and more', () => {
    for (const s of [0, 30, firewall.runs[1]!.firstStep, firewall.lastStep]) {
      const mine = snapshot(firewall, firewall.state(s));
      const inspect = firewall.snapshot(s);
      for (const [k, v] of Object.entries(inspect)) expect(mine[k], `${k} at step ${s}`).toEqual(v);
    }
  });

  it('c and C stop at run boundaries', async () => {
    const dbg = new Debugger(firewall, { at: 5 });
    await keys(dbg, 'c');
    expect(dbg.step).toBe(firewall.runs[0]!.lastStep);
    expect(firewall.state(dbg.step).atEnd).toBe(true);
    await keys(dbg, 'c');
    expect(dbg.step).toBe(firewall.runs[1]!.lastStep);
    await keys(dbg, 'C');
    expect(dbg.step).toBe(firewall.runs[1]!.firstStep);
  });
});
