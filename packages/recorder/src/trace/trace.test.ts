// The reader against an independent execution: the same runs on a session whose compiled code
// logs every register after every instruction (no predictions, no records), compared with the
// state the trace rebuilds at those steps; and at every run's end the stack, the packet, the
// maps and the verdict the session itself reports.

import { afterAll, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assemble, dumpMap, loadPackets, loadProgramFile, parseDataFile, programFromBytecode, Session, type Instrumentation, type MapDef, type Program, type RunInput } from '@rewind/vm';
import { Recorder } from '../recorder.js';
import { Trace } from './trace.js';
import { verifyTrace } from './verify.js';
import { TraceReader } from '../container/reader.js';

const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const ex = (p: string) => join(repo, 'examples', p);
const fixture = (p: string) => join(repo, 'packages/vm/src/runtime/fixtures', p);

/** After every instruction: [step, pc, depth, l0, h0, ..., l9, h9] on vm.snap. */
function snapshots(): Instrumentation {
  const regs = Array.from({ length: 10 }, (_, r) => `l${r}, h${r}`).join(', ');
  const log = (pc: number, step: string) => `SNAP.push([${step}, ${pc}, depth, ${regs}]);`;
  return {
    prologue: () => 'const SNAP = vm.snap;',
    enter: () => '',
    epilogue: () => '',
    afterInsn: (pc, _dst, step) => log(pc, step),
    afterStore: (pc, _size, _region, _at, _vl, _vh, step) => log(pc, step),
    branch: (pc, _taken, step) => log(pc, step),
    beforeCall: () => '',
  };
}

interface Case {
  name: string;
  programs: Program[];
  maps: MapDef[];
  entry: string;
  inputs: RunInput[];
  fill?: (s: Session) => void;
}

function fillFromJson(file: string): (s: Session) => void {
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { key: string; value: string }[]>;
  return (s) => {
    for (const [name, entries] of Object.entries(json)) {
      const map = s.maps.find((m) => m.name === name)!;
      for (const e of entries) map.update(Buffer.from(e.key, 'hex'), Buffer.from(e.value, 'hex'), 0);
    }
  };
}

function objectCase(name: string, obj: string, pcap: string, opts: { section?: string; maps?: string; limit?: number } = {}): Case | undefined {
  if (!existsSync(obj) || !existsSync(pcap)) return undefined;
  const src = loadProgramFile(obj);
  const entry = opts.section ? src.programs.find((p) => p.name === opts.section)!.name : src.programs[0]!.name;
  const packets = loadPackets({ pcap })!.packets.slice(0, opts.limit ?? 1000);
  return {
    name,
    programs: src.programs,
    maps: src.maps,
    entry,
    inputs: packets.map((p) => ({ packet: p.data, timeNs: p.timestampNs ?? 0n })),
    fill: opts.maps ? fillFromJson(opts.maps) : undefined,
  };
}

const xdp = (name: string, text: string): Program => ({ ...programFromBytecode(assemble(text), name), type: 'xdp' });

const cases: Case[] = [
  objectCase('xdp-firewall', ex('xdp-firewall/xdp-firewall.o'), ex('pcaps/mixed.pcap'), { maps: ex('xdp-firewall/maps.json') }),
  objectCase('l4-lb', ex('l4-lb/l4-lb.o'), ex('pcaps/lb.pcap'), { maps: ex('l4-lb/maps.json') }),
  objectCase('pkt-parser', ex('pkt-parser/pkt-parser.o'), ex('pcaps/parser.pcap')),
  objectCase('tc-ratelimit', ex('tc-ratelimit/tc-ratelimit.o'), ex('pcaps/mixed.pcap')),
  objectCase('tail-pipeline', ex('tail-pipeline/tail-pipeline.o'), ex('pcaps/mixed.pcap'), { section: 'xdp_entry' }),
  objectCase('ringbuf-events', ex('ringbuf-events/ringbuf-events.o'), ex('pcaps/events.pcapng')),
].filter((c): c is Case => c !== undefined);

// bpf_loop and bpf_for_each_map_elem callbacks, nested (the VM's own fixtures).
if (existsSync(fixture('nested.o'))) {
  const src = loadProgramFile(fixture('nested.o'));
  cases.push({ name: 'callbacks (nested.o)', programs: src.programs, maps: src.maps, entry: 'xdp_nested', inputs: [{ packet: new Uint8Array(60) }, { packet: new Uint8Array(60) }] });
}
// A loop longer than a chunk, with stores whose address moves, and a bpf-to-bpf call in it.
cases.push({
  name: 'a long loop across chunks',
  programs: [
    xdp(
      'loop',
      `ldxw %r8, [%r1+0]
ldxw %r9, [%r1+4]
mov %r2, %r8
add %r2, 64
jgt %r2, %r9, out
mov %r6, 0
mov %r7, 0
loop:
mov %r1, %r6
call local sub
add %r7, %r0
mov %r2, %r6
and %r2, 7
lsh %r2, 3
mov %r3, %r8
add %r3, %r2
stxdw [%r3], %r7
stxdw [%r10-16], %r6
add %r6, 1
jlt %r6, 40000, loop
mov %r0, %r7
exit
out:
mov %r0, 1
exit
sub:
mov %r0, %r1
mul %r0, 3
stxdw [%r10-8], %r0
ldxdw %r0, [%r10-8]
exit`,
    ),
  ],
  maps: [],
  entry: 'loop',
  inputs: [{ packet: new Uint8Array(64) }],
});

