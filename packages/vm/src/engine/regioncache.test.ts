// The region lookups that plain runs keep per pointer register within a basic block (compile.ts,
// baseRoles): the same programs run in a plain session and in one compiled with an (empty)
// instrumentation, which looks every access's region up; outcomes, faults, warnings, packets and
// maps must agree, including where the kept lookup no longer fits (another region in the same
// register, an offset past the bounds, bounds a helper moved, a read-only region, stack bytes
// never written).

import { describe, expect, it } from 'vitest';
import type { Instrumentation } from './compile.js';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { Session } from '../runtime/session.js';
import { asmPrograms, mapContents, outcomeView } from '../runtime/test-support.js';

const GENERIC: Instrumentation = {
  prologue: () => '',
  enter: () => '',
  epilogue: () => '',
  afterInsn: () => '',
  afterStore: () => '',
  branch: () => '',
  beforeCall: () => '',
};

const BPF_F_RDONLY_PROG = 1 << 7;
const maps: MapDef[] = [
  { name: 'a', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: 16, maxEntries: 4, flags: 0 },
  { name: 'ro', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: 16, maxEntries: 1, flags: BPF_F_RDONLY_PROG },
];

/** Runs the program on every packet in both sessions; expects the same outcomes and maps and returns the plain outcomes. */
function agree(text: string, packets: Uint8Array[], strict = false): ReturnType<typeof outcomeView>[] {
  const progs = asmPrograms({ p: text }, maps);
  const plain = new Session(progs, maps, { strict });
  const generic = new Session(progs, maps, { strict, instrument: GENERIC });
  const got = packets.map((packet, i) => {
    const a = outcomeView(plain.run('p', { packet }));
    expect({ i, ...a }).toEqual({ i, ...outcomeView(generic.run('p', { packet })) });
    return a;
  });
  expect(mapContents(plain)).toEqual(mapContents(generic));
  // The plain session did keep lookups.
  expect(plain.program('p').compiled.source).toMatch(/b\dh = h\d/);
  return got;
}

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

// Packet loads at offsets 0, 8 and r3 (the packet's first byte) through r2 in one block.
const PACKET_LOADS = `
  ldxw %r2, [%r1+0]
  ldxw %r3, [%r1+4]
  ldxb %r4, [%r2+0]
  ldxdw %r5, [%r2+8]
  add %r2, %r4
  ldxb %r0, [%r2+0]
  add %r0, %r5
  exit`;

// Stores and loads through r0 into a map value, then r0 moved to the read-only map's value (or
// the stack) in the same block, chosen by the packet's first byte.
const SWITCH_REGION = `
  ldxw %r6, [%r1+0]
  ldxw %r7, [%r1+4]
  mov %r2, %r6
  add %r2, 1
  jgt %r2, %r7, out
  ldxb %r8, [%r6+0]
  mov %r2, 1
  stxw [%r10-4], %r2
  lddw %r1, 1
  mov %r2, %r10
  add %r2, -4
  mov %r2, %r10
  add %r2, -4
  mov %r3, 0
  stxw [%r10-4], %r3
  call 1
  mov %r9, %r0
  jeq %r9, 0, out
  mov %r2, 0
  stxw [%r10-4], %r2
  lddw %r1, 0
  mov %r2, %r10
  add %r2, -4
  call 1
  jeq %r0, 0, out
  mov %r3, %r10
  add %r3, -16
  stxdw [%r0+0], %r8
  stxdw [%r0+8], %r8
  ldxdw %r4, [%r0+8]
  jeq %r8, 1, ro
  jeq %r8, 2, stack
  jeq %r8, 3, past
  stxw [%r0+4], %r4
  ja out
ro:
  mov %r0, %r9
  ldxdw %r4, [%r0+0]
  stxw [%r0+4], %r4
  ja out
stack:
  mov %r0, %r3
  stxw [%r0+0], %r4
  ldxdw %r4, [%r0+0]
  ja out
past:
  stxw [%r0+12], %r4
  stxw [%r0+14], %r4
out:
  mov %r0, 2
  exit`;

// Two stores through r2 around bpf_xdp_adjust_head, which moves the packet's bounds.
const AROUND_HELPER = `
  mov %r6, %r1
  ldxw %r2, [%r6+0]
  ldxw %r3, [%r6+4]
  mov %r4, %r2
  add %r4, 16
  jgt %r4, %r3, out
  stb [%r2+0], 1
  stb [%r2+15], 2
  mov %r1, %r6
  mov %r2, 8
  call 44
  ldxw %r2, [%r6+0]
  stb [%r2+0], 3
  stb [%r2+7], 4
  ldxb %r0, [%r2+7]
  exit
out:
  mov %r0, 1
  exit`;

describe('region lookups kept within a block agree with looking every access up', () => {
  it('packet loads, in bounds and past the end', () => {
    const outs = agree(PACKET_LOADS, [bytes(64), bytes(16), bytes(9), Uint8Array.from([5, ...bytes(15)]), Uint8Array.from([15, ...bytes(15)]), Uint8Array.from([16, ...bytes(15)])]);
    // The last packets fault on the kept lookup's bounds, at the load that went past them.
    expect(outs.filter((o) => o.fault).length).toBeGreaterThan(0);
  });

  it('a register moved to another region, a read-only value, the stack and offsets past a value', () => {
    const outs = agree(SWITCH_REGION, [Uint8Array.of(0), Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3), Uint8Array.of(0), Uint8Array.of(2)]);
    expect(outs.map((o) => o.fault !== undefined)).toEqual([false, true, false, true, false, false]);
  });

  it('bounds a helper moved between two runs of accesses', () => {
    agree(AROUND_HELPER, [bytes(64), bytes(20), bytes(16)]);
  });

  it('stack bytes never written, read through a kept lookup, as warnings and under --strict', () => {
    const text = `
      mov %r2, %r10
      add %r2, -16
      stw [%r2+0], 1
      ldxw %r3, [%r2+0]
      ldxw %r4, [%r2+4]
      add %r3, %r4
      mov %r0, 2
      exit`;
    const [warned] = agree(text, [bytes(14)]);
    expect(warned!.warnings.length).toBe(1);
    const [strict] = agree(text, [bytes(14)], true);
    expect(strict!.fault).toMatch(/never written/);
  });
});
