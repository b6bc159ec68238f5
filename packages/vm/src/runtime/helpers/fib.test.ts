// bpf_fib_lookup over a configured route table: struct bpf_fib_lookup filled in as
// bpf_ipv4_fib_lookup()/bpf_ipv6_fib_lookup() fill it, and the BPF_FIB_LKUP_RET_* codes.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadObject } from '../../elf/index.js';
import { formatIpv4, formatIpv6, formatMac, parseIpv4, parseIpv6 } from '../../packet/addr.js';
import { Session } from '../session.js';
import { BPF_FIB_LKUP_RET as RET } from './fib.js';
import type { FibRoute } from './index.js';

const ROUTES: FibRoute[] = [
  { prefix: '10.0.0.0/8', ifindex: 3, dmac: 'aa:bb:cc:00:00:01', smac: '02:00:00:00:00:03', mtu: 1400 },
  { prefix: '10.1.0.0/16', ifindex: 4, gateway: '10.9.9.9', dmac: 'aa:bb:cc:00:00:02', smac: '02:00:00:00:00:04', metric: 20, src: '10.1.0.1' },
  { prefix: '192.168.0.0/24', ifindex: 5, type: 'blackhole' },
  { prefix: '192.168.1.0/24', ifindex: 5, type: 'prohibit' },
  { prefix: '172.16.0.0/12', ifindex: 6 },
  { prefix: '0.0.0.0/0', ifindex: 2, gateway: '192.0.2.1', dmac: 'aa:bb:cc:00:00:09', smac: '02:00:00:00:00:02' },
  { prefix: '203.0.113.0/24', ifindex: 8, gateway: '2001:db8::1', dmac: 'aa:bb:cc:00:00:08' },
  { prefix: '10.0.0.0/8', ifindex: 9, dmac: 'aa:bb:cc:00:00:99', table: 100 },
  { prefix: '2001:db8::/32', ifindex: 7, gateway: '2001:db8::ff', dmac: 'aa:bb:cc:00:00:07', smac: '02:00:00:00:00:07' },
];

const FLAGS = { DIRECT: 1, OUTPUT: 2, SKIP_NEIGH: 4, TBID: 8, SRC: 16, MARK: 32 };

interface Lookup {
  family?: number;
  dst: string;
  src?: string;
  ifindex?: number;
  totLen?: number;
  tbid?: number;
  flags?: number;
}

function session(routes = ROUTES): Session {
  const file = fileURLToPath(new URL('./fixtures/fib.o', import.meta.url));
  const o = loadObject(readFileSync(file), file);
  return new Session(o.programs, o.maps, { fib: routes });
}

function lookup(s: Session, prog: 'xdp_fib' | 'tc_fib', q: Lookup, packetLen = 100) {
  const p = new Uint8Array(packetLen);
  p.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
  const dv = new DataView(p.buffer);
  const v6 = q.dst.includes(':');
  p[14] = q.family ?? (v6 ? 10 : 2);
  dv.setUint16(14 + 6, q.totLen ?? 0, true);
  dv.setUint32(14 + 8, q.ifindex ?? 1, true);
  p.set(v6 ? parseIpv6(q.src ?? '2001:db8::1234') : parseIpv4(q.src ?? '10.255.0.1'), 14 + 16);
  p.set(v6 ? parseIpv6(q.dst) : parseIpv4(q.dst), 14 + 32);
  if (q.tbid !== undefined) dv.setUint32(14 + 48, q.tbid, true);
  dv.setUint32(78, q.flags ?? 0, true);
  const out = s.run(prog, { packet: p });
  expect(out.fault).toBeUndefined();
  const r = out.packet!.subarray(14, 78);
  const rv = new DataView(r.buffer, r.byteOffset, 64);
  return {
    rc: out.retval | 0,
    family: r[0],
    mtu: rv.getUint16(6, true),
    ifindex: rv.getUint32(8, true),
    metric: rv.getUint32(12, true),
    src: r[0] === 10 ? formatIpv6(r, 16) : formatIpv4(r, 16),
    dst: r[0] === 10 ? formatIpv6(r, 32) : formatIpv4(r, 32),
    vlan: rv.getUint32(48, true),
    smac: formatMac(r, 52),
    dmac: formatMac(r, 58),
  };
}

