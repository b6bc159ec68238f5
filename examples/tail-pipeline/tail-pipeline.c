// SPDX-License-Identifier: GPL-2.0
/* An XDP pipeline of tail calls: the entry program hands every packet to a parse stage, which
 * records what it found in a per-CPU scratch slot and tail-calls the filter stage, which
 * tail-calls the accounting stage or, for a packet it drops, the log stage. Each stage is its
 * own program, so stages can be replaced at run time by updating `jmp_table`; libbpf fills
 * the table at load time from its `values` initialiser.
 *
 * The log slot is left empty (a loader fills it when logging is wanted): the tail call to it
 * fails and the filter stage goes on to return its verdict, which is what bpf_tail_call()
 * promises when the slot holds no program.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum stage {
	STAGE_PARSE,
	STAGE_FILTER,
	STAGE_ACCOUNT,
	STAGE_LOG,
	STAGE_MAX,
};

/* What the parse stage leaves for the later ones: tail calls keep no registers or stack. */
struct pkt_meta {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 ttl;
	__u16 len;
	__u32 verdict;
};

struct proto_counter {
	__u64 packets;
	__u64 bytes;
};

int stage_parse(struct xdp_md *ctx);
int stage_filter(struct xdp_md *ctx);
int stage_account(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, STAGE_MAX);
	/* A size, not a BTF type: map creation refuses a BTF key type without a BTF value
	 * type (EINVAL, and libbpf retries without BTF), and `values` gives no value type. */
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct xdp_md *));
} jmp_table SEC(".maps") = {
	.values = {
		[STAGE_PARSE] = (void *)&stage_parse,
		[STAGE_FILTER] = (void *)&stage_filter,
		[STAGE_ACCOUNT] = (void *)&stage_account,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt_meta);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32); /* IP protocol */
	__type(value, struct proto_counter);
} proto_bytes SEC(".maps");

/* The filter's policy: drop packets that would expire at the next hop, and UDP to these ports
 * (chargen and the first of the traceroute range, both favourites of reflection attacks). */
const volatile __u8 min_ttl = 2;
const volatile __u16 blocked_udp_ports[2] = { 19, 33434 };

static __always_inline struct pkt_meta *meta(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp_table, STAGE_PARSE);
	/* Only reached when the parse stage is missing: fail open. */
	return XDP_PASS;
}

SEC("xdp")
int stage_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct pkt_meta *m = meta();

	if (!m)
		return XDP_ABORTED;
	__builtin_memset(m, 0, sizeof(*m));
	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl < 5)
		return XDP_PASS; /* not IPv4: none of our business */

	m->saddr = iph->saddr;
	m->daddr = iph->daddr;
	m->proto = iph->protocol;
	m->ttl = iph->ttl;
	m->len = data_end - data;
	if (iph->protocol == IPPROTO_TCP || iph->protocol == IPPROTO_UDP) {
		/* The ports are the first four bytes of both headers. */
		__be16 *ports = (void *)iph + iph->ihl * 4;

		if ((void *)(ports + 2) <= data_end) {
			m->sport = ports[0];
			m->dport = ports[1];
		}
	}
	m->verdict = XDP_PASS;
	bpf_tail_call(ctx, &jmp_table, STAGE_FILTER);
	return XDP_PASS;
}

SEC("xdp")
int stage_filter(struct xdp_md *ctx)
{
	struct pkt_meta *m = meta();
	int i;

	if (!m)
		return XDP_ABORTED;
	if (m->ttl < min_ttl)
		m->verdict = XDP_DROP;
	if (m->proto == IPPROTO_UDP) {
		for (i = 0; i < 2; i++)
			if (m->dport == bpf_htons(blocked_udp_ports[i]))
				m->verdict = XDP_DROP;
	}
	if (m->verdict == XDP_DROP)
		bpf_tail_call(ctx, &jmp_table, STAGE_LOG);
	else
		bpf_tail_call(ctx, &jmp_table, STAGE_ACCOUNT);
	return m->verdict;
}

SEC("xdp")
int stage_account(struct xdp_md *ctx)
{
	struct pkt_meta *m = meta();
	struct proto_counter *c;
	__u32 proto;

	if (!m)
		return XDP_ABORTED;
	proto = m->proto;
	c = bpf_map_lookup_elem(&proto_bytes, &proto);
	if (c) {
		c->packets++;
		c->bytes += m->len;
	}
	return m->verdict;
}

char LICENSE[] SEC("license") = "GPL";
