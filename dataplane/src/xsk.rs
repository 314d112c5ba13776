//! AF_XDP sockets of one worker, over one UMEM shared by all of the worker's
//! (port, queue) pairs so that a frame received on one port can be sent on
//! another without a copy. All of the crate's unsafe code lives here.
//!
//! Frame ownership: every frame descriptor is, at any time, in exactly one
//! place: the free list, a fill ring, an RX ring, the parked list, the list
//! of frames to hand to another worker (copied, then freed), a pending-TX
//! list, a TX ring or a completion ring. That invariant is what makes the `unsafe`
//! ring calls below sound: we only hand the kernel frames we own and only
//! touch frames the kernel gave back.

use std::{
    io::Write,
    num::NonZeroU32,
    time::{Duration, Instant},
};

use xsk_rs::{
    config::{BindFlags, LibxdpFlags, QueueSize, SocketConfig, UmemConfig},
    CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem,
};

use crate::{error::DataplaneError, stats::XskStats};

/// Frames in a worker's UMEM (2 KiB each: 16 MiB).
pub const UMEM_FRAMES: u32 = 8192;
/// Size of each ring. A receive ring and its fill ring hold what arrives
/// while the worker is off its core: at 51 000 adverts a second (510
/// routers at 10 ms), 4096 frames are 80 ms, longer than a backup waits
/// for them (its Master_Down_Interval and one interval more, 46 ms), so a
/// stall that long delays adverts but loses none (2048 lost them after
/// 40 ms, and B took over falsely).
pub const RING_SIZE: u32 = 4096;
/// Frames kept out of the fill rings for transmit (control frames,
/// resolution requests, handed-off copies), so those are never starved.
const TX_RESERVE: usize = RING_SIZE as usize / 4;

fn boxed<E: std::error::Error + Send + Sync + 'static>(
    e: E,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

/// One bound socket.
pub struct XskSocket {
    /// Port index.
    pub port: usize,
    /// Queue id on the port.
    pub queue: u32,
    /// Whether the kernel bound it in zero-copy mode (else copy mode).
    pub zero_copy: bool,
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    pending: Vec<FrameDesc>,
    /// Frames handed to the TX ring and not yet back through the
    /// completion ring.
    in_flight: usize,
}

/// A worker's UMEM, free frames, and sockets.
pub struct WorkerXsk {
    umem: Umem,
    free: Vec<FrameDesc>,
    scratch: Vec<FrameDesc>,
    sockets: Vec<XskSocket>,
    /// How each port is reached from this worker, by port index.
    egress: Vec<Egress>,
    /// Frames waiting for their next hop's MAC.
    parked: Vec<Parked>,
    /// Forwarded frames waiting to be copied to the worker that serves
    /// their egress port: (frame, egress port).
    outgoing: Vec<(FrameDesc, usize)>,
    /// What became of the frames placed since the last [`Self::take_tally`].
    tally: Vec<Tally>,
    /// Frames each socket's fill ring is kept topped up to: the UMEM less
    /// [`TX_RESERVE`], shared evenly, so that a socket on a queue that
    /// receives little never hoards the frames the busy ones need.
    fill_share: usize,
}

/// How a worker sends on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Through its own socket (index into its sockets).
    Local(usize),
    /// By handing a copy to the worker that has a socket on it.
    HandOff,
    /// Not at all: no worker has a socket on the port.
    Unserved,
}

/// What became of the frames a worker placed, per port.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Forwarded frames queued for transmission on this (egress) port.
    pub forwarded: u64,
    /// Forwarded frames for this port copied to the worker that serves it.
    pub handed_off: u64,
    /// Frames for this port dropped: its list of frames waiting for the
    /// transmit ring was full.
    pub egress_full: u64,
    /// Frames for this port dropped: the serving worker's hand-off queue was full.
    pub handoff_full: u64,
    /// Frames for this port dropped: no worker has a socket on it.
    pub no_egress: u64,
    /// Frames received on this (ingress) port given up while parked (too
    /// old, or no room to park).
    pub parked_lost: u64,
}

impl Tally {
    fn is_zero(&self) -> bool {
        *self == Tally::default()
    }
}

/// Frames that can wait for a resolution at once (per worker).
pub const PARK_MAX: usize = 64;

/// A frame waiting for its next hop to be resolved.
#[derive(Debug, Clone, Copy)]
struct Parked {
    desc: FrameDesc,
    /// Ingress port (what `resume` needs).
    port: usize,
    since: Instant,
}

