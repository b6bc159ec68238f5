import { describe, expect, it } from 'vitest';
import { parseCbpfDump } from './parse.js';
import { referenceCbpfRun } from './reference.js';

const prog = (...lines: string[]) => parseCbpfDump(`${lines.length}\n${lines.join('\n')}`);
const AD = (n: number): number => 0xfffff000 + n;
const NET = (n: number): number => 0x100000000 - 0x100000 + n;
const LL = (n: number): number => 0x100000000 - 0x200000 + n;

// A 20-byte frame: bytes 0..19 hold their own index.
const frame = Uint8Array.from({ length: 20 }, (_, i) => i);

describe('referenceCbpfRun', () => {
  it('loads big-endian words, halves and bytes', () => {
    expect(referenceCbpfRun(prog('32 0 0 4', '22 0 0 0'), frame)).toBe(0x04050607);
    expect(referenceCbpfRun(prog('40 0 0 18', '22 0 0 0'), frame)).toBe(0x1213);
    expect(referenceCbpfRun(prog('48 0 0 19', '22 0 0 0'), frame)).toBe(19);
  });

  it('ends the filter with 0 on a load past the packet', () => {
    expect(referenceCbpfRun(prog('40 0 0 19', '6 0 0 9'), frame)).toBe(0);
    expect(referenceCbpfRun(prog('1 0 0 30', '80 0 0 0', '6 0 0 9'), frame)).toBe(0); // ldb [x + 0], x = 30
  });

  it('reads relative to the network and link headers', () => {
    expect(referenceCbpfRun(prog(`48 0 0 ${NET(2)}`, '22 0 0 0'), frame)).toBe(16);
    expect(referenceCbpfRun(prog(`48 0 0 ${NET(2)}`, '22 0 0 0'), frame, { networkOffset: 4 })).toBe(6);
    expect(referenceCbpfRun(prog(`40 0 0 ${LL(12)}`, '22 0 0 0'), frame)).toBe(0x0c0d);
  });

  it('computes 4 * (P[k] & 0xf) into X and keeps A', () => {
    // ld #7; ldxb 4*([17]&0xf) → X = 4; txa ... A + X via add x
    expect(referenceCbpfRun(prog('0 0 0 7', '177 0 0 17', '12 0 0 0', '22 0 0 0'), frame)).toBe(7 + 4);
  });

  it('32-bit unsigned arithmetic; division or modulo by X = 0 returns 0', () => {
    expect(referenceCbpfRun(prog('0 0 0 1', '132 0 0 0', '22 0 0 0'), frame)).toBe(0xffffffff); // neg
    expect(referenceCbpfRun(prog(`0 0 0 ${0xffffffff}`, '36 0 0 2', '22 0 0 0'), frame)).toBe(0xfffffffe); // mul
    expect(referenceCbpfRun(prog('0 0 0 100', '52 0 0 7', '22 0 0 0'), frame)).toBe(14);
    expect(referenceCbpfRun(prog('0 0 0 100', '60 0 0 0', '6 0 0 9'), frame)).toBe(0); // div x, x = 0
    expect(referenceCbpfRun(prog('0 0 0 100', '156 0 0 0', '6 0 0 9'), frame)).toBe(0); // mod x
    expect(referenceCbpfRun(prog('0 0 0 1', '1 0 0 33', '108 0 0 0', '22 0 0 0'), frame)).toBe(2); // lsh x, 33 mod 32
  });

  it('compares unsigned and skips forward', () => {
    // ld #0xffffffff; jgt #1 jt 0 jf 1; ret #1; ret #2
    expect(referenceCbpfRun(prog(`0 0 0 ${0xffffffff}`, '37 0 1 1', '6 0 0 1', '6 0 0 2'), frame)).toBe(1);
    // jset #0x10 on A = 0x0f
    expect(referenceCbpfRun(prog('0 0 0 15', '69 0 1 16', '6 0 0 1', '6 0 0 2'), frame)).toBe(2);
    expect(referenceCbpfRun(prog('5 0 0 1', '6 0 0 1', '6 0 0 2'), frame)).toBe(2);
  });

  it('ancillary loads read the skb metadata', () => {
    const run = (n: number, meta = {}) => referenceCbpfRun(prog(`32 0 0 ${AD(n)}`, '22 0 0 0'), frame, meta);
    expect(run(0)).toBe(0x0c0d); // protocol defaults to the Ethernet type field
    expect(run(0, { protocol: 0x86dd })).toBe(0x86dd);
    expect(run(20, { mark: 77 })).toBe(77);
    expect(run(48, { vlanPresent: true })).toBe(1);
    expect(run(28)).toBe(1); // hatype: ARPHRD_ETHER
    expect(referenceCbpfRun(prog('0 0 0 12', '1 0 0 10', `32 0 0 ${AD(40)}`, '22 0 0 0'), frame)).toBe(12 ^ 10);
    expect(() => run(52)).toThrow(/not modelled/);
  });

  it('validates like the kernel first', () => {
    expect(() => referenceCbpfRun(prog('96 0 0 0', '22 0 0 0'), frame)).toThrow('reads M[0]');
  });
});
