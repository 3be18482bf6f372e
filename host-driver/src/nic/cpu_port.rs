//! The CPU port (PF only, ABI 1.5): frames the pipeline program sent to
//! the controller, and frames the controller sends to a LIF or the wire.

use super::{ErrorKind, Nic, SCRATCH};
use crate::error::DriverError;
use dataplane::abi::{self, AdminCommand, DmaRef, FromBytes, PacketInRecord, LIF_NONE};

/// A frame the program sent to the CPU port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    /// The LIF that sent it; `LIF_NONE` (0xffff) for a frame from the wire.
    pub ingress_lif: u16,
    pub frame: Vec<u8>,
}

impl Nic {
    /// Take the frames queued at the CPU port, oldest first, as many as one
    /// scratch buffer holds; also how many the device says are still
    /// queued. A device that says it wrote more records than the buffer
    /// holds, a record past the buffer, or a record the ABI does not allow
    /// is a lie (the frames read are lost with it: the device has dropped
    /// them from its queue).
    pub fn packet_in(&mut self) -> Result<(Vec<PacketIn>, u64), DriverError> {
        let c = self.admin(AdminCommand::PacketInRead(self.scratch), LIF_NONE)?;
        let (n, left) = (c.value.get() as usize, c.data.get());
        let most = SCRATCH as usize / PacketInRecord::span(usize::from(abi::MIN_FRAME_LEN));
        if n > most {
            return Err(self.lied(
                "PacketInRead",
                "frame count",
                n as u64,
                format!("0..={most} (the records that fit the {SCRATCH}-byte buffer)"),
            ));
        }
        if left > abi::CPU_QUEUE_FRAMES as u64 {
            return Err(self.lied(
                "PacketInRead",
                "frames still queued",
                left,
                format!("0..={} (the CPU port's queue)", abi::CPU_QUEUE_FRAMES),
            ));
        }
        if n == 0 {
            return Ok((Vec::new(), left));
        }
        // Record by record: each head, then its frame straight into the
        // frame's own buffer (not the whole 64 KiB buffer first).
        let head_len = std::mem::size_of::<PacketInRecord>();
        let mut out = Vec::with_capacity(n);
        let mut at = 0usize;
        for _ in 0..n {
            let head = if at + head_len <= SCRATCH as usize {
                let b = self.read_scratch_at(at, head_len)?;
                PacketInRecord::read_from_bytes(&b).ok().filter(|r| r.check().is_ok())
            } else {
                None
            };
            let Some(r) = head else {
                return Err(self.lied(
                    "PacketInRead",
                    "record offset",
                    at as u64,
                    "a whole record with a frame of 14..=9216 bytes".into(),
                ));
            };
            let len = r.len.get() as usize;
            let start = at + head_len;
            if start + len > SCRATCH as usize {
                return Err(self.lied(
                    "PacketInRead",
                    "record end",
                    (start + len) as u64,
                    format!("0..={SCRATCH} (inside the buffer)"),
                ));
            }
            out.push(PacketIn {
                ingress_lif: r.ingress_lif.get(),
                frame: self.read_scratch_at(start, len)?,
            });
            at += PacketInRecord::span(len);
        }
        Ok((out, left))
    }

    /// Send `frame` through the CPU port to LIF `lif`'s RX rings, or out of
    /// the uplink with `None`, without running the pipeline (PF only).
    pub fn packet_inject(&mut self, lif: Option<u16>, frame: &[u8]) -> Result<(), DriverError> {
        if !abi::frame_len_ok(frame.len()) {
            return Err(self.err(ErrorKind::Other {
                what: format!("a frame to inject is 14 to 9216 bytes, not {}", frame.len()),
            }));
        }
        self.write_scratch(frame)?;
        let p = abi::PacketInject {
            lif: lif.unwrap_or(LIF_NONE).into(),
            rsvd: [0; 6],
            dma: DmaRef::new(self.scratch.addr.get(), frame.len() as u32),
        };
        self.admin(AdminCommand::PacketInject(p), LIF_NONE).map(|_| ())
    }
}
