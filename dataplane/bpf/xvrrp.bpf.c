// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// xvrrp's XDP filter. It redirects to the AF_XDP socket of the receive queue
// only what is the appliance's business and passes everything else to the
// kernel, so the host's own addresses keep working:
//   - VRRP (IP protocol / next header 112) that passes the advert validation
//     ladder below and the advert rate limit;
//   - frames addressed to a virtual MAC, ARP whose target is a virtual IPv4
//     address, IPv4/IPv6 packets to a virtual address and IPv6 Neighbour
//     Solicitations for a virtual IPv6 address, while this appliance is
//     master of that virtual router (a backup answers and forwards none of
//     them, so they are dropped here as `not-master`).
// When no socket sits at the queue's XSKMAP slot, bpf_redirect_map falls back
// to XDP_PASS, so a dead appliance leaves the interface as it found it.
//
// What cannot matter is dropped here, before any copy (docs/conformance.md
// L01, L05, L08): a frame redirected to AF_XDP is copied into the worker's
// ring and, on veth, slows the NAPI ring that carries the forwarded traffic
// too; XDP_DROP costs almost nothing.
//
// The VRRP ladder is the fast-path worker's (xvrrp_wire::vrrp
// parse_ipv4_advert / parse_ipv6_advert, then the VRID and version checks of
// dataplane/src/process.rs), step for step and in the same order, up to the
// VRID and version checks, so the earliest defect names the reason here as it
// would there (docs/conformance.md B27) and a frame dropped here is counted
// under the reason the worker would have used. Only the last step, the
// destination against the instance's mode (multicast or unicast peers), is
// left to the worker.
//
// Counters are per CPU and read by the daemon on demand. Their order is
// `enum xdp_counter` below, mirrored by `XdpCounter` in
// dataplane/src/xdp_maps.rs (a unit test compares the two lists).
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

#define VRRP_TTL 255
#define VRRP_HEADER_LEN 8
#define VRRP_V2_AUTH_LEN 8
#define VRRP_TYPE_ADVERT 1
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

// Routers the maps indexed by router id can hold (RouterId < MAX_ROUTERS).
#define MAX_ROUTERS 1024
// (family, VRID) slots: IPv4 VRIDs at 0..255, IPv6 at 256..511.
#define VRID_SLOTS 512
#define SLOT_V6 256

// Longest VRRP message: 8 + 255 IPv6 addresses. The IPv4 one is at most
// 8 + 255 * 4 + 8 bytes.
#define MAX_SUM_LEN 4088
// Farthest offset a summed range starts at: Ethernet + the longest IPv4
// header (60), or Ethernet + IPv6 header.
#define MAX_SUM_OFF (ETH_HLEN + 60)
// Bytes summed per bpf_xdp_load_bytes.
#define SUM_CHUNK 64

// Valid-looking adverts from anyone but a virtual router's current master,
// per port and per CPU: ADVERT_RATE per second with bursts of ADVERT_BURST.
// The master's adverts have their own, wider allowance per virtual router
// (a master sends at most one advert per 10 ms, plus one answer per interval
// to a lower-priority advert).
#define NSEC_PER_SEC 1000000000ULL
#define ADVERT_RATE 4000
#define ADVERT_BURST 512
#define MASTER_RATE 1000
#define MASTER_BURST 100

// Every counter; the first ones are drop reasons named as in
// xvrrp_control::DropReason. Keep in step with XdpCounter.
enum xdp_counter {
	XC_MALFORMED,
	XC_IP_HEADER_ERROR,
	XC_FRAGMENT,
	XC_SOURCE_ERROR,
	XC_DESTINATION_ERROR,
	XC_IP_TTL_ERROR,
	XC_PACKET_LENGTH_ERROR,
	XC_VERSION_ERROR,
	XC_INVALID_TYPE,
	XC_ADDRESS_COUNT_ERROR,
	XC_INTERVAL_ERROR,
	XC_AUTH_TYPE,
	XC_CHECKSUM_ERROR,
	XC_VRID_ERROR,
	XC_ADVERT_RATE_LIMITED,
	XC_NOT_MASTER,
	// Not drops: adverts let through as the current master's, and VRRP
	// handed to the worker in all.
	XC_MASTER_ADVERTS,
	XC_ADVERTS_PASSED,
	XC_COUNT
};

struct counters {
	__u64 n[XC_COUNT];
};

struct mac_key {
	__u8 addr[6];
};

struct in6_key {
	__u8 addr[16];
};

