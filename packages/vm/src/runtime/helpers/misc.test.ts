// The inputs of a run (clocks, random numbers, the CPU), trace_printk output, tail calls, queue
// pops, the flow hash, tunnel keys and the packet type.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadObject } from '../../elf/index.js';
import { FdArrayMap } from '../../maps/fd_maps.js';
import { ethernet, ipv4, ipv6, tcp } from '../../packet/build.js';
import type { Program } from '../../program.js';
import { Session, type SessionOptions } from '../session.js';
import { jhash2 } from './skb.js';

function session(opts: SessionOptions = {}): Session {
  const file = fileURLToPath(new URL('./fixtures/misc.o', import.meta.url));
  const o = loadObject(readFileSync(file), file);
  return new Session(o.programs, o.maps, opts);
}

const u64s = (p: Uint8Array, n: number) => Array.from({ length: n }, (_, k) => new DataView(p.buffer, p.byteOffset).getBigUint64(14 + 8 * k, true));
const u32s = (p: Uint8Array, n: number) => Array.from({ length: n }, (_, k) => new DataView(p.buffer, p.byteOffset).getUint32(14 + 4 * k, true));

describe('inputs of a run', () => {
  it('gives the run\'s time, a seeded random sequence and the session\'s CPU', () => {
    const a = session({ seed: 42, cpus: 4, cpu: 3 });
    const b = session({ seed: 42, cpus: 4, cpu: 3 });
    const ra = a.run('xdp_inputs', { packet: new Uint8Array(80), timeNs: 123456789n });
    const rb = b.run('xdp_inputs', { packet: new Uint8Array(80), timeNs: 123456789n });
    const [t, boot, r1, r2, cpu] = u64s(ra.packet!, 5);
    expect(t).toBe(123456789n);
    expect(boot).toBe(123456789n);
    expect(cpu).toBe(3n);
    expect(r1).not.toBe(r2);
    expect(r1! < 1n << 32n && r2! < 1n << 32n).toBe(true);
    // Same seed, same numbers; another seed, others.
    expect(u64s(rb.packet!, 4)).toEqual(u64s(ra.packet!, 4));
    const c = session({ seed: 43 }).run('xdp_inputs', { packet: new Uint8Array(80) });
    expect(u64s(c.packet!, 4)[2]).not.toBe(r1);
  });

  it('names the helpers whose results a kernel would not reproduce', () => {
    const s = session();
    expect(s.run('xdp_inputs', { packet: new Uint8Array(80) }).nondeterministic).toEqual(['bpf_ktime_get_ns', 'bpf_ktime_get_boot_ns', 'bpf_get_prandom_u32', 'bpf_get_smp_processor_id']);
    expect(s.run('xdp_last', { packet: new Uint8Array(80) }).nondeterministic).toBeUndefined();
  });

  it('pops from an empty queue: -ENOENT and the value zeroed', () => {
    const out = session().run('xdp_inputs', { packet: new Uint8Array(80) });
    const v = u64s(out.packet!, 7);
    expect(v[5]).toBe(0n);
    expect(v[6]).toBe(BigInt.asUintN(64, -2n));
  });

  it('prints trace_printk lines as output events', () => {
    const out = session({ seed: 1 }).run('xdp_inputs', { packet: new Uint8Array(80) });
    const rand = Number(u64s(out.packet!, 3)[2]);
    expect(out.output).toEqual([{ kind: 'printk', text: `cpu 0 rand ${rand.toString(16)}`, step: expect.any(Number) }]);
  });
});

describe('bpf_tail_call', () => {
  it('jumps to the program in the slot, goes on when the slot is empty', () => {
    const s = session();
    const jumps = s.maps.find((m) => m.name === 'jumps') as FdArrayMap<Program>;
    expect(s.run('xdp_first', { packet: new Uint8Array(60) }).retval).toBe(66);
    jumps.setSlot(0, s.programs.find((p) => p.name === 'xdp_last')!);
    const out = s.run('xdp_first', { packet: new Uint8Array(60) });
    expect(out.retval).toBe(77);
    expect(out.program).toBe('xdp_last');
  });

  it('faults on a slot holding a program of another type, which the kernel never lets into the map', () => {
    const s = session();
    const jumps = s.maps.find((m) => m.name === 'jumps') as FdArrayMap<Program>;
    jumps.setSlot(0, { ...s.programs.find((p) => p.name === 'xdp_last')!, name: 'tc_last', type: 'tc' });
    expect(s.run('xdp_first', { packet: new Uint8Array(60) }).fault?.message).toMatch(
      /bpf_tail_call: slot 0 of 'jumps' holds 'tc_last', a tc program; a xdp program can only tail-call xdp programs/,
    );
  });
});

