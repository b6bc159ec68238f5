import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatIpv6, parseIpv6 } from './addr.js';
import { arp, ethernet, icmpEcho, ipv4, ipv6, tcp, udp, vlan } from './build.js';
import { internetChecksum, onesComplementSum } from './checksum.js';
import { decodePacket, summarizePacket, verifyChecksums, type PacketLayer } from './decode.js';
import { writePcap } from './pcap.js';

const TCPDUMP = '/usr/bin/tcpdump';
const hasTcpdump = existsSync(TCPDUMP);
if (!hasTcpdump) console.warn('tcpdump not found at /usr/bin/tcpdump: skipping the tests that compare with it');

const work = mkdtempSync(join(tmpdir(), 'rewind-decode-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** tcpdump's text for each packet (continuation lines joined), with -t: no timestamps. */
function tcpdumpLines(frames: Uint8Array[], args: string[]): string[] {
  const file = join(work, `p${Math.random().toString(36).slice(2)}.pcap`);
  writeFileSync(file, writePcap(frames.map((data) => ({ timestampNs: 0n, data }))));
  const out = execFileSync(TCPDUMP, ['-r', file, '-n', '-t', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const packets: string[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    if (/^\s/.test(line)) packets[packets.length - 1] += ` ${line.trim()}`;
    else packets.push(line);
  }
  return packets;
}

const eth4 = (payload: Uint8Array): Uint8Array => ethernet({ type: 0x0800, payload });
const eth6 = (payload: Uint8Array): Uint8Array => ethernet({ type: 0x86dd, payload });
const bytes = (n: number, fill = 0xab): Uint8Array => new Uint8Array(n).fill(fill);

const samples: Record<string, Uint8Array> = {
  tcpSynOptions: eth4(
    ipv4({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      proto: 6,
      payload: tcp({
        sport: 41000,
        dport: 80,
        flags: 'S',
        seq: 1000,
        options: [{ kind: 'mss', value: 1460 }, { kind: 'sackOk' }, { kind: 'timestamp', value: 7, echo: 0 }, { kind: 'nop' }, { kind: 'wscale', shift: 7 }],
      }),
    }),
  ),
  tcpSack: eth4(
    ipv4({
      src: '10.0.0.2',
      dst: '10.0.0.1',
      proto: 6,
      payload: tcp({
        sport: 80,
        dport: 41000,
        flags: 'P.',
        seq: 5,
        ack: 9,
        options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: [[100, 200], [300, 400]] }],
        payload: bytes(7),
      }),
    }),
  ),
  tcpIpOptions: eth4(ipv4({ src: '10.9.8.7', dst: '10.0.0.1', proto: 6, options: Uint8Array.of(148, 4, 0, 0), payload: tcp({ sport: 1, dport: 2, flags: 'F.' }) })),
  udpOddLength: eth4(ipv4({ src: '192.168.1.10', dst: '192.168.1.20', proto: 17, payload: udp({ sport: 40000, dport: 9999, payload: bytes(5) }) })),
  icmpEcho: eth4(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 1, payload: icmpEcho({ id: 7, seq: 3, payload: bytes(56) }) })),
  tcp6: eth6(ipv6({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: 6, payload: tcp({ sport: 443, dport: 50000, flags: 'S.', seq: 1, ack: 2 }) })),
  icmp6Echo: eth6(ipv6({ src: 'fe80::1', dst: 'ff02::1', nextHeader: 58, payload: icmpEcho({ id: 1, seq: 2, v6: true, payload: bytes(9) }) })),
  udp6Extensions: eth6(
    ipv6({
      src: '2001:db8::1',
      dst: '2001:db8::aa',
      nextHeader: 17,
      extensions: [
        { type: 'hopopts', options: Uint8Array.of(5, 2, 0, 0) },
        { type: 'routing', routingType: 4, segmentsLeft: 1, addresses: ['2001:db8::99', '2001:db8::aa'] },
        { type: 'dstopts' },
      ],
      payload: udp({ sport: 30000, dport: 30001, payload: bytes(3) }),
    }),
  ),
  vlanStacked: ethernet({
    type: 0x88a8,
    payload: vlan({ vid: 100, type: 0x8100, payload: vlan({ vid: 200, pcp: 5, type: 0x0800, payload: ipv4({ src: '10.1.0.1', dst: '10.1.0.2', proto: 17, payload: udp({ sport: 7000, dport: 7001 }) }) }) }),
  }),
};