// A (family, VRID) this port serves: `router` is the router id + 1 (0: not
// served), `version` the VRRP version it speaks.
struct served_vrid {
	__u32 router;
	__u32 version;
};

// The source address of a virtual router's current master as the control
// thread knows it (IPv4 in the first 4 bytes); `valid` 0 when unknown.
struct peer_master {
	__u8 addr[16];
	__u8 valid;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

// Virtual MAC → router id.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct mac_key);
	__type(value, __u32);
} vmacs SEC(".maps");

// Virtual IPv4 address (network order) → router id.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} vips4 SEC(".maps");

// Virtual IPv6 address → router id.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in6_key);
	__type(value, __u32);
} vips6 SEC(".maps");

// Router id → 1 while this appliance is master of it.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_ROUTERS);
	__type(key, __u32);
	__type(value, __u32);
} masters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VRID_SLOTS);
	__type(key, __u32);
	__type(value, struct served_vrid);
} served SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VRID_SLOTS);
	__type(key, __u32);
	__type(value, struct peer_master);
} peer_masters SEC(".maps");

// Token buckets as theoretical arrival times (GCRA), in ns of
// bpf_ktime_get_ns: the port's bucket for adverts (one entry), and one per
// (family, VRID) for its master's adverts.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} advert_bucket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VRID_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} master_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} counters SEC(".maps");

// Router id → frames seen with the router's virtual MAC as source that
// another station sent (see vmac_conflict below).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_ROUTERS);
	__type(key, __u32);
	__type(value, __u64);
} conflicts SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u32 zero = 0;
	struct counters *c = bpf_map_lookup_elem(&counters, &zero);
	if (c && which < XC_COUNT)
		c->n[which] += 1;
}

static __always_inline int drop(__u32 why)
{
	count(why);
	return XDP_DROP;
}

