// Differential tests: the fixtures' programs run in Rewind and in the kernel (bpftool prog run)
// on the same packets; return values, output packets and (where passed) contexts must agree.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadObject } from '../../elf/index.js';
import { Session } from '../session.js';
import { ethernet, ipv4, ipv6, udp, vlan } from '../../packet/build.js';
import { KernelOracle, type KernelRun } from './fixtures/oracle.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const oracle = KernelOracle.open();
if (typeof oracle === 'string') console.log(`kernel comparison of the helpers skipped: ${oracle}`);
afterAll(() => {
  if (typeof oracle !== 'string') oracle.close();
});

/** A deterministic byte generator (xorshift32). */
function bytes(n: number, seed: number): Uint8Array {
  let x = seed >>> 0 || 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** An Ethernet frame of `len` bytes: unicast MACs, IPv4 type, pseudo-random payload. */
function frame(len: number, seed: number): Uint8Array {
  const f = bytes(len, seed);
  f.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
  return f;
}

interface Loaded {
  session: Session;
  pins: Map<string, string>;
}

const loaded = new Map<string, Loaded>();
function load(obj: string): Loaded {
  let l = loaded.get(obj);
  if (!l) {
    const file = fixture(obj);
    const o = loadObject(readFileSync(file), file);
    const k = oracle as KernelOracle;
    l = { session: new Session(o.programs, o.maps), pins: k.load(file, obj.replace(/\W/g, '_')) };
    loaded.set(obj, l);
  }
  return l;
}

/** Runs `prog` of `obj` in both; the kernel's XDP output starts at data_meta, so Rewind's metadata goes first. */
function both(obj: string, prog: string, packet: Uint8Array, ctxIn?: Uint8Array): { rewind: KernelRun; kernel: KernelRun } {
  const { session, pins } = load(obj);
  const out = session.run(prog, { packet, ctxBytes: ctxIn });
  if (out.fault) throw out.fault;
  const packetOut = out.metadata ? Uint8Array.from([...out.metadata, ...out.packet!]) : out.packet!;
  const rewind: KernelRun = { retval: out.retval, packet: packetOut, ctx: ctxIn ? out.ctx : undefined };
  const kernel = (oracle as KernelOracle).run(pins.get(prog)!, packet, ctxIn);
  return { rewind, kernel };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * The __sk_buff fields convert_skb_to___skb() copies back into ctx_out (mark, priority,
 * ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, hwtstamp); the rest of the kernel's
 * ctx_out is what went in, where Rewind's context holds the values the program saw.
 */
const SKB_CTX_OUT: [number, number][] = [[8, 12], [32, 44], [48, 68], [152, 168], [184, 192]];

/** Both agree on the return value and the packet, and on the ctx_out bytes in `ctxRanges` when a context goes in. */
function agree(obj: string, prog: string, packet: Uint8Array, what: string, ctxIn?: Uint8Array, ctxRanges: [number, number][] = SKB_CTX_OUT): KernelRun {
  const { rewind, kernel } = both(obj, prog, packet, ctxIn);
  expect({ what, retval: rewind.retval }).toEqual({ what, retval: kernel.retval });
  expect({ what, packet: hex(rewind.packet) }).toEqual({ what, packet: hex(kernel.packet) });
  if (ctxIn) {
    const pick = (c: Uint8Array) => ctxRanges.map(([a, b]) => `${a}:${hex(c.subarray(a, b))}`).join(' ');
    expect({ what, ctx: pick(rewind.ctx!) }).toEqual({ what, ctx: pick(kernel.ctx!) });
  }
  return kernel;
}

const u32le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const u64le = (v: bigint) => [...Array(8)].map((_, k) => Number((v >> BigInt(8 * k)) & 0xffn));
const ctxZero = () => new Uint8Array(192);

/** Ethernet/IPv4/UDP with valid checksums and `payload` after the UDP header (at offset 42). */
const udp4 = (payload: Uint8Array, ttl = 64) =>
  ethernet({ type: 0x0800, payload: ipv4({ src: '10.1.2.3', dst: '192.168.7.9', proto: 17, ttl, payload: udp({ sport: 4000, dport: 53, payload }) }) });
const udp6 = (payload: Uint8Array) => ethernet({ type: 0x86dd, payload: ipv6({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: 17, payload: udp({ sport: 4000, dport: 53, payload }) }) });

const haveFixtures = existsSync(fixture('xdp_adjust.o'));

describe.skipIf(typeof oracle === 'string' || !haveFixtures)('helpers against the kernel', () => {
  it('bpf_xdp_adjust_head, _tail and _meta: limits, return codes, moved metadata, zeroed growth', () => {
    // Some kernels refuse bpf_xdp_adjust_meta in XDP programs ("program of this type cannot use
    // helper"): there the object without it is compared, and the metadata cases are not.
    let obj = 'xdp_adjust.o';
    try {
      load(obj);
    } catch (e) {
      const refusal = /cannot use helper bpf_xdp_adjust_meta#54/.exec(String((e as { stderr?: unknown }).stderr ?? e));
      if (!refusal) throw e;
      console.log(`bpf_xdp_adjust_meta not compared with the kernel: this kernel refuses it in XDP programs (${refusal[0]})`);
      obj = 'xdp_adjust_nometa.o';
    }
    const meta = obj === 'xdp_adjust.o';
    const cases: [number, number, number][] = [];
    for (const a of [-300, -217, -216, -215, -100, -1, 0, 1, 13, 40, 46, 47, 50]) cases.push([0, a, 0]);
    for (const a of [-60, -50, -49, -1, 0, 1, 7, 100, 3456, 3457, 3500]) cases.push([1, a, 0]);
    for (const a of [-4, -8, -3, -6, -32, -212, -216, -220, -252, -256, 4, 0]) cases.push([2, a, 0]);
    for (const [a, b] of [[-8, -16], [-8, 16], [-32, -200], [-8, -208], [-8, -209], [-16, 20], [-4, 47]]) cases.push([3, a, b]);
    for (const [a, b] of [[-20, 30], [10, -5], [-216, 3000], [30, -30]]) cases.push([4, a, b]);
    for (const [a, b] of [[7, -3], [100, -100], [-10, 20]]) cases.push([5, a, b]);
    for (const len of [64, 99]) {
      for (const [op, a, b] of cases) {
        if (!meta && (op === 2 || op === 3)) continue;
        const pkt = frame(len, len * 1000 + op * 100 + (a & 0xff));
        pkt.set([op, a & 0xff, (a >> 8) & 0xff, b & 0xff, (b >> 8) & 0xff], 14);
        agree(obj, 'xdp_adjust', pkt, `len ${len} op ${op} a ${a} b ${b}`);
      }
    }
  });

  it('bpf_csum_diff and bpf_xdp_load_bytes/store_bytes', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const pkt = frame(14 + 128 + 40 + (seed % 7), seed * 7919);
      if (seed % 5 === 0) pkt.fill(0, 14, 18); // zero seed
      if (seed % 8 === 0) pkt.fill(0, 14); // all-zero data
      agree('xdp_csum.o', 'xdp_csum', pkt, `seed ${seed}`);
    }
    // Too short for the loads: the helper fails and the program says so.
    agree('xdp_csum.o', 'xdp_csum', frame(100, 3), 'short packet');
  });

  it('bpf_skb_load_bytes, _load_bytes_relative and _store_bytes: bounds, flags, headers', () => {
    for (const len of [60, 77]) {
      for (const lo of [0, 10, len - 8, len - 7, len - 4, len, 0x7fffffff, 0x80000000, 0xffffffff]) {
        for (const so of [0, 20, len - 8, len - 7, 0x80000000]) {
          for (const [flags, hdr] of [[0, 0], [1, 1], [2, 2], [3, 0], [4, 1]]) {
            const pkt = frame(len, len + lo + so);
            pkt.set([...u32le(lo), ...u32le(so), flags!, hdr!], 14);
            agree('tc_bytes.o', 'tc_bytes', pkt, `len ${len} load ${lo} store ${so} flags ${flags} header ${hdr}`);
          }
        }
      }
    }
  });

  it('bpf_l3_csum_replace, bpf_l4_csum_replace and bpf_csum_diff on IPv4/UDP', () => {
    const values = [0x0a000001, 0xffffffff, 0, 0xc0a80709, 0x12345678, 0x0000ffff, 0xffff0000];
    let n = 0;
    for (const op of [0, 1, 2, 3, 4, 5, 6, 7]) {
      for (const nv of values) {
        for (const flags of [0, 0x40, 0x80, 0x20, 0x100, 1]) {
          const pay = new Uint8Array(24);
          pay.set([op, ...u32le(nv), ...u32le(flags)]);
          pay.set(bytes(15, ++n), 9);
          const pkt = udp4(pay, 1 + (n % 250));
          agree('tc_csum.o', 'tc_csum', pkt, `op ${op} value ${nv.toString(16)} flags ${flags.toString(16)}`);
        }
      }
    }
    // csum_replace2() and csum_replace4() disagree on which zero they produce for these.
    for (const nv of [0, 0xffff]) {
      const pay = new Uint8Array(24);
      pay.set([3, ...u32le(nv)]);
      const pkt = udp4(pay);
      pkt.set([0xff, 0xff, 0xff, 0xff], 22);
      agree('tc_csum.o', 'tc_csum', pkt, `16-bit replace of ffff by ${nv.toString(16)} in a ffff checksum`);
    }
  });

  it('bpf_skb_vlan_push and bpf_skb_vlan_pop: the skb tag, the packet tag, protocols and lengths', () => {
    const ip = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udp({ sport: 1, dport: 2, payload: bytes(20, 9) }) });
    const frames: [string, Uint8Array][] = [
      ['untagged', ethernet({ type: 0x0800, payload: ip })],
      ['802.1Q', ethernet({ type: 0x8100, payload: vlan({ vid: 42, pcp: 5, type: 0x0800, payload: ip }) })],
      ['QinQ', ethernet({ type: 0x88a8, payload: vlan({ vid: 7, type: 0x8100, payload: vlan({ vid: 42, type: 0x0800, payload: ip }) }) })],
      ['802.1Q over 802.3 length', ethernet({ type: 0x8100, payload: vlan({ vid: 3, type: 0x0040, payload: bytes(60, 4) }) })],
      ['802.1Q, too short to pop', ethernet({ type: 0x8100, payload: Uint8Array.of(0, 1, 8) })],
    ];
    const sequences = [[1, 0, 0, 0], [1, 1, 0, 0], [1, 2, 3, 0], [3, 0, 0, 0], [3, 3, 0, 0], [1, 3, 3, 0], [4, 1, 1, 3], [2, 1, 3, 3], [3, 1, 3, 3], [3, 3, 3, 3], [1, 1, 1, 1]];
    for (const [name, f] of frames) {
      for (const ops of sequences) {
        const pkt = f.slice();
        // The operations are the first bytes of the source MAC address.
        pkt.set(ops, 6);
        agree('tc_vlan.o', 'tc_vlan', pkt, `${name} ops ${ops.join(',')}`, ctxZero());
      }
    }
  });

  it('bpf_skb_change_head, _change_tail, _adjust_room and _change_proto', () => {
    const ADJ = { FIXED_GSO: 1n, L3_IPV4: 2n, L3_IPV6: 4n, GRE: 8n, UDP: 16n, NO_CSUM_RESET: 32n, L2_ETH: 64n, DECAP4: 128n, DECAP6: 256n };
    const L2 = (len: bigint) => len << 56n;
    const cases: [number, number, number, bigint][] = [];
    for (const a of [0, 14, 100, -1, 16000, 16064 - 80, 16065 - 80]) for (const f of [0n, 1n]) cases.push([0, a, 0, f]);
    for (const a of [0, 13, 14, 34, 50, 200, 16064, 16065]) for (const f of [0n, 1n]) cases.push([1, a, 0, f]);
    const roomFlags = [0n, ADJ.FIXED_GSO, ADJ.L3_IPV4, ADJ.L3_IPV6, ADJ.L3_IPV4 | ADJ.GRE, ADJ.L3_IPV6 | ADJ.UDP, ADJ.L3_IPV4 | ADJ.GRE | ADJ.UDP, ADJ.L3_IPV4 | ADJ.L3_IPV6, ADJ.NO_CSUM_RESET, 1n << 9n, ADJ.DECAP4, ADJ.DECAP6, ADJ.DECAP4 | ADJ.DECAP6, ADJ.L3_IPV4 | ADJ.UDP | ADJ.L2_ETH | L2(14n), ADJ.L3_IPV4 | ADJ.UDP | ADJ.L2_ETH | L2(10n), ADJ.L3_IPV4 | ADJ.L2_ETH | L2(40n)];
    for (const a of [-20, -8, 8, 28, 36, 0x1000, -60, -4095]) for (const mode of [0, 1, 2]) for (const f of roomFlags) cases.push([2, a, mode, f]);
    for (const f of [ADJ.L3_IPV4, ADJ.L3_IPV6 | ADJ.GRE, 0n]) cases.push([3, 24, 0, f]);
    for (const a of [0x86dd, 0x0800, 0x1234]) for (const f of [0n, 1n]) cases.push([4, a, 0, f]);
    for (const [a, mode, f] of [[-20, 0, 0n], [20, 1, ADJ.L3_IPV4]] as const) cases.push([5, a, mode, f]);
    for (const [a, mode, f] of [[14, 1, 0n], [0, 0, ADJ.L3_IPV6]] as const) cases.push([6, a, mode, f]);
    const frames = [(c: Uint8Array) => udp4(c), (c: Uint8Array) => udp6(c), (c: Uint8Array) => ethernet({ type: 0x0806, payload: c })];
    for (const make of frames) {
      for (const [op, a, mode, flags] of cases) {
        const cmd = new Uint8Array(40);
        cmd.set([op, a & 0xff, (a >> 8) & 0xff, mode, ...u64le(flags)]);
        const pkt = make(cmd);
        // The command must sit at offset 14, where the program reads it.
        pkt.set(cmd.subarray(0, 12), 14);
        agree('tc_room.o', 'tc_room', pkt, `${hex(pkt.subarray(12, 14))} op ${op} a ${a} mode ${mode} flags ${flags.toString(16)}`, ctxZero());
      }
    }
  });

  it('__sk_buff narrow loads and narrow stores, with and without ctx_in', () => {
    // Long enough for the 96 bytes of values the program stores after the Ethernet header.
    const pkts = [
      frame(120, 1),
      ethernet({ dst: 'ff:ff:ff:ff:ff:ff', type: 0x86dd, payload: bytes(110, 2) }),
      ethernet({ dst: '00:00:00:00:00:00', type: 0x0806, payload: bytes(116, 3) }),
      ethernet({ dst: '01:00:5e:00:00:01', type: 0x0020, payload: Uint8Array.of(0xff, 0xff, ...bytes(110, 4)) }),
      ethernet({ type: 0x0010, payload: bytes(120, 5) }),
    ];
    const ctxs: (Uint8Array | undefined)[] = [undefined, ctxZero()];
    const c = ctxZero();
    c.set(u32le(0x55667788), 8); // mark
    c.set(u32le(7), 32); // priority
    c.set(u32le(9), 36); // ingress_ifindex
    c.set(u32le(1), 40); // ifindex
    c.set(bytes(20, 6), 48); // cb
    c.set(u64le(123456789n), 152); // tstamp
    c.set(u32le(200), 160); // wire_len
    c.set(u32le(3), 164); // gso_segs
    c.set(u32le(0x12345), 176); // gso_size
    ctxs.push(c);
    for (const pkt of pkts) {
      for (const ctx of ctxs) {
        const k = agree('tc_ctx.o', 'tc_ctx', pkt, `${hex(pkt.subarray(0, 14))} ctx ${ctx === undefined ? 'none' : ctx[8] ? 'set' : 'zero'}`, ctx);
        // The stores succeeded, so the packet carries the values compared.
        expect(k.retval).toBe(0);
      }
    }
  });

  it('bpf_loop, bpf_for_each_map_elem, bpf_strncmp, bpf_snprintf, bpf_trace_printk, bpf_spin_lock', () => {
    const enc = new TextEncoder();
    const cmds: { nr: number; mul: number; limit: number; flags: number; stop: number; num: number; hex: number; c: number; word: string; big: bigint; str: string }[] = [
      { nr: 10, mul: 1, limit: 1000, flags: 0, stop: 99, num: -42, hex: 0xbeef, c: 65, word: 'rewind!', big: -1n, str: 'abc' },
      { nr: 100, mul: 3, limit: 50, flags: 0, stop: 4, num: 7, hex: 0x12345678, c: 122, word: 'rewind', big: 1n << 40n, str: '' },
      { nr: 0, mul: 1, limit: 0, flags: 0, stop: 1, num: 0, hex: 0, c: 32, word: 'rewinds!', big: 0n, str: 'xyzzy12' },
      { nr: 1 << 23, mul: 1, limit: 5000, flags: 0, stop: 2, num: 2147483647, hex: 0xffffffff, c: 33, word: 'REWIND!', big: -(1n << 63n), str: 'q' },
      { nr: (1 << 23) + 1, mul: 1, limit: 0, flags: 0, stop: 3, num: -2147483648, hex: 0x80000000, c: 126, word: 'rewind!x', big: 99999n, str: 'hello' },
      { nr: 5, mul: 2, limit: 0, flags: 1, stop: 16, num: 123456, hex: 0xa, c: 48, word: 'a', big: -5n, str: 'z' },
    ];
    cmds.forEach((c, i) => {
      const cmd = new Uint8Array(64);
      const dv = new DataView(cmd.buffer);
      [c.nr, c.mul, c.limit, c.flags, c.stop, c.num, c.hex].forEach((v, k) => dv.setUint32(4 * k, v >>> 0, true));
      cmd[28] = c.c;
      cmd.set(enc.encode(c.word).subarray(0, 9), 29);
      dv.setBigInt64(40, c.big, true);
      cmd.set(enc.encode(c.str), 48);
      const pkt = frame(14 + 64 + 80 + 64, 100 + i);
      pkt.set(cmd.subarray(0, 56), 14);
      agree('xdp_calls.o', 'xdp_calls', pkt, `command ${i}`);
    });
  });

  it('bpf_redirect and bpf_redirect_map verdicts', () => {
    for (const [op, arg, flags] of [[0, 5, 0], [0, 5, 1], [0, 0, 0], [1, 3, 0], [1, 3, 1], [1, 3, 2], [1, 3, 3], [1, 3, 8], [1, 3, 16], [1, 3, 24], [1, 3, 32], [1, 100, 2], [2, 1, 2], [2, 0, 8], [2, 9, 3]]) {
      const pkt = frame(60, op * 100 + arg);
      pkt.set([op!, ...u32le(arg!), flags!], 14);
      agree('redirect.o', 'xdp_redirect', pkt, `xdp op ${op} arg ${arg} flags ${flags}`);
    }
    for (const [op, arg, flags] of [[0, 5, 0], [0, 5, 1], [0, 5, 2], [0, 1, 0x11], [2, 5, 0], [2, 5, 1]]) {
      const pkt = frame(60, op * 100 + arg);
      pkt.set([op!, ...u32le(arg!), flags!], 14);
      agree('redirect.o', 'tc_redirect', pkt, `tc op ${op} arg ${arg} flags ${flags}`);
    }
  });

  it('xdp_md from ctx_in: the loopback rx queue, metadata taken from data_in, data and data_end written back', () => {
    const pkt = frame(64, 77);
    const xdpCtx = (data: number, dataEnd: number, ingress = 0, queue = 0) => {
      const c = new Uint8Array(24);
      c.set([...u32le(data), ...u32le(dataEnd), ...u32le(0), ...u32le(ingress), ...u32le(queue)]);
      return c;
    };
    agree('xdp_ctx.o', 'xdp_ctx', pkt, 'no ctx_in');
    // ctx_out has data and data_end back as offsets from data_meta; the rest is what went in.
    for (const [data, ingress] of [[0, 0], [8, 0], [4, 1], [32, 1], [48, 0]]) {
      agree('xdp_ctx.o', 'xdp_ctx', pkt, `ctx_in data ${data} ingress ${ingress}`, xdpCtx(data!, 64, ingress), [[0, 8]]);
    }
  });

  it('refuses the ctx_in the kernel refuses', () => {
    const { session, pins } = load('xdp_ctx.o');
    const pkt = frame(64, 5);
    const bad: [string, number[]][] = [
      ['data_meta set', [0, 0, 0, 0, 64, 0, 0, 0, 4, 0, 0, 0]],
      ['metadata length not a multiple of 4', [6, 0, 0, 0, 64, 0, 0, 0]],
      ['less than an Ethernet header after the metadata', [52, 0, 0, 0, 64, 0, 0, 0]],
      ['rx queue without a device', [0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]],
      ['egress_ifindex set', [0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]],
    ];
    for (const [what, bytesIn] of bad) {
      const c = new Uint8Array(24);
      c.set(bytesIn);
      expect(() => (oracle as KernelOracle).run(pins.get('xdp_ctx')!, pkt, c), what).toThrow(/Invalid argument/);
      expect(() => session.run('xdp_ctx', { packet: pkt, ctxBytes: c }), what).toThrow(/ctx_in: xdp_md\.\w+ .*EINVAL/);
    }
    const skb = load('tc_ctx.o');
    const skbBad: [string, number, number][] = [
      ['len', 0, 60],
      ['hash', 68, 1],
      ['protocol', 16, 8],
      ['wire_len below the length', 160, 10],
      ['tstamp_type', 180, 1],
    ];
    for (const [what, off, v] of skbBad) {
      const c = ctxZero();
      c.set(u32le(v), off);
      const big = frame(120, 9);
      expect(() => (oracle as KernelOracle).run(skb.pins.get('tc_ctx')!, big, c), what).toThrow(/Invalid argument/);
      expect(() => skb.session.run('tc_ctx', { packet: big, ctxBytes: c }), what).toThrow(/ctx_in: __sk_buff\.\w+ .*EINVAL/);
    }
  });

  it('ring buffer and perf event output return values, with the ring filling up', () => {
    const { session } = load('output.o');
    // The test run's perf event array has no events: empty Rewind's too (it installs one per CPU).
    const events = session.maps.find((m) => m.name === 'events')!;
    for (let k = 0; k < events.maxEntries; k++) events.delete(Uint8Array.of(k, 0, 0, 0));
    const ops: [number, number][] = [[3, 0], [3, 1], [3, 2], [3, 3], [3, 9], [0, 5], [3, 0], [3, 3], [1, 0], [3, 2], [3, 3], [2, 0], [4, 0], [5, 0], [6, 0], [6, 2], [6, 4], [0, 6], [7, 0], [3, 0], [3, 3], [7, 0], [0, 7], [2, 0]];
    ops.forEach(([op, arg], i) => {
      const pkt = frame(40, i + 1);
      pkt.set([op, arg], 14);
      agree('output.o', 'xdp_output', pkt, `step ${i}: op ${op} arg ${arg}`);
    });
  });

  it('nested callbacks: bpf_loop in bpf_for_each_map_elem in bpf_loop, and eight call frames deep', () => {
    agree('nested.o', 'xdp_nested', frame(60, 1), 'nested');
    agree('nested.o', 'xdp_deepest', frame(60, 2), 'deepest');
  });
});
