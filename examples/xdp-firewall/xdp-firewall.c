// SPDX-License-Identifier: GPL-2.0
/* An XDP firewall: drops IPv4 packets whose source falls in a blocked prefix (an LPM trie)
 * or whose TCP/UDP destination port is denied (a hash), and counts what it did per CPU.
 *
 * The rules normally come from user space (maps.json here). One prefix and one port are also
 * compiled in as `const volatile` defaults in .rodata, which a loader may rewrite before
 * loading, so the program blocks something even when its maps are empty.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_VLAN_DEPTH 2
#define IP_OFFSET 0x1fff /* fragment offset bits of frag_off, as in the kernel's net/ip.h */

struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

/* The key layout BPF_MAP_TYPE_LPM_TRIE requires: a prefix length, then the address bytes
 * in network order (the trie compares them most significant bit first). */
struct lpm_v4_key {
	__u32 prefixlen;
	__be32 addr;
};

struct port_key {
	__be16 port;
	__u8 proto;
	__u8 pad;
};

enum fw_stat {
	STAT_PASS,
	STAT_DROP_PREFIX,
	STAT_DROP_PORT,
	STAT_DROP_MALFORMED,
	STAT_MAX,
};

struct fw_counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* the kernel refuses a preallocated trie */
	__uint(max_entries, 1024);
	__type(key, struct lpm_v4_key);
	__type(value, __u32); /* rule id, reported in the drop counters of user space */
} blocked_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct port_key);
	__type(value, __u64); /* packets dropped by this rule */
} denied_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, struct fw_counter);
} fw_stats SEC(".maps");

/* Compiled-in defaults: 198.51.100.0/24 (TEST-NET-2) and telnet. */
const volatile __be32 default_blocked_addr = bpf_htonl(0xc6336400);
const volatile __u32 default_blocked_prefixlen = 24;
const volatile __u16 default_denied_port = 23;

static __always_inline int count(struct xdp_md *ctx, __u32 stat, int verdict)
{
	struct fw_counter *c = bpf_map_lookup_elem(&fw_stats, &stat);

	if (c) {
		/* A per-CPU value has one writer: no atomics needed. */
		c->packets++;
		c->bytes += ctx->data_end - ctx->data;
	}
	return verdict;
}

static __always_inline int prefix_blocked(__be32 saddr)
{
	struct lpm_v4_key key = { .prefixlen = 32, .addr = saddr };
	__u32 plen = default_blocked_prefixlen;
	__u32 mask;

	if (plen > 0 && plen <= 32) {
		mask = bpf_htonl(~0U << (32 - plen));
		if ((saddr & mask) == (default_blocked_addr & mask))
			return 1;
	}
	return bpf_map_lookup_elem(&blocked_v4, &key) != NULL;
}

static __always_inline int port_denied(__u8 proto, __be16 dport)
{
	struct port_key key = { .port = dport, .proto = proto };
	__u64 *hits;

	if (default_denied_port && dport == bpf_htons(default_denied_port))
		return 1;
	hits = bpf_map_lookup_elem(&denied_ports, &key);
	if (!hits)
		return 0;
	__sync_fetch_and_add(hits, 1);
	return 1;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	void *l4;
	__be16 proto;
	__be16 dport;
	int i;

	if ((void *)(eth + 1) > data_end)
		return count(ctx, STAT_DROP_MALFORMED, XDP_DROP);
	proto = eth->h_proto;
	l4 = eth + 1;

	/* Up to two VLAN tags (802.1Q, or 802.1ad outside 802.1Q). */
#pragma unroll
	for (i = 0; i < MAX_VLAN_DEPTH; i++) {
		struct vlan_hdr *vh = l4;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return count(ctx, STAT_DROP_MALFORMED, XDP_DROP);
		proto = vh->h_vlan_encapsulated_proto;
		l4 = vh + 1;
	}

	if (proto != bpf_htons(ETH_P_IP))
		return count(ctx, STAT_PASS, XDP_PASS);

	iph = l4;
	if ((void *)(iph + 1) > data_end || iph->ihl < 5)
		return count(ctx, STAT_DROP_MALFORMED, XDP_DROP);

	if (prefix_blocked(iph->saddr))
		return count(ctx, STAT_DROP_PREFIX, XDP_DROP);

	/* Only the first fragment carries the ports. */
	if (iph->frag_off & bpf_htons(IP_OFFSET))
		return count(ctx, STAT_PASS, XDP_PASS);

	l4 = (void *)iph + iph->ihl * 4;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return count(ctx, STAT_DROP_MALFORMED, XDP_DROP);
		dport = th->dest;
	} else if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return count(ctx, STAT_DROP_MALFORMED, XDP_DROP);
		dport = uh->dest;
	} else {
		return count(ctx, STAT_PASS, XDP_PASS);
	}

	if (port_denied(iph->protocol, dport))
		return count(ctx, STAT_DROP_PORT, XDP_DROP);
	return count(ctx, STAT_PASS, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
