// What each pane shows, as plain rows computed from the step's state: the panes draw these, and
// the debugger uses them to know what a selection designates.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { BPF_CALL, BPF_EXIT, BPF_JA, BPF_JMP, BPF_JMP32, cls, decodePacket, formatInsn, formatValue, HELPER_NAMES, insnStarts, jmpOp, toHex, type PacketLayer } from '@rewind/vm';
import type { Debugger } from './debugger.js';
import type { StepState, TraceEvent, TraceProgram, TraceRun } from './trace.js';

export type PaneId = 'source' | 'disasm' | 'registers' | 'stack' | 'packet' | 'maps' | 'events' | 'runs';
/** Number keys 1..8 focus these, in this order. */
export const PANES: readonly PaneId[] = ['source', 'disasm', 'registers', 'stack', 'packet', 'maps', 'events', 'runs'];
export const PANE_TITLES: Record<PaneId, string> = {
  source: 'Source',
  disasm: 'Disassembly',
  registers: 'Registers',
  stack: 'Stack',
  packet: 'Packet',
  maps: 'Maps',
  events: 'Events',
  runs: 'Runs',
};

export interface SourceRow {
  line: number;
  text: string;
  /** Some instruction carries this line. */
  code: boolean;
  current: boolean;
  breakpoint: boolean;
}

export interface DisasmRow {
  /** Undefined for a label row (`xdp_firewall:` or `L12:`). */
  pc?: number;
  text: string;
  current: boolean;
  breakpoint: boolean;
  executed: boolean;
  jumpTarget: boolean;
  label?: boolean;
}

export interface RegisterRow {
  reg: number;
  value: bigint;
  hex: string;
  dec: string;
  points: string;
  changed: boolean;
}

export interface HexRow {
  /** Stack frame depth, for stack rows. */
  depth?: number;
  /** First byte: offset from r10 (stack) or from data (packet). */
  offset: number;
  bytes: Uint8Array;
  /** Which of the row's bytes are highlighted (written by the last step / changed by the program). */
  marked: boolean[];
  /** A frame header row (no bytes). */
  header?: string;
}

export interface MapRow {
  map: string;
  /** Absent on a map's header row. */
  key?: string;
  text: string;
  changed: boolean;
}

export function hex64(v: bigint): string {
  return '0x' + v.toString(16).padStart(16, '0');
}

