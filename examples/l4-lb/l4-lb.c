// SPDX-License-Identifier: GPL-2.0
/* An XDP layer-4 load balancer in the style of Katran, without encapsulation: a packet for a
 * virtual IP (address, port, protocol) is sent back out of the interface it came in on
 * (XDP_TX) towards one of the VIP's backends, with its destination IP and MAC rewritten and
 * its IPv4 and TCP/UDP checksums updated incrementally (RFC 1624). The backend is picked by
 * a hash of the 5-tuple, so every packet of a flow goes to the same backend.
 *
 * VIPs and backends normally come from user space (the `vips` hash and the `backends`
 * array, see maps.json). One VIP with its own backends is compiled into .rodata so the
 * program balances something with empty maps.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_BACKENDS 64
#define DEFAULT_BACKENDS 2
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

struct vip_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

/* A VIP owns backends[first .. first + count - 1]. */
struct vip_meta {
	__u32 first;
	__u32 count;
};

struct backend {
	__be32 addr;
	__u8 mac[ETH_ALEN];
	__u16 pad;
};

enum lb_stat {
	LB_STAT_TX,
	LB_STAT_PASS,
	LB_STAT_NO_BACKEND,
	LB_STAT_MAX,
};

struct lb_counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct vip_key);
	__type(value, struct vip_meta);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_STAT_MAX);
	__type(key, __u32);
	__type(value, struct lb_counter);
} lb_stats SEC(".maps");

/* The compiled-in VIP: 192.0.2.10:80/TCP over 10.1.0.1 and 10.1.0.2. */
const volatile struct vip_key default_vip = {
	.addr = bpf_htonl(0xc000020a),
	.port = bpf_htons(80),
	.proto = IPPROTO_TCP,
};
const volatile struct backend default_backends[DEFAULT_BACKENDS] = {
	{ .addr = bpf_htonl(0x0a010001), .mac = { 0x02, 0x00, 0x0a, 0x01, 0x00, 0x01 } },
	{ .addr = bpf_htonl(0x0a010002), .mac = { 0x02, 0x00, 0x0a, 0x01, 0x00, 0x02 } },
};

/* Bob Jenkins' lookup3 final mix, as the kernel's jhash_3words() (include/linux/jhash.h). */
#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += JHASH_INITVAL + (3 << 2) + initval;
	b += JHASH_INITVAL + (3 << 2) + initval;
	c += JHASH_INITVAL + (3 << 2) + initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

static __always_inline __u16 csum_fold(__u32 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return (__u16)~csum;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), where bpf_csum_diff() adds ~m + m' to its seed. */
static __always_inline __u16 csum_replace4(__u16 check, __be32 from, __be32 to)
{
	return csum_fold(bpf_csum_diff(&from, sizeof(from), &to, sizeof(to), (__u16)~check));
}

static __always_inline int account(struct xdp_md *ctx, __u32 stat, int verdict)
{
	struct lb_counter *c = bpf_map_lookup_elem(&lb_stats, &stat);

	if (c) {
		c->packets++;
		c->bytes += ctx->data_end - ctx->data;
	}
	return verdict;
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct vip_key key = {};
	struct backend be;
	struct vip_meta *meta;
	__be16 *l4_check = NULL;
	int udp = 0;
	__be16 sport;
	void *l4;
	__u32 hash;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return account(ctx, LB_STAT_PASS, XDP_PASS);
	if (iph->ihl != 5 || (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		/* IP options or a fragment: leave it to the kernel's stack. */
		return account(ctx, LB_STAT_PASS, XDP_PASS);

	l4 = iph + 1;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return account(ctx, LB_STAT_PASS, XDP_PASS);
		sport = th->source;
		key.port = th->dest;
		l4_check = &th->check;
	} else if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return account(ctx, LB_STAT_PASS, XDP_PASS);
		sport = uh->source;
		key.port = uh->dest;
		/* A zero UDP checksum means "none" (RFC 768): keep it that way. */
		if (uh->check)
			l4_check = &uh->check;
		udp = 1;
	} else {
		return account(ctx, LB_STAT_PASS, XDP_PASS);
	}
	key.addr = iph->daddr;
	key.proto = iph->protocol;

	/* The 5-tuple: addresses, ports, and the protocol as the seed. */
	hash = jhash_3words(bpf_ntohl(iph->saddr), bpf_ntohl(iph->daddr),
			    ((__u32)bpf_ntohs(sport) << 16) | bpf_ntohs(key.port), iph->protocol);

	meta = bpf_map_lookup_elem(&vips, &key);
	if (meta) {
		struct backend *b;
		__u32 idx;

		if (meta->count == 0)
			return account(ctx, LB_STAT_NO_BACKEND, XDP_DROP);
		idx = meta->first + hash % meta->count;
		b = bpf_map_lookup_elem(&backends, &idx);
		if (!b || !b->addr)
			return account(ctx, LB_STAT_NO_BACKEND, XDP_DROP);
		be = *b;
	} else if (key.addr == default_vip.addr && key.port == default_vip.port &&
		   key.proto == default_vip.proto) {
		__u32 idx = hash % DEFAULT_BACKENDS;

		int i;

		be.addr = default_backends[idx].addr;
		for (i = 0; i < ETH_ALEN; i++)
			be.mac[i] = default_backends[idx].mac[i];
	} else {
		return account(ctx, LB_STAT_PASS, XDP_PASS);
	}

	/* The pseudo-header covers the destination address, so both checksums change. */
	if (l4_check) {
		__u16 check = csum_replace4(*l4_check, iph->daddr, be.addr);

		/* A UDP checksum that computes to zero is sent as all ones. */
		*l4_check = udp && !check ? 0xffff : check;
	}
	iph->check = csum_replace4(iph->check, iph->daddr, be.addr);
	iph->daddr = be.addr;

	/* Out of the same port: our MAC becomes the source, the backend's the destination. */
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, be.mac, ETH_ALEN);
	return account(ctx, LB_STAT_TX, XDP_TX);
}

char LICENSE[] SEC("license") = "GPL";
