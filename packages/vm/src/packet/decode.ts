// Dissects an Ethernet frame into layers and fields with byte ranges, so a debugger pane can
// highlight what a program reads. Covers Ethernet, 802.1Q/802.1ad, ARP, IPv4, IPv6 with its
// extension headers, TCP, UDP, ICMP and ICMPv6; names and flag letters follow tcpdump.

import { formatIpv4, formatIpv6, formatMac } from './addr.js';
import { CHECKSUM_OFFSET, expectedChecksum, pseudoHeaderSum } from './checksum.js';

export type LayerName =
  | 'ethernet'
  | 'vlan'
  | 'arp'
  | 'ipv4'
  | 'ipv6'
  | 'hopopts'
  | 'routing'
  | 'fragment'
  | 'dstopts'
  | 'ah'
  | 'tcp'
  | 'udp'
  | 'icmp'
  | 'icmpv6'
  | 'payload'
  | 'trailer';

/** One header field; offset and length are in bytes from the start of the frame (bit fields share bytes). */
export interface PacketField {
  name: string;
  value: string;
  offset: number;
  length: number;
}

export interface PacketLayer {
  name: LayerName;
  /** Byte range of the header (for payload and trailer, of the data) in the frame. */
  offset: number;
  length: number;
  fields: PacketField[];
  summary: string;
  /** The capture ends inside this header: `fields` holds those that fit. */
  truncated?: true;
  /** The header is malformed (e.g. an IPv4 header length below 20); decoding stopped here. */
  error?: string;
}

/** The verdict on one checksum field that could be verified. */
export interface ChecksumCheck {
  layer: 'ipv4' | 'tcp' | 'udp' | 'icmp' | 'icmpv6';
  /** Offset of the checksum field in the frame. */
  offset: number;
  value: number;
  expected: number;
  ok: boolean;
}

const ETHERTYPES: Readonly<Record<number, string>> = {
  0x0800: 'IPv4',
  0x0806: 'ARP',
  0x8100: '802.1Q',
  0x88a8: '802.1ad',
  0x9100: 'QinQ',
  0x86dd: 'IPv6',
  0x8847: 'MPLS',
  0x88cc: 'LLDP',
};
const VLAN_TPIDS = new Set([0x8100, 0x88a8, 0x9100]);

const IP_PROTOCOLS: Readonly<Record<number, string>> = {
  0: 'HOPOPTS',
  1: 'ICMP',
  2: 'IGMP',
  4: 'IPIP',
  6: 'TCP',
  17: 'UDP',
  41: 'IPv6',
  43: 'ROUTING',
  44: 'FRAGMENT',
  47: 'GRE',
  50: 'ESP',
  51: 'AH',
  58: 'ICMPv6',
  59: 'NONE',
  60: 'DSTOPTS',
  132: 'SCTP',
};

const ICMP_TYPES: Readonly<Record<number, string>> = {
  0: 'echo reply',
  3: 'destination unreachable',
  4: 'source quench',
  5: 'redirect',
  8: 'echo request',
  11: 'time exceeded',
  12: 'parameter problem',
  13: 'timestamp request',
  14: 'timestamp reply',
};

const ICMPV6_TYPES: Readonly<Record<number, string>> = {
  1: 'destination unreachable',
  2: 'packet too big',
  3: 'time exceeded',
  4: 'parameter problem',
  128: 'echo request',
  129: 'echo reply',
  133: 'router solicitation',
  134: 'router advertisement',
  135: 'neighbor solicitation',
  136: 'neighbor advertisement',
  137: 'redirect',
};

const hex = (v: number, digits: number): string => `0x${v.toString(16).padStart(digits, '0')}`;
const named = (table: Readonly<Record<number, string>>, v: number, digits = 0): string => {
  const n = table[v];
  const num = digits ? hex(v, digits) : String(v);
  return n ? `${n} (${num})` : num;
};
export const ipProtocolName = (p: number): string => IP_PROTOCOLS[p] ?? `proto ${p}`;

