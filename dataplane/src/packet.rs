//! Header views over frame bytes, in the manner of smoltcp's `wire`: a
//! view checks the length once (`new_checked`) and then reads fields in
//! place; nothing here copies a frame or panics on bad bytes.
//!
//! [`classify`] walks Ethernet, one optional 802.1Q tag, IPv4 or IPv6, and
//! TCP or UDP, and returns the RX completion's packet-type flags
//! ([`crate::abi::pkt_flags`]) or the reason the frame does not parse.

use crate::abi::pkt_flags;

/// A MAC address.
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// Length of an Ethernet header without tags.
pub const ETH_HEADER_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType (TPID) of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Why a frame does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than the header at `layer` needs.
    #[error("{layer}: truncated, need {need} bytes, have {have}")]
    Truncated {
        layer: &'static str,
        need: usize,
        have: usize,
    },
    /// A header field holds an impossible value.
    #[error("{field}: malformed ({value})")]
    Malformed { field: &'static str, value: u64 },
}

fn need(layer: &'static str, buf: &[u8], n: usize) -> Result<(), ParseError> {
    if buf.len() < n {
        return Err(ParseError::Truncated {
            layer,
            need: n,
            have: buf.len(),
        });
    }
    Ok(())
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// An Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// A view of `buf`, checked to hold at least the Ethernet header.
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        need("ethernet", buf.as_ref(), ETH_HEADER_LEN)?;
        Ok(EthernetFrame { buf })
    }

    /// Destination address.
    pub fn dst(&self) -> Mac {
        self.buf.as_ref()[0..6].try_into().expect("checked length")
    }

    /// Source address.
    pub fn src(&self) -> Mac {
        self.buf.as_ref()[6..12].try_into().expect("checked length")
    }

    /// The EtherType (or TPID of a tag).
    pub fn ethertype(&self) -> u16 {
        be16(self.buf.as_ref(), 12)
    }

    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[ETH_HEADER_LEN..]
    }

    /// Whether the destination is a group (multicast or broadcast) address.
    pub fn is_group_dst(&self) -> bool {
        self.buf.as_ref()[0] & 1 != 0
    }
}

/// Classify a frame: the packet-type flags of its headers, or why it does
/// not parse. Unknown EtherTypes and IP protocols are fine (flags stop at
/// the last layer understood); only a header that is announced and then
/// truncated or impossible is an error.
pub fn classify(frame: &[u8]) -> Result<u16, ParseError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut flags = 0;
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    if ethertype == ETHERTYPE_VLAN {
        need("vlan", rest, 4)?;
        flags |= pkt_flags::VLAN;
        ethertype = be16(rest, 2);
        rest = &rest[4..];
    }
    let (proto, l4) = match ethertype {
        ETHERTYPE_IPV4 => {
            need("ipv4", rest, 20)?;
            let version = rest[0] >> 4;
            let ihl = usize::from(rest[0] & 0xf) * 4;
            if version != 4 {
                return Err(ParseError::Malformed {
                    field: "ipv4.version",
                    value: version.into(),
                });
            }
            if ihl < 20 {
                return Err(ParseError::Malformed {
                    field: "ipv4.ihl",
                    value: ihl as u64,
                });
            }
            need("ipv4", rest, ihl)?;
            let total = usize::from(be16(rest, 2));
            if total < ihl || total > rest.len() {
                return Err(ParseError::Malformed {
                    field: "ipv4.total_length",
                    value: total as u64,
                });
            }
            flags |= pkt_flags::IPV4;
            // Only the first fragment carries the L4 header.
            let fragment_offset = be16(rest, 6) & 0x1fff;
            if fragment_offset != 0 {
                return Ok(flags);
            }
            (rest[9], &rest[ihl..total])
        }
        ETHERTYPE_IPV6 => {
            need("ipv6", rest, 40)?;
            let version = rest[0] >> 4;
            if version != 6 {
                return Err(ParseError::Malformed {
                    field: "ipv6.version",
                    value: version.into(),
                });
            }
            let payload = usize::from(be16(rest, 4));
            if 40 + payload > rest.len() {
                return Err(ParseError::Malformed {
                    field: "ipv6.payload_length",
                    value: payload as u64,
                });
            }
            flags |= pkt_flags::IPV6;
            (rest[6], &rest[40..40 + payload])
        }
        _ => return Ok(flags),
    };
    match proto {
        IPPROTO_TCP => {
            need("tcp", l4, 20)?;
            let data_offset = usize::from(l4[12] >> 4) * 4;
            if data_offset < 20 || data_offset > l4.len() {
                return Err(ParseError::Malformed {
                    field: "tcp.data_offset",
                    value: data_offset as u64,
                });
            }
            flags |= pkt_flags::TCP;
        }
        IPPROTO_UDP => {
            need("udp", l4, 8)?;
            let len = usize::from(be16(l4, 4));
            if len < 8 || len > l4.len() {
                return Err(ParseError::Malformed {
                    field: "udp.length",
                    value: len as u64,
                });
            }
            flags |= pkt_flags::UDP;
        }
        _ => {}
    }
    Ok(flags)
}

