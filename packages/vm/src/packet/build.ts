// Small packet builders for tests and example captures. Each returns the bytes of its header
// followed by `payload`; nest them to build a frame:
//   ethernet({ type: 0x0800, payload: ipv4({ src, dst, proto: 6, payload: tcp({ sport, dport, flags: 'S' }) }) })
// TCP, UDP and ICMPv6 checksums cover the IP addresses, so the IP builder writes them.

import { parseIpv4, parseIpv6, parseMac } from './addr.js';
import { internetChecksum, transportChecksum } from './checksum.js';

const ETH_P_IP = 0x0800;

const IPPROTO_HOPOPTS = 0;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_DSTOPTS = 60;

type Mac = string | Uint8Array;
type Ip = string | Uint8Array;

const EMPTY = new Uint8Array(0);
const mac = (m: Mac | undefined, fallback: string): Uint8Array => (m instanceof Uint8Array ? m : parseMac(m ?? fallback));
const ip4 = (a: Ip): Uint8Array => (a instanceof Uint8Array ? a : parseIpv4(a));
const ip6 = (a: Ip): Uint8Array => (a instanceof Uint8Array ? a : parseIpv6(a));

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

function put32(b: Uint8Array, off: number, v: number): void {
  put16(b, off, v >>> 16);
  put16(b, off + 2, v & 0xffff);
}

export function ethernet(o: { dst?: Mac; src?: Mac; type: number; payload?: Uint8Array }): Uint8Array {
  const h = new Uint8Array(14);
  h.set(mac(o.dst, '02:00:00:00:00:02'), 0);
  h.set(mac(o.src, '02:00:00:00:00:01'), 6);
  put16(h, 12, o.type);
  return concat(h, o.payload ?? EMPTY);
}

/** An 802.1Q tag's last four bytes (TCI and inner type); the outer type field carries the TPID. */
export function vlan(o: { vid: number; pcp?: number; dei?: boolean; type: number; payload?: Uint8Array }): Uint8Array {
  const h = new Uint8Array(4);
  put16(h, 0, ((o.pcp ?? 0) << 13) | (o.dei ? 0x1000 : 0) | (o.vid & 0xfff));
  put16(h, 2, o.type);
  return concat(h, o.payload ?? EMPTY);
}

/** An Ethernet/IPv4 ARP packet (RFC 826). */
export function arp(o: { op: 'request' | 'reply' | number; sha: Mac; spa: Ip; tha?: Mac; tpa: Ip }): Uint8Array {
  const h = new Uint8Array(28);
  put16(h, 0, 1); // htype Ethernet
  put16(h, 2, ETH_P_IP);
  h[4] = 6;
  h[5] = 4;
  put16(h, 6, o.op === 'request' ? 1 : o.op === 'reply' ? 2 : o.op);
  h.set(mac(o.sha, '00:00:00:00:00:00'), 8);
  h.set(ip4(o.spa), 14);
  h.set(mac(o.tha, '00:00:00:00:00:00'), 18);
  h.set(ip4(o.tpa), 24);
  return h;
}

export interface Ipv4Options {
  src: Ip;
  dst: Ip;
  proto: number;
  ttl?: number;
  id?: number;
  tos?: number;
  df?: boolean;
  /** More Fragments. */
  mf?: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset?: number;
  /** Option bytes; padded with End of Option List to a multiple of 4. */
  options?: Uint8Array;
  payload?: Uint8Array;
  /** Total length field; defaults to the real length. */
  totalLength?: number;
  /** Write the TCP/UDP checksum of an unfragmented payload (default true). */
  transportChecksum?: boolean;
}

export function ipv4(o: Ipv4Options): Uint8Array {
  const opts = o.options ?? EMPTY;
  const hlen = 20 + ((opts.length + 3) & ~3);
  if (hlen > 60) throw new RangeError(`IPv4 options of ${opts.length} bytes do not fit a 60-byte header`);
  const src = ip4(o.src);
  const dst = ip4(o.dst);
  const payload = fillTransportChecksum(o.payload ?? EMPTY, o.proto, src, dst, o.transportChecksum !== false && !o.mf && !o.fragOffset);
  const h = new Uint8Array(hlen);
  h[0] = 0x40 | (hlen / 4);
  h[1] = o.tos ?? 0;
  put16(h, 2, o.totalLength ?? hlen + payload.length);
  put16(h, 4, o.id ?? 0);
  put16(h, 6, (o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) >> 3));
  h[8] = o.ttl ?? 64;
  h[9] = o.proto;
  h.set(src, 12);
  h.set(dst, 16);
  h.set(opts, 20);
  put16(h, 10, internetChecksum(h));
  return concat(h, payload);
}

