// Helpers that read, write, grow and shrink the packet (net/core/filter.c): the XDP buffer
// adjustments, skb load/store, skb_change_head/tail, skb_adjust_room, skb_change_proto, VLAN
// push/pop, and LD_ABS/LD_IND (bpf_skb_load_helper_*). They work on the run's packet buffer in
// the machine's flat memory, so the program's loads see their effects, and report the bytes
// they change to the recorder. Packet pointers a program holds keep their buffer offsets; the
// kernel's verifier makes programs reload them after these helpers.

import type { HelperFn, Machine } from '../../engine/machine.js';
import { SKF_LL_OFF, SKF_NET_OFF } from '../../cbpf/insn.js';
import type { Context } from '../contexts.js';
import { HEADER_UNSET, type PacketBuffer } from '../packet.js';
import type { HelperEnv } from './index.js';
import { EACCES, EALREADY, EFAULT, EINVAL, ENOMEM, ENOTSUPP, ctxArg, memArg, packetWritten, requireType, setCtxField, sizeArg, writeArg } from './common.js';

/** sizeof(struct xdp_frame) on x86-64: the part of the XDP headroom a program cannot take. */
export const XDP_FRAME_SIZE = 40;
/** The test run's XDP frame (frame_sz) and the skb_shared_info it reserves at the end. */
const XDP_FRAME_SZ = 4096;
const XDP_TAILROOM = 320;
const ETH_HLEN = 14;
const ETH_ALEN = 6;
const VLAN_HLEN = 4;
/** BPF_SKB_MAX_LEN: SKB_MAX_ALLOC on x86-64 (four pages less the skb_shared_info). */
export const BPF_SKB_MAX_LEN = 16384 - 320;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const INT_MAX = 0x7fffffff;

// bpf_skb_store_bytes flags.
const BPF_F_RECOMPUTE_CSUM = 1;
const BPF_F_INVALIDATE_HASH = 2;
// bpf_skb_adjust_room flags and modes.
const BPF_F_ADJ_ROOM_FIXED_GSO = 1n;
const BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 = 2n;
const BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 = 4n;
const BPF_F_ADJ_ROOM_ENCAP_L4_GRE = 8n;
const BPF_F_ADJ_ROOM_ENCAP_L4_UDP = 16n;
const BPF_F_ADJ_ROOM_NO_CSUM_RESET = 32n;
const BPF_F_ADJ_ROOM_ENCAP_L2_ETH = 64n;
const BPF_F_ADJ_ROOM_DECAP_L3_IPV4 = 128n;
const BPF_F_ADJ_ROOM_DECAP_L3_IPV6 = 256n;
const BPF_ADJ_ROOM_ENCAP_L2_SHIFT = 56n;
const ENCAP_L3_MASK = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;
const DECAP_L3_MASK = BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
const ADJ_ROOM_MASK =
  BPF_F_ADJ_ROOM_FIXED_GSO | ENCAP_L3_MASK | BPF_F_ADJ_ROOM_ENCAP_L4_GRE | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH | (0xffn << BPF_ADJ_ROOM_ENCAP_L2_SHIFT) | DECAP_L3_MASK;
const BPF_ADJ_ROOM_NET = 0;
const BPF_ADJ_ROOM_MAC = 1;

const SKB_TYPES = ['tc', 'socket', 'cgroup_skb'] as const;

/** A __be16 as the kernel keeps it, read as a little-endian number, and back. */
export const swab16 = (v: number): number => ((v & 0xff) << 8) | ((v >>> 8) & 0xff);

/** skb->protocol in host order. */
export function skbProtocol(ctx: Context): number {
  return swab16(ctx.get('protocol'));
}
export function setSkbProtocol(m: Machine, ctx: Context, proto: number): void {
  setCtxField(m, ctx, 'protocol', swab16(proto));
}

/** skb_clear_hash(). */
export function clearSkbHash(env: HelperEnv, m: Machine, ctx: Context): void {
  setCtxField(m, ctx, 'hash', 0);
  env.run.hashValid = false;
}

/** The skb of the running tc/socket/cgroup program, checking the program type and the ctx argument. */
function skbArgs(env: HelperEnv, m: Machine, id: number, types: readonly ('tc' | 'socket' | 'cgroup_skb')[]): { ctx: Context; p: PacketBuffer } {
  requireType(env, m, id, types);
  return { ctx: ctxArg(env, m, id, 1), p: env.packet };
}

