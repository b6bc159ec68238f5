// Running a program on caller memory, the convention of uBPF's tests and the bpf_conformance
// suite: r1 points at the memory, r2 holds its length.

import { Memory, type Region } from './memory.js';
import { execute, type LoadedProgram, type RunOptions, type RunResult } from './vm.js';
import { REGION_HI_BASE } from './memory.js';

/** Register mask for programs run on memory: r1 and r2 are set. */
export const RAW_ENTRY_REGS = 0b110;

export function defineMemRegion(mem: Memory, bytes: Uint8Array, index = mem.nextIndex()): Region {
  const base = mem.allocFlat(bytes.length);
  mem.u8.set(bytes, base);
  return mem.define({ index, kind: 'mem', name: 'mem', label: 'mem', base, lo: 0, hi: bytes.length, origin: 0, readable: true, writable: true });
}

/** Runs the program with r1 = memory holding `bytes` and r2 = its length; returns the result and the memory after the run. */
export function runOnMemory(p: LoadedProgram, bytes: Uint8Array, opts: RunOptions = {}): RunResult & { memory: Uint8Array } {
  const m = p.machine;
  const mark = m.mem.flatMark;
  const region = defineMemRegion(m.mem, bytes);
  m.R.fill(0);
  m.R[2] = 0;
  m.R[3] = REGION_HI_BASE + region.index;
  m.R[4] = bytes.length;
  try {
    const result = execute(p, opts);
    const memory = m.mem.u8.slice(region.base, region.base + bytes.length);
    return { ...result, memory };
  } finally {
    m.mem.remove(region.index);
    m.mem.resetFlat(mark);
  }
}
