//! Malformed VRRP advertisements sent from the client namespace onto the
//! LAN, while A (200) is master and B (100) backup: each is dropped,
//! counted under its reason in `stats`, and changes no election.
//!
//! The frames are built here byte by byte, independently of the codecs under
//! test, and carry priority 250 for VRID 1: accepted as valid, one would
//! make A step down, which the tests would see.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::thread;
use std::time::Duration;

use common::{
    frames::{self, checksum, GROUP},
    lab, Appliance, Rig, NO_STOP,
};

/// How many copies of each bad frame are sent.
const COPIES: u64 = 5;

const SRC_IP: [u8; 4] = [192, 0, 2, 100];

/// A VRRPv3 advertisement for VRID 1, priority 250, 100 ms, address
/// 192.0.2.1, with a correct checksum (pseudo-header variant, which RFC
/// 5798 defines and the daemon accepts).
fn vrrp_v3() -> Vec<u8> {
    frames::v3(SRC_IP, 1, 250)
}

/// An Ethernet + IPv4 frame to 224.0.0.18 carrying `vrrp`, with `ttl` and
/// a correct IPv4 header checksum.
fn frame(vrrp: &[u8], ttl: u8) -> Vec<u8> {
    frames::frame(SRC_IP, ttl, vrrp)
}

fn counts(app: &Appliance, reasons: &[&str]) -> u64 {
    let stats = app.query(&["stats"]).unwrap();
    reasons.iter().map(|r| common::drop_count(&stats, r)).sum()
}

/// Sends `frames` from the client and checks that both appliances count
/// them under `reasons` and that no election moved.
fn dropped_and_counted(rig: &mut Rig, frames: Vec<Vec<u8>>, reasons: &[&str]) {
    let sent = u64::try_from(frames.len()).unwrap();
    let before_a = counts(&rig.pair.a, reasons);
    let before_b = counts(&rig.pair.b, reasons);
    let trans_a: BTreeMap<String, u64> = rig.pair.check(common::transitions(&rig.pair.a));
    let trans_b = rig.pair.check(common::transitions(&rig.pair.b));

    common::send_frames(&rig.lab.ns("client"), "eth0", frames).unwrap();

    let (a, b) = (&rig.pair.a, &rig.pair.b);
    let r = lab::wait_until(
        &format!("{reasons:?} drops to be counted"),
        Duration::from_secs(3),
        &NO_STOP,
        || Ok(counts(a, reasons) >= before_a + sent && counts(b, reasons) >= before_b + sent),
    );
    if r.is_err() {
        let sa = a.query(&["stats"]).unwrap();
        panic!("{r:?}: stats of A: {sa}\n{}", rig.pair.logs());
    }
    // Longer than a master-down interval (3 × 100 ms + skew): had a frame
    // been taken for a valid priority-250 advert, A would have stepped down.
    thread::sleep(Duration::from_millis(600));
    assert_eq!(rig.pair.check(common::transitions(&rig.pair.a)), trans_a);
    assert_eq!(rig.pair.check(common::transitions(&rig.pair.b)), trans_b);
    assert!(rig.pair.a.all_in("master").unwrap(), "{}", rig.pair.logs());
    assert!(rig.pair.b.all_in("backup").unwrap(), "{}", rig.pair.logs());
}

fn copies(f: Vec<u8>) -> Vec<Vec<u8>> {
    (0..COPIES).map(|_| f.clone()).collect()
}

#[test]
fn b09_truncated_advert_dropped_and_counted() {
    let Some(mut rig) = Rig::standard("b09_truncated_advert_dropped_and_counted") else {
        return;
    };
    // Six bytes of VRRP header, and a header claiming one address but
    // carrying none; the IPv4 length matches what is there.
    let full = vrrp_v3();
    let mut frames = copies(frame(&full[..6], 255));
    frames.extend(copies(frame(&full[..8], 255)));
    dropped_and_counted(&mut rig, frames, &["packet-length-error", "truncated"]);
}

#[test]
fn b06_bad_checksum_dropped_and_counted() {
    let Some(mut rig) = Rig::standard("b06_bad_checksum_dropped_and_counted") else {
        return;
    };
    let mut bad = vrrp_v3();
    bad[7] ^= 0x01;
    dropped_and_counted(&mut rig, copies(frame(&bad, 255)), &["checksum-error"]);
}

#[test]
fn b01_ttl_254_dropped_and_counted() {
    let Some(mut rig) = Rig::standard("b01_ttl_254_dropped_and_counted") else {
        return;
    };
    dropped_and_counted(&mut rig, copies(frame(&vrrp_v3(), 254)), &["ip-ttl-error"]);
}

