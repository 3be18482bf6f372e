//! The CPU port: frames a program sends to the controller
//! (`PacketInRead`) and frames the controller sends (`PacketInject`).

use super::*;
use crate::abi::desc::frame_len_ok;
#[cfg(doc)]
use crate::abi::desc::{MAX_FRAME_LEN, MIN_FRAME_LEN};

/// `len` (of `field`) as a frame length the ABI allows.
fn check_frame_len(field: &'static str, len: u32) -> Result<(), AbiError> {
    if frame_len_ok(len as usize) {
        return Ok(());
    }
    Err(AbiError::OutOfRange {
        field,
        value: len.into(),
        reason: "a frame is 14 to 9216 bytes",
    })
}

/// The `egress_lif` a pipeline program sets to send a frame to the CPU
/// port: the device queues it for the PF (`PacketInRead`) instead of a LIF.
/// No LIF has this number (LIF numbers are below 4096).
pub const LIF_CPU: u16 = 0xfffe;

/// Frames the CPU port queues for the PF; a frame sent to a full queue is
/// dropped and counted `DropCpuQueueFull` at its sender.
pub const CPU_QUEUE_FRAMES: usize = 256;

/// One frame as `PacketInRead` writes it: this header, then `len` bytes of
/// the frame (as the program's deparser left it), then zero bytes up to
/// the next multiple of 8. Records follow one another from the buffer's
/// first byte; the device writes only whole records.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PacketInRecord {
    /// The LIF that sent the frame; [`LIF_NONE`] for a frame from the wire.
    pub ingress_lif: U16,
    /// Reserved, zero.
    pub rsvd: U16,
    /// The frame's length in bytes, [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`].
    pub len: U32,
}
assert_layout!(PacketInRecord, size = 8, ingress_lif @ 0, rsvd @ 2, len @ 4);

impl PacketInRecord {
    /// Bytes one record of a `len`-byte frame takes in the buffer.
    pub const fn span(len: usize) -> usize {
        (core::mem::size_of::<PacketInRecord>() + len + 7) & !7
    }

    /// Validate a record read from the device's buffer: a frame length the
    /// ABI allows and zero reserved bits.
    pub fn check(&self) -> Result<(), AbiError> {
        check_frame_len("packet_in_record.len", self.len.get())?;
        check_reserved_bits("packet_in_record.rsvd", self.rsvd.get().into(), 0)
    }
}

/// Body of `PacketInject`: where the frame goes and where it is.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PacketInject {
    /// The LIF whose RX rings receive the frame, or [`LIF_NONE`] for the
    /// uplink (out to the wire).
    pub lif: U16,
    /// Reserved, zero.
    pub rsvd: [u8; 6],
    /// The frame: `len` is its length, [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`].
    pub dma: DmaRef,
}
assert_layout!(PacketInject, size = 24, lif @ 0, rsvd @ 2, dma @ 8);

impl PacketInject {
    pub(super) fn check(&self) -> Result<(), AbiError> {
        check_reserved_bytes("packet_inject.rsvd", &self.rsvd)?;
        self.dma.check("packet_inject.dma.len", "packet_inject.dma.rsvd")?;
        check_frame_len("packet_inject.dma.len", self.dma.len.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::admin::tests::*;

    #[test]
    fn inject_takes_a_frame_length_and_zero_reserved_bytes() {
        let inj = |lif: u16, len: u32, rsvd: u8| PacketInject {
            lif: lif.into(),
            rsvd: [rsvd, 0, 0, 0, 0, 0],
            dma: DmaRef::new(0x1000, len),
        };
        let dec = |p| AdminCommand::decode(&AdminCommand::PacketInject(p).encode(HDR));
        assert!(dec(inj(3, 60, 0)).is_ok());
        assert!(dec(inj(LIF_NONE, 9216, 0)).is_ok());
        assert!(dec(inj(3, 13, 0)).is_err());
        assert!(dec(inj(3, 9217, 0)).is_err());
        assert!(dec(inj(3, 60, 1)).is_err());
    }

    #[test]
    fn records_are_padded_to_eight_bytes_and_checked() {
        assert_eq!(PacketInRecord::span(14), 24);
        assert_eq!(PacketInRecord::span(16), 24);
        assert_eq!(PacketInRecord::span(17), 32);
        let r = |len: u32, rsvd: u16| PacketInRecord {
            ingress_lif: 1.into(),
            rsvd: rsvd.into(),
            len: len.into(),
        };
        assert!(r(60, 0).check().is_ok());
        assert!(r(13, 0).check().is_err());
        assert!(r(9217, 0).check().is_err());
        assert!(r(60, 1).check().is_err());
    }
}
