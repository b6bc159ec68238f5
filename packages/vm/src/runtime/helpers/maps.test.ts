// Map helpers over many runs of one session: a slot keeps its value region from run to run,
// region ids that run out are reclaimed without disturbing the run that needs them, keys and
// values are read before the map sees them, and atomics on map values (done inline by the
// compiled code unless something observes out-of-line writes) give the values 64-bit arithmetic
// gives.

import { describe, expect, it } from 'vitest';
import { asmPrograms } from '../test-support.js';
import { indexKey } from '../../maps/map.js';
import { BPF_MAP_TYPE, type MapDef } from '../../program.js';
import { Session } from '../session.js';

const mapDef = (name: string, type: number, keySize: number, valueSize: number, maxEntries: number): MapDef => ({ name, type, keySize, valueSize, maxEntries, flags: 0 });

/** An XDP session of `programs` (name → asm); `lddw %r1, N` loads a pointer to map N. */
function session(programs: Record<string, string>, maps: MapDef[]): Session {
  return new Session(asmPrograms(programs, maps), maps);
}

const u32s = (...v: number[]) => new Uint8Array(new Uint32Array(v).buffer);
const u64At = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(off, true);

// r0 = the high half of the pointer bpf_map_lookup_elem returns for the key in the packet's first word (0: none).
const LOOKUP_REGION = `
  ldxw %r2, [%r1+0]
  ldxw %r3, [%r1+4]
  mov %r4, %r2
  add %r4, 4
  jgt %r4, %r3, none
  ldxw %r5, [%r2+0]
  stxw [%r10-4], %r5
  lddw %r1, 0
  mov %r2, %r10
  add %r2, -4
  call 1
  jeq %r0, 0, none
  rsh %r0, 32
  exit
none:
  mov %r0, 0
  exit`;

describe('value pointers across runs', () => {
  it('a slot gets the same value region in every run; another slot gets another', () => {
    const s = session({ p: LOOKUP_REGION }, [mapDef('arr', BPF_MAP_TYPE.array, 4, 8, 8)]);
    const region = (key: number) => s.run('p', { packet: u32s(key, 0) }).retval;
    const first = region(1);
    expect(first).toBeGreaterThan(0x1000);
    expect(region(2)).not.toBe(first);
    expect(region(1)).toBe(first);
    expect(region(9)).toBe(0); // past max_entries: NULL
  });

  it('when region ids run out, the kept regions of earlier runs make room and the current run\'s stay valid', () => {
    // Each run looks up two new slots, then writes key + 1 through both pointers: 80,000 slots
    // need more value regions than there are region ids (65,536), so some run reclaims them
    // between or before its own lookups.
    const SLOTS = 80_000;
    const s = session(
      {
        p: `
          ldxw %r6, [%r1+0]
          ldxw %r7, [%r1+4]
          mov %r2, %r6
          add %r2, 8
          jgt %r2, %r7, drop
          ldxw %r8, [%r6+0]
          ldxw %r9, [%r6+4]
          stxw [%r10-4], %r8
          stxw [%r10-8], %r9
          lddw %r1, 0
          mov %r2, %r10
          add %r2, -4
          call 1
          jeq %r0, 0, drop
          mov %r6, %r0
          lddw %r1, 0
          mov %r2, %r10
          add %r2, -8
          call 1
          jeq %r0, 0, drop
          add %r8, 1
          stxdw [%r6+0], %r8
          add %r9, 1
          stxdw [%r0+0], %r9
          mov %r0, 2
          exit
        drop:
          mov %r0, 1
          exit`,
      },
      [mapDef('arr', BPF_MAP_TYPE.array, 4, 8, SLOTS)],
    );
    for (let j = 0; j < SLOTS / 2; j++) {
      const out = s.run('p', { packet: u32s(2 * j, 2 * j + 1) });
      if (out.retval !== 2) throw new Error(`run ${j}: ${out.fault?.message ?? out.verdict}`);
    }
    const arr = s.maps[0]!;
    for (let k = 0; k < SLOTS; k++) {
      const v = arr.lookupSys(indexKey(k)) as Uint8Array;
      if (u64At(v, 0) !== BigInt(k + 1)) throw new Error(`slot ${k} holds ${u64At(v, 0)}`);
    }
  });

  it('one run pointing at more values than there are region ids faults; the next run has its ids back', () => {
    const s = session(
      {
        many: `
          mov %r6, 0
        loop:
          stxw [%r10-4], %r6
          lddw %r1, 0
          mov %r2, %r10
          add %r2, -4
          call 1
          jeq %r0, 0, out
          add %r6, 1
          jlt %r6, 70000, loop
        out:
          mov %r0, %r6
          exit`,
        one: LOOKUP_REGION,
      },
      [mapDef('arr', BPF_MAP_TYPE.array, 4, 8, 70_001)],
    );
    expect(s.run('many', { packet: new Uint8Array(60) }).fault?.message).toMatch(/more than 65536 map values pointed to in one run/);
    const out = s.run('one', { packet: u32s(70_000, 0) });
    expect(out.fault).toBeUndefined();
    expect(out.retval).toBeGreaterThan(0x1000);
  });
});