describe('internetChecksum', () => {
  it('matches the RFC 1071 section 3 worked example', () => {
    const data = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(onesComplementSum(data)).toBe(0xddf2);
    expect(internetChecksum(data)).toBe(0x220d);
  });

  it('chains partial sums and pads an odd byte', () => {
    const data = Uint8Array.of(0x12, 0x34, 0x56, 0x78, 0x9a);
    expect(internetChecksum(data.subarray(2), onesComplementSum(data.subarray(0, 2)))).toBe(internetChecksum(data));
    expect(onesComplementSum(Uint8Array.of(0x9a))).toBe(0x9a00);
  });

  it('is zero over a header that carries its own checksum', () => {
    const ip = ipv4({ src: '1.2.3.4', dst: '5.6.7.8', proto: 17 });
    expect(internetChecksum(ip.subarray(0, 20))).toBe(0);
  });
});

describe.skipIf(!hasTcpdump)('checksums agree with tcpdump -vv', () => {
  const names = Object.keys(samples);
  const frames = Object.values(samples);

  it('tcpdump finds every built checksum correct, and so do we', () => {
    const lines = tcpdumpLines(frames, ['-vv']);
    expect(lines).toHaveLength(frames.length);
    lines.forEach((line, i) => {
      expect(line, names[i]).not.toMatch(/bad|incorrect|wrong/);
      const checks = verifyChecksums(frames[i]!);
      expect(checks.length, names[i]).toBeGreaterThan(0);
      expect(checks.every((c) => c.ok), names[i]).toBe(true);
    });
  });

  it('on a damaged checksum, the value we expect is the one tcpdump computes', () => {
    // Flip one bit of each checksum field in turn; tcpdump prints "-> <expected>".
    const damaged: { frame: Uint8Array; name: string; layer: string }[] = [];
    frames.forEach((frame, i) => {
      for (const c of verifyChecksums(frame)) {
        const f = frame.slice();
        f[c.offset + 1]! ^= 0x04;
        damaged.push({ frame: f, name: `${names[i]} ${c.layer}`, layer: c.layer });
      }
    });
    const lines = tcpdumpLines(
      damaged.map((d) => d.frame),
      ['-vv'],
    );
    lines.forEach((line, i) => {
      const theirs = [...line.matchAll(/->\s*(?:0x)?([0-9a-f]{1,4})/g)].map((m) => parseInt(m[1]!, 16));
      const ours = verifyChecksums(damaged[i]!.frame).filter((c) => !c.ok);
      expect(ours.map((c) => c.layer), damaged[i]!.name).toEqual([damaged[i]!.layer]);
      expect(ours.map((c) => c.expected), damaged[i]!.name).toEqual(theirs);
    });
  });
});

describe.skipIf(!hasTcpdump)('summaries agree with tcpdump', () => {
  it('addresses, ports, TCP flags and IP length', () => {
    const frames = [samples.tcpSynOptions!, samples.tcpSack!, samples.tcpIpOptions!, samples.udpOddLength!, samples.tcp6!];
    const lines = tcpdumpLines(frames, ['-v', '-S']);
    lines.forEach((line, i) => {
      const ours = summarizePacket(frames[i]!);
      const m = /^(IPv[46]) \[?([\d.a-f:]+?)\]?:(\d+) → \[?([\d.a-f:]+?)\]?:(\d+) (TCP|UDP)(?: \[([^\]]+)\])? len (\d+)$/.exec(ours);
      expect(m, ours).not.toBeNull();
      const [, , src, sport, dst, dport, proto, flags, len] = m!;
      expect(line).toContain(`${src}.${sport} > ${dst}.${dport}:`);
      if (proto === 'TCP') expect(line).toContain(`Flags [${flags}]`);
      // IPv4: "(... length 60)"; IPv6: "payload length: 20" (ours counts the 40-byte header).
      if (ours.startsWith('IPv4')) expect(line).toMatch(new RegExp(`length ${len}[,)]`));
      else expect(line).toContain(`payload length: ${Number(len) - 40}`);
    });
  });

  it('TCP options as tcpdump names them', () => {
    const [line] = tcpdumpLines([samples.tcpSack!], ['-S']);
    expect(line).toContain('sack 2 {100:200}{300:400}');
    const tcpLayer = decodePacket(samples.tcpSack!).find((l) => l.name === 'tcp')!;
    expect(tcpLayer.fields.find((f) => f.name === 'option SACK')!.value).toBe('100-200 300-400');
    const [syn] = tcpdumpLines([samples.tcpSynOptions!], []);
    expect(syn).toContain('options [mss 1460,sackOK,TS val 7 ecr 0,nop,wscale 7]');
    const opts = decodePacket(samples.tcpSynOptions!)
      .find((l) => l.name === 'tcp')!
      .fields.filter((f) => f.name.startsWith('option'))
      .map((f) => `${f.name}=${f.value}`);
    expect(opts).toEqual(['option MSS=1460', 'option SACK permitted=', 'option timestamp=val 7 ecr 0', 'option NOP=', 'option window scale=7 (×128)']);
  });
});