/** tcpdump's flag letters, in its order: FIN SYN RST PSH ACK URG ECE CWR. */
export function tcpFlagString(flags: number): string {
  const letters = 'FSRP.UEW';
  let s = '';
  for (let i = 0; i < 8; i++) if (flags & (1 << i)) s += letters[i];
  return s || 'none';
}

const TRUNCATED = Symbol('truncated');
class Malformed {
  constructor(readonly message: string) {}
}

/** Reads one header; every read is bounds-checked against `end` and gives up the layer when short. */
class HeaderReader {
  readonly fields: PacketField[] = [];
  constructor(
    readonly d: Uint8Array,
    readonly offset: number,
    readonly end: number,
  ) {}
  has(rel: number, len: number): boolean {
    return this.offset + rel + len <= this.end;
  }
  need(rel: number, len: number): void {
    if (!this.has(rel, len)) throw TRUNCATED;
  }
  u8(rel: number): number {
    this.need(rel, 1);
    return this.d[this.offset + rel]!;
  }
  u16(rel: number): number {
    this.need(rel, 2);
    return (this.d[this.offset + rel]! << 8) | this.d[this.offset + rel + 1]!;
  }
  u32(rel: number): number {
    this.need(rel, 4);
    return ((this.d[this.offset + rel]! << 24) | (this.d[this.offset + rel + 1]! << 16) | (this.d[this.offset + rel + 2]! << 8) | this.d[this.offset + rel + 3]!) >>> 0;
  }
  bytes(rel: number, len: number): Uint8Array {
    this.need(rel, len);
    return this.d.subarray(this.offset + rel, this.offset + rel + len);
  }
  field(name: string, rel: number, len: number, value: string): void {
    this.need(rel, len);
    this.fields.push({ name, value, offset: this.offset + rel, length: len });
  }
  f8(name: string, rel: number, fmt: (v: number) => string = String): number {
    const v = this.u8(rel);
    this.field(name, rel, 1, fmt(v));
    return v;
  }
  f16(name: string, rel: number, fmt: (v: number) => string = String): number {
    const v = this.u16(rel);
    this.field(name, rel, 2, fmt(v));
    return v;
  }
  f32(name: string, rel: number, fmt: (v: number) => string = String): number {
    const v = this.u32(rel);
    this.field(name, rel, 4, fmt(v));
    return v;
  }
}

/** What the layer body found: its header length, its summary, and what follows it. */
interface Decoded {
  length: number;
  summary: string;
  next?: () => void;
}

interface IpContext {
  version: 4 | 6;
  src: Uint8Array;
  /** The pseudo-header destination: for IPv6 with a routing header, the final destination. */
  dst: Uint8Array;
  /** Not the whole datagram: a transport checksum cannot be verified. */
  fragmented: boolean;
  /** End of the IP payload as the header claims it, which may lie past the captured bytes. */
  claimedEnd: number;
}

interface IpSummary {
  version: 4 | 6;
  src: string;
  dst: string;
  length: number;
  protocol: number;
  fragment?: string;
}

interface Dissection {
  layers: PacketLayer[];
  checksums: ChecksumCheck[];
  vlans: number[];
  ips: IpSummary[];
  transport?: { name: string; sport?: number; dport?: number; detail: string };
  arp?: string;
  ethernet?: string;
  problem?: string;
}

class Dissector {
  readonly out: Dissection = { layers: [], checksums: [], vlans: [], ips: [] };
  constructor(readonly d: Uint8Array) {}

  layer(name: LayerName, offset: number, end: number, body: (r: HeaderReader) => Decoded): void {
    const r = new HeaderReader(this.d, offset, Math.min(end, this.d.length));
    let decoded: Decoded | undefined;
    let problem: 'truncated' | Malformed | undefined;
    try {
      decoded = body(r);
    } catch (e) {
      if (e === TRUNCATED) problem = 'truncated';
      else if (e instanceof Malformed) problem = e;
      else throw e;
    }
    const layer: PacketLayer = {
      name,
      offset,
      length: decoded ? decoded.length : Math.max(0, r.end - offset),
      fields: r.fields,
      summary: decoded?.summary ?? `${name}`,
    };
    if (problem === 'truncated') {
      layer.truncated = true;
      layer.summary = `${name} [truncated]`;
      this.out.problem ??= 'truncated';
    } else if (problem) {
      layer.error = problem.message;
      layer.summary = `${name} [malformed: ${problem.message}]`;
      this.out.problem ??= `malformed: ${problem.message}`;
    }
    this.out.layers.push(layer);
    decoded?.next?.();
  }

