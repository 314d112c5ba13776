//! Tests of the XDP filter program itself: its counters against
//! [`XdpCounter`], and its verdicts, run in the kernel with
//! `BPF_PROG_TEST_RUN`, against the worker's on the same frames (the
//! program must drop a frame only under the reason the worker would have
//! counted, and pass what the worker would take).
//!
//! Loading a program needs root: without it the kernel tests are skipped
//! with a note, except under `CI=true`, where they fail.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, BorrowedFd},
    time::Instant,
};

use proptest::prelude::*;
use xvrrp_control::{DropReason, RouterId};
use xvrrp_wire::{
    ethernet::EthernetAddress,
    frames,
    ipv4::Ipv4Packet,
    vrrp::{self, AddrList, ChecksumKind, Version, VrrpPacket, VrrpRepr},
};

use crate::{
    process::{
        tests_ladder::{self as ladder, Rig, CLIENT_MAC, PEER4, PEER6, VIP4, VIP4_V2, VIP6},
        InstanceView,
    },
    xdp::PortFilter,
    xdp_maps::{self, XdpControl, XdpCounter, XdpPortStats},
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

const OTHER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

// ----- the C enum and constants ------------------------------------------------

fn upper_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

const SOURCE: &str = include_str!("../bpf/xvrrp.bpf.c");

fn c_define(name: &str) -> u64 {
    let prefix = format!("#define {name} ");
    let line = SOURCE
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no #define {name}"));
    line[prefix.len()..].trim().parse().unwrap()
}

#[test]
fn counters_and_limits_mirror_the_program() {
    let start = SOURCE.find("enum xdp_counter {").unwrap();
    let body = &SOURCE[start..];
    let end = body.find("XC_COUNT").unwrap();
    let theirs: Vec<&str> = body[..end]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("XC_"))
        .map(|l| l.trim_end_matches(','))
        .collect();
    let ours: Vec<String> = XdpCounter::ALL
        .iter()
        .map(|c| format!("XC_{}", upper_snake(&format!("{c:?}"))))
        .collect();
    assert_eq!(theirs, ours);
    for (i, c) in XdpCounter::ALL.iter().enumerate() {
        assert_eq!(*c as usize, i);
    }
    // Drop counters are named as the worker's reasons.
    let names: Vec<&str> = XdpCounter::ALL
        .iter()
        .filter_map(|c| c.drop_reason())
        .map(DropReason::name)
        .collect();
    assert!(names.contains(&"checksum-error") && names.contains(&"not-master"));
    assert_eq!(c_define("MAX_ROUTERS"), xdp_maps::MAX_ROUTERS as u64);
    assert_eq!(c_define("ADVERT_RATE"), u64::from(xdp_maps::ADVERT_RATE));
    assert_eq!(c_define("ADVERT_BURST"), u64::from(xdp_maps::ADVERT_BURST));
    assert_eq!(c_define("MASTER_RATE"), u64::from(xdp_maps::MASTER_RATE));
    assert_eq!(c_define("MASTER_BURST"), u64::from(xdp_maps::MASTER_BURST));
}

// ----- the program in the kernel ------------------------------------------------

/// The `test` member of `union bpf_attr` (BPF_PROG_TEST_RUN).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// Runs `frame` through the program once; its return value.
fn test_run(fd: BorrowedFd<'_>, frame: &[u8]) -> u32 {
    let mut out = vec![0u8; frame.len() + 512];
    let mut attr = TestRunAttr {
        prog_fd: u32::try_from(fd.as_raw_fd()).unwrap(),
        data_size_in: u32::try_from(frame.len()).unwrap(),
        data_size_out: u32::try_from(out.len()).unwrap(),
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ..TestRunAttr::default()
    };
    // SAFETY: `attr` is a valid BPF_PROG_TEST_RUN attribute whose buffers
    // (`frame`, `out`) outlive the call and have the lengths given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            std::ptr::addr_of_mut!(attr),
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    assert_eq!(
        rc,
        0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::last_os_error()
    );
    attr.retval
}

