// SPDX-License-Identifier: GPL-2.0
/* An XDP observer that reports to user space through a BPF ring buffer and passes every
 * packet. It emits:
 *  - a connection event per TCP SYN (not SYN-ACK), reserved in place in the ring buffer with
 *    bpf_ringbuf_reserve() and filled from the packet, then bpf_ringbuf_submit();
 *  - a DNS event per UDP datagram to port 53, built on the stack and copied in with
 *    bpf_ringbuf_output();
 *  - a trace_pipe line per ICMP echo request, with bpf_printk().
 * Events the ring buffer has no room for are counted in a global variable (.bss).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IP_OFFSET 0x1fff
#define ICMP_ECHO 8
#define DNS_QNAME_MAX 32

enum event_type {
	EVENT_TCP_SYN = 1,
	EVENT_DNS_QUERY = 2,
};

struct event_hdr {
	__u64 ts_ns;
	__u32 type;
	__u32 ifindex;
};

struct syn_event {
	struct event_hdr hdr;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 ttl;
	__u8 pad;
	__u16 window;
	__u32 seq;
};

/* The start of a DNS message: header, then the first QNAME bytes as they are on the wire. */
struct dns_event {
	struct event_hdr hdr;
	__be32 saddr;
	__be16 sport;
	__u16 id;
	__u16 flags;
	__u16 qdcount;
	__u8 qname[DNS_QNAME_MAX];
};

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct icmp_echo {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* bytes: a power of 2, a multiple of the page size */
} events SEC(".maps");

__u64 events_lost = 0;

static __always_inline void emit_syn(struct xdp_md *ctx, struct iphdr *iph, struct tcphdr *th)
{
	struct syn_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return;
	}
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.type = EVENT_TCP_SYN;
	e->hdr.ifindex = ctx->ingress_ifindex;
	e->saddr = iph->saddr;
	e->daddr = iph->daddr;
	e->sport = th->source;
	e->dport = th->dest;
	e->ttl = iph->ttl;
	e->pad = 0;
	e->window = bpf_ntohs(th->window);
	e->seq = bpf_ntohl(th->seq);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void emit_dns(struct xdp_md *ctx, struct iphdr *iph, struct udphdr *uh, void *data_end)
{
	struct dnshdr *dns = (void *)(uh + 1);
	struct dns_event e = {};
	__u8 *q = (void *)(dns + 1);
	int i;

	if ((void *)(dns + 1) > data_end)
		return;
	e.hdr.ts_ns = bpf_ktime_get_ns();
	e.hdr.type = EVENT_DNS_QUERY;
	e.hdr.ifindex = ctx->ingress_ifindex;
	e.saddr = iph->saddr;
	e.sport = uh->source;
	e.id = bpf_ntohs(dns->id);
	e.flags = bpf_ntohs(dns->flags);
	e.qdcount = bpf_ntohs(dns->qdcount);
	for (i = 0; i < DNS_QNAME_MAX; i++) {
		if ((void *)(q + i + 1) > data_end || q[i] == 0)
			break;
		e.qname[i] = q[i];
	}
	if (bpf_ringbuf_output(&events, &e, sizeof(e), 0))
		__sync_fetch_and_add(&events_lost, 1);
}

SEC("xdp")
int xdp_events(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	void *l4;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl < 5)
		return XDP_PASS;
	if (iph->frag_off & bpf_htons(IP_OFFSET))
		return XDP_PASS;
	l4 = (void *)iph + iph->ihl * 4;

	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) <= data_end && th->syn && !th->ack)
			emit_syn(ctx, iph, th);
	} else if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) <= data_end && uh->dest == bpf_htons(53))
			emit_dns(ctx, iph, uh, data_end);
	} else if (iph->protocol == IPPROTO_ICMP) {
		struct icmp_echo *echo = l4;

		if ((void *)(echo + 1) <= data_end && echo->type == ICMP_ECHO)
			bpf_printk("icmp echo request id=%u seq=%u ttl=%u", bpf_ntohs(echo->id),
				   bpf_ntohs(echo->seq), iph->ttl);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