  payload(offset: number, end: number, what = 'Payload'): void {
    const stop = Math.min(end, this.d.length);
    if (offset >= stop) return;
    this.layer('payload', offset, stop, (r) => {
      const n = stop - offset;
      r.field('data', 0, n, `${n} bytes`);
      return { length: n, summary: `${what}, ${n} bytes` };
    });
  }

  ethernet(): void {
    this.layer('ethernet', 0, this.d.length, (r) => {
      const dst = formatMac(r.bytes(0, 6));
      r.field('destination', 0, 6, dst);
      const src = formatMac(r.bytes(6, 6));
      r.field('source', 6, 6, src);
      const type = r.u16(12);
      this.out.ethernet = `Ethernet ${src} → ${dst}`;
      if (type < 0x0600) {
        r.field('length', 12, 2, `${type} (802.3)`);
        return { length: 14, summary: `Ethernet ${src} → ${dst}, 802.3 length ${type}`, next: () => this.payload(14, 14 + type, '802.2 LLC') };
      }
      r.field('type', 12, 2, named(ETHERTYPES, type, 4));
      return { length: 14, summary: `Ethernet ${src} → ${dst}, ${named(ETHERTYPES, type, 4)}`, next: () => this.etherPayload(type, 14) };
    });
  }

  etherPayload(type: number, off: number): void {
    if (VLAN_TPIDS.has(type)) this.vlan(type, off);
    else if (type === 0x0806) this.arp(off);
    else if (type === 0x0800) this.ipv4(off, this.d.length);
    else if (type === 0x86dd) this.ipv6(off, this.d.length);
    else this.payload(off, this.d.length);
  }

  vlan(tpid: number, off: number): void {
    this.layer('vlan', off, this.d.length, (r) => {
      const tci = r.u16(0);
      const vid = tci & 0xfff;
      r.field('priority', 0, 2, String(tci >> 13));
      r.field('drop eligible', 0, 2, tci & 0x1000 ? 'yes' : 'no');
      r.field('vlan id', 0, 2, String(vid));
      const type = r.f16('type', 2, (v) => named(ETHERTYPES, v, 4));
      this.out.vlans.push(vid);
      const tag = tpid === 0x8100 ? '802.1Q' : '802.1ad';
      return { length: 4, summary: `${tag} VLAN ${vid}, pcp ${tci >> 13}, ${named(ETHERTYPES, type, 4)}`, next: () => this.etherPayload(type, off + 4) };
    });
  }

  arp(off: number): void {
    this.layer('arp', off, this.d.length, (r) => {
      r.f16('hardware type', 0, (v) => (v === 1 ? 'Ethernet (1)' : String(v)));
      r.f16('protocol type', 2, (v) => named(ETHERTYPES, v, 4));
      const hlen = r.f8('hardware size', 4);
      const plen = r.f8('protocol size', 5);
      const op = r.f16('opcode', 6, (v) => (v === 1 ? 'request (1)' : v === 2 ? 'reply (2)' : String(v)));
      const addr = (rel: number, len: number, isHw: boolean): string => {
        const b = r.bytes(rel, len);
        if (isHw && len === 6) return formatMac(b);
        if (!isHw && len === 4) return formatIpv4(b);
        return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
      };
      let at = 8;
      const sha = addr(at, hlen, true);
      r.field('sender hardware address', at, hlen, sha);
      at += hlen;
      const spa = addr(at, plen, false);
      r.field('sender protocol address', at, plen, spa);
      at += plen;
      const tha = addr(at, hlen, true);
      r.field('target hardware address', at, hlen, tha);
      at += hlen;
      const tpa = addr(at, plen, false);
      r.field('target protocol address', at, plen, tpa);
      at += plen;
      const text = op === 1 ? `who-has ${tpa} tell ${spa}` : op === 2 ? `reply ${spa} is-at ${sha}` : `opcode ${op}`;
      this.out.arp = `ARP ${text}`;
      return { length: at, summary: `ARP, ${text}`, next: () => this.payload(off + at, this.d.length, 'Padding') };
    });
  }