function xdpArgs(env: HelperEnv, m: Machine, id: number): PacketBuffer {
  requireType(env, m, id, ['xdp']);
  ctxArg(env, m, id, 1);
  return env.packet;
}

/** skb_push() of `n` bytes: grows the headroom as skb_cow_head() would, then moves data. */
function push(p: PacketBuffer, n: number): void {
  p.ensureHeadroom(n);
  p.data -= n;
  p.meta = p.data;
}

/** The kernel's bpf_skb_generic_push(): room for `len` bytes after the first `off`, zeroed. */
function netHeaderPush(p: PacketBuffer, off: number, len: number): void {
  const transSame = p.transport === p.network;
  push(p, len);
  const buf = p.buffer();
  buf.copyWithin(p.data, p.data + len, p.data + len + off);
  buf.fill(0, p.data + off, p.data + off + len);
  if (p.mac !== HEADER_UNSET) p.mac -= len;
  p.network -= len;
  if (transSame) p.transport = p.network;
}

/** The kernel's bpf_skb_generic_pop(): removes `len` bytes after the first `off`. */
function netHeaderPop(p: PacketBuffer, off: number, len: number): boolean {
  if (off + len > p.end - p.data) return false;
  const transSame = p.transport === p.network;
  const buf = p.buffer();
  buf.copyWithin(p.data + len, p.data, p.data + off);
  p.data += len;
  p.meta = p.data;
  if (p.mac !== HEADER_UNSET) p.mac += len;
  p.network += len;
  if (transSame) p.transport = p.network;
  return true;
}

/** Reports the packet's bytes (and the headroom a push uncovered) as written, and re-reads the bounds. */
function changed(env: HelperEnv, m: Machine, from: number): void {
  const p = env.packet;
  p.refresh();
  packetWritten(env, m, Math.min(from, p.meta), p.end);
}