impl WorkerXsk {
    /// Creates the UMEM for worker `worker`, which serves `ports` ports.
    ///
    /// # Errors
    /// UMEM creation failure.
    pub fn new(worker: usize, batch: usize, ports: usize) -> Result<Self, DataplaneError> {
        let umem_err = |e: Box<dyn std::error::Error + Send + Sync>| DataplaneError::Umem {
            worker,
            source: e,
        };
        let ring = QueueSize::new(RING_SIZE).map_err(|e| umem_err(boxed(e)))?;
        let config = UmemConfig::builder()
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .build()
            .map_err(|e| umem_err(boxed(e)))?;
        let frames = NonZeroU32::new(UMEM_FRAMES)
            .ok_or_else(|| DataplaneError::Unsupported("zero UMEM frames".into()))?;
        let (umem, descs) = Umem::new(config, frames, false).map_err(|e| umem_err(boxed(e)))?;
        let scratch = descs.iter().take(batch.max(1)).copied().collect();
        Ok(Self {
            umem,
            free: descs,
            scratch,
            sockets: Vec::new(),
            egress: vec![Egress::Unserved; ports],
            parked: Vec::with_capacity(PARK_MAX),
            outgoing: Vec::with_capacity(RING_SIZE as usize),
            tally: vec![Tally::default(); ports],
            fill_share: RING_SIZE as usize,
        })
    }

    /// Shares the frames among the fill rings of the sockets bound, and
    /// fills them: call once every socket is bound, before frames are
    /// redirected to them.
    pub fn prime(&mut self) {
        let usable = (UMEM_FRAMES as usize).saturating_sub(TX_RESERVE);
        self.fill_share = (usable / self.sockets.len().max(1)).min(RING_SIZE as usize);
        for s in 0..self.sockets.len() {
            self.recycle(s);
        }
    }

    /// Says how this worker reaches each port: through its own socket where
    /// it has one, else through another worker where `served(port)`.
    pub fn set_egress(&mut self, served: impl Fn(usize) -> bool) {
        for (port, e) in self.egress.iter_mut().enumerate() {
            *e = match self.sockets.iter().position(|s| s.port == port) {
                Some(s) => Egress::Local(s),
                None if served(port) => Egress::HandOff,
                None => Egress::Unserved,
            };
        }
    }

    /// How this worker reaches `port`.
    pub fn egress(&self, port: usize) -> Egress {
        self.egress.get(port).copied().unwrap_or(Egress::Unserved)
    }

    /// Binds a socket to `ifname`/`queue` (serving `port`) and fills its
    /// fill ring. `zero_copy`: `Some(true)` zero-copy or fail, `Some(false)`
    /// copy mode, `None` whatever the driver offers — zero-copy where it
    /// can, else copy mode (veth), with an explicit copy-mode bind as a
    /// last resort. Returns the socket's fd for the program's XSKMAP and
    /// whether the kernel bound it in zero-copy mode.
    ///
    /// # Errors
    /// Bind failure.
    pub fn bind(
        &mut self,
        port: usize,
        ifname: &str,
        queue: u32,
        zero_copy: Option<bool>,
    ) -> Result<(i32, bool), DataplaneError> {
        let bind_err = |e: Box<dyn std::error::Error + Send + Sync>| DataplaneError::Bind {
            ifname: ifname.to_string(),
            queue,
            source: e,
        };
        let ring = QueueSize::new(RING_SIZE).map_err(|e| bind_err(boxed(e)))?;
        let iface = ifname.parse().map_err(|e| bind_err(boxed(e)))?;
        let open = |extra: BindFlags| {
            let config = SocketConfig::builder()
                .rx_queue_size(ring)
                .tx_queue_size(ring)
                .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
                .bind_flags(BindFlags::XDP_USE_NEED_WAKEUP | extra)
                .build();
            // SAFETY: LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD is set, which is
            // what xsk-rs requires when a UMEM is shared between sockets.
            unsafe { Socket::new(config, &self.umem, &iface, queue) }
        };
        let opened = match zero_copy {
            Some(true) => open(BindFlags::XDP_ZEROCOPY).map_err(|e| {
                bind_err(format!("{e} (zero_copy = \"on\", but the driver of {ifname} may not support zero-copy: use \"auto\")").into())
            }),
            Some(false) => open(BindFlags::XDP_COPY).map_err(|e| bind_err(boxed(e))),
            None => open(BindFlags::empty()).or_else(|first| {
                tracing::warn!(port = ifname, queue, error = %first, "AF_XDP bind failed; retrying in copy mode");
                open(BindFlags::XDP_COPY).map_err(|e| bind_err(boxed(e)))
            }),
        };
        let (tx, rx, rings) = opened?;
        // The fill ring is filled by `prime`, once the worker's sockets are
        // all bound and the frames can be shared among them.
        let (fq, cq) = rings.ok_or_else(|| {
            DataplaneError::Unsupported(format!(
                "{ifname} queue {queue} is bound twice by one worker"
            ))
        })?;
        let fd = {
            use std::os::fd::AsRawFd;
            rx.fd().as_raw_fd()
        };
        let zero_copy = bound_zero_copy(fd);
        let cap = (RING_SIZE as usize) + self.scratch.len();
        self.sockets.push(XskSocket {
            port,
            queue,
            zero_copy,
            tx,
            rx,
            fq,
            cq,
            pending: Vec::with_capacity(cap),
            in_flight: 0,
        });
        Ok((fd, zero_copy))
    }