  ipv4(off: number, end: number): void {
    this.layer('ipv4', off, end, (r) => {
      const vihl = r.u8(0);
      const ihl = (vihl & 0x0f) * 4;
      r.field('version', 0, 1, String(vihl >> 4));
      r.field('header length', 0, 1, `${ihl} bytes (${vihl & 0x0f})`);
      if (vihl >> 4 !== 4) throw new Malformed(`version ${vihl >> 4}, expected 4`);
      if (ihl < 20) throw new Malformed(`header length ${ihl} is below 20`);
      r.f8('tos', 1, (v) => `${hex(v, 2)} (DSCP ${v >> 2}, ECN ${v & 3})`);
      const total = r.f16('total length', 2);
      if (total < ihl) throw new Malformed(`total length ${total} is below the header length ${ihl}`);
      const id = r.f16('identification', 4, (v) => `${hex(v, 4)} (${v})`);
      const frag = r.u16(6);
      const flags = [frag & 0x8000 ? 'reserved' : '', frag & 0x4000 ? 'DF' : '', frag & 0x2000 ? 'MF' : ''].filter(Boolean);
      r.field('flags', 6, 1, flags.join(' ') || 'none');
      const fragOff = (frag & 0x1fff) * 8;
      r.field('fragment offset', 6, 2, `${fragOff}`);
      const ttl = r.f8('ttl', 8);
      const proto = r.f8('protocol', 9, (v) => `${ipProtocolName(v)} (${v})`);
      const sum = r.u16(10);
      const src = r.bytes(12, 4);
      const dst = r.bytes(16, 4);
      // The checksum covers the whole header: verify it only once the header is all there.
      r.need(0, ihl);
      const header = r.bytes(0, ihl);
      const expected = expectedChecksum(header, 10);
      this.out.checksums.push({ layer: 'ipv4', offset: off + 10, value: sum, expected, ok: sum === expected });
      r.field('header checksum', 10, 2, checksumText(sum, expected));
      r.field('source', 12, 4, formatIpv4(src));
      r.field('destination', 16, 4, formatIpv4(dst));
      ipv4Options(r, ihl);
      const fragmented = fragOff !== 0 || (frag & 0x2000) !== 0;
      const fragment = fragmented ? `fragment id ${id} off ${fragOff}${frag & 0x2000 ? ' MF' : ''}` : undefined;
      this.out.ips.push({ version: 4, src: formatIpv4(src), dst: formatIpv4(dst), length: total, protocol: proto, fragment });
      const claimedEnd = off + total;
      const ctx: IpContext = { version: 4, src, dst, fragmented, claimedEnd };
      const summary = `IPv4 ${formatIpv4(src)} → ${formatIpv4(dst)}, ${ipProtocolName(proto)}, ttl ${ttl}, len ${total}${fragment ? `, ${fragment}` : ''}`;
      return {
        length: ihl,
        summary,
        next: () => {
          const payloadEnd = Math.min(claimedEnd, end);
          if (fragOff !== 0) this.payload(off + ihl, payloadEnd, 'Fragment data');
          else this.ipPayload(proto, off + ihl, payloadEnd, ctx);
          // Bytes past the datagram are link padding (Ethernet pads frames to 60 bytes).
          if (claimedEnd < end && claimedEnd < this.d.length) this.trailer(claimedEnd, end);
        },
      };
    });
  }

  trailer(off: number, end: number): void {
    this.layer('trailer', off, end, (r) => {
      const n = Math.min(end, this.d.length) - off;
      r.field('padding', 0, n, `${n} bytes`);
      return { length: n, summary: `Trailer, ${n} bytes` };
    });
  }