export function packetHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // ---- XDP ----

  // 44: long bpf_xdp_adjust_head(struct xdp_md *xdp_md, int delta)
  h.set(44, (m) => {
    const p = xdpArgs(env, m, 44);
    const delta = m.argLo(2) | 0;
    const metalen = p.data - p.meta;
    const data = p.data + delta;
    if (data < XDP_FRAME_SIZE + metalen || data > p.end - ETH_HLEN) return m.ret(EINVAL);
    const from = Math.min(p.meta, p.meta + delta);
    if (metalen) p.buffer().copyWithin(p.meta + delta, p.meta, p.data);
    p.meta += delta;
    p.data = data;
    changed(env, m, from);
    m.ret(0);
  });

  // 65: long bpf_xdp_adjust_tail(struct xdp_md *xdp_md, int delta): grown bytes are zeroed.
  h.set(65, (m) => {
    const p = xdpArgs(env, m, 65);
    const delta = m.argLo(2) | 0;
    const end = p.end + delta;
    if (end > XDP_FRAME_SZ - XDP_TAILROOM || end < p.data + ETH_HLEN) return m.ret(EINVAL);
    if (delta > 0) p.buffer().fill(0, p.end, end);
    const from = p.end;
    p.end = end;
    changed(env, m, from);
    m.ret(0);
  });

  // 54: long bpf_xdp_adjust_meta(struct xdp_md *xdp_md, int delta)
  h.set(54, (m) => {
    const p = xdpArgs(env, m, 54);
    const meta = p.meta + (m.argLo(2) | 0);
    const metalen = p.data - meta;
    if (meta < XDP_FRAME_SIZE || meta > p.data) return m.ret(EINVAL);
    // xdp_metalen_invalid(): 4-byte multiples that fit skb_shared_info's u8 meta_len.
    if (metalen % 4 !== 0 || metalen > 255) return m.ret(EACCES);
    p.meta = meta;
    p.refresh();
    m.ret(0);
  });

  // 188: int bpf_xdp_get_buff_len(struct xdp_md *xdp_md)
  h.set(188, (m) => {
    const p = xdpArgs(env, m, 188);
    m.ret(p.end - p.data);
  });

  // 189: long bpf_xdp_load_bytes(struct xdp_md *xdp_md, u32 offset, void *buf, u32 len)
  // 190: long bpf_xdp_store_bytes(struct xdp_md *xdp_md, u32 offset, void *buf, u32 len)
  for (const id of [189, 190]) {
    h.set(id, (m) => {
      const p = xdpArgs(env, m, id);
      const offset = m.argLo(2) >>> 0;
      const len = sizeArg(m, id, 4, false);
      if (offset > 0xffff || len > 0xffff) return m.ret(EFAULT);
      if (offset + len > p.end - p.data) return m.ret(EINVAL);
      const at = p.data + offset;
      if (id === 189) writeArg(m, id, 3, p.buffer().slice(at, at + len), 'packet bytes');
      else {
        p.buffer().set(memArg(m, id, 3, len, 'the bytes'), at);
        packetWritten(env, m, at, at + len);
      }
      m.ret(0);
    });
  }

  // ---- skb ----

  // 26: long bpf_skb_load_bytes(const void *skb, u32 offset, void *to, u32 len)
  // On failure the destination is zeroed.
  h.set(26, (m) => {
    const { p } = skbArgs(env, m, 26, SKB_TYPES);
    const offset = m.argLo(2) >>> 0;
    const len = sizeArg(m, 26, 4, false);
    if (offset > INT_MAX || offset + len > p.end - p.data) {
      writeArg(m, 26, 3, new Uint8Array(len), 'zeros');
      return m.ret(EFAULT);
    }
    writeArg(m, 26, 3, p.buffer().slice(p.data + offset, p.data + offset + len), 'packet bytes');
    m.ret(0);
  });

  // 68: long bpf_skb_load_bytes_relative(const void *skb, u32 offset, void *to, u32 len, u32 start_header)
  h.set(68, (m) => {
    const { p } = skbArgs(env, m, 68, SKB_TYPES);
    const offset = m.argLo(2) >>> 0;
    const len = sizeArg(m, 68, 4, false);
    const header = m.argLo(5) >>> 0;
    // BPF_HDR_START_MAC (0) or BPF_HDR_START_NET (1).
    const start = header === 0 ? p.mac : header === 1 ? p.network : HEADER_UNSET;
    if (offset > 0xffff || start === HEADER_UNSET || start + offset + len > p.end) {
      writeArg(m, 68, 3, new Uint8Array(len), 'zeros');
      return m.ret(EFAULT);
    }
    writeArg(m, 68, 3, p.buffer().slice(start + offset, start + offset + len), 'packet bytes');
    m.ret(0);
  });

  // 9: long bpf_skb_store_bytes(struct sk_buff *skb, u32 offset, const void *from, u32 len, u64 flags)
  h.set(9, (m) => {
    const { ctx, p } = skbArgs(env, m, 9, ['tc']);
    const offset = m.argLo(2) >>> 0;
    const len = sizeArg(m, 9, 4, false);
    const from = memArg(m, 9, 3, len, 'the bytes');
    if (m.argHi(5) !== 0 || m.argLo(5) & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH)) return m.ret(EINVAL);
    if (offset > INT_MAX || offset + len > p.end - p.data) return m.ret(EFAULT);
    p.buffer().set(from, p.data + offset);
    // BPF_F_RECOMPUTE_CSUM only updates skb->csum of CHECKSUM_COMPLETE packets; the test run's are not.
    if (m.argLo(5) & BPF_F_INVALIDATE_HASH) clearSkbHash(env, m, ctx);
    packetWritten(env, m, p.data + offset, p.data + offset + len);
    m.ret(0);
  });

  // 39: long bpf_skb_pull_data(struct sk_buff *skb, u32 len): the packet is linear already.
  h.set(39, (m) => {
    const { p } = skbArgs(env, m, 39, ['tc']);
    m.ret((m.argLo(2) >>> 0) > p.end - p.data ? ENOMEM : 0);
  });

  // 43: long bpf_skb_change_head(struct sk_buff *skb, u32 len, u64 flags)
  // Pushes zeroed bytes before the data and makes them the MAC header.
  h.set(43, (m) => {
    const { p } = skbArgs(env, m, 43, ['tc']);
    const room = m.argLo(2) >>> 0;
    const len = p.end - p.data;
    if (m.argLo(3) !== 0 || m.argHi(3) !== 0 || room > INT_MAX || len + room > BPF_SKB_MAX_LEN) return m.ret(EINVAL);
    push(p, room);
    p.buffer().fill(0, p.data, p.data + room);
    p.mac = p.data;
    changed(env, m, p.data);
    m.ret(0);
  });

  // 38: long bpf_skb_change_tail(struct sk_buff *skb, u32 len, u64 flags)
  h.set(38, (m) => {
    const { p } = skbArgs(env, m, 38, ['tc']);
    const newLen = m.argLo(2) >>> 0;
    // __bpf_skb_min_len(): the headers the skb has set must stay.
    let minLen = 0;
    if (p.network - p.data > 0) minLen = p.network - p.data;
    if (p.transport !== HEADER_UNSET && p.transport - p.data > 0) minLen = p.transport - p.data;
    if (m.argLo(3) !== 0 || m.argHi(3) !== 0 || newLen > BPF_SKB_MAX_LEN || newLen < minLen) return m.ret(EINVAL);
    if (p.encapsulation) return m.ret(ENOTSUPP);
    const end = p.data + newLen;
    if (end > p.end) p.buffer().fill(0, p.end, end);
    const from = Math.min(p.end, end);
    p.end = end;
    changed(env, m, from);
    m.ret(0);
  });

  // 50: long bpf_skb_adjust_room(struct sk_buff *skb, s32 len_diff, u32 mode, u64 flags)
  h.set(50, (m) => {
    const { ctx, p } = skbArgs(env, m, 50, ['tc']);
    const flags = m.arg(4);
    const r = adjustRoom(m, ctx, p, m.argLo(2) | 0, m.argLo(3) >>> 0, flags);
    // __skb_reset_checksum_unnecessary() unless BPF_F_ADJ_ROOM_NO_CSUM_RESET.
    if (r === 0 && !(flags & BPF_F_ADJ_ROOM_NO_CSUM_RESET)) p.csumLevel = -1;
    if (r === 0) changed(env, m, p.data);
    else p.refresh();
    m.ret(r);
  });

  // 31: long bpf_skb_change_proto(struct sk_buff *skb, __be16 proto, u64 flags): IPv4 <-> IPv6 room.
  h.set(31, (m) => {
    const { ctx, p } = skbArgs(env, m, 31, ['tc']);
    if (m.argLo(3) !== 0 || m.argHi(3) !== 0) return m.ret(EINVAL);
    const to = swab16(m.argLo(2) & 0xffff);
    const from = skbProtocol(ctx);
    const off = p.network - p.mac;
    // sizeof(struct ipv6hdr) - sizeof(struct iphdr)
    const diff = 20;
    if (from === ETH_P_IP && to === ETH_P_IPV6) {
      netHeaderPush(p, off, diff);
    } else if (from === ETH_P_IPV6 && to === ETH_P_IP) {
      if (!netHeaderPop(p, off, diff)) {
        p.refresh();
        return m.ret(ENOMEM);
      }
    } else return m.ret(ENOTSUPP);
    setSkbProtocol(m, ctx, to);
    clearSkbHash(env, m, ctx);
    changed(env, m, p.data);
    m.ret(0);
  });

  // 18: long bpf_skb_vlan_push(struct sk_buff *skb, __be16 vlan_proto, u16 vlan_tci)
  // The tag goes into the skb's metadata (the hardware-accelerated tag); a tag already there is
  // first written into the packet (skb_vlan_push()).
  h.set(18, (m) => {
    const { ctx, p } = skbArgs(env, m, 18, ['tc']);
    let proto = swab16(m.argLo(2) & 0xffff);
    if (proto !== ETH_P_8021Q && proto !== ETH_P_8021AD) proto = ETH_P_8021Q;
    const tci = m.argLo(3) & 0xffff;
    if (ctx.get('vlan_present')) {
      if (p.data !== p.mac) return m.ret(EINVAL);
      // __vlan_insert_tag(): TPID and TCI after the MAC addresses.
      push(p, VLAN_HLEN);
      const buf = p.buffer();
      buf.copyWithin(p.data, p.data + VLAN_HLEN, p.data + VLAN_HLEN + 2 * ETH_ALEN);
      const oldProto = swab16(ctx.get('vlan_proto'));
      const oldTci = ctx.get('vlan_tci');
      buf[p.data + 12] = oldProto >>> 8;
      buf[p.data + 13] = oldProto & 0xff;
      buf[p.data + 14] = oldTci >>> 8;
      buf[p.data + 15] = oldTci & 0xff;
      p.mac -= VLAN_HLEN;
      p.network -= VLAN_HLEN;
      setSkbProtocol(m, ctx, oldProto);
      changed(env, m, p.data);
    } else p.refresh();
    putVlanTag(m, ctx, proto, tci);
    m.ret(0);
  });

  // 19: long bpf_skb_vlan_pop(struct sk_buff *skb)
  // Clears the metadata tag, or takes a tag out of the packet; then moves a next tag from the
  // packet into the metadata (skb_vlan_pop()).
  h.set(19, (m) => {
    const { ctx, p } = skbArgs(env, m, 19, ['tc']);
    const from = p.data;
    let r = 0;
    if (ctx.get('vlan_present')) putVlanTag(m, ctx, 0, 0, false);
    else if (isVlan(skbProtocol(ctx))) r = vlanPopFromPacket(m, ctx, p).err;
    if (r === 0 && isVlan(skbProtocol(ctx))) {
      const proto = skbProtocol(ctx);
      const popped = vlanPopFromPacket(m, ctx, p);
      r = popped.err;
      if (r === 0) putVlanTag(m, ctx, proto, popped.tci);
    }
    changed(env, m, from);
    m.ret(r);
  });

  return h;
}

