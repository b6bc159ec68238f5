// Test support: XDP programs written in assembly, and outcomes and maps in a form tests compare.

import { assemble } from '../asm/assemble.js';
import { BPF_PSEUDO_MAP_IDX, LDDW } from '../isa.js';
import type { MapDef, Program } from '../program.js';
import type { RunOutcome, Session } from './session.js';

/** XDP programs (name → asm) over `maps`; `lddw %r1, N` or `lddw %r2, N` with N < maps.length loads a pointer to map N. */
export function asmPrograms(texts: Record<string, string>, maps: MapDef[]): Program[] {
  return Object.entries(texts).map(([name, text]) => {
    const code = assemble(text);
    for (let pc = 0; pc < code.length; pc++) {
      if (code.op[pc] === LDDW && (code.dst[pc] === 1 || code.dst[pc] === 2) && code.imm[pc + 1] === 0 && code.imm[pc]! < maps.length) code.src[pc] = BPF_PSEUDO_MAP_IDX;
    }
    return { name, type: 'xdp' as const, code, funcs: [{ name, start: 0, end: code.length }], maps };
  });
}

/** What a run did, as plain values: r0, verdict, steps, fault, warnings, the packet after it, where it ended. */
export function outcomeView(o: RunOutcome) {
  return {
    r0: o.r0.toString(16),
    verdict: o.verdict,
    steps: o.steps,
    fault: o.fault?.message,
    warnings: o.warnings.map((w) => w.message),
    packet: o.packet ? Buffer.from(o.packet).toString('hex') : undefined,
    program: o.program,
    pc: o.pc,
  };
}

/** Every map's entries as `key=value` hex. */
export function mapContents(s: Session): [string, string[]][] {
  return s.maps.map((m) => [m.name, [...m.entries()].map((e) => `${Buffer.from(e.key).toString('hex')}=${Buffer.from(e.value).toString('hex')}`)]);
}
