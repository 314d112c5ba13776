//! rtnetlink plumbing shared by link tracking ([`crate::track`]) and the
//! kernel route mirror ([`crate::kernel_routes`]): sockets subscribed to
//! groups, reading whole datagrams, and walking the messages in one.
//! Messages are decoded by `netlink-packet-route`.

use std::io;

use netlink_packet_core::{NetlinkBuffer, NetlinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A message of the route netlink family.
pub type Message = NetlinkMessage<RouteNetlinkMessage>;

/// Room for one datagram: the kernel sends notifications one per datagram
/// and dumps in chunks of at most a few pages.
pub const DATAGRAM_MAX: usize = 256 * 1024;

/// A non-blocking rtnetlink socket subscribed to `groups` (`RTNLGRP_*`).
///
/// # Errors
/// socket, bind or membership failures.
pub fn subscribe(groups: &[u32]) -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    for group in groups {
        socket.add_membership(*group)?;
    }
    socket.set_non_blocking(true)?;
    Ok(socket)
}

/// A blocking rtnetlink socket for requests (dumps), subscribed to nothing.
///
/// # Errors
/// socket or bind failures.
pub fn request_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    Ok(socket)
}

/// Sends `msg` (finalized here) to the kernel.
///
/// # Errors
/// send failures.
pub fn send(socket: &Socket, mut msg: Message) -> io::Result<()> {
    msg.finalize();
    // Sized by the message itself, so serializing cannot run short.
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send_to(&buf, &SocketAddr::new(0, 0), 0)?;
    Ok(())
}

/// Receives one datagram into `buf`; its length.
///
/// # Errors
/// As recv(2): `WouldBlock` when a non-blocking socket has nothing,
/// `ENOBUFS` when the kernel dropped notifications for want of room.
pub fn recv(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    let n = socket.recv(&mut &mut buf[..], 0)?;
    Ok(n.min(buf.len()))
}

/// Whether `e` says notifications were lost (the receive buffer overran).
pub fn is_overrun(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOBUFS)
}

/// The messages of one datagram, in order; undecodable ones (a kind this
/// version of the crate does not know) are skipped, and a malformed length
/// ends the walk.
pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = Message> + '_ {
    std::iter::from_fn(move || loop {
        let len = usize::try_from(NetlinkBuffer::new_checked(buf).ok()?.length()).ok()?;
        let one = buf.get(..len)?;
        // Messages are 4-byte aligned.
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
        if let Ok(msg) = Message::deserialize(one) {
            return Some(msg);
        }
    })
}
