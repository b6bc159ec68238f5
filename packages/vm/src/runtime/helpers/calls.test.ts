// Callbacks (bpf_loop, bpf_for_each_map_elem), spin locks, bpf_strncmp and bpf_snprintf: the
// parts the kernel comparison cannot show — refused arguments, call depth, counted steps,
// what happens to programs the verifier would refuse.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assemble } from '../../asm/assemble.js';
import { loadObject } from '../../elf/index.js';
import { Machine } from '../../engine/machine.js';
import { programFromBytecode } from '../../engine/vm.js';
import { Session } from '../session.js';
import { bprintf } from './printk.js';

function session(obj: string): Session {
  const file = fileURLToPath(new URL(`./fixtures/${obj}`, import.meta.url));
  const o = loadObject(readFileSync(file), file);
  return new Session(o.programs, o.maps);
}

const asm = (text: string) => new Session([{ ...programFromBytecode(assemble(text), 'p'), type: 'xdp' }], []);

/** The xdp_calls fixture's command (see fixtures/xdp_calls.c) in a packet. */
function callsPacket(nr: number, mul: number, limit: number, flags = 0, stop = 99): Uint8Array {
  const p = new Uint8Array(14 + 64 + 80 + 64);
  const dv = new DataView(p.buffer);
  [nr, mul, limit, flags, stop].forEach((v, k) => dv.setUint32(14 + 4 * k, v >>> 0, true));
  return p;
}
const result = (packet: Uint8Array, k: number) => new DataView(packet.buffer, packet.byteOffset).getBigUint64(14 + 56 + 8 * k, true);

describe('bpf_loop', () => {
  it('runs the callback nr_loops times, stops when it returns non-zero, and returns the iterations', () => {
    const s = session('xdp_calls.o');
    // sum of 0..9 = 45
    let out = s.run('xdp_calls', { packet: callsPacket(10, 1, 1000) });
    expect(result(out.packet!, 0)).toBe(10n);
    expect(result(out.packet!, 1)).toBe(45n);
    // stops after the sum passes 10: 0+1+2+3+4+5 = 15 at index 5, the sixth iteration
    out = s.run('xdp_calls', { packet: callsPacket(100, 1, 10) });
    expect(result(out.packet!, 0)).toBe(6n);
    expect(result(out.packet!, 1)).toBe(15n);
  });

  it('returns -E2BIG above BPF_MAX_LOOPS and -EINVAL for flags, without calling back', () => {
    const s = session('xdp_calls.o');
    const big = s.run('xdp_calls', { packet: callsPacket((1 << 23) + 1, 1, 0) });
    expect(result(big.packet!, 0)).toBe(BigInt.asUintN(64, -7n));
    expect(result(big.packet!, 1)).toBe(0n);
    const flags = s.run('xdp_calls', { packet: callsPacket(3, 1, 0, 1) });
    expect(result(flags.packet!, 0)).toBe(BigInt.asUintN(64, -22n));
  });

  it('counts the callback\'s instructions in the run\'s steps', () => {
    const s = session('xdp_calls.o');
    const steps = (nr: number) => s.run('xdp_calls', { packet: callsPacket(nr, 0, 1000) }).steps;
    const perIteration = steps(11) - steps(10);
    expect(perIteration).toBeGreaterThan(3);
    expect(steps(110) - steps(10)).toBe(100 * perIteration);
  });

  it('faults when the callback is not a function of the program', () => {
    const out = asm('mov %r1, 3\nmov %r2, 1\nmov %r3, 0\nmov %r4, 0\ncall 181\nexit').run('p', { packet: new Uint8Array(60) });
    expect(out.fault?.message).toMatch(/bpf_loop: argument 2 \(r2\) is not a callback function/);
  });

  it('runs callbacks through the eight call frames and faults past them', () => {
    expect(session('nested.o').run('xdp_deepest', { packet: new Uint8Array(60) }).retval).toBe(1);
    expect(session('faulty.o').run('too_deep', { packet: new Uint8Array(60) }).fault?.message).toMatch(/the call stack is too deep \(the kernel allows 8 frames\)/);
  });
});

describe('bpf_for_each_map_elem', () => {
  it('walks an array in index order with read-only keys and writable values', () => {
    const s = session('nested.o');
    // outer: 4 x (for each of 3 keys k: bpf_loop(k + 1) summing indexes) = 4 x (0 + 1 + 3) = 16
    expect(s.run('xdp_nested', { packet: new Uint8Array(60) }).retval).toBe(1604);
  });
});