export type Ipv6Extension =
  | { type: 'hopopts' | 'dstopts'; /** option TLVs, padded with Pad1/PadN */ options?: Uint8Array }
  | { type: 'fragment'; offset: number; more?: boolean; id: number }
  | { type: 'routing'; routingType: number; segmentsLeft: number; addresses: Ip[] };

export interface Ipv6Options {
  src: Ip;
  dst: Ip;
  /** The upper-layer protocol after any extension headers. */
  nextHeader: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  extensions?: Ipv6Extension[];
  payload?: Uint8Array;
  /** Write the TCP/UDP/ICMPv6 checksum of an unfragmented payload (default true). */
  transportChecksum?: boolean;
}

const EXT_PROTO = { hopopts: IPPROTO_HOPOPTS, dstopts: IPPROTO_DSTOPTS, routing: IPPROTO_ROUTING, fragment: IPPROTO_FRAGMENT };

export function ipv6(o: Ipv6Options): Uint8Array {
  const src = ip6(o.src);
  let finalDst = ip6(o.dst);
  const exts = o.extensions ?? [];
  const parts: Uint8Array[] = [];
  let fragmented = false;
  exts.forEach((e, i) => {
    const next = i + 1 < exts.length ? EXT_PROTO[exts[i + 1]!.type] : o.nextHeader;
    if (e.type === 'fragment') {
      const f = new Uint8Array(8);
      f[0] = next;
      put16(f, 2, (e.offset & ~7) | (e.more ? 1 : 0));
      put32(f, 4, e.id);
      parts.push(f);
      fragmented = true;
    } else if (e.type === 'routing') {
      const addrs = e.addresses.map(ip6);
      const r = new Uint8Array(8 + 16 * addrs.length);
      r[0] = next;
      r[1] = 2 * addrs.length;
      r[2] = e.routingType;
      r[3] = e.segmentsLeft;
      if (e.routingType === 4) r[4] = addrs.length - 1; // SRH Last Entry
      addrs.forEach((a, j) => r.set(a, 8 + 16 * j));
      parts.push(r);
      // RFC 8200 8.1: the pseudo-header names the final destination.
      if (e.segmentsLeft > 0 && addrs.length > 0) finalDst = e.routingType === 4 ? addrs[0]! : addrs[addrs.length - 1]!;
    } else {
      const opts = e.options ?? EMPTY;
      const len = (2 + opts.length + 7) & ~7;
      const h = new Uint8Array(len);
      h[0] = next;
      h[1] = len / 8 - 1;
      h.set(opts, 2);
      const pad = len - 2 - opts.length;
      if (pad === 1) h[len - 1] = 0; // Pad1
      else if (pad > 1) {
        h[2 + opts.length] = 1; // PadN
        h[3 + opts.length] = pad - 2;
      }
      parts.push(h);
    }
  });
  const upper = fillTransportChecksum(o.payload ?? EMPTY, o.nextHeader, src, finalDst, o.transportChecksum !== false && !fragmented);
  const payload = concat(...parts, upper);
  const h = new Uint8Array(40);
  put32(h, 0, (6 << 28) | ((o.trafficClass ?? 0) << 20) | ((o.flowLabel ?? 0) & 0xfffff));
  put16(h, 4, payload.length);
  h[6] = exts.length ? EXT_PROTO[exts[0]!.type] : o.nextHeader;
  h[7] = o.hopLimit ?? 64;
  h.set(src, 8);
  h.set(ip6(o.dst), 24);
  return concat(h, payload);
}

function fillTransportChecksum(payload: Uint8Array, proto: number, src: Uint8Array, dst: Uint8Array, fill: boolean): Uint8Array {
  const at = proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : proto === IPPROTO_ICMPV6 && src.length === 16 ? 2 : -1;
  if (!fill || at < 0 || payload.length < at + 2) return payload;
  const seg = payload.slice();
  put16(seg, at, 0);
  put16(seg, at, transportChecksum(src, dst, proto, seg));
  return seg;
}

