import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ethernet, ipv4, ipv6, tcp, udp } from './build.js';
import {
  CaptureError,
  LINKTYPE_ETHERNET,
  LINKTYPE_IPV4,
  LINKTYPE_IPV6,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_RAW,
  PacketHexError,
  parsePacketHex,
  readCapture,
  writePcap,
} from './pcap.js';

const TCPDUMP = '/usr/bin/tcpdump';
const hasTcpdump = existsSync(TCPDUMP);
if (!hasTcpdump) console.warn('tcpdump not found at /usr/bin/tcpdump: skipping the tests that compare with it');

const work = mkdtempSync(join(tmpdir(), 'rewind-pcap-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function tcpdump(args: string[]): string {
  return execFileSync(TCPDUMP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const syn = ethernet({
  type: 0x0800,
  payload: ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp({ sport: 1234, dport: 80, flags: 'S', seq: 1 }) }),
});
const dns = ethernet({
  type: 0x0800,
  payload: ipv4({ src: '10.0.0.2', dst: '10.0.0.1', proto: 17, payload: udp({ sport: 53, dport: 5353, payload: new Uint8Array(12) }) }),
});
const v6 = ethernet({
  type: 0x86dd,
  payload: ipv6({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: 6, payload: tcp({ sport: 1, dport: 443, flags: 'S.' }) }),
});

/** A pcapng writer for tests: blocks in either byte order. */
class Pcapng {
  private parts: Uint8Array[] = [];
  constructor(private le = true) {}
  block(type: number, body: Uint8Array): this {
    const padded = (body.length + 3) & ~3;
    const out = new Uint8Array(12 + padded);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, type, this.le);
    dv.setUint32(4, out.length, this.le);
    out.set(body, 8);
    dv.setUint32(out.length - 4, out.length, this.le);
    this.parts.push(out);
    return this;
  }
  shb(le = this.le): this {
    this.le = le;
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 0x1a2b3c4d, le);
    dv.setUint16(4, 1, le);
    dv.setUint16(6, 0, le);
    dv.setBigInt64(8, -1n, le);
    return this.block(0x0a0d0d0a, b);
  }
  idb(linkType: number, opts: { tsresol?: number; snaplen?: number; tsoffset?: bigint } = {}): this {
    const b = new Uint8Array(8 + 8 + 12 + 4);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, linkType, this.le);
    dv.setUint32(4, opts.snaplen ?? 0, this.le);
    let at = 8;
    if (opts.tsresol !== undefined) {
      dv.setUint16(at, 9, this.le);
      dv.setUint16(at + 2, 1, this.le);
      dv.setUint8(at + 4, opts.tsresol);
      at += 8;
    }
    if (opts.tsoffset !== undefined) {
      dv.setUint16(at, 14, this.le);
      dv.setUint16(at + 2, 8, this.le);
      dv.setBigInt64(at + 4, opts.tsoffset, this.le);
      at += 12;
    }
    at += 4; // opt_endofopt
    return this.block(1, b.subarray(0, at));
  }
  epb(iface: number, ticks: bigint, data: Uint8Array, origLen = data.length): this {
    const b = new Uint8Array(20 + data.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, iface, this.le);
    dv.setUint32(4, Number(ticks >> 32n), this.le);
    dv.setUint32(8, Number(ticks & 0xffffffffn), this.le);
    dv.setUint32(12, data.length, this.le);
    dv.setUint32(16, origLen, this.le);
    b.set(data, 20);
    return this.block(6, b);
  }
  opb(iface: number, ticks: bigint, data: Uint8Array): this {
    const b = new Uint8Array(20 + data.length);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, iface, this.le);
    dv.setUint32(4, Number(ticks >> 32n), this.le);
    dv.setUint32(8, Number(ticks & 0xffffffffn), this.le);
    dv.setUint32(12, data.length, this.le);
    dv.setUint32(16, data.length, this.le);
    b.set(data, 20);
    return this.block(2, b);
  }
  spb(data: Uint8Array): this {
    const b = new Uint8Array(4 + data.length);
    new DataView(b.buffer).setUint32(0, data.length, this.le);
    b.set(data, 4);
    return this.block(3, b);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** Rewrites a little-endian pcap from writePcap as big-endian (header and record fields swapped). */
function toBigEndian(le: Uint8Array): Uint8Array {
  const out = le.slice();
  const src = new DataView(le.buffer, le.byteOffset, le.byteLength);
  const dst = new DataView(out.buffer);
  const swap32 = (o: number): void => dst.setUint32(o, src.getUint32(o, true), false);
  const swap16 = (o: number): void => dst.setUint16(o, src.getUint16(o, true), false);
  swap32(0);
  swap16(4);
  swap16(6);
  [8, 12, 16, 20].forEach(swap32);
  let off = 24;
  while (off < le.length) {
    const incl = src.getUint32(off + 8, true);
    [0, 4, 8, 12].forEach((d) => swap32(off + d));
    off += 16 + incl;
  }
  return out;
}

/** An SLL (cooked v1) header: pkttype, ARPHRD, address length, 8 address bytes, protocol. */
function sll(pkttype: number, addr: number[], protocol: number, payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(16 + payload.length);
  const dv = new DataView(h.buffer);
  dv.setUint16(0, pkttype);
  dv.setUint16(2, 1);
  dv.setUint16(4, addr.length);
  h.set(addr.slice(0, 8), 6);
  dv.setUint16(14, protocol);
  h.set(payload, 16);
  return h;
}

function sll2(protocol: number, ifindex: number, addr: number[], payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(20 + payload.length);
  const dv = new DataView(h.buffer);
  dv.setUint16(0, protocol);
  dv.setUint32(4, ifindex);
  dv.setUint16(8, 1);
  h[10] = 0; // PACKET_HOST
  h[11] = addr.length;
  h.set(addr.slice(0, 8), 12);
  h.set(payload, 20);
  return h;
}

describe('writePcap / readCapture', () => {
  it('round-trips packets and microsecond timestamps', () => {
    const packets = [
      { timestampNs: 1_700_000_000_123_456_000n, data: syn },
      { timestampNs: 1_700_000_001_000_001_000n, data: dns },
    ];
    const cap = readCapture(writePcap(packets), 'rt.pcap');
    expect(cap.linkType).toBe(LINKTYPE_ETHERNET);
    expect(cap.packets.map((p) => p.timestampNs)).toEqual(packets.map((p) => p.timestampNs));
    expect(cap.packets.map((p) => p.data)).toEqual([syn, dns]);
    expect(cap.packets.map((p) => p.index)).toEqual([0, 1]);
    expect(cap.packets[0]!.origLen).toBe(syn.length);
    expect(cap.packets[0]!.synthesizedEthernet).toBeUndefined();
  });

  it('truncates to microseconds unless asked for nanoseconds', () => {
    const ts = 1_700_000_000_123_456_789n;
    expect(readCapture(writePcap([{ timestampNs: ts, data: syn }]), 'us.pcap').packets[0]!.timestampNs).toBe(1_700_000_000_123_456_000n);
    expect(readCapture(writePcap([{ timestampNs: ts, data: syn }], { nanosecond: true }), 'ns.pcap').packets[0]!.timestampNs).toBe(ts);
  });

  it('reads big-endian files', () => {
    const le = writePcap([{ timestampNs: 5_000_000_007n, data: v6 }], { nanosecond: true });
    const cap = readCapture(toBigEndian(le), 'be.pcap');
    expect(cap.packets[0]!.timestampNs).toBe(5_000_000_007n);
    expect(cap.packets[0]!.data).toEqual(v6);
  });

  it('keeps the original length apart from the captured bytes', () => {
    const cap = readCapture(writePcap([{ timestampNs: 0n, data: syn.subarray(0, 40), origLen: syn.length }], { snaplen: 40 }), 's.pcap');
    expect(cap.packets[0]!.data.length).toBe(40);
    expect(cap.packets[0]!.origLen).toBe(syn.length);
  });

  it('refuses timestamps that pcap cannot hold', () => {
    expect(() => writePcap([{ timestampNs: -1n, data: syn }])).toThrow(/negative timestamp/);
    expect(() => writePcap([{ timestampNs: 2n ** 32n * 1_000_000_000n, data: syn }])).toThrow(/32-bit seconds/);
  });
});

describe.skipIf(!hasTcpdump)('agreement with tcpdump', () => {
  const packets = [
    { timestampNs: 1_700_000_000_000_001_000n, data: syn },
    { timestampNs: 1_700_000_000_500_000_000n, data: dns },
    { timestampNs: 1_700_000_002_999_999_000n, data: v6 },
  ];

  it('tcpdump reads writePcap output: same packet count and timestamps', () => {
    for (const nanosecond of [false, true]) {
      const file = join(work, `ours-${nanosecond}.pcap`);
      writeFileSync(file, writePcap(packets, { nanosecond }));
      const lines = tcpdump(['-r', file, '-n', '--nano', '-tt']).trim().split('\n');
      expect(lines).toHaveLength(packets.length);
      const stamps = lines.map((l) => l.split(' ')[0]);
      expect(stamps).toEqual(['1700000000.000001000', '1700000000.500000000', '1700000002.999999000']);
    }
  });

  it('reads what tcpdump writes, in both resolutions', () => {
    const ours = join(work, 'in.pcap');
    writeFileSync(ours, writePcap(packets, { nanosecond: true }));
    for (const precision of ['micro', 'nano']) {
      const theirs = join(work, `tcpdump-${precision}.pcap`);
      // tcpdump writes the packets that match its filter: the TCP ones.
      tcpdump(['-r', ours, '--time-stamp-precision', precision, '-w', theirs, 'tcp']);
      const cap = readCapture(new Uint8Array(readFileSync(theirs)), theirs);
      expect(cap.packets.map((p) => p.data)).toEqual([syn, v6]);
      expect(cap.packets.map((p) => p.timestampNs)).toEqual([1_700_000_000_000_001_000n, 1_700_000_002_999_999_000n]);
    }
  });

  it('tcpdump reads our hand-built pcapng the same way', () => {
    const file = join(work, 'hand.pcapng');
    const ng = new Pcapng().shb().idb(LINKTYPE_ETHERNET, { tsresol: 9 }).epb(0, 1_700_000_000_000_000_042n, syn).spb(dns).epb(0, 1_700_000_001_000_000_000n, v6);
    writeFileSync(file, ng.bytes());
    expect(tcpdump(['-r', file, '-n']).trim().split('\n')).toHaveLength(3);
    expect(readCapture(ng.bytes(), file).packets).toHaveLength(3);
  });

  it('synthesises the Ethernet type tcpdump reports for a cooked capture', () => {
    const ip = ipv4({ src: '10.1.1.1', dst: '10.1.1.2', proto: 17, payload: udp({ sport: 1, dport: 2 }) });
    const file = join(work, 'sll.pcap');
    writeFileSync(file, writePcap([{ timestampNs: 0n, data: sll(0, [2, 0, 0, 0, 0, 9], 0x0800, ip) }], { linkType: LINKTYPE_LINUX_SLL }));
    const line = tcpdump(['-r', file, '-n', '-e']);
    expect(line).toMatch(/02:00:00:00:00:09 ethertype IPv4 \(0x0800\)/);
    const p = readCapture(new Uint8Array(readFileSync(file)), file).packets[0]!;
    expect(p.data.subarray(6, 12)).toEqual(Uint8Array.from([2, 0, 0, 0, 0, 9]));
    expect(p.data.subarray(12, 14)).toEqual(Uint8Array.from([0x08, 0x00]));
  });
});

describe('pcapng', () => {
  it('reads interfaces with different link types and timestamp resolutions', () => {
    const ip = ipv4({ src: '10.0.0.9', dst: '10.0.0.1', proto: 17, payload: udp({ sport: 9, dport: 7 }) });
    const ng = new Pcapng()
      .shb()
      .idb(LINKTYPE_ETHERNET) // default resolution: microseconds
      .idb(LINKTYPE_LINUX_SLL, { tsresol: 9 })
      .idb(LINKTYPE_IPV4, { tsresol: 0x80 | 10, tsoffset: 100n }) // 2^-10 s per tick, 100 s offset
      .block(0x0bad, new Uint8Array(8)) // unknown block
      .epb(0, 1_500_000n, syn)
      .epb(1, 2_000_000_007n, sll(4, [1, 2, 3, 4, 5, 6], 0x0800, ip))
      .epb(2, 3n * 1024n + 512n, ip)
      .opb(0, 7n, dns)
      .block(5, new Uint8Array(16)); // interface statistics
    const cap = readCapture(ng.bytes(), 'multi.pcapng');
    expect(cap.linkType).toBe(LINKTYPE_ETHERNET);
    expect(cap.packets.map((p) => p.linkType)).toEqual([LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_ETHERNET]);
    expect(cap.packets.map((p) => p.timestampNs)).toEqual([1_500_000_000n, 2_000_000_007n, 103_500_000_000n, 7000n]);
    expect(cap.packets[1]!.synthesizedEthernet).toBe(true);
    expect(cap.packets[1]!.data.subarray(14)).toEqual(ip);
    expect(cap.packets[2]!.data.subarray(14)).toEqual(ip);
    expect(cap.packets[3]!.data).toEqual(dns);
  });

  it('reads big-endian sections and restarts interfaces at each section', () => {
    const a = new Pcapng().shb(false).idb(LINKTYPE_ETHERNET, { tsresol: 3 }).epb(0, 5n, syn).bytes();
    const b = new Pcapng().shb(true).idb(LINKTYPE_RAW).epb(0, 1n, ipv6({ src: '::1', dst: '::2', nextHeader: 59 })).bytes();
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    const cap = readCapture(both, 'two.pcapng');
    expect(cap.packets.map((p) => p.timestampNs)).toEqual([5_000_000n, 1000n]);
    expect(cap.packets[1]!.linkType).toBe(LINKTYPE_RAW);
    expect(cap.packets[1]!.data[12]).toBe(0x86);
    expect(cap.packets[1]!.data[13]).toBe(0xdd);
  });

  it('caps a simple packet block at the interface snaplen', () => {
    const cap = readCapture(new Pcapng().shb().idb(LINKTYPE_ETHERNET, { snaplen: 20 }).spb(syn).bytes(), 'spb.pcapng');
    expect(cap.packets[0]!.data).toEqual(syn.subarray(0, 20));
    expect(cap.packets[0]!.origLen).toBe(syn.length);
  });

  it('names a packet whose interface does not exist', () => {
    expect(() => readCapture(new Pcapng().shb().idb(1).epb(3, 0n, syn).bytes(), 'x.pcapng')).toThrow(
      /^x\.pcapng: offset 60: packet 1 names interface 3, but the section has 1$/,
    );
  });
});

describe('cooked and raw link types', () => {
  const ip = ipv4({ src: '192.168.0.1', dst: '192.168.0.2', proto: 6, payload: tcp({ sport: 5, dport: 6, flags: 'S' }) });

  it('SLL: source MAC from a 6-byte address, zeros otherwise, ethertype from the protocol', () => {
    const cap = readCapture(
      writePcap(
        [
          { timestampNs: 0n, data: sll(0, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff], 0x0800, ip) },
          { timestampNs: 0n, data: sll(4, [], 0x86dd, new Uint8Array(4)) },
          { timestampNs: 0n, data: sll(0, [1, 2, 3, 4, 5, 6], 0x0004, new Uint8Array(3)) }, // ETH_P_802_2: an LLC frame
        ],
        { linkType: LINKTYPE_LINUX_SLL },
      ),
      'sll.pcap',
    );
    const [a, b, c] = cap.packets;
    expect(a!.data).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x08, 0x00, ...ip]));
    expect(a!.origLen).toBe(14 + ip.length);
    expect(a!.synthesizedEthernet).toBe(true);
    expect(b!.data.subarray(0, 14)).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd]));
    // An 802.3 frame: the type field holds the payload length.
    expect(c!.data.subarray(12, 14)).toEqual(Uint8Array.from([0, 3]));
  });

  it('SLL2: same conversion from its own layout', () => {
    const cap = readCapture(writePcap([{ timestampNs: 0n, data: sll2(0x0800, 3, [1, 2, 3, 4, 5, 6], ip) }], { linkType: LINKTYPE_LINUX_SLL2 }), 'sll2.pcap');
    expect(cap.packets[0]!.data).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0x08, 0x00, ...ip]));
    expect(cap.packets[0]!.linkType).toBe(LINKTYPE_LINUX_SLL2);
  });

  it('raw IP: the version picks the ethertype', () => {
    const six = ipv6({ src: '::1', dst: '::2', nextHeader: 59 });
    const raw = readCapture(writePcap([{ timestampNs: 0n, data: ip }, { timestampNs: 0n, data: six }], { linkType: LINKTYPE_RAW }), 'raw.pcap');
    expect(raw.packets.map((p) => (p.data[12]! << 8) | p.data[13]!)).toEqual([0x0800, 0x86dd]);
    expect(raw.packets[0]!.data.subarray(14)).toEqual(ip);
    const v6only = readCapture(writePcap([{ timestampNs: 0n, data: six }], { linkType: LINKTYPE_IPV6 }), 'v6.pcap');
    expect(v6only.packets[0]!.data.subarray(12, 14)).toEqual(Uint8Array.from([0x86, 0xdd]));
    expect(() => readCapture(writePcap([{ timestampNs: 0n, data: Uint8Array.of(0x50, 0) }], { linkType: LINKTYPE_RAW }), 'r.pcap')).toThrow(
      'r.pcap: offset 24: packet 1: raw IP packet has IP version 5',
    );
  });

  it('a truncated cooked header is an error naming the packet', () => {
    expect(() => readCapture(writePcap([{ timestampNs: 0n, data: new Uint8Array(10) }], { linkType: LINKTYPE_LINUX_SLL }), 'c.pcap')).toThrow(
      'c.pcap: offset 24: packet 1: LINUX_SLL header truncated: 10 bytes, need 16',
    );
  });

  it('rejects other link types by name', () => {
    expect(() => readCapture(writePcap([{ timestampNs: 0n, data: syn }], { linkType: 0 }), 'lo.pcap')).toThrow(
      /^lo\.pcap: offset 24: packet 1: NULL \(BSD loopback\) \(0\) is not supported; supported link types: ETHERNET \(1\)/,
    );
  });
});