describe('keys and values', () => {
  it('bpf_map_update_elem keeps a key and a value of the same size apart', () => {
    // key 0x11111111 at r10-4, value 0x22222222 at r10-8; then r0 = *lookup(key).
    const s = session(
      {
        p: `
          stw [%r10-4], 0x11111111
          stw [%r10-8], 0x22222222
          lddw %r1, 0
          mov %r2, %r10
          add %r2, -4
          mov %r3, %r10
          add %r3, -8
          mov %r4, 0
          call 2
          jne %r0, 0, fail
          lddw %r1, 0
          mov %r2, %r10
          add %r2, -4
          call 1
          jeq %r0, 0, fail
          ldxw %r0, [%r0+0]
          exit
        fail:
          mov %r0, 0
          exit`,
      },
      [mapDef('h', BPF_MAP_TYPE.hash, 4, 4, 16)],
    );
    expect(s.run('p', { packet: new Uint8Array(60) }).retval).toBe(0x22222222);
    expect(Array.from(s.maps[0]!.lookupSys(u32s(0x11111111)) as Uint8Array)).toEqual(Array.from(u32s(0x22222222)));
    expect(s.maps[0]!.lookupSys(u32s(0x22222222))).toBeLessThan(0);
  });
});

describe('atomics on a map value', () => {
  const OLD = 0x8000000180000001n;
  const SRC = 0x00000003ffffffffn;
  const LO = 0xffffffffn;
  const HI = ~LO & ((1n << 64n) - 1n);
  const u64 = (v: bigint) => BigInt.asUintN(64, v);

  // The value: +0 gets the register the atomic leaves its result in, +8 is the operand (OLD).
  const program = (insn: string, comparand: bigint) => `
    stw [%r10-4], 0
    lddw %r1, 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, fail
    mov %r7, %r0
    lddw %r3, 0x${SRC.toString(16)}
    lddw %r0, 0x${comparand.toString(16)}
    ${insn}
    ${insn.includes('cmpxchg') ? 'stxdw [%r7+0], %r0' : 'stxdw [%r7+0], %r3'}
    mov %r0, 2
    exit
  fail:
    mov %r0, 1
    exit`;

  /** Runs `insn` on OLD with SRC, with or without an observer of out-of-line writes; returns (result register, memory). */
  const run = (insn: string, observed: boolean, comparand = 0n) => {
    const s = session({ p: program(insn, comparand) }, [mapDef('v', BPF_MAP_TYPE.array, 4, 16, 1)]);
    const init = new Uint8Array(16);
    new DataView(init.buffer).setBigUint64(8, OLD, true);
    s.maps[0]!.update(u32s(0), init, 0);
    const writes: number[] = [];
    if (observed) s.machine.onWrite = (region, offset) => region.kind === 'map_value' && writes.push(offset);
    const out = s.run('p', { packet: new Uint8Array(60) });
    expect(out.fault?.message).toBeUndefined();
    const v = s.maps[0]!.lookupSys(u32s(0)) as Uint8Array;
    return { result: u64At(v, 0), memory: u64At(v, 8), writes };
  };

  const low = (v: bigint) => v & LO;
  const w32 = (f: (a: bigint, b: bigint) => bigint) => (OLD & HI) | low(f(low(OLD), low(SRC)));
  const CASES: [string, bigint, bigint][] = [
    ['lock fetch add [%r7+8], %r3', u64(OLD + SRC), OLD],
    ['lock fetch add32 [%r7+8], %r3', w32((a, b) => a + b), low(OLD)],
    ['lock fetch or [%r7+8], %r3', OLD | SRC, OLD],
    ['lock fetch and32 [%r7+8], %r3', w32((a, b) => a & b), low(OLD)],
    ['lock fetch xor [%r7+8], %r3', OLD ^ SRC, OLD],
    ['lock add [%r7+8], %r3', u64(OLD + SRC), SRC],
    ['lock xchg [%r7+8], %r3', SRC, OLD],
    ['lock xchg32 [%r7+8], %r3', (OLD & HI) | low(SRC), low(OLD)],
  ];

  it.each(CASES)('%s: the operand and the register afterwards, inline and through the slow path', (insn, memory, result) => {
    for (const observed of [false, true]) {
      const r = run(insn, observed);
      expect({ memory: r.memory, result: r.result }, observed ? 'observed' : 'inline').toEqual({ memory, result });
      // Only the observed run goes out of line; its observer sees the atomic's write when the
      // value changed (xchg writes always). The store after the atomic is inline.
      const stored = memory !== OLD || insn.includes('xchg');
      expect(r.writes, observed ? 'observed' : 'inline').toEqual(observed && stored ? [8] : []);
    }
  });

  it('cmpxchg and cmpxchg32 store the source only when r0 matches, and leave the old value in r0', () => {
    for (const observed of [false, true]) {
      expect(run('lock cmpxchg [%r7+8], %r3', observed, OLD)).toMatchObject({ memory: SRC, result: OLD });
      expect(run('lock cmpxchg [%r7+8], %r3', observed, OLD ^ (1n << 40n))).toMatchObject({ memory: OLD, result: OLD });
      // The 32-bit form compares the low words only and zero-extends the old value into r0.
      expect(run('lock cmpxchg32 [%r7+8], %r3', observed, low(OLD) | (5n << 32n))).toMatchObject({ memory: (OLD & HI) | low(SRC), result: low(OLD) });
      expect(run('lock cmpxchg32 [%r7+8], %r3', observed, low(OLD) ^ 1n)).toMatchObject({ memory: OLD, result: low(OLD) });
    }
  });
});