static __always_inline int to_appliance(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

static __always_inline int is_master(__u32 router)
{
	__u32 *m = bpf_map_lookup_elem(&masters, &router);
	return m && *m;
}

// Traffic for virtual router `router` (to its MAC or addresses, ARP/NS for
// them): the master's business, nobody else's.
static __always_inline int for_router(struct xdp_md *ctx, __u32 *router)
{
	if (is_master(*router))
		return to_appliance(ctx);
	return drop(XC_NOT_MASTER);
}

static __always_inline void note_conflict(__u32 router)
{
	__u64 *c = bpf_map_lookup_elem(&conflicts, &router);
	if (c)
		*c += 1;
}

// GCRA: takes one token from the bucket whose theoretical arrival time is
// *tat; false when it is empty.
static __always_inline int take_token(__u64 *tat, __u64 now, __u64 interval, __u64 burst)
{
	__u64 t = *tat;
	if (t > now + (burst - 1) * interval)
		return 0;
	*tat = (t > now ? t : now) + interval;
	return 1;
}

// One's-complement sum of the `len` bytes at packet offset `off`, as
// big-endian 16-bit words (an odd last byte padded with zero, RFC 1071),
// not folded; -1 when they are not all inside the packet. The bytes are
// read in chunks with bpf_xdp_load_bytes (kernel 5.18), which keeps the
// verifier out of packet-pointer arithmetic; a global function, so the
// verifier checks its loops once, not at every call.
__attribute__((noinline)) int pkt_sum(struct xdp_md *ctx, __u32 off, __u32 len)
{
	__u8 buf[SUM_CHUNK];
	__u32 sum = 0;

	if (off > MAX_SUM_OFF || len > MAX_SUM_LEN)
		return -1;
	// 64-bit arithmetic throughout: the verifier then sees the bounds
	// tested on the very registers passed on.
	__u64 left = len;
	__u64 at = off;
#pragma clang loop unroll(disable)
	for (__u32 c = 0; c < MAX_SUM_LEN / SUM_CHUNK + 1; c++) {
		__u64 n = left;
		// Hide what the compiler knows of n, so that the bounds the
		// verifier needs are tested, not folded away.
		asm volatile("" : "+r"(n));
		if (n == 0)
			break;
		if (n > SUM_CHUNK)
			n = SUM_CHUNK;
		asm volatile("" : "+r"(n));
		if (n == 0 || n > SUM_CHUNK)
			return -1;
		// Zeros past the n bytes read add nothing, and pad an odd last
		// byte: every word of the buffer is summed, with no branch that
		// would multiply the verifier's paths.
		__builtin_memset(buf, 0, sizeof(buf));
		if (bpf_xdp_load_bytes(ctx, (__u32)at, buf, (__u32)n) < 0)
			return -1;
		for (__u32 w = 0; w < SUM_CHUNK / 2; w++)
			sum += ((__u32)buf[2 * w] << 8) | buf[2 * w + 1];
		left -= n;
		at += n;
	}
	return (int)sum;
}

static __always_inline __u32 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

// Whether a sum over data that includes its checksum field verifies.
static __always_inline int verifies(__u32 sum)
{
	return fold(sum) == 0xffff;
}

// The VRRP message at packet offset `off`, `len` bytes, whose IP header
// carried its source and destination at packet offset `addrs` (4 or 16
// bytes each, as `v6` says):
// steps 1-8 of VrrpRepr::parse, then the VRID and version of the instance.
// Returns the drop reason, or XC_COUNT to go on; `*slot` is the (family,
// VRID) slot of a message that goes on.
static __always_inline int vrrp_ladder(struct xdp_md *ctx, __u32 off, __u32 len, __u32 addrs,
				       int v6, __u32 *slot)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (off > MAX_SUM_OFF)
		return XC_MALFORMED;
	__u8 *v = (__u8 *)data + off;
	if (len < VRRP_HEADER_LEN)
		return XC_PACKET_LENGTH_ERROR;
	if ((void *)(v + VRRP_HEADER_LEN) > data_end)
		return XC_MALFORMED;
	__u8 version = v[0] >> 4;
	if (version != 3 && !(version == 2 && !v6))
		return XC_VERSION_ERROR;
	if ((v[0] & 0x0f) != VRRP_TYPE_ADVERT)
		return XC_INVALID_TYPE;
	__u32 count_addrs = v[3];
	if (count_addrs == 0)
		return XC_ADDRESS_COUNT_ERROR;
	__u32 want = VRRP_HEADER_LEN + count_addrs * (v6 ? 16 : 4) +
		     (version == 2 ? VRRP_V2_AUTH_LEN : 0);
	if (len != want)
		return XC_PACKET_LENGTH_ERROR;
	__u32 interval = version == 2 ? v[5] : (((__u32)(v[4] & 0x0f) << 8) | v[5]);
	if (interval == 0)
		return XC_INTERVAL_ERROR;
	if (version == 2 && v[4] != 0)
		return XC_AUTH_TYPE;
	__u8 vrid = v[1];

	int msg = pkt_sum(ctx, off, len);
	if (msg < 0)
		return XC_MALFORMED;
	int ok = 0;
	// v2, and v3 over IPv4 as RFC 9568 words it: the message alone.
	if (!v6)
		ok = verifies((__u32)msg);
	// v3 with the pseudo-header: over IPv4 as RFC 5798 (keepalived, FRR),
	// always over IPv6 (RFC 8200 §8.1). Protocol and length are each one
	// word (the IPv6 length is a 32-bit field whose upper half is zero).
	if (!ok && version == 3) {
		int a = pkt_sum(ctx, addrs, v6 ? 32 : 8);
		if (a < 0)
			return XC_MALFORMED;
		ok = verifies((__u32)msg + (__u32)a + IPPROTO_VRRP + len);
	}
	if (!ok)
		return XC_CHECKSUM_ERROR;

	__u32 key = vrid + (v6 ? SLOT_V6 : 0);
	struct served_vrid *s = bpf_map_lookup_elem(&served, &key);
	if (!s || !s->router)
		return XC_VRID_ERROR;
	if (!v6 && s->version != version)
		return XC_VERSION_ERROR;
	*slot = key;
	return XC_COUNT;
}

// A valid-looking advert: the current master's go through within their own
// allowance, everyone else's share the port's bucket.
static __always_inline int pass_advert(struct xdp_md *ctx, __u32 slot, const __u32 src[4])
{
	__u64 now = bpf_ktime_get_ns();
	struct peer_master *pm = bpf_map_lookup_elem(&peer_masters, &slot);
	if (pm && pm->valid) {
		__u32 known[4];
		__builtin_memcpy(known, pm->addr, 16);
		int same = known[0] == src[0] && known[1] == src[1] && known[2] == src[2] &&
			   known[3] == src[3];
		__u64 *tat = bpf_map_lookup_elem(&master_buckets, &slot);
		if (same && tat &&
		    take_token(tat, now, NSEC_PER_SEC / MASTER_RATE, MASTER_BURST)) {
			count(XC_MASTER_ADVERTS);
			count(XC_ADVERTS_PASSED);
			return to_appliance(ctx);
		}
	}
	__u32 zero = 0;
	__u64 *tat = bpf_map_lookup_elem(&advert_bucket, &zero);
	if (!tat || !take_token(tat, now, NSEC_PER_SEC / ADVERT_RATE, ADVERT_BURST))
		return drop(XC_ADVERT_RATE_LIMITED);
	count(XC_ADVERTS_PASSED);
	return to_appliance(ctx);
}

