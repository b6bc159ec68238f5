// The inputs of a run as the CLI names them: a program file (a clang object, a `.data` test
// file, or a classic BPF filter as `tcpdump -ddd` prints it), packets (pcap, pcapng, a raw
// packet file, a hex string), context fields and initial maps.

import { readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { basename } from 'node:path';
import { RewindError } from '../errors.js';
import type { MapDef, Program, ProgType } from '../program.js';
import { loadObject } from '../elf/loader.js';
import type { BpfObject } from '../elf/loader.js';
import { parseDataFile } from '../asm/datafile.js';
import { parseCbpfDump } from '../cbpf/parse.js';
import { convertCbpf } from '../cbpf/convert.js';
import { readCapture, parsePacketHex } from '../packet/pcap.js';
import { linkTypeName } from '../packet/pcap.js';

export interface ProgramSource {
  file: string;
  kind: 'object' | 'data' | 'cbpf';
  programs: Program[];
  maps: MapDef[];
  object?: BpfObject;
  /** `.data` files: the memory r1 points to, and the expected r0. */
  mem?: Uint8Array;
  expected?: bigint;
}

const PROG_TYPES: readonly ProgType[] = ['xdp', 'tc', 'socket', 'raw', 'tracepoint', 'kprobe', 'perf_event', 'cgroup_skb'];

export function parseProgType(t: string): ProgType {
  const alias: Record<string, ProgType> = { classifier: 'tc', sched_cls: 'tc', socket_filter: 'socket' };
  const v = (alias[t] ?? t) as ProgType;
  if (!PROG_TYPES.includes(v)) throw new RewindError(`--type ${t}: not a program type Rewind runs (${PROG_TYPES.join(', ')})`);
  return v;
}

function readInput(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RewindError(`${path}: cannot read ${what}${code === 'ENOENT' ? ': no such file' : code ? `: ${code}` : ''}`);
  }
}

/** Loads a program file, telling its kind from its contents. */
export function loadProgramFile(path: string, opts: { type?: ProgType } = {}): ProgramSource {
  const bytes = readInput(path, 'the program');
  if (bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    const object = loadObject(bytes, path, { type: opts.type });
    if (object.programs.length === 0) throw new RewindError(`${path}: the object has no programs`);
    return { file: path, kind: 'object', programs: object.programs, maps: object.maps, object };
  }
  const text = new TextDecoder().decode(bytes);
  const name = basename(path).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_]/g, '_') || 'prog';
  if (/^\s*\d+\s*\n(\s*\d+\s+\d+\s+\d+\s+\d+\s*\n?)+\s*$/.test(text) || /^\s*\{\s*0x[0-9a-f]+,/i.test(text)) {
    // Classic BPF: translated to eBPF as the kernel's bpf_convert_filter() does; a socket filter.
    const insns = parseCbpfDump(text, path);
    const { code } = convertCbpf(insns, path);
    const type = opts.type ?? 'socket';
    return { file: path, kind: 'cbpf', programs: [{ name, type, code, funcs: [{ name, start: 0, end: code.length }], maps: [] }], maps: [] };
  }
  if (/^--\s*(asm|raw)\b/m.test(text)) {
    const t = parseDataFile(text, { file: path, readFile: (rel) => new TextDecoder().decode(readInput(resolvePath(dirname(resolvePath(path)), rel), 'an included file')) });
    if (!t.code) throw new RewindError(`${path}: the file has no program (-- asm or -- raw section)`);
    const type = opts.type ?? 'raw';
    return { file: path, kind: 'data', programs: [{ name, type, code: t.code, funcs: [{ name, start: 0, end: t.code.length }], maps: [] }], maps: [], mem: t.mem, expected: t.result };
  }
  throw new RewindError(`${path}: not a BPF object (ELF), a .data file (-- asm / -- raw sections) or a classic BPF dump (tcpdump -ddd)`);
}

/** Picks the program to run by section or program name (default: the first). */
export function selectProgram(src: ProgramSource, which?: string): Program {
  if (which === undefined) return src.programs[0]!;
  const bySection = src.programs.filter((p) => p.section === which);
  const byName = src.programs.filter((p) => p.name === which);
  const found = byName[0] ?? bySection[0];
  if (!found) {
    const list = src.programs.map((p) => (p.section ? `${p.section} (${p.name})` : p.name)).join(', ');
    throw new RewindError(`${src.file}: no program or section '${which}' (the object has: ${list})`);
  }
  return found;
}

export interface PacketInput {
  index: number;
  data: Uint8Array;
  /** Capture timestamp. */
  timestampNs?: bigint;
  /** The capture was Linux cooked (SLL/SLL2) or raw IP: the Ethernet header is made up. */
  synthesizedEthernet?: boolean;
}

export interface PacketSource {
  packets: PacketInput[];
  /** Where they came from, for the summary. */
  description: string;
  /** Something the user should know (made-up Ethernet headers). */
  note?: string;
}

/** Packets from --pcap, --packet-file or --packet-hex (at most one of them). */
export function loadPackets(opts: { pcap?: string; packetFile?: string; packetHex?: string }): PacketSource | undefined {
  const given = [opts.pcap, opts.packetFile, opts.packetHex].filter((x) => x !== undefined);
  if (given.length > 1) throw new RewindError('give one of --pcap, --packet-file, --packet-hex');
  if (opts.pcap !== undefined) {
    const cap = readCapture(readInput(opts.pcap, 'the capture'), opts.pcap);
    const made = cap.packets.filter((p) => p.synthesizedEthernet).length;
    const types = [...new Set(cap.packets.map((p) => p.linkType))].map(linkTypeName).join(', ');
    return {
      packets: cap.packets.map((p, i) => ({ index: i, data: p.data, timestampNs: p.timestampNs, synthesizedEthernet: p.synthesizedEthernet })),
      description: `${opts.pcap} (${cap.packets.length} packets, ${types || 'empty'})`,
      note: made ? `${made} packet${made > 1 ? 's' : ''} of ${opts.pcap} had no Ethernet header (${types}): Rewind made one up` : undefined,
    };
  }
  if (opts.packetFile !== undefined) return { packets: [{ index: 0, data: readInput(opts.packetFile, 'the packet') }], description: opts.packetFile };
  if (opts.packetHex !== undefined) return { packets: [{ index: 0, data: parsePacketHex(opts.packetHex) }], description: '--packet-hex' };
  return undefined;
}
