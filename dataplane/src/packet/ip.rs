//! IPv4 and IPv6 header views, and the IPv4 `Repr`.

use super::field::{ipv4 as f4, ipv6 as f6};
use super::{get16, need, ones_complement_sum, put16, ParseError};

/// A view of an IPv4 packet whose header and total length were checked.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// A view of `buf`: version 4, a header length of at least 20 bytes
    /// that fits, and a total length between the header's and the buffer's.
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        need("ipv4", b, f4::HEADER_LEN)?;
        let version = b[f4::VER_IHL] >> 4;
        if version != 4 {
            return Err(ParseError::Malformed {
                field: "ipv4.version",
                value: version.into(),
            });
        }
        let ihl = usize::from(b[f4::VER_IHL] & 0xf) * 4;
        if ihl < f4::HEADER_LEN {
            return Err(ParseError::Malformed {
                field: "ipv4.ihl",
                value: ihl as u64,
            });
        }
        need("ipv4", b, ihl)?;
        let total = usize::from(get16(b, f4::LENGTH));
        if total < ihl || total > b.len() {
            return Err(ParseError::Malformed {
                field: "ipv4.total_length",
                value: total as u64,
            });
        }
        Ok(Ipv4Packet { buf })
    }

    /// Header length, bytes (with options).
    pub fn header_len(&self) -> usize {
        usize::from(self.buf.as_ref()[f4::VER_IHL] & 0xf) * 4
    }

    /// Total length: header and payload.
    pub fn total_len(&self) -> usize {
        usize::from(get16(self.buf.as_ref(), f4::LENGTH))
    }

    /// Fragment offset, in 8-byte units (0 for the first fragment).
    pub fn fragment_offset(&self) -> u16 {
        get16(self.buf.as_ref(), f4::FLG_OFF) & 0x1fff
    }

    /// The payload's protocol number.
    pub fn protocol(&self) -> u8 {
        self.buf.as_ref()[f4::PROTOCOL]
    }

    /// Source address.
    pub fn src_addr(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buf.as_ref()[f4::SRC_ADDR]);
        a
    }

    /// Destination address.
    pub fn dst_addr(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buf.as_ref()[f4::DST_ADDR]);
        a
    }

    /// Whether the header checksum is right.
    pub fn verify_checksum(&self) -> bool {
        ones_complement_sum(&self.buf.as_ref()[..self.header_len()], 0) == 0xffff
    }

    /// The payload: after the header, up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..self.total_len()]
    }
}

/// An IPv4 header's contents (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: [u8; 4],
    /// Destination address.
    pub dst_addr: [u8; 4],
    /// The payload's protocol number.
    pub protocol: u8,
    /// Payload length, bytes.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
}

impl Ipv4Repr {
    /// Bytes [`Ipv4Repr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        f4::HEADER_LEN
    }

    /// Write the header, checksum included, at the front of `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        let h = &mut buf[..f4::HEADER_LEN];
        h.fill(0);
        h[f4::VER_IHL] = 0x45;
        put16(h, f4::LENGTH, (f4::HEADER_LEN + self.payload_len) as u16);
        h[f4::TTL] = self.ttl;
        h[f4::PROTOCOL] = self.protocol;
        h[f4::SRC_ADDR].copy_from_slice(&self.src_addr);
        h[f4::DST_ADDR].copy_from_slice(&self.dst_addr);
        let csum = !ones_complement_sum(h, 0);
        put16(h, f4::CHECKSUM, csum);
    }
}

/// A view of an IPv6 packet whose fixed header and payload length were
/// checked.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// A view of `buf`: version 6, the payload length within the buffer.
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        need("ipv6", b, f6::HEADER_LEN)?;
        let version = b[f6::VER_TC_FLOW.start] >> 4;
        if version != 6 {
            return Err(ParseError::Malformed {
                field: "ipv6.version",
                value: version.into(),
            });
        }
        let payload = usize::from(get16(b, f6::LENGTH));
        if f6::HEADER_LEN + payload > b.len() {
            return Err(ParseError::Malformed {
                field: "ipv6.payload_length",
                value: payload as u64,
            });
        }
        Ok(Ipv6Packet { buf })
    }

    /// The next header (the payload's protocol, without extension headers).
    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[f6::NXT_HDR]
    }

    /// The payload, as long as the header says.
    pub fn payload(&self) -> &[u8] {
        let len = usize::from(get16(self.buf.as_ref(), f6::LENGTH));
        &self.buf.as_ref()[f6::HEADER_LEN..f6::HEADER_LEN + len]
    }
}
