// Loads, stores and atomics (RFC 9669 5): every size at aligned and unaligned offsets of caller
// memory and of the stack, zero- and sign-extension, immediates stored sign-extended, and the
// atomic operations with and without fetch, xchg and cmpxchg on 32 and 64 bits. Expected values
// come from a DataView over the same bytes and from BigInt arithmetic.

import { describe, expect, it } from 'vitest';
import { assemble } from '../asm/assemble.js';
import { Machine } from './machine.js';
import { REGION_HI_BASE } from './memory.js';
import { runOnMemory, RAW_ENTRY_REGS } from './raw.js';
import { LoadedProgram, programFromBytecode } from './vm.js';

function run(src: string, mem = new Uint8Array(0)) {
  const p = new LoadedProgram(programFromBytecode(assemble(src)), new Machine(), { entryRegs: RAW_ENTRY_REGS });
  const r = runOnMemory(p, mem, { strict: true });
  if (r.fault) throw r.fault;
  expect(r.warnings).toEqual([]);
  return r;
}

const u64 = (v: bigint) => BigInt.asUintN(64, v);
/** 32 bytes that differ from each other, with high bits set in every other byte. */
const MEM = Uint8Array.from({ length: 32 }, (_, i) => (i % 2 ? 0x80 : 0) | ((i * 37 + 11) & 0x7f));
const view = new DataView(MEM.buffer);
const SIZES = [
  ['b', 1],
  ['h', 2],
  ['w', 4],
  ['dw', 8],
] as const;

function readLE(off: number, size: number, signed: boolean): bigint {
  switch (size) {
    case 1: return u64(BigInt(signed ? view.getInt8(off) : view.getUint8(off)));
    case 2: return u64(BigInt(signed ? view.getInt16(off, true) : view.getUint16(off, true)));
    case 4: return u64(BigInt(signed ? view.getInt32(off, true) : view.getUint32(off, true)));
    default: return view.getBigUint64(off, true);
  }
}

describe('loads', () => {
  const offsets = [0, 1, 2, 3, 5, 7, 8, 13, 24];
  it.each(SIZES)('ldx%s zero-extends, at aligned and unaligned offsets of caller memory', (suffix, size) => {
    for (const off of offsets) {
      // Through a base moved by pointer arithmetic as well as by the instruction's offset.
      const r = run(`mov %r2, %r1\nadd %r2, 3\nldx${suffix} %r0, [%r2${off - 3 < 0 ? off - 3 : `+${off - 3}`}]\nexit`, MEM);
      expect(r.r0, `ldx${suffix} at mem+${off}`).toBe(readLE(off, size, false));
    }
  });

  it.each(SIZES.slice(0, 3))('ldxs%s sign-extends to 64 bits', (suffix, size) => {
    for (const off of offsets) {
      const r = run(`ldxs${suffix} %r0, [%r1+${off}]\nexit`, MEM);
      expect(r.r0, `ldxs${suffix} at mem+${off}`).toBe(readLE(off, size, true));
    }
  });

  it('ldxsb of 0x7f and 0x80, ldxsh of 0x8000, ldxsw of 0x80000000', () => {
    const mem = Uint8Array.of(0x7f, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80);
    expect(run('ldxsb %r0, [%r1+0]\nexit', mem).r0).toBe(0x7fn);
    expect(run('ldxsb %r0, [%r1+1]\nexit', mem).r0).toBe(0xffffffffffffff80n);
    expect(run('ldxsh %r0, [%r1+2]\nexit', mem).r0).toBe(0xffffffffffff8000n);
    expect(run('ldxsw %r0, [%r1+4]\nexit', mem).r0).toBe(0xffffffff80000000n);
    expect(run('ldxw %r0, [%r1+4]\nexit', mem).r0).toBe(0x80000000n);
  });

  it('a pointer moved below its region and back still points into it', () => {
    expect(run('mov %r2, %r1\nadd %r2, -3\nldxb %r0, [%r2+4]\nexit', Uint8Array.of(1, 2)).r0).toBe(2n);
    expect(run('mov %r2, %r1\nsub %r2, 100000\nadd %r2, 100001\nldxb %r0, [%r2+0]\nexit', Uint8Array.of(1, 2)).r0).toBe(2n);
    expect(run('stdw [%r10-504], 77\nmov %r2, %r10\nadd %r2, -600\nldxdw %r0, [%r2+96]\nexit').r0).toBe(77n);
  });

  it('such a pointer is described by its own region, at a negative offset', () => {
    const m = new Machine();
    // Region 8 is the first after the eight stack frames; its value at offset -3 borrowed from the high half.
    m.mem.define({ index: 8, kind: 'mem', name: 'mem', label: 'mem', base: 8 * 512, lo: 0, hi: 4, origin: 0, readable: true, writable: true });
    expect(m.mem.describePointer(-3, REGION_HI_BASE + 8 - 1)).toBe('mem-3');
    expect(m.mem.describePointer(3, REGION_HI_BASE + 8)).toBe('mem+3');
    expect(m.mem.describePointer(3, 0)).toBeUndefined();
  });

  it('a load overwrites all 64 bits of its destination', () => {
    expect(run('lddw %r0, -1\nldxb %r0, [%r1]\nexit', Uint8Array.of(0x12)).r0).toBe(0x12n);
    expect(run('lddw %r0, -1\nldxw %r0, [%r1]\nexit', Uint8Array.of(1, 2, 3, 4)).r0).toBe(0x04030201n);
  });
});