const isVlan = (proto: number) => proto === ETH_P_8021Q || proto === ETH_P_8021AD;

/** __vlan_hwaccel_put_tag() / __vlan_hwaccel_clear_tag(). */
function putVlanTag(m: Machine, ctx: Context, proto: number, tci: number, present = true): void {
  setCtxField(m, ctx, 'vlan_proto', swab16(proto));
  setCtxField(m, ctx, 'vlan_tci', tci);
  setCtxField(m, ctx, 'vlan_present', present ? 1 : 0);
}

/** __skb_vlan_pop(): removes the tag after the MAC addresses; skb->protocol becomes the inner type. */
function vlanPopFromPacket(m: Machine, ctx: Context, p: PacketBuffer): { err: number; tci: number } {
  if (p.data !== p.mac) return { err: EINVAL, tci: 0 };
  // skb_ensure_writable(skb, VLAN_ETH_HLEN)
  if (p.end - p.data < ETH_HLEN + VLAN_HLEN) return { err: ENOMEM, tci: 0 };
  const buf = p.buffer();
  const tci = (buf[p.data + 14]! << 8) | buf[p.data + 15]!;
  const inner = (buf[p.data + 16]! << 8) | buf[p.data + 17]!;
  // vlan_set_encap_proto()
  let proto = inner;
  if (inner < 0x600) proto = p.end - p.data >= 20 && buf[p.data + 18] === 0xff && buf[p.data + 19] === 0xff ? 0x0001 : 0x0004;
  buf.copyWithin(p.data + VLAN_HLEN, p.data, p.data + 2 * ETH_ALEN);
  p.data += VLAN_HLEN;
  p.meta = p.data;
  p.mac += VLAN_HLEN;
  if (p.network - p.data < ETH_HLEN) p.network = p.data + ETH_HLEN;
  setSkbProtocol(m, ctx, proto);
  return { err: 0, tci };
}

