// The `:` command language: goto, break, watch, delete, info, find, diff, export, help.

import { writeFileSync } from 'node:fs';
import { DebuggerError, describeQuery, type Debugger } from './debugger.js';
import { diffStates, snapshot } from './snapshot.js';
import type { StepQuery } from './trace.js';

export const KEY_HELP: readonly string[] = [
  'Moving (upper case runs backward, as in gdb; a count repeats: 25s)',
  '  s →   step            S ←   step back',
  '  n     next (over calls)  N   back over calls',
  '  f     finish function    F   back to the call',
  '  c     continue to a breakpoint, watchpoint or run end    C  reverse-continue',
  '  ] [   next / previous run    g G  first / last step (Ng: step N)',
  '  m<x>  set mark x             \'<x>  go to mark x',
  '  ; ,   next / previous match of :find',
  'Panes',
  '  Tab, 1-8  focus: 1 source 2 disassembly 3 registers 4 stack 5 packet 6 maps 7 events 8 runs',
  '  ↑ ↓ (k j)  move the selection   h l  by byte   PgUp PgDn  scroll',
  '  w     where did the selected register/byte/entry come from (again: follow the chain)',
  '  b     breakpoint on the selected line or instruction',
  '  Enter go to the selected run or event     v  filter runs by verdict   d  maps: diff from run start',
  '  :     command line      ?  this help      q  quit      Ctrl-C  interrupt, or quit',
];

export const COMMAND_HELP: readonly string[] = [
  'Commands (type : first)',
  '  goto N | goto run K',
  '  break <pc | file:line | function> [if <condition>]   e.g. break 12 if r1 == 6 && *(u8 *)(pkt + 23) == 17',
  '  watch <register | *(u32 *)(address) | map NAME[key]>   key: an integer or hex bytes',
  '  delete N            info breakpoints',
  '  find helper=NAME | pc=N | line=L | map=NAME [op=update] | verdict=XDP_DROP   then ; and ,',
  '  diff A B            the state difference between steps A and B',
  '  export [--at N] FILE.json   the state at step N (default: here) as JSON',
  '  mark X | marks      help',
];

function stepNumber(d: Debugger, text: string | undefined, what: string): number {
  if (text === undefined || !/^(\d+|\.|\$)$/.test(text)) throw new DebuggerError(`${what}: expected a step number (0..${d.trace.lastStep})`);
  const n = text === '.' ? d.step : text === '$' ? d.trace.lastStep : Number(text);
  if (n > d.trace.lastStep) throw new DebuggerError(`${what}: step ${n} is past the last step ${d.trace.lastStep}`);
  return n;
}

/** `find` arguments: `helper=bpf_map_lookup_elem`, `map=flows op=update`, ... */
export function parseQuery(args: string): StepQuery {
  const kv = new Map<string, string>();
  for (const part of args.trim().split(/\s+/)) {
    const m = /^([a-z]+)=(.+)$/.exec(part);
    if (!m) throw new DebuggerError(`find: '${part}' is not key=value (helper=, pc=, line=, map= [op=], verdict=)`);
    kv.set(m[1]!, m[2]!);
  }
  const num = (k: string) => {
    const v = kv.get(k)!;
    if (!/^(0x[0-9a-f]+|\d+)$/i.test(v)) throw new DebuggerError(`find: ${k}=${v} is not a number`);
    return Number(v);
  };
  if (kv.has('helper')) return { kind: 'helper', name: kv.get('helper')! };
  if (kv.has('pc')) return { kind: 'pc', pc: num('pc') };
  if (kv.has('line')) {
    const v = kv.get('line')!;
    const m = /^(?:(.+):)?(\d+)$/.exec(v);
    if (!m) throw new DebuggerError(`find: line=${v} is not a line number (or file:line)`);
    return m[1] ? { kind: 'line', line: Number(m[2]), file: m[1] } : { kind: 'line', line: Number(m[2]) };
  }
  if (kv.has('map')) return kv.has('op') ? { kind: 'map', map: kv.get('map')!, op: kv.get('op')! } : { kind: 'map', map: kv.get('map')! };
  if (kv.has('verdict')) return { kind: 'verdict', verdict: kv.get('verdict')! };
  throw new DebuggerError('find: say what: helper=NAME, pc=N, line=L, map=NAME [op=OP] or verdict=V');
}