    /// The sockets' raw fds (for poll(2) when idle).
    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        use std::os::fd::AsRawFd;
        self.sockets.iter().map(|s| s.rx.fd().as_raw_fd())
    }

    /// Frames read from one ring per call of [`WorkerXsk::receive`].
    pub fn batch_size(&self) -> usize {
        self.scratch.len()
    }

    /// Number of sockets.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// True with no socket.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Port served by socket `s`.
    pub fn port_of(&self, s: usize) -> Option<usize> {
        self.sockets.get(s).map(|x| x.port)
    }

    /// Reclaims completed TX frames and tops socket `s`'s fill ring up to
    /// its share: what the kernel took from it since, no more.
    pub fn recycle(&mut self, s: usize) {
        let Some(sock) = self.sockets.get_mut(s) else {
            return;
        };
        loop {
            // SAFETY: descriptors in the completion ring are frames we handed
            // to TX; consuming gives ownership back to us.
            let n = unsafe { sock.cq.consume(&mut self.scratch) };
            sock.in_flight = sock.in_flight.saturating_sub(n);
            self.free
                .extend_from_slice(self.scratch.get(..n).unwrap_or(&[]));
            if n < self.scratch.len() {
                break;
            }
        }
        let in_ring = (RING_SIZE as usize).saturating_sub(sock.fq.nb_free(RING_SIZE) as usize);
        let want = self.fill_share.saturating_sub(in_ring);
        // Keep a reserve for transmit so control frames are never starved.
        let give = want.min(self.free.len().saturating_sub(TX_RESERVE));
        if give > 0 {
            let start = self.free.len() - give;
            // SAFETY: frames from our free list; we own them.
            let n = unsafe { sock.fq.produce(&self.free[start..]) };
            self.free.truncate(self.free.len() - n);
            if sock.fq.needs_wakeup() {
                // A failed wakeup only delays RX until the next one.
                let _ = sock.fq.wakeup(sock.rx.fd_mut(), 0);
            }
        }
    }

    /// Receives up to a batch on socket `s` and calls `f(port, frame_buf,
    /// len) -> Action` on each; `frame_buf` is the whole frame buffer and
    /// `len` the received length. The action says what became of the frame.
    pub fn receive<F>(&mut self, s: usize, now: Instant, mut f: F) -> usize
    where
        F: FnMut(usize, &mut [u8], usize) -> Action,
    {
        let Some(sock) = self.sockets.get_mut(s) else {
            return 0;
        };
        // SAFETY: scratch descriptors are overwritten with frames the kernel
        // hands us; from here we own them.
        let n = unsafe { sock.rx.consume(&mut self.scratch) };
        let port = sock.port;
        for i in 0..n {
            let Some(desc) = self.scratch.get_mut(i) else {
                break;
            };
            let action = run_on(&self.umem, desc, port, &mut f);
            let desc = *desc;
            self.place(desc, port, action, now);
        }
        n
    }

    /// Offers every parked frame to `f` again (after a resolution) with
    /// [`Retry::Again`]; frames parked longer than `max_age` are given up:
    /// counted as lost and offered with [`Retry::Expired`], when `f` may
    /// turn the frame into a reply to send (an ICMP error to its sender).
    pub fn retry_parked<F>(&mut self, now: Instant, max_age: Duration, mut f: F)
    where
        F: FnMut(Retry, usize, &mut [u8], usize) -> Action,
    {
        let mut i = 0;
        while i < self.parked.len() {
            let Some(mut entry) = self.parked.get(i).copied() else {
                break;
            };
            if now.saturating_duration_since(entry.since) > max_age {
                self.parked.swap_remove(i);
                self.count_lost(entry.port);
                let mut expired = |port, buf: &mut [u8], len| f(Retry::Expired, port, buf, len);
                match run_on(&self.umem, &mut entry.desc, entry.port, &mut expired) {
                    action @ (Action::Send { .. } | Action::Forward { .. }) => {
                        self.place(entry.desc, entry.port, action, entry.since);
                    }
                    Action::Free | Action::Park => self.free.push(entry.desc),
                }
                continue;
            }
            let mut again = |port, buf: &mut [u8], len| f(Retry::Again, port, buf, len);
            let action = run_on(&self.umem, &mut entry.desc, entry.port, &mut again);
            if action == Action::Park {
                if let Some(slot) = self.parked.get_mut(i) {
                    slot.desc = entry.desc;
                }
                i += 1;
                continue;
            }
            self.parked.swap_remove(i);
            self.place(entry.desc, entry.port, action, entry.since);
        }
    }

    /// Frames waiting for a resolution.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// Reports and resets what became of the frames placed, per port.
    pub fn take_tally(&mut self, mut f: impl FnMut(usize, &Tally)) {
        for (port, t) in self.tally.iter_mut().enumerate() {
            if !t.is_zero() {
                f(port, t);
                *t = Tally::default();
            }
        }
    }

    fn count(&mut self, port: usize, f: impl FnOnce(&mut Tally)) {
        if let Some(t) = self.tally.get_mut(port) {
            f(t);
        }
    }

    fn give_up(&mut self, desc: FrameDesc, port: usize) {
        self.free.push(desc);
        self.count_lost(port);
    }

    fn count_lost(&mut self, port: usize) {
        self.count(port, |t| t.parked_lost += 1);
    }

    /// Puts a handled frame where its action says.
    fn place(&mut self, desc: FrameDesc, ingress: usize, action: Action, since: Instant) {
        match action {
            Action::Free => self.free.push(desc),
            Action::Park => {
                if self.parked.len() < PARK_MAX {
                    self.parked.push(Parked {
                        desc,
                        port: ingress,
                        since,
                    });
                } else {
                    self.give_up(desc, ingress);
                }
            }
            Action::Send { port, .. } => {
                // A reply leaves by the port it answers, where this worker
                // has a socket; anything else is not sendable from here.
                if !self.push_pending(port, desc) {
                    self.free.push(desc);
                }
            }
            Action::Forward { port, .. } => match self.egress(port) {
                Egress::Local(_) => {
                    if self.push_pending(port, desc) {
                        self.count(port, |t| t.forwarded += 1);
                    } else {
                        self.free.push(desc);
                    }
                }
                Egress::HandOff if self.outgoing.len() < self.outgoing.capacity() => {
                    self.outgoing.push((desc, port));
                }
                Egress::HandOff => {
                    self.free.push(desc);
                    self.count(port, |t| t.handoff_full += 1);
                }
                Egress::Unserved => {
                    self.free.push(desc);
                    self.count(port, |t| t.no_egress += 1);
                }
            },
        }
    }

    /// Adds `desc` to the frames waiting for `port`'s transmit ring; false
    /// (counted `egress_full` or `no_egress`) if it cannot.
    fn push_pending(&mut self, port: usize, desc: FrameDesc) -> bool {
        let Egress::Local(s) = self.egress(port) else {
            self.count(port, |t| t.no_egress += 1);
            return false;
        };
        match self.sockets.get_mut(s) {
            Some(out) if out.pending.len() < out.pending.capacity() => {
                out.pending.push(desc);
                true
            }
            _ => {
                self.count(port, |t| t.egress_full += 1);
                false
            }
        }
    }

    /// Frames waiting to be handed to another worker.
    pub fn outgoing(&self) -> usize {
        self.outgoing.len()
    }

    /// Offers each frame waiting to be handed off to `push(port, frame)`,
    /// which copies it to the worker serving `port` (false: no room), and
    /// frees it.
    pub fn hand_off(&mut self, mut push: impl FnMut(usize, &[u8]) -> bool) {
        // In arrival order, so a flow is not reordered; the list is put
        // back afterwards with its capacity (no allocation).
        let mut outgoing = std::mem::take(&mut self.outgoing);
        for &(desc, port) in &outgoing {
            // SAFETY: frames in `outgoing` are ours (taken from RX, handled,
            // not given back to any ring) and nothing else refers to them.
            let data = unsafe { self.umem.data(&desc) };
            let pushed = push(port, data.contents());
            self.free.push(desc);
            self.count(port, |t| {
                if pushed {
                    t.handed_off += 1;
                } else {
                    t.handoff_full += 1;
                }
            });
        }
        outgoing.clear();
        self.outgoing = outgoing;
    }

    /// Queues a copy of `frame` for transmission on `port`; false if this
    /// worker has no socket there or no frame or room is available.
    pub fn queue_copy(&mut self, port: usize, frame: &[u8]) -> bool {
        let Egress::Local(s) = self.egress(port) else {
            return false;
        };
        let Some(sock) = self.sockets.get_mut(s) else {
            return false;
        };
        if sock.pending.len() >= sock.pending.capacity() {
            return false;
        }
        let Some(mut desc) = self.free.pop() else {
            return false;
        };
        // SAFETY: the frame came from our free list; we own it.
        let mut data = unsafe { self.umem.data_mut(&mut desc) };
        let mut cursor = data.cursor();
        cursor.set_pos(0);
        if cursor.write_all(frame).is_err() {
            self.free.push(desc);
            return false;
        }
        sock.pending.push(desc);
        true
    }

    /// Pushes every pending frame to the TX rings and kicks the kernel;
    /// tells `sent` what went out on each port's socket.
    pub fn flush(&mut self, mut sent: impl FnMut(usize, Sent)) {
        for sock in &mut self.sockets {
            if sock.pending.is_empty() {
                // In copy mode the kernel sends only when kicked, and a kick
                // that found no room (EAGAIN/ENOBUFS) leaves frames in the
                // ring: kick again while any are out, or they never come
                // back and the fill rings run dry.
                if sock.in_flight > 0 && sock.tx.needs_wakeup() {
                    let _ = sock.tx.wakeup();
                }
                continue;
            }
            // SAFETY: pending frames are ours; producing hands them to the
            // kernel until they come back through the completion ring.
            let n = unsafe { sock.tx.produce(&sock.pending) };
            sock.in_flight += n;
            let bytes = sock
                .pending
                .get(..n)
                .unwrap_or(&[])
                .iter()
                .map(|d| d.lengths().data() as u64)
                .sum();
            let dropped = sock.pending.len() - n;
            self.free
                .extend_from_slice(sock.pending.get(n..).unwrap_or(&[]));
            sock.pending.clear();
            if n > 0 && sock.tx.needs_wakeup() {
                // Errors here are transient (ENOBUFS/EAGAIN are already
                // swallowed); the next flush kicks again.
                let _ = sock.tx.wakeup();
            }
            sent(
                sock.port,
                Sent {
                    frames: n,
                    bytes,
                    dropped,
                },
            );
        }
    }
}

