import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { render } from 'ink-testing-library';
import { RewindError } from '@rewind/vm';
import { Debugger } from '../debugger/debugger.js';
import { FakeTrace } from '../debugger/fake-trace.js';
import { App } from './App.js';
import { ThemeContext, themeFromEnv } from './theme.js';

// Key sequences as a terminal sends them.
const KEY = {
  right: '\x1b[C',
  left: '\x1b[D',
  up: '\x1b[A',
  down: '\x1b[B',
  pageUp: '\x1b[5~',
  pageDown: '\x1b[6~',
  tab: '\t',
  backtab: '\x1b[Z',
  enter: '\r',
  escape: '\x1b',
  backspace: '\x7f',
  ctrlC: '\x03',
};

// useInput subscribes in an effect and ink draws after React commits: let the loop turn around writes.
const tick = () => new Promise((r) => setTimeout(r, 5));

function open(opts: { at?: number; columns?: number; rows?: number; color?: boolean } = {}) {
  const trace = new FakeTrace();
  const dbg = new Debugger(trace, { at: opts.at });
  const ui = render(
    <ThemeContext.Provider value={{ color: opts.color ?? false }}>
      <App dbg={dbg} columns={opts.columns ?? 80} rows={opts.rows ?? 24} />
    </ThemeContext.Provider>,
  );
  const press = async (...keys: string[]) => {
    for (const k of keys) {
      await tick();
      ui.stdin.write(k);
      await tick();
      await dbg.idle();
    }
    await tick();
  };
  const type = (text: string) => press(':', ...text, KEY.enter);
  const at = (pc: number, run = 0): number => {
    for (let s = trace.runs[run]!.firstStep; s <= trace.runs[run]!.lastStep; s++) if (trace.position(s).pc === pc) return s;
    throw new Error(`pc ${pc} not in run ${run}`);
  };
  const frame = () => ui.lastFrame() ?? '';
  const status = () => frame().split('\n').find((l) => l.startsWith('step ')) ?? '';
  return { trace, dbg, ui, press, type, at, frame, status };
}

