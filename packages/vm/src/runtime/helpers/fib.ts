// bpf_fib_lookup (bpf_xdp_fib_lookup and bpf_skb_fib_lookup in net/core/filter.c) over the
// routes the session is given (SessionOptions.fib) instead of the kernel's FIB: the longest
// matching prefix of the table the lookup uses, with struct bpf_fib_lookup filled in as the
// kernel fills it and the BPF_FIB_LKUP_RET_* codes it returns.
//
// Rewind's network: every device forwards, any non-zero ifindex names a device, a route's
// `mtu` is its device's MTU (default 1500), a route with `dmac` has a resolved neighbour, and
// fib rules are the default ones (tables local, main, default in that order). The egress
// interface of BPF_FIB_LOOKUP_OUTPUT does not restrict the routes considered.

import { RewindError } from '../../errors.js';
import type { HelperFn } from '../../engine/machine.js';
import { parseIpv4, parseIpv6, parseMac } from '../../packet/addr.js';
import type { FibRoute, HelperEnv } from './index.js';
import { EAFNOSUPPORT, EINVAL, ENODEV, ctxArg, memArg, requireType, writeArg } from './common.js';

/** sizeof(struct bpf_fib_lookup) */
export const BPF_FIB_LOOKUP_SIZE = 64;

export const BPF_FIB_LKUP_RET = {
  SUCCESS: 0,
  BLACKHOLE: 1,
  UNREACHABLE: 2,
  PROHIBIT: 3,
  NOT_FWDED: 4,
  FWD_DISABLED: 5,
  UNSUPP_LWT: 6,
  NO_NEIGH: 7,
  FRAG_NEEDED: 8,
  NO_SRC_ADDR: 9,
} as const;

const BPF_FIB_LOOKUP_DIRECT = 1 << 0;
/** Accepted; the egress device does not restrict the routes (see above). */
const BPF_FIB_LOOKUP_OUTPUT = 1 << 1;
const BPF_FIB_LOOKUP_SKIP_NEIGH = 1 << 2;
const BPF_FIB_LOOKUP_TBID = 1 << 3;
const BPF_FIB_LOOKUP_SRC = 1 << 4;
const BPF_FIB_LOOKUP_MARK = 1 << 5;
const FLAGS_MASK = BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SKIP_NEIGH | BPF_FIB_LOOKUP_TBID | BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_MARK;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const DEFAULT_MTU = 1500;
/** ETH_HLEN + VLAN_HLEN: is_skb_forwardable() allows this much above the MTU. */
const FORWARD_SLACK = 18;

/** A route with its addresses parsed. */
interface Route {
  family: number;
  prefix: Uint8Array;
  len: number;
  ifindex: number;
  dmac?: Uint8Array;
  smac: Uint8Array;
  gateway?: Uint8Array;
  mtu: number;
  type: NonNullable<FibRoute['type']>;
  metric: number;
  src?: Uint8Array;
  table: number;
}

const parseAddr = (text: string): Uint8Array => (text.includes(':') ? parseIpv6(text) : parseIpv4(text));

