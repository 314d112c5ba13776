//! IPv4 route table: longest-prefix match over connected and static routes.
//!
//! Routes are kept sorted by prefix length, longest first, so the first
//! match is the longest. Tables of a gateway pair are small (connected
//! subnets plus a few statics); the scan touches one cache line per four
//! routes and allocates nothing.

use std::net::Ipv4Addr;

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Network address (host bits zero).
    pub net: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub len: u8,
    /// Gateway; `None` for a connected route (the destination is on-link).
    pub via: Option<Ipv4Addr>,
    /// Egress port index.
    pub port: usize,
}

/// Result of a lookup: where to send and whom to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Egress port index.
    pub port: usize,
    /// Address whose MAC the frame goes to.
    pub addr: Ipv4Addr,
}

fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - u32::from(l)),
    }
}

/// The route table.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<(u32, u32, Route)>,
}

impl RouteTable {
    /// Builds a table from `routes` (host bits are cleared).
    pub fn new(routes: impl IntoIterator<Item = Route>) -> Self {
        let mut table: Vec<(u32, u32, Route)> = routes
            .into_iter()
            .map(|mut r| {
                let m = mask(r.len);
                r.net = Ipv4Addr::from(u32::from(r.net) & m);
                (u32::from(r.net), m, r)
            })
            .collect();
        table.sort_by_key(|r| std::cmp::Reverse(r.2.len));
        Self { routes: table }
    }

    /// Longest-prefix match for `dst`.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<NextHop> {
        let d = u32::from(dst);
        self.routes
            .iter()
            .find(|(net, m, _)| d & m == *net)
            .map(|(_, _, r)| NextHop {
                port: r.port,
                addr: r.via.unwrap_or(dst),
            })
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|(_, _, r)| r)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(net: [u8; 4], len: u8, via: Option<[u8; 4]>, port: usize) -> Route {
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

    proptest! {
        #[test]
        fn matches_brute_force(routes in proptest::collection::vec((any::<u32>(), 0u8..=32, 0usize..4), 0..20), dst in any::<u32>()) {
            let t = RouteTable::new(routes.iter().map(|&(n, l, p)| Route { net: Ipv4Addr::from(n), len: l, via: None, port: p }));
            let best = routes.iter().filter(|(n, l, _)| dst & mask(*l) == n & mask(*l)).map(|(_, l, _)| *l).max();
            let got = t.lookup(Ipv4Addr::from(dst));
            prop_assert_eq!(got.is_some(), best.is_some());
            if let (Some(hop), Some(best)) = (got, best) {
                let chosen = t.routes().find(|r| r.port == hop.port && dst & mask(r.len) == u32::from(r.net)).map(|r| r.len);
                prop_assert_eq!(chosen.map(|l| l >= best), Some(true));
            }
        }
    }
}