/// What one flush did on one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Frames handed to the kernel.
    pub frames: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Frames dropped for want of room in the transmit ring.
    pub dropped: usize,
}

/// Reads the kernel's counters of the AF_XDP socket `fd`
/// (`getsockopt(SOL_XDP, XDP_STATISTICS)`): one system call, for a `stats`
/// request or a periodic reading, never per packet.
///
/// Any thread may call it while the socket is open: the call only reads
/// counters the kernel keeps for the socket, never its rings. A kernel
/// older than 5.9 answers with the three-field `xdp_statistics_v1` (its
/// `optlen` says so); the newer fields are then `None`, and `rx_dropped`
/// includes the frames dropped on a full RX ring.
///
/// # Errors
/// The system call fails (`fd` is not an AF_XDP socket), or the kernel
/// answers with a length shorter than `xdp_statistics_v1`.
pub fn socket_stats(fd: i32) -> std::io::Result<XskStats> {
    // SAFETY: xdp_statistics is plain integers; all-zero is a valid value.
    let mut raw: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    let full = std::mem::size_of::<libc::xdp_statistics>();
    let v1 = std::mem::size_of::<libc::xdp_statistics_v1>();
    let mut optlen = libc::socklen_t::try_from(full)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `raw` is a writable buffer of `optlen` bytes and `optlen` a
    // valid socklen_t; the kernel writes at most that many bytes into `raw`
    // and the length it wrote into `optlen`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            std::ptr::addr_of_mut!(raw).cast(),
            &mut optlen,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let len = usize::try_from(optlen).unwrap_or(0);
    if len < v1 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "XDP_STATISTICS answered {len} bytes, fewer than the {v1} of its first version"
            ),
        ));
    }
    let extended = len >= full;
    let newer = |v: u64| extended.then_some(v);
    Ok(XskStats {
        rx_dropped: raw.rx_dropped,
        rx_invalid_descs: raw.rx_invalid_descs,
        tx_invalid_descs: raw.tx_invalid_descs,
        rx_ring_full: newer(raw.rx_ring_full),
        rx_fill_ring_empty_descs: newer(raw.rx_fill_ring_empty_descs),
        tx_ring_empty_descs: newer(raw.tx_ring_empty_descs),
    })
}

