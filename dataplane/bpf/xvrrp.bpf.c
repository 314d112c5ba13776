// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// xvrrp's XDP filter. It redirects to the AF_XDP socket of the receive queue
// only what is the appliance's business and passes everything else to the
// kernel, so the host's own addresses keep working:
//   - frames addressed to a virtual MAC the appliance serves;
//   - ARP whose target is a virtual IPv4 address;
//   - IPv4/IPv6 packets to a virtual address;
//   - IPv6 Neighbour Solicitations for a virtual IPv6 address;
//   - VRRP (IP protocol / next header 112).
// When no socket sits at the queue's XSKMAP slot, bpf_redirect_map falls back
// to XDP_PASS, so a dead appliance leaves the interface as it found it.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IPPROTO_VRRP 112
#define IPPROTO_ICMPV6_ 58
#define ND_NEIGHBOR_SOLICIT 135
#define ARP_HDR_LEN 28
#define ARP_TARGET_IP_OFF 24

struct mac_key {
	__u8 addr[6];
};

struct in6_key {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct mac_key);
	__type(value, __u8);
} vmacs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} vips4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in6_key);
	__type(value, __u8);
} vips6 SEC(".maps");

static __always_inline int to_appliance(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int xvrrp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;

	struct mac_key dst;
	__builtin_memcpy(dst.addr, eth->h_dest, 6);
	if (bpf_map_lookup_elem(&vmacs, &dst))
		return to_appliance(ctx);

	void *l3 = (void *)(eth + 1);
	__u16 proto = eth->h_proto;

	if (proto == bpf_htons(ETH_P_ARP)) {
		if (l3 + ARP_HDR_LEN > data_end)
			return XDP_PASS;
		__u32 target;
		__builtin_memcpy(&target, l3 + ARP_TARGET_IP_OFF, 4);
		if (bpf_map_lookup_elem(&vips4, &target))
			return to_appliance(ctx);
		return XDP_PASS;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		if (ip->protocol == IPPROTO_VRRP)
			return to_appliance(ctx);
		__u32 daddr = ip->daddr;
		if (bpf_map_lookup_elem(&vips4, &daddr))
			return to_appliance(ctx);
		return XDP_PASS;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		if (ip6->nexthdr == IPPROTO_VRRP)
			return to_appliance(ctx);
		struct in6_key key;
		__builtin_memcpy(key.addr, &ip6->daddr, 16);
		if (bpf_map_lookup_elem(&vips6, &key))
			return to_appliance(ctx);
		if (ip6->nexthdr == IPPROTO_ICMPV6_) {
			// ICMPv6 header (4) + reserved (4) + target address (16)
			__u8 *icmp = (__u8 *)(ip6 + 1);
			if ((void *)(icmp + 24) > data_end)
				return XDP_PASS;
			if (icmp[0] != ND_NEIGHBOR_SOLICIT)
				return XDP_PASS;
			__builtin_memcpy(key.addr, icmp + 8, 16);
			if (bpf_map_lookup_elem(&vips6, &key))
				return to_appliance(ctx);
		}
		return XDP_PASS;
	}

	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