const field = (layers: PacketLayer[], layer: string, name: string): { value: string; offset: number; length: number } => {
  const l = layers.find((x) => x.name === layer);
  const f = l?.fields.find((x) => x.name === name);
  if (!f) throw new Error(`no field ${layer}.${name}`);
  return f;
};

describe('decodePacket', () => {
  it('lays out Ethernet/IPv4/TCP with byte ranges per field', () => {
    const layers = decodePacket(samples.tcpSynOptions!);
    expect(layers.map((l) => [l.name, l.offset, l.length])).toEqual([
      ['ethernet', 0, 14],
      ['ipv4', 14, 20],
      ['tcp', 34, 40],
    ]);
    expect(field(layers, 'ipv4', 'ttl')).toEqual({ name: 'ttl', value: '64', offset: 22, length: 1 });
    expect(field(layers, 'ipv4', 'source')).toMatchObject({ value: '10.0.0.1', offset: 26, length: 4 });
    expect(field(layers, 'tcp', 'destination port')).toMatchObject({ value: '80', offset: 36, length: 2 });
    expect(field(layers, 'tcp', 'flags').value).toBe('[S] (0x002)');
    expect(field(layers, 'tcp', 'option MSS')).toMatchObject({ offset: 54, length: 4 });
    expect(field(layers, 'tcp', 'checksum').value).toMatch(/\(correct\)$/);
    expect(layers[2]!.summary).toBe('TCP 41000 → 80 [S], seq 1000, win 65535, len 0');
  });

  it('walks stacked VLAN tags', () => {
    const layers = decodePacket(samples.vlanStacked!);
    expect(layers.map((l) => l.name)).toEqual(['ethernet', 'vlan', 'vlan', 'ipv4', 'udp']);
    expect(layers[1]!.summary).toBe('802.1ad VLAN 100, pcp 0, 802.1Q (0x8100)');
    expect(field(layers.slice(2), 'vlan', 'priority').value).toBe('5');
    expect(summarizePacket(samples.vlanStacked!)).toBe('VLAN 100 VLAN 200 IPv4 10.1.0.1:7000 → 10.1.0.2:7001 UDP len 28');
  });

  it('walks IPv6 extension headers and checks UDP against the final destination', () => {
    const layers = decodePacket(samples.udp6Extensions!);
    expect(layers.map((l) => l.name)).toEqual(['ethernet', 'ipv6', 'hopopts', 'routing', 'dstopts', 'udp', 'payload']);
    expect(field(layers, 'routing', 'segment 0').value).toBe('2001:db8::99');
    expect(field(layers, 'hopopts', 'option router alert').value).toBe('0000');
    expect(field(layers, 'udp', 'checksum').value).toMatch(/\(correct\)$/);
  });

  it('IPv6 fragments: the first is decoded, later ones are fragment data', () => {
    const first = eth6(ipv6({ src: '::1', dst: '::2', nextHeader: 17, extensions: [{ type: 'fragment', offset: 0, more: true, id: 5 }], payload: udp({ sport: 1, dport: 2, payload: bytes(8) }) }));
    const later = eth6(ipv6({ src: '::1', dst: '::2', nextHeader: 17, extensions: [{ type: 'fragment', offset: 16, id: 5 }], payload: bytes(8) }));
    expect(decodePacket(first).map((l) => l.name)).toEqual(['ethernet', 'ipv6', 'fragment', 'udp', 'payload']);
    expect(field(decodePacket(first), 'udp', 'checksum').value).toMatch(/unverified: fragment/);
    expect(decodePacket(later).map((l) => l.name)).toEqual(['ethernet', 'ipv6', 'fragment', 'payload']);
    expect(summarizePacket(later)).toBe('IPv6 ::1 → ::2 UDP fragment id 5 off 16 len 56');
  });

  it('IPv4 fragments and link padding', () => {
    const later = eth4(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, id: 77, fragOffset: 24, payload: bytes(8) }));
    const padded = new Uint8Array(60);
    padded.set(later);
    const layers = decodePacket(padded);
    expect(layers.map((l) => [l.name, l.offset, l.length])).toEqual([
      ['ethernet', 0, 14],
      ['ipv4', 14, 20],
      ['payload', 34, 8],
      ['trailer', 42, 18],
    ]);
    expect(field(layers, 'ipv4', 'fragment offset').value).toBe('24');
    expect(summarizePacket(padded)).toBe('IPv4 10.0.0.1 → 10.0.0.2 UDP fragment id 77 off 24 len 28');
  });

  it('ARP, ICMP and ICMPv6', () => {
    const a = ethernet({ type: 0x0806, payload: arp({ op: 'reply', sha: '02:00:00:00:00:09', spa: '10.0.0.9', tha: '02:00:00:00:00:01', tpa: '10.0.0.1' }) });
    expect(summarizePacket(a)).toBe('ARP reply 10.0.0.9 is-at 02:00:00:00:00:09');
    expect(field(decodePacket(a), 'arp', 'target protocol address')).toMatchObject({ value: '10.0.0.1', offset: 38, length: 4 });
    expect(summarizePacket(samples.icmpEcho!)).toBe('IPv4 10.0.0.1 → 10.0.0.2 ICMP echo request id 7 seq 3 len 84');
    expect(summarizePacket(samples.icmp6Echo!)).toBe('IPv6 fe80::1 → ff02::1 ICMPv6 echo request id 1 seq 2 len 57');
  });

  it('IP-in-IP shows the outer header before the inner one', () => {
    const inner = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp({ sport: 1, dport: 80, flags: 'S' }) });
    const outer = eth4(ipv4({ src: '192.168.0.1', dst: '192.168.0.9', proto: 4, payload: inner }));
    expect(decodePacket(outer).map((l) => l.name)).toEqual(['ethernet', 'ipv4', 'ipv4', 'tcp']);
    expect(summarizePacket(outer)).toBe('IPv4 192.168.0.1 → 192.168.0.9 [IPIP] IPv4 10.0.0.1:1 → 10.0.0.2:80 TCP [S] len 40');
    expect(verifyChecksums(outer).map((c) => [c.layer, c.ok])).toEqual([
      ['ipv4', true],
      ['ipv4', true],
      ['tcp', true],
    ]);
  });

  it('reports malformed headers without throwing', () => {
    const bad = samples.tcpSynOptions!.slice();
    bad[14] = 0x44; // IHL 4: 16 bytes
    const layers = decodePacket(bad);
    expect(layers.at(-1)!.error).toBe('header length 16 is below 20');
    expect(summarizePacket(bad)).toMatch(/\[malformed: header length 16 is below 20\]$/);
  });

  it('every truncation decodes without throwing and marks the cut layer', () => {
    for (const [name, frame] of Object.entries(samples)) {
      const full = decodePacket(frame);
      const headerEnd = Math.max(...full.filter((l) => l.name !== 'payload').map((l) => l.offset + l.length));
      for (let len = 0; len < frame.length; len++) {
        const cut = frame.subarray(0, len);
        const layers = decodePacket(cut);
        const summary = summarizePacket(cut);
        for (const l of layers) for (const f of l.fields) expect(f.offset + f.length, `${name}@${len}`).toBeLessThanOrEqual(len);
        if (len < headerEnd) {
          expect(layers.some((l) => l.truncated), `${name}@${len}`).toBe(true);
          expect(summary, `${name}@${len}`).toContain('[truncated]');
        } else {
          expect(layers.some((l) => l.truncated), `${name}@${len}`).toBe(false);
        }
      }
    }
  });

  it('survives random bytes', () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let i = 0; i < 2000; i++) {
      const frame = Object.values(samples)[i % Object.keys(samples).length]!.slice();
      for (let k = 0; k < 6; k++) frame[rand() % frame.length] = rand();
      expect(() => summarizePacket(frame)).not.toThrow();
    }
  });
});

describe('IPv6 text form', () => {
  it('follows the RFC 5952 examples', () => {
    const cases: [string, string][] = [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longer run wins
      ['0:0:0:0:0:0:0:0', '::'],
      ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ];
    for (const [input, canonical] of cases) expect(formatIpv6(parseIpv6(input))).toBe(canonical);
    expect(() => parseIpv6('1::2::3')).toThrow("invalid IPv6 address '1::2::3'");
  });
});