// The four bench programs of ../shared/bench, their loop counts shortened (the loop body is what matters).
const benchDir = fileURLToPath(new URL('../../../../../shared/bench/', import.meta.url));
if (!existsSync(benchDir)) console.log(`bench programs skipped in the trace tests: ${benchDir} is not present`);
else {
  for (const name of ['alu-loop', 'mem-loop', 'fnv-hash', 'call-loop']) {
    const file = join(benchDir, `${name}.data`);
    if (!existsSync(file)) continue;
    const t = parseDataFile(readFileSync(file, 'utf8'), { file });
    const code = t.code!;
    for (let pc = 0; pc < code.length; pc++) {
      if (code.op[pc] === 0xb7 && code.imm[pc]! >= 100_000) {
        code.imm[pc] = 20_000;
        break;
      }
    }
    cases.push({ name: `bench ${name} (20,000 iterations)`, programs: [{ ...programFromBytecode(code, name), type: 'raw' }], maps: [], entry: name, inputs: [{ mem: t.mem ?? new Uint8Array(0) }] });
  }
}

// A basic block longer than a chunk: the chunk grows to hold it.
cases.push({
  name: 'a basic block longer than a chunk',
  programs: [{ ...programFromBytecode(assemble(`${'add %r0, 3\nstxdw [%r10-8], %r0\n'.repeat(36_000)}exit`), 'long'), type: 'raw' }],
  maps: [],
  entry: 'long',
  inputs: [{ mem: new Uint8Array(8) }],
});