/// The program loaded for one port serving `routers`, with its maps.
struct Bpf {
    filter: PortFilter,
    ctl: XdpControl,
}

impl Bpf {
    /// `None` (with a note) where programs cannot be loaded, unless CI.
    fn load(routers: &[InstanceView]) -> Option<Bpf> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "loading the XDP program needs root; CI=true"
            );
            eprintln!("skipping: loading the XDP program needs root");
            return None;
        }
        // As root, a program the verifier refuses fails the test.
        let mut filter = PortFilter::load("test").unwrap_or_else(|e| panic!("{e:#?}"));
        for r in routers {
            filter.add_router(r).unwrap();
        }
        let maps = filter.take_runtime_maps().unwrap();
        let ctl = XdpControl::new(vec![maps], routers);
        // Per-CPU buckets: keep every run on one CPU.
        let _ = core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
        Some(Bpf { filter, ctl })
    }

    fn stats(&self) -> XdpPortStats {
        self.ctl.port_stats().remove(0)
    }

    /// Runs `frame`; its return value.
    fn verdict(&self, frame: &[u8]) -> u32 {
        test_run(self.filter.program_fd().unwrap(), frame)
    }

    /// Runs `frame`; its return value and how the counters moved.
    fn run(&self, frame: &[u8]) -> (u32, XdpPortStats) {
        let before = self.stats();
        let ret = self.verdict(frame);
        let after = self.stats();
        let mut delta = XdpPortStats::default();
        for (d, (a, b)) in delta
            .drops
            .iter_mut()
            .zip(after.drops.iter().zip(&before.drops))
        {
            *d = a - b;
        }
        delta.master_adverts = after.master_adverts - before.master_adverts;
        delta.adverts_passed = after.adverts_passed - before.adverts_passed;
        delta.vmac_conflicts = after.vmac_conflicts - before.vmac_conflicts;
        (ret, delta)
    }

    /// The single drop reason that moved for a dropped frame.
    fn dropped(&self, frame: &[u8]) -> Option<DropReason> {
        let (ret, d) = self.run(frame);
        let moved: Vec<DropReason> = DropReason::ALL
            .iter()
            .copied()
            .filter(|r| d.drops[*r as usize] > 0)
            .collect();
        match ret {
            XDP_DROP => {
                assert_eq!(moved.len(), 1, "{moved:?} for {}", hex(frame));
                assert_eq!(d.drops[moved[0] as usize], 1);
                Some(moved[0])
            }
            _ => {
                assert!(moved.is_empty(), "{moved:?} moved for a frame passed");
                None
            }
        }
    }
}

fn hex(frame: &[u8]) -> String {
    frame.iter().map(|b| format!("{b:02x}")).collect()
}

// ----- the worker's side ----------------------------------------------------------

/// The routers of the worker's ladder tests: a v3/IPv4, a v2/IPv4 and a
/// v3/IPv6 one on port 0.
fn instances() -> Vec<InstanceView> {
    ladder::tables().instances
}

/// What the worker did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Worker {
    Punted,
    Dropped(DropReason),
    Other,
}

/// Runs `frame` through the worker of the ladder tests; what it did.
fn worker(rig: &mut Rig, frame: &[u8]) -> Worker {
    let drops = rig.counters.drops[0];
    let punted = rig.counters.ports[0].punted;
    rig.handle(frame);
    while rig.shared.adverts.pop().is_some() {}
    if rig.counters.ports[0].punted > punted {
        return Worker::Punted;
    }
    DropReason::ALL
        .iter()
        .copied()
        .find(|r| rig.counters.drops[0][*r as usize] > drops[*r as usize])
        .map_or(Worker::Other, Worker::Dropped)
}

// ----- frames ------------------------------------------------------------------------

/// The kinds of advert the port serves.
#[derive(Debug, Clone, Copy)]
enum Kind {
    V3,
    V2,
    V6,
}

