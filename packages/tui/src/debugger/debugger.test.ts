import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Debugger, parseKey } from './debugger.js';
import { FakeTrace } from './fake-trace.js';

// The fake program (fake-trace.ts): xdp_main loads data/data_end (pcs 1-2), checks 24 bytes
// (pc 5), reads the IP protocol (pc 6), writes the first packet byte (pc 7), spills it (pc 8) and
// calls count (pc 9 → 14), which looks the protocol up in `counts` (pc 18) and increments a hit
// (pcs 20-22). Runs: TCP (counted), UDP (missed), a 10-byte runt (dropped at pc 12).

function setup(opts: ConstructorParameters<typeof Debugger>[1] = {}) {
  const trace = new FakeTrace();
  const dbg = new Debugger(trace, opts);
  /** The first step of run `run` whose pc is `pc`. */
  const at = (pc: number, run = 0): number => {
    for (let s = trace.runs[run]!.firstStep; s <= trace.runs[run]!.lastStep; s++) if (trace.position(s).pc === pc) return s;
    throw new Error(`pc ${pc} not in run ${run}`);
  };
  const keys = async (...ks: string[]) => {
    for (const k of ks) {
      dbg.key(k);
      await dbg.idle();
    }
  };
  return { trace, dbg, at, keys };
}

describe('stepping', () => {
  it('s / → step forward, S / ← back, clamped to the trace', async () => {
    const { dbg, keys, trace } = setup();
    await keys('s', 'right', 's');
    expect(dbg.step).toBe(3);
    await keys('S', 'left');
    expect(dbg.step).toBe(1);
    await keys('S', 'S', 'S');
    expect(dbg.step).toBe(0);
    await keys('G', 's');
    expect(dbg.step).toBe(trace.lastStep);
  });

  it('a count prefix repeats a key (25s, 3S) and picks a step for g', async () => {
    const { dbg, keys } = setup();
    await keys('4', 'escape');
    expect(dbg.focus).toBe('stack');
    await keys('2', '5', 's');
    expect(dbg.step).toBe(25);
    expect(dbg.focus).toBe('stack');
    await keys('3', 'S');
    expect(dbg.step).toBe(22);
    await keys('1', '0', 'g');
    expect(dbg.step).toBe(10);
    expect(dbg.count).toBe('');
  });

  it('g / G go to the first and the last step', async () => {
    const { dbg, keys, trace } = setup({ at: 7 });
    await keys('G');
    expect(dbg.step).toBe(trace.lastStep);
    await keys('g');
    expect(dbg.step).toBe(0);
    await keys('end');
    expect(dbg.step).toBe(trace.lastStep);
    await keys('home');
    expect(dbg.step).toBe(0);
  });

  it('n steps over the call to count and N steps back over it', async () => {
    const { dbg, keys, at } = setup();
    dbg.goto(at(9));
    await keys('n');
    expect(dbg.position().pc).toBe(10);
    expect(dbg.position().depth).toBe(0);
    await keys('N');
    expect(dbg.position().pc).toBe(9);
    // Outside calls, n is a single step.
    await keys('N');
    expect(dbg.position().pc).toBe(8);
  });

  it('f finishes count (back in the caller after the call), F goes back to the call', async () => {
    const { dbg, keys, at, trace } = setup();
    dbg.goto(at(17));
    await keys('f');
    expect(dbg.position()).toMatchObject({ pc: 10, depth: 0 });
    dbg.goto(at(17));
    await keys('F');
    expect(dbg.position()).toMatchObject({ pc: 9, depth: 0 });
    // In the entry function: to the run's end, and back to its start.
    await keys('f');
    expect(dbg.step).toBe(trace.runs[0]!.lastStep);
    await keys('F');
    expect(dbg.step).toBe(trace.runs[0]!.firstStep);
  });

  it('] and [ move between runs; the runs filter restricts them to one verdict', async () => {
    const { dbg, keys, trace } = setup();
    await keys(']');
    expect(dbg.step).toBe(trace.runs[1]!.firstStep);
    await keys(']', ']');
    expect(dbg.step).toBe(trace.runs[2]!.firstStep);
    expect(dbg.message?.text).toMatch(/no later run/);
    await keys('[', '[');
    expect(dbg.step).toBe(trace.runs[0]!.firstStep);
    await keys('8', 'v');
    expect(dbg.runFilter).toBe('XDP_PASS');
    await keys('v');
    expect(dbg.runFilter).toBe('XDP_DROP');
    await keys(']');
    expect(dbg.run().verdict).toBe('XDP_DROP');
    await keys('v');
    expect(dbg.runFilter).toBeUndefined();
  });

  it("m<letter> sets a mark and '<letter> returns to it", async () => {
    const { dbg, keys } = setup();
    await keys('1', '2', 's', 'm', 'a', 'G', "'", 'a');
    expect(dbg.step).toBe(12);
    await keys("'", 'z');
    expect(dbg.message).toMatchObject({ error: true });
    expect(dbg.step).toBe(12);
  });
});