/** bpf_skb_adjust_room() with bpf_skb_net_grow() and bpf_skb_net_shrink(); 0 or a negative errno. */
function adjustRoom(m: Machine, ctx: Context, p: PacketBuffer, lenDiff: number, mode: number, flags: bigint): number {
  if (flags & ~(ADJ_ROOM_MASK | BPF_F_ADJ_ROOM_NO_CSUM_RESET)) return EINVAL;
  const abs = Math.abs(lenDiff);
  if (abs > 0xfff) return EFAULT;
  const proto = skbProtocol(ctx);
  if (proto !== ETH_P_IP && proto !== ETH_P_IPV6) return ENOTSUPP;
  const baseLen = proto === ETH_P_IP ? 20 : 40;
  let off = p.network - p.mac;
  if (mode === BPF_ADJ_ROOM_NET) off += baseLen;
  else if (mode !== BPF_ADJ_ROOM_MAC) return ENOTSUPP;
  const shrink = lenDiff < 0;
  let lenMin = baseLen;
  if (flags & DECAP_L3_MASK) {
    if (!shrink) return EINVAL;
    const decap = flags & DECAP_L3_MASK;
    if (decap === BPF_F_ADJ_ROOM_DECAP_L3_IPV4) lenMin = 20;
    else if (decap === BPF_F_ADJ_ROOM_DECAP_L3_IPV6) lenMin = 40;
    else return EINVAL;
  }
  const len = p.end - p.data;
  const lenCur = len - (p.network - p.data);
  if ((shrink && (abs >= lenCur || lenCur - abs < lenMin)) || (!shrink && len + abs > BPF_SKB_MAX_LEN)) return ENOTSUPP;

  if (shrink) {
    if (flags & ~(BPF_F_ADJ_ROOM_FIXED_GSO | DECAP_L3_MASK | BPF_F_ADJ_ROOM_NO_CSUM_RESET)) return EINVAL;
    if (!netHeaderPop(p, off, abs)) return ENOMEM;
    if (proto === ETH_P_IP && flags & BPF_F_ADJ_ROOM_DECAP_L3_IPV6) setSkbProtocol(m, ctx, ETH_P_IPV6);
    else if (proto === ETH_P_IPV6 && flags & BPF_F_ADJ_ROOM_DECAP_L3_IPV4) setSkbProtocol(m, ctx, ETH_P_IP);
    return 0;
  }

  const innerMacLen = Number((flags >> BPF_ADJ_ROOM_ENCAP_L2_SHIFT) & 0xffn);
  const encap = (flags & ENCAP_L3_MASK) !== 0n;
  let macLen = 0;
  if (encap) {
    if (flags & BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 && flags & BPF_F_ADJ_ROOM_ENCAP_L3_IPV6) return EINVAL;
    if (flags & BPF_F_ADJ_ROOM_ENCAP_L4_GRE && flags & BPF_F_ADJ_ROOM_ENCAP_L4_UDP) return EINVAL;
    if (flags & BPF_F_ADJ_ROOM_ENCAP_L2_ETH && innerMacLen < ETH_HLEN) return EINVAL;
    if (p.encapsulation) return EALREADY;
    macLen = p.network - p.mac;
    if (innerMacLen > abs) return EINVAL;
  }
  netHeaderPush(p, off, abs);
  if (encap) {
    p.encapsulation = true;
    p.network = p.data + macLen;
    if (flags & (BPF_F_ADJ_ROOM_ENCAP_L4_GRE | BPF_F_ADJ_ROOM_ENCAP_L4_UDP)) p.transport = p.data + macLen + (flags & BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 ? 40 : 20);
    if (proto === ETH_P_IP && flags & BPF_F_ADJ_ROOM_ENCAP_L3_IPV6) setSkbProtocol(m, ctx, ETH_P_IPV6);
    else if (proto === ETH_P_IPV6 && flags & BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) setSkbProtocol(m, ctx, ETH_P_IP);
  }
  return 0;
}

/**
 * LD_ABS / LD_IND for the session's skb programs: bpf_skb_load_helper_{8,16,32}_no_cache()
 * with bpf_skb_load_helper_convert_offset(). The offset is imm (+ the index register's low 32
 * bits); SKF_NET_OFF + k and SKF_LL_OFF + k address from the network and MAC headers. The value
 * is read big-endian into T[0]; false (the program then returns 0) when outside the packet.
 */
export function installLdAbs(env: HelperEnv): void {
  const m = env.machine;
  m.ldPacket = (_pc, imm, index, size) => {
    const p = env.packet;
    let off = (index + imm) | 0;
    if (off < 0) {
      if (off >= SKF_NET_OFF) off = off - SKF_NET_OFF + (p.network - p.data);
      else if (off >= SKF_LL_OFF && p.mac !== HEADER_UNSET) off = off - SKF_LL_OFF + (p.mac - p.data);
      else return false;
    }
    if (p.end - p.data - off < size) return false;
    const at = p.data + off;
    if (at < 0) return false;
    const buf = p.buffer();
    let v = 0;
    for (let k = 0; k < size; k++) v = (v << 8) | buf[at + k]!;
    m.T[0] = v | 0;
    m.T[1] = 0;
    return true;
  };
}

