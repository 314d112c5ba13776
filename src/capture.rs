//! `xvrrp capture`: asks the daemon for a capture over the control socket,
//! reads the pcapng stream from the one-shot socket the reply names, and
//! writes it to a file block by block (only whole blocks, so the file is
//! complete whenever it stops) or prints one line per frame.
//!
//! Ctrl-C (or SIGTERM) shuts down the client's side of the stream: the daemon then
//! ends the capture with its statistics block, which the client still
//! reads (for up to [`FINISH_TIMEOUT`]) before it closes the file.

use std::{
    fs::File,
    io::{BufWriter, ErrorKind, Read, Write},
    net::Shutdown,
    os::unix::net::UnixStream,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde_json::{json, Value};
use xvrrp_control::CaptureFilter;
use xvrrp_wire::{
    pcapng::{Block, EnhancedPacket, InterfaceStatistics, EPB_TYPE, ISB_TYPE},
    ArpOperation, ArpPacket, ArpRepr, WireError,
};

use crate::client;

/// How long the client waits for the daemon's last blocks after Ctrl-C.
const FINISH_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a blocked read looks at the Ctrl-C flag.
const READ_TICK: Duration = Duration::from_millis(200);
/// Largest block accepted from the daemon (a frame of the snap length and
/// its comment fit well within).
const MAX_BLOCK: usize = 1 << 20;

/// What to capture and where to put it.
pub struct Options<'a> {
    pub port: &'a str,
    pub write: Option<&'a Path>,
    pub count: Option<u64>,
    pub filter: CaptureFilter,
}

/// Runs `xvrrp capture`.
pub fn run(socket: &Path, opts: &Options<'_>) -> anyhow::Result<()> {
    // The file first: a capture that cannot be written is not started.
    let mut file = match opts.write {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => None,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted))
            .context("installing the Ctrl-C handler")?;
    }
    let mut req = json!({"cmd": "capture", "port": opts.port});
    if let Some(c) = opts.count {
        req["count"] = json!(c);
    }
    if opts.filter != CaptureFilter::All {
        req["filter"] = json!(opts.filter.name());
    }
    let reply = client::call(socket, &req)?;
    let path = reply
        .get("socket")
        .and_then(Value::as_str)
        .context("the daemon's capture reply names no socket")?;
    let mut stream = UnixStream::connect(path)
        .with_context(|| format!("connecting to capture socket {path}"))?;
    stream
        .set_read_timeout(Some(READ_TICK))
        .context("setting the capture socket's timeout")?;

    let mut reader = BlockReader::default();
    let mut frames = 0u64;
    let mut stats = None;
    let mut finishing: Option<Instant> = None;
    loop {
        if finishing.is_none() && interrupted.load(Ordering::Relaxed) {
            // The daemon sees the end of our side and sends its statistics.
            let _ = stream.shutdown(Shutdown::Write);
            finishing = Some(Instant::now() + FINISH_TIMEOUT);
        }
        if finishing.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match reader.fill(&mut stream) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the capture"),
        }
        while let Some(block) = reader.next_block()? {
            let (parsed, _) = Block::parse(&block).map_err(bad_stream)?;
            match parsed.block_type {
                EPB_TYPE => {
                    if opts.count.is_some_and(|c| frames >= c) {
                        continue;
                    }
                    frames += 1;
                    if file.is_none() {
                        let epb = EnhancedPacket::parse(&parsed).map_err(bad_stream)?;
                        println!("{}", summary_line(&epb));
                    }
                }
                ISB_TYPE => stats = Some(InterfaceStatistics::parse(&parsed).map_err(bad_stream)?),
                _ => {}
            }
            if let Some(f) = file.as_mut() {
                f.write_all(&block).context("writing the capture file")?;
            }
        }
    }
    if let Some(mut f) = file {
        f.flush().context("writing the capture file")?;
    }
    let lost = stats.map_or_else(String::new, |s| format!(", {} lost (ring full)", s.dropped));
    eprintln!("{frames} frames captured on {}{lost}", opts.port);
    Ok(())
}

fn bad_stream(e: WireError) -> anyhow::Error {
    anyhow::anyhow!("the daemon sent a malformed capture block: {e:?}")
}

/// Gathers whole blocks from a byte stream.
#[derive(Default)]
struct BlockReader {
    buf: Vec<u8>,
}