/// What the packet handler decided for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return the frame to the free list.
    Free,
    /// Keep the frame, unchanged, until its next hop is resolved, then
    /// offer it again (`Processor::resume`).
    Park,
    /// Transmit `len` bytes of the (possibly rewritten) frame on `port`:
    /// a reply, out of the port it answers.
    Send {
        /// Egress port.
        port: usize,
        /// Frame length.
        len: usize,
    },
    /// Transmit `len` bytes of the rewritten frame on `port`: a forwarded
    /// frame, counted `forwarded` once it is queued for transmission (by
    /// this worker, or by the one it is handed to when this worker has no
    /// socket on `port`).
    Forward {
        /// Egress port.
        port: usize,
        /// Frame length.
        len: usize,
    },
}

/// Why a parked frame is offered to the handler again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// An address was resolved: try to forward it.
    Again,
    /// It waited too long: its next hop does not answer.
    Expired,
}

/// Runs the packet handler on the frame of `desc` (which we own) and sets
/// the frame's length to what the action leaves: the reply or forwarded
/// frame for `Send`, the frame as received for `Park`.
fn run_on<F>(umem: &Umem, desc: &mut FrameDesc, port: usize, f: &mut F) -> Action
where
    F: FnMut(usize, &mut [u8], usize) -> Action,
{
    let len = desc.lengths().data();
    // SAFETY: the caller owns this frame (just consumed from RX, or parked
    // by us) and no other reference to its memory exists.
    let mut data = unsafe { umem.data_mut(desc) };
    {
        let mut cursor = data.cursor();
        let cap = cursor.buf_len();
        cursor.set_pos(cap);
    }
    let action = f(port, data.contents_mut(), len);
    let keep = match action {
        Action::Free => 0,
        Action::Park => len,
        Action::Send { len, .. } | Action::Forward { len, .. } => len,
    };
    data.cursor().set_pos(keep);
    action
}