const dir = mkdtempSync(join(tmpdir(), 'rewind-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(cases)('$name: the trace agrees with an independent execution', (c) => {
  const path = join(dir, `${c.name.replace(/\W+/g, '-')}.rwt`);
  const rec = Recorder.create(path, { programs: c.programs, maps: c.maps });
  c.fill?.(rec.session);
  const outcomes = c.inputs.map((input) => rec.run(c.entry, input));
  rec.close();

  const plain = new Session(c.programs, c.maps, { instrument: snapshots() });
  c.fill?.(plain);
  const snap: number[][] = [];
  (plain.machine as unknown as { snap: number[][] }).snap = snap;
  const perRun = c.inputs.map((input) => {
    snap.length = 0;
    const out = plain.run(c.entry, input);
    return {
      out,
      snaps: snap.slice(),
      stack: plain.machine.mem.u8.slice(0, 512),
      maps: Object.fromEntries(plain.maps.map((m) => [m.name, dumpMap(m).sort((a, b) => (a.key < b.key ? -1 : 1))])),
    };
  });
  const trace = Trace.open(path);
  afterAll(() => trace.close());

  test('runs, step ranges and verdicts', () => {
    expect(trace.runs.length).toBe(c.inputs.length);
    let first = 0;
    trace.runs.forEach((r, k) => {
      expect(r.firstStep).toBe(first);
      expect(r.lastStep - r.firstStep).toBe(perRun[k]!.out.steps);
      expect(r.verdict).toBe(perRun[k]!.out.verdict);
      expect(r.r0).toBe(outcomes[k]!.r0);
      first = r.lastStep + 1;
    });
    expect(trace.lastStep).toBe(first - 1);
  });

  test('registers at every logged step (sampled in long runs), pc and depth', () => {
    let compared = 0;
    trace.runs.forEach((r, k) => {
      const snaps = perRun[k]!.snaps;
      const every = Math.max(1, Math.floor(snaps.length / 300));
      for (let i = 0; i < snaps.length; i += every) {
        const e = snaps[i]!;
        const step = r.firstStep + e[0]!;
        const pc = e[1]!;
        const prog = c.programs.find((p) => p.name === trace.position(Math.max(r.firstStep, step - 1)).program)!;
        const op = prog.code.op[pc]!;
        // A bpf-to-bpf call logs before it runs; a callback helper's call logs when its callbacks are done.
        if (op === 0x85 && (prog.code.src[pc] === 1 || [164, 181].includes(prog.code.imm[pc]!))) continue;
        // An exit from a called function logs before it returns.
        if (op === 0x95 && e[2]! > 0) continue;
        const st = trace.state(step);
        for (let reg = 0; reg < 10; reg++) {
          const want = (BigInt(e[4 + 2 * reg]! >>> 0) << 32n) | BigInt(e[3 + 2 * reg]! >>> 0);
          if (st.regs[reg] !== want) throw new Error(`step ${step} (run ${k}, pc ${pc}): r${reg} is 0x${st.regs[reg]!.toString(16)} in the trace, 0x${want.toString(16)} executed`);
        }
        expect(Number(st.regs[10]! >> 32n)).toBe(0x1000 + e[2]!);
        // The state after step N is at the instruction step N + 1 executes.
        const pos = trace.position(step - 1);
        expect(pos.pc).toBe(pc);
        compared++;
      }
    });
    expect(compared).toBeGreaterThan(0);
  });

  test('re-executing the trace (rewind verify) agrees at every step', () => {
    const v = verifyTrace(path);
    expect(v.difference).toBeUndefined();
    expect(v.runs).toBe(c.inputs.length);
  });

  test('stepping backward through a chunk gives the states a fresh reader gives', () => {
    const fresh = (n: number) => {
      const t = Trace.open(path);
      const out = JSON.stringify({ ...t.snapshot(n), frames: t.state(n).frames.map((f) => Buffer.from(f.bytes).toString('hex')), packet: t.state(n).packet });
      t.close();
      return out;
    };
    const last = trace.lastStep;
    const steps = [last, last - 1, Math.floor(last * 0.9), Math.floor(last * 0.9) - 1, Math.floor(last / 2), 9000, 8999, 4097, 4096, 4095, 1, 0].filter((n) => n >= 0 && n <= last);
    for (const n of steps) {
      const st = trace.state(n);
      expect(JSON.stringify({ ...trace.snapshot(n), frames: st.frames.map((f) => Buffer.from(f.bytes).toString('hex')), packet: st.packet }), `step ${n}`).toBe(fresh(n));
    }
  });

  test("chunk headers' write summaries cover every register and region the chunk's steps wrote", () => {
    const reader = TraceReader.open(path);
    const headers = reader.frames.filter((f) => f.kind === 'chunk').map((f) => f.header as Record<string, unknown>);
    reader.close();
    let k = 0;
    trace.runs.forEach((r) => {
      for (let i = 0; i < trace.chunkCount(r.index); i++) {
        const h = headers[k++]!;
        const { steps } = trace.decodedChunk(r.index, i);
        expect((steps.regMask & ~(h.regs as number)) >>> 0, `registers outside the summary of chunk ${k}`).toBe(0);
        if (!h.stores) {
          // Without stores through pointers, every write is an out-of-line one or a frame byte the stack map names.
          const stack = h.stack as Uint8Array | null;
          for (let j = 1; j <= steps.count; j++) {
            for (let w = steps.memStart[j]!; w < steps.memStart[j + 1]!; w++) {
              const region = steps.memRegion[w]!;
              if ((h.written as number[]).includes(region)) continue;
              expect(region, `a write to region ${region} the summary of chunk ${k} does not name`).toBeLessThan(8);
              for (let b = steps.memOff[w]!; b < steps.memOff[w]! + steps.memLen[w]!; b++) expect(stack && stack[b >> 3]! & (1 << (b & 7))).toBeTruthy();
            }
          }
        }
      }
    });
    expect(k).toBe(headers.length);
  });

  test("every run's last step: stack, packet and maps as the session left them", () => {
    trace.runs.forEach((r, k) => {
      const st = trace.state(r.lastStep);
      const want = perRun[k]!;
      expect(st.atEnd).toBe(true);
      expect(Buffer.from(st.frames[0]!.bytes).toString('hex')).toBe(Buffer.from(want.stack).toString('hex'));
      if (want.out.packet) expect(Buffer.from(st.packet!.bytes).toString('hex')).toBe(Buffer.from(outcomes[k]!.packet!).toString('hex'));
      for (const [name, entries] of Object.entries(want.maps)) {
        if (['ringbuf', 'perf_event_array'].includes(name)) continue;
        expect({ name, entries: st.maps[name] }).toEqual({ name, entries });
      }
    });
  });
});

test('an instruction that writes a register the value it already had is still its last write', () => {
  // r0 is 0, then bpf_get_smp_processor_id() returns 0 (CPU 0), then r1 = r1 (same value).
  const prog: Program = { ...programFromBytecode(assemble('mov %r0, 0\ncall 8\nmov %r1, %r1\nmov %r2, 5\nexit'), 'same'), type: 'raw' };
  const path = join(dir, 'same.rwt');
  const rec = Recorder.create(path, { programs: [prog], maps: [] });
  rec.run('same', { mem: new Uint8Array(8) });
  rec.close();
  const t = Trace.open(path);
  expect(t.state(2).changed).toContain(0);
  expect(t.prevWrite({ kind: 'reg', reg: 0 }, 4)).toBe(2);
  expect(t.origin({ kind: 'reg', reg: 0 }, 4)?.helper).toBe('bpf_get_smp_processor_id');
  expect(t.prevWrite({ kind: 'reg', reg: 1 }, 4)).toBe(3);
  expect(t.nextWrite({ kind: 'reg', reg: 0 }, 0)).toBe(1);
  expect(t.nextWrite({ kind: 'reg', reg: 2 }, 0)).toBe(4);
  t.close();
});