describe('corrupt files', () => {
  const good = writePcap([
    { timestampNs: 1n, data: syn },
    { timestampNs: 2n, data: dns },
  ]);
  const at = (bytes: Uint8Array, off: number, v: number): Uint8Array => {
    const b = bytes.slice();
    new DataView(b.buffer).setUint32(off, v, true);
    return b;
  };

  it('names each kind of damage with its offset', () => {
    const second = 24 + 16 + syn.length;
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(2), 'f: offset 0: file is 2 bytes, too short for a capture header'],
      [Uint8Array.of(1, 2, 3, 4, 5), 'f: offset 0: not a pcap or pcapng file (magic 0x04030201)'],
      [good.subarray(0, 20), 'f: offset 20: truncated pcap file header: 20 bytes, need 24'],
      [at(good, 4, 0x00040003), 'f: offset 4: unsupported pcap version 3.4'],
      [good.subarray(0, second + 10), `f: offset ${second}: truncated record header of packet 2: 10 bytes, need 16`],
      [good.subarray(0, good.length - 1), `f: offset ${second}: truncated packet record 2: claims ${dns.length} bytes, ${dns.length - 1} remain`],
      [at(at(good, 16, 65535), second + 8, 70000), `f: offset ${second}: packet record 2 claims 70000 bytes, snaplen is 65535`],
    ];
    for (const [bytes, message] of cases) {
      expect(() => readCapture(bytes, 'f')).toThrow(CaptureError);
      expect(() => readCapture(bytes, 'f')).toThrow(message);
    }
  });

  it('pcapng: zero, odd, oversized and mismatched block lengths', () => {
    const ng = new Pcapng().shb().idb(1).epb(0, 0n, syn).bytes();
    const idbAt = 28;
    const cases: [Uint8Array, string][] = [
      [at(ng, idbAt + 4, 0), `g: offset ${idbAt + 4}: block length 0 is invalid (must be a multiple of 4, at least 12)`],
      [at(ng, idbAt + 4, 22), `g: offset ${idbAt + 4}: block length 22 is invalid (must be a multiple of 4, at least 12)`],
      [at(ng, idbAt + 4, 0x7ffffff0), `g: offset ${idbAt + 4}: block length 2147483632 exceeds the ${ng.length - idbAt} bytes left (truncated file?)`],
      [at(ng, idbAt + 20, 28), `g: offset ${idbAt + 20}: block trailing length 28 differs from its leading length 24`],
      [ng.subarray(0, 20), 'g: offset 0: truncated section header block: 20 bytes, need 28'],
      [at(ng, 8, 0x11223344), 'g: offset 8: bad byte-order magic 0x11223344 in section header block'],
      [ng.subarray(idbAt), 'g: offset 0: not a pcap or pcapng file (magic 0x00000001)'],
    ];
    for (const [bytes, message] of cases) expect(() => readCapture(bytes, 'g')).toThrow(message);
  });

  it('fuzz: truncations and mutations parse or throw CaptureError, quickly', () => {
    // mulberry32, a small seeded PRNG, so a failure reproduces.
    let seed = 0x5eed;
    const rand = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const ip = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udp({ sport: 1, dport: 2 }) });
    const seeds = [
      good,
      toBigEndian(writePcap([{ timestampNs: 9n, data: v6 }], { nanosecond: true })),
      writePcap([{ timestampNs: 0n, data: sll(0, [1, 2, 3, 4, 5, 6], 0x0800, ip) }], { linkType: LINKTYPE_LINUX_SLL }),
      new Pcapng().shb().idb(1, { tsresol: 9 }).idb(LINKTYPE_LINUX_SLL2).epb(0, 1n, syn).epb(1, 2n, sll2(0x0800, 1, [], ip)).spb(dns).opb(0, 3n, v6).bytes(),
      new Pcapng(false).shb(false).idb(LINKTYPE_RAW, { tsresol: 0x85 }).epb(0, 1n, ip).bytes(),
    ];
    const started = Date.now();
    let parsed = 0;
    let rejected = 0;
    const attempt = (bytes: Uint8Array): void => {
      try {
        readCapture(bytes, 'fuzz');
        parsed++;
      } catch (e) {
        if (!(e instanceof CaptureError)) throw e;
        expect(e.message).not.toContain('\n');
        rejected++;
      }
    };
    for (const s of seeds) {
      for (let len = 0; len < s.length; len++) attempt(s.subarray(0, len));
      for (let i = 0; i < 1500; i++) {
        const b = s.slice();
        const flips = 1 + Math.floor(rand() * 4);
        for (let f = 0; f < flips; f++) {
          const pos = Math.floor(rand() * b.length);
          // Half the time write an extreme value, which is what breaks length fields.
          b[pos] = rand() < 0.5 ? Math.floor(rand() * 256) : rand() < 0.5 ? 0 : 0xff;
        }
        attempt(b);
      }
    }
    expect(parsed).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('parsePacketHex', () => {
  it('accepts spaces, newlines and colons', () => {
    expect(parsePacketHex('de:ad BE ef\n00\t01\r\n')).toEqual(Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 0x00, 0x01));
    expect(parsePacketHex('')).toEqual(new Uint8Array(0));
  });

  it('names the odd length and the bad character with its line and column', () => {
    expect(() => parsePacketHex('abc')).toThrow(new PacketHexError('packet hex: odd number of hex digits (3); each byte needs two'));
    expect(() => parsePacketHex('00 11\n22 zz')).toThrow("packet hex: line 2 column 4: 'z' is not a hex digit");
  });
});