/** Checks the routes' text and numbers; throws naming the route and the field. */
export function checkFibRoutes(routes: readonly FibRoute[]): Route[] {
  return routes.map((r, i) => {
    const where = `fib route ${i}`;
    if (!r || typeof r !== 'object') throw new RewindError(`${where}: expected an object {"prefix","ifindex",...}`);
    try {
      const m = typeof r.prefix === 'string' ? /^([^/]+)\/(\d{1,3})$/.exec(r.prefix) : null;
      if (!m) throw new RewindError(`prefix '${String(r.prefix)}' is not ADDRESS/LENGTH`);
      const prefix = parseAddr(m[1]!);
      const len = Number(m[2]);
      if (len > prefix.length * 8) throw new RewindError(`prefix length ${len} is longer than the address`);
      if (!Number.isInteger(r.ifindex) || r.ifindex <= 0 || r.ifindex > 0xffffffff) throw new RewindError(`ifindex ${String(r.ifindex)} is not a device index`);
      const mtu = r.mtu ?? DEFAULT_MTU;
      if (!Number.isInteger(mtu) || mtu <= 0 || mtu > 0xffff) throw new RewindError(`mtu ${String(r.mtu)} is not between 1 and 65535`);
      const type = r.type ?? 'unicast';
      if (!['unicast', 'blackhole', 'unreachable', 'prohibit'].includes(type)) throw new RewindError(`type '${String(r.type)}' is not unicast, blackhole, unreachable or prohibit`);
      const metric = r.metric ?? 0;
      if (!Number.isInteger(metric) || metric < 0 || metric > 0xffffffff) throw new RewindError(`metric ${String(r.metric)} is not a u32`);
      const table = r.table ?? RT_TABLE_MAIN;
      if (!Number.isInteger(table) || table <= 0 || table > 0xffffffff) throw new RewindError(`table ${String(r.table)} is not a table id`);
      const src = r.src !== undefined ? parseAddr(r.src) : undefined;
      if (src && src.length !== prefix.length) throw new RewindError(`src ${r.src} is not of the prefix's family`);
      return {
        family: prefix.length === 4 ? AF_INET : AF_INET6,
        prefix,
        len,
        ifindex: r.ifindex,
        dmac: r.dmac !== undefined ? parseMac(r.dmac) : undefined,
        smac: r.smac !== undefined ? parseMac(r.smac) : new Uint8Array(6),
        gateway: r.gateway !== undefined ? parseAddr(r.gateway) : undefined,
        mtu,
        type,
        metric,
        src,
        table,
      };
    } catch (e) {
      if (e instanceof RewindError) throw new RewindError(`${where}: ${e.message}`);
      throw e;
    }
  });
}

