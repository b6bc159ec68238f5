// skb metadata helpers (net/core/filter.c): the flow hash (bpf_get_hash_recalc,
// bpf_set_hash, bpf_set_hash_invalid), bpf_skb_change_type, and tunnel metadata
// (bpf_skb_set_tunnel_key, bpf_skb_get_tunnel_key).
//
// The kernel's flow hash is jhash2 of the dissected flow keys with a key chosen at boot; Rewind
// hashes the same keys (protocol, addresses and ports, ordered so both directions of a flow
// agree) with jhash2 and a key taken from the session's seed, so the value is reproducible but
// not the kernel's.

import type { HelperFn } from '../../engine/machine.js';
import type { PacketBuffer } from '../packet.js';
import type { HelperEnv } from './index.js';
import { EINVAL, EPROTO, ctxArg, memArg, requireType, setCtxField, sizeArg, writeArg } from './common.js';
import { skbProtocol } from './packet.js';

const rol32 = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** jhash2() of lib/jhash.h. */
export function jhash2(k: readonly number[], initval: number): number {
  let a = (0xdeadbeef + (k.length << 2) + initval) >>> 0;
  let b = a;
  let c = a;
  let i = 0;
  let n = k.length;
  while (n > 3) {
    a = (a + k[i]!) >>> 0;
    b = (b + k[i + 1]!) >>> 0;
    c = (c + k[i + 2]!) >>> 0;
    a = (a - c) >>> 0; a ^= rol32(c, 4); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rol32(a, 6); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rol32(b, 8); b = (b + a) >>> 0;
    a = (a - c) >>> 0; a ^= rol32(c, 16); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rol32(a, 19); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rol32(b, 4); b = (b + a) >>> 0;
    n -= 3;
    i += 3;
  }
  if (n === 0) return c >>> 0;
  if (n >= 3) c = (c + k[i + 2]!) >>> 0;
  if (n >= 2) b = (b + k[i + 1]!) >>> 0;
  a = (a + k[i]!) >>> 0;
  c ^= b; c = (c - rol32(b, 14)) >>> 0;
  a ^= c; a = (a - rol32(c, 11)) >>> 0;
  b ^= a; b = (b - rol32(a, 25)) >>> 0;
  c ^= b; c = (c - rol32(b, 16)) >>> 0;
  a ^= c; a = (a - rol32(c, 4)) >>> 0;
  b ^= a; b = (b - rol32(a, 14)) >>> 0;
  c ^= b; c = (c - rol32(b, 24)) >>> 0;
  return c >>> 0;
}

/** The flow keys the hash covers: protocol, then addresses and ports with the lower endpoint first. */
function flowKeys(p: PacketBuffer, proto: number): { words: number[]; l4: boolean } {
  const buf = p.buffer();
  const l3 = p.network;
  const avail = p.end - l3;
  const word = (at: number) => ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
  let ipProto = 0;
  let src: number[] = [];
  let dst: number[] = [];
  let l4 = -1;
  if (proto === 0x0800 && avail >= 20) {
    ipProto = buf[l3 + 9]!;
    src = [word(l3 + 12)];
    dst = [word(l3 + 16)];
    const fragment = ((buf[l3 + 6]! & 0x1f) << 8) | buf[l3 + 7]!;
    if (fragment === 0) l4 = l3 + (buf[l3]! & 0xf) * 4;
  } else if (proto === 0x86dd && avail >= 40) {
    ipProto = buf[l3 + 6]!;
    src = [0, 1, 2, 3].map((k) => word(l3 + 8 + 4 * k));
    dst = [0, 1, 2, 3].map((k) => word(l3 + 24 + 4 * k));
    l4 = l3 + 40;
  }
  let sport = 0;
  let dport = 0;
  const hasPorts = l4 >= 0 && [6, 17, 33, 132, 136].includes(ipProto) && l4 + 4 <= p.end;
  if (hasPorts) {
    sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  }
  const cmp = (x: number[], y: number[]) => {
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return x[k]! - y[k]!;
    return 0;
  };
  // __flow_hash_consistentify()
  const c = cmp(dst, src);
  if (c < 0 || (c === 0 && dport < sport)) {
    [src, dst] = [dst, src];
    [sport, dport] = [dport, sport];
  }
  return { words: [((proto << 16) | ipProto) >>> 0, ...src, ...dst, ((sport << 16) | dport) >>> 0], l4: hasPorts };
}

