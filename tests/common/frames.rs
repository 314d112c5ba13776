//! Frames for the abuse tests, built byte by byte, independently of the
//! codecs under test: VRRP advertisements (good, or with one defect) and
//! ARP requests, with the Ethernet source of the caller's choice.

/// The VRRP group, 224.0.0.18.
pub(crate) const GROUP: [u8; 4] = [224, 0, 0, 18];
/// 224.0.0.18's Ethernet address.
pub(crate) const GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// A locally administered MAC: the client's frames as the tests send them.
pub(crate) const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x64];
/// The virtual MAC of VRID 1 over IPv4.
pub(crate) const VMAC1: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];

/// One's-complement sum folded to 16 bits, then complemented (RFC 1071).
pub(crate) fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for bytes in chunks {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u32::from(b));
            sum += hi | lo;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0xffff)
}

/// Fills a VRRPv3 message's checksum (IPv4 pseudo-header variant) as sent
/// from `src` to the group.
pub(crate) fn fill_v3_checksum(v: &mut [u8], src: [u8; 4]) {
    v[6..8].fill(0);
    let len = u16::try_from(v.len()).unwrap().to_be_bytes();
    let pseudo = [&src[..], &GROUP[..], &[0, 112][..], &len[..]].concat();
    let c = checksum(&[&pseudo, v]);
    v[6..8].copy_from_slice(&c.to_be_bytes());
}

/// A VRRPv3 advertisement from `src`: `vrid`, `priority`, 100 ms, address
/// 192.0.2.1, with a correct checksum.
pub(crate) fn v3(src: [u8; 4], vrid: u8, priority: u8) -> Vec<u8> {
    let mut v = vec![0x31, vrid, priority, 1, 0x00, 10, 0, 0, 192, 0, 2, 1];
    fill_v3_checksum(&mut v, src);
    v
}

/// `v3` (VRID 1, priority 250) with the version/type byte replaced,
/// checksum recomputed, so the version or type is the only defect.
pub(crate) fn v3_with_version_type(src: [u8; 4], version_type: u8) -> Vec<u8> {
    let mut v = v3(src, 1, 250);
    v[0] = version_type;
    fill_v3_checksum(&mut v, src);
    v
}

/// A well-formed VRRPv2 advertisement (RFC 3768): VRID 1, priority 250,
/// 1 s, no authentication, address 192.0.2.1, checksum over the message.
pub(crate) fn v2() -> Vec<u8> {
    let mut v = vec![0x21, 1, 250, 1, 0, 1, 0, 0, 192, 0, 2, 1];
    v.extend_from_slice(&[0; 8]);
    let c = checksum(&[&v]);
    v[6..8].copy_from_slice(&c.to_be_bytes());
    v
}

/// An Ethernet + IPv4 frame from `src` to 224.0.0.18 carrying `vrrp`, with
/// `ttl` and a correct IPv4 header checksum, from the client's MAC.
pub(crate) fn frame(src: [u8; 4], ttl: u8, vrrp: &[u8]) -> Vec<u8> {
    frame_from(CLIENT_MAC, src, ttl, vrrp)
}

/// [`frame`] with `eth_src` as the Ethernet source.
pub(crate) fn frame_from(eth_src: [u8; 6], src: [u8; 4], ttl: u8, vrrp: &[u8]) -> Vec<u8> {
    let mut f = GROUP_MAC.to_vec();
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = u16::try_from(20 + vrrp.len()).unwrap().to_be_bytes();
    let mut ip = vec![0x45, 0xc0, total[0], total[1], 0, 0, 0, 0, ttl, 112, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&GROUP);
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(vrrp);
    f
}

/// A broadcast ARP request (RFC 826) from `eth_src` / `sender` for
/// `target`.
pub(crate) fn arp_request(eth_src: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}
