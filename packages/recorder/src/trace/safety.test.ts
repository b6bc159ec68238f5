// Failure safety of recordings: a recorder killed at any moment leaves a trace whose complete
// chunks all replay; damaged bytes give a clear error naming the chunk, never a different state;
// runs that fault or run out of budget are recorded up to the fault; random and mutated files
// never crash or hang the reader.

import { afterAll, describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assemble, programFromBytecode, type Program } from '@rewind/vm';
import { Recorder } from '../recorder.js';
import { TraceWriter } from '../container/writer.js';
import { TraceReader } from '../container/reader.js';
import { TraceError } from '../container/errors.js';
import { packPlainMap } from '../container/plain.js';
import { Trace } from './trace.js';
import { verifyTrace } from './verify.js';

const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const cli = join(repo, 'packages/tui/bin/rewind.js');
const built = existsSync(join(repo, 'packages/tui/dist/cli.js')) && existsSync(join(repo, 'packages/recorder/dist/index.js'));
if (!built) console.log('recording kill test skipped: the packages are not built (run `pnpm build` or the test command, which builds first)');

const dir = mkdtempSync(join(tmpdir(), 'rewind-safety-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A loop of 4n+3 steps with a store whose address moves and a value that depends on every step. */
const LOOP = (n: number) => `mov %r0, 0
mov %r1, ${n}
loop:
add %r0, %r1
stxdw [%r10-8], %r0
add %r1, -1
jne %r1, 0, loop
exit`;

/** Every complete chunk of a trace replays: the state at each chunk boundary and at each run's last step. */
function replayAll(t: Trace): number {
  let states = 0;
  for (const r of t.runs) {
    for (let i = 0; i < t.chunkCount(r.index); i++) {
      const { first, steps } = t.decodedChunk(r.index, i);
      const st = t.state(first + steps.count);
      expect(st.run).toBe(r.index);
      states++;
    }
  }
  return states;
}

describe.skipIf(!built)('a recorder killed at random moments', () => {
  const data = join(dir, 'long.data');
  writeFileSync(data, `-- asm\n${LOOP(500_000)}\n`);

  test('leaves a trace that reads as truncated, whose complete chunks all replay and verify', async () => {
    const rand = prng(7);
    let truncated = 0;
    for (let k = 0; k < 4; k++) {
      const out = join(dir, `killed-${k}.rwt`);
      const child = spawn(process.execPath, [cli, 'record', data, '--repeat', '4', '-o', out], { stdio: 'ignore' });
      // Listen for the exit now: the recording may finish before the kill.
      const exited = new Promise((r) => child.on('exit', r));
      // Kill once the file exists and has grown a little, at a random moment after that.
      const deadline = Date.now() + 20_000;
      while (!(existsSync(out) && statSync(out).size > 2000) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 400)));
      child.kill('SIGKILL');
      await exited;
      let t: Trace;
      try {
        t = Trace.open(out);
      } catch (e) {
        // Killed before a first chunk: nothing to replay, and the error says so.
        expect(e).toBeInstanceOf(TraceError);
        expect((e as Error).message).toMatch(/nothing to replay/);
        continue;
      }
      if (t.truncated) truncated++;
      expect(replayAll(t)).toBeGreaterThan(0);
      const v = verifyTrace(out);
      expect(v.difference).toBeUndefined();
      expect(v.truncated).toBe(t.truncated);
      expect(v.runs).toBe(t.runs.filter((r) => r.verdict !== 'truncated').length);
      t.close();
    }
    expect(truncated).toBeGreaterThan(0);
  }, 240_000);
});

