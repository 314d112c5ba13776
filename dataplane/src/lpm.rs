//! Route tables: longest-prefix match over connected and static routes, one
//! table per address family.
//!
//! Routes are kept sorted by prefix length, longest first, so the first
//! match is the longest. Tables of a gateway pair are small (connected
//! subnets plus a few statics); the scan allocates nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

/// An address family the tables can route: its addresses as unsigned bits.
pub trait RouteAddr: Copy + Eq + std::fmt::Debug {
    /// Bits in an address.
    const BITS: u8;
    /// The address as an integer, most significant bit first.
    fn to_bits(self) -> u128;
    /// The address from an integer.
    fn from_bits(bits: u128) -> Self;
}

impl RouteAddr for Ipv4Addr {
    const BITS: u8 = 32;
    fn to_bits(self) -> u128 {
        u128::from(u32::from(self))
    }
    fn from_bits(bits: u128) -> Self {
        Ipv4Addr::from(u32::try_from(bits & u128::from(u32::MAX)).unwrap_or(0))
    }
}

impl RouteAddr for Ipv6Addr {
    const BITS: u8 = 128;
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    fn from_bits(bits: u128) -> Self {
        Ipv6Addr::from(bits)
    }
}

/// The network mask of a `len`-bit prefix in an `A`-sized address.
pub fn mask<A: RouteAddr>(len: u8) -> u128 {
    let len = len.min(A::BITS);
    let all = if A::BITS >= 128 {
        u128::MAX
    } else {
        (1u128 << A::BITS) - 1
    };
    // checked_shr: a shift by the full width (a /128) must give 0, not wrap.
    all & !all.checked_shr(u32::from(len)).unwrap_or(0)
}

/// Is `a` inside `net`/`len`?
pub fn in_prefix<A: RouteAddr>(a: A, net: A, len: u8) -> bool {
    let m = mask::<A>(len);
    a.to_bits() & m == net.to_bits() & m
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<A> {
    /// Network address (host bits are cleared by the table).
    pub net: A,
    /// Prefix length.
    pub len: u8,
    /// Gateway; `None` for a connected route (the destination is on-link).
    pub via: Option<A>,
    /// Egress port index.
    pub port: usize,
}

/// Result of a lookup: where to send and whom to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop<A> {
    /// Egress port index.
    pub port: usize,
    /// Address whose MAC the frame goes to.
    pub addr: A,
}

/// A route table of one family.
#[derive(Debug, Clone)]
pub struct RouteTable<A> {
    routes: Vec<(u128, u128, Route<A>)>,
}

impl<A> Default for RouteTable<A> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<A: RouteAddr> RouteTable<A> {
    /// Builds a table from `routes` (host bits are cleared).
    pub fn new(routes: impl IntoIterator<Item = Route<A>>) -> Self {
        let mut table: Vec<(u128, u128, Route<A>)> = routes
            .into_iter()
            .map(|mut r| {
                let m = mask::<A>(r.len);
                let net = r.net.to_bits() & m;
                r.net = A::from_bits(net);
                (net, m, r)
            })
            .collect();
        table.sort_by_key(|r| std::cmp::Reverse(r.2.len));
        Self { routes: table }
    }

    /// Longest-prefix match for `dst`.
    #[inline]
    pub fn lookup(&self, dst: A) -> Option<NextHop<A>> {
        let d = dst.to_bits();
        self.routes
            .iter()
            .find(|(net, m, _)| d & m == *net)
            .map(|(_, _, r)| NextHop {
                port: r.port,
                addr: r.via.unwrap_or(dst),
            })
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> impl Iterator<Item = &Route<A>> {
        self.routes.iter().map(|(_, _, r)| r)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(net: [u8; 4], len: u8, via: Option<[u8; 4]>, port: usize) -> Route<Ipv4Addr> {
        Route {
            net: Ipv4Addr::from(net),
            len,
            via: via.map(Ipv4Addr::from),
            port,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = RouteTable::new([
            r([0, 0, 0, 0], 0, Some([203, 0, 113, 254]), 1),
            r([192, 0, 2, 0], 24, None, 0),
            r([203, 0, 113, 0], 24, None, 1),
            r([198, 51, 100, 0], 25, Some([192, 0, 2, 50]), 0),
        ]);
        let hop = |a: [u8; 4]| t.lookup(Ipv4Addr::from(a)).unwrap();
        assert_eq!(
            hop([192, 0, 2, 100]),
            NextHop {
                port: 0,
                addr: Ipv4Addr::new(192, 0, 2, 100)
            }
        );
        assert_eq!(
            hop([203, 0, 113, 100]),
            NextHop {
                port: 1,
                addr: Ipv4Addr::new(203, 0, 113, 100)
            }
        );
        assert_eq!(
            hop([198, 51, 100, 7]),
            NextHop {
                port: 0,
                addr: Ipv4Addr::new(192, 0, 2, 50)
            }
        );
        assert_eq!(
            hop([198, 51, 100, 200]),
            NextHop {
                port: 1,
                addr: Ipv4Addr::new(203, 0, 113, 254)
            }
        );
    }

    #[test]
    fn no_default_no_route() {
        let t = RouteTable::new([r([192, 0, 2, 7], 24, None, 0)]);
        assert!(t.lookup(Ipv4Addr::new(10, 0, 0, 1)).is_none());
        // host bits in the configured network are ignored
        assert!(t.lookup(Ipv4Addr::new(192, 0, 2, 1)).is_some());
    }

    #[test]
    fn ipv6_longest_prefix_and_default() {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let t = RouteTable::new([
            Route {
                net: a("2001:db8:1::"),
                len: 64,
                via: None,
                port: 0,
            },
            Route {
                net: a("2001:db8:2::"),
                len: 64,
                via: None,
                port: 1,
            },
            Route {
                net: a("::"),
                len: 0,
                via: Some(a("2001:db8:2::fe")),
                port: 1,
            },
        ]);
        assert_eq!(
            t.lookup(a("2001:db8:1::100")),
            Some(NextHop {
                port: 0,
                addr: a("2001:db8:1::100")
            })
        );
        assert_eq!(
            t.lookup(a("2001:db8:9::1")),
            Some(NextHop {
                port: 1,
                addr: a("2001:db8:2::fe")
            })
        );
        assert!(in_prefix(a("fe80::1"), a("fe80::"), 10));
        assert!(!in_prefix(a("fec0::1"), a("fe80::"), 10));
        assert_eq!(mask::<Ipv6Addr>(128), u128::MAX);
        assert_eq!(mask::<Ipv4Addr>(32), u128::from(u32::MAX));
        assert_eq!(mask::<Ipv4Addr>(0), 0);
    }

    proptest! {
        #[test]
        fn matches_brute_force(routes in proptest::collection::vec((any::<u32>(), 0u8..=32, 0usize..4), 0..20), dst in any::<u32>()) {
            let m = |l: u8| mask::<Ipv4Addr>(l) as u32;
            let t = RouteTable::new(routes.iter().map(|&(n, l, p)| Route { net: Ipv4Addr::from(n), len: l, via: None, port: p }));
            let best = routes.iter().filter(|(n, l, _)| dst & m(*l) == n & m(*l)).map(|(_, l, _)| *l).max();
            let got = t.lookup(Ipv4Addr::from(dst));
            prop_assert_eq!(got.is_some(), best.is_some());
            if let (Some(hop), Some(best)) = (got, best) {
                let chosen = t.routes().find(|r| r.port == hop.port && dst & m(r.len) == u32::from(r.net)).map(|r| r.len);
                prop_assert_eq!(chosen.map(|l| l >= best), Some(true));
            }
        }
    }
}
