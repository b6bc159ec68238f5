// Builds the example captures and expected.json, the verdict each example is designed to give
// each packet. Run from the repository root after `npx tsc -b` (it uses the VM's packet
// builders): `node examples/pcaps/make-pcaps.mjs`. The output is the same on every run.
//
//   mixed.pcap      xdp-firewall, tail-pipeline, ringbuf-events: a bit of everything
//   lb.pcap         l4-lb: VIP flows and traffic that is not for a VIP
//   syn-flood.pcap  tc-ratelimit: SYN bursts from a few sources, close together in time
//   parser.pcap     pkt-parser: IPv6 extension headers, TCP options, malformed packets
//   events.pcapng   ringbuf-events, as pcapng with nanosecond timestamps
//   any-sll2.pcap   xdp-firewall, as `tcpdump -i any` writes it (LINKTYPE_LINUX_SLL2)
//
// Addresses come from the documentation ranges: 10.0.0.0/24 are clients, 192.0.2.10 and
// 192.0.2.20 are VIPs, 198.51.100.0/24 is the prefix xdp-firewall blocks by default,
// 203.0.113.0/24 and 192.0.2.128/25 are blocked by its maps.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LINKTYPE_LINUX_SLL2,
  arp,
  ethernet,
  icmpEcho,
  ipv4,
  ipv6,
  tcp,
  udp,
  vlan,
  writePcap,
} from '../../packages/vm/dist/packet/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));

const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const ETH_P_IPV6 = 0x86dd;
const TCP = 6;
const UDP = 17;
const ICMP = 1;
const ICMPV6 = 58;

/** A client's MAC; frames go from 02:00:00:00:00:01 to 02:00:00:00:00:02, the builders' defaults. */
const CLIENT_MAC = '02:00:00:00:00:01';

const bytes = (...v) => Uint8Array.from(v);
const text = (s) => new TextEncoder().encode(s);

const v4 = (src, dst, proto, payload, extra = {}) => ethernet({ type: ETH_P_IP, payload: ipv4({ src, dst, proto, payload, ...extra }) });
const tcp4 = (src, dst, seg, extra) => v4(src, dst, TCP, tcp(seg), extra);
const udp4 = (src, dst, sport, dport, payload, extra) => v4(src, dst, UDP, udp({ sport, dport, payload }), extra);
const v6 = (src, dst, nextHeader, payload, extensions) =>
  ethernet({ type: ETH_P_IPV6, payload: ipv6({ src, dst, nextHeader, payload, extensions }) });
const arpRequest = (spa, tpa) => ethernet({ dst: 'ff:ff:ff:ff:ff:ff', type: ETH_P_ARP, payload: arp({ op: 'request', sha: CLIENT_MAC, spa, tpa }) });

const SYN_OPTIONS = [{ kind: 'mss', value: 1460 }, { kind: 'sackOk' }, { kind: 'timestamp', value: 1000, echo: 0 }, { kind: 'nop' }, { kind: 'wscale', shift: 7 }];

/** A DNS query (RFC 1035 4.1) for `name`, type A, class IN. */
function dnsQuery(id, name) {
  const labels = name.split('.').flatMap((l) => [l.length, ...text(l)]);
  return bytes(id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1);
}

/** Overwrites bytes of a built frame, for headers the builders are too careful to make. */
function patch(frame, at, ...values) {
  const out = frame.slice();
  out.set(values, at);
  return out;
}

// What ringbuf-events reports for a packet: a ring buffer record of either type, or a line in
// the kernel's trace buffer.
const SYN = 'EVENT_TCP_SYN';
const DNS = 'EVENT_DNS_QUERY';
const PRINTK = 'bpf_printk';

const PASS = 'XDP_PASS';
const DROP = 'XDP_DROP';
const TX = 'XDP_TX';
const OK = 'TC_ACT_OK';
const SHOT = 'TC_ACT_SHOT';

// Each packet: at (seconds from the capture's start), desc, frame, expect (example → verdict),
// and for ringbuf-events the event it reports, if any. "xdp-firewall+maps" and "l4-lb+maps"
// are runs with the example's maps.json loaded.

