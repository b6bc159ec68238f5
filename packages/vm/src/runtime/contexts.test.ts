// Context accesses as the verifier allows them (xdp_is_valid_access, bpf_skb_is_valid_access and
// the tc, socket filter and cgroup skb rules of net/core/filter.c) and the context the kernel's
// test run prepares. The values a program reads are checked against the kernel in
// helpers/kernel.test.ts; here, the accesses Rewind refuses and the inputs it refuses.

import { describe, expect, it } from 'vitest';
import { assemble } from '../asm/assemble.js';
import { programFromBytecode } from '../engine/vm.js';
import { ethernet, ipv4, udp } from '../packet/build.js';
import type { ProgType } from '../program.js';
import { Session, type RunInput } from './session.js';

function run(type: ProgType, asm: string, input: RunInput = {}) {
  const s = new Session([{ ...programFromBytecode(assemble(asm), 'p'), type }], []);
  return s.run('p', { packet: new Uint8Array(60), ...input });
}

const refused = (type: ProgType, asm: string): string => {
  const out = run(type, asm);
  expect(out.fault, asm).toBeDefined();
  return out.fault!.message;
};

describe('xdp_md', () => {
  it('reads ingress_ifindex (the loopback device without ctx_in) and rx_queue_index with 4-byte loads', () => {
    expect(run('xdp', 'ldxw %r0, [%r1+12]\nexit').retval).toBe(1);
    expect(run('xdp', 'ldxw %r0, [%r1+16]\nexit').retval).toBe(0);
    expect(run('xdp', 'ldxw %r0, [%r1+12]\nexit', { ctx: { ingress_ifindex: 7 } }).retval).toBe(7);
  });

  it('refuses narrow and wide loads, stores, egress_ifindex and the bytes past the struct', () => {
    expect(refused('xdp', 'ldxh %r0, [%r1+0]\nexit')).toMatch(/read of 2 bytes at ctx\+0: xdp_md\.data is read with a 4-byte load \(the verifier refuses this\)/);
    expect(refused('xdp', 'ldxdw %r0, [%r1+0]\nexit')).toMatch(/4-byte load/);
    expect(refused('xdp', 'ldxb %r0, [%r1+12]\nexit')).toMatch(/xdp_md\.ingress_ifindex is read with a 4-byte load/);
    expect(refused('xdp', 'stw [%r1+12], 1\nexit')).toMatch(/xdp_md is read-only/);
    expect(refused('xdp', 'ldxw %r0, [%r1+20]\nexit')).toMatch(/egress_ifindex is only readable by programs attached to a devmap/);
    expect(refused('xdp', 'ldxw %r0, [%r1+24]\nexit')).toMatch(/read of 4 bytes at ctx\+24/);
  });
});

describe('__sk_buff', () => {
  it('refuses misaligned loads, 8-byte loads of 32-bit fields and stores narrower than a field', () => {
    expect(refused('tc', 'ldxw %r0, [%r1+2]\nexit')).toMatch(/read of 4 bytes at ctx\+2 is misaligned/);
    expect(refused('tc', 'ldxdw %r0, [%r1+8]\nexit')).toMatch(/__sk_buff\.mark is a 4-byte field/);
    expect(refused('tc', 'stxh [%r1+8], %r1\nexit')).toMatch(/__sk_buff\.mark is written with a 4-byte store/);
    expect(refused('tc', 'ldxh %r0, [%r1+76]\nexit')).toMatch(/__sk_buff\.data is read with a 4-byte load/);
    expect(refused('tc', 'ldxw %r0, [%r1+152]\nexit')).toMatch(/tstamp is accessed with 8-byte loads and stores/);
    expect(refused('tc', 'ldxdw %r0, [%r1+64]\nexit')).toMatch(/runs past the end of __sk_buff\.cb/);
    expect(refused('tc', 'ldxdw %r0, [%r1+144]\nexit')).toMatch(/flow_keys is only for flow dissector programs/);
    expect(refused('tc', 'stw [%r1+0], 1\nexit')).toMatch(/__sk_buff\.len is read-only in tc programs/);
    expect(refused('tc', 'ldxw %r0, [%r1+184]\nexit')).toMatch(/hwtstamp is read with an 8-byte load/);
    expect(refused('tc', 'ldxb %r0, [%r1+181]\nexit')).toMatch(/ctx\+181/);
  });

  it('keeps what each program type may read and write apart', () => {
    // tc programs have no socket fields; socket filters no packet pointers, tc_classid, wire_len or tstamp.
    expect(refused('tc', 'ldxw %r0, [%r1+88]\nexit')).toMatch(/__sk_buff\.family is not accessible to tc programs/);
    expect(refused('socket', 'ldxw %r0, [%r1+76]\nexit')).toMatch(/__sk_buff\.data is not accessible to socket programs/);
    expect(refused('socket', 'ldxw %r0, [%r1+72]\nexit')).toMatch(/tc_classid is not accessible to socket programs/);
    expect(refused('socket', 'ldxw %r0, [%r1+160]\nexit')).toMatch(/wire_len is not accessible/);
    expect(refused('socket', 'stw [%r1+8], 1\nexit')).toMatch(/__sk_buff\.mark is read-only in socket programs/);
    expect(refused('cgroup_skb', 'stw [%r1+44], 1\nexit')).toMatch(/tc_index is read-only in cgroup_skb programs/);
    expect(refused('tc', 'stb [%r1+180], 1\nexit')).toMatch(/tstamp_type is read-only in tc programs/);
    // What they may do.
    expect(run('socket', 'stw [%r1+48], 5\nldxw %r0, [%r1+48]\nexit').retval).toBe(5);
    expect(run('tc', 'ldxb %r0, [%r1+180]\nexit').retval).toBe(0);
    expect(run('cgroup_skb', 'stw [%r1+8], 9\nldxw %r0, [%r1+8]\nexit').retval).toBe(9);
  });

  it('reads the socket a cgroup skb program sees from the IP header', () => {
    const pkt = ethernet({ type: 0x0800, payload: ipv4({ src: '10.1.2.3', dst: '192.168.0.9', proto: 17, payload: udp({ sport: 1, dport: 2 }) }) });
    const family = run('cgroup_skb', 'ldxw %r0, [%r1+88]\nexit', { packet: pkt });
    expect(family.retval).toBe(2);
    // local_ip4 is the source, remote_ip4 the destination, in network order.
    expect(run('cgroup_skb', 'ldxw %r0, [%r1+96]\nexit', { packet: pkt }).retval).toBe(0x0302010a);
    expect(run('cgroup_skb', 'ldxw %r0, [%r1+92]\nexit', { packet: pkt }).retval).toBe(0x0900a8c0);
  });
});