describe('continue', () => {
  it('c stops at a breakpoint, then at the end of the run; C runs back to it', async () => {
    const { dbg, keys, at, trace } = setup();
    dbg.command('break 20');
    await keys('c');
    expect(dbg.step).toBe(at(20));
    expect(dbg.message?.text).toMatch(/breakpoint 1/);
    await keys('c');
    expect(dbg.step).toBe(trace.runs[0]!.lastStep);
    // Run 1 (UDP) misses the map: pc 20 never runs, so c goes to its end.
    await keys('c');
    expect(dbg.step).toBe(trace.runs[1]!.lastStep);
    await keys('C');
    expect(dbg.step).toBe(trace.runs[1]!.firstStep);
    await keys('C');
    expect(dbg.step).toBe(at(20));
    expect(dbg.breakpoints[0]!.hits).toBe(2);
  });

  it('a condition over memory picks the UDP run (IP protocol 17 at pkt+23)', async () => {
    const { dbg, keys, at } = setup();
    dbg.command('break 7 if r1 == 17 && *(u8 *)(pkt + 23) == 17');
    await keys('c');
    expect(dbg.run().index).toBe(0);
    await keys('c');
    expect(dbg.step).toBe(at(7, 1));
  });

  it('breakpoints on a file:line and on a function', async () => {
    const { dbg, keys, at } = setup();
    dbg.command('break fake.c:7');
    expect([...dbg.breakpoints[0]!.pcs].sort()).toEqual([20, 21, 22]);
    dbg.command('break count');
    expect([...dbg.breakpoints[1]!.pcs]).toEqual([14]);
    await keys('c');
    expect(dbg.step).toBe(at(14));
    await keys('c');
    expect(dbg.step).toBe(at(20));
  });

  it('watch a register: c stops where it is written, C where it was', async () => {
    const { dbg, keys, at } = setup();
    dbg.command('watch r4');
    await keys('c');
    // r4 = r2 executes at pc 3: its value shows at the next step.
    expect(dbg.step).toBe(at(3) + 1);
    await keys('c');
    expect(dbg.step).toBe(at(4) + 1);
    await keys('C');
    expect(dbg.step).toBe(at(3) + 1);
    expect(dbg.message?.text).toMatch(/watchpoint 1 \(r4\)/);
  });

  it('watch stack memory through r10 and a map entry by key', async () => {
    const { dbg, keys, at } = setup();
    dbg.command('watch *(u32 *)(r10 - 4)');
    expect(dbg.watchpoints[0]!.target).toEqual({ kind: 'mem', region: 0, offset: 508, size: 4 });
    await keys('c');
    expect(dbg.step).toBe(at(8) + 1);
    dbg.command('delete 1');
    dbg.command('watch map counts[6]');
    expect(dbg.watchpoints[0]!.target).toMatchObject({ kind: 'map', map: 'counts' });
    await keys('c');
    expect(dbg.step).toBe(at(22) + 1);
  });

  it('Ctrl-C interrupts a continue that runs in slices, and quits when nothing runs', async () => {
    const { dbg } = setup();
    dbg.scanSlice = 2;
    dbg.command('break 12');
    dbg.key('c');
    expect(dbg.busy?.what).toBe('continue');
    dbg.key('s');
    expect(dbg.message?.text).toMatch(/Ctrl-C interrupts/);
    dbg.key('ctrl-c');
    await dbg.idle();
    expect(dbg.step).toBe(0);
    expect(dbg.message?.text).toMatch(/interrupted/);
    expect(dbg.quit).toBe(false);
    dbg.key('ctrl-c');
    expect(dbg.quit).toBe(true);
  });
});

