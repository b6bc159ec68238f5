// Test support: a small hand-made TraceView. A tiny interpreter runs one XDP program (a bpf-to-bpf
// call, a map lookup and update through a helper, a packet store) over three packets and keeps
// every step, so the debugger and its panes can be tested without a recorded file.

import { assemble, BPF_ALU64, BPF_B, BPF_CALL, BPF_EXIT, BPF_H, BPF_JMP, BPF_LDX, BPF_MEM, BPF_ST, BPF_STX, BPF_W, cls, formatInsn, LDDW, memSize, toHex, type Bytecode, type MapDef, type RegionKind } from '@rewind/vm';
import type { FrameState, MapsState, Origin, Provenance, StepPosition, StepQuery, StepState, TraceEvent, TraceProgram, TraceRun, TraceView, WriteTarget } from './trace.js';

export const FAKE_SOURCE_FILE = 'fake.c';

/** The program (uBPF assembler syntax); FAKE_LINES says which source line each pc belongs to. */
export const FAKE_ASM = `
mov %r6, %r1
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 24
jgt %r4, %r3, drop
ldxb %r1, [%r2+23]
stb [%r2+0], 0xaa
stxw [%r10-4], %r1
call local count
mov %r0, 2
exit
drop:
mov %r0, 1
exit
count:
stxw [%r10-4], %r1
mov %r2, %r10
add %r2, -4
mov %r1, 0
call 1
jeq %r0, 0, out
ldxdw %r1, [%r0+0]
add %r1, 1
stxdw [%r0+0], %r1
out:
mov %r0, 0
exit
`;

/** Source lines of fake.c and the pcs each one covers. */
export const FAKE_LINES: { line: number; text: string; pcs: number[] }[] = [
  { line: 10, text: 'int xdp_main(struct xdp_md *ctx)', pcs: [0] },
  { line: 12, text: '\tvoid *data = (void *)(long)ctx->data;', pcs: [1] },
  { line: 13, text: '\tvoid *data_end = (void *)(long)ctx->data_end;', pcs: [2] },
  { line: 14, text: '\tif (data + 24 > data_end)', pcs: [3, 4, 5] },
  { line: 16, text: '\t__u32 proto = ((__u8 *)data)[23];', pcs: [6] },
  { line: 17, text: '\t((__u8 *)data)[0] = 0xaa;', pcs: [7, 8] },
  { line: 18, text: '\tcount(proto);', pcs: [9] },
  { line: 19, text: '\treturn XDP_PASS;', pcs: [10, 11] },
  { line: 15, text: '\t\treturn XDP_DROP;', pcs: [12, 13] },
  { line: 3, text: 'static int count(__u32 proto)', pcs: [14] },
  { line: 5, text: '\t__u64 *n = bpf_map_lookup_elem(&counts, &proto);', pcs: [15, 16, 17, 18] },
  { line: 6, text: '\tif (n)', pcs: [19] },
  { line: 7, text: '\t\t*n += 1;', pcs: [20, 21, 22] },
  { line: 8, text: '\treturn 0;', pcs: [23, 24] },
];

export const FAKE_MAP: MapDef = { name: 'counts', type: 1, keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 };

const REGION_HI = 0x1000;
const STACK = 0;
const CTX = 8;
const PKT = 9;
const MAPVAL = 10;
/** Where data is in the packet region (the headroom before it), as in the VM. */
const PKT_ORIGIN = 256;
const REGION_KIND: Record<number, RegionKind> = { [CTX]: 'ctx', [PKT]: 'packet', [MAPVAL]: 'map_value' };

const ptr = (region: number, offset: number): bigint => (BigInt(REGION_HI + region) << 32n) | BigInt(offset >>> 0);
const M64 = (1n << 64n) - 1n;