describe('stores', () => {
  const V = 0xf1e2d3c4b5a69788n;
  it.each(SIZES)('stx%s writes the low bytes of the register, little-endian, at unaligned offsets', (suffix, size) => {
    for (const off of [0, 1, 3, 6]) {
      const r = run(`lddw %r2, 0x${V.toString(16)}\nstx${suffix} [%r1+${off}], %r2\nmov %r0, 0\nexit`, new Uint8Array(16));
      const want = new Uint8Array(16);
      new DataView(want.buffer).setBigUint64(0, V, true);
      const expected = new Uint8Array(16);
      expected.set(want.subarray(0, size), off);
      expect(r.memory, `stx${suffix} at mem+${off}`).toEqual(expected);
    }
  });

  it.each(SIZES)('st%s stores the immediate, sign-extended for stdw', (suffix, size) => {
    for (const imm of [0x12345678, -1, -0x80000000, 0x7f]) {
      const r = run(`st${suffix} [%r1+1], ${imm}\nmov %r0, 0\nexit`, new Uint8Array(10));
      const expected = new Uint8Array(10);
      const dv = new DataView(expected.buffer);
      dv.setBigUint64(1, u64(BigInt(imm)), true);
      expected.fill(0, 1 + size);
      expect(r.memory, `st${suffix} ${imm}`).toEqual(expected);
    }
  });

  it('the stack keeps what is stored at every size and offset, and reads it back', () => {
    const r = run(`
      lddw %r2, 0x1122334455667788
      stxdw [%r10-8], %r2
      stxw [%r10-16], %r2
      stxh [%r10-18], %r2
      stxb [%r10-19], %r2
      stb [%r10-20], -1
      sth [%r10-24], -2
      stw [%r10-32], -3
      stdw [%r10-40], -4
      ldxdw %r0, [%r10-8]
      ldxw %r3, [%r10-16]
      ldxh %r4, [%r10-18]
      ldxb %r5, [%r10-19]
      ldxb %r6, [%r10-20]
      ldxh %r7, [%r10-24]
      ldxw %r8, [%r10-32]
      ldxdw %r9, [%r10-40]
      xor %r0, %r3
      xor %r0, %r4
      xor %r0, %r5
      xor %r0, %r6
      xor %r0, %r7
      xor %r0, %r8
      xor %r0, %r9
      exit`);
    const expected = 0x1122334455667788n ^ 0x55667788n ^ 0x7788n ^ 0x88n ^ 0xffn ^ 0xfffen ^ 0xfffffffdn ^ u64(-4n);
    expect(r.r0).toBe(expected);
  });

  it('the stack frame spans r10-512 to r10', () => {
    expect(run('stdw [%r10-512], 5\nstb [%r10-1], 6\nldxdw %r0, [%r10-512]\nldxb %r1, [%r10-1]\nadd %r0, %r1\nexit').r0).toBe(11n);
  });
});