/// The Internet checksum (RFC 1071) of `data`, folded, not complemented.
pub fn ones_complement_sum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Build an Ethernet + IPv4 + UDP frame of exactly `frame_len` bytes
/// (at least 42), with valid IPv4 and UDP checksums; `payload_prefix` is
/// written at the start of the UDP payload (truncated to fit).
pub fn build_udp4(
    dst: Mac,
    src: Mac,
    ip_src: [u8; 4],
    ip_dst: [u8; 4],
    ports: (u16, u16),
    payload_prefix: &[u8],
    frame_len: usize,
) -> Vec<u8> {
    let frame_len = frame_len.max(ETH_HEADER_LEN + 28);
    let mut f = vec![0u8; frame_len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip_len = frame_len - ETH_HEADER_LEN;
    let ip = &mut f[ETH_HEADER_LEN..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    ip[12..16].copy_from_slice(&ip_src);
    ip[16..20].copy_from_slice(&ip_dst);
    let csum = !ones_complement_sum(&ip[..20], 0);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp_len = ip_len - 20;
    let udp = &mut ip[20..];
    udp[0..2].copy_from_slice(&ports.0.to_be_bytes());
    udp[2..4].copy_from_slice(&ports.1.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let n = payload_prefix.len().min(udp_len - 8);
    udp[8..8 + n].copy_from_slice(&payload_prefix[..n]);
    // Pseudo-header: addresses, protocol, UDP length.
    let mut pseudo = u32::from(ones_complement_sum(&ip_src, 0));
    pseudo += u32::from(ones_complement_sum(&ip_dst, 0));
    pseudo += u32::from(IPPROTO_UDP) + udp_len as u32;
    let mut c = !ones_complement_sum(&f[ETH_HEADER_LEN + 20..], pseudo);
    if c == 0 {
        c = 0xffff;
    }
    f[ETH_HEADER_LEN + 26..ETH_HEADER_LEN + 28].copy_from_slice(&c.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn udp4_frames_classify_and_checksum() {
        let f = build_udp4(
            BROADCAST,
            [2, 0, 0, 0, 0, 1],
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            (1, 2),
            b"hi",
            64,
        );
        assert_eq!(f.len(), 64);
        assert_eq!(classify(&f), Ok(pkt_flags::IPV4 | pkt_flags::UDP));
        // A correct IPv4 header sums to 0xffff.
        assert_eq!(ones_complement_sum(&f[14..34], 0), 0xffff);
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert!(eth.is_group_dst());
        assert_eq!(eth.src(), [2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn truncated_headers_are_named() {
        let f = build_udp4(BROADCAST, [2; 6], [1; 4], [2; 4], (1, 2), b"", 64);
        assert_eq!(
            classify(&f[..13]),
            Err(ParseError::Truncated {
                layer: "ethernet",
                need: 14,
                have: 13
            })
        );
        assert!(matches!(
            classify(&f[..30]),
            Err(ParseError::Truncated { layer: "ipv4", .. })
        ));
        let mut bad = f.clone();
        bad[14] = 0x65;
        assert!(matches!(
            classify(&bad),
            Err(ParseError::Malformed {
                field: "ipv4.version",
                ..
            })
        ));
    }

    #[test]
    fn unknown_ethertypes_are_not_errors() {
        let mut f = vec![0u8; 60];
        f[12] = 0x88;
        f[13] = 0xb5;
        assert_eq!(classify(&f), Ok(0));
    }

    proptest! {
        #[test]
        fn classify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = classify(&bytes);
        }
    }
}
