// Shared by the tests: an instrumentation that logs every write explicitly, the independent
// account the predicted step records must agree with, and the check that walks recorded chunks
// (trace/walk.ts) against that log.
import { expect } from 'vitest';
import type { Instrumentation } from '@rewind/vm';
import { walkChunk, type WalkEvent, type WalkProgram } from '../trace/walk.js';

/** A log entry: [step, pc, dst, lo, hi] for an instruction (dst -1: no register written), [step, pc, 's', region, offset | 0, size, lo, hi] for an inline store. */
export type LogEntry = (number | string)[];

/** Pushes a LogEntry onto `vm.log` (set on the machine before the program compiles) for every instruction. */
export function bruteForce(): Instrumentation {
  return {
    prologue: () => 'const LOG = vm.log;',
    enter: () => '',
    epilogue: () => '',
    afterInsn: (pc, dst, step) => (dst < 0 ? `LOG.push([${step}, ${pc}, -1, 0, 0]);` : `LOG.push([${step}, ${pc}, ${dst}, l${dst}, h${dst}]);`),
    afterStore: (pc, size, region, at, vl, vh, step) => `LOG.push([${step}, ${pc}, 's', ${region}, ${at} | 0, ${size}, ${vl}, ${vh}]);`,
    branch: (pc, _taken, step) => `LOG.push([${step}, ${pc}, -1, 0, 0]);`,
    beforeCall: () => '',
  };
}

/** A chunk as a test recorded it: where it starts (program index, pc, registers), its records and events. */
export interface TestChunk {
  program: number;
  pc: number;
  regs: Int32Array;
  records: Uint8Array;
  events: WalkEvent[];
  /** Run-relative step of its first state, and its instructions. */
  base: number;
  count: number;
}

/**
 * Walks a run's chunks and checks every register write and inline store of the explicit log
 * against the registers and memory writes the walk rebuilds. Returns the instructions walked.
 */
export function checkWalk(programs: WalkProgram[], chunks: TestChunk[], log: LogEntry[]): number {
  const writes = log.filter((e) => e[2] !== -1);
  let wi = 0;
  let steps = 0;
  for (const c of chunks) {
    const s = walkChunk({ programs, ...c, where: `chunk at step ${c.base}` });
    const R = c.regs.slice();
    for (let k = 1; k <= s.count; k++) {
      for (let i = s.regStart[k]!; i < s.regStart[k + 1]!; i++) {
        R[2 * s.regNum[i]!] = s.regLo[i]!;
        R[2 * s.regNum[i]! + 1] = s.regHi[i]!;
      }
      const step = c.base + k;
      while (wi < writes.length && writes[wi]![0] === step) {
        const e = writes[wi++]!;
        expect(s.pc[k - 1], `pc of step ${step}`).toBe(e[1]);
        if (e[2] === 's') {
          const [region, off, size, lo, hi] = e.slice(3) as number[];
          const found = [];
          for (let i = s.memStart[k]!; i < s.memStart[k + 1]!; i++) {
            const bytes = s.pool.subarray(s.memAt[i]!, s.memAt[i]! + s.memLen[i]!);
            found.push([s.memRegion[i], s.memOff[i]! | 0, s.memLen[i], Buffer.from(bytes).toString('hex')]);
          }
          const le = Buffer.alloc(8);
          le.writeInt32LE(lo!, 0);
          le.writeInt32LE(hi!, 4);
          expect(found, `store at step ${step}`).toContainEqual([region, off, size, le.subarray(0, size!).toString('hex')]);
        } else {
          const dst = e[2] as number;
          expect([step, dst, R[2 * dst], R[2 * dst + 1]]).toEqual([step, dst, e[3], e[4]]);
        }
      }
    }
    steps += s.count;
  }
  expect(wi).toBe(writes.length);
  return steps;
}