/** struct bpf_tunnel_key: 44 bytes; older programs pass the shorter layouts at these sizes. */
const TUNNEL_KEY_SIZE = 44;
const TUNNEL_KEY_COMPAT = new Set([28, 24, 22, 8]);
const BPF_F_TUNINFO_IPV6 = 1;
const BPF_F_ZERO_CSUM_TX = 1 << 1;
const BPF_F_DONT_FRAGMENT = 1 << 2;
const BPF_F_SEQ_NUMBER = 1 << 3;
const BPF_F_NO_TUNNEL_KEY = 1 << 4;
const BPF_F_TUNINFO_FLAGS = 1 << 4;
// IP_TUNNEL_*_BIT of include/net/ip_tunnels.h, as ip_tunnel_flags_to_be16() reports them.
const TUNNEL_CSUM = 1 << 0;
const TUNNEL_KEY = 1 << 2;
const TUNNEL_SEQ = 1 << 3;
const TUNNEL_DONT_FRAGMENT = 1 << 8;
const TUNNEL_NOCACHE = 1 << 13;

export function skbHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // 34: u32 bpf_get_hash_recalc(struct sk_buff *skb): skb_get_hash(), computing the hash when unset.
  h.set(34, (m) => {
    requireType(env, m, 34, ['tc']);
    const ctx = ctxArg(env, m, 34, 1);
    if (!env.run.hashValid) {
      env.run.nondeterministic.add(34);
      const seed = Math.imul((env.session.opts.seed ?? 0) ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
      const hash = jhash2(flowKeys(env.packet, skbProtocol(ctx)).words, seed);
      setCtxField(m, ctx, 'hash', hash || 1);
      env.run.hashValid = true;
    }
    m.ret(ctx.get('hash'));
  });

  // 41: void bpf_set_hash_invalid(struct sk_buff *skb)
  h.set(41, (m) => {
    requireType(env, m, 41, ['tc']);
    setCtxField(m, ctxArg(env, m, 41, 1), 'hash', 0);
    env.run.hashValid = false;
    m.ret(0);
  });

  // 48: long bpf_set_hash(struct sk_buff *skb, u32 hash): a software L4 hash.
  h.set(48, (m) => {
    requireType(env, m, 48, ['tc']);
    setCtxField(m, ctxArg(env, m, 48, 1), 'hash', m.argLo(2) >>> 0);
    env.run.hashValid = true;
    m.ret(0);
  });

  // 32: long bpf_skb_change_type(struct sk_buff *skb, u32 type): PACKET_HOST..PACKET_OTHERHOST only.
  h.set(32, (m) => {
    requireType(env, m, 32, ['tc']);
    const ctx = ctxArg(env, m, 32, 1);
    const type = m.argLo(2) >>> 0;
    if (ctx.get('pkt_type') > 3 || type > 3) return m.ret(EINVAL);
    setCtxField(m, ctx, 'pkt_type', type);
    m.ret(0);
  });

  // 21: long bpf_skb_set_tunnel_key(struct sk_buff *skb, struct bpf_tunnel_key *key, u32 size, u64 flags)
  h.set(21, (m) => {
    requireType(env, m, 21, ['tc']);
    ctxArg(env, m, 21, 1);
    const size = sizeArg(m, 21, 3, false);
    const from = memArg(m, 21, 2, size, 'the tunnel key');
    const flags = m.argLo(4) >>> 0;
    if (m.argHi(4) !== 0 || flags & ~(BPF_F_TUNINFO_IPV6 | BPF_F_ZERO_CSUM_TX | BPF_F_DONT_FRAGMENT | BPF_F_SEQ_NUMBER | BPF_F_NO_TUNNEL_KEY)) return m.ret(EINVAL);
    if (size !== TUNNEL_KEY_SIZE && !TUNNEL_KEY_COMPAT.has(size)) return m.ret(EINVAL);
    const key = new Uint8Array(TUNNEL_KEY_SIZE);
    key.set(from);
    const dv = new DataView(key.buffer);
    if ((!(flags & BPF_F_TUNINFO_IPV6) && dv.getUint32(24, true)) || dv.getUint16(22, true)) return m.ret(EINVAL);
    // The label keeps its 20 flow label bits.
    dv.setUint32(24, flags & BPF_F_TUNINFO_IPV6 ? dv.getUint32(24, true) & 0xfffff : 0, true);
    if (!(flags & BPF_F_TUNINFO_IPV6)) {
      key.fill(0, 8, 20);
      key.fill(0, 32, 44);
    }
    let tunFlags = TUNNEL_NOCACHE;
    if (flags & BPF_F_DONT_FRAGMENT) tunFlags |= TUNNEL_DONT_FRAGMENT;
    if (!(flags & BPF_F_ZERO_CSUM_TX)) tunFlags |= TUNNEL_CSUM;
    if (flags & BPF_F_SEQ_NUMBER) tunFlags |= TUNNEL_SEQ;
    if (!(flags & BPF_F_NO_TUNNEL_KEY)) tunFlags |= TUNNEL_KEY;
    env.run.tunnel = { key, flags: (tunFlags & 0xffff) | (flags & BPF_F_TUNINFO_IPV6 ? 0x10000 : 0) };
    m.ret(0);
  });

  // 20: long bpf_skb_get_tunnel_key(struct sk_buff *skb, struct bpf_tunnel_key *key, u32 size, u64 flags)
  // Reads the metadata bpf_skb_set_tunnel_key set in this run (the test run's skb has none):
  // the transmit-side key's local address is the remote one seen from here, and back.
  h.set(20, (m) => {
    requireType(env, m, 20, ['tc']);
    ctxArg(env, m, 20, 1);
    const size = sizeArg(m, 20, 3, false);
    const flags = m.argLo(4) >>> 0;
    const info = env.run.tunnel;
    const fail = (err: number) => {
      writeArg(m, 20, 2, new Uint8Array(size), 'zeros');
      m.ret(err);
    };
    if (!info || m.argHi(4) !== 0 || flags & ~(BPF_F_TUNINFO_IPV6 | BPF_F_TUNINFO_FLAGS)) return fail(EINVAL);
    const ipv6 = (info.flags & 0x10000) !== 0;
    if (ipv6 !== ((flags & BPF_F_TUNINFO_IPV6) !== 0)) return fail(EPROTO);
    if (size !== TUNNEL_KEY_SIZE && !(TUNNEL_KEY_COMPAT.has(size) && (size !== 8 || !ipv6))) return fail(EINVAL);
    const out = new Uint8Array(TUNNEL_KEY_SIZE);
    const dv = new DataView(out.buffer);
    out.set(info.key.subarray(0, 4), 0);
    out[20] = info.key[20]!;
    out[21] = info.key[21]!;
    if (flags & BPF_F_TUNINFO_FLAGS) {
      const f = info.flags & 0xffff;
      dv.setUint16(22, ((f & 0xff) << 8) | (f >>> 8), true);
    }
    if (ipv6) {
      out.set(info.key.subarray(28, 44), 4);
      out.set(info.key.subarray(4, 20), 28);
      dv.setUint32(24, new DataView(info.key.buffer).getUint32(24, true), true);
    } else {
      out.set(info.key.subarray(28, 32), 4);
      out.set(info.key.subarray(4, 8), 28);
    }
    writeArg(m, 20, 2, out.subarray(0, size), 'the tunnel key');
    m.ret(0);
  });
  return h;
}
