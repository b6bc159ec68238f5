import { describe, expect, test } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assemble, LoadedProgram, Machine, parseDataFile, programFromBytecode, runOnMemory, RAW_ENTRY_REGS, type Bytecode } from '@rewind/vm';
import { bruteForce, checkWalk, type LogEntry, type TestChunk } from './test-support.js';
import { StepBuffer, stepInstrumentation } from './instrument.js';

/** Records with keyframes every `slice` instructions: predictions start over at each. */
function record(code: Bytecode, mem: Uint8Array, slice = 1000) {
  const m = new Machine();
  const buf = new StepBuffer(code.length);
  (m as unknown as { rec: StepBuffer }).rec = buf;
  const p = new LoadedProgram(programFromBytecode(code), m, { entryRegs: RAW_ENTRY_REGS, instrument: stepInstrumentation() });
  buf.startRun();
  const chunks: TestChunk[] = [];
  let start = { pc: 0, regs: new Int32Array(22), base: 0 };
  let first = true;
  // The registers at the first instruction are what runOnMemory sets: take them when the program is entered.
  const run = p.compiled.run;
  (p.compiled as { run: typeof run }).run = (pc, depth, limit) => {
    if (first) start.regs = Int32Array.from(m.R.subarray(0, 22));
    first = false;
    return run(pc, depth, limit);
  };
  let bytes = 0;
  const cut = (steps: number) => {
    const records = buf.take();
    bytes += records.length;
    chunks.push({ program: 0, pc: start.pc, regs: start.regs, records, events: [], base: start.base, count: steps - start.base });
  };
  const r = runOnMemory(p, mem, {
    maxSteps: 5_000_000,
    slice,
    onSlice: (steps) => {
      cut(steps);
      buf.resetPredictions();
      buf.ls = steps;
      start = { pc: m.pc, regs: Int32Array.from(m.R.subarray(0, 22)), base: steps };
    },
  });
  cut(r.steps);
  return { r, chunks, bytes, entryEnd: p.analysis.subprogs[0]!.end };
}

function explicit(code: Bytecode, mem: Uint8Array) {
  const m = new Machine();
  const log: unknown[][] = [];
  (m as unknown as { log: unknown[][] }).log = log;
  const p = new LoadedProgram(programFromBytecode(code), m, { entryRegs: RAW_ENTRY_REGS, instrument: bruteForce() });
  runOnMemory(p, mem, { maxSteps: 5_000_000 });
  return log;
}

function check(code: Bytecode, mem: Uint8Array, slice?: number) {
  const { r, chunks, bytes, entryEnd } = record(code, mem, slice);
  const log = explicit(code, mem) as LogEntry[];
  const steps = checkWalk([{ name: 'prog', code, entryEnd }], chunks, log);
  expect(steps).toBe(r.steps);
  return { steps, bytes };
}

describe('step records', () => {
  test('a loop records almost nothing, and decodes to every value it wrote', () => {
    const code = assemble('mov %r0, 0\nmov %r1, 1000\nloop:\nadd %r0, 3\nsub %r0, 1\nadd %r1, -1\njne %r1, 0, loop\nexit');
    const { steps, bytes } = check(code, new Uint8Array(0), 1 << 20);
    expect(steps).toBe(4003);
    expect(bytes).toBeLessThan(64);
    // With a keyframe every 100 instructions the predictions start over, and still decode.
    expect(check(code, new Uint8Array(0), 100).steps).toBe(4003);
  });

  test('calls, stores, loads, 64-bit values and both jump directions', () => {
    const code = assemble(`
      mov %r6, 300
      mov %r7, 0
      lddw %r8, 0x123456789abcdef0
    loop:
      mov %r1, %r6
      mov %r2, %r7
      call local mix
      mov %r7, %r0
      stxdw [%r10-8], %r7
      ldxw %r3, [%r10-8]
      jset %r3, 4, odd
      stxw [%r10-16], %r3
      ja next
    odd:
      stb [%r10-1], 9
    next:
      mul %r8, %r7
      add %r6, -1
      jne %r6, 0, loop
      mov %r0, %r8
      exit
    mix:
      mov32 %r0, %r1
      mul32 %r0, -1640531535
      xor32 %r0, %r2
      stxw [%r10-4], %r0
      ldxw %r3, [%r10-4]
      mod %r3, 1000003
      add %r0, %r3
      exit`);
    check(code, new Uint8Array(0));
  });

  const bench = fileURLToPath(new URL('../../../../../shared/bench', import.meta.url));
  test.skipIf(!existsSync(bench))('the bench programs, shortened, decode exactly', () => {
    for (const f of readdirSync(bench).filter((x) => x.endsWith('.data'))) {
      const t = parseDataFile(readFileSync(`${bench}/${f}`, 'utf8'), { file: f });
      // The first load of a loop count (mov %rN, <count>) shrunk so the test runs quickly.
      const code = t.code!;
      for (let pc = 0; pc < code.length; pc++) if (code.op[pc] === 0xb7 && code.imm[pc]! >= 100_000) code.imm[pc] = 300;
      check(code, t.mem ?? new Uint8Array(0));
    }
  });
});