// A VRRP frame that fails the ladder is dropped; if it came from one of our
// virtual MACs (`vmac_router`, when not already counted), that is a
// conflict too: no router sends a broken advert.
static __always_inline int drop_vrrp(__u32 why, __u32 *vmac_router)
{
	if (vmac_router)
		note_conflict(*vmac_router);
	return drop(why);
}

// IPv4 protocol 112: parse_ipv4_advert's ladder.
static __always_inline int vrrp4(struct xdp_md *ctx, struct iphdr *ip, __u32 *vmac_router)
{
	void *data_end = (void *)(long)ctx->data_end;
	__u32 avail = (__u32)((long)data_end - (long)ip);
	__u32 hlen = (__u32)(ip->ihl) * 4;
	__u32 total = bpf_ntohs(ip->tot_len);

	// Ipv4Packet::check_len, which the worker's handle_ipv4 applies first.
	if (hlen < sizeof(*ip) || total < hlen || total > avail)
		return drop_vrrp(XC_MALFORMED, vmac_router);
	if (ip->version != 4)
		return drop_vrrp(XC_IP_HEADER_ERROR, vmac_router);
	int hs = pkt_sum(ctx, ETH_HLEN, hlen);
	if (hs < 0 || !verifies((__u32)hs))
		return drop_vrrp(XC_IP_HEADER_ERROR, vmac_router);
	if (bpf_ntohs(ip->frag_off) & (IP_MF | IP_OFFSET))
		return drop_vrrp(XC_FRAGMENT, vmac_router);
	__u32 src = bpf_ntohl(ip->saddr);
	__u32 dst = bpf_ntohl(ip->daddr);
	// Multicast, broadcast, 0.0.0.0 or loopback.
	if ((src >> 28) == 0xe || src == 0xffffffff || src == 0 || (src >> 24) == 127)
		return drop_vrrp(XC_SOURCE_ERROR, vmac_router);
	// The mode the packet claims: the group 224.0.0.18, or a unicast address.
	int dst_ok = (dst >> 28) == 0xe ? dst == 0xe0000012 : dst != 0xffffffff && dst != 0;
	if (!dst_ok)
		return drop_vrrp(XC_DESTINATION_ERROR, vmac_router);
	if (ip->ttl != VRRP_TTL)
		return drop_vrrp(XC_IP_TTL_ERROR, vmac_router);
	__u32 slot = 0;
	int why = vrrp_ladder(ctx, ETH_HLEN + hlen, total - hlen, ETH_HLEN + 12, 0, &slot);
	if (why != XC_COUNT)
		return drop_vrrp(why, vmac_router);
	__u32 from[4] = { ip->saddr, 0, 0, 0 };
	return pass_advert(ctx, slot, from);
}

// IPv6 next header 112: parse_ipv6_advert's ladder.
static __always_inline int vrrp6(struct xdp_md *ctx, struct ipv6hdr *ip6, __u32 *vmac_router)
{
	void *data_end = (void *)(long)ctx->data_end;
	__u32 avail = (__u32)((long)data_end - (long)ip6);
	__u32 plen = bpf_ntohs(ip6->payload_len);

	// Ipv6Packet::check_len.
	if (sizeof(*ip6) + plen > avail)
		return drop_vrrp(XC_MALFORMED, vmac_router);
	if (ip6->version != 6)
		return drop_vrrp(XC_IP_HEADER_ERROR, vmac_router);
	__u8 *s = ip6->saddr.in6_u.u6_addr8;
	__u8 *d = ip6->daddr.in6_u.u6_addr8;
	__u32 s_hi = ip6->saddr.in6_u.u6_addr32[0] | ip6->saddr.in6_u.u6_addr32[1] |
		     ip6->saddr.in6_u.u6_addr32[2];
	__u32 s_lo = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[3]);
	// Multicast, :: or ::1.
	if (s[0] == 0xff || (s_hi == 0 && (s_lo == 0 || s_lo == 1)))
		return drop_vrrp(XC_SOURCE_ERROR, vmac_router);
	int dst_ok;
	if (d[0] == 0xff) {
		// ff02::12
		__u32 w0 = bpf_ntohl(ip6->daddr.in6_u.u6_addr32[0]);
		dst_ok = w0 == 0xff020000 && ip6->daddr.in6_u.u6_addr32[1] == 0 &&
			 ip6->daddr.in6_u.u6_addr32[2] == 0 &&
			 bpf_ntohl(ip6->daddr.in6_u.u6_addr32[3]) == 0x12;
	} else {
		dst_ok = (ip6->daddr.in6_u.u6_addr32[0] | ip6->daddr.in6_u.u6_addr32[1] |
			  ip6->daddr.in6_u.u6_addr32[2] | ip6->daddr.in6_u.u6_addr32[3]) != 0;
	}
	if (!dst_ok)
		return drop_vrrp(XC_DESTINATION_ERROR, vmac_router);
	if (ip6->hop_limit != VRRP_TTL)
		return drop_vrrp(XC_IP_TTL_ERROR, vmac_router);
	__u32 slot = 0;
	int why = vrrp_ladder(ctx, ETH_HLEN + sizeof(*ip6), plen, ETH_HLEN + 8, 1, &slot);
	if (why != XC_COUNT)
		return drop_vrrp(why, vmac_router);
	__u32 from[4];
	__builtin_memcpy(from, s, 16);
	return pass_advert(ctx, slot, from);
}

