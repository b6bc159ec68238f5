// Checksum helpers (net/core/filter.c): bpf_l3_csum_replace, bpf_l4_csum_replace,
// bpf_csum_diff, bpf_csum_update, bpf_csum_level, with the kernel's one's complement
// arithmetic (include/net/checksum.h, arch/x86/lib/csum-partial_64.c) reproduced bit for bit,
// including which of the two encodings of zero (0 and 0xffff) each step produces.
//
// Values are as the little-endian CPU sees them: a checksum field is read as a u16 from
// memory, and `from`/`to` are the raw loads the program passes (an IPv4 address loaded with a
// 4-byte load). One's complement sums commute with byte swapping, so this is what the kernel
// computes on x86-64.

import type { HelperFn } from '../../engine/machine.js';
import type { HelperEnv } from './index.js';
import { EACCES, EFAULT, EINVAL, ENOTSUPP, ctxArg, memArgTransient, packetWritten, requireType, sizeArg } from './common.js';

/** csum_add(): 32-bit one's complement addition (end-around carry). */
export function csumAdd(a: number, b: number): number {
  const res = ((a >>> 0) + (b >>> 0)) >>> 0;
  return (res + (res < b >>> 0 ? 1 : 0)) >>> 0;
}

/** csum_sub() */
export function csumSub(a: number, b: number): number {
  return csumAdd(a, ~b >>> 0);
}