describe('the screen at 80x24', () => {
  it('is one row shorter than the terminal and shows the status line', async () => {
    const { frame, status } = open({ at: 8 });
    await tick();
    expect(frame().split('\n')).toHaveLength(23);
    expect(status()).toMatch(/^step 8\/53 │ run 0\/2 XDP_PASS │ xdp_main fake\.c:17 │ pc 8 │ normal/);
  });

  it('source: the current line marked, lines from BTF when the file is missing', async () => {
    const { frame } = open({ at: 8, columns: 140, rows: 40 });
    await tick();
    expect(frame()).toContain('1 Source  fake.c (lines from BTF; file not found)');
    expect(frame()).toMatch(/▶ {2}17 {5}\(\(__u8 \*\)data\)\[0\] = 0xaa;/);
  });

  it('disassembly: llvm-objdump syntax, labels for functions and jump targets, executed marks', async () => {
    const { frame } = open({ at: 8 });
    await tick();
    expect(frame()).toMatch(/▶ {4}8: \*\(u32 \*\)\(r10 - 0x4\) = r1/);
    expect(frame()).toMatch(/• {4}9: call 0x4 <count>/);
    expect(frame()).toMatch(/if r4 > r3 goto \+0x6 <L12>/);
    expect(frame()).toMatch(/^L12:/m);
  });

  it('registers: what each points to, decimal for scalars, hex, and what the step wrote', async () => {
    const { frame } = open({ at: 7 });
    await tick();
    expect(frame()).toContain('wrote r1');
    expect(frame()).toMatch(/r1 {2}6 +0x6/);
    expect(frame()).toMatch(/r2 {2}pkt\+0 +0x100900000100/);
    expect(frame()).toMatch(/r10 stack\+0 +0x100000000200/);
  });

  it('stack: frames of the call chain with the bytes written', async () => {
    const { frame, press, at } = open();
    await press(':', ...`goto ${at(15)}`, KEY.enter);
    expect(frame()).toContain('[4 Stack]');
    expect(frame()).toContain('#1 count');
    expect(frame()).toContain('#0 xdp_main');
    expect(frame()).toMatch(/#1-8 00 00 00 00 06 00 00 00/);
  });

  it('packet: decoded headers and the hex dump', async () => {
    const { frame, press } = open({ at: 9 });
    await press('5');
    expect(frame()).toContain('[5 Packet]');
    expect(frame()).toContain('IPv4 10.0.0.1 → 10.0.0.2, TCP');
    expect(frame()).toMatch(/0000 aa 5e 00 53 01 02 42 ac\n/);
    expect(frame()).toMatch(/0008 11 00 02 03 08 00 45 00\n/);
  });

  it('maps: entries at this step', async () => {
    const { frame, press, trace } = open({ columns: 140, rows: 40 });
    await press(':', ...`goto ${trace.runs[0]!.lastStep}`, KEY.enter, '6');
    expect(frame()).toMatch(/counts \(1 entry\)/);
    expect(frame()).toContain('06000000 => 0600000000000000');
    await press('d');
    expect(frame()).toContain('maps: difference from the start of run 0');
    expect(frame()).toContain('~ 06000000 => 0600000000000000');
  });

  it('events: helper calls and map operations up to the step', async () => {
    const { frame, press, at } = open({ columns: 240, rows: 40 });
    await press(':', ...`goto ${at(23)}`, KEY.enter, '7');
    expect(frame()).toMatch(/15 bpf_map_lookup_elem\(0x0, 0x1001000001fc, 0x10090000013c, /);
    expect(frame()).toContain('counts: lookup key 06000000');
    expect(frame()).toContain('counts: store key 06000000 → 0600000000000000');
  });

  it('runs: every run with its verdict, filtered with v, Enter jumps', async () => {
    const { frame, press, status } = open({ columns: 140, rows: 40 });
    await press('8');
    expect(frame()).toMatch(/▶ +0 XDP_PASS/);
    expect(frame()).toMatch(/2 XDP_DROP/);
    await press('v', 'v');
    expect(frame()).toContain('1 XDP_DROP of 3');
    await press(KEY.enter);
    expect(status()).toMatch(/run 2\/2 XDP_DROP/);
  });
});

describe('keys', () => {
  // [name, start step, keys, what the status line then says]
  const cases: [string, number, string[], RegExp][] = [
    ['s steps', 10, ['s'], /^step 11\//],
    ['→ steps', 10, [KEY.right, KEY.right], /^step 12\//],
    ['S steps back', 10, ['S'], /^step 9\//],
    ['← steps back', 10, [KEY.left], /^step 9\//],
    ['n steps over the call', 9, ['n'], /^step 21\/.*pc 10 /],
    ['N steps back over it', 21, ['N'], /^step 9\/.*pc 9 /],
    ['f finishes count', 12, ['f'], /^step 21\/.*xdp_main.*pc 10 /],
    ['f in the entry function goes to the end of the run', 2, ['f'], /^step 23\/53 END/],
    ['F goes back to the call', 12, ['F'], /^step 9\/.*pc 9 /],
    ['c runs to the end of the run', 10, ['c'], /^step 23\/.*END/],
    ['C runs back to its start', 10, ['C'], /^step 0\//],
    ['] goes to the next run', 10, [']'], /^step 24\/.*run 1\/2/],
    ['[ goes to the previous run', 30, ['['], /^step 0\/.*run 0\/2/],
    ['G goes to the last step', 10, ['G'], /^step 53\/53/],
    ['g goes to the first step', 10, ['g'], /^step 0\//],
    ['a count repeats (25s)', 10, ['2', '5', 's'], /^step 35\//],
    ['marks come back', 10, ['m', 'a', 'G', "'", 'a'], /^step 10\//],
  ];
  for (const [name, start, keys, want] of cases) {
    it(name, async () => {
      const { press, status } = open({ at: start });
      await press(...keys);
      expect(status()).toMatch(want);
    });
  }

  it('↑/↓ and PgUp/PgDn move the selection in the focused pane', async () => {
    const { press, dbg } = open({ at: 5 });
    await press('3', KEY.down, KEY.down);
    expect(dbg.selection.registers).toBe(2);
    await press(KEY.pageDown);
    expect(dbg.selection.registers).toBe(10);
    await press(KEY.pageUp, KEY.up);
    expect(dbg.selection.registers).toBe(1);
  });

  it('source and disassembly: ↑ moves the selection off the cursor, Escape follows it again', async () => {
    const { press, dbg, frame } = open({ at: 8, columns: 140, rows: 40 });
    await press('2', KEY.up, KEY.up);
    expect(dbg.follow).toBe(false);
    expect(frame()).toContain('▶    8:');
    await press('b');
    expect(frame()).toMatch(/●• {4}6: r1 = \*\(u8 \*\)/);
    await press(KEY.escape);
    expect(dbg.follow).toBe(true);
  });

  it('w jumps to where the selected register was produced', async () => {
    const { press, frame, status } = open({ at: 6 });
    await press('3', KEY.down, KEY.down, KEY.down, KEY.down, 'w');
    expect(status()).toMatch(/pc 4 /);
    expect(frame()).toMatch(/r4 ← step 5: r4 \+= 0x18; w again follows r4/);
  });

  it('Tab and Shift-Tab cycle the focus; the slot shows the focused pane', async () => {
    const { press, frame, dbg } = open({ at: 5 });
    await press(KEY.tab, KEY.tab, KEY.tab, KEY.tab);
    expect(dbg.focus).toBe('packet');
    expect(frame()).toContain('[5 Packet]');
    await press(KEY.backtab);
    expect(frame()).toContain('[4 Stack]');
  });

  it('? shows the help and any key closes it', async () => {
    const { press, frame } = open();
    await press('?');
    expect(frame()).toContain('Help (any key closes)');
    expect(frame()).toContain('w     where did the selected register/byte/entry come from');
    await press('x');
    expect(frame()).not.toContain('Help (any key closes)');
  });

  it('q quits', async () => {
    const { press, dbg } = open();
    await press('q');
    expect(dbg.quit).toBe(true);
  });

  it('Ctrl-C interrupts a running continue, then quits', async () => {
    const { press, dbg, ui, frame } = open();
    dbg.scanSlice = 1;
    dbg.command('break 13');
    await tick();
    ui.stdin.write('c');
    ui.stdin.write(KEY.ctrlC);
    await dbg.idle();
    await tick();
    expect(frame()).toMatch(/continue interrupted; stayed at step 0/);
    await press(KEY.ctrlC);
    expect(dbg.quit).toBe(true);
  });

  it('a chunk of typed input (a paste, or keys faster than reads) is split into keys, Enter included', async () => {
    const { ui, status, dbg } = open();
    await tick();
    ui.stdin.write(':goto 12\r');
    await tick();
    await tick();
    expect(status()).toMatch(/^step 12\//);
    expect(dbg.mode).toBe('normal');
  });

  it('keys that come faster than frames are all applied, and the screen shows the last', async () => {
    const { ui, status, trace } = open();
    await tick();
    trace.stateCalls = 0;
    ui.stdin.write('s'.repeat(30));
    await tick();
    await tick();
    expect(status()).toMatch(/^step 30\//);
    expect(trace.stateCalls).toBeLessThan(5);
  });
});

describe(': commands', () => {
  it('goto N and goto run K', async () => {
    const { type, status } = open();
    await type('goto 17');
    expect(status()).toMatch(/^step 17\//);
    await type('goto run 2');
    expect(status()).toMatch(/^step 45\/.*run 2\/2 XDP_DROP/);
  });

  it('the command line shows what is typed, Backspace edits, Escape cancels', async () => {
    const { press, frame, status } = open();
    await press(':', 'g', 'o', 'x', KEY.backspace);
    expect(frame()).toMatch(/^:go$/m);
    await press(KEY.escape);
    expect(frame()).not.toMatch(/^:go/m);
    expect(status()).toMatch(/^step 0\//);
  });

  it('break with a condition, then c, then info breakpoints and delete', async () => {
    const { type, press, frame, status, at } = open();
    await type('break 7 if *(u8 *)(pkt + 23) == 17');
    expect(frame()).toContain('breakpoint 1 at 7 if *(u8 *)(pkt + 23) == 17 (1 instruction)');
    await press('c', 'c');
    expect(status()).toMatch(new RegExp(`^step ${at(7, 1)}/`));
    await type('info breakpoints');
    expect(frame()).toMatch(/1 {2}breakpoint {2}7 if \*\(u8 \*\)\(pkt \+ 23\) == 17 {2}\(pc 7; hit 1 time\)/);
    await press(KEY.escape);
    await type('delete 1');
    expect(frame()).toContain('deleted 1');
  });

  it('break on a source line marks it in the source pane', async () => {
    const { type, frame } = open({ at: 8, columns: 140, rows: 40 });
    await type('break fake.c:18');
    expect(frame()).toMatch(/● {3}18 {5}count\(proto\);/);
  });

  it('watch stops a continue where the target is written', async () => {
    const { type, press, frame, status } = open();
    await type('watch *(u32 *)(r10 - 4)');
    expect(frame()).toContain('watchpoint 1: *(u32 *)(r10 - 4)');
    await press('c');
    expect(status()).toMatch(/^step 9\//);
    expect(frame()).toMatch(/watchpoint 1 \(\*\(u32 \*\)\(r10 - 4\)\) written at step 9/);
  });

  it('find, then ; and , between matches', async () => {
    const { type, press, status } = open();
    await type('find helper=bpf_map_lookup_elem');
    expect(status()).toMatch(/^step 15\//);
    await press(';');
    expect(status()).toMatch(/^step 39\//);
    await press(',');
    expect(status()).toMatch(/^step 15\//);
  });

  it('diff A B shows the difference', async () => {
    const { type, frame } = open();
    await type('diff 0 23');
    expect(frame()).toContain('Difference from step 0 to step 23');
    expect(frame()).toContain('counts[06000000]: 0500000000000000 → 0600000000000000');
    expect(frame()).toContain('pkt+0: 00 → aa');
  });

  it('export writes the snapshot', async () => {
    const { type, frame } = open();
    const file = join(mkdtempSync(join(tmpdir(), 'rewind-ui-')), 's.json');
    await type(`export --at 9 ${file}`);
    expect(frame()).toContain(`wrote the state at step 9 to ${file}`);
    expect(JSON.parse(readFileSync(file, 'utf8')).pc).toBe(9);
  });

  it('help lists the commands; an unknown command says so', async () => {
    const { type, press, frame } = open();
    await type('help');
    expect(frame()).toContain('break <pc | file:line | function> [if <condition>]');
    await press(KEY.escape);
    await type('nope');
    expect(frame()).toContain(':nope: unknown command (:help lists them)');
  });
});

describe('layout', () => {
  it('a large terminal shows source, disassembly, registers, stack, packet and events at once', async () => {
    const { frame } = open({ at: 15, columns: 140, rows: 40 });
    await tick();
    const f = frame();
    expect(f.split('\n')).toHaveLength(39);
    for (const title of ['1 Source', '2 Disassembly', '3 Registers', '4 Stack', '[5 Packet]', '[7 Events]']) expect(f).toContain(title);
  });

  it('follows a resize of the terminal', async () => {
    const trace = new FakeTrace();
    const dbg = new Debugger(trace);
    const ui = render(<App dbg={dbg} />);
    await tick();
    expect(ui.lastFrame()).not.toContain('2 Disassembly  xdp_main pc 0 '.padEnd(60));
    Object.defineProperty(ui.stdout, 'columns', { value: 150, configurable: true });
    Object.defineProperty(ui.stdout, 'rows', { value: 30, configurable: true });
    ui.stdout.emit('resize');
    await tick();
    expect(dbg.columns).toBe(150);
    expect(ui.lastFrame()!.split('\n')).toHaveLength(29);
    expect(ui.lastFrame()).toContain('4 Stack');
  });

  it('a step the trace cannot rebuild (a damaged file) sends the cursor back and says why', async () => {
    class Damaged extends FakeTrace {
      override state(step: number) {
        if (step > 40) throw new RewindError(`fake.rwt: frame 9 at byte 1234: checksum mismatch`);
        return super.state(step);
      }
    }
    const dbg = new Debugger(new Damaged(), { at: 5 });
    const ui = render(<App dbg={dbg} columns={80} rows={24} />);
    await tick();
    ui.stdin.write('G');
    await tick();
    await tick();
    expect(ui.lastFrame()).toMatch(/^step 5\//m);
    expect(ui.lastFrame()).toContain('step 53: fake.rwt: frame 9 at byte 1234: checksum mismatch');
  });

  it('NO_COLOR turns colours off, and only a non-empty value does', () => {
    expect(themeFromEnv({ NO_COLOR: '1' }).color).toBe(false);
    expect(themeFromEnv({ NO_COLOR: '' }).color).toBe(true);
    expect(themeFromEnv({}).color).toBe(true);
  });
});