  ipv6(off: number, end: number): void {
    this.layer('ipv6', off, end, (r) => {
      const word = r.u32(0);
      r.field('version', 0, 1, String(word >>> 28));
      if (word >>> 28 !== 6) throw new Malformed(`version ${word >>> 28}, expected 6`);
      r.field('traffic class', 0, 2, hex((word >>> 20) & 0xff, 2));
      r.field('flow label', 1, 3, hex(word & 0xfffff, 5));
      const plen = r.f16('payload length', 4);
      let next = r.f8('next header', 6, (v) => `${ipProtocolName(v)} (${v})`);
      const hlim = r.f8('hop limit', 7);
      const src = r.bytes(8, 16);
      r.field('source', 8, 16, formatIpv6(src));
      const dst = r.bytes(24, 16);
      r.field('destination', 24, 16, formatIpv6(dst));
      // A zero payload length with a hop-by-hop header is a jumbogram (RFC 2675): take what was captured.
      const claimedEnd = plen === 0 && next === 0 ? end : off + 40 + plen;
      const ctx: IpContext = { version: 6, src, dst, fragmented: false, claimedEnd };
      const info: IpSummary = { version: 6, src: formatIpv6(src), dst: formatIpv6(dst), length: 40 + plen, protocol: next };
      this.out.ips.push(info);
      return {
        length: 40,
        summary: `IPv6 ${info.src} → ${info.dst}, ${ipProtocolName(next)}, hlim ${hlim}, len ${40 + plen}`,
        next: () => {
          const payloadEnd = Math.min(claimedEnd, end);
          this.ipv6Chain(next, off + 40, payloadEnd, ctx, info);
          if (claimedEnd < end && claimedEnd < this.d.length) this.trailer(claimedEnd, end);
        },
      };
    });
  }

  ipv6Chain(first: number, start: number, end: number, ctx: IpContext, info: IpSummary): void {
    let next = first;
    let off = start;
    for (;;) {
      const name: LayerName | undefined =
        next === 0 ? 'hopopts' : next === 43 ? 'routing' : next === 44 ? 'fragment' : next === 60 ? 'dstopts' : next === 51 ? 'ah' : undefined;
      if (!name) break;
      let ok = false;
      let len = 0;
      let stop = false;
      this.layer(name, off, end, (r) => {
        const nh = r.f8('next header', 0, (v) => `${ipProtocolName(v)} (${v})`);
        let summary: string;
        if (name === 'fragment') {
          len = 8;
          const fo = r.u16(2);
          r.field('fragment offset', 2, 2, String(fo & ~7));
          r.field('more fragments', 3, 1, fo & 1 ? 'yes' : 'no');
          const id = r.f32('identification', 4);
          ctx.fragmented = true;
          info.fragment = `fragment id ${id} off ${fo & ~7}${fo & 1 ? ' MF' : ''}`;
          stop = (fo & ~7) !== 0;
          summary = `IPv6 fragment, id ${id}, off ${fo & ~7}${fo & 1 ? ', more' : ''}`;
        } else if (name === 'ah') {
          len = (r.u8(1) + 2) * 4;
          r.field('length', 1, 1, `${len} bytes`);
          r.f32('spi', 4, (v) => hex(v, 8));
          r.f32('sequence number', 8);
          summary = `Authentication header, ${len} bytes`;
        } else {
          len = (r.u8(1) + 1) * 8;
          r.field('header length', 1, 1, `${len} bytes`);
          r.need(0, len);
          if (name === 'routing') {
            const type = r.f8('routing type', 2);
            const left = r.f8('segments left', 3);
            if (type === 0 || type === 4) {
              const count = (len - 8) / 16;
              const addrs: Uint8Array[] = [];
              for (let i = 0; i < count; i++) {
                addrs.push(r.bytes(8 + 16 * i, 16));
                r.field(`${type === 4 ? 'segment' : 'address'} ${i}`, 8 + 16 * i, 16, formatIpv6(addrs[i]!));
              }
              // RFC 8200 8.1: upper-layer checksums use the final destination.
              if (left > 0 && count > 0) ctx.dst = type === 4 ? addrs[0]! : addrs[count - 1]!;
            }
            summary = `Routing header, type ${type}, segments left ${left}`;
          } else {
            ipv6Options(r, len);
            summary = `${name === 'hopopts' ? 'Hop-by-hop' : 'Destination'} options, ${len} bytes`;
          }
        }
        next = nh;
        ok = true;
        return { length: len, summary };
      });
      if (!ok) return;
      off += len;
      info.protocol = next;
      if (stop) {
        this.payload(off, end, 'Fragment data');
        return;
      }
    }
    this.ipPayload(next, off, end, ctx);
  }