describe('where did this come from (w)', () => {
  it('follows r4 back through r4 = r2 + 24 to the load of data', async () => {
    const { dbg, keys, at } = setup();
    dbg.goto(at(5));
    await keys('3', 'down', 'down', 'down', 'down');
    expect(dbg.selection.registers).toBe(4);
    await keys('w');
    // The producing instruction is shown as the current one.
    expect(dbg.position().pc).toBe(4);
    expect(dbg.message?.text).toMatch(/r4 ← step \d+: r4 \+= 0x18/);
    await keys('w');
    expect(dbg.position().pc).toBe(3);
    await keys('w');
    expect(dbg.position().pc).toBe(1);
    expect(dbg.selection.registers).toBe(2);
  });

  it('a load names the bytes it read, and w follows them', async () => {
    const { dbg, keys, at } = setup();
    dbg.goto(at(8));
    await keys('3', 'down', 'w');
    expect(dbg.position().pc).toBe(6);
    expect(dbg.message?.text).toMatch(/r1 ← step \d+: r1 = \*\(u8 \*\)\(r2 \+ 0x17\); w again follows 1 byte at pkt\+23$/);
    await keys('w');
    expect(dbg.message?.text).toMatch(/1 byte at pkt\+23: not written since the run began/);
  });

  it('a packet byte the program wrote comes from the store at pc 7', async () => {
    const { dbg, keys, at } = setup();
    dbg.goto(at(9));
    await keys('5');
    expect(dbg.focus).toBe('packet');
    await keys('w');
    expect(dbg.position().pc).toBe(7);
  });

  it('an input value was not written in the run', async () => {
    const { dbg, keys } = setup();
    await keys('3', 'down', 'w');
    expect(dbg.message?.text).toMatch(/r1: not written since the run began/);
  });
});

describe('panes and selection', () => {
  it('Tab and the number keys move the focus; panes that do not fit take the slot', async () => {
    const { dbg, keys } = setup({ columns: 80, rows: 24 });
    expect(dbg.focus).toBe('source');
    await keys('tab');
    expect(dbg.focus).toBe('disasm');
    await keys('backtab', 'backtab');
    expect(dbg.focus).toBe('runs');
    expect(dbg.slot).toBe('runs');
    await keys('6');
    expect(dbg.focus).toBe('maps');
    expect(dbg.slot).toBe('maps');
  });

  it('↑/↓, PgUp/PgDn, h/l move the selection within bounds', async () => {
    const { dbg, keys } = setup();
    await keys('3', 'up');
    expect(dbg.selection.registers).toBe(0);
    await keys('pagedown', 'pagedown');
    expect(dbg.selection.registers).toBe(10);
    await keys('pageup', 'j', 'k', 'k');
    expect(dbg.selection.registers).toBe(1);
    await keys('5', 'l', 'l', 'down');
    expect(dbg.selection.packet).toBe(2 + dbg.bytesPerRow.packet);
    await keys('h');
    expect(dbg.selection.packet).toBe(1 + dbg.bytesPerRow.packet);
  });

  it('b toggles a breakpoint on the selected instruction or source line', async () => {
    const { dbg, keys } = setup({ at: 3 });
    await keys('2', 'b');
    expect(dbg.breakpoints.map((b) => [...b.pcs])).toEqual([[3]]);
    await keys('b');
    expect(dbg.breakpoints).toEqual([]);
    await keys('1', 'b');
    expect(dbg.breakpoints[0]!.spec).toBe('fake.c:14');
    expect([...dbg.breakpoints[0]!.pcs].sort()).toEqual([3, 4, 5]);
  });

  it('Enter on a run or an event goes there', async () => {
    const { dbg, keys, trace, at } = setup();
    await keys('8', 'down', 'down', 'return');
    expect(dbg.step).toBe(trace.runs[2]!.firstStep);
    dbg.goto(at(23));
    await keys('7', 'return');
    expect(dbg.step).toBe(trace.state(at(23)).events[0]!.step);
  });

  it('d in the maps pane toggles the difference from the run start', async () => {
    const { dbg, keys } = setup();
    await keys('6', 'd');
    expect(dbg.mapDiff).toBe(true);
    await keys('d');
    expect(dbg.mapDiff).toBe(false);
  });

  it('moving the cursor does not rebuild states; drawing does, once per step', async () => {
    const { dbg, keys, trace } = setup();
    for (let i = 0; i < 30; i++) dbg.key('s');
    await keys('n', 'N');
    expect(trace.stateCalls).toBe(0);
    dbg.current();
    dbg.current();
    expect(trace.stateCalls).toBe(1);
  });

  it('? shows the help, any key closes it; q quits', async () => {
    const { dbg, keys } = setup();
    await keys('?');
    expect(dbg.mode).toBe('help');
    await keys('x');
    expect(dbg.mode).toBe('normal');
    await keys('q');
    expect(dbg.quit).toBe(true);
  });
});

