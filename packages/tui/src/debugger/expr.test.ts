import { describe, expect, it } from 'vitest';
import { Expr } from './expr.js';
import { FakeTrace } from './fake-trace.js';

// State of the fake trace's first run just before the call (pc 9): r1 = 6 (TCP), r2 = pkt+0,
// r3 = pkt+60, the protocol spilled at r10-4, the first packet byte rewritten to 0xaa.
const t = new FakeTrace();
const s = t.state(9);
const ev = (text: string) => Expr.parse(text).eval(s).v;

describe('Expr', () => {
  it('follows C precedence and parentheses', () => {
    expect(ev('1 + 2 * 3')).toBe(7n);
    expect(ev('(1 + 2) * 3')).toBe(9n);
    expect(ev('1 << 4 | 1')).toBe(17n);
    expect(ev('6 == 6 && 2 < 1 || 1')).toBe(1n);
    expect(ev('!0 + ~0')).toBe(0n);
  });

  it('reads registers, their low halves, and compares unsigned unless cast', () => {
    expect(ev('r1')).toBe(6n);
    expect(ev('w1 == 6')).toBe(1n);
    expect(ev('-1 > 5')).toBe(1n);
    expect(ev('(s64)-1 > (s64)5')).toBe(0n);
    expect(ev('(u8)0x1ff')).toBe(0xffn);
  });

  it('loads through pointers into the packet and the stack', () => {
    expect(ev('*(u8 *)(pkt + 23)')).toBe(6n);
    expect(ev('*(u8 *)(r2 + 23) == 6')).toBe(1n);
    expect(ev('*(u8 *)(data)')).toBe(0xaan);
    expect(ev('*(u16 *)(pkt + 12)')).toBe(0x0008n);
    expect(ev('*(u32 *)(r10 - 4)')).toBe(6n);
    expect(ev('r3 - r2')).toBe(60n);
    expect(ev('*(s8 *)(pkt + 0)')).toBe(BigInt.asUintN(64, -86n));
  });

  it('gives the address and size of a load for watchpoints', () => {
    expect(Expr.parse('*(u32 *)(r10 - 8)').load(s)).toEqual({ ptr: { kind: 'stack', region: 0, offset: -8, origin: 512 }, size: 4 });
    expect(Expr.parse('*(u16 *)(pkt + 12)').load(s)!.ptr).toMatchObject({ kind: 'packet', offset: 12, origin: 256 });
    expect(Expr.parse('r7').register).toBe(7);
  });

  it('says what is wrong with a bad expression', () => {
    expect(() => Expr.parse('r1 ==')).toThrow(/ends early/);
    expect(() => Expr.parse('*(r1)')).toThrow(/say how many bytes/);
    expect(() => Expr.parse('r11')).toThrow(/unknown name 'r11'/);
    expect(() => Expr.parse('r1 @ 2')).toThrow(/unexpected '@'/);
    expect(() => ev('*(u8 *)(pkt + 200)')).toThrow(/outside the 60-byte packet/);
    expect(() => ev('*(u8 *)(5)')).toThrow(/not a pointer/);
    expect(() => ev('1 / 0')).toThrow(/division by zero/);
  });
});
