//! The traffic generator of `bench forward`: netsniff-ng's `trafgen` in the
//! client namespace, sending prebuilt UDP frames round robin from a
//! PF_PACKET TX ring with the qdisc bypassed (its default), pinned to one
//! core.
//!
//! The frames are built with `etherparse`, an encoder independent of the
//! appliance's own `xvrrp-wire`: what the gateway receives is not shaped by
//! the code under test. Each frame is a complete UDP datagram (IPv4 header
//! and UDP checksums filled in), one per flow; flows differ in their source
//! port so that a multi-queue receiver can spread them.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use etherparse::PacketBuilder;

use crate::netns;

/// Ethernet header + IPv4 header + UDP header.
const HEADERS: usize = 14 + 20 + 8;
/// The frame check sequence: counted in a frame's size on the wire, never
/// written by software.
const FCS: usize = 4;
/// Smallest frame on the wire (FCS included).
pub(super) const MIN_SIZE: u16 = 64;
/// Largest untagged frame on the wire (FCS included).
pub(super) const MAX_SIZE: u16 = 1518;
/// UDP discard port at the sink.
const SINK_PORT: u16 = 9;
/// First source port; flow `i` uses `SRC_PORT_BASE + i`.
const SRC_PORT_BASE: u16 = 10_000;

/// What every generated frame shares.
#[derive(Clone, Copy, Debug)]
pub(super) struct FrameSpec {
    pub(super) src_mac: [u8; 6],
    pub(super) dst_mac: [u8; 6],
    pub(super) src: Ipv4Addr,
    pub(super) dst: Ipv4Addr,
    /// Size on the wire including the FCS, `MIN_SIZE..=MAX_SIZE`.
    pub(super) size: u16,
    /// Number of flows (distinct source ports).
    pub(super) flows: u16,
}

/// One frame per flow, each `size - 4` bytes long (the FCS is the NIC's).
pub(super) fn frames(spec: &FrameSpec) -> Result<Vec<Vec<u8>>> {
    if !(MIN_SIZE..=MAX_SIZE).contains(&spec.size) {
        bail!(
            "frame size {} is outside {MIN_SIZE}..={MAX_SIZE}",
            spec.size
        );
    }
    let payload = vec![0u8; usize::from(spec.size) - FCS - HEADERS];
    (0..spec.flows.max(1))
        .map(|i| {
            let builder = PacketBuilder::ethernet2(spec.src_mac, spec.dst_mac)
                .ipv4(spec.src.octets(), spec.dst.octets(), 64)
                .udp(SRC_PORT_BASE.wrapping_add(i), SINK_PORT);
            let mut frame = Vec::with_capacity(builder.size(payload.len()));
            builder
                .write(&mut frame, &payload)
                .context("build a generator frame")?;
            Ok(frame)
        })
        .collect()
}

/// The frames as a trafgen configuration: one `{ 0x.., ... }` block per
/// frame, sent round robin.
pub(super) fn config(frames: &[Vec<u8>]) -> String {
    let mut text = String::new();
    for frame in frames {
        text.push('{');
        for (i, b) in frame.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(text, "{sep}0x{b:02x}");
        }
        text.push_str(" }\n");
    }
    text
}

/// A running trafgen. Dropping it stops it (its worker, then itself, by
/// PID) and reaps it.
#[derive(Debug)]
pub(super) struct Generator {
    child: Option<Child>,
    log: PathBuf,
}