export type TcpOption =
  | { kind: 'eol' | 'nop' | 'sackOk' }
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; shift: number }
  | { kind: 'sack'; blocks: [left: number, right: number][] }
  | { kind: 'timestamp'; value: number; echo: number };

function tcpOptionBytes(opt: TcpOption): number[] {
  const u32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  switch (opt.kind) {
    case 'eol':
      return [0];
    case 'nop':
      return [1];
    case 'mss':
      return [2, 4, opt.value >> 8, opt.value & 0xff];
    case 'wscale':
      return [3, 3, opt.shift];
    case 'sackOk':
      return [4, 2];
    case 'sack':
      return [5, 2 + 8 * opt.blocks.length, ...opt.blocks.flatMap(([l, r]) => [...u32(l), ...u32(r)])];
    case 'timestamp':
      return [8, 10, ...u32(opt.value), ...u32(opt.echo)];
  }
}

/** TCP flag letters as tcpdump prints them: F S R P . (ACK) U E W. */
const TCP_FLAG_LETTERS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, '.': 0x10, U: 0x20, E: 0x40, W: 0x80 };

export function tcpFlags(flags: string | number): number {
  if (typeof flags === 'number') return flags;
  let v = 0;
  for (const ch of flags) {
    const bit = TCP_FLAG_LETTERS[ch];
    if (bit === undefined) throw new RangeError(`unknown TCP flag '${ch}' in '${flags}' (use F S R P . U E W)`);
    v |= bit;
  }
  return v;
}

export interface TcpOptions {
  sport: number;
  dport: number;
  /** tcpdump's letters ('S', 'S.', 'P.', 'F.', 'R') or the flags byte. */
  flags?: string | number;
  seq?: number;
  ack?: number;
  window?: number;
  urgent?: number;
  options?: TcpOption[] | Uint8Array;
  payload?: Uint8Array;
}

/** A TCP segment; its checksum is written by ipv4()/ipv6(). */
export function tcp(o: TcpOptions): Uint8Array {
  const opts = o.options instanceof Uint8Array ? o.options : Uint8Array.from((o.options ?? []).flatMap(tcpOptionBytes));
  const hlen = 20 + ((opts.length + 3) & ~3);
  if (hlen > 60) throw new RangeError(`TCP options of ${opts.length} bytes do not fit a 60-byte header`);
  const h = new Uint8Array(hlen);
  put16(h, 0, o.sport);
  put16(h, 2, o.dport);
  put32(h, 4, o.seq ?? 0);
  put32(h, 8, o.ack ?? 0);
  h[12] = (hlen / 4) << 4;
  h[13] = tcpFlags(o.flags ?? 0);
  put16(h, 14, o.window ?? 65535);
  put16(h, 18, o.urgent ?? 0);
  h.set(opts, 20);
  return concat(h, o.payload ?? EMPTY);
}

/** A UDP datagram; its checksum is written by ipv4()/ipv6(). */
export function udp(o: { sport: number; dport: number; payload?: Uint8Array }): Uint8Array {
  const payload = o.payload ?? EMPTY;
  const h = new Uint8Array(8);
  put16(h, 0, o.sport);
  put16(h, 2, o.dport);
  put16(h, 4, 8 + payload.length);
  return concat(h, payload);
}

/**
 * An ICMP echo request or reply (type 8/0), or with `v6` an ICMPv6 one (128/129). The ICMP
 * checksum is computed here; the ICMPv6 one covers a pseudo-header, so ipv6() writes it.
 */
export function icmpEcho(o: { id: number; seq: number; reply?: boolean; v6?: boolean; payload?: Uint8Array }): Uint8Array {
  const h = new Uint8Array(8);
  h[0] = o.v6 ? (o.reply ? 129 : 128) : o.reply ? 0 : 8;
  put16(h, 4, o.id);
  put16(h, 6, o.seq);
  const msg = concat(h, o.payload ?? EMPTY);
  if (!o.v6) put16(msg, 2, internetChecksum(msg));
  return msg;
}
