import { RewindError } from '../errors.js';
// Capture files: the classic pcap format and pcapng (draft-ietf-opsawg-pcap and
// draft-ietf-opsawg-pcapng). Every packet comes out as an Ethernet frame, because that is
// what XDP and TC programs see; link types without an Ethernet header get one made up.

/** LINKTYPE_* values from the tcpdump.org link-layer header types registry. */
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

const LINKTYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'NULL (BSD loopback)',
  1: 'ETHERNET',
  101: 'RAW',
  105: 'IEEE802_11',
  108: 'LOOP (OpenBSD loopback)',
  113: 'LINUX_SLL',
  127: 'IEEE802_11_RADIOTAP',
  228: 'IPV4',
  229: 'IPV6',
  276: 'LINUX_SLL2',
};

export function linkTypeName(linkType: number): string {
  return LINKTYPE_NAMES[linkType] ?? `link type ${linkType}`;
}

export interface CapturedPacket {
  /** Position in the file, from 0. */
  index: number;
  timestampNs: bigint;
  /** An Ethernet frame, whatever the link type the packet was captured with. */
  data: Uint8Array;
  /** The packet's length on the wire, adjusted like `data` when an Ethernet header was made up. */
  origLen: number;
  /** Set when the Ethernet header in `data` was synthesised (cooked, raw IP captures). */
  synthesizedEthernet?: boolean;
  /** The link type the packet was captured with (its interface's, for pcapng). */
  linkType: number;
}

export interface Capture {
  file: string;
  /** The file header's link type (pcap), or the first interface's (pcapng; Ethernet when there is none). */
  linkType: number;
  packets: CapturedPacket[];
}

/** A capture file that cannot be read: the message names the file, the byte offset and the problem. */
export class CaptureError extends RewindError {
  override name = 'CaptureError';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly detail: string,
  ) {
    super(`${file}: offset ${offset}: ${detail}`);
  }
}

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const PCAPNG_IDB = 1;
const PCAPNG_OPB = 2; // obsolete Packet Block, still written by old tools
const PCAPNG_SPB = 3;
const PCAPNG_EPB = 6;
/** libpcap's MAXIMUM_SNAPLEN: the limit when a header gives no snaplen. */
const MAXIMUM_SNAPLEN = 262144;

const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;