// The router whose virtual MAC is `mac` on this port, if any. Virtual MACs
// are 00-00-5E-00-01-VRID and 00-00-5E-00-02-VRID: the prefix test spares
// ordinary frames the hash lookup.
static __always_inline __u32 *vmac_router(__u8 *mac)
{
	if (mac[0] != 0 || mac[1] != 0 || mac[2] != 0x5e || mac[3] != 0 ||
	    (mac[4] != 1 && mac[4] != 2))
		return NULL;
	struct mac_key key;
	__builtin_memcpy(key.addr, mac, 6);
	return bpf_map_lookup_elem(&vmacs, &key);
}

SEC("xdp")
int xvrrp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;

	// vmac-conflict: a frame from one of our virtual MACs was sent by
	// another station (we never receive our own), and it moves the switch's
	// forwarding entry for that MAC away from the master. While we are
	// master, every such frame is a conflict: a spoofer, a misconfigured
	// router, or another master for the moment an election takes to settle.
	// While we are backup, the master legitimately sends from that MAC
	// (adverts, gratuitous ARP, forwarded frames): only VRRP that fails the
	// ladder is a conflict then (no router sends a broken advert).
	__u32 *src_router = vmac_router(eth->h_source);
	if (src_router && is_master(*src_router)) {
		note_conflict(*src_router);
		src_router = NULL;
	}

	void *l3 = (void *)(eth + 1);
	__u16 proto = eth->h_proto;

	// VRRP first, whatever its destination MAC.
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) <= data_end && ip->protocol == IPPROTO_VRRP)
			return vrrp4(ctx, ip, src_router);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) <= data_end && ip6->nexthdr == IPPROTO_VRRP)
			return vrrp6(ctx, ip6, src_router);
	}

	struct mac_key dst;
	__builtin_memcpy(dst.addr, eth->h_dest, 6);
	__u32 *router = bpf_map_lookup_elem(&vmacs, &dst);
	if (router)
		return for_router(ctx, router);

	if (proto == bpf_htons(ETH_P_ARP)) {
		if (l3 + ARP_HDR_LEN > data_end)
			return XDP_PASS;
		__u32 target;
		__builtin_memcpy(&target, l3 + ARP_TARGET_IP_OFF, 4);
		router = bpf_map_lookup_elem(&vips4, &target);
		if (router)
			return for_router(ctx, router);
		return XDP_PASS;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		__u32 daddr = ip->daddr;
		router = bpf_map_lookup_elem(&vips4, &daddr);
		if (router)
			return for_router(ctx, router);
		return XDP_PASS;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		struct in6_key key;
		__builtin_memcpy(key.addr, &ip6->daddr, 16);
		router = bpf_map_lookup_elem(&vips6, &key);
		if (router)
			return for_router(ctx, router);
		if (ip6->nexthdr == IPPROTO_ICMPV6_) {
			// ICMPv6 header (4) + reserved (4) + target address (16)
			__u8 *icmp = (__u8 *)(ip6 + 1);
			if ((void *)(icmp + 24) > data_end)
				return XDP_PASS;
			if (icmp[0] != ND_NEIGHBOR_SOLICIT)
				return XDP_PASS;
			__builtin_memcpy(key.addr, icmp + 8, 16);
			router = bpf_map_lookup_elem(&vips6, &key);
			if (router)
				return for_router(ctx, router);
		}
		return XDP_PASS;
	}

	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
