//! The control thread's own transmit path: one AF_PACKET socket per port.
//!
//! Advertisements and address announcements leave from the real-time
//! control thread itself, through the kernel, instead of waiting in a queue
//! for a fast-path worker that may be starved of CPU: the time an advert
//! leaves depends only on the control thread's timer. The socket is opened
//! with protocol 0, so it receives nothing; XDP, which acts on receive only,
//! does not see these frames.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

/// `TC_PRIO_CONTROL`: ahead of other traffic in a priority qdisc.
const CONTROL_PRIORITY: libc::c_int = 7;

/// A send-only packet socket bound to one interface.
#[derive(Debug)]
pub struct RawTx {
    fd: OwnedFd,
}

/// What became of a frame handed to [`RawTx::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The kernel took it.
    Done,
    /// No room right now (EAGAIN/ENOBUFS): try again on the next pass.
    NoRoom,
}

impl RawTx {
    /// Opens a non-blocking send-only socket on the interface `ifindex`.
    ///
    /// # Errors
    /// socket, bind or setsockopt failures (needs CAP_NET_RAW).
    pub fn open(ifindex: u32) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or(17);
        addr.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
        let len = u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).unwrap_or(20);
        // SAFETY: addr is a valid sockaddr_ll of `len` bytes.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let prio = CONTROL_PRIORITY;
        let plen = u32::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
        // SAFETY: SO_PRIORITY reads one c_int from `prio`.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PRIORITY,
                (&prio as *const libc::c_int).cast(),
                plen,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Sends one whole Ethernet frame.
    ///
    /// # Errors
    /// Any failure other than a lack of room (which is [`Sent::NoRoom`]).
    pub fn send(&self, frame: &[u8]) -> io::Result<Sent> {
        // SAFETY: sending `frame.len()` bytes from a live slice on our own fd.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(Sent::Done);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::ENOBUFS) => Ok(Sent::NoRoom),
            _ => Err(e),
        }
    }
}
