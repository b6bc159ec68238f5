// LD_ABS / LD_IND in sessions: classic BPF filters translated to eBPF run as socket filters (and
// tc programs) in a Session, and must return what the reference classic BPF interpreter
// returns on the same packets. The session's skb is a packet socket's view (data at the
// Ethernet header, the network header right after it), which is what tcpdump's filters and the
// reference interpreter assume.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cbpfToEbpf } from '../../cbpf/convert.js';
import { parseCbpfDump } from '../../cbpf/parse.js';
import { referenceCbpfRun, type SkbMeta } from '../../cbpf/reference.js';
import type { CbpfInsn } from '../../cbpf/insn.js';
import { programFromBytecode } from '../../engine/vm.js';
import { arp, ethernet, icmpEcho, ipv4, ipv6, tcp, udp, vlan } from '../../packet/build.js';
import type { ProgType } from '../../program.js';
import { Session } from '../session.js';

const prog = (...lines: string[]): CbpfInsn[] => parseCbpfDump(`${lines.length}\n${lines.join('\n')}`);
const NET = (k: number) => 0x100000000 - 0x100000 + k;
const LL = (k: number) => 0x100000000 - 0x200000 + k;
const AD = (k: number) => 0xfffff000 + k;

/** Filters exercising every kind of packet load and the skb fields classic BPF reads. */
const FILTERS: Record<string, CbpfInsn[]> = {
  // ldh [12]; jeq #0x800: ldb [23] (IP protocol); ret a
  ipProto: prog('40 0 0 12', '21 0 2 2048', '48 0 0 23', '22 0 0 0', '6 0 0 0'),
  // ld [26] (the IPv4 source address), ld [len - 4] through X
  words: prog('32 0 0 26', '7 0 0 0', '128 0 0 0', '20 0 0 4', '7 0 0 0', '64 0 0 0', '12 0 0 0', '22 0 0 0'),
  // network- and link-relative loads
  relative: prog(`48 0 0 ${NET(9)}`, '7 0 0 0', `40 0 0 ${LL(12)}`, '12 0 0 0', '7 0 0 0', `32 0 0 ${NET(16)}`, '12 0 0 0', '22 0 0 0'),
  // a network-relative load near the end of short packets, one far past any packet
  relativeEnd: prog(`40 0 0 ${NET(40)}`, '21 0 1 0', '6 0 0 5', `48 0 0 ${NET(4000)}`, '6 0 0 1'),
  // ldxb 4*([14]&0xf); ldh [x + 14]; ldb [x - 1]
  msh: prog('177 0 0 14', '72 0 0 14', '7 0 0 0', `80 0 0 ${0xffffffff}`, '12 0 0 0', '22 0 0 0'),
  // loads that start before the link header or far before it
  beforeStart: prog(`48 0 0 ${LL(0)}`, '7 0 0 0', `48 0 0 ${0x100000000 - 0x200001}`, '12 0 0 0', '22 0 0 0'),
  // ancillary: protocol, packet type, ifindex, mark, length, queue, vlan present, hash, CPU, vlan tag and TPID
  ancillary: prog(`32 0 0 ${AD(0)}`, '7 0 0 0', `32 0 0 ${AD(4)}`, '12 0 0 0', '7 0 0 0', `32 0 0 ${AD(8)}`, '12 0 0 0', '7 0 0 0', `32 0 0 ${AD(20)}`, '12 0 0 0', '7 0 0 0', '129 0 0 0', '12 0 0 0', '7 0 0 0', `32 0 0 ${AD(24)}`, '12 0 0 0', '7 0 0 0', `32 0 0 ${AD(48)}`, '12 0 0 0', '7 0 0 0', `32 0 0 ${AD(32)}`, '12 0 0 0', '7 0 0 0', `32 0 0 ${AD(36)}`, '12 0 0 0', '7 0 0 0', `32 0 0 ${AD(44)}`, '12 0 0 0', '7 0 0 0', `32 0 0 ${AD(60)}`, '12 0 0 0', '22 0 0 0'),
  // indirect word load with X from the packet (may run past the end)
  indirect: prog('48 0 0 15', '7 0 0 0', '64 0 0 20', '22 0 0 0'),
};

const TCPDUMP = '/usr/bin/tcpdump';
const TCPDUMP_FILTERS = ['ip', 'ip6', 'arp', 'tcp port 80', 'udp and dst port 53', 'vlan 100 and ip', 'tcp[tcpflags] & tcp-syn != 0', 'ip[2:2] > 60', 'len > 100', 'icmp6', 'ip[6:2] & 0x1fff != 0', 'ether[0] & 1 = 1'];