#[test]
fn frame_builder_matches_rfc_1071() {
    // The IPv4 header example of RFC 1071 §3 folds to 0xddf2 before the
    // final complement.
    let words = [0x00u8, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(checksum(&[&words]), !0xddf2);
    // A correct checksum sums to zero when included.
    let v = vrrp_v3();
    let len = u16::try_from(v.len()).unwrap().to_be_bytes();
    let pseudo = [&SRC_IP[..], &GROUP[..], &[0, 112][..], &len[..]].concat();
    assert_eq!(checksum(&[&pseudo, &v]), 0);
    let f = frame(&v, 255);
    assert_eq!(checksum(&[&f[14..34]]), 0);
    assert_eq!(f.len(), 14 + 20 + 12);
}

/// The control for the tests above: the same advertisement without its
/// defect, repeated, does move the election (A sees priority 250 and steps
/// down), so the frames do reach both appliances and are one defect away
/// from valid.
#[test]
fn control_valid_injected_advert_moves_the_election() {
    let Some(mut rig) = Rig::standard("control_valid_injected_advert_moves_the_election") else {
        return;
    };
    let before = rig.pair.check(common::transitions(&rig.pair.a));
    let ns = rig.lab.ns("client");
    let a = &mut rig.pair.a;
    let r = lab::wait_until("A to step down", Duration::from_secs(3), &NO_STOP, || {
        common::send_frames(&ns, "eth0", vec![frame(&vrrp_v3(), 255)])?;
        Ok(a.states()?.get("lan-gw").map(String::as_str) == Some("backup"))
    });
    rig.pair.check(r);
    // Once the injection stops, A (200) outranks B (100) again.
    rig.pair.wait_a_master(common::ELECTION_TIMEOUT);
    let after = rig.pair.check(common::transitions(&rig.pair.a));
    assert!(
        after["lan-gw"] >= before["lan-gw"] + 2,
        "{before:?} -> {after:?}"
    );
}

/// B16 (VRRPv3): an advert listing other virtual addresses than ours is a
/// misconfiguration: accepted, but counted in `address_list_errors`.
#[test]
fn b16_v3_address_list_mismatch_accepted_and_counted() {
    let Some(mut rig) = Rig::standard("b16_v3_address_list_mismatch_accepted_and_counted") else {
        return;
    };
    let errors = |app: &Appliance| {
        let status = app.query(&["status"]).unwrap();
        let n = lab::instances(&status)
            .find(|i| i["name"] == "lan-gw")
            .and_then(|i| i["address_list_errors"].as_u64())
            .unwrap_or(0);
        n
    };
    let (before_a, before_b) = (errors(&rig.pair.a), errors(&rig.pair.b));
    // Priority 50 from 192.0.2.100, listing 192.0.2.77 instead of 192.0.2.1:
    // lower than both appliances, so no election moves.
    let mut v = vec![0x31, 1, 50, 1, 0x00, 10, 0, 0, 192, 0, 2, 77];
    let len = u16::try_from(v.len()).unwrap().to_be_bytes();
    let pseudo = [&SRC_IP[..], &GROUP[..], &[0, 112][..], &len[..]].concat();
    let c = checksum(&[&pseudo, &v]);
    v[6..8].copy_from_slice(&c.to_be_bytes());
    let trans_a = rig.pair.check(common::transitions(&rig.pair.a));
    // One at a time: a backup that may not preempt (B's sync group holds
    // it when both its routers stepped down together at start-up) resets
    // its timer on any advert (RFC 9568 §6.4.2) and follows its sender as
    // master; a master's adverts share one slot per router, the latest
    // replacing one not yet read, so a burst of them counts as fewer.
    for copy in copies(frame(&v, 255)) {
        common::send_frames(&rig.lab.ns("client"), "eth0", vec![copy]).unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    let (a, b) = (&rig.pair.a, &rig.pair.b);
    let r = lab::wait_until(
        "address-list errors to be counted",
        Duration::from_secs(10),
        &NO_STOP,
        || Ok(errors(a) >= before_a + COPIES && errors(b) >= before_b + COPIES),
    );
    if r.is_err() {
        // Where the copies went: counted, or dropped on the way and why.
        let seen = |app: &Appliance, before: u64| {
            let stats = app.query(&["stats"]).unwrap();
            format!(
                "{} of {COPIES} counted; stats: {stats}",
                errors(app) - before
            )
        };
        eprintln!("A: {}\nB: {}", seen(a, before_a), seen(b, before_b));
    }
    rig.pair.check(r);
    assert_eq!(rig.pair.check(common::transitions(&rig.pair.a)), trans_a);
    assert!(rig.pair.a.all_in("master").unwrap(), "{}", rig.pair.logs());
}