function matches(r: Route, addr: Uint8Array): boolean {
  for (let bit = 0; bit < r.len; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((r.prefix[bit >> 3]! & mask) !== (addr[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** The longest matching route of one table (the first listed among equals). */
function longestMatch(routes: readonly Route[], family: number, table: number, dst: Uint8Array): Route | undefined {
  let best: Route | undefined;
  for (const r of routes) if (r.family === family && r.table === table && matches(r, dst) && (!best || r.len > best.len)) best = r;
  return best;
}

/** rt6_need_strict(): multicast, link-local and loopback IPv6 addresses are never forwarded. */
function ipv6Strict(a: Uint8Array): boolean {
  if (a[0] === 0xff) return true;
  if (a[0] === 0xfe && (a[1]! & 0xc0) === 0x80) return true;
  return a.subarray(0, 15).every((b) => b === 0) && a[15] === 1;
}

export function fibHelpers(env: HelperEnv, fib: FibRoute[]): Map<number, HelperFn> {
  const routes = checkFibRoutes(fib);
  const h = new Map<number, HelperFn>();

  // 69: long bpf_fib_lookup(void *ctx, struct bpf_fib_lookup *params, int plen, u32 flags)
  h.set(69, (m) => {
    const type = requireType(env, m, 69, ['xdp', 'tc']);
    ctxArg(env, m, 69, 1);
    const plen = m.argLo(3) | 0;
    if (plen < BPF_FIB_LOOKUP_SIZE) return m.ret(EINVAL);
    const flags = m.argLo(4) >>> 0;
    if (flags & ~FLAGS_MASK) return m.ret(EINVAL);
    const params = memArg(m, 69, 2, BPF_FIB_LOOKUP_SIZE, 'struct bpf_fib_lookup');
    const dv = new DataView(params.buffer, params.byteOffset, params.byteLength);
    const family = params[0]!;
    if (family !== AF_INET && family !== AF_INET6) return m.ret(EAFNOSUPPORT);
    // XDP always checks the MTU; tc when tot_len is given.
    const checkMtu = type === 'xdp' || dv.getUint16(6, true) !== 0;
    const { rc: found, route } = lookup(routes, params, dv, family, flags, checkMtu);
    let rc = found;
    if (type === 'tc' && rc === BPF_FIB_LKUP_RET.SUCCESS && !checkMtu && route) {
      // is_skb_forwardable() against the egress device's MTU, which is reported either way.
      if (env.packet.length > route.mtu + FORWARD_SLACK) rc = BPF_FIB_LKUP_RET.FRAG_NEEDED;
      dv.setUint16(6, route.mtu, true);
    }
    writeArg(m, 69, 2, params, 'struct bpf_fib_lookup');
    m.ret(rc);
  });
  return h;
}

/**
 * bpf_ipv4_fib_lookup() / bpf_ipv6_fib_lookup(): fills `params` and returns the
 * BPF_FIB_LKUP_RET_* code or an errno, and the route once one was chosen.
 */
function lookup(routes: readonly Route[], params: Uint8Array, dv: DataView, family: number, flags: number, checkMtu: boolean): { rc: number; route?: Route } {
  const fail = (rc: number) => ({ rc });
  const v6 = family === AF_INET6;
  const src = params.subarray(16, v6 ? 32 : 20);
  const dst = params.subarray(32, v6 ? 48 : 36);
  if (v6 && (ipv6Strict(dst) || ipv6Strict(src))) return fail(BPF_FIB_LKUP_RET.NOT_FWDED);
  if (dv.getUint32(8, true) === 0) return fail(ENODEV);

  let route: Route | undefined;
  if (flags & BPF_FIB_LOOKUP_DIRECT) {
    let table = RT_TABLE_MAIN;
    if (flags & BPF_FIB_LOOKUP_TBID) {
      table = dv.getUint32(48, true);
      // Zeroed for the VLAN fields it shares memory with.
      dv.setUint32(48, 0, true);
    }
    if (!routes.some((r) => r.table === table)) return fail(BPF_FIB_LKUP_RET.NOT_FWDED);
    route = longestMatch(routes, family, table, dst);
  } else {
    for (const table of [255, RT_TABLE_MAIN, 253]) {
      route = longestMatch(routes, family, table, dst);
      if (route) break;
    }
  }
  if (!route) return fail(BPF_FIB_LKUP_RET.NOT_FWDED);
  switch (route.type) {
    case 'blackhole':
      return fail(BPF_FIB_LKUP_RET.BLACKHOLE);
    case 'unreachable':
      return fail(BPF_FIB_LKUP_RET.UNREACHABLE);
    case 'prohibit':
      return fail(BPF_FIB_LKUP_RET.PROHIBIT);
  }
  if (checkMtu && dv.getUint16(6, true) > route.mtu) {
    dv.setUint16(6, route.mtu, true);
    return fail(BPF_FIB_LKUP_RET.FRAG_NEEDED);
  }
  dv.setUint32(12, route.metric, true);
  dv.setUint32(8, route.ifindex, true);
  if (flags & BPF_FIB_LOOKUP_SRC) {
    if (route.src) src.set(route.src);
    else if (v6) return { rc: BPF_FIB_LKUP_RET.NO_SRC_ADDR, route };
    else src.fill(0);
  }
  if (route.gateway) {
    if (route.gateway.length === 16 && !v6) {
      // An IPv4 route via an IPv6 gateway: the next hop is IPv6.
      params[0] = AF_INET6;
      params.set(route.gateway, 32);
    } else dst.set(route.gateway);
  }
  if (!(flags & BPF_FIB_LOOKUP_SKIP_NEIGH)) {
    if (!route.dmac) return { rc: BPF_FIB_LKUP_RET.NO_NEIGH, route };
    params.set(route.dmac, 58);
    params.set(route.smac, 52);
  }
  // bpf_fib_set_fwd_params()
  dv.setUint16(48, 0, true);
  dv.setUint16(50, 0, true);
  if (checkMtu) dv.setUint16(6, route.mtu, true);
  return { rc: BPF_FIB_LKUP_RET.SUCCESS, route };
}