/** csum_fold(): the complement of the 32-bit sum folded to 16 bits. */
export function csumFold(sum: number): number {
  let s = (sum & 0xffff) + (sum >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** csum_from32to16(): the 32-bit sum folded to 16 bits (not complemented). */
export function csumFrom32to16(sum: number): number {
  return ((((sum >>> 0) + (((sum >>> 16) | (sum << 16)) >>> 0)) >>> 0) >>> 16) & 0xffff;
}

/** csum16_add(): 16-bit one's complement addition. */
function csum16Add(sum: number, addend: number): number {
  const res = (sum + addend) & 0xffff;
  return (res + (res < (addend & 0xffff) ? 1 : 0)) & 0xffff;
}

/** csum_replace_by_diff(): the new checksum field after adding `diff` to the data it covers. */
export function csumReplaceByDiff(field: number, diff: number): number {
  return csumFold(csumAdd(diff, ~field >>> 0));
}

/** csum_replace4() */
export function csumReplace4(field: number, from: number, to: number): number {
  const tmp = csumSub(~field >>> 0, from >>> 0);
  return csumFold(csumAdd(tmp, to >>> 0));
}

/** csum_replace2(): the 16-bit variant l3_csum_replace uses for 2-byte fields. */
export function csumReplace2(field: number, from: number, to: number): number {
  return ~csum16Add(csum16Add(~field & 0xffff, ~from & 0xffff), to & 0xffff) & 0xffff;
}

/**
 * csum_partial() of x86-64: little-endian 64-bit words (the tail zero-padded) added with
 * end-around carry on top of `seed`, folded to 32 bits by csum_finalize_sum(). The 64-bit sum
 * is kept as two unsigned 32-bit halves.
 */
export function csumPartial(bytes: Uint8Array, seed: number): number {
  let lo = seed >>> 0;
  let hi = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i += 8) {
    const wl = word32(bytes, i, n);
    const wh = word32(bytes, i + 4, n);
    const l = lo + wl;
    const h = hi + wh + (l > 0xffffffff ? 1 : 0);
    lo = l >>> 0;
    hi = h >>> 0;
    // A carry out of bit 63 comes back in at bit 0; the sum is then at most 2^64 - 2, so this cannot carry again.
    if (h > 0xffffffff) {
      lo = (lo + 1) >>> 0;
      if (lo === 0) hi = (hi + 1) >>> 0;
    }
  }
  // The high half of t + ror64(t, 32).
  return (hi + lo + (lo + hi > 0xffffffff ? 1 : 0)) >>> 0;
}

/** The little-endian u32 at i, bytes past n read as zero. */
function word32(b: Uint8Array, i: number, n: number): number {
  if (i + 4 <= n) return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
  let w = 0;
  for (let k = Math.min(n, i + 4) - 1; k >= i; k--) w = (w << 8) | b[k]!;
  return w >>> 0;
}

/** bpf_csum_diff(): the 16-bit folded sum of `to` minus `from` on top of `seed`. */
export function csumDiff(from: Uint8Array, to: Uint8Array, seed: number): number {
  let ret = seed >>> 0;
  if (from.length && to.length) ret = csumSub(csumPartial(to, ret), csumPartial(from, 0));
  else if (to.length) ret = csumPartial(to, ret);
  else if (from.length) ret = ~csumPartial(from, ~ret >>> 0) >>> 0;
  return csumFrom32to16(ret);
}

const BPF_F_HDR_FIELD_MASK = 0xf;
const BPF_F_PSEUDO_HDR = 1 << 4;
const BPF_F_MARK_MANGLED_0 = 1 << 5;
const BPF_F_MARK_ENFORCE = 1 << 6;
const BPF_F_IPV6 = 1 << 7;
/** CSUM_MANGLED_0: a UDP checksum of zero is sent as 0xffff. */
const CSUM_MANGLED_0 = 0xffff;

export function csumHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // 10: long bpf_l3_csum_replace(struct sk_buff *skb, u32 offset, u64 from, u64 to, u64 flags)
  // 11: long bpf_l4_csum_replace(struct sk_buff *skb, u32 offset, u64 from, u64 to, u64 flags)
  // The test run's skb is CHECKSUM_NONE, so the L4 variant updates the field like the L3 one
  // (inet_proto_csum_replace*() with the pseudo-header flag changing skb->csum only).
  for (const id of [10, 11]) {
    const l4 = id === 11;
    h.set(id, (m) => {
      requireType(env, m, id, ['tc']);
      ctxArg(env, m, id, 1);
      const p = env.packet;
      const flags = m.argLo(5) >>> 0;
      const allowed = l4 ? BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK | BPF_F_IPV6 : BPF_F_HDR_FIELD_MASK;
      if (m.argHi(5) !== 0 || flags & ~allowed) return m.ret(EINVAL);
      const offset = m.argLo(2) >>> 0;
      if (offset > 0xffff || offset & 1) return m.ret(EFAULT);
      if (offset + 2 > p.end - p.data) return m.ret(EFAULT);
      const buf = p.buffer();
      const at = p.data + offset;
      const field = buf[at]! | (buf[at + 1]! << 8);
      const mangledZero = l4 && (flags & BPF_F_MARK_MANGLED_0) !== 0;
      if (mangledZero && !(flags & BPF_F_MARK_ENFORCE) && field === 0) return m.ret(0);
      const from = m.argLo(3) >>> 0;
      const to = m.argLo(4) >>> 0;
      let sum: number;
      switch (flags & BPF_F_HDR_FIELD_MASK) {
        case 0:
          if (from !== 0 || m.argHi(3) !== 0) return m.ret(EINVAL);
          sum = csumReplaceByDiff(field, to);
          break;
        case 2:
          sum = l4 ? csumReplace4(field, from & 0xffff, to & 0xffff) : csumReplace2(field, from, to);
          break;
        case 4:
          sum = csumReplace4(field, from, to);
          break;
        default:
          return m.ret(EINVAL);
      }
      if (mangledZero && sum === 0) sum = CSUM_MANGLED_0;
      buf[at] = sum & 0xff;
      buf[at + 1] = sum >>> 8;
      packetWritten(env, m, at, at + 2);
      m.ret(0);
    });
  }

  // 28: s64 bpf_csum_diff(__be32 *from, u32 from_size, __be32 *to, u32 to_size, __wsum seed)
  h.set(28, (m) => {
    requireType(env, m, 28, ['tc', 'xdp']);
    const fromSize = sizeArg(m, 28, 2, true);
    const toSize = sizeArg(m, 28, 4, true);
    const from = memArgTransient(m, 28, 1, fromSize, 'the old data');
    const to = memArgTransient(m, 28, 3, toSize, 'the new data', true);
    m.ret(csumDiff(from, to, m.argLo(5)));
  });

  // 40: s64 bpf_csum_update(struct sk_buff *skb, __wsum csum): only for CHECKSUM_COMPLETE packets.
  h.set(40, (m) => {
    requireType(env, m, 40, ['tc']);
    ctxArg(env, m, 40, 1);
    m.ret(ENOTSUPP);
  });

  // 135: long bpf_csum_level(struct sk_buff *skb, u64 level)
  h.set(135, (m) => {
    requireType(env, m, 135, ['tc']);
    ctxArg(env, m, 135, 1);
    const p = env.packet;
    const level = m.argHi(2) !== 0 ? -1 : m.argLo(2);
    switch (level) {
      case 0: // BPF_CSUM_LEVEL_QUERY
        return m.ret(p.csumLevel >= 0 ? p.csumLevel : EACCES);
      case 1: // BPF_CSUM_LEVEL_INC (SKB_MAX_CSUM_LEVEL is 3)
        p.csumLevel = p.csumLevel < 0 ? 0 : Math.min(p.csumLevel + 1, 3);
        break;
      case 2: // BPF_CSUM_LEVEL_DEC
        if (p.csumLevel >= 0) p.csumLevel--;
        break;
      case 3: // BPF_CSUM_LEVEL_RESET
        p.csumLevel = -1;
        break;
      default:
        return m.ret(EINVAL);
    }
    m.ret(0);
  });
  return h;
}