describe('bpf_spin_lock', () => {
  it('takes and releases the lock around the update (the lock word is 0 afterwards)', () => {
    const s = session('xdp_calls.o');
    const pkt = callsPacket(0, 5, 0);
    s.run('xdp_calls', { packet: pkt });
    const out = s.run('xdp_calls', { packet: pkt });
    expect(result(out.packet!, 9)).toBe(10n);
    const locked = s.maps.find((m) => m.name === 'locked')!;
    expect(Array.from((locked.lookupSys(new Uint8Array(4)) as Uint8Array).subarray(0, 4))).toEqual([0, 0, 0, 0]);
  });

  it('faults on a second lock, and on unlocking another lock than the one held', () => {
    const s = session('faulty.o');
    expect(s.run('lock_twice', { packet: new Uint8Array(60) }).fault?.message).toMatch(/bpf_spin_lock: a lock is already held \(taken at insn \d+\); the verifier allows one at a time/);
    expect(s.run('unlock_other', { packet: new Uint8Array(60) }).fault?.message).toMatch(/bpf_spin_unlock: the lock held is map_value\(locks\)\+0 \(taken at insn \d+\), not this one/);
  });

  it('releases a lock still held at exit, with a warning', () => {
    const s = session('faulty.o');
    const out = s.run('lock_held_at_exit', { packet: new Uint8Array(60) });
    expect(out.fault).toBeUndefined();
    expect(out.warnings.map((w) => w.message).join('\n')).toMatch(/bpf_spin_lock was taken and never released/);
    const locks = s.maps.find((m) => m.name === 'locks')!;
    expect(Array.from((locks.lookupSys(new Uint8Array(4)) as Uint8Array).subarray(0, 8))).toEqual([0, 0, 0, 0, 1, 0, 0, 0]);
  });
});

describe('the format language of bpf_snprintf and bpf_trace_printk', () => {
  const m = new Machine();
  const fmt = (text: string, ...args: (number | bigint)[]) => {
    const r = bprintf(m, new TextEncoder().encode(text), args.map((a) => BigInt.asUintN(64, BigInt(a))));
    return typeof r === 'number' ? r : r.text;
  };

  it('prints integers as the kernel\'s vsnprintf does', () => {
    expect(fmt('%d %i %u', -1, 7, -1)).toBe('-1 7 4294967295');
    expect(fmt('%ld %lu %lld', -1n, -1n, -5n)).toBe('-1 18446744073709551615 -5');
    expect(fmt('%x %X %lx %llX', 0xabc, 0xabc, 0x123456789an, -1n)).toBe('abc ABC 123456789a FFFFFFFFFFFFFFFF');
    expect(fmt('[%5d][%-5d][%05d][%+d][% d][%-05d]', 42, 42, -42, 42, 42, 7)).toBe('[   42][42   ][-0042][+42][ 42][7    ]');
    expect(fmt('[%+u][%08x][%c][%3c]', 5, 0xbeef, 65, 66)).toBe('[5][0000beef][A][  B]');
    expect(fmt('100%%')).toBe('100%');
  });

  it('refuses what bpf_bprintf_prepare() refuses with -EINVAL', () => {
    for (const bad of ['%hd', '%.3d', '%#x', '%pM', '%q', '%', 'tab\u0001', 'caf\u00e9 %d', '%d %d', '%sx']) {
      expect(fmt(bad, 1), bad).toBe(-22);
    }
  });

  it('prints addresses and pointers', () => {
    const dv = new DataView(new ArrayBuffer(16));
    [0x20010db8, 0, 0, 1].forEach((w, k) => dv.setUint32(4 * k, w));
    const region = m.mem.nextIndex();
    m.mem.define({ index: region, kind: 'mem', name: 'mem', label: 'mem', view: dv, base: 0, lo: 0, hi: 16, origin: 0, readable: true, writable: false });
    const ptr = (BigInt(0x1000 + region) << 32n) | 0n;
    expect(fmt('%pI4 %pi4', ptr, ptr)).toBe('32.1.13.184 032.001.013.184');
    expect(fmt('%pI6', ptr)).toBe('2001:0db8:0000:0000:0000:0000:0000:0001');
    expect(fmt('%pi6', ptr)).toBe('20010db8000000000000000000000001');
    expect(fmt('%px', 0x1234)).toBe('0000000000001234');
    expect(fmt('%ps', 0x1234)).toBe('0x1234');
    // An address that cannot be read prints as zeros; a string that cannot be read, empty.
    expect(fmt('%pI4|%s|', 5, 5)).toBe('0.0.0.0||');
  });
});
