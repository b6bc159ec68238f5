// SPDX-License-Identifier: GPL-2.0
/* A TC ingress SYN rate limiter: each IPv4 source gets a token bucket (in an LRU hash, so a
 * flood of spoofed sources evicts old buckets instead of filling the map). A TCP SYN takes a
 * token; a SYN that finds the bucket empty is dropped (TC_ACT_SHOT), or in dry-run mode only
 * marked. Everything else passes untouched. Tokens refill at `rate_per_sec` up to `burst`,
 * measured with bpf_ktime_get_ns().
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NSEC_PER_SEC 1000000000ULL
#define IP_OFFSET 0x1fff
/* skb->mark of SYNs that were over the limit in dry-run mode */
#define MARK_OVER_LIMIT 0x5259

/* Tokens are kept in units of 1/NSEC_PER_SEC so refilling needs no division. */
struct bucket {
	__u64 tokens;
	__u64 last_ns;
};

enum rl_stat {
	RL_STAT_SYN_PASSED,
	RL_STAT_SYN_DROPPED,
	RL_STAT_SYN_MARKED,
	RL_STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __be32); /* IPv4 source address */
	__type(value, struct bucket);
} syn_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} rl_stats SEC(".maps");

const volatile __u64 rate_per_sec = 5;
const volatile __u64 burst = 4;
const volatile bool dry_run = false;

static __always_inline void count(__u32 stat)
{
	__u64 *n = bpf_map_lookup_elem(&rl_stats, &stat);

	if (n)
		*n += 1;
}

/* Takes a token from saddr's bucket; returns false when there is none. */
static __always_inline bool take_token(__be32 saddr)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 cap = burst * NSEC_PER_SEC;
	struct bucket *b;
	__u64 tokens;

	b = bpf_map_lookup_elem(&syn_buckets, &saddr);
	if (!b) {
		/* A new source starts with a full bucket, less this SYN's token. */
		struct bucket fresh = { .tokens = cap - NSEC_PER_SEC, .last_ns = now };

		bpf_map_update_elem(&syn_buckets, &saddr, &fresh, BPF_ANY);
		return true;
	}

	tokens = b->tokens + (now - b->last_ns) * rate_per_sec;
	if (tokens > cap)
		tokens = cap;
	b->last_ns = now;
	if (tokens < NSEC_PER_SEC) {
		b->tokens = tokens;
		return false;
	}
	b->tokens = tokens - NSEC_PER_SEC;
	return true;
}

SEC("tc")
int tc_syn_ratelimit(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct tcphdr *th;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if ((void *)(iph + 1) > data_end || iph->protocol != IPPROTO_TCP || iph->ihl < 5 ||
	    (iph->frag_off & bpf_htons(IP_OFFSET)))
		return TC_ACT_OK;
	th = (void *)iph + iph->ihl * 4;
	if ((void *)(th + 1) > data_end)
		return TC_ACT_OK;
	if (!th->syn || th->ack)
		return TC_ACT_OK;

	if (take_token(iph->saddr)) {
		count(RL_STAT_SYN_PASSED);
		return TC_ACT_OK;
	}
	if (dry_run) {
		skb->mark = MARK_OVER_LIMIT;
		count(RL_STAT_SYN_MARKED);
		return TC_ACT_OK;
	}
	count(RL_STAT_SYN_DROPPED);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
