// `rewind kernel-diff`: runs a program in Rewind and in the Linux kernel (bpftool prog loadall,
// BPF_PROG_TEST_RUN with repeat 1) on the same inputs and reports every difference in verdict,
// output packet and final maps. Runs that called helpers whose result depends on time, random
// numbers or the CPU are named and not compared. The kernel's runs are pinned to the session's
// CPU (bpftool under taskset), so per-CPU maps fill one slot on both sides; per-CPU values are
// compared summed over the CPUs.
//
// Exit status: 0 they agree, 1 they differ, 2 bad arguments, 4 the bpf() syscall (or bpftool,
// or root) is missing.

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dumpMap, roundUp8, toHex, verdictName, type BpfMap, type MapDumpEntry, type RunOutcome } from '@rewind/vm';
import { Bpffs, kernelAvailable, KernelError, runProgram, updateMap, writeBpfObject, dumpMap as kernelDumpMap, runTool, findTool } from '@rewind/vm/kernel';
import { prepare, UsageError, type InputArgs } from './inputs.js';

export interface KernelDiffArgs extends InputArgs {
  json?: boolean;
}

interface Difference {
  run?: number;
  what: string;
}

const KERNEL_TYPES = new Set(['xdp', 'tc', 'socket']);

export async function kernelDiff(args: KernelDiffArgs): Promise<number> {
  const status = kernelAvailable();
  if (!status.ok) {
    process.stderr.write(`rewind kernel-diff: the kernel cannot be asked here: ${status.reason}\n`);
    return 4;
  }
  const p = prepare(args);
  const type = p.program.type;
  if (!KERNEL_TYPES.has(type)) throw new UsageError(`kernel-diff runs xdp, tc and socket programs; ${p.program.name} is ${type} (use --type)`);
  if (p.runs.some((r) => !r.input.packet)) throw new UsageError('kernel-diff needs packets: --pcap, --packet-file or --packet-hex');

  // The maps as the program starts (what --maps set) go into the kernel too.
  // Program arrays and maps of maps hold objects, which libbpf fills from the object itself.
  const holdsObjects = new Set(['prog_array', 'array_of_maps', 'hash_of_maps', 'devmap', 'devmap_hash', 'cpumap', 'xskmap', 'ringbuf', 'perf_event_array']);
  const initial = p.session.maps.map((m) => ({ m, entries: m.def.globalData || holdsObjects.has(m.type) ? [] : dumpMap(m) }));
  // Rewind first: its runs also tell which runs depended on time, random numbers or the CPU.
  const outcomes: RunOutcome[] = p.runs.map((r) => p.session.run(p.program.name, r.input));

  const fs = Bpffs.open();
  const work = mkdtempSync(join(tmpdir(), 'rewind-kdiff-'));
  const diffs: Difference[] = [];
  const skipped: { run: number; helpers: string[] }[] = [];
  try {
    let objPath = args.program;
    if (p.source.kind !== 'object') {
      objPath = join(work, 'prog.o');
      writeFileSync(objPath, writeBpfObject(p.program.code, { section: type === 'tc' ? 'tc' : type === 'socket' ? 'socket' : 'xdp', name: p.program.name }));
    }
    const progDir = fs.subdir('progs');
    const mapsDir = fs.subdir('maps');
    try {
      runTool(findTool('bpftool') ?? 'bpftool', ['prog', 'loadall', objPath, progDir, 'type', type === 'socket' ? 'socket' : type, 'pinmaps', mapsDir], `bpftool prog loadall ${objPath}`);
    } catch (e) {
      if (e instanceof KernelError) throw new KernelError(`the kernel rejected ${args.program}: ${e.message}`, e.log);
      throw e;
    }
    const pinned = readdirSync(mapsDir);
    const pinOf = (m: BpfMap) => {
      // libbpf pins global data as `<object prefix>.rodata`; other maps by their name.
      const name = m.name.startsWith('.') ? pinned.find((f) => f.endsWith(m.name)) : pinned.find((f) => f === m.name);
      return name ? join(mapsDir, name) : undefined;
    };
    const pin = join(progDir, p.program.name);
    for (const { m, entries } of initial) {
      const at = pinOf(m);
      if (!at) continue;
      {
        for (const e of entries) {
          const value = Array.isArray(e.value) ? e.value.map((v) => v.padEnd(roundUp8(m.valueSize) * 2, '0')).join('') : e.value;
          updateMap(at, Buffer.from(e.key, 'hex'), Buffer.from(value, 'hex'));
        }
      }
    }
    p.runs.forEach((r, i) => {
      const k = runProgram(pin, r.input.packet!, { repeat: 1, ctxIn: r.input.ctxBytes, cpu: p.session.cpu });
      const o = outcomes[i]!;
      if (o.nondeterministic?.length) {
        skipped.push({ run: i, helpers: o.nondeterministic });
        return;
      }
      if (o.fault) diffs.push({ run: i, what: `Rewind faulted (${o.fault.message}); the kernel returned ${k.retval}` });
      else if (k.retval !== o.retval) diffs.push({ run: i, what: `verdict: kernel ${verdictName(type, type === 'tc' ? k.retval | 0 : k.retval)}, Rewind ${o.verdict}` });
      const rp = o.packet ? toHex(o.packet) : '';
      const kp = toHex(k.dataOut);
      if (!o.fault && rp !== kp) diffs.push({ run: i, what: `packet: kernel ${kp}, Rewind ${rp}` });
    });
    if (skipped.length === 0) {
      for (const m of p.session.maps) {
        const at = pinOf(m);
        if (!at || m.type === 'prog_array' || m.type === 'ringbuf' || m.type === 'perf_event_array') continue;
        const ours = normalize(dumpMap(m), m);
        const theirs = normalize(fromBpftool(kernelDumpMap(at), m), m);
        if (ours !== theirs) diffs.push({ what: `map ${m.name}: kernel ${theirs || '(empty)'}, Rewind ${ours || '(empty)'}` });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    fs.close();
  }
  const lines: string[] = [];
  for (const s of skipped) lines.push(`run ${s.run}: not compared, its result depends on ${s.helpers.join(', ')}`);
  if (skipped.length) lines.push(`maps: not compared, runs depended on ${[...new Set(skipped.flatMap((s) => s.helpers))].join(', ')}`);
  for (const d of diffs) lines.push(`${d.run !== undefined ? `run ${d.run}: ` : ''}${d.what}`);
  const compared = p.runs.length - skipped.length;
  lines.push(diffs.length ? `${diffs.length} difference${diffs.length > 1 ? 's' : ''} in ${compared} compared run${compared === 1 ? '' : 's'}` : `the kernel and Rewind agree on ${compared} of ${p.runs.length} run${p.runs.length === 1 ? '' : 's'}${skipped.length ? ' (the others depend on time, random numbers or the CPU)' : ''}${skipped.length ? '' : ' and on the maps'}`);
  if (args.json) process.stdout.write(JSON.stringify({ agree: diffs.length === 0, compared, runs: p.runs.length, skipped, differences: diffs }, null, 2) + '\n');
  else process.stdout.write(lines.join('\n') + '\n');
  return diffs.length ? 1 : 0;
}

interface BpftoolEntry {
  key: string[];
  value?: string[];
  values?: { cpu: number; value: string[] }[];
}

/** bpftool's JSON dump (hex byte strings) in Rewind's dump shape. */
function fromBpftool(json: unknown, m: BpfMap): MapDumpEntry[] {
  const bytes = (a: string[]) => a.map((x) => x.replace(/^0x/, '').padStart(2, '0')).join('');
  const out: MapDumpEntry[] = [];
  for (const e of (json as BpftoolEntry[]) ?? []) {
    if (!e.key) continue;
    if (e.values) out.push({ key: bytes(e.key), value: e.values.map((v) => bytes(v.value)) });
    else if (e.value) out.push({ key: bytes(e.key), value: bytes(e.value) });
  }
  // bpftool lists every index of an array; Rewind lists the ones that are not all zeros.
  const arrayLike = m.type === 'array' || m.type === 'percpu_array';
  return arrayLike ? out.filter((e) => (Array.isArray(e.value) ? e.value : [e.value]).some((v) => /[^0]/.test(v))) : out;
}

/** A canonical text of a dump: entries sorted by key, per-CPU values summed over the CPUs. */
function normalize(entries: MapDumpEntry[], m: BpfMap): string {
  const word = m.valueSize % 8 === 0 ? 8 : m.valueSize % 4 === 0 ? 4 : 1;
  const sum = (vals: string[]) => {
    const acc = new Array<bigint>(m.valueSize / word).fill(0n);
    for (const v of vals) {
      const b = Buffer.from(v, 'hex');
      for (let i = 0; i < acc.length; i++) {
        const x = word === 8 ? b.readBigUInt64LE(i * 8) : word === 4 ? BigInt(b.readUInt32LE(i * 4)) : BigInt(b[i]!);
        acc[i] = BigInt.asUintN(word * 8, acc[i]! + x);
      }
    }
    return acc.map((x) => x.toString(16)).join(',');
  };
  return entries
    .map((e) => `${e.key}=${Array.isArray(e.value) ? `sum(${sum(e.value)})` : e.value.slice(0, m.valueSize * 2)}`)
    .filter((s) => !/=sum\((0,?)+\)$/.test(s))
    .sort()
    .join(' ');
}