describe('atomics', () => {
  const OLD = 0x8000000180000001n;
  const SRC = 0x00000003ffffffffn;
  const OPS = [
    ['add', (a: bigint, b: bigint) => a + b],
    ['or', (a: bigint, b: bigint) => a | b],
    ['and', (a: bigint, b: bigint) => a & b],
    ['xor', (a: bigint, b: bigint) => a ^ b],
  ] as const;

  // The operand is at mem+8 (and on the stack at r10-8); r0 = the value after, r3 = the source after.
  const program = (op: string, fetch: boolean, w32: boolean, onStack: boolean) => `
    lddw %r2, 0x${OLD.toString(16)}
    ${onStack ? 'stxdw [%r10-8], %r2\nmov %r4, %r10\nadd %r4, -16' : 'mov %r4, %r1'}
    stxdw [%r4+8], %r2
    lddw %r3, 0x${SRC.toString(16)}
    lock ${fetch ? 'fetch ' : ''}${op}${w32 ? '32' : ''} [%r4+8], %r3
    ldxdw %r0, [%r4+8]
    ${onStack ? '' : 'stxdw [%r1+0], %r3'}
    ${onStack ? 'stxdw [%r10-24], %r3' : ''}
    exit`;

  for (const onStack of [false, true]) {
    const where = onStack ? 'on the stack' : 'in caller memory';
    it.each(OPS)(`%s, 64 and 32 bits, with and without fetch, ${where}`, (op, f) => {
      for (const w32 of [false, true]) {
        for (const fetch of [false, true]) {
          const r = run(program(op, fetch, w32, onStack), new Uint8Array(16));
          // 32-bit atomics work on the low word; the high word of memory is untouched.
          const after = w32 ? (OLD & 0xffffffff00000000n) | BigInt.asUintN(32, f(OLD & 0xffffffffn, SRC & 0xffffffffn)) : u64(f(OLD, SRC));
          const label = `lock ${fetch ? 'fetch ' : ''}${op}${w32 ? '32' : ''} ${where}`;
          expect(r.r0, label).toBe(after);
          if (!onStack) {
            // With fetch, the source register gets the old value (zero-extended for 32 bits).
            const srcAfter = new DataView(r.memory.buffer, r.memory.byteOffset).getBigUint64(0, true);
            expect(srcAfter, `${label}: the source register after`).toBe(fetch ? (w32 ? OLD & 0xffffffffn : OLD) : SRC);
          }
        }
      }
    });
  }

  it('xchg and xchg32 swap, leaving the old value zero-extended in the source', () => {
    const r = run(`
      lddw %r2, 0x${OLD.toString(16)}
      stxdw [%r10-8], %r2
      stxdw [%r10-16], %r2
      lddw %r3, 0x${SRC.toString(16)}
      mov %r4, %r3
      lock xchg [%r10-8], %r3
      lock xchg32 [%r10-16], %r4
      stxdw [%r1+0], %r3
      stxdw [%r1+8], %r4
      ldxdw %r5, [%r10-8]
      stxdw [%r1+16], %r5
      ldxdw %r5, [%r10-16]
      stxdw [%r1+24], %r5
      mov %r0, 0
      exit`, new Uint8Array(32));
    const dv = new DataView(r.memory.buffer, r.memory.byteOffset);
    expect(dv.getBigUint64(0, true)).toBe(OLD);
    expect(dv.getBigUint64(8, true)).toBe(OLD & 0xffffffffn);
    expect(dv.getBigUint64(16, true)).toBe(SRC);
    expect(dv.getBigUint64(24, true)).toBe((OLD & 0xffffffff00000000n) | (SRC & 0xffffffffn));
  });

  // r0 is the comparand; after cmpxchg, r0 holds the old value (zero-extended for 32 bits).
  const cmpxchg = (w32: boolean, r0: bigint) => `
    lddw %r2, 0x${OLD.toString(16)}
    stxdw [%r1+0], %r2
    lddw %r0, 0x${u64(r0).toString(16)}
    lddw %r3, 0x${SRC.toString(16)}
    lock cmpxchg${w32 ? '32' : ''} [%r1+0], %r3
    stxdw [%r1+8], %r0
    mov %r0, 0
    exit`;
  const cmpxchgRun = (w32: boolean, r0: bigint) => {
    const r = run(cmpxchg(w32, r0), new Uint8Array(16));
    const dv = new DataView(r.memory.buffer, r.memory.byteOffset);
    return { memory: dv.getBigUint64(0, true), r0: dv.getBigUint64(8, true) };
  };

  it('cmpxchg: equal stores the source, unequal leaves memory; r0 gets the old value', () => {
    expect(cmpxchgRun(false, OLD)).toEqual({ memory: SRC, r0: OLD });
    expect(cmpxchgRun(false, OLD ^ (1n << 40n))).toEqual({ memory: OLD, r0: OLD });
  });

  it('cmpxchg32 compares the low words only', () => {
    // The high word of r0 differs from memory's: still equal on 32 bits.
    expect(cmpxchgRun(true, 0x1234567880000001n)).toEqual({ memory: (OLD & 0xffffffff00000000n) | (SRC & 0xffffffffn), r0: OLD & 0xffffffffn });
    expect(cmpxchgRun(true, OLD ^ 1n)).toEqual({ memory: OLD, r0: OLD & 0xffffffffn });
  });
});