fn advert(kind: Kind, src4: Ipv4Addr, eth_src: EthernetAddress, checksum: ChecksumKind) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let n = match kind {
        Kind::V3 | Kind::V2 => {
            let (version, vrid, interval, vip) = match kind {
                Kind::V2 => (Version::V2, 2, 1, [VIP4_V2]),
                _ => (Version::V3, 1, 10, [VIP4]),
            };
            let repr = VrrpRepr {
                version,
                vrid,
                priority: 100,
                max_advert_int: interval,
                addresses: AddrList::V4(&vip),
            };
            frames::advert_v4(
                &mut buf,
                eth_src,
                src4,
                vrrp::VRRP_V4_MCAST,
                vrrp::VRRP_V4_MCAST_MAC,
                &repr,
                checksum,
            )
            .unwrap()
        }
        Kind::V6 => {
            let repr = VrrpRepr {
                version: Version::V3,
                vrid: 1,
                priority: 100,
                max_advert_int: 10,
                addresses: AddrList::V6(&[PEER6, VIP6]),
            };
            frames::advert_v6(
                &mut buf,
                eth_src,
                PEER6,
                vrrp::VRRP_V6_MCAST,
                vrrp::VRRP_V6_MCAST_MAC,
                &repr,
            )
            .unwrap()
        }
    };
    buf.truncate(n);
    buf
}

/// Whether the program takes `frame` for VRRP (what else it is goes other
/// ways, tested below).
fn is_vrrp(frame: &[u8]) -> bool {
    match (frame.get(12..14), frame.len()) {
        (Some([0x08, 0x00]), n) if n >= 34 => frame[23] == vrrp::IPPROTO_VRRP,
        (Some([0x86, 0xdd]), n) if n >= 54 => frame[20] == vrrp::IPPROTO_VRRP,
        _ => false,
    }
}