function fw(plain, withMaps = plain) {
  return { 'xdp-firewall': plain, 'xdp-firewall+maps': withMaps };
}

const mixed = [
  { desc: 'TCP SYN 10.0.0.1 → 192.0.2.10:80', event: SYN, frame: tcp4('10.0.0.1', '192.0.2.10', { sport: 40000, dport: 80, flags: 'S', seq: 1000, options: SYN_OPTIONS }), expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'TCP data 10.0.0.1 → 192.0.2.10:80', frame: tcp4('10.0.0.1', '192.0.2.10', { sport: 40000, dport: 80, flags: 'P.', seq: 1001, ack: 5001, payload: text('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n') }), expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'UDP DNS query 10.0.0.2 → 192.0.2.53:53 (example.com)', event: DNS, frame: udp4('10.0.0.2', '192.0.2.53', 5353, 53, dnsQuery(0x1234, 'example.com')), expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'ICMP echo request 10.0.0.3 → 10.0.0.1', event: PRINTK, frame: v4('10.0.0.3', '10.0.0.1', ICMP, icmpEcho({ id: 7, seq: 1, payload: text('ping') })), expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'TCP SYN 198.51.100.7 → 10.0.0.1:22 (default blocked prefix)', event: SYN, frame: tcp4('198.51.100.7', '10.0.0.1', { sport: 51000, dport: 22, flags: 'S' }), expect: { ...fw(DROP), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'UDP NTP 203.0.113.9 → 10.0.0.1:123 (prefix blocked by maps.json)', frame: udp4('203.0.113.9', '10.0.0.1', 123, 123, new Uint8Array(48)), expect: { ...fw(PASS, DROP), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'TCP SYN 10.0.0.4 → 10.0.0.1:23 (default denied port, telnet)', event: SYN, frame: tcp4('10.0.0.4', '10.0.0.1', { sport: 40100, dport: 23, flags: 'S' }), expect: { ...fw(DROP), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'TCP SYN 10.0.0.5 → 10.0.0.1:3389 (port denied by maps.json)', event: SYN, frame: tcp4('10.0.0.5', '10.0.0.1', { sport: 40200, dport: 3389, flags: 'S' }), expect: { ...fw(PASS, DROP), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'IPv6 TCP SYN [2001:db8::1] → [2001:db8::2]:443', frame: v6('2001:db8::1', '2001:db8::2', TCP, tcp({ sport: 40300, dport: 443, flags: 'S' })), expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'VLAN 100, UDP 198.51.100.200 → 10.0.0.1:53 (default blocked prefix)', frame: ethernet({ type: ETH_P_8021Q, payload: vlan({ vid: 100, type: ETH_P_IP, payload: ipv4({ src: '198.51.100.200', dst: '10.0.0.1', proto: UDP, payload: udp({ sport: 5000, dport: 53, payload: dnsQuery(1, 'a.example') }) }) }) }), expect: { ...fw(DROP), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'VLAN 100, UDP syslog 10.0.0.6 → 10.0.0.1:514', frame: ethernet({ type: ETH_P_8021Q, payload: vlan({ vid: 100, type: ETH_P_IP, payload: ipv4({ src: '10.0.0.6', dst: '10.0.0.1', proto: UDP, payload: udp({ sport: 514, dport: 514, payload: text('<13>hello') }) }) }) }), expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'QinQ (802.1ad 10, 802.1Q 20), TCP SYN 198.51.100.1 → 10.0.0.1:80', frame: ethernet({ type: ETH_P_8021AD, payload: vlan({ vid: 10, type: ETH_P_8021Q, payload: vlan({ vid: 20, type: ETH_P_IP, payload: ipv4({ src: '198.51.100.1', dst: '10.0.0.1', proto: TCP, payload: tcp({ sport: 40400, dport: 80, flags: 'S' }) }) }) }) }), expect: { ...fw(DROP), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'ARP who-has 10.0.0.1 tell 10.0.0.3', frame: arpRequest('10.0.0.3', '10.0.0.1'), expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'IPv4 header cut after 12 bytes', frame: tcp4('10.0.0.1', '10.0.0.2', { sport: 1, dport: 2 }).slice(0, 14 + 12), expect: { ...fw(DROP), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  { desc: 'ICMP echo request 192.0.2.200 → 10.0.0.1 (prefix blocked by maps.json)', event: PRINTK, frame: v4('192.0.2.200', '10.0.0.1', ICMP, icmpEcho({ id: 9, seq: 4 })), expect: { ...fw(PASS, DROP), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
  {
    desc: 'IPv4 later fragment (offset 1480) of TCP 10.0.0.7 → 10.0.0.1, payload bytes where a port 23 would be',
    frame: v4('10.0.0.7', '10.0.0.1', TCP, bytes(0x00, 0x00, 0x00, 0x17, ...new Uint8Array(36)), { id: 0x4242, fragOffset: 1480 }),
    expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS },
  },
  { desc: 'UDP 10.0.0.8 → 10.0.0.1:19 (chargen)', frame: udp4('10.0.0.8', '10.0.0.1', 40500, 19, text('x')), expect: { ...fw(PASS), 'tail-pipeline': DROP, 'ringbuf-events': PASS } },
  { desc: 'UDP traceroute probe, TTL 1, 10.0.0.9 → 10.0.0.1:33434', frame: udp4('10.0.0.9', '10.0.0.1', 40600, 33434, new Uint8Array(12), { ttl: 1 }), expect: { ...fw(PASS), 'tail-pipeline': DROP, 'ringbuf-events': PASS } },
  { desc: 'TCP SYN, TTL 1, 10.0.0.10 → 10.0.0.1:80', event: SYN, frame: tcp4('10.0.0.10', '10.0.0.1', { sport: 40700, dport: 80, flags: 'S' }, { ttl: 1 }), expect: { ...fw(PASS), 'tail-pipeline': DROP, 'ringbuf-events': PASS } },
  { desc: 'TCP SYN-ACK 10.0.0.1:80 → 10.0.0.20:40001', frame: tcp4('10.0.0.1', '10.0.0.20', { sport: 80, dport: 40001, flags: 'S.', seq: 9000, ack: 1 }), expect: { ...fw(PASS), 'tail-pipeline': PASS, 'ringbuf-events': PASS } },
].map((p, i) => ({ at: i * 0.010, ...p }));

const lbExpect = (plain, withMaps = plain) => ({ 'l4-lb': plain, 'l4-lb+maps': withMaps });
const lb = [
  { desc: 'TCP SYN 10.0.0.1:40000 → VIP 192.0.2.10:80', frame: tcp4('10.0.0.1', '192.0.2.10', { sport: 40000, dport: 80, flags: 'S', seq: 100, options: SYN_OPTIONS }), expect: lbExpect(TX) },
  { desc: 'TCP data 10.0.0.1:40000 → VIP 192.0.2.10:80 (same flow)', frame: tcp4('10.0.0.1', '192.0.2.10', { sport: 40000, dport: 80, flags: 'P.', seq: 101, ack: 7001, payload: text('GET /index.html HTTP/1.1\r\n\r\n') }), expect: lbExpect(TX) },
  { desc: 'TCP SYN 10.0.0.2:40001 → VIP 192.0.2.10:80', frame: tcp4('10.0.0.2', '192.0.2.10', { sport: 40001, dport: 80, flags: 'S' }), expect: lbExpect(TX) },
  { desc: 'TCP SYN 10.0.0.3:40002 → VIP 192.0.2.10:80', frame: tcp4('10.0.0.3', '192.0.2.10', { sport: 40002, dport: 80, flags: 'S' }), expect: lbExpect(TX) },
  { desc: 'TCP SYN 10.0.0.4:51000 → VIP 192.0.2.10:80', frame: tcp4('10.0.0.4', '192.0.2.10', { sport: 51000, dport: 80, flags: 'S' }), expect: lbExpect(TX) },
  { desc: 'TCP SYN 10.0.0.1:40010 → 192.0.2.10:443 (no VIP on that port)', frame: tcp4('10.0.0.1', '192.0.2.10', { sport: 40010, dport: 443, flags: 'S' }), expect: lbExpect(PASS) },
  { desc: 'UDP DNS 10.0.0.5:5353 → 192.0.2.10:53 (VIP from maps.json)', frame: udp4('10.0.0.5', '192.0.2.10', 5353, 53, dnsQuery(0xbeef, 'example.org')), expect: lbExpect(PASS, TX) },
  { desc: 'UDP DNS without checksum 10.0.0.6:5354 → 192.0.2.10:53 (VIP from maps.json)', frame: v4('10.0.0.6', '192.0.2.10', UDP, udp({ sport: 5354, dport: 53, payload: dnsQuery(0xcafe, 'example.net') }), { transportChecksum: false }), expect: lbExpect(PASS, TX) },
  { desc: 'TCP SYN 10.0.0.7:40020 → 192.0.2.20:8080 (maps.json VIP with no backends)', frame: tcp4('10.0.0.7', '192.0.2.20', { sport: 40020, dport: 8080, flags: 'S' }), expect: lbExpect(PASS, DROP) },
  { desc: 'ICMP echo request 10.0.0.1 → 192.0.2.10', frame: v4('10.0.0.1', '192.0.2.10', ICMP, icmpEcho({ id: 3, seq: 1 })), expect: lbExpect(PASS) },
  { desc: 'IPv6 TCP SYN [2001:db8::1] → [2001:db8::10]:80', frame: v6('2001:db8::1', '2001:db8::10', TCP, tcp({ sport: 40030, dport: 80, flags: 'S' })), expect: lbExpect(PASS) },
  { desc: 'ARP who-has 192.0.2.10 tell 10.0.0.1', frame: arpRequest('10.0.0.1', '192.0.2.10'), expect: lbExpect(PASS) },
  { desc: 'IPv4 first fragment (MF) of TCP 10.0.0.8 → VIP 192.0.2.10:80', frame: tcp4('10.0.0.8', '192.0.2.10', { sport: 40040, dport: 80, flags: 'P.', payload: new Uint8Array(64) }, { mf: true, id: 77 }), expect: lbExpect(PASS) },
  { desc: 'IPv4 with a Router Alert option, TCP 10.0.0.9 → VIP 192.0.2.10:80', frame: tcp4('10.0.0.9', '192.0.2.10', { sport: 40050, dport: 80, flags: 'S' }, { options: bytes(0x94, 0x04, 0x00, 0x00) }), expect: lbExpect(PASS) },
  { desc: 'TCP FIN 10.0.0.1:40000 → VIP 192.0.2.10:80 (same flow as the first)', frame: tcp4('10.0.0.1', '192.0.2.10', { sport: 40000, dport: 80, flags: 'F.', seq: 129, ack: 7001 }), expect: lbExpect(TX) },
].map((p, i) => ({ at: i * 0.005, ...p }));

// tc-ratelimit's defaults: 5 SYNs a second per source, bursts of 4.
const syn = (src, sport, at, flags = 'S') => ({ at, desc: `TCP ${flags === 'S' ? 'SYN' : flags} ${src}:${sport} → 10.0.0.1:80`, frame: tcp4(src, '10.0.0.1', { sport, dport: 80, flags, seq: sport * 1000 }) });
const rl = (verdict) => ({ 'tc-ratelimit': verdict });
const synFlood = [
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ ...syn('10.0.0.66', 30000 + i, i * 0.001), expect: rl(i < 4 ? OK : SHOT) })),
  ...[0, 1, 2].map((i) => ({ ...syn('10.0.0.77', 31000 + i, 0.0005 + i * 0.002), expect: rl(OK) })),
  { ...syn('10.0.0.66', 30000, 0.008, '.'), desc: 'TCP ACK 10.0.0.66:30000 → 10.0.0.1:80 (not a SYN)', expect: rl(OK) },
  { at: 0.0085, desc: 'UDP 10.0.0.66 → 10.0.0.1:53', frame: udp4('10.0.0.66', '10.0.0.1', 5300, 53, dnsQuery(5, 'flood.example')), expect: rl(OK) },
  { at: 0.009, desc: 'IPv6 TCP SYN [2001:db8::66] → [2001:db8::1]:80 (IPv4 only)', frame: v6('2001:db8::66', '2001:db8::1', TCP, tcp({ sport: 30100, dport: 80, flags: 'S' })), expect: rl(OK) },
  { at: 0.0095, desc: 'ARP who-has 10.0.0.1 tell 10.0.0.66', frame: arpRequest('10.0.0.66', '10.0.0.1'), expect: rl(OK) },
  // A second later the bucket has refilled (5 tokens a second, capped at the burst of 4).
  ...[0, 1, 2].map((i) => ({ ...syn('10.0.0.66', 32000 + i, 1.01 + i * 0.001), expect: rl(OK) })),
  { ...syn('10.0.0.88', 33000, 1.013), expect: rl(OK) },
].sort((a, b) => a.at - b.at);

const parse = (verdict) => ({ 'pkt-parser': verdict });
const ipv6Ext = (n, type = 'dstopts') => Array.from({ length: n }, () => ({ type }));
/** An IPv6 packet whose Authentication Header (RFC 4302) carries a 12-byte ICV, then TCP. */
function ipv6WithAh() {
  const seg = tcp({ sport: 40900, dport: 22, flags: 'S' });
  // next header TCP, payload length (in 4-octet units, minus 2) 4 → 24 bytes, SPI, sequence, ICV.
  const ah = bytes(TCP, 4, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 1, ...new Uint8Array(12));
  return v6('2001:db8::a', '2001:db8::b', 51, Uint8Array.from([...ah, ...seg]));
}
const parser = [
  { desc: 'TCP SYN with MSS, SACK-permitted, timestamps, NOP, window scale', frame: tcp4('10.0.0.1', '10.0.0.2', { sport: 40000, dport: 80, flags: 'S', options: SYN_OPTIONS }), expect: parse(PASS) },
  { desc: 'TCP ACK with NOP, NOP, timestamps', frame: tcp4('10.0.0.2', '10.0.0.1', { sport: 80, dport: 40000, flags: '.', options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamp', value: 2000, echo: 1000 }] }), expect: parse(PASS) },
  { desc: 'UDP 10.0.0.1 → 10.0.0.2:53', frame: udp4('10.0.0.1', '10.0.0.2', 5353, 53, dnsQuery(1, 'example.com')), expect: parse(PASS) },
  { desc: 'ICMP echo request', frame: v4('10.0.0.1', '10.0.0.2', ICMP, icmpEcho({ id: 1, seq: 1 })), expect: parse(PASS) },
  { desc: 'IPv4 with a Router Alert option, UDP', frame: udp4('10.0.0.1', '224.0.0.22', 1000, 2000, text('igmp?'), { options: bytes(0x94, 0x04, 0x00, 0x00) }), expect: parse(PASS) },
  {
    desc: 'IPv6 hop-by-hop, routing (SRH, 2 segments), destination options, then TCP',
    frame: v6('2001:db8::1', '2001:db8::2', TCP, tcp({ sport: 40001, dport: 443, flags: 'S', options: SYN_OPTIONS }), [
      { type: 'hopopts', options: bytes(5, 2, 0, 0) },
      { type: 'routing', routingType: 4, segmentsLeft: 1, addresses: ['2001:db8::2', '2001:db8::100'] },
      { type: 'dstopts' },
    ]),
    expect: parse(PASS),
  },
  { desc: 'IPv6 first fragment (M=1) of UDP', frame: v6('2001:db8::1', '2001:db8::2', UDP, udp({ sport: 5000, dport: 6000, payload: new Uint8Array(32) }), [{ type: 'fragment', offset: 0, more: true, id: 99 }]), expect: parse(PASS) },
  { desc: 'IPv6 later fragment (offset 1232) of UDP', frame: v6('2001:db8::1', '2001:db8::2', UDP, new Uint8Array(40), [{ type: 'fragment', offset: 1232, more: false, id: 99 }]), expect: parse(PASS) },
  { desc: 'IPv6 with 8 destination options headers, then UDP (as deep as the parser walks)', frame: v6('2001:db8::1', '2001:db8::2', UDP, udp({ sport: 1, dport: 2 }), ipv6Ext(8)), expect: parse(PASS) },
  { desc: 'IPv6 with 9 destination options headers, then UDP (one too deep)', frame: v6('2001:db8::1', '2001:db8::2', UDP, udp({ sport: 1, dport: 2 }), ipv6Ext(9)), expect: parse(DROP) },
  { desc: 'IPv6 Authentication Header, then TCP SYN', frame: ipv6WithAh(), expect: parse(PASS) },
  { desc: 'ICMPv6 echo request', frame: v6('2001:db8::1', '2001:db8::2', ICMPV6, icmpEcho({ id: 2, seq: 1, v6: true })), expect: parse(PASS) },
  { desc: 'TCP with 12 NOPs then MSS (the option walk stops after 10 options)', frame: tcp4('10.0.0.1', '10.0.0.2', { sport: 40002, dport: 80, flags: 'S', options: [...Array(12).fill({ kind: 'nop' }), { kind: 'mss', value: 1400 }] }), expect: parse(PASS) },
  { desc: 'ARP who-has 10.0.0.2 tell 10.0.0.1', frame: arpRequest('10.0.0.1', '10.0.0.2'), expect: parse(PASS) },
  { desc: '802.3 frame with an LLC header (length, not EtherType)', frame: ethernet({ dst: '01:80:c2:00:00:00', type: 38, payload: bytes(0x42, 0x42, 0x03, ...new Uint8Array(35)) }), expect: parse(PASS) },
  // Malformed
  { desc: 'Ethernet header alone, EtherType IPv4 but no IPv4 header', frame: ethernet({ type: ETH_P_IP }), expect: parse(DROP) },
  { desc: 'IPv4 header length 16 (IHL 4)', frame: patch(udp4('10.0.0.1', '10.0.0.2', 1, 2, text('x')), 14, 0x44), expect: parse(DROP) },
  { desc: 'IPv4 total length 12, below its header length', frame: udp4('10.0.0.1', '10.0.0.2', 1, 2, text('x'), { totalLength: 12 }), expect: parse(DROP) },
  { desc: 'TCP header cut after 12 bytes', frame: tcp4('10.0.0.1', '10.0.0.2', { sport: 40003, dport: 80, flags: 'S' }).slice(0, 14 + 20 + 12), expect: parse(DROP) },
  { desc: 'TCP data offset 15 (60 bytes) in a 20-byte TCP header', frame: patch(tcp4('10.0.0.1', '10.0.0.2', { sport: 40004, dport: 80, flags: 'S' }), 14 + 20 + 12, 0xf0), expect: parse(DROP) },
  { desc: 'TCP option of length 1 (MSS kind, length byte 1)', frame: tcp4('10.0.0.1', '10.0.0.2', { sport: 40005, dport: 80, flags: 'S', options: bytes(2, 1, 0x05, 0xb4) }), expect: parse(DROP) },
  { desc: 'TCP timestamps option running past the header', frame: tcp4('10.0.0.1', '10.0.0.2', { sport: 40006, dport: 80, flags: 'S', options: bytes(1, 1, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0) }), expect: parse(DROP) },
  { desc: 'IPv6 header cut after 30 bytes', frame: v6('2001:db8::1', '2001:db8::2', UDP, udp({ sport: 1, dport: 2 })).slice(0, 14 + 30), expect: parse(DROP) },
  { desc: 'UDP header cut after 4 bytes', frame: udp4('10.0.0.1', '10.0.0.2', 1, 2, text('abcd')).slice(0, 14 + 20 + 4), expect: parse(DROP) },
].map((p, i) => ({ at: i * 0.001, ...p }));

const events = [
  { desc: 'TCP SYN 10.0.0.1:40000 → 192.0.2.10:80 (SYN event)', event: SYN, frame: tcp4('10.0.0.1', '192.0.2.10', { sport: 40000, dport: 80, flags: 'S', seq: 1000, options: SYN_OPTIONS }) },
  { desc: 'TCP SYN-ACK 192.0.2.10:80 → 10.0.0.1:40000 (no event)', frame: tcp4('192.0.2.10', '10.0.0.1', { sport: 80, dport: 40000, flags: 'S.', seq: 5000, ack: 1001 }) },
  { desc: 'UDP DNS query 10.0.0.2:5353 → 192.0.2.53:53 (DNS event)', event: DNS, frame: udp4('10.0.0.2', '192.0.2.53', 5353, 53, dnsQuery(0x1234, 'example.com')) },
  { desc: 'ICMP echo request 10.0.0.3 → 10.0.0.1 (bpf_printk)', event: PRINTK, frame: v4('10.0.0.3', '10.0.0.1', ICMP, icmpEcho({ id: 7, seq: 1 })) },
  { desc: 'ICMP echo reply 10.0.0.1 → 10.0.0.3 (nothing)', frame: v4('10.0.0.1', '10.0.0.3', ICMP, icmpEcho({ id: 7, seq: 1, reply: true })) },
  { desc: 'TCP SYN 10.0.0.4:40100 → 192.0.2.10:443 (SYN event)', event: SYN, frame: tcp4('10.0.0.4', '192.0.2.10', { sport: 40100, dport: 443, flags: 'S', seq: 77 }) },
].map((p, i) => ({ at: i * 0.000250125, ...p, expect: { 'ringbuf-events': PASS } }));

/** SLL2 (LINKTYPE_LINUX_SLL2) header: protocol, reserved, ifindex, ARPHRD, packet type, address. */
function sll2(frame, { ifindex = 2, pkttype = 0 } = {}) {
  const h = new Uint8Array(20);
  const dv = new DataView(h.buffer);
  dv.setUint16(0, (frame[12] << 8) | frame[13]); // protocol: the frame's EtherType
  dv.setUint32(4, ifindex);
  dv.setUint16(8, 1); // ARPHRD_ETHER
  h[10] = pkttype; // PACKET_HOST 0, PACKET_OUTGOING 4
  h[11] = 6;
  h.set(frame.subarray(6, 12), 12); // the sender's MAC
  return Uint8Array.from([...h, ...frame.subarray(14)]);
}
const cooked = [
  { desc: 'TCP SYN 10.0.0.1 → 10.0.0.2:80 on eth0', frame: tcp4('10.0.0.1', '10.0.0.2', { sport: 40000, dport: 80, flags: 'S' }), expect: fw(PASS) },
  { desc: 'TCP SYN 198.51.100.9 → 10.0.0.2:443 on eth0 (default blocked prefix)', frame: tcp4('198.51.100.9', '10.0.0.2', { sport: 40001, dport: 443, flags: 'S' }), expect: fw(DROP) },
  { desc: 'UDP 203.0.113.5 → 10.0.0.2:161 on eth1 (prefix blocked by maps.json)', frame: udp4('203.0.113.5', '10.0.0.2', 40002, 161, text('public')), sll: { ifindex: 3 }, expect: fw(PASS, DROP) },
  { desc: 'TCP SYN 10.0.0.2 → 10.0.0.3:23 sent by us (PACKET_OUTGOING; default denied port)', frame: tcp4('10.0.0.2', '10.0.0.3', { sport: 40003, dport: 23, flags: 'S' }), sll: { pkttype: 4 }, expect: fw(DROP) },
  { desc: 'IPv6 UDP [2001:db8::1] → [2001:db8::2]:53 on eth0', frame: v6('2001:db8::1', '2001:db8::2', UDP, udp({ sport: 5353, dport: 53, payload: dnsQuery(3, 'example.com') })), expect: fw(PASS) },
].map((p, i) => ({ at: i * 0.002, ...p }));

// pcapng (draft-ietf-opsawg-pcapng): a Section Header Block, one Interface Description Block
// with nanosecond timestamps (if_tsresol 9), then an Enhanced Packet Block per packet.
function pcapngBlock(type, body) {
  const padded = (body.length + 3) & ~3;
  const out = new Uint8Array(12 + padded);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, out.length, true);
  out.set(body, 8);
  dv.setUint32(out.length - 4, out.length, true);
  return out;
}
function writePcapng(records, { ifName = 'eth0' } = {}) {
  const shb = new Uint8Array(16);
  let dv = new DataView(shb.buffer);
  dv.setUint32(0, 0x1a2b3c4d, true); // byte-order magic
  dv.setUint16(4, 1, true); // version 1.0
  dv.setBigInt64(8, -1n, true); // section length unknown
  const name = text(ifName);
  const namePad = (name.length + 3) & ~3;
  const idb = new Uint8Array(8 + 4 + namePad + 4 + 4 + 4);
  dv = new DataView(idb.buffer);
  dv.setUint16(0, 1, true); // LINKTYPE_ETHERNET
  dv.setUint32(4, 0, true); // no snaplen
  let o = 8;
  dv.setUint16(o, 2, true); // if_name
  dv.setUint16(o + 2, name.length, true);
  idb.set(name, o + 4);
  o += 4 + namePad;
  dv.setUint16(o, 9, true); // if_tsresol
  dv.setUint16(o + 2, 1, true);
  idb[o + 4] = 9; // 10^-9 s
  o += 8;
  dv.setUint16(o, 0, true); // opt_endofopt
  const blocks = [pcapngBlock(0x0a0d0d0a, shb), pcapngBlock(1, idb)];
  for (const r of records) {
    const epb = new Uint8Array(20 + r.data.length);
    dv = new DataView(epb.buffer);
    dv.setUint32(0, 0, true); // interface 0
    dv.setUint32(4, Number(r.timestampNs >> 32n), true);
    dv.setUint32(8, Number(r.timestampNs & 0xffffffffn), true);
    dv.setUint32(12, r.data.length, true);
    dv.setUint32(16, r.data.length, true);
    epb.set(r.data, 20);
    blocks.push(pcapngBlock(6, epb));
  }
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

// 2023-11-14 22:13:20 UTC, plus a minute per capture so they do not overlap.
const T0 = 1_700_000_000n * 1_000_000_000n;
const ns = (base, at) => base + BigInt(Math.round(at * 1e9));

const captures = [
  { file: 'mixed.pcap', packets: mixed, base: T0 },
  { file: 'lb.pcap', packets: lb, base: T0 + 60_000_000_000n },
  { file: 'syn-flood.pcap', packets: synFlood, base: T0 + 120_000_000_000n },
  { file: 'parser.pcap', packets: parser, base: T0 + 180_000_000_000n, nanosecond: true },
  { file: 'events.pcapng', packets: events, base: T0 + 240_000_000_000n, pcapng: true },
  { file: 'any-sll2.pcap', packets: cooked, base: T0 + 300_000_000_000n, linkType: LINKTYPE_LINUX_SLL2 },
];

const expected = {};
for (const c of captures) {
  const records = c.packets.map((p) => ({
    timestampNs: ns(c.base, p.at),
    data: c.linkType === LINKTYPE_LINUX_SLL2 ? sll2(p.frame, p.sll) : p.frame,
  }));
  const bytesOut = c.pcapng ? writePcapng(records) : writePcap(records, { linkType: c.linkType, nanosecond: c.nanosecond });
  mkdirSync(HERE, { recursive: true });
  writeFileSync(join(HERE, c.file), bytesOut);
  expected[c.file] = c.packets.map((p, index) => ({ index, desc: p.desc, expect: p.expect, ...(p.event && { event: p.event }) }));
}
writeFileSync(join(HERE, 'expected.json'), JSON.stringify(expected, null, 1) + '\n');
console.log(`wrote ${captures.map((c) => `${c.file} (${c.packets.length})`).join(', ')} and expected.json`);
