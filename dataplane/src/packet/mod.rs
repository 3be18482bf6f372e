//! Packets the smoltcp way: [`field`] says where each header field lies;
//! a checked view (`EthernetFrame`, `Ipv4Packet`, `Ipv6Packet`,
//! `TcpPacket`, `UdpPacket`) checks its lengths once in `new_checked` and
//! then reads fields in place; a `Repr` (`EthernetRepr`, `Ipv4Repr`,
//! `UdpRepr`) writes a header with `emit`. Nothing here copies a frame or
//! panics on bad bytes.
//!
//! [`classify`] walks Ethernet, one optional 802.1Q tag, IPv4 or IPv6, and
//! TCP or UDP through the views, and returns the RX completion's
//! packet-type flags ([`crate::abi::pkt_flags`]) or the reason the frame
//! does not parse. [`EthernetAddress`] is how a MAC is parsed and printed.

mod ethernet;
pub mod field;
mod ip;
mod l4;
#[cfg(test)]
mod tests;

pub use ethernet::{EthernetAddress, EthernetFrame, EthernetRepr, ParseAddressError};
pub use ip::{Ipv4Packet, Ipv4Repr, Ipv6Packet};
pub use l4::{TcpPacket, UdpPacket, UdpRepr};

use crate::abi::pkt_flags;
use field::Field;

/// A MAC address's bytes, as the ABI's structures hold them
/// ([`EthernetAddress`] parses and prints them).
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// Length of an Ethernet header without tags.
pub const ETH_HEADER_LEN: usize = field::ethernet::HEADER_LEN;
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
        /// The header (`ethernet`, `ipv4`, ...).
        layer: &'static str,
        /// Bytes the header needs.
        need: usize,
        /// Bytes the frame has from the header on.
        have: usize,
    },
    /// A header field holds an impossible value.
    #[error("{field}: malformed ({value})")]
    Malformed {
        /// The field, as `header.field`.
        field: &'static str,
        /// What it held.
        value: u64,
    },
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

/// The big-endian 16-bit field `f` of `b` (in bounds: callers checked).
fn get16(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

/// Write `v` big-endian into the 16-bit field `f` of `b`.
fn put16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

/// Classify a frame: the packet-type flags of its headers, or why it does
/// not parse. Unknown EtherTypes and IP protocols are fine (flags stop at
/// the last layer understood); only a header that is announced and then
/// truncated or impossible is an error.
pub fn classify(frame: &[u8]) -> Result<u16, ParseError> {
    // The device classifies every frame it delivers; most are untagged
    // IPv4 without options.
    if let Some(flags) = classify_plain_ipv4(frame) {
        return Ok(flags);
    }
    classify_any(frame)
}

/// [`classify`] for an untagged IPv4 frame without options, when every
/// check of the general path passes: `Some` only where [`classify_any`]
/// gives `Ok` with the same flags (a property test holds it to that),
/// `None` for anything else (then the general path decides, errors
/// included).
#[inline]
fn classify_plain_ipv4(frame: &[u8]) -> Option<u16> {
    // Ethernet (14) and the fixed IPv4 header (20).
    let h = frame.get(..34)?;
    if h[12..14] != ETHERTYPE_IPV4.to_be_bytes() || h[14] != 0x45 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    if total < 20 || total > frame.len() - 14 {
        return None;
    }
    let flags = pkt_flags::IPV4;
    // Only the first fragment carries the L4 header.
    if u16::from_be_bytes([h[20], h[21]]) & 0x1fff != 0 {
        return Some(flags);
    }
    let l4 = &frame[34..14 + total];
    match h[23] {
        IPPROTO_UDP => {
            let len = usize::from(u16::from_be_bytes(l4.get(4..6)?.try_into().ok()?));
            (8..=l4.len()).contains(&len).then_some(flags | pkt_flags::UDP)
        }
        IPPROTO_TCP => {
            let off = usize::from(*l4.get(12)? >> 4) * 4;
            (20..=l4.len()).contains(&off).then_some(flags | pkt_flags::TCP)
        }
        _ => Some(flags),
    }
}

/// [`classify`] the long way: every layer through its checked view.
fn classify_any(frame: &[u8]) -> Result<u16, ParseError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut flags = 0;
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    if ethertype == ETHERTYPE_VLAN {
        need("vlan", rest, field::vlan::HEADER_LEN)?;
        flags |= pkt_flags::VLAN;
        ethertype = get16(rest, field::vlan::ETHERTYPE);
        rest = &rest[field::vlan::HEADER_LEN..];
    }
    let (proto, l4) = match ethertype {
        ETHERTYPE_IPV4 => {
            let ip = Ipv4Packet::new_checked(rest)?;
            flags |= pkt_flags::IPV4;
            // Only the first fragment carries the L4 header.
            if ip.fragment_offset() != 0 {
                return Ok(flags);
            }
            (ip.protocol(), &rest[ip.header_len()..ip.total_len()])
        }
        ETHERTYPE_IPV6 => {
            let ip = Ipv6Packet::new_checked(rest)?;
            flags |= pkt_flags::IPV6;
            let len = ip.payload().len();
            (
                ip.next_header(),
                &rest[field::ipv6::HEADER_LEN..field::ipv6::HEADER_LEN + len],
            )
        }
        _ => return Ok(flags),
    };
    match proto {
        IPPROTO_TCP => {
            TcpPacket::new_checked(l4)?;
            flags |= pkt_flags::TCP;
        }
        IPPROTO_UDP => {
            UdpPacket::new_checked(l4)?;
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
    let eth = EthernetRepr {
        dst: EthernetAddress(dst),
        src: EthernetAddress(src),
        ethertype: ETHERTYPE_IPV4,
    };
    let udp = UdpRepr {
        src_port: ports.0,
        dst_port: ports.1,
    };
    let headers = eth.header_len() + field::ipv4::HEADER_LEN + udp.header_len();
    let frame_len = frame_len.max(headers);
    let mut f = vec![0u8; frame_len];
    eth.emit(&mut f);
    let ip = Ipv4Repr {
        src_addr: ip_src,
        dst_addr: ip_dst,
        protocol: IPPROTO_UDP,
        payload_len: frame_len - eth.header_len() - field::ipv4::HEADER_LEN,
        ttl: 64,
    };
    ip.emit(&mut f[eth.header_len()..]);
    let datagram = &mut f[eth.header_len() + ip.header_len()..];
    let n = payload_prefix.len().min(datagram.len() - udp.header_len());
    datagram[udp.header_len()..udp.header_len() + n].copy_from_slice(&payload_prefix[..n]);
    udp.emit_ipv4(datagram, ip_src, ip_dst);
    f
}