/** Where a source file named by line info is: as named, against the working directory, the trace's folder or the given folders. */
const sourceCache = new Map<string, string[] | null>();
export function readSource(file: string, dirs: string[]): string[] | undefined {
  const key = file + '\0' + dirs.join('\0');
  const hit = sourceCache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  const names = [file, file.replace(/^\.\//, ''), file.slice(file.lastIndexOf('/') + 1)];
  let found: string[] | null = null;
  for (const name of names) {
    const candidates = isAbsolute(name) ? [name] : dirs.map((d) => join(d, name));
    for (const c of candidates) {
      try {
        if (existsSync(c)) {
          found = readFileSync(c, 'utf8').split('\n');
          break;
        }
      } catch {
        // unreadable: try the next place
      }
    }
    if (found) break;
  }
  sourceCache.set(key, found);
  return found ?? undefined;
}

function program(dbg: Debugger, s: StepState): TraceProgram {
  return dbg.trace.programs.find((p) => p.name === s.program) ?? dbg.trace.programs[0]!;
}

function bpPcs(dbg: Debugger, prog: string): Set<number> {
  const out = new Set<number>();
  for (const b of dbg.breakpoints) if (b.program === undefined || b.program === prog) for (const pc of b.pcs) out.add(pc);
  return out;
}

const disasmCache = new WeakMap<TraceProgram, { rows: Omit<DisasmRow, 'current' | 'breakpoint' | 'executed'>[]; rowOfPc: Map<number, number> }>();

function disasmBase(dbg: Debugger, prog: TraceProgram) {
  let c = disasmCache.get(prog);
  if (c) return c;
  const code = prog.code;
  const targets = new Set<number>();
  for (const pc of insnStarts(code)) {
    const op = code.op[pc]!;
    const k = cls(op);
    if ((k === BPF_JMP || k === BPF_JMP32) && jmpOp(op) !== BPF_CALL && jmpOp(op) !== BPF_EXIT) {
      // gotol (JMP32 | JA) keeps its offset in imm.
      const rel = k === BPF_JMP32 && jmpOp(op) === BPF_JA ? code.imm[pc]! : code.off[pc]!;
      targets.add(pc + 1 + rel);
    }
  }
  const funcAt = new Map(prog.funcs.map((f) => [f.start, f.name]));
  const opts = {
    jumpLabel: (t: number) => funcAt.get(t) ?? `L${t}`,
    funcName: (t: number) => funcAt.get(t),
    helperName: (id: number) => HELPER_NAMES[id],
    mapName: (i: number) => dbg.trace.maps[i]?.name,
  };
  const rows: Omit<DisasmRow, 'current' | 'breakpoint' | 'executed'>[] = [];
  const rowOfPc = new Map<number, number>();
  for (const pc of insnStarts(code)) {
    const f = funcAt.get(pc);
    if (f !== undefined) rows.push({ text: `${f}:`, jumpTarget: false, label: true });
    else if (targets.has(pc)) rows.push({ text: `L${pc}:`, jumpTarget: true, label: true });
    rowOfPc.set(pc, rows.length);
    rows.push({ pc, text: formatInsn(code, pc, opts).replace(/\t/g, ' '), jumpTarget: targets.has(pc) });
  }
  c = { rows, rowOfPc };
  disasmCache.set(prog, c);
  return c;
}

/** One event as the events pane and `rewind inspect` write it. */
export function eventText(e: TraceEvent): string {
  switch (e.kind) {
    case 'helper':
      return `${e.name}(${e.args.map((a) => '0x' + a.toString(16)).join(', ')}) = 0x${e.r0.toString(16)}`;
    case 'print':
      return `trace_printk: ${e.text}`;
    case 'map':
      return `${e.map}: ${e.op}${e.key ? ` key ${toHex(e.key)}` : ''}${e.after ? ` → ${toHex(e.after)}` : ''}${e.cpu !== undefined ? ` (cpu ${e.cpu})` : ''}`;
    case 'output':
      return `output ${e.map}: ${toHex(e.data)}`;
    case 'tailcall':
      return `tail call → ${e.program}`;
    case 'warning':
      return `warning: ${e.text}`;
    case 'fault':
      return `fault: ${e.text}`;
  }
}

function mapValueText(dbg: Debugger, mapName: string, hexValue: string | string[]): string {
  const def = dbg.trace.maps.find((m) => m.name === mapName);
  const one = (h: string): string => {
    if (dbg.btf && def?.btfValueTypeId) {
      try {
        return formatValue(dbg.btf, def.btfValueTypeId, hexToBytes(h));
      } catch {
        // the value does not fit its BTF type: show the bytes
      }
    }
    return h;
  };
  return Array.isArray(hexValue) ? hexValue.map((v, cpu) => `cpu${cpu} ${one(v)}`).join(' | ') : one(hexValue);
}

function mapKeyText(dbg: Debugger, mapName: string, hexKey: string): string {
  const def = dbg.trace.maps.find((m) => m.name === mapName);
  if (dbg.btf && def?.btfKeyTypeId) {
    try {
      return formatValue(dbg.btf, def.btfKeyTypeId, hexToBytes(hexKey));
    } catch {
      // fall back to the bytes
    }
  }
  return hexKey;
}

function hexToBytes(h: string): Uint8Array {
  const out = new Uint8Array(h.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export const paneRows = {
  source(dbg: Debugger, s: StepState): { file?: string; found: boolean; lines: SourceRow[] } {
    const prog = program(dbg, s);
    const file = s.source?.file ?? prog.lines[0]?.file;
    if (file === undefined) return { found: false, lines: [] };
    const codeLines = new Map<number, string>();
    for (const l of prog.lines) if (l.file === file) codeLines.set(l.line, l.text);
    const bps = bpPcs(dbg, prog.name);
    const bpLines = new Set(prog.lines.filter((l) => l.file === file && bps.has(l.pc)).map((l) => l.line));
    const text = readSource(file, [process.cwd(), dirname(dbg.trace.path), ...dbg.sourceDirs]);
    const cur = s.source?.line;
    const row = (line: number, t: string): SourceRow => ({ line, text: t.replace(/\t/g, '    '), code: codeLines.has(line), current: line === cur, breakpoint: bpLines.has(line) });
    if (text) return { file, found: true, lines: text.map((t, i) => row(i + 1, t)) };
    return { file, found: false, lines: [...codeLines].sort((a, b) => a[0] - b[0]).map(([line, t]) => row(line, t)) };
  },

  disasm(dbg: Debugger, s: StepState): DisasmRow[] {
    const prog = program(dbg, s);
    const base = disasmBase(dbg, prog);
    const bps = bpPcs(dbg, prog.name);
    const executed = dbg.executedPcs();
    return base.rows.map((r) => ({ ...r, current: r.pc === s.pc, breakpoint: r.pc !== undefined && bps.has(r.pc), executed: r.pc !== undefined && !!executed?.has(r.pc) }));
  },

  /** The row the cursor is on in the source or disassembly. */
  cursorRow(dbg: Debugger, s: StepState, pane: 'source' | 'disasm'): number {
    if (pane === 'disasm') return disasmBase(dbg, program(dbg, s)).rowOfPc.get(s.pc) ?? 0;
    const rows = paneRows.source(dbg, s).lines;
    const i = rows.findIndex((r) => r.current);
    return i < 0 ? 0 : i;
  },

  registers(s: StepState): RegisterRow[] {
    return s.regs.map((v, reg) => {
      const p = s.prov[reg];
      const signed = BigInt.asIntN(64, v);
      return {
        reg,
        value: v,
        hex: '0x' + v.toString(16),
        dec: signed < 0n ? `${signed}` : `${v}`,
        points: p ? p.text : 'scalar',
        changed: s.changed.includes(reg),
      };
    });
  },

  /** The frames, innermost first: a header, then the 16-byte rows from the lowest non-zero or written byte up to r10. */
  stack(dbg: Debugger, s: StepState): HexRow[] {
    const per = dbg.bytesPerRow.stack;
    const rows: HexRow[] = [];
    for (const f of [...s.frames].reverse()) {
      rows.push({ depth: f.depth, offset: 0, bytes: new Uint8Array(0), marked: [], header: `#${f.depth} ${f.func}` });
      const written = new Set(f.written);
      let low = f.bytes.length;
      for (let i = 0; i < f.bytes.length; i++) {
        if (f.bytes[i] !== 0 || written.has(i)) {
          low = i;
          break;
        }
      }
      for (let at = low - (low % per); at < f.bytes.length; at += per) {
        const bytes = f.bytes.subarray(at, at + per);
        rows.push({ depth: f.depth, offset: at - f.bytes.length, bytes, marked: Array.from(bytes, (_, i) => written.has(at + i)) });
      }
    }
    return rows;
  },

  packet(dbg: Debugger, s: StepState): { rows: HexRow[]; layers: PacketLayer[] } {
    if (!s.packet) return { rows: [], layers: [] };
    const per = dbg.bytesPerRow.packet;
    const b = s.packet.bytes;
    const changed = new Set(s.packet.changed);
    const rows: HexRow[] = [];
    for (let at = 0; at < b.length; at += per) {
      const bytes = b.subarray(at, at + per);
      rows.push({ offset: at, bytes, marked: Array.from(bytes, (_, i) => changed.has(at + i)) });
    }
    return { rows, layers: decodePacket(b) };
  },

  maps(dbg: Debugger, s: StepState): MapRow[] {
    const rows: MapRow[] = [];
    const atThisStep = new Set<string>();
    for (const e of s.events) if (e.kind === 'map' && e.step === s.step && e.key) atThisStep.add(`${e.map}\0${toHex(e.key)}`);
    const start = dbg.mapDiff ? dbg.trace.state(dbg.trace.runOf(s.step).firstStep).maps : undefined;
    for (const [name, entries] of Object.entries(s.maps)) {
      const def = dbg.trace.maps.find((m) => m.name === name);
      rows.push({ map: name, text: `${name}${def ? ` (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'})` : ''}`, changed: false });
      if (start) {
        const before = new Map((start[name] ?? []).map((e) => [e.key, JSON.stringify(e.value)]));
        const now = new Map(entries.map((e) => [e.key, e]));
        for (const e of entries) {
          const was = before.get(e.key);
          if (was === JSON.stringify(e.value)) continue;
          rows.push({ map: name, key: e.key, text: `${was === undefined ? '+' : '~'} ${mapKeyText(dbg, name, e.key)} => ${mapValueText(dbg, name, e.value)}`, changed: true });
        }
        for (const e of start[name] ?? []) if (!now.has(e.key)) rows.push({ map: name, key: e.key, text: `- ${mapKeyText(dbg, name, e.key)}`, changed: true });
        continue;
      }
      for (const e of entries) rows.push({ map: name, key: e.key, text: `${mapKeyText(dbg, name, e.key)} => ${mapValueText(dbg, name, e.value)}`, changed: atThisStep.has(`${name}\0${e.key}`) });
    }
    return rows;
  },

  events(dbg: Debugger, s: StepState): { step: number; text: string; kind: string }[] {
    const rows = s.events.map((e) => ({ step: e.step, text: eventText(e), kind: e.kind }));
    // The run's warnings (uninitialised reads and the like) carry no step: they show at its end.
    if (s.atEnd) for (const w of dbg.trace.runs[s.run]?.warnings ?? []) rows.push({ step: s.step, text: `warning: ${w}`, kind: 'warning' });
    return rows;
  },

  runs(dbg: Debugger): { run: TraceRun; text: string }[] {
    const runs = dbg.runFilter === undefined ? dbg.trace.runs : dbg.trace.runs.filter((r) => r.verdict === dbg.runFilter);
    return runs.map((run) => ({ run, text: `${String(run.index).padStart(4)} ${run.verdict.padEnd(12)} ${String(run.lastStep - run.firstStep).padStart(6)} insns${run.fault ? ' fault' : ''}${run.warnings.length ? ' !' : ''}` }));
  },
};

/** How many rows (bytes, for the hex panes) the selection of a pane moves over. */
export function selectableCount(dbg: Debugger, s: StepState, p: PaneId): number {
  switch (p) {
    case 'source':
      return paneRows.source(dbg, s).lines.length;
    case 'disasm':
      return paneRows.disasm(dbg, s).length;
    case 'registers':
      return 11;
    case 'stack':
      return paneRows.stack(dbg, s).length * dbg.bytesPerRow.stack;
    case 'packet':
      return s.packet?.bytes.length ?? 0;
    case 'maps':
      return paneRows.maps(dbg, s).length;
    case 'events':
      return paneRows.events(dbg, s).length;
    case 'runs':
      return paneRows.runs(dbg).length;
  }
}
