//! Ethernet addresses, the Ethernet II header view, and its `Repr`.

use super::{field::ethernet as f, get16, need, put16, Mac, ParseError};
use core::fmt;
use core::str::FromStr;

/// A MAC address: parsed from and printed as `02:f4:1c:00:00:01`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// A group address (multicast, broadcast included): the I/G bit.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// The broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// An individual address other than all zeros: what a station may
    /// have as its own.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && self.0 != [0; 6]
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(b: [u8; 6]) -> Self {
        EthernetAddress(b)
    }
}

impl From<EthernetAddress> for [u8; 6] {
    fn from(a: EthernetAddress) -> Self {
        a.0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Text that is not a MAC address, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseAddressError(String);

impl FromStr for EthernetAddress {
    type Err = ParseAddressError;

    /// Six hex bytes of one or two digits, separated by `:`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shown: String = s.chars().take(64).collect();
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(ParseAddressError(format!(
                "'{shown}' is not a MAC address (six hex bytes: 02:00:00:00:00:01)"
            )));
        }
        let mut mac = [0u8; 6];
        for (b, p) in mac.iter_mut().zip(&parts) {
            *b = u8::from_str_radix(p, 16)
                .ok()
                .filter(|_| (1..=2).contains(&p.len()))
                .ok_or_else(|| ParseAddressError(format!("'{shown}': '{p}' is not a hex byte")))?;
        }
        Ok(EthernetAddress(mac))
    }
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// A view of `buf`, checked to hold at least the Ethernet header.
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        need("ethernet", buf.as_ref(), f::HEADER_LEN)?;
        Ok(EthernetFrame { buf })
    }

    fn addr(&self, field: super::field::Field) -> Mac {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buf.as_ref()[field]);
        a
    }

    /// Destination address.
    pub fn dst(&self) -> Mac {
        self.addr(f::DESTINATION)
    }

    /// Source address.
    pub fn src(&self) -> Mac {
        self.addr(f::SOURCE)
    }

    /// The EtherType (or TPID of a tag).
    pub fn ethertype(&self) -> u16 {
        get16(self.buf.as_ref(), f::ETHERTYPE)
    }

    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[f::HEADER_LEN..]
    }

    /// Whether the destination is a group (multicast or broadcast) address.
    pub fn is_group_dst(&self) -> bool {
        EthernetAddress(self.dst()).is_multicast()
    }
}

/// An Ethernet II header's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Destination address.
    pub dst: EthernetAddress,
    /// Source address.
    pub src: EthernetAddress,
    /// EtherType of the payload.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Bytes [`EthernetRepr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        f::HEADER_LEN
    }

    /// Write the header at the front of `buf` (at least
    /// [`EthernetRepr::header_len`] bytes).
    pub fn emit(&self, buf: &mut [u8]) {
        buf[f::DESTINATION].copy_from_slice(&self.dst.0);
        buf[f::SOURCE].copy_from_slice(&self.src.0);
        put16(buf, f::ETHERTYPE, self.ethertype);
    }
}