describe('damage', () => {
  const prog: Program = { ...programFromBytecode(assemble(LOOP(40_000)), 'loop'), type: 'raw' };
  const path = join(dir, 'clean.rwt');
  const rec = Recorder.create(path, { programs: [prog], maps: [] });
  rec.run('loop', { mem: new Uint8Array(8) });
  rec.run('loop', { mem: new Uint8Array(8) });
  rec.close();
  const clean = readFileSync(path);
  const original = Trace.open(path);
  const probes = [0, 1, 100, 65_536, 70_000, original.runs[0]!.lastStep, original.runs[1]!.firstStep + 5, original.lastStep];
  const want = probes.map((s) => JSON.stringify(original.snapshot(s)));
  original.close();

  test('a flipped byte anywhere gives a TraceError naming where, or (outside every frame) the same states', () => {
    const rand = prng(11);
    let errors = 0;
    for (let i = 0; i < 150; i++) {
      const bytes = Buffer.from(clean);
      const at = Math.floor(rand() * bytes.length);
      bytes[at] ^= 1 + Math.floor(rand() * 255);
      const file = join(dir, `flip-${i}.rwt`);
      writeFileSync(file, bytes);
      try {
        const t = Trace.open(file);
        const got = probes.map((s) => JSON.stringify(t.snapshot(s)));
        t.close();
        expect(got).toEqual(want);
      } catch (e) {
        if (!(e instanceof TraceError)) throw new Error(`byte ${at}: ${(e as Error).stack}`);
        expect((e as Error).message.split('\n').length).toBe(1);
        expect((e as Error).message).toContain(file);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
  });

  test('damage inside a chunk is reported against that chunk when its steps are read', () => {
    const r = TraceReader.open(path);
    const chunk = r.frames.find((f) => f.kind === 'chunk' && (f.header as { firstStep: number }).firstStep > 0)!;
    r.close();
    const bytes = Buffer.from(clean);
    bytes[chunk.offset + Math.floor(chunk.length / 2)] ^= 0x40;
    const file = join(dir, 'chunk-damage.rwt');
    writeFileSync(file, bytes);
    const t = Trace.open(file);
    const first = (chunk.header as { firstStep: number }).firstStep;
    expect(() => t.state(first + 3)).toThrow(new RegExp(`frame ${chunk.number} \\(chunk, run=0, firstStep=${first}, .*checksum mismatch`));
    // The chunks before it still read.
    expect(t.state(5).step).toBe(5);
    t.close();
  });

  test('records that do not fit the program are damage, named by chunk, not a wrong state', () => {
    const file = join(dir, 'forged.rwt');
    const w = TraceWriter.create(file, { meta: { programs: [{ name: 'loop', type: 'raw', bytecode: Buffer.from(encodeProgram(prog)), funcs: [{ name: 'loop', start: 0, end: prog.code.length }], lines: [] }], maps: [], regions: [] } });
    w.append('run', { run: 0, program: 'loop', firstStep: 0 }, packPlainMap({ between: [], regions: [] }, 'run'));
    const regs = Array.from({ length: 11 }, () => new Uint8Array(8));
    // A record for step 2 that says a jump flipped: step 2 is `mov %r1, n`, which cannot.
    w.append('chunk', { run: 0, firstStep: 0, lastStep: 10 }, packPlainMap({ records: Uint8Array.of(0x02, 0x80), events: [], program: 'loop', pc: 0, key: { program: 'loop', pc: 0, regs, mem: [] } }, 'chunk'));
    w.close({ runs: [], totalSteps: 11 });
    const t = Trace.open(file);
    expect(() => t.state(10)).toThrow(/frame 2 \(chunk, first=0, last=10\): .*(not used|do not fit|cannot record)/);
    t.close();
  });
});

function encodeProgram(p: Program): Uint8Array {
  const out = new Uint8Array(p.code.length * 8);
  const dv = new DataView(out.buffer);
  for (let pc = 0; pc < p.code.length; pc++) {
    dv.setUint8(pc * 8, p.code.op[pc]!);
    dv.setUint8(pc * 8 + 1, (p.code.dst[pc]! & 0xf) | ((p.code.src[pc]! & 0xf) << 4));
    dv.setInt16(pc * 8 + 2, p.code.off[pc]!, true);
    dv.setInt32(pc * 8 + 4, p.code.imm[pc]!, true);
  }
  return out;
}

describe('runs that fault or run out of budget', () => {
  test('are recorded up to the fault: the last step is the state the fault happened in', () => {
    const faulting: Program = { ...programFromBytecode(assemble('mov %r0, 7\nmov %r2, 3\nldxdw %r1, [%r2+0]\nexit'), 'bad'), type: 'raw' };
    const path = join(dir, 'fault.rwt');
    const rec = Recorder.create(path, { programs: [faulting], maps: [] });
    const out = rec.run('bad', { mem: new Uint8Array(8) });
    rec.close();
    expect(out.fault).toBeDefined();
    const t = Trace.open(path);
    const run = t.runs[0]!;
    // Two instructions executed; the third faulted and did not.
    expect(run.lastStep).toBe(2);
    expect(run.fault?.message).toBe(out.fault!.message);
    const st = t.state(2);
    expect(st.atEnd).toBe(true);
    expect(st.pc).toBe(2);
    expect(st.fault?.pc).toBe(2);
    expect(st.regs[0]).toBe(7n);
    expect(st.regs[2]).toBe(3n);
    expect(st.events.at(-1)).toMatchObject({ kind: 'fault' });
    t.close();
    expect(verifyTrace(path).difference).toBeUndefined();
  });

  test('a run that exhausts its budget ends at the last instruction it was allowed', () => {
    const prog: Program = { ...programFromBytecode(assemble(LOOP(1_000_000)), 'loop'), type: 'raw' };
    const path = join(dir, 'budget.rwt');
    const rec = Recorder.create(path, { programs: [prog], maps: [], sessionOptions: { maxSteps: 100_000 } });
    const out = rec.run('loop', { mem: new Uint8Array(8) });
    rec.close();
    expect(out.fault?.kind).toBe('budget');
    const t = Trace.open(path);
    expect(t.runs[0]!.lastStep).toBe(out.steps);
    expect(t.runs[0]!.lastStep).toBeLessThanOrEqual(100_000);
    expect(t.state(t.lastStep).fault?.message).toMatch(/budget|instructions/);
    t.close();
    expect(verifyTrace(path).difference).toBeUndefined();
  });
});

describe('fuzzing the trace reader', () => {
  const prog: Program = { ...programFromBytecode(assemble(LOOP(2_000)), 'loop'), type: 'raw' };
  const path = join(dir, 'fuzz-base.rwt');
  const rec = Recorder.create(path, { programs: [prog], maps: [] });
  for (let k = 0; k < 3; k++) rec.run('loop', { mem: new Uint8Array(8) });
  rec.close();
  const base = readFileSync(path);

  test('random files and random mutations and cuts of a trace: a Trace or a TraceError, quickly', () => {
    const rand = prng(3);
    let slowest = 0;
    for (let i = 0; i < 400; i++) {
      let bytes: Buffer;
      const mode = i % 4;
      if (mode === 0) bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 2000) }, () => Math.floor(rand() * 256)));
      else if (mode === 1) bytes = base.subarray(0, Math.floor(rand() * base.length));
      else {
        bytes = Buffer.from(base);
        for (let m = 0; m < 1 + Math.floor(rand() * 8); m++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      }
      const file = join(dir, `fuzz-${i}.rwt`);
      writeFileSync(file, bytes);
      const t0 = performance.now();
      try {
        const t = Trace.open(file);
        for (const s of [0, Math.floor(t.lastStep / 2), t.lastStep]) t.state(s);
        t.close();
      } catch (e) {
        if (!(e instanceof TraceError)) throw new Error(`case ${i} (mode ${mode}): ${(e as Error).stack}`);
        expect((e as Error).message.includes('\n')).toBe(false);
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    console.log(`trace reader fuzz: slowest case ${slowest.toFixed(1)} ms`);
    expect(slowest).toBeLessThan(5000);
  });
});
