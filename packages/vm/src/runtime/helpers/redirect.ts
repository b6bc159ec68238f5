// Redirects (net/core/filter.c): bpf_redirect for XDP and tc, bpf_redirect_map for XDP
// (__bpf_xdp_redirect_map() over devmap, devmap_hash, cpumap and xskmap), bpf_redirect_neigh
// and bpf_redirect_peer for tc. They fill the run's struct bpf_redirect_info and return the
// verdict the program usually returns with; the run's outcome names the target when the
// program returns XDP_REDIRECT or TC_ACT_REDIRECT. Rewind has no devices: any ifindex is taken.

import type { HelperFn } from '../../engine/machine.js';
import { indexKey } from '../../maps/map.js';
import { CpuMap, DevMap, DevMapHash, XskMap } from '../../maps/dev_maps.js';
import type { SlotArrayMap } from '../../maps/fd_maps.js';
import type { HelperEnv } from './index.js';
import { helperFault, mapArg, requireType } from './common.js';

const XDP_ABORTED = 0;
const XDP_REDIRECT = 4;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const BPF_F_INGRESS = 1;
const BPF_F_BROADCAST = 1 << 3;
const BPF_F_EXCLUDE_INGRESS = 1 << 4;
/** The kernel's internal redirect flags (BPF_F_NEIGH, BPF_F_PEER, BPF_F_NEXTHOP). */
const BPF_F_NEIGH = 1 << 16;
const BPF_F_PEER = 1 << 17;
const BPF_F_NEXTHOP = 1 << 18;
/** sizeof(struct bpf_redir_neigh) */
const REDIR_NEIGH_SIZE = 20;
/** XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX: a failed map lookup returns these bits of flags. */
const ACTION_MASK = 3;

export function redirectHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // 23: long bpf_redirect(u32 ifindex, u64 flags)
  h.set(23, (m) => {
    const type = requireType(env, m, 23, ['xdp', 'tc']);
    const ifindex = m.argLo(1) >>> 0;
    const flags = m.argLo(2) >>> 0;
    if (type === 'xdp') {
      // bpf_xdp_redirect(): no flags.
      if (flags !== 0 || m.argHi(2) !== 0) return m.ret(XDP_ABORTED);
      env.run.redirect = { ifindex, flags: 0 };
      return m.ret(XDP_REDIRECT);
    }
    if (m.argHi(2) !== 0 || flags & ~BPF_F_INGRESS) return m.ret(TC_ACT_SHOT);
    env.run.redirect = { ifindex, flags };
    m.ret(TC_ACT_REDIRECT);
  });

  // 51: long bpf_redirect_map(struct bpf_map *map, u64 key, u64 flags)
  h.set(51, (m) => {
    requireType(env, m, 51, ['xdp']);
    const map = mapArg(env, m, 51, 1);
    const devmap = map instanceof DevMap || map instanceof DevMapHash;
    if (!devmap && !(map instanceof CpuMap) && !(map instanceof XskMap)) throw helperFault(m, 51, `map '${map.name}' is a ${map.type}; XDP redirects into a devmap, devmap_hash, cpumap or xskmap (the verifier refuses this)`);
    const flags = m.argLo(3) >>> 0;
    const mask = ACTION_MASK | (devmap ? BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS : 0);
    if (m.argHi(3) !== 0 || flags & ~mask) return m.ret(XDP_ABORTED);
    // The lookup takes the low 32 bits of the key.
    const key = m.argLo(2) >>> 0;
    const found = map instanceof DevMapHash ? map.lookupSlot(indexKey(key), env.session.cpu) >= 0 : key < map.maxEntries && (map as SlotArrayMap<unknown>).slot(key) !== undefined;
    if (!found && !(flags & BPF_F_BROADCAST)) {
      // The redirect info falls back to an ifindex redirect to the previous target.
      const prev = env.run.redirect;
      env.run.redirect = { ifindex: prev ? (prev.ifindex ?? prev.key ?? 0) : 0, flags: prev?.flags ?? 0 };
      return m.ret(flags & ACTION_MASK);
    }
    env.run.redirect = { map: map.name, key, flags: flags & BPF_F_BROADCAST ? flags : 0 };
    m.ret(XDP_REDIRECT);
  });

  // 152: long bpf_redirect_neigh(u32 ifindex, struct bpf_redir_neigh *params, int plen, u64 flags)
  h.set(152, (m) => {
    requireType(env, m, 152, ['tc']);
    const plen = m.argLo(3) | 0;
    if ((plen && plen < REDIR_NEIGH_SIZE) || m.argLo(4) !== 0 || m.argHi(4) !== 0) return m.ret(TC_ACT_SHOT);
    env.run.redirect = { ifindex: m.argLo(1) >>> 0, flags: BPF_F_NEIGH | (plen ? BPF_F_NEXTHOP : 0) };
    m.ret(TC_ACT_REDIRECT);
  });

  // 155: long bpf_redirect_peer(u32 ifindex, u64 flags)
  h.set(155, (m) => {
    requireType(env, m, 155, ['tc']);
    if (m.argLo(2) !== 0 || m.argHi(2) !== 0) return m.ret(TC_ACT_SHOT);
    env.run.redirect = { ifindex: m.argLo(1) >>> 0, flags: BPF_F_PEER };
    m.ret(TC_ACT_REDIRECT);
  });
  return h;
}