impl BlockReader {
    /// Reads what `r` has; `Ok(0)` at its end.
    fn fill(&mut self, r: &mut impl Read) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = r.read(&mut chunk)?;
        self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        Ok(n)
    }

    /// The next whole block, taken off the buffer.
    fn next_block(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = Block::total_len(&self.buf).map_err(bad_stream)?;
        if len > MAX_BLOCK {
            bail!("the daemon sent a capture block of {len} bytes");
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let rest = self.buf.split_off(len);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

/// One line per frame, like tcpdump's: UTC time, the comment (direction,
/// worker, what became of it), length, and a short decode.
fn summary_line(epb: &EnhancedPacket<'_>) -> String {
    let us = epb.timestamp_us % 86_400_000_000;
    let (h, m, s, frac) = (
        us / 3_600_000_000,
        us / 60_000_000 % 60,
        us / 1_000_000 % 60,
        us % 1_000_000,
    );
    format!(
        "{h:02}:{m:02}:{s:02}.{frac:06} {:<40} len {:>4}  {}",
        epb.comment,
        epb.original_len,
        decode(epb.data)
    )
}

/// A short decode of an Ethernet frame.
fn decode(frame: &[u8]) -> String {
    const IPPROTO_VRRP: u8 = 112;
    if frame.get(12..14) == Some(&[0x08, 0x06]) {
        return match ArpPacket::new_checked(frame.get(14..).unwrap_or(&[]))
            .and_then(|p| ArpRepr::parse(&p))
        {
            Ok(a) => match a.operation {
                ArpOperation::Request => {
                    format!("ARP who-has {} tell {}", a.target_ip, a.source_ip)
                }
                ArpOperation::Reply => format!("ARP reply {} is-at {}", a.source_ip, a.source_hw),
                ArpOperation::Unknown(op) => format!("ARP operation {op}"),
            },
            Err(e) => format!("ARP, malformed ({e:?})"),
        };
    }
    let pkt = match SlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(e) => return format!("undecoded ({e})"),
    };
    let (src, dst, hops, payload) = match &pkt.net {
        Some(NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
            ip.header().ttl(),
            ip.payload(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
            ip.header().hop_limit(),
            ip.payload(),
        ),
        _ => return "non-IP".to_owned(),
    };
    let what = match &pkt.transport {
        Some(TransportSlice::Udp(u)) => format!(
            "UDP {} > {} len {}",
            u.source_port(),
            u.destination_port(),
            u.payload().len()
        ),
        Some(TransportSlice::Tcp(t)) => {
            format!("TCP {} > {}", t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Icmpv4(i)) => {
            format!("ICMP type {} code {}", i.type_u8(), i.code_u8())
        }
        Some(TransportSlice::Icmpv6(i)) => {
            format!("ICMPv6 type {} code {}", i.type_u8(), i.code_u8())
        }
        _ if payload.ip_number.0 == IPPROTO_VRRP => {
            let b = |i: usize| payload.payload.get(i).copied().unwrap_or(0);
            format!("VRRPv{} vrid {} prio {}", b(0) >> 4, b(1), b(2))
        }
        _ => format!("proto {}", payload.ip_number.0),
    };
    format!("{src} > {dst} ttl {hops} {what}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use xvrrp_wire::pcapng::{Direction, SectionHeader};

    #[test]
    fn reader_returns_whole_blocks_only() {
        let shb = SectionHeader { application: "t" };
        let mut bytes = vec![0; shb.buffer_len()];
        shb.emit(&mut bytes).unwrap();
        let mut r = BlockReader::default();
        let (head, tail) = bytes.split_at(10);
        r.buf.extend_from_slice(head);
        assert!(r.next_block().unwrap().is_none());
        r.buf.extend_from_slice(tail);
        r.buf.extend_from_slice(&[0, 0]);
        assert_eq!(r.next_block().unwrap().unwrap(), bytes);
        assert_eq!(r.buf, [0, 0]);
    }

    #[test]
    fn summary_decodes_vrrp_and_udp() {
        let mut advert = vec![0u8; 14 + 20 + 8];
        advert[12..14].copy_from_slice(&[0x08, 0x00]);
        advert[14] = 0x45;
        advert[16..18].copy_from_slice(&28u16.to_be_bytes());
        advert[22] = 255;
        advert[23] = 112;
        advert[26..30].copy_from_slice(&[10, 0, 0, 2]);
        advert[30..34].copy_from_slice(&[224, 0, 0, 18]);
        advert[34..37].copy_from_slice(&[0x31, 7, 200]);
        let epb = EnhancedPacket {
            interface: 0,
            timestamp_us: 3_723_000_001,
            data: &advert,
            original_len: 42,
            direction: Some(Direction::Inbound),
            comment: "in, worker 0, consumed",
        };
        let line = summary_line(&epb);
        assert!(
            line.starts_with("01:02:03.000001 in, worker 0, consumed"),
            "{line}"
        );
        assert!(
            line.ends_with("10.0.0.2 > 224.0.0.18 ttl 255 VRRPv3 vrid 7 prio 200"),
            "{line}"
        );
    }
}