impl Generator {
    /// Starts `trafgen` in `ns` on `dev` with the configuration in `conf`,
    /// one worker pinned to core 0 (trafgen pins worker `i` to core `i`),
    /// at nice -20, at `rate` frames/s or as fast as it can. Its output goes
    /// to `log`.
    ///
    /// trafgen is told to leave the machine's socket memory limits and IRQ
    /// affinities alone: they are global, not the namespace's.
    pub(super) fn start(
        ns: &str,
        dev: &str,
        conf: &Path,
        rate: Option<u64>,
        log: &Path,
    ) -> Result<Generator> {
        let out =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone().context("duplicate log descriptor")?;
        let conf_s = conf.to_string_lossy().into_owned();
        let mut args: Vec<String> = [
            "--dev",
            dev,
            "--conf",
            &conf_s,
            "--cpus",
            "1",
            "--no-sock-mem",
            "--notouch-irq",
            "--no-cpu-stats",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(pps) = rate {
            args.push("--rate".to_owned());
            args.push(format!("{}pps", pps.max(1)));
        }
        // At nice -20 the generator outruns what else runs on its core (a
        // shared machine's builds); still in the normal class, so nothing
        // is starved. `nice` execs trafgen: the child's PID is trafgen's.
        let mut argv: Vec<&str> = vec!["-n", "-20", "trafgen"];
        argv.extend(args.iter().map(String::as_str));
        netns::require(&["trafgen"])?;
        let child = netns::spawn(ns, "nice", &argv, Stdio::from(out), Stdio::from(err))?;
        let mut g = Generator {
            child: Some(child),
            log: log.to_owned(),
        };
        // trafgen checks its configuration and the device before it forks
        // its worker: a mistake shows as an early exit.
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            g.check_running()?;
            thread::sleep(Duration::from_millis(20));
        }
        Ok(g)
    }

    /// Fails, with trafgen's output, if it is no longer running.
    pub(super) fn check_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("the generator was stopped");
        };
        if let Some(status) = child.try_wait().context("wait for trafgen")? {
            self.child = None;
            bail!(
                "trafgen exited ({status}): {}",
                std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .trim()
            );
        }
        Ok(())
    }

    /// Stops the generator: SIGINT to its workers (trafgen's parent waits
    /// for them and does not pass signals on) and to itself, SIGKILL after
    /// 2 s; reaps it.
    pub(super) fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        for sig in [libc::SIGINT, libc::SIGKILL] {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            for worker in children_of(pid) {
                netns::signal(worker, sig)?;
            }
            netns::signal(pid, sig)?;
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if child.try_wait()?.is_some() {
                    return Ok(());
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        child.wait().context("wait for trafgen")?;
        Ok(())
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: stopping trafgen: {e:#}");
        }
    }
}

/// The PIDs of the children of `pid` (from every thread's `children` list).
fn children_of(pid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return pids;
    };
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    pids
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn spec(size: u16) -> FrameSpec {
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 0x64],
            dst_mac: [0, 0, 0x5e, 0, 1, 1],
            src: Ipv4Addr::new(192, 0, 2, 100),
            dst: Ipv4Addr::new(203, 0, 113, 100),
            size,
            flows: 4,
        }
    }

    #[test]
    fn frames_have_the_size_and_fields_asked_for() {
        for size in [64u16, 65, 512, 1518] {
            let frames = frames(&spec(size)).unwrap();
            assert_eq!(frames.len(), 4);
            for (i, frame) in frames.iter().enumerate() {
                assert_eq!(frame.len(), usize::from(size) - 4);
                let p = SlicedPacket::from_ethernet(frame).unwrap();
                let Some(NetSlice::Ipv4(ip)) = p.net else {
                    panic!("not IPv4")
                };
                assert_eq!(ip.header().destination_addr(), spec(size).dst);
                assert_eq!(ip.header().ttl(), 64);
                let Some(TransportSlice::Udp(udp)) = p.transport else {
                    panic!("not UDP")
                };
                assert_eq!(udp.source_port(), SRC_PORT_BASE + u16::try_from(i).unwrap());
                assert_eq!(udp.destination_port(), SINK_PORT);
                let want = udp
                    .to_header()
                    .calc_checksum_ipv4(&ip.header().to_header(), udp.payload())
                    .unwrap();
                assert_eq!(udp.checksum(), want);
            }
        }
        assert!(frames(&spec(63)).is_err());
        assert!(frames(&spec(1519)).is_err());
    }

    #[test]
    fn config_lists_every_byte() {
        let text = config(&[vec![0x00, 0xab], vec![0xff]]);
        assert_eq!(text, "{ 0x00, 0xab }\n{ 0xff }\n");
    }
}