/** Ethernet + IPv4 with the given protocol, `len` bytes. */
export function fakePacket(proto: number, len = 60): Uint8Array {
  const p = new Uint8Array(Math.max(len, 14));
  p.set([0, 0x5e, 0, 0x53, 1, 2, 0x42, 0xac, 0x11, 0, 2, 3, 0x08, 0x00], 0);
  if (len >= 34) {
    p.set([0x45, 0, 0, len - 14, 0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
    if (len >= 54) p.set([0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x72, 0x10], 34);
  }
  return p.slice(0, len);
}

interface Rec {
  pos: StepPosition;
  regs: bigint[];
  changed: number[];
  /** Bytes of each frame region 0..depth. */
  frames: Uint8Array[];
  frameWritten: number[];
  packet?: Uint8Array;
  packetChanged: number[];
  maps: MapsState;
  events: TraceEvent[];
  /** What the instruction that led here wrote and read. */
  writes: WriteTarget[];
  reads: WriteTarget[];
  helper?: string;
  atEnd: boolean;
}

export interface FakeTraceOptions {
  /** Packets, one run each (default: TCP, UDP, a 10-byte runt). */
  packets?: Uint8Array[];
  path?: string;
}

/** The hand-made trace. Every answer comes from a complete per-step log. */
export class FakeTrace implements TraceView {
  readonly path: string;
  readonly bytes = 4096;
  readonly truncated = false;
  readonly programs: TraceProgram[];
  readonly maps: MapDef[] = [FAKE_MAP];
  readonly runs: TraceRun[] = [];
  readonly code: Bytecode;
  private readonly recs: Rec[] = [];
  /** Calls to state(), for tests that check the debugger only rebuilds the state it shows. */
  stateCalls = 0;

  constructor(opts: FakeTraceOptions = {}) {
    this.path = opts.path ?? '/tmp/fake.rwt';
    this.code = assemble(FAKE_ASM);
    const lines = FAKE_LINES.flatMap((l) => l.pcs.map((pc) => ({ pc, file: FAKE_SOURCE_FILE, line: l.line, col: 0, text: l.text }))).sort((a, b) => a.pc - b.pc);
    this.programs = [{ name: 'xdp_main', type: 'xdp', section: 'xdp', code: this.code, funcs: [{ name: 'xdp_main', start: 0, end: 14 }, { name: 'count', start: 14, end: 25 }], lines }];
    const map = new Map<number, bigint>([[6, 5n]]);
    for (const packet of opts.packets ?? [fakePacket(6), fakePacket(17), fakePacket(6, 10)]) this.record(packet, map);
  }

  get lastStep(): number {
    return this.recs.length - 1;
  }

  private mapsState(map: Map<number, bigint>): MapsState {
    const hex = (v: bigint, n: number) => toHex(new Uint8Array(new BigUint64Array([v]).buffer).subarray(0, n));
    return { counts: [...map].sort((a, b) => a[0] - b[0]).map(([k, v]) => ({ key: hex(BigInt(k), 4), value: hex(v, 8) })) };
  }

  private record(input: Uint8Array, map: Map<number, bigint>): void {
    const code = this.code;
    const run = this.runs.length;
    const firstStep = this.recs.length;
    const regs = new Array<bigint>(11).fill(0n);
    regs[1] = ptr(CTX, 0);
    regs[10] = ptr(STACK, 512);
    const frames = [new Uint8Array(512)];
    const pkt = input.slice();
    const pktChanged = new Set<number>();
    const events: TraceEvent[] = [];
    const callStack: number[] = [];
    let pc = 0;
    let depth = 0;
    let mapValue = 0n;
    const snap = (changed: number[], frameWritten: number[], writes: WriteTarget[], reads: WriteTarget[], atEnd: boolean, packetChanged: number[], helper?: string): void => {
      this.recs.push({
        pos: { step: this.recs.length, run, program: 'xdp_main', pc, depth },
        regs: regs.slice(),
        changed,
        frames: frames.map((f) => f.slice()),
        frameWritten,
        packet: pkt.slice(),
        packetChanged,
        maps: this.mapsState(map),
        events: events.slice(),
        writes,
        reads,
        helper,
        atEnd,
      });
    };
    snap([], [], [], [], false, []);
    const regionOf = (v: bigint) => Number(v >> 32n) - REGION_HI;
    const offOf = (v: bigint) => Number(v & 0xffffffffn);
    for (let guard = 0; guard < 1000; guard++) {
      const op = code.op[pc]!;
      const dst = code.dst[pc]!;
      const src = code.src[pc]!;
      const off = code.off[pc]!;
      const imm = code.imm[pc]!;
      const changed: number[] = [];
      const writes: WriteTarget[] = [];
      const reads: WriteTarget[] = [];
      let frameWritten: number[] = [];
      let packetChanged: number[] = [];
      let helper: string | undefined;
      const setReg = (r: number, v: bigint) => {
        regs[r] = v & M64;
        changed.push(r);
        writes.push({ kind: 'reg', reg: r });
      };
      let next = pc + 1;
      let end = false;
      const c = cls(op);
      const size = memSize(op) === BPF_B ? 1 : memSize(op) === BPF_H ? 2 : memSize(op) === BPF_W ? 4 : 8;
      if (op === LDDW) throw new Error('fake trace: lddw not interpreted');
      if (c === BPF_ALU64) {
        const x = op & 0x08 ? regs[src]! : BigInt(imm);
        if (op & 0x08) reads.push({ kind: 'reg', reg: src });
        const a = op & 0xf0;
        if (a === 0x00) reads.push({ kind: 'reg', reg: dst });
        setReg(dst, a === 0xb0 ? x : regs[dst]! + x);
      } else if (c === BPF_LDX && (op & 0xe0) === BPF_MEM) {
        reads.push({ kind: 'reg', reg: src });
        const a = regs[src]!;
        const r = regionOf(a);
        const o = offOf(a) + off;
        let v = 0n;
        if (r === CTX) v = o === 0 ? ptr(PKT, PKT_ORIGIN) : ptr(PKT, PKT_ORIGIN + pkt.length);
        else if (r === PKT) for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(pkt[o - PKT_ORIGIN + i]!);
        else if (r === MAPVAL) v = mapValue;
        else for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(frames[r]![o + i]!);
        reads.push({ kind: 'mem', region: r, offset: o, size });
        setReg(dst, v);
      } else if (c === BPF_STX || c === BPF_ST) {
        const a = regs[dst]!;
        reads.push({ kind: 'reg', reg: dst });
        if (c === BPF_STX) reads.push({ kind: 'reg', reg: src });
        const v = c === BPF_STX ? regs[src]! : BigInt(imm);
        const r = regionOf(a);
        const o = offOf(a) + off;
        if (r === PKT) {
          for (let i = 0; i < size; i++) pkt[o - PKT_ORIGIN + i] = Number((v >> BigInt(8 * i)) & 0xffn);
          packetChanged = Array.from({ length: size }, (_, i) => o - PKT_ORIGIN + i);
          packetChanged.forEach((b) => pktChanged.add(b));
        } else if (r === MAPVAL) {
          const key = [...map.keys()][0]!;
          const before = map.get(key)!;
          mapValue = v;
          map.set(key, v);
          writes.push({ kind: 'map', map: 'counts', key: new Uint8Array(new Uint32Array([key]).buffer) });
          events.push({ kind: 'map', step: this.recs.length, map: 'counts', op: 'store', key: new Uint8Array(new Uint32Array([key]).buffer), before: new Uint8Array(new BigUint64Array([before]).buffer), after: new Uint8Array(new BigUint64Array([v]).buffer) });
        } else {
          for (let i = 0; i < size; i++) frames[r]![o + i] = Number((v >> BigInt(8 * i)) & 0xffn);
          frameWritten = Array.from({ length: size }, (_, i) => o + i);
        }
        // Memory targets name raw region offsets, as the trace reader does.
        writes.push({ kind: 'mem', region: r, offset: o, size });
      } else if (c === BPF_JMP && (op & 0xf0) === BPF_CALL) {
        if (src === 1) {
          callStack.push(pc + 1);
          depth++;
          frames.push(new Uint8Array(512));
          next = pc + imm + 1;
          regs[10] = ptr(STACK + depth, 512);
        } else {
          helper = 'bpf_map_lookup_elem';
          const k = regs[2]!;
          const fr = frames[regionOf(k)]!;
          const o = offOf(k);
          const key = fr[o]! | (fr[o + 1]! << 8) | (fr[o + 2]! << 16) | (fr[o + 3]! << 24);
          reads.push({ kind: 'reg', reg: 1 }, { kind: 'reg', reg: 2 });
          const hit = map.get(key);
          mapValue = hit ?? 0n;
          const args = [regs[1]!, regs[2]!, regs[3]!, regs[4]!, regs[5]!];
          setReg(0, hit === undefined ? 0n : ptr(MAPVAL, 0));
          for (const r of [1, 2, 3, 4, 5]) {
            regs[r] = 0n;
            changed.push(r);
          }
          events.push({ kind: 'helper', step: this.recs.length, pc, id: 1, name: helper, args, r0: regs[0]! });
          events.push({ kind: 'map', step: this.recs.length, map: 'counts', op: 'lookup', key: new Uint8Array(new Uint32Array([key]).buffer) });
        }
      } else if (c === BPF_JMP && (op & 0xf0) === BPF_EXIT) {
        if (depth === 0) {
          end = true;
          next = pc;
        } else {
          next = callStack.pop()!;
          frames.pop();
          depth--;
          regs[10] = ptr(STACK + depth, 512);
        }
      } else if (c === BPF_JMP) {
        const a = regs[dst]!;
        const b = op & 0x08 ? regs[src]! : BigInt(imm);
        reads.push({ kind: 'reg', reg: dst });
        const j = op & 0xf0;
        const taken = j === 0x20 ? a > b : j === 0x10 ? a === b : false;
        if (taken) next = pc + off + 1;
      } else {
        throw new Error(`fake trace: opcode 0x${op.toString(16)} at pc ${pc} not interpreted`);
      }
      pc = next;
      snap(changed, frameWritten, writes, reads, end, packetChanged, helper);
      if (end) break;
    }
    const lastStep = this.recs.length - 1;
    const r0 = regs[0]!;
    const verdict = r0 === 1n ? 'XDP_DROP' : r0 === 2n ? 'XDP_PASS' : String(r0);
    this.runs.push({ index: run, program: 'xdp_main', firstStep, lastStep, verdict, r0, warnings: [], packet: input, packetOut: pkt.slice(), timeNs: BigInt(run) * 1000n });
  }

  runOf(step: number): TraceRun {
    this.check(step);
    return this.runs[this.recs[step]!.pos.run]!;
  }

  position(step: number): StepPosition {
    this.check(step);
    return this.recs[step]!.pos;
  }

  private check(step: number): void {
    if (!Number.isInteger(step) || step < 0 || step > this.lastStep) throw new RangeError(`step ${step} is outside 0..${this.lastStep}`);
  }

  private prov(v: bigint): Provenance | undefined {
    const hi = Number(v >> 32n);
    const r = hi - REGION_HI;
    if (r < 0 || r > MAPVAL) return undefined;
    const o = Number(v & 0xffffffffn);
    if (r < 8) return { region: r, kind: 'stack', offset: o - 512, text: `${r === 0 ? 'stack' : `stack#${r}`}${o - 512 < 0 ? '' : '+'}${o - 512}` };
    const label = r === CTX ? 'ctx' : r === PKT ? 'pkt' : 'map_value(counts)';
    const d = r === PKT ? o - PKT_ORIGIN : o;
    return { region: r, kind: REGION_KIND[r]!, offset: d, text: `${label}${d < 0 ? '' : '+'}${d}` };
  }

  state(step: number): StepState {
    this.check(step);
    this.stateCalls++;
    const rec = this.recs[step]!;
    const run = this.runs[rec.pos.run]!;
    const code = this.code;
    const prog = this.programs[0]!;
    const line = [...prog.lines].reverse().find((l) => l.pc <= rec.pos.pc);
    const func = prog.funcs.find((f) => rec.pos.pc >= f.start && rec.pos.pc < f.end)!.name;
    const frames: FrameState[] = rec.frames.map((bytes, d) => ({ depth: d, func: d === 0 ? 'xdp_main' : 'count', bytes, written: d === rec.pos.depth ? rec.frameWritten : [] }));
    return {
      step,
      run: rec.pos.run,
      runStep: step - run.firstStep,
      program: 'xdp_main',
      pc: rec.pos.pc,
      insn: formatInsn(code, rec.pos.pc),
      atEnd: rec.atEnd,
      depth: rec.pos.depth,
      func,
      source: line ? { file: line.file, line: line.line, col: line.col, text: line.text } : undefined,
      regs: rec.regs.slice(),
      prov: rec.regs.map((v) => this.prov(v)),
      changed: rec.changed.slice(),
      frames,
      packet: rec.packet ? { bytes: rec.packet, meta: new Uint8Array(0), changed: rec.packetChanged } : undefined,
      maps: rec.maps,
      events: rec.events,
    };
  }

  private writes(step: number, t: WriteTarget): boolean {
    return this.recs[step]!.writes.some((w) => overlaps(w, t));
  }

  prevWrite(target: WriteTarget, step: number): number | undefined {
    for (let s = Math.min(step, this.lastStep); s > 0; s--) if (this.writes(s, target)) return s;
    return undefined;
  }

  nextWrite(target: WriteTarget, step: number): number | undefined {
    for (let s = step + 1; s <= this.lastStep; s++) if (this.writes(s, target)) return s;
    return undefined;
  }

  origin(target: WriteTarget, step: number): Origin | undefined {
    const s = this.prevWrite(target, step);
    if (s === undefined) return undefined;
    const pc = this.recs[s - 1]!.pos.pc;
    return { step: s, pc, insn: formatInsn(this.code, pc), operands: this.recs[s]!.reads.slice(), helper: this.recs[s]!.helper };
  }

  find(query: StepQuery, from: number, direction: 1 | -1): number | undefined {
    for (let s = from + direction; s >= 0 && s <= this.lastStep; s += direction) {
      const r = this.recs[s]!;
      const prev = this.recs[s - 1];
      let hit = false;
      if (query.kind === 'pc') hit = r.pos.pc === query.pc;
      else if (query.kind === 'line') hit = this.programs[0]!.lines.some((l) => l.pc === r.pos.pc && l.line === query.line);
      else if (query.kind === 'helper') hit = r.helper === query.name;
      else if (query.kind === 'map') hit = r.events.length > (prev && prev.pos.run === r.pos.run ? prev.events.length : 0) && r.events.slice(prev && prev.pos.run === r.pos.run ? prev.events.length : 0).some((e) => e.kind === 'map' && e.map === query.map && (query.op === undefined || e.op === query.op));
      else if (query.kind === 'verdict') hit = r.atEnd && this.runs[r.pos.run]!.verdict === query.verdict;
      if (hit) return s;
    }
    return undefined;
  }

  close(): void {}
}

function overlaps(a: WriteTarget, b: WriteTarget): boolean {
  if (a.kind === 'reg' && b.kind === 'reg') return a.reg === b.reg;
  if (a.kind === 'mem' && b.kind === 'mem') return a.region === b.region && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
  if (a.kind === 'map' && b.kind === 'map') return a.map === b.map && toHex(a.key) === toHex(b.key);
  return false;
}
