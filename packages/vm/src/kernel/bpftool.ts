// The Linux kernel as an oracle, through bpftool: load an object, test-run a program on a packet
// (BPF_PROG_TEST_RUN, never attached to an interface), read and write pinned maps. Used by tests
// and by `rewind kernel-diff`.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromInsns, BPF_ALU64, BPF_EXIT, BPF_JMP, BPF_K, BPF_MOV } from '../isa.js';
import { Bpffs } from './bpffs.js';
import { findTool, KernelError, runTool } from './exec.js';
import { writeBpfObject } from './object.js';

export { KernelError } from './exec.js';

/** Program types bpftool's `type` argument takes here, by their libbpf section names. */
export type KernelProgType = 'xdp' | 'tc' | 'socket';

export type KernelStatus = { ok: true } | { ok: false; reason: string };

let status: KernelStatus | undefined;

/**
 * Whether the kernel can be used as an oracle: running as root, bpftool installed, and the bpf()
 * syscall loads and runs a trivial XDP program. Checked once per process.
 */
export function kernelAvailable(): KernelStatus {
  status ??= probe();
  return status;
}

function probe(): KernelStatus {
  if (process.platform !== 'linux') return { ok: false, reason: `the kernel oracle needs Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'loading BPF programs needs root' };
  if (!findTool('bpftool')) return { ok: false, reason: 'bpftool is not installed (apt install bpftool)' };
  let fs: Bpffs | undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'rewind-probe-'));
  try {
    fs = Bpffs.open();
    // r0 = 2 (XDP_PASS); exit
    const code = fromInsns([
      { op: BPF_ALU64 | BPF_MOV | BPF_K, dst: 0, src: 0, off: 0, imm: 2 },
      { op: BPF_JMP | BPF_EXIT, dst: 0, src: 0, off: 0, imm: 0 },
    ]);
    const obj = join(scratch, 'probe.o');
    writeFileSync(obj, writeBpfObject(code, { name: 'rewind_probe' }));
    const prog = loadObject(obj, 'xdp', fs.subdir('probe'));
    const run = runProgram(prog.pin, new Uint8Array(64));
    if (run.retval !== 2) return { ok: false, reason: `a trivial program returned ${run.retval} instead of 2` };
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  } finally {
    try {
      fs?.close();
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
}

function bpftool(args: readonly string[], what: string): string {
  const tool = findTool('bpftool');
  if (!tool) throw new KernelError(`${what}: bpftool is not installed`);
  return runTool(tool, args, what);
}

/** Verifier log lines that are not the reason: statistics, state dumps, the instruction trace. */
const LOG_NOISE = /^(processed \d+ insns|verification time|stack depth|func#\d|cur state:|old state:|\d+: |; |from \d+ to \d+:|mark_precise|last_idx|regs=|Live regs|Validating)/;

/**
 * The verifier's reason for rejecting a program: the last line of the load log before the
 * statistics (`div by zero`, `unreachable insn 2`, `R0 !read_ok`), else the first error line.
 */
export function verifierReason(log: string): string {
  const lines = log.split('\n').map((l) => l.trim());
  const begin = lines.findIndex((l) => l.includes('-- BEGIN PROG LOAD LOG --'));
  const end = lines.findIndex((l, i) => i > begin && l.includes('-- END PROG LOAD LOG --'));
  if (begin >= 0 && end > begin) {
    const body = lines.slice(begin + 1, end).filter((l) => l !== '' && !LOG_NOISE.test(l));
    if (body.length) return body[body.length - 1]!;
  }
  return lines.find((l) => /^(libbpf: .*(failed|error)|Error:)/i.test(l)) ?? lines.find((l) => l !== '') ?? 'unknown error';
}

export interface PinnedProgram {
  /** bpffs path of the program. */
  pin: string;
  /** bpffs directory its maps are pinned in, by name. */
  mapsDir: string;
}

/**
 * Loads the first program of an object (`bpftool prog load OBJ PIN type T pinmaps DIR`) and pins
 * it as `<pinDir>/prog`, its maps under `<pinDir>/maps/`. A verifier rejection throws a KernelError
 * whose message carries the verifier's reason and whose `log` is the whole load log.
 */
export function loadObject(objPath: string, type: KernelProgType, pinDir: string): PinnedProgram {
  const pin = join(pinDir, 'prog');
  const mapsDir = join(pinDir, 'maps');
  try {
    bpftool(['prog', 'load', objPath, pin, 'type', type, 'pinmaps', mapsDir], `bpftool prog load ${objPath}`);
  } catch (e) {
    if (e instanceof KernelError) throw new KernelError(`the kernel rejected ${objPath}: ${verifierReason(e.log)}`, e.log);
    throw e;
  }
  return { pin, mapsDir };
}

export interface KernelRun {
  /** The program's return value (XDP action, TC verdict, ...), as the kernel's u32. */
  retval: number;
  /** The packet after the run. */
  dataOut: Uint8Array;
  /** Average nanoseconds per repetition, as the kernel measured it. */
  durationNs: number;
}

export interface RunProgramOptions {
  /** BPF_PROG_TEST_RUN repetitions; for XDP each repetition sees the packet the previous one left. */
  repeat?: number;
  /** The context to pass (struct xdp_md, struct __sk_buff), as bytes. */
  ctxIn?: Uint8Array;
  /** Run on this CPU (bpftool started under `taskset -c`). */
  cpu?: number;
}

/** Test-runs a pinned program on a packet (`bpftool prog run pinned PIN data_in F data_out G ...`). */
export function runProgram(pin: string, dataIn: Uint8Array, opts: RunProgramOptions = {}): KernelRun {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bpftool-run-'));
  try {
    const inFile = join(dir, 'data_in');
    const outFile = join(dir, 'data_out');
    writeFileSync(inFile, dataIn);
    const args = ['-j', 'prog', 'run', 'pinned', pin, 'data_in', inFile, 'data_out', outFile];
    // Room for programs that grow the packet (bpf_xdp_adjust_tail, bpf_skb_change_tail).
    args.push('data_size_out', String(Math.max(dataIn.length + 4096, 65536)));
    if (opts.ctxIn) {
      const ctxFile = join(dir, 'ctx_in');
      writeFileSync(ctxFile, opts.ctxIn);
      args.push('ctx_in', ctxFile);
    }
    args.push('repeat', String(opts.repeat ?? 1));
    // BPF_PROG_TEST_RUN runs on the caller's CPU: pinning bpftool to one CPU puts every run's
    // per-CPU map updates in that CPU's slot, as a Rewind session running on one CPU does.
    const what = `bpftool prog run pinned ${pin}`;
    const taskset = opts.cpu === undefined ? undefined : findTool('taskset');
    let out: string;
    if (opts.cpu !== undefined && taskset) {
      const tool = findTool('bpftool');
      if (!tool) throw new KernelError(`${what}: bpftool is not installed`);
      out = runTool(taskset, ['-c', String(opts.cpu), tool, ...args], what);
    } else out = bpftool(args, what);
    const { retval, durationNs } = parseRunOutput(out);
    return { retval, durationNs, dataOut: new Uint8Array(readFileSync(outFile)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads bpftool's report of a test run: JSON (`{"retval":2,"duration":35}`) or text
 * (`Return value: 2, duration (average): 35ns`, `duration: 35ns` for one repetition).
 */
export function parseRunOutput(text: string): { retval: number; durationNs: number } {
  const t = text.trim();
  if (t.startsWith('{')) {
    const j = JSON.parse(t) as { retval?: unknown; duration?: unknown };
    if (typeof j.retval === 'number' && typeof j.duration === 'number') return { retval: j.retval, durationNs: j.duration };
  }
  const m = /Return value: (\d+), duration(?: \(average\))?: (\d+)ns/.exec(t);
  if (!m) throw new KernelError(`cannot read bpftool's test-run output: '${t.split('\n')[0]}'`, text);
  return { retval: Number(m[1]), durationNs: Number(m[2]) };
}

/** A pinned map's contents as bpftool prints them (`bpftool -j map dump pinned PATH`). */
export function dumpMap(pinnedMap: string): unknown {
  const out = bpftool(['-j', 'map', 'dump', 'pinned', pinnedMap], `bpftool map dump pinned ${pinnedMap}`);
  try {
    return JSON.parse(out);
  } catch {
    throw new KernelError(`bpftool map dump pinned ${pinnedMap}: output is not JSON`, out);
  }
}

/** BPF_ANY, BPF_EXIST, BPF_NOEXIST, by bpftool's names. */
export type UpdateFlag = 'any' | 'exist' | 'noexist';

/** Sets one element of a pinned map (`bpftool map update pinned PATH key hex .. value hex ..`). */
export function updateMap(pinnedMap: string, key: Uint8Array, value: Uint8Array, flag: UpdateFlag = 'any'): void {
  bpftool(['map', 'update', 'pinned', pinnedMap, 'key', 'hex', ...hexBytes(key), 'value', 'hex', ...hexBytes(value), flag], `bpftool map update pinned ${pinnedMap}`);
}

function hexBytes(b: Uint8Array): string[] {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0'));
}

/** Removes a pin (a program or map stays alive only while something else holds it). */
export function unpin(path: string): void {
  rmSync(path, { recursive: true, force: true });
}
