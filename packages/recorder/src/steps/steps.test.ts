import { describe, expect, test } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assemble, LoadedProgram, Machine, parseDataFile, programFromBytecode, runOnMemory, RAW_ENTRY_REGS, type Bytecode } from '@rewind/vm';
import { bruteForce, checkWalk, type LogEntry, type TestChunk } from './test-support.js';
import { StepBuffer, stepInstrumentation } from './instrument.js';

/** Records with keyframes every `slice` instructions: predictions start over at each. */
function record(code: Bytecode, mem: Uint8Array, slice = 1000, stride = true) {
  const m = new Machine();
  const buf = new StepBuffer(code.length);
  (m as unknown as { rec: StepBuffer }).rec = buf;
  const p = new LoadedProgram(programFromBytecode(code), m, { entryRegs: RAW_ENTRY_REGS, instrument: stepInstrumentation(undefined, { stride }) });
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
  return { r, chunks, bytes, entryEnd: p.analysis.subprogs[0]!.end, source: p.compiled.source };
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

  // Self-loops whose registers only ever add constants skip the checks of those sites from the
  // third iteration on: the records must be the very bytes full checking writes, and decode.
  describe('stride loops', () => {
    const loops: [string, string][] = [
      ['a 64-bit counter whose high half changes inside the loop', 'lddw %r1, 0xfffffff0\nmov %r2, 40\nloop:\nadd %r1, 1\nadd %r2, -1\njne %r2, 0, loop\nmov %r0, %r1\nexit'],
      ['a 64-bit counter going down across zero', 'mov %r1, 5\nmov %r2, 30\nloop:\nsub %r1, 1\nsub %r2, 1\njne %r2, 0, loop\nmov %r0, %r1\nexit'],
      ['32-bit adds wrapping around', 'mov32 %r1, -20\nmov %r2, 50\nloop:\nadd32 %r1, 3\nadd32 %r1, -2\nadd %r2, -1\njne %r2, 0, loop\nmov %r0, %r1\nexit'],
      ['mixed 32- and 64-bit adds of one register, beside values that are not strides', 'mov %r1, 7\nmov %r3, 1\nmov %r2, 64\nloop:\nadd %r1, 0x7fffffff\nadd32 %r1, 5\nmul %r3, 3\nxor %r3, %r1\nadd %r2, -1\njne %r2, 0, loop\nmov %r0, %r3\nexit'],
      ['a stride register also written by a load is checked in full', 'mov %r1, 0\nmov %r2, 20\nstxdw [%r10-8], %r2\nloop:\nadd %r1, 2\nldxdw %r1, [%r10-8]\nadd %r1, 1\nadd %r2, -1\njne %r2, 0, loop\nmov %r0, %r1\nexit'],
      ['loops left after one, two and three iterations, entered again', 'mov %r6, 0\nmov %r7, 12\nouter:\nmov %r2, %r6\nand %r2, 3\nadd %r2, 1\nmov %r1, 0\ninner:\nadd %r1, 5\nadd %r2, -1\njne %r2, 0, inner\nadd %r6, 1\nadd %r7, -1\njne %r7, 0, outer\nmov %r0, %r1\nexit'],
      ['a loop in a called function', 'mov %r6, 9\nmov %r7, 0\nagain:\nmov %r1, %r6\ncall local f\nadd %r7, %r0\nadd %r6, -1\njne %r6, 0, again\nmov %r0, %r7\nexit\nf:\nmov %r0, 100\nmov %r2, 0\nfl:\nadd %r0, 7\nadd %r2, 1\njlt %r2, %r1, fl\nexit'],
    ];
    for (const [name, asm] of loops) {
      test(name, () => {
        const code = assemble(asm);
        // Slices of 1000, and of 7 and 13 instructions, which break the loops at every point.
        for (const slice of [1000, 7, 13]) {
          const fast = record(code, new Uint8Array(0), slice, true);
          const full = record(code, new Uint8Array(0), slice, false);
          expect(fast.r.r0).toBe(full.r.r0);
          expect(fast.chunks.length).toBe(full.chunks.length);
          fast.chunks.forEach((c, i) => expect(Buffer.from(c.records).equals(Buffer.from(full.chunks[i]!.records)), `records of chunk ${i}, slice ${slice}`).toBe(true));
          check(code, new Uint8Array(0), slice);
        }
      });
    }

    test('only loops with stride registers get the second, unchecked loop', () => {
      const strided = record(assemble('mov %r1, 0\nmov %r2, 5\nloop:\nadd %r1, 1\nadd %r2, -1\njne %r2, 0, loop\nexit'), new Uint8Array(0));
      expect(strided.source).toMatch(/if \(\+\+k2 < 2\) continue;/);
      const none = record(assemble('mov %r1, 1\nmov %r2, 5\nloop:\nmul %r1, 3\nldxdw %r2, [%r10-8]\njne %r2, 0, loop\nexit'), new Uint8Array(0));
      expect(none.source).not.toMatch(/\+\+k\d+ < 2/);
      expect(record(assemble('mov %r1, 0\nmov %r2, 5\nloop:\nadd %r1, 1\nadd %r2, -1\njne %r2, 0, loop\nexit'), new Uint8Array(0), 1000, false).source).not.toMatch(/\+\+k\d+ < 2/);
    });
  });

  test('a program over 128 slots is instrumented compact and decodes exactly', () => {
    // Straight-line code (calls to the prologue's site functions), a one-block loop (locals, inline), a bpf-to-bpf call.
    // An outer loop of several blocks runs it all three times, so sites outside locals run again after keyframes.
    const lines = ['mov %r6, 0', 'mov %r8, 3', 'outer:', 'mov %r7, 25'];
    for (let i = 0; i < 70; i++) lines.push(`add %r6, ${i + 1}`, `stxdw [%r10-${8 * (1 + (i % 8))}], %r6`);
    lines.push('loop:', 'add %r6, 3', 'mul %r6, 5', 'add %r7, -1', 'jne %r7, 0, loop', 'mov %r1, %r6', 'call local f', 'ldxdw %r2, [%r10-16]', 'add %r0, %r2');
    lines.push('jgt %r0, 1000, big', 'mov %r0, 1', 'big:', 'add %r8, -1', 'jne %r8, 0, outer', 'exit', 'f:', 'mov %r0, %r1', 'xor %r0, 77', 'exit');
    const code = assemble(lines.join('\n'));
    expect(code.length).toBeGreaterThan(128);
    for (const slice of [1000, 9]) {
      const rec = record(code, new Uint8Array(0), slice);
      expect(rec.source).toMatch(/SV0\(/);
      expect(rec.source).toMatch(/SS0\(/);
      expect(rec.source).toMatch(/SB0\(/);
      check(code, new Uint8Array(0), slice);
    }
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