  ipPayload(proto: number, off: number, end: number, ctx: IpContext): void {
    if (proto === 6) this.tcp(off, end, ctx);
    else if (proto === 17) this.udp(off, end, ctx);
    else if (proto === 1 && ctx.version === 4) this.icmp(off, end, ctx, false);
    else if (proto === 58 && ctx.version === 6) this.icmp(off, end, ctx, true);
    else if (proto === 4) this.ipv4(off, end);
    else if (proto === 41) this.ipv6(off, end);
    else {
      if (proto !== 59) this.out.transport = { name: ipProtocolName(proto), detail: '' };
      this.payload(off, end);
    }
  }

  /** Verifies a transport checksum when the whole datagram is present and unfragmented. */
  transportCheck(layer: ChecksumCheck['layer'], proto: number, off: number, ctx: IpContext): string {
    const value = (this.d[off + CHECKSUM_OFFSET[proto]!.offset]! << 8) | this.d[off + CHECKSUM_OFFSET[proto]!.offset + 1]!;
    if (ctx.fragmented) return `${hex(value, 4)} (unverified: fragment)`;
    if (ctx.claimedEnd > this.d.length) return `${hex(value, 4)} (unverified: capture truncated)`;
    if (layer === 'udp' && value === 0 && ctx.version === 4) return '0x0000 (none)';
    const seg = this.d.subarray(off, ctx.claimedEnd);
    const where = CHECKSUM_OFFSET[proto]!;
    const initial = where.pseudo ? pseudoHeaderSum(ctx.src, ctx.dst, proto, seg.length) : 0;
    let expected = expectedChecksum(seg, where.offset, initial);
    if (layer === 'udp' && expected === 0) expected = 0xffff;
    this.out.checksums.push({ layer, offset: off + where.offset, value, expected, ok: value === expected });
    return checksumText(value, expected);
  }

  tcp(off: number, end: number, ctx: IpContext): void {
    this.layer('tcp', off, end, (r) => {
      const sport = r.f16('source port', 0);
      const dport = r.f16('destination port', 2);
      const seq = r.f32('sequence number', 4);
      const ack = r.f32('acknowledgment number', 8);
      const doff = (r.u8(12) >> 4) * 4;
      r.field('data offset', 12, 1, `${doff} bytes (${doff / 4})`);
      const flagBits = r.u16(12) & 0x1ff;
      const flags = tcpFlagString(flagBits & 0xff);
      r.field('flags', 12, 2, `[${flags}]${flagBits & 0x100 ? ' AE' : ''} (${hex(flagBits, 3)})`);
      const win = r.f16('window', 14);
      r.u16(16);
      if (doff < 20) throw new Malformed(`data offset ${doff} is below 20`);
      r.need(0, 20);
      r.field('checksum', 16, 2, this.transportCheck('tcp', 6, off, ctx));
      r.f16('urgent pointer', 18);
      r.need(0, doff);
      tcpOptions(r, doff);
      const dataLen = Math.max(0, Math.min(ctx.claimedEnd, end) - off - doff);
      const ackText = flagBits & 0x10 ? `, ack ${ack}` : '';
      this.out.transport = { name: 'TCP', sport, dport, detail: `[${flags}]` };
      return {
        length: doff,
        summary: `TCP ${sport} → ${dport} [${flags}], seq ${seq}${ackText}, win ${win}, len ${dataLen}`,
        next: () => this.payload(off + doff, end),
      };
    });
  }

  udp(off: number, end: number, ctx: IpContext): void {
    this.layer('udp', off, end, (r) => {
      const sport = r.f16('source port', 0);
      const dport = r.f16('destination port', 2);
      const len = r.f16('length', 4);
      r.u16(6);
      r.field('checksum', 6, 2, this.transportCheck('udp', 17, off, ctx));
      this.out.transport = { name: 'UDP', sport, dport, detail: '' };
      const dataEnd = len >= 8 ? Math.min(end, off + len) : end;
      return { length: 8, summary: `UDP ${sport} → ${dport}, len ${len}`, next: () => this.payload(off + 8, dataEnd) };
    });
  }