/** Reads a pcap or pcapng file; `file` names it in error messages. Packets are copied out of `bytes`. */
export function readCapture(bytes: Uint8Array, file: string): Capture {
  if (bytes.length < 4) throw new CaptureError(file, 0, `file is ${bytes.length} bytes, too short for a capture header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLE = dv.getUint32(0, true);
  if (magicLE === PCAPNG_SHB) return readPcapng(bytes, dv, file);
  for (const le of [true, false]) {
    const magic = dv.getUint32(0, le);
    if (magic === PCAP_MAGIC_US || magic === PCAP_MAGIC_NS) return readPcap(bytes, dv, file, le, magic === PCAP_MAGIC_NS);
  }
  throw new CaptureError(file, 0, `not a pcap or pcapng file (magic 0x${magicLE.toString(16).padStart(8, '0')})`);
}

function readPcap(bytes: Uint8Array, dv: DataView, file: string, le: boolean, nano: boolean): Capture {
  if (bytes.length < 24) throw new CaptureError(file, bytes.length, `truncated pcap file header: ${bytes.length} bytes, need 24`);
  const major = dv.getUint16(4, le);
  if (major !== 2) throw new CaptureError(file, 4, `unsupported pcap version ${major}.${dv.getUint16(6, le)}`);
  const snaplen = dv.getUint32(16, le);
  // The upper bits of this field carry the FCS length; the link type is the low 16 bits.
  const linkType = dv.getUint32(20, le) & 0xffff;
  const limit = snaplen === 0 ? MAXIMUM_SNAPLEN : snaplen;
  const packets: CapturedPacket[] = [];
  let off = 24;
  while (off < bytes.length) {
    const n = packets.length + 1;
    const remaining = bytes.length - off;
    if (remaining < 16) {
      throw new CaptureError(file, off, `truncated record header of packet ${n}: ${remaining} bytes, need 16`);
    }
    const sec = dv.getUint32(off, le);
    const frac = dv.getUint32(off + 4, le);
    const inclLen = dv.getUint32(off + 8, le);
    const origLen = dv.getUint32(off + 12, le);
    if (inclLen > limit) {
      throw new CaptureError(file, off, `packet record ${n} claims ${inclLen} bytes, snaplen is ${limit}`);
    }
    if (inclLen > remaining - 16) {
      throw new CaptureError(file, off, `truncated packet record ${n}: claims ${inclLen} bytes, ${remaining - 16} remain`);
    }
    const raw = bytes.slice(off + 16, off + 16 + inclLen);
    const timestampNs = BigInt(sec) * 1_000_000_000n + BigInt(frac) * (nano ? 1n : 1000n);
    packets.push(framePacket(file, off, packets.length, timestampNs, raw, origLen, linkType));
    off += 16 + inclLen;
  }
  return { file, linkType, packets };
}

interface Interface {
  linkType: number;
  snaplen: number;
  /** Timestamp units: ticks per second is 10^exp10 or 2^exp2. */
  tsresol: { base: 10 | 2; exp: number };
  tsoffsetSec: bigint;
}

function readPcapng(bytes: Uint8Array, dv: DataView, file: string): Capture {
  const packets: CapturedPacket[] = [];
  let interfaces: Interface[] = [];
  let firstLinkType: number | undefined;
  let le = true;
  let off = 0;
  while (off < bytes.length) {
    const remaining = bytes.length - off;
    if (remaining < 12) throw new CaptureError(file, off, `truncated block header: ${remaining} bytes, need 12`);
    const type = dv.getUint32(off, le);
    if (dv.getUint32(off, true) === PCAPNG_SHB) {
      // Each Section Header Block sets the byte order of its section and starts a fresh interface list.
      if (remaining < 28) throw new CaptureError(file, off, `truncated section header block: ${remaining} bytes, need 28`);
      const magic = dv.getUint32(off + 8, true);
      if (magic === PCAPNG_BYTE_ORDER_MAGIC) le = true;
      else if (dv.getUint32(off + 8, false) === PCAPNG_BYTE_ORDER_MAGIC) le = false;
      else throw new CaptureError(file, off + 8, `bad byte-order magic 0x${magic.toString(16)} in section header block`);
      const major = dv.getUint16(off + 12, le);
      if (major !== 1) throw new CaptureError(file, off + 12, `unsupported pcapng version ${major}.${dv.getUint16(off + 14, le)}`);
      interfaces = [];
    }
    const total = dv.getUint32(off + 4, le);
    if (total < 12 || total % 4 !== 0) {
      throw new CaptureError(file, off + 4, `block length ${total} is invalid (must be a multiple of 4, at least 12)`);
    }
    if (total > remaining) {
      throw new CaptureError(file, off + 4, `block length ${total} exceeds the ${remaining} bytes left (truncated file?)`);
    }
    const trailer = dv.getUint32(off + total - 4, le);
    if (trailer !== total) {
      throw new CaptureError(file, off + total - 4, `block trailing length ${trailer} differs from its leading length ${total}`);
    }
    const body = off + 8;
    const bodyLen = total - 12;
    switch (type) {
      case PCAPNG_SHB:
        break;
      case PCAPNG_IDB: {
        if (bodyLen < 8) throw new CaptureError(file, body, `interface description block body is ${bodyLen} bytes, need 8`);
        const iface: Interface = {
          linkType: dv.getUint16(body, le),
          snaplen: dv.getUint32(body + 4, le),
          tsresol: { base: 10, exp: 6 },
          tsoffsetSec: 0n,
        };
        readIdbOptions(dv, file, body + 8, body + bodyLen, le, iface);
        firstLinkType ??= iface.linkType;
        interfaces.push(iface);
        break;
      }
      case PCAPNG_EPB:
      case PCAPNG_OPB: {
        if (bodyLen < 20) throw new CaptureError(file, body, `packet block body is ${bodyLen} bytes, need 20`);
        const ifaceId = type === PCAPNG_EPB ? dv.getUint32(body, le) : dv.getUint16(body, le);
        const iface = interfaces[ifaceId];
        if (!iface) {
          throw new CaptureError(file, body, `packet ${packets.length + 1} names interface ${ifaceId}, but the section has ${interfaces.length}`);
        }
        const ticks = (BigInt(dv.getUint32(body + 4, le)) << 32n) | BigInt(dv.getUint32(body + 8, le));
        const capLen = dv.getUint32(body + 12, le);
        const origLen = dv.getUint32(body + 16, le);
        if (capLen > bodyLen - 20) {
          throw new CaptureError(file, body + 12, `packet ${packets.length + 1} claims ${capLen} captured bytes, its block holds ${bodyLen - 20}`);
        }
        const raw = bytes.slice(body + 20, body + 20 + capLen);
        packets.push(framePacket(file, off, packets.length, toNs(iface, ticks), raw, origLen, iface.linkType));
        break;
      }
      case PCAPNG_SPB: {
        if (bodyLen < 4) throw new CaptureError(file, body, `simple packet block body is ${bodyLen} bytes, need 4`);
        const iface = interfaces[0];
        if (!iface) throw new CaptureError(file, off, `simple packet block before any interface description block`);
        const origLen = dv.getUint32(body, le);
        // The captured length is implied: the original length, cut to the snaplen and to the block.
        let capLen = Math.min(origLen, bodyLen - 4);
        if (iface.snaplen !== 0) capLen = Math.min(capLen, iface.snaplen);
        const raw = bytes.slice(body + 4, body + 4 + capLen);
        packets.push(framePacket(file, off, packets.length, 0n, raw, origLen, iface.linkType));
        break;
      }
      default:
        // Name resolution, statistics, custom and unknown blocks carry nothing a packet needs.
        break;
    }
    off += total;
  }
  return { file, linkType: firstLinkType ?? LINKTYPE_ETHERNET, packets };
}

function readIdbOptions(dv: DataView, file: string, start: number, end: number, le: boolean, iface: Interface): void {
  let off = start;
  while (off + 4 <= end) {
    const code = dv.getUint16(off, le);
    const len = dv.getUint16(off + 2, le);
    if (code === 0) return; // opt_endofopt
    if (off + 4 + len > end) throw new CaptureError(file, off, `interface option ${code} of ${len} bytes overruns its block`);
    if (code === 9) {
      // if_tsresol: high bit clear means 10^-n seconds per tick, set means 2^-n.
      if (len !== 1) throw new CaptureError(file, off, `if_tsresol option is ${len} bytes, must be 1`);
      const v = dv.getUint8(off + 4);
      iface.tsresol = v & 0x80 ? { base: 2, exp: v & 0x7f } : { base: 10, exp: v };
    } else if (code === 14) {
      if (len !== 8) throw new CaptureError(file, off, `if_tsoffset option is ${len} bytes, must be 8`);
      iface.tsoffsetSec = dv.getBigInt64(off + 4, le);
    }
    off += 4 + ((len + 3) & ~3);
  }
}

function toNs(iface: Interface, ticks: bigint): bigint {
  const { base, exp } = iface.tsresol;
  let ns: bigint;
  if (base === 10) ns = exp <= 9 ? ticks * 10n ** BigInt(9 - exp) : ticks / 10n ** BigInt(exp - 9);
  else ns = (ticks * 1_000_000_000n) >> BigInt(exp);
  return ns + iface.tsoffsetSec * 1_000_000_000n;
}

/** Builds the packet record, making up an Ethernet header for link types that lack one. */
function framePacket(
  file: string,
  recordOffset: number,
  index: number,
  timestampNs: bigint,
  raw: Uint8Array,
  origLen: number,
  linkType: number,
): CapturedPacket {
  const fail = (what: string): never => {
    throw new CaptureError(file, recordOffset, `packet ${index + 1}: ${what}`);
  };
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      return { index, timestampNs, data: raw, origLen, linkType };
    case LINKTYPE_LINUX_SLL:
    case LINKTYPE_LINUX_SLL2: {
      // SLL: pkttype(2) hatype(2) halen(2) addr(8) protocol(2).
      // SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8).
      const sll2 = linkType === LINKTYPE_LINUX_SLL2;
      const hlen = sll2 ? 20 : 16;
      if (raw.length < hlen) fail(`${linkTypeName(linkType)} header truncated: ${raw.length} bytes, need ${hlen}`);
      const halen = sll2 ? raw[11]! : (raw[4]! << 8) | raw[5]!;
      const addrAt = sll2 ? 12 : 6;
      const protocol = sll2 ? (raw[0]! << 8) | raw[1]! : (raw[14]! << 8) | raw[15]!;
      const payload = raw.subarray(hlen);
      // The cooked header holds only the sender's address: it becomes the source MAC.
      const src = halen === 6 ? raw.subarray(addrAt, addrAt + 6) : new Uint8Array(6);
      // Protocols below 0x0600 (ETH_P_802_3, ETH_P_802_2) mean an 802.3 frame: the type field is a length.
      const type = protocol >= 0x0600 ? protocol : Math.min(payload.length, 0xffff);
      return {
        index,
        timestampNs,
        data: withEthernet(new Uint8Array(6), src, type, payload),
        origLen: Math.max(0, origLen - hlen) + ETH_HLEN,
        synthesizedEthernet: true,
        linkType,
      };
    }
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6: {
      let type = linkType === LINKTYPE_IPV4 ? ETH_P_IP : ETH_P_IPV6;
      if (linkType === LINKTYPE_RAW) {
        if (raw.length === 0) fail('raw IP packet is empty');
        const version = raw[0]! >> 4;
        if (version !== 4 && version !== 6) fail(`raw IP packet has IP version ${version}`);
        type = version === 4 ? ETH_P_IP : ETH_P_IPV6;
      }
      const zero = new Uint8Array(6);
      return {
        index,
        timestampNs,
        data: withEthernet(zero, zero, type, raw),
        origLen: origLen + ETH_HLEN,
        synthesizedEthernet: true,
        linkType,
      };
    }
    default:
      return fail(
        `${linkTypeName(linkType)} (${linkType}) is not supported; supported link types: ETHERNET (1), RAW (101), LINUX_SLL (113), IPV4 (228), IPV6 (229), LINUX_SLL2 (276)`,
      );
  }
}

function withEthernet(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(ETH_HLEN + payload.length);
  out.set(dst, 0);
  out.set(src, 6);
  out[12] = type >> 8;
  out[13] = type & 0xff;
  out.set(payload, ETH_HLEN);
  return out;
}

export interface PcapRecord {
  timestampNs: bigint;
  data: Uint8Array;
  /** Length on the wire; defaults to data.length. */
  origLen?: number;
}

export interface WritePcapOptions {
  /** LINKTYPE_* of the data (default Ethernet). */
  linkType?: number;
  /** Write the nanosecond-resolution magic and nanosecond timestamps (default microseconds). */
  nanosecond?: boolean;
  /** The header's snaplen (default 262144, libpcap's maximum). */
  snaplen?: number;
}

/** Writes a little-endian classic pcap file. Microsecond files truncate timestamps to the microsecond. */
export function writePcap(packets: readonly PcapRecord[], opts: WritePcapOptions = {}): Uint8Array {
  const nano = opts.nanosecond ?? false;
  const snaplen = opts.snaplen ?? MAXIMUM_SNAPLEN;
  let size = 24;
  for (const p of packets) size += 16 + p.data.length;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, nano ? PCAP_MAGIC_NS : PCAP_MAGIC_US, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, snaplen, true);
  dv.setUint32(20, opts.linkType ?? LINKTYPE_ETHERNET, true);
  let off = 24;
  packets.forEach((p, i) => {
    if (p.timestampNs < 0n) throw new RangeError(`packet ${i + 1}: negative timestamp ${p.timestampNs}`);
    const sec = p.timestampNs / 1_000_000_000n;
    if (sec > 0xffffffffn) throw new RangeError(`packet ${i + 1}: timestamp ${p.timestampNs} ns does not fit pcap's 32-bit seconds`);
    const subsec = p.timestampNs % 1_000_000_000n;
    dv.setUint32(off, Number(sec), true);
    dv.setUint32(off + 4, Number(nano ? subsec : subsec / 1000n), true);
    dv.setUint32(off + 8, p.data.length, true);
    dv.setUint32(off + 12, p.origLen ?? p.data.length, true);
    out.set(p.data, off + 16);
    off += 16 + p.data.length;
  });
  return out;
}

export class PacketHexError extends RewindError {
  override name = 'PacketHexError';
}

/** Parses packet bytes written as hex; spaces, newlines and colons may separate the digits. */
export function parsePacketHex(text: string): Uint8Array {
  const digits: number[] = [];
  let line = 1;
  let col = 0;
  for (const ch of text) {
    col++;
    if (ch === '\n') {
      line++;
      col = 0;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === ':') continue;
    const v = parseInt(ch, 16);
    if (Number.isNaN(v)) {
      throw new PacketHexError(`packet hex: line ${line} column ${col}: '${ch}' is not a hex digit`);
    }
    digits.push(v);
  }
  if (digits.length % 2 !== 0) {
    throw new PacketHexError(`packet hex: odd number of hex digits (${digits.length}); each byte needs two`);
  }
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = (digits[2 * i]! << 4) | digits[2 * i + 1]!;
  return out;
}