describe('the test run context', () => {
  const read = (off: number, packet: Uint8Array, input: RunInput = {}) => run('tc', `ldxw %r0, [%r1+${off}]\nexit`, { packet, ...input }).retval;
  const frame = (dst: string, type: number, rest: number[] = []) => ethernet({ dst, type, payload: Uint8Array.from([...rest, ...new Uint8Array(46)]) });

  it('sets pkt_type as eth_type_trans() does on the loopback device (address and broadcast address all zero)', () => {
    expect(read(4, frame('00:00:00:00:00:00', 0x0800))).toBe(0); // PACKET_HOST
    expect(read(4, frame('ff:ff:ff:ff:ff:ff', 0x0800))).toBe(2); // PACKET_MULTICAST
    expect(read(4, frame('01:00:5e:00:00:01', 0x0800))).toBe(2);
    expect(read(4, frame('02:00:00:00:00:02', 0x0800))).toBe(3); // PACKET_OTHERHOST
  });

  it('takes the protocol from the EtherType, or 802.3 / 802.2 for a length', () => {
    expect(read(16, frame('02:00:00:00:00:02', 0x86dd))).toBe(0xdd86);
    expect(read(16, frame('02:00:00:00:00:02', 0x0040, [0xff, 0xff]))).toBe(0x0100); // ETH_P_802_3
    expect(read(16, frame('02:00:00:00:00:02', 0x0040, [0xaa, 0xaa]))).toBe(0x0400); // ETH_P_802_2
  });

  it('fills wire_len only when a ctx_in is given, as convert___skb_to_skb() does', () => {
    const pkt = frame('02:00:00:00:00:02', 0x0800);
    expect(read(160, pkt)).toBe(0);
    expect(read(160, pkt, { ctx: { mark: 1 } })).toBe(pkt.length);
    expect(read(160, pkt, { ctx: { wire_len: 1000 } })).toBe(1000);
    expect(read(40, pkt)).toBe(1);
    expect(read(0, pkt)).toBe(pkt.length);
  });

  it('refuses the ctx_in fields the kernel refuses, naming them', () => {
    const pkt = frame('02:00:00:00:00:02', 0x0800);
    expect(() => read(0, pkt, { ctx: { len: 5 } })).toThrow(/ctx_in: __sk_buff\.len must be 0 in ctx_in \(the kernel's test run refuses it with EINVAL\)/);
    expect(() => read(0, pkt, { ctx: { wire_len: 10 } })).toThrow(/__sk_buff\.wire_len must be 0 or between the packet's length/);
    expect(() => read(0, pkt, { ctx: { gso_segs: 70000 } })).toThrow(/gso_segs must be at most GSO_MAX_SEGS/);
    expect(() => run('xdp', 'mov %r0, 0\nexit', { ctx: { rx_queue_index: 1 } })).toThrow(/rx_queue_index needs an ingress_ifindex/);
    expect(() => run('xdp', 'mov %r0, 0\nexit', { ctx: { data: 6 } })).toThrow(/xdp_md\.data is the metadata length, a multiple of 4/);
  });

  it('gives XDP metadata from the ctx_in data offset: the first bytes of data_in', () => {
    const pkt = Uint8Array.from({ length: 64 }, (_, i) => i);
    // r0 = data - data_meta; and the first metadata byte
    const out = run('xdp', 'ldxw %r2, [%r1+0]\nldxw %r3, [%r1+8]\nldxb %r0, [%r3+0]\nlsh %r0, 8\nsub %r2, %r3\nor %r0, %r2\nexit', { packet: pkt, ctx: { data: 8 } });
    expect(out.retval).toBe((0 << 8) | 8);
    expect(out.packet).toEqual(pkt.subarray(8));
    // ctx_out: data and data_end as offsets from data_meta
    expect(Array.from(out.ctx!.subarray(0, 8))).toEqual([8, 0, 0, 0, 64, 0, 0, 0]);
  });
});
