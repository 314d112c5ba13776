//! Raw AF_PACKET helpers for the tests: a sender of whole batches of
//! frames to the VRRP group MAC per sendmmsg(2), a flood of such batches,
//! and a capture thread that records what a socket in a lab namespace
//! receives.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::netns;

/// An AF_PACKET socket bound to one interface, sending whole batches of
/// frames to the VRRP group MAC per system call.
pub(crate) struct RawSender {
    fd: OwnedFd,
    addr: libc::sockaddr_ll,
}

impl RawSender {
    /// Opens the socket on `ifname`; call it on a thread inside the
    /// interface's namespace.
    pub(crate) fn open(ifname: &str) -> Result<RawSender> {
        let name = std::ffi::CString::new(ifname)?;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `name` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            bail!("no interface {ifname}");
        }
        // Bypassing the qdisc only makes sending cheaper; failing to is harmless.
        let _ = set_int_option(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1);
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = u16::try_from(libc::AF_PACKET)?;
        addr.sll_ifindex = i32::try_from(ifindex)?;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
        Ok(RawSender { fd, addr })
    }

    /// Sends `frames` with one sendmmsg(2); returns how many left.
    pub(crate) fn send_batch(&self, frames: &[Vec<u8>]) -> Result<usize> {
        let mut iovs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr().cast_mut().cast(),
                iov_len: f.len(),
            })
            .collect();
        let addr_len = u32::try_from(std::mem::size_of::<libc::sockaddr_ll>())?;
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: msghdr is plain data; all-zero is a valid value.
                let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                hdr.msg_name = std::ptr::addr_of!(self.addr).cast_mut().cast();
                hdr.msg_namelen = addr_len;
                hdr.msg_iov = iov;
                hdr.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr: hdr,
                    msg_len: 0,
                }
            })
            .collect();
        // SAFETY: every header points at `self.addr` and at one iovec of
        // `iovs`, whose buffers are the frames; all outlive the call.
        let n = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                u32::try_from(msgs.len())?,
                0,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            // A full socket buffer is back-pressure, not a failure.
            if err.raw_os_error() == Some(libc::ENOBUFS) || err.raw_os_error() == Some(libc::EAGAIN)
            {
                return Ok(0);
            }
            bail!("sendmmsg: {err}");
        }
        Ok(usize::try_from(n)?)
    }
}

/// What a flood sent: frames per slot of its batch pattern, and for how long.
pub(crate) struct FloodReport {
    pub(crate) per_slot: Vec<u64>,
    pub(crate) elapsed: Duration,
}

impl FloodReport {
    pub(crate) fn total(&self) -> u64 {
        self.per_slot.iter().sum()
    }

    pub(crate) fn rate(&self) -> f64 {
        self.total() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `pattern` over and over from the client's `eth0` for `duration`:
/// as fast as the socket takes it when `rate` is `None`, else about `rate`
/// frames per second in 10 ms ticks.
pub(crate) fn flood(
    ns: &str,
    pattern: Vec<Vec<u8>>,
    duration: Duration,
    rate: Option<u32>,
) -> Result<FloodReport> {
    netns::run_in(ns, move || {
        let sender = RawSender::open("eth0")?;
        let slots = pattern.len();
        // Whole patterns per batch, about 64 frames.
        let batch: Vec<Vec<u8>> = pattern
            .iter()
            .cycle()
            .take(slots * (64 / slots).max(1))
            .cloned()
            .collect();
        let mut per_slot = vec![0u64; slots];
        // A batch or burst always starts at slot 0 and sends its first `n`.
        let mut count = |n: usize| {
            for i in 0..n {
                per_slot[i % slots] += 1;
            }
        };
        let start = Instant::now();
        match rate {
            None => {
                while start.elapsed() < duration {
                    let n = sender.send_batch(&batch)?;
                    count(n);
                }
            }
            Some(rate) => {
                let tick = Duration::from_millis(10);
                let per_tick = usize::try_from(rate / 100).unwrap_or(1).max(1);
                let burst: Vec<Vec<u8>> = pattern.iter().cycle().take(per_tick).cloned().collect();
                let mut next = start;
                while start.elapsed() < duration {
                    let n = sender.send_batch(&burst)?;
                    count(n);
                    next += tick;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                }
            }
        }
        let elapsed = start.elapsed();
        Ok(FloodReport { per_slot, elapsed })
    })
}

/// Sets an integer socket option.
pub(crate) fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: i32,
) -> Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())?;
    // SAFETY: `value` is a valid c_int for the length given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::addr_of!(value).cast(),
            len,
        )
    };
    if rc < 0 {
        bail!(
            "setsockopt {level}/{name}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Records what a socket on an interface receives, from a thread inside
/// the interface's namespace, until finished or dropped.
pub(crate) struct Capture<T> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<T>>>>,
}

impl<T: Send + 'static> Capture<T> {
    /// Opens the socket with `open(ifname)` inside `ns` and then calls
    /// `next` on it until finished, keeping what it returns; `next` must
    /// return within a short while (a receive timeout on the socket) so the
    /// thread sees the stop flag. Returns once the socket receives.
    pub(crate) fn start(
        ns: &str,
        ifname: &str,
        open: fn(&str) -> Result<OwnedFd>,
        mut next: impl FnMut(&OwnedFd) -> Option<T> + Send + 'static,
    ) -> Result<Capture<T>> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (ns, dev, flag) = (ns.to_owned(), ifname.to_owned(), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let opened = netns::enter(&ns).and_then(|()| open(&dev));
            let fd = match opened {
                Ok(fd) => {
                    let _ = ready_tx.send(Ok(()));
                    fd
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(item) = next(&fd) {
                    seen.push(item);
                }
            }
            Ok(seen)
        });
        let capture = Capture {
            stop,
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(capture),
            Ok(Err(e)) => bail!("capture on {ifname}: {e}"),
            Err(_) => bail!("the capture thread died"),
        }
    }

    /// Stops the capture and returns what it kept, in arrival order.
    pub(crate) fn finish(mut self) -> Result<Vec<T>> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the capture thread panicked"),
            None => bail!("the capture already finished"),
        }
    }
}

impl<T> Drop for Capture<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