function packets(): Uint8Array[] {
  const frames = [
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp({ sport: 1234, dport: 80, flags: 'S' }) }) }),
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.1', dst: '8.8.8.8', proto: 17, payload: udp({ sport: 5353, dport: 53, payload: new Uint8Array(40) }) }) }),
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.5', dst: '10.0.0.1', proto: 1, payload: icmpEcho({ id: 1, seq: 1, payload: new Uint8Array(70) }) }) }),
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.5', dst: '10.0.0.1', proto: 17, fragOffset: 1480, payload: new Uint8Array(20) }) }),
    ethernet({ type: 0x86dd, payload: ipv6({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: 58, payload: icmpEcho({ id: 1, seq: 2, v6: true }) }) }),
    ethernet({ dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806, payload: arp({ op: 'request', sha: '02:00:00:00:00:01', spa: '10.0.0.1', tpa: '10.0.0.2' }) }),
    ethernet({ type: 0x8100, payload: vlan({ vid: 100, type: 0x0800, payload: ipv4({ src: '10.0.0.1', dst: '10.0.0.3', proto: 17, payload: udp({ sport: 1, dport: 53 }) }) }) }),
    ethernet({ dst: '00:00:00:00:00:00', type: 0x88cc, payload: new Uint8Array(2) }),
  ];
  // Cut and mutated copies, deterministically, for the out-of-range paths.
  let seed = 11;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const out = [...frames];
  for (let i = 0; i < 80; i++) {
    const base = frames[i % frames.length]!;
    const f = base.slice(0, 14 + rand(base.length - 13));
    for (let k = rand(4); k > 0; k--) f[rand(f.length)] = rand(256);
    out.push(f);
  }
  return out;
}

/** What the reference interpreter needs to know of the session's skb. */
function meta(frame: Uint8Array, mark: number): SkbMeta {
  const dst = frame.subarray(0, 6);
  return {
    protocol: frame.length >= 14 ? (frame[12]! << 8) | frame[13]! : 0,
    pktType: dst.every((b) => b === 0) ? 0 : dst[0]! & 1 ? 2 : 3,
    ifindex: 1,
    mark,
  };
}

function runAll(type: ProgType, filters: [string, CbpfInsn[]][]): { runs: number; accepted: number } {
  let runs = 0;
  let accepted = 0;
  for (const [name, insns] of filters) {
    const session = new Session([{ ...programFromBytecode(cbpfToEbpf(insns, name), 'filter'), type }], []);
    packets().forEach((pkt, i) => {
      if (pkt.length < 14) return;
      const mark = i * 0x01010101;
      const out = session.run('filter', { packet: pkt, ctx: { mark } });
      expect(out.fault, `${name} on packet ${i}`).toBeUndefined();
      const want = referenceCbpfRun(insns, pkt, meta(pkt, mark));
      expect(out.retval, `${name} on packet ${i}`).toBe(want);
      runs++;
      if (want) accepted++;
    });
  }
  return { runs, accepted };
}

describe('LD_ABS and LD_IND in sessions', () => {
  const filters: [string, CbpfInsn[]][] = Object.entries(FILTERS);
  if (existsSync(TCPDUMP)) {
    for (const f of TCPDUMP_FILTERS) filters.push([f, parseCbpfDump(execFileSync(TCPDUMP, ['-ddd', '-y', 'EN10MB', f], { encoding: 'utf8' }), f)]);
  } else console.log('tcpdump not found: checking the hand-written filters only');

  it('socket filters return what the reference classic BPF interpreter returns', () => {
    const { runs, accepted } = runAll('socket', filters);
    // The comparison means something only when verdicts vary.
    expect(accepted).toBeGreaterThan(runs / 10);
    expect(accepted).toBeLessThan(runs);
  });

  it('tc programs see the same packet', () => {
    runAll('tc', filters);
  });

  it('a load past the packet ends the program with 0, also after the program set r0', () => {
    // r0 = 7; ldw [len - 2] is out of range: the program returns 0, not 7.
    const session = new Session([{ ...programFromBytecode(cbpfToEbpf(prog('6 0 0 7')), 'f'), type: 'socket' }], []);
    expect(session.run('f', { packet: new Uint8Array(20) }).retval).toBe(7);
    const cut = new Session([{ ...programFromBytecode(cbpfToEbpf(prog('32 0 0 18', '6 0 0 7')), 'f'), type: 'socket' }], []);
    expect(cut.run('f', { packet: new Uint8Array(20) }).retval).toBe(0);
    expect(cut.run('f', { packet: new Uint8Array(22) }).retval).toBe(7);
  });
});