/// Whether the kernel bound socket `fd` in zero-copy mode (XDP_OPTIONS);
/// false when it cannot tell.
fn bound_zero_copy(fd: i32) -> bool {
    let mut opts = libc::xdp_options { flags: 0 };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::xdp_options>()).unwrap_or(0);
    // SAFETY: `opts` is a valid, writable xdp_options of `len` bytes, and
    // the kernel writes at most `len` bytes into it.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            std::ptr::addr_of_mut!(opts).cast(),
            &mut len,
        )
    };
    rc == 0 && opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A fresh socket of `domain`/`kind`, or `None` where this machine
    /// refuses it (AF_XDP needs CAP_NET_RAW and a kernel built with it).
    fn socket(domain: i32, kind: i32) -> Option<OwnedFd> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, 0) };
        // SAFETY: a non-negative result is a fresh descriptor we own.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }

    #[test]
    fn statistics_of_an_unbound_af_xdp_socket_are_zero() {
        let Some(fd) = socket(libc::AF_XDP, libc::SOCK_RAW) else {
            eprintln!("skipping: no AF_XDP socket here (not root?)");
            return;
        };
        let stats = socket_stats(fd.as_raw_fd()).unwrap();
        assert_eq!(stats.rx_dropped, 0);
        assert_eq!(stats.rx_invalid_descs, 0);
        assert_eq!(stats.tx_invalid_descs, 0);
        // Every kernel this runs on (≥ 5.9) has the extended statistics.
        assert_eq!(stats.rx_ring_full, Some(0));
        assert_eq!(stats.rx_fill_ring_empty_descs, Some(0));
        assert_eq!(stats.tx_ring_empty_descs, Some(0));
    }

    #[test]
    fn statistics_of_another_socket_are_an_error() {
        let fd = socket(libc::AF_INET, libc::SOCK_DGRAM).unwrap();
        assert!(socket_stats(fd.as_raw_fd()).is_err());
        assert!(socket_stats(-1).is_err());
    }
}