describe('the flow hash', () => {
  const tcp4 = (src: string, dst: string, sport: number, dport: number) =>
    ethernet({ type: 0x0800, payload: ipv4({ src, dst, proto: 6, payload: tcp({ sport, dport, flags: 'S', payload: new Uint8Array(40) }) }) });

  it('is computed on demand, the same in both directions of a flow, set and invalidated', () => {
    const s = session({ seed: 5 });
    const first = s.run('tc_meta', { packet: tcp4('10.0.0.1', '10.0.0.2', 1000, 80) });
    expect(first.retval).toBe(0);
    const fwd = u32s(first.packet!, 6);
    const back = u32s(s.run('tc_meta', { packet: tcp4('10.0.0.2', '10.0.0.1', 80, 1000) }).packet!, 6);
    const other = u32s(s.run('tc_meta', { packet: tcp4('10.0.0.2', '10.0.0.1', 81, 1000) }).packet!, 6);
    // skb->hash starts unset; the recalculation stores it.
    expect(fwd[0]).toBe(0);
    expect(fwd[1]).not.toBe(0);
    expect(fwd[2]).toBe(fwd[1]);
    expect(back[1]).toBe(fwd[1]);
    expect(other[1]).not.toBe(fwd[1]);
    // bpf_set_hash wins until bpf_set_hash_invalid, after which it is computed again.
    expect(fwd[3]).toBe(0x1234);
    expect(fwd[4]).toBe(0);
    expect(fwd[5]).toBe(fwd[1]);
    // The key comes from the session's seed.
    expect(u32s(session({ seed: 6 }).run('tc_meta', { packet: tcp4('10.0.0.1', '10.0.0.2', 1000, 80) }).packet!, 2)[1]).not.toBe(fwd[1]);
    const v6 = ethernet({ type: 0x86dd, payload: ipv6({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: 6, payload: tcp({ sport: 1, dport: 2, flags: 'S', payload: new Uint8Array(40) }) }) });
    expect(u32s(s.run('tc_meta', { packet: v6 }).packet!, 2)[1]).not.toBe(0);
  });

  it('uses lib/jhash.h\'s jhash2', () => {
    // jhash2 of no words is the initial value; the mixing is lib/jhash.h's, checked on known inputs.
    expect(jhash2([], 0)).toBe(0xdeadbeef);
    expect(jhash2([1], 0)).not.toBe(jhash2([2], 0));
    expect(jhash2([1, 2, 3, 4], 7)).toBe(jhash2([1, 2, 3, 4], 7));
  });
});

describe('tunnel keys and the packet type', () => {
  const packet = (op: number) => {
    const p = new Uint8Array(120);
    p.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
    p[119] = op;
    return p;
  };

  it('sets a tunnel key and reads it back from the receiving side', () => {
    const v = u32s(session().run('tc_meta', { packet: packet(1) }).packet!, 12);
    expect(v[0]).toBe(22); // no tunnel metadata yet: -EINVAL
    expect(v[1]).toBe(0);
    expect(v[2]).toBe(0);
    expect(v[3]).toBe(42);
    // The key's remote address is where the packet goes; read back, it is the local one.
    expect(v[4]).toBe(0x0a000002);
    expect(v[5]).toBe(0x0a000001);
    expect(v[6]).toBe(3 | (64 << 8));
    expect(v[7]).toBe(71); // an IPv6 read of an IPv4 key: -EPROTO
    expect(v[8]).toBe(0);
    // TUNNEL_KEY | TUNNEL_NOCACHE, as a __be16 (no TUNNEL_CSUM: BPF_F_ZERO_CSUM_TX)
    expect(v[9]).toBe(((0x2004 & 0xff) << 8) | (0x2004 >> 8));
    expect(v[10]).toBe(22); // a flow label on an IPv4 key
    expect(v[11]).toBe(22); // a size that is no struct layout
  });

  it('changes the packet type among host, broadcast, multicast and other host only', () => {
    const v = u32s(session().run('tc_meta', { packet: packet(2) }).packet!, 5);
    expect(v).toEqual([3, 0, 0, 22, 0]);
  });
});