/// Recomputes the IPv4 header checksum and the VRRP checksum (in `form`
/// for v3 over IPv4) where the lengths allow it, so that a mutation deeper
/// in the frame meets the later steps of the ladder.
fn refix(frame: &mut [u8], form: ChecksumKind) {
    let Some(l3) = frame.get_mut(14..) else {
        return;
    };
    let (range, src, dst, v6) = if l3.len() >= 40 && frame_is_v6(l3) {
        let plen = usize::from(u16::from_be_bytes([l3[4], l3[5]]));
        let src: [u8; 16] = l3[8..24].try_into().unwrap();
        let dst: [u8; 16] = l3[24..40].try_into().unwrap();
        (40..40 + plen, IpAddr::from(src), IpAddr::from(dst), true)
    } else if l3.len() >= 20 {
        let hlen = usize::from(l3[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([l3[2], l3[3]]));
        if hlen >= 20 && hlen <= l3.len() {
            Ipv4Packet::new_unchecked(&mut l3[..hlen]).fill_checksum();
        }
        let src: [u8; 4] = l3[12..16].try_into().unwrap();
        let dst: [u8; 4] = l3[16..20].try_into().unwrap();
        (hlen..total, IpAddr::from(src), IpAddr::from(dst), false)
    } else {
        return;
    };
    let Some(msg) = l3.get_mut(range) else {
        return;
    };
    if msg.len() < vrrp::HEADER_LEN {
        return;
    }
    let kind = if v6 || msg[0] >> 4 == 3 {
        if v6 {
            ChecksumKind::PseudoHeader
        } else {
            form
        }
    } else {
        ChecksumKind::Rfc9568
    };
    VrrpPacket::new_unchecked(msg).fill_checksum(kind, src, dst);
}

fn frame_is_v6(l3: &[u8]) -> bool {
    l3[0] >> 4 == 6 && l3[6] == vrrp::IPPROTO_VRRP
}

/// Runs `frame` through both and checks that they agree: a drop in the
/// program is the worker's drop, under the same reason; what the program
/// passes (or holds back by rate only) the worker takes, or drops for its
/// own last step, the destination against the instance's mode.
fn agree(bpf: &Bpf, rig: &mut Rig, frame: &[u8]) {
    if !is_vrrp(frame) {
        return;
    }
    let ours = bpf.dropped(frame);
    let worker = worker(rig, frame);
    match ours {
        Some(DropReason::AdvertRateLimited) | None => assert!(
            matches!(
                worker,
                Worker::Punted | Worker::Dropped(DropReason::DestinationError)
            ),
            "passed by XDP ({ours:?}) but {worker:?} in the worker: {}",
            hex(frame)
        ),
        Some(r) => assert_eq!(
            worker,
            Worker::Dropped(r),
            "XDP dropped as {} : {}",
            r.name(),
            hex(frame)
        ),
    }
}

/// Every byte of each advert from the Ethernet type on, set to a few
/// values, with and without the checksums made right again; and every
/// truncation.
#[test]
fn program_ladder_agrees_with_the_worker_on_every_single_byte_change() {
    let Some(bpf) = Bpf::load(&instances()) else {
        return;
    };
    let mut rig = Rig::new(false);
    let kinds = [
        (Kind::V3, ChecksumKind::PseudoHeader),
        (Kind::V3, ChecksumKind::Rfc9568),
        (Kind::V2, ChecksumKind::Rfc9568),
        (Kind::V6, ChecksumKind::PseudoHeader),
    ];
    let mut dropped = std::collections::BTreeMap::new();
    for (kind, form) in kinds {
        let good = advert(kind, PEER4, CLIENT_MAC, form);
        // The test sends more adverts than the rate: some are held back.
        assert!(
            matches!(
                bpf.dropped(&good),
                None | Some(DropReason::AdvertRateLimited)
            ),
            "{kind:?} {form:?}"
        );
        agree(&bpf, &mut rig, &good);
        for i in 12..good.len() {
            for v in [
                0x00,
                0xff,
                good[i] ^ 0x01,
                good[i] ^ 0x10,
                good[i] ^ 0x80,
                0x45,
                0x31,
            ] {
                let mut f = good.clone();
                f[i] = v;
                agree(&bpf, &mut rig, &f);
                if let Some(r) = bpf.dropped(&f) {
                    *dropped.entry(r.name()).or_insert(0) += 1;
                }
                refix(&mut f, form);
                agree(&bpf, &mut rig, &f);
                if let Some(r) = bpf.dropped(&f) {
                    *dropped.entry(r.name()).or_insert(0) += 1;
                }
            }
        }
        for n in 14..good.len() {
            agree(&bpf, &mut rig, &good[..n]);
        }
        // Ethernet padding after the datagram is allowed.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 20]);
        agree(&bpf, &mut rig, &padded);
    }
    // The mutations reached every step the program checks.
    for r in [
        "malformed",
        "ip-header-error",
        "fragment",
        "source-error",
        "destination-error",
        "ip-ttl-error",
        "packet-length-error",
        "version-error",
        "invalid-type",
        "address-count-error",
        "interval-error",
        "auth-type",
        "checksum-error",
        "vrid-error",
    ] {
        assert!(
            dropped.contains_key(r),
            "no mutation reached {r}: {dropped:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random changes of a few bytes, checksums made right or not.
    #[test]
    fn program_ladder_agrees_with_the_worker_on_random_changes(
        kind in 0usize..4,
        changes in proptest::collection::vec((14usize..120, any::<u8>()), 1..4),
        fix in any::<bool>(),
    ) {
        thread_local! {
            static BPF: Option<Bpf> = Bpf::load(&instances());
        }
        let (kind, form) = [
            (Kind::V3, ChecksumKind::PseudoHeader),
            (Kind::V3, ChecksumKind::Rfc9568),
            (Kind::V2, ChecksumKind::Rfc9568),
            (Kind::V6, ChecksumKind::PseudoHeader),
        ][kind];
        let mut f = advert(kind, PEER4, CLIENT_MAC, form);
        for (i, v) in changes {
            if let Some(b) = f.get_mut(i) {
                *b = v;
            }
        }
        if fix {
            refix(&mut f, form);
        }
        BPF.with(|bpf| {
            if let Some(bpf) = bpf {
                agree(bpf, &mut Rig::new(false), &f);
            }
        });
    }
}

/// IPv4 options (IHL 6 and 15) are decoded, not refused.
#[test]
fn program_takes_adverts_with_ip_options() {
    let Some(bpf) = Bpf::load(&instances()) else {
        return;
    };
    let mut rig = Rig::new(false);
    let good = advert(Kind::V3, PEER4, CLIENT_MAC, ChecksumKind::Rfc9568);
    // Without the Ethernet padding.
    let datagram = usize::from(u16::from_be_bytes([good[16], good[17]]));
    let good = &good[..14 + datagram];
    for words in [1usize, 10] {
        let mut f = good[..34].to_vec();
        f.extend(std::iter::repeat_n(1u8, words * 4)); // NOP options
        f.extend_from_slice(&good[34..]);
        f[14] = 0x45 + u8::try_from(words).unwrap();
        let total = u16::try_from(f.len() - 14).unwrap();
        f[16..18].copy_from_slice(&total.to_be_bytes());
        refix(&mut f, ChecksumKind::Rfc9568);
        assert_eq!(bpf.dropped(&f), None, "IHL {}", 5 + words);
        agree(&bpf, &mut rig, &f);
    }
}

// ----- ownership, rate limits, conflicts ------------------------------------------------

fn arp_request(target: Ipv4Addr, sender: Ipv4Addr) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let n = frames::arp_request(&mut buf, CLIENT_MAC, sender, target).unwrap();
    buf.truncate(n);
    buf
}

fn ns_for(target: Ipv6Addr) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let n = frames::ns_request(&mut buf, CLIENT_MAC, PEER6, target).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn arp_and_ns_for_a_virtual_address_reach_the_worker_only_on_the_master() {
    let Some(bpf) = Bpf::load(&instances()) else {
        return;
    };
    let arp = arp_request(VIP4, Ipv4Addr::new(192, 0, 2, 100));
    let ns = ns_for(VIP6);
    let to_vmac = {
        let mut f = advert(Kind::V3, PEER4, CLIENT_MAC, ChecksumKind::Rfc9568);
        f[..6].copy_from_slice(&EthernetAddress::vrrp_v4(1).0);
        f[23] = 17; // UDP through the gateway
        f
    };
    for f in [&arp, &ns, &to_vmac] {
        assert_eq!(bpf.dropped(f), Some(DropReason::NotMaster), "{}", hex(f));
    }
    bpf.ctl.set_master(RouterId(0), true);
    bpf.ctl.set_master(RouterId(2), true);
    for f in [&arp, &ns, &to_vmac] {
        assert_eq!(bpf.run(f).0, XDP_PASS, "{}", hex(f));
    }
    bpf.ctl.set_master(RouterId(0), false);
    assert_eq!(bpf.dropped(&arp), Some(DropReason::NotMaster));
    // Not ours: to the kernel, uncounted.
    let other = arp_request(Ipv4Addr::new(192, 0, 2, 99), Ipv4Addr::new(192, 0, 2, 100));
    assert_eq!(bpf.run(&other), (XDP_PASS, XdpPortStats::default()));
}

#[test]
fn advert_flood_is_rate_limited_but_the_masters_adverts_pass() {
    let Some(bpf) = Bpf::load(&instances()) else {
        return;
    };
    let master = advert(
        Kind::V3,
        PEER4,
        EthernetAddress::vrrp_v4(1),
        ChecksumKind::Rfc9568,
    );
    let flood = advert(Kind::V3, OTHER4, CLIENT_MAC, ChecksumKind::Rfc9568);
    bpf.ctl
        .set_peer_masters([(RouterId(0), Some(IpAddr::V4(PEER4)))]);
    let burst = u64::from(xdp_maps::ADVERT_BURST);
    let rate = u64::from(xdp_maps::ADVERT_RATE);
    // What the bucket may let through in `elapsed`: the burst, plus the
    // rate's refill (and one token in hand).
    let bound = |burst: u64, rate: u64, elapsed: std::time::Duration| {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap();
        burst + (rate * nanos).div_ceil(1_000_000_000) + 1
    };
    let start = Instant::now();
    let mut passed = 0u64;
    for _ in 0..burst * 3 {
        passed += u64::from(bpf.verdict(&flood) == XDP_PASS);
    }
    let emptied = Instant::now();
    let elapsed = emptied - start;
    assert!(
        passed >= burst && passed <= bound(burst, rate, elapsed),
        "{passed} passed in {elapsed:?}"
    );
    let st = bpf.stats();
    assert_eq!(
        st.drops[DropReason::AdvertRateLimited as usize],
        burst * 3 - passed
    );
    assert_eq!(st.adverts_passed, passed);
    // The bucket stays about empty under the flood, and the master's
    // adverts pass all the same.
    let mut flood_passed = 0;
    for _ in 0..50 {
        for _ in 0..20 {
            flood_passed += u64::from(bpf.verdict(&flood) == XDP_PASS);
        }
        assert_eq!(bpf.verdict(&master), XDP_PASS);
    }
    assert!(
        flood_passed <= bound(0, rate, emptied.elapsed()),
        "{flood_passed} in {:?}",
        emptied.elapsed()
    );
    assert_eq!(bpf.stats().master_adverts, 50);
    // Within their own allowance: a flood forging the master's address is
    // bounded too.
    let master_burst = u64::from(xdp_maps::MASTER_BURST);
    let start = Instant::now();
    let mut forged = 0u64;
    for _ in 0..master_burst * 10 {
        forged += u64::from(bpf.verdict(&master) == XDP_PASS);
    }
    // What passed beyond the master's allowance went through the port's
    // bucket, which refilled meanwhile.
    let elapsed = start.elapsed();
    assert!(
        forged
            <= bound(master_burst, u64::from(xdp_maps::MASTER_RATE), elapsed)
                + bound(0, rate, elapsed),
        "{forged} in {elapsed:?}"
    );
    // Unchanged masters cost nothing; None keeps the last peer.
    bpf.ctl.set_peer_masters([(RouterId(0), None)]);
}

#[test]
fn frames_from_our_virtual_mac_are_conflicts_on_the_master_and_broken_vrrp_on_the_backup() {
    let Some(bpf) = Bpf::load(&instances()) else {
        return;
    };
    let vmac = EthernetAddress::vrrp_v4(1);
    let good = advert(Kind::V3, PEER4, vmac, ChecksumKind::Rfc9568);
    let mut bad = good.clone();
    bad[14 + 20 + 7] ^= 1;
    let mut garp = vec![0u8; 64];
    let n = frames::garp_v4(&mut garp, vmac, VIP4).unwrap();
    garp.truncate(n);
    let conflicts = |f: &[u8]| bpf.run(f).1.vmac_conflicts;
    // Backup: the master's adverts and gratuitous ARP are its right.
    assert_eq!(conflicts(&good), 0);
    assert_eq!(conflicts(&garp), 0);
    assert_eq!(conflicts(&bad), 1);
    assert_eq!(bpf.ctl.vmac_conflicts(), vec![1, 0, 0]);
    // Master: anyone else sending from our MAC.
    bpf.ctl.set_master(RouterId(0), true);
    assert_eq!(conflicts(&good), 1);
    assert_eq!(conflicts(&garp), 1);
    assert_eq!(conflicts(&bad), 1);
    assert_eq!(bpf.ctl.vmac_conflicts(), vec![4, 0, 0]);
    // Another router's MAC, or a stranger's: nothing.
    let other = advert(
        Kind::V3,
        PEER4,
        EthernetAddress::vrrp_v4(9),
        ChecksumKind::Rfc9568,
    );
    assert_eq!(conflicts(&other), 0);
    let mut stranger = bad.clone();
    stranger[6..12].copy_from_slice(&CLIENT_MAC.0);
    assert_eq!(conflicts(&stranger), 0);
}