describe('bpf_fib_lookup', () => {
  const s = session();

  it('forwards by the longest matching prefix, filling in the egress device, addresses and MTU', () => {
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4' })).toMatchObject({ rc: RET.SUCCESS, ifindex: 3, dst: '10.2.3.4', dmac: 'aa:bb:cc:00:00:01', smac: '02:00:00:00:00:03', mtu: 1400, vlan: 0 });
    expect(lookup(s, 'xdp_fib', { dst: '10.1.2.3' })).toMatchObject({ rc: RET.SUCCESS, ifindex: 4, dst: '10.9.9.9', metric: 20, mtu: 1500, dmac: 'aa:bb:cc:00:00:02' });
    expect(lookup(s, 'xdp_fib', { dst: '8.8.8.8' })).toMatchObject({ rc: RET.SUCCESS, ifindex: 2, dst: '192.0.2.1' });
  });

  it('gives the route types and a missing neighbour their codes', () => {
    expect(lookup(s, 'xdp_fib', { dst: '192.168.0.7' }).rc).toBe(RET.BLACKHOLE);
    expect(lookup(s, 'xdp_fib', { dst: '192.168.1.7' }).rc).toBe(RET.PROHIBIT);
    expect(lookup(s, 'xdp_fib', { dst: '172.16.9.9' })).toMatchObject({ rc: RET.NO_NEIGH, ifindex: 6 });
    expect(lookup(s, 'xdp_fib', { dst: '172.16.9.9', flags: FLAGS.SKIP_NEIGH })).toMatchObject({ rc: RET.SUCCESS, ifindex: 6, dmac: '00:00:00:00:00:00' });
    expect(lookup(session([]), 'xdp_fib', { dst: '10.2.3.4' }).rc).toBe(RET.NOT_FWDED);
  });

  it('checks tot_len against the MTU: always from XDP, from tc when tot_len is given, else the packet', () => {
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', totLen: 1401 })).toMatchObject({ rc: RET.FRAG_NEEDED, mtu: 1400 });
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', totLen: 1400 })).toMatchObject({ rc: RET.SUCCESS, mtu: 1400 });
    expect(lookup(s, 'tc_fib', { dst: '10.2.3.4', totLen: 1401 })).toMatchObject({ rc: RET.FRAG_NEEDED, mtu: 1400 });
    // Without tot_len the skb itself must fit the MTU plus the Ethernet and VLAN headers.
    expect(lookup(s, 'tc_fib', { dst: '10.2.3.4' }, 1418)).toMatchObject({ rc: RET.SUCCESS, mtu: 1400 });
    expect(lookup(s, 'tc_fib', { dst: '10.2.3.4' }, 1419)).toMatchObject({ rc: RET.FRAG_NEEDED, mtu: 1400 });
  });

  it('looks up a given table with BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID, and zeroes tbid', () => {
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', flags: FLAGS.DIRECT | FLAGS.TBID, tbid: 100 })).toMatchObject({ rc: RET.SUCCESS, ifindex: 9, vlan: 0 });
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', flags: FLAGS.DIRECT | FLAGS.TBID, tbid: 55 })).toMatchObject({ rc: RET.NOT_FWDED, vlan: 0 });
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', flags: FLAGS.DIRECT })).toMatchObject({ rc: RET.SUCCESS, ifindex: 3 });
  });

  it('sets the preferred source with BPF_FIB_LOOKUP_SRC', () => {
    expect(lookup(s, 'xdp_fib', { dst: '10.1.2.3', flags: FLAGS.SRC }).src).toBe('10.1.0.1');
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', flags: FLAGS.SRC }).src).toBe('0.0.0.0');
    expect(lookup(s, 'xdp_fib', { dst: '2001:db8::5', flags: FLAGS.SRC }).rc).toBe(RET.NO_SRC_ADDR);
  });

  it('routes IPv6, never link-local, and IPv4 through an IPv6 gateway', () => {
    expect(lookup(s, 'xdp_fib', { dst: '2001:db8::5' })).toMatchObject({ rc: RET.SUCCESS, family: 10, ifindex: 7, dst: '2001:db8::ff', dmac: 'aa:bb:cc:00:00:07' });
    expect(lookup(s, 'xdp_fib', { dst: 'fe80::1' }).rc).toBe(RET.NOT_FWDED);
    expect(lookup(s, 'xdp_fib', { dst: '2001:db8::5', src: 'fe80::2' }).rc).toBe(RET.NOT_FWDED);
    expect(lookup(s, 'xdp_fib', { dst: '203.0.113.9' })).toMatchObject({ rc: RET.SUCCESS, family: 10, dst: '2001:db8::1', ifindex: 8 });
  });

  it('returns -EINVAL, -EAFNOSUPPORT and -ENODEV for the arguments the kernel refuses', () => {
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', flags: 64 }).rc).toBe(-22);
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', family: 3 }).rc).toBe(-97);
    expect(lookup(s, 'xdp_fib', { dst: '10.2.3.4', ifindex: 0 }).rc).toBe(-19);
    expect(s.run('xdp_fib_short', { packet: new Uint8Array(60) }).retval | 0).toBe(-22);
  });

  it('names the route and field of a bad route table', () => {
    expect(() => session([{ prefix: '10.0.0.0', ifindex: 1 }])).toThrow(/fib route 0: prefix '10\.0\.0\.0' is not ADDRESS\/LENGTH/);
    expect(() => session([ROUTES[0]!, { prefix: '10.0.0.0/33', ifindex: 1 }])).toThrow(/fib route 1: prefix length 33 is longer than the address/);
    expect(() => session([{ prefix: '10.0.0.0/8', ifindex: 0 }])).toThrow(/fib route 0: ifindex 0 is not a device index/);
    expect(() => session([{ prefix: '10.0.0.0/8', ifindex: 1, dmac: 'zz' }])).toThrow(/fib route 0: invalid MAC address 'zz'/);
    expect(() => session([{ prefix: '10.0.0.0/8', ifindex: 1, type: 'local' as never }])).toThrow(/fib route 0: type 'local'/);
  });
});
