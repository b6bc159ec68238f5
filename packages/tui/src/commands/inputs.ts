// The inputs every running command takes (`rewind run`, `record`, `debug`, `kernel-diff`):
// the program, its packets, context, maps and the run's settings.

import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import {
  loadMapEntries,
  loadPackets,
  loadProgramFile,
  parseProgType,
  RewindError,
  selectProgram,
  Session,
  type FibRoute,
  type PacketSource,
  type Program,
  type ProgramSource,
  type RunInput,
  type SessionOptions,
} from '@rewind/vm';

export interface InputArgs {
  program: string;
  section?: string;
  type?: string;
  pcap?: string;
  packetFile?: string;
  packetHex?: string;
  ctx?: string;
  ctxFile?: string;
  maps?: string;
  repeat?: number;
  cpus?: number;
  cpu?: number;
  seed?: number;
  time?: string;
  fib?: string;
  maxSteps?: number;
  strict?: boolean;
}

export class UsageError extends RewindError {
  override name = 'UsageError';
}

export function inputOptions<T>(y: Argv<T>) {
  return y
    .positional('program', { type: 'string', demandOption: true, describe: 'a clang BPF object (.o), a .data file, or a classic BPF filter (tcpdump -ddd output)' })
    .option('section', { type: 'string', describe: 'the program to run, by ELF section or function name (default: the first)' })
    .option('type', { type: 'string', describe: 'program type for sections whose name tells none: xdp, tc, socket, raw' })
    .option('pcap', { type: 'string', describe: 'packets from a pcap or pcapng file, one run each' })
    .option('packet-file', { type: 'string', describe: 'one packet from a file of raw bytes' })
    .option('packet-hex', { type: 'string', describe: 'one packet as hex bytes' })
    .option('ctx', { type: 'string', describe: 'context fields, e.g. ingress_ifindex=2,mark=7' })
    .option('ctx-file', { type: 'string', describe: 'the context as raw bytes (like bpftool ctx_in)' })
    .option('maps', { type: 'string', describe: 'initial map entries: JSON {"<map>": [{"key","value"}]} or a `rewind run --json` output' })
    .option('repeat', { type: 'number', default: 1, describe: 'run each packet N times, each from its original bytes' })
    .option('cpus', { type: 'number', default: 1, describe: 'possible CPUs (slots of per-CPU maps)' })
    .option('cpu', { type: 'number', default: 0, describe: 'the CPU runs execute on' })
    .option('seed', { type: 'number', default: 0, describe: 'seed of bpf_get_prandom_u32' })
    .option('time', { type: 'string', describe: 'clock in ns for bpf_ktime_get_ns (default: each packet\'s capture time, else 0)' })
    .option('fib', { type: 'string', describe: 'routes for bpf_fib_lookup: JSON [{"prefix","ifindex","smac","dmac","gateway"?,"mtu"?}]' })
    .option('max-steps', { type: 'number', describe: 'instruction budget of each run (default 1000000000)' })
    .option('strict', { type: 'boolean', default: false, describe: 'reads of never-written registers or stack bytes are errors, not warnings' });
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new RewindError(`${path}: cannot read ${what}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    // JSON.parse quotes the text around the error; keep the message to one printable line.
    const why = (e as Error).message.split(/, "/)[0]!.replace(/[^\x20-\x7e]/g, '?');
    throw new RewindError(`${path}: ${what} is not valid JSON (${why})`);
  }
}

function positiveInt(v: number | undefined, name: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < min) throw new UsageError(`--${name} must be an integer of at least ${min}`);
  return v;
}

export function parseCtxFields(spec: string | undefined): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  if (!spec) return out;
  for (const part of spec.split(',')) {
    const m = /^\s*([a-z_0-9]+(?:\[\d+\])?)\s*=\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*$/.exec(part);
    if (!m) throw new UsageError(`--ctx: '${part}' is not field=value`);
    out[m[1]!] = BigInt(m[2]!);
  }
  return out;
}

export interface Prepared {
  source: ProgramSource;
  program: Program;
  session: Session;
  packets?: PacketSource;
  /** One input per run, in order. */
  runs: { input: RunInput; packetIndex?: number }[];
}

/** Loads the program and its inputs and makes the session that runs them. */
export function prepare(args: InputArgs, extra: Partial<SessionOptions> = {}): Prepared {
  const type = args.type !== undefined ? parseProgType(args.type) : undefined;
  const source = loadProgramFile(args.program, { type });
  let program = selectProgram(source, args.section);
  if (type && program.type !== type) program = { ...program, type };
  const repeat = positiveInt(args.repeat, 'repeat') ?? 1;
  const cpus = positiveInt(args.cpus, 'cpus') ?? 1;
  const cpu = positiveInt(args.cpu, 'cpu', 0) ?? 0;
  const maxSteps = positiveInt(args.maxSteps, 'max-steps');
  let fib: FibRoute[] | undefined;
  if (args.fib) fib = readJson(args.fib, '--fib routes') as FibRoute[];
  const programs = source.programs.map((p) => (p.name === program.name ? program : p));
  const session = new Session(programs, source.maps, { cpus, cpu, seed: args.seed, maxSteps, strict: args.strict, fib, ...extra });
  if (args.maps) applyMaps(session, readJson(args.maps, '--maps'), args.maps);
  const packets = loadPackets({ pcap: args.pcap, packetFile: args.packetFile, packetHex: args.packetHex });
  const ctx = parseCtxFields(args.ctx);
  let ctxBytes: Uint8Array | undefined;
  if (args.ctxFile) {
    try {
      ctxBytes = readFileSync(args.ctxFile);
    } catch {
      throw new RewindError(`${args.ctxFile}: cannot read the context file`);
    }
  }
  let time: bigint | undefined;
  if (args.time !== undefined) {
    if (!/^\d+$/.test(args.time)) throw new UsageError(`--time must be a number of nanoseconds`);
    time = BigInt(args.time);
  }
  const runs: Prepared['runs'] = [];
  const base: RunInput = { ctx, ctxBytes, mem: source.mem };
  if (packets) {
    for (const p of packets.packets) for (let k = 0; k < repeat; k++) runs.push({ input: { ...base, packet: p.data, timeNs: time ?? p.timestampNs ?? 0n }, packetIndex: p.index });
  } else {
    for (let k = 0; k < repeat; k++) runs.push({ input: { ...base, timeNs: time ?? 0n } });
  }
  return { source, program, session, packets, runs };
}

/** Sets map entries from `{ "<map>": [{ key, value }] }` or a whole `rewind run --json` output. */
export function applyMaps(session: Session, json: unknown, file: string): void {
  const obj = json && typeof json === 'object' && 'maps' in (json as object) ? (json as { maps: unknown }).maps : json;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new RewindError(`${file}: expected an object of map names`);
  for (const [name, entries] of Object.entries(obj as Record<string, unknown>)) {
    const map = session.maps.find((m) => m.name === name);
    if (!map) throw new RewindError(`${file}: the program has no map '${name}' (maps: ${session.maps.map((m) => m.name).join(', ')})`);
    if (!Array.isArray(entries)) throw new RewindError(`${file}: map '${name}' must be a list of {"key","value"}`);
    loadMapEntries(map, entries as never);
  }
}