describe(': commands', () => {
  const type = async (dbg: Debugger, text: string) => {
    dbg.key(':');
    for (const ch of text) dbg.key(ch);
    dbg.key('return');
    await dbg.idle();
  };

  it('goto N and goto run K', async () => {
    const { dbg, trace } = setup();
    await type(dbg, 'goto 17');
    expect(dbg.step).toBe(17);
    await type(dbg, 'goto run 2');
    expect(dbg.step).toBe(trace.runs[2]!.firstStep);
    await type(dbg, 'goto 9999');
    expect(dbg.message).toMatchObject({ error: true });
    expect(dbg.message!.text).toMatch(/past the last step/);
  });

  it('the command line edits with backspace, recalls history, and Escape cancels', async () => {
    const { dbg } = setup();
    await type(dbg, 'goto 5');
    dbg.key(':');
    dbg.key('up');
    expect(dbg.commandLine).toBe('goto 5');
    dbg.key('backspace');
    dbg.key('7');
    dbg.key('return');
    expect(dbg.step).toBe(7);
    dbg.key(':');
    dbg.key('x');
    dbg.key('escape');
    expect(dbg.mode).toBe('normal');
    expect(dbg.step).toBe(7);
  });

  it('break, info breakpoints, delete', async () => {
    const { dbg } = setup();
    await type(dbg, 'break 12');
    await type(dbg, 'watch r0');
    await type(dbg, 'info breakpoints');
    expect(dbg.mode).toBe('output');
    expect(dbg.output!.lines.join('\n')).toMatch(/1\s+breakpoint\s+12 .*\n\s+2\s+watchpoint\s+r0/);
    dbg.key('escape');
    await type(dbg, 'delete 1');
    expect(dbg.breakpoints).toEqual([]);
    await type(dbg, 'delete 7');
    expect(dbg.message!.text).toMatch(/no breakpoint or watchpoint 7/);
    await type(dbg, 'break nowhere');
    expect(dbg.message!.text).toMatch(/functions: xdp_main, count/);
    await type(dbg, 'break 3 if r1 ==');
    expect(dbg.message!.text).toMatch(/ends early/);
  });

  it('find helper=, then ; and , move between matches', async () => {
    const { dbg, at } = setup();
    await type(dbg, 'find helper=bpf_map_lookup_elem');
    expect(dbg.step).toBe(at(19, 0));
    dbg.key(';');
    await dbg.idle();
    expect(dbg.step).toBe(at(19, 1));
    dbg.key(',');
    await dbg.idle();
    expect(dbg.step).toBe(at(19, 0));
    await type(dbg, 'find pc=12');
    expect(dbg.step).toBe(at(12, 2));
    await type(dbg, 'find line=16');
    expect(dbg.message!.text).toMatch(/no match/);
    dbg.goto(0);
    await type(dbg, 'find line=16');
    expect(dbg.position().pc).toBe(6);
    await type(dbg, 'find verdict=XDP_DROP');
    expect(dbg.run().verdict).toBe('XDP_DROP');
    await type(dbg, 'find bogus');
    expect(dbg.message!.error).toBe(true);
  });

  it('diff A B lists what changed between two steps', async () => {
    const { dbg, at, trace } = setup();
    await type(dbg, `diff ${at(7)} ${at(8)}`);
    expect(dbg.output!.lines).toContain('pkt+0: 00 → aa');
    await type(dbg, `diff ${trace.runs[0]!.firstStep} ${trace.runs[0]!.lastStep}`);
    expect(dbg.output!.lines).toContain('counts[06000000]: 0500000000000000 → 0600000000000000');
  });

  it('export --at N FILE.json writes the state as JSON', async () => {
    const { dbg, at } = setup();
    const file = join(mkdtempSync(join(tmpdir(), 'rewind-export-')), 'state.json');
    await type(dbg, `export --at ${at(8)} ${file}`);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc).toMatchObject({ step: at(8), pc: 8, pointers: { r2: 'pkt+0' } });
    expect(doc.regs[1]).toBe('0x0000000000000006');
    expect(doc.stack).toHaveLength(1024);
    expect(doc.packet.bytes.slice(0, 2)).toBe('aa');
  });

  it('help, marks, and an unknown command', async () => {
    const { dbg } = setup();
    await type(dbg, 'help');
    expect(dbg.output!.lines.join('\n')).toMatch(/goto N \| goto run K/);
    dbg.key('q');
    await type(dbg, 'mark b');
    await type(dbg, 'marks');
    expect(dbg.output!.lines).toEqual(['b  step 0']);
    dbg.key('escape');
    await type(dbg, 'frobnicate');
    expect(dbg.message!.text).toMatch(/unknown command/);
  });
});

describe('parseKey', () => {
  it('reads integers little-endian and hex bytes as written', () => {
    expect([...parseKey('6', 4)]).toEqual([6, 0, 0, 0]);
    expect([...parseKey('0x0102', 2)]).toEqual([2, 1]);
    expect([...parseKey('0d3d0600', 4)]).toEqual([0x0d, 0x3d, 6, 0]);
    expect(() => parseKey('0d3d', 4)).toThrow(/keys are 4 bytes/);
  });
});