  icmp(off: number, end: number, ctx: IpContext, v6: boolean): void {
    const name = v6 ? 'icmpv6' : 'icmp';
    const types = v6 ? ICMPV6_TYPES : ICMP_TYPES;
    this.layer(name, off, end, (r) => {
      const type = r.f8('type', 0, (v) => named(types, v));
      r.f8('code', 1);
      r.u16(2);
      r.field('checksum', 2, 2, this.transportCheck(name, v6 ? 58 : 1, off, ctx));
      let detail = types[type] ?? `type ${type}`;
      let length = 4;
      const echo = v6 ? type === 128 || type === 129 : type === 0 || type === 8;
      if (echo) {
        const id = r.f16('identifier', 4);
        const seq = r.f16('sequence number', 6);
        detail += ` id ${id} seq ${seq}`;
        length = 8;
      } else if (v6 && (type === 135 || type === 136)) {
        if (type === 136) {
          const f = r.u8(4);
          r.field('flags', 4, 4, [f & 0x80 ? 'router' : '', f & 0x40 ? 'solicited' : '', f & 0x20 ? 'override' : ''].filter(Boolean).join(' ') || 'none');
        }
        const target = formatIpv6(r.bytes(8, 16));
        r.field('target address', 8, 16, target);
        detail += ` ${target}`;
        length = 24;
      } else if (r.has(4, 4)) {
        r.f32('rest of header', 4, (v) => hex(v, 8));
        length = 8;
      }
      this.out.transport = { name: v6 ? 'ICMPv6' : 'ICMP', detail };
      return { length, summary: `${v6 ? 'ICMPv6' : 'ICMP'} ${detail}`, next: () => this.payload(off + length, end) };
    });
  }
}

function checksumText(value: number, expected: number): string {
  return value === expected ? `${hex(value, 4)} (correct)` : `${hex(value, 4)} (incorrect, should be ${hex(expected, 4)})`;
}

const IPV4_OPTIONS: Readonly<Record<number, string>> = {
  0: 'EOL',
  1: 'NOP',
  7: 'RR',
  68: 'TS',
  130: 'SEC',
  131: 'LSRR',
  137: 'SSRR',
  148: 'RA',
};

function ipv4Options(r: HeaderReader, ihl: number): void {
  let at = 20;
  while (at < ihl) {
    const type = r.u8(at);
    const name = `option ${IPV4_OPTIONS[type] ?? type}`;
    if (type === 0) {
      r.field(name, at, ihl - at, 'end of options');
      return;
    }
    if (type === 1) {
      r.field(name, at, 1, '');
      at++;
      continue;
    }
    const len = at + 1 < ihl ? r.u8(at + 1) : 0;
    if (len < 2 || at + len > ihl) {
      r.field('options (malformed)', at, ihl - at, `option ${type} length ${len}`);
      return;
    }
    r.field(name, at, len, hexBytes(r.bytes(at + 2, len - 2)));
    at += len;
  }
}

function ipv6Options(r: HeaderReader, len: number): void {
  let at = 2;
  while (at < len) {
    const type = r.u8(at);
    if (type === 0) {
      r.field('option Pad1', at, 1, '');
      at++;
      continue;
    }
    const olen = at + 1 < len ? r.u8(at + 1) : -1;
    if (olen < 0 || at + 2 + olen > len) {
      r.field('options (malformed)', at, len - at, `option ${hex(type, 2)} length ${olen}`);
      return;
    }
    const data = r.bytes(at + 2, olen);
    const name = type === 1 ? 'option PadN' : type === 5 ? 'option router alert' : type === 0xc2 ? 'option jumbo payload' : `option ${hex(type, 2)}`;
    r.field(name, at, 2 + olen, type === 1 ? `${olen + 2} bytes` : hexBytes(data));
    at += 2 + olen;
  }
}

