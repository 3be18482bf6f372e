//! TCP and UDP header views, and the UDP `Repr`.

use super::field::{tcp as ft, udp as fu};
use super::{get16, need, ones_complement_sum, put16, ParseError, IPPROTO_UDP};

/// A view of a TCP segment whose data offset was checked.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// A view of `buf`: a header of at least 20 bytes with a data offset
    /// that fits.
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        need("tcp", b, ft::HEADER_LEN)?;
        let data_offset = usize::from(b[ft::DATA_OFF] >> 4) * 4;
        if data_offset < ft::HEADER_LEN || data_offset > b.len() {
            return Err(ParseError::Malformed {
                field: "tcp.data_offset",
                value: data_offset as u64,
            });
        }
        Ok(TcpPacket { buf })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get16(self.buf.as_ref(), ft::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get16(self.buf.as_ref(), ft::DST_PORT)
    }
}

/// A view of a UDP datagram whose length was checked.
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// A view of `buf`: a header, and a length between 8 and the buffer's.
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let b = buf.as_ref();
        need("udp", b, fu::HEADER_LEN)?;
        let len = usize::from(get16(b, fu::LENGTH));
        if len < fu::HEADER_LEN || len > b.len() {
            return Err(ParseError::Malformed {
                field: "udp.length",
                value: len as u64,
            });
        }
        Ok(UdpPacket { buf })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get16(self.buf.as_ref(), fu::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get16(self.buf.as_ref(), fu::DST_PORT)
    }

    /// The payload, as long as the header says.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[fu::HEADER_LEN..usize::from(get16(self.buf.as_ref(), fu::LENGTH))]
    }
}

/// A UDP header's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Bytes of header [`UdpRepr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        fu::HEADER_LEN
    }

    /// Write the header over the front of `datagram` (header and payload,
    /// the payload already in place), with the length and the checksum
    /// over the IPv4 pseudo-header of `src`/`dst`.
    pub fn emit_ipv4(&self, datagram: &mut [u8], src: [u8; 4], dst: [u8; 4]) {
        let len = datagram.len();
        put16(datagram, fu::SRC_PORT, self.src_port);
        put16(datagram, fu::DST_PORT, self.dst_port);
        put16(datagram, fu::LENGTH, len as u16);
        put16(datagram, fu::CHECKSUM, 0);
        let mut pseudo = u32::from(ones_complement_sum(&src, 0));
        pseudo += u32::from(ones_complement_sum(&dst, 0));
        pseudo += u32::from(IPPROTO_UDP) + len as u32;
        let mut c = !ones_complement_sum(datagram, pseudo);
        if c == 0 {
            // Zero means "no checksum" in UDP over IPv4.
            c = 0xffff;
        }
        put16(datagram, fu::CHECKSUM, c);
    }
}