export function runCommand(d: Debugger, text: string): void {
  const m = /^(\S+)\s*(.*)$/.exec(text.trim());
  if (!m) return;
  const [, cmd, rest] = m as unknown as [string, string, string];
  const args = rest.trim();
  switch (cmd) {
    case 'goto':
    case 'g': {
      const run = /^run\s+(\d+)$/.exec(args);
      if (run) d.gotoRun(Number(run[1]));
      else d.goto(stepNumber(d, args, 'goto'));
      return;
    }
    case 'break':
    case 'b': {
      const b = d.addBreakpoint(args);
      d.say(`breakpoint ${b.id} at ${b.spec} (${b.pcs.size} instruction${b.pcs.size === 1 ? '' : 's'})`);
      return;
    }
    case 'watch': {
      const w = d.addWatchpoint(args);
      d.say(`watchpoint ${w.id}: ${w.spec}`);
      return;
    }
    case 'delete':
    case 'd': {
      if (!/^\d+$/.test(args)) throw new DebuggerError('delete: expected a breakpoint or watchpoint number (info breakpoints lists them)');
      d.deleteBreakpoint(Number(args));
      d.say(`deleted ${args}`);
      return;
    }
    case 'info':
    case 'i': {
      if (!/^(b|break|breakpoints|w|watch|watchpoints)?$/.test(args)) throw new DebuggerError(`info ${args}: only info breakpoints`);
      const lines = [
        ...d.breakpoints.map((b) => `${String(b.id).padStart(3)}  breakpoint  ${b.spec}  (pc ${[...b.pcs].join(', ')}; hit ${b.hits} time${b.hits === 1 ? '' : 's'})`),
        ...d.watchpoints.map((w) => `${String(w.id).padStart(3)}  watchpoint  ${w.spec}  (hit ${w.hits} time${w.hits === 1 ? '' : 's'})`),
      ];
      d.show('Breakpoints and watchpoints', lines.length ? lines : ['none: :break and :watch set them']);
      return;
    }
    case 'find':
    case 'f': {
      d.lastFind = parseQuery(args);
      d.say(`searching ${describeQuery(d.lastFind)}`);
      void d.motion('find-next');
      return;
    }
    case 'diff': {
      const [a, b, extra] = args.split(/\s+/);
      if (extra !== undefined) throw new DebuggerError('diff: expected two steps, diff A B');
      const sa = stepNumber(d, a, 'diff');
      const sb = stepNumber(d, b ?? '.', 'diff');
      const lines = diffStates(d.trace.state(sa), d.trace.state(sb));
      d.show(`Difference from step ${sa} to step ${sb}`, lines.length ? lines : ['no difference']);
      return;
    }
    case 'export': {
      const em = /^(?:--at\s+(\S+)\s+)?(\S+)(?:\s+--at\s+(\S+))?$/.exec(args);
      if (!em) throw new DebuggerError('export: export [--at N] FILE.json');
      const at = em[1] ?? em[3];
      const step = at === undefined ? d.step : stepNumber(d, at, 'export --at');
      const file = em[2]!;
      try {
        writeFileSync(file, JSON.stringify(snapshot(d.trace, d.trace.state(step)), null, 2) + '\n');
      } catch (e) {
        throw new DebuggerError(`export: cannot write ${file}: ${(e as Error).message}`);
      }
      d.say(`wrote the state at step ${step} to ${file}`);
      return;
    }
    case 'mark': {
      if (!/^[a-zA-Z]$/.test(args)) throw new DebuggerError('mark: expected a letter');
      d.marks.set(args, d.step);
      d.say(`mark ${args} at step ${d.step}`);
      return;
    }
    case 'marks':
      d.show('Marks', d.marks.size ? [...d.marks].map(([k, s]) => `${k}  step ${s}`) : ['none: m<letter> sets one']);
      return;
    case 'help':
    case 'h':
      d.show('Help', [...KEY_HELP, '', ...COMMAND_HELP]);
      return;
    case 'q':
    case 'quit':
      d.quit = true;
      return;
    default:
      if (/^\d+$/.test(cmd) && !args) {
        d.goto(stepNumber(d, cmd, 'goto'));
        return;
      }
      throw new DebuggerError(`:${cmd}: unknown command (:help lists them)`);
  }
}