function tcpOptions(r: HeaderReader, doff: number): void {
  let at = 20;
  while (at < doff) {
    const kind = r.u8(at);
    if (kind === 0) {
      r.field('option EOL', at, doff - at, 'end of options');
      return;
    }
    if (kind === 1) {
      r.field('option NOP', at, 1, '');
      at++;
      continue;
    }
    const len = at + 1 < doff ? r.u8(at + 1) : 0;
    if (len < 2 || at + len > doff) {
      r.field('options (malformed)', at, doff - at, `option ${kind} length ${len}`);
      return;
    }
    const u32 = (rel: number): number => r.u32(at + rel);
    let name = `option ${kind}`;
    let value = hexBytes(r.bytes(at + 2, len - 2));
    if (kind === 2 && len === 4) {
      name = 'option MSS';
      value = String(r.u16(at + 2));
    } else if (kind === 3 && len === 3) {
      const shift = r.u8(at + 2);
      name = 'option window scale';
      value = `${shift} (×${2 ** Math.min(shift, 14)})`;
    } else if (kind === 4 && len === 2) {
      name = 'option SACK permitted';
      value = '';
    } else if (kind === 5 && (len - 2) % 8 === 0) {
      name = 'option SACK';
      const blocks: string[] = [];
      for (let b = 2; b < len; b += 8) blocks.push(`${u32(b)}-${u32(b + 4)}`);
      value = blocks.join(' ');
    } else if (kind === 8 && len === 10) {
      name = 'option timestamp';
      value = `val ${u32(2)} ecr ${u32(6)}`;
    } else if (kind === 19) {
      name = 'option MD5 signature';
    } else if (kind === 30) {
      name = 'option MPTCP';
    } else if (kind === 34) {
      name = 'option TFO cookie';
    }
    r.field(name, at, len, value);
    at += len;
  }
}

const hexBytes = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

function dissect(data: Uint8Array): Dissection {
  const d = new Dissector(data);
  d.ethernet();
  return d.out;
}

/** Decodes an Ethernet frame into layers, outermost first. Never throws on bad input. */
export function decodePacket(data: Uint8Array): PacketLayer[] {
  return dissect(data).layers;
}

/** Every checksum in the frame that could be verified (IPv4 headers, TCP, UDP, ICMP, ICMPv6), outermost first. */
export function verifyChecksums(data: Uint8Array): ChecksumCheck[] {
  return dissect(data).checksums;
}

/**
 * One line in the manner of tcpdump, e.g. `IPv4 10.0.0.1:1234 → 10.0.0.2:80 TCP [S] len 60`;
 * `len` is the IP datagram's length. Tunnels show each outer IP header before the inner one.
 */
export function summarizePacket(data: Uint8Array): string {
  const s = dissect(data);
  const parts: string[] = s.vlans.map((v) => `VLAN ${v}`);
  if (s.arp) parts.push(s.arp);
  else if (s.ips.length > 0) {
    s.ips.forEach((ip, i) => {
      const innermost = i === s.ips.length - 1;
      const t = innermost ? s.transport : undefined;
      const at = (addr: string, port?: number): string =>
        port === undefined ? addr : ip.version === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
      const words = [`IPv${ip.version}`, `${at(ip.src, t?.sport)} → ${at(ip.dst, t?.dport)}`];
      if (!innermost) words.push(`[${ipProtocolName(ip.protocol)}]`);
      else {
        words.push(t ? t.name : ipProtocolName(ip.protocol));
        if (t?.detail) words.push(t.detail);
        if (ip.fragment) words.push(ip.fragment);
        words.push(`len ${ip.length}`);
      }
      parts.push(words.join(' '));
    });
  } else if (s.ethernet) {
    const eth = s.layers.find((l) => l.name === 'ethernet');
    const type = eth?.fields.find((f) => f.name === 'type' || f.name === 'length');
    parts.push(`${s.ethernet}${type ? ` ${type.name} ${type.value}` : ''} len ${data.length}`);
  } else {
    parts.push(`${data.length} bytes, too short for Ethernet`);
  }
  if (s.problem) parts.push(`[${s.problem}]`);
  return parts.join(' ');
}
