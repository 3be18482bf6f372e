//! The vfio-user wire format (protocol 0.1, as `docs/interop/vfio-user.rst`
//! in QEMU specifies it): the 16-byte header, the command numbers, the
//! fixed parts of the messages nicsim serves, and how large each may be.
//!
//! Everything is in host byte order (the specification's rule for AF_UNIX).
//! These are plain data: parsing is `zerocopy`'s `read_from_prefix` on a
//! payload whose length the framer has already checked, so no value here
//! is trusted before it is range-checked by the code that uses it.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Command numbers.
pub mod cmd {
    pub const VERSION: u16 = 1;
    pub const DMA_MAP: u16 = 2;
    pub const DMA_UNMAP: u16 = 3;
    pub const DEVICE_GET_INFO: u16 = 4;
    pub const DEVICE_GET_REGION_INFO: u16 = 5;
    pub const DEVICE_GET_REGION_IO_FDS: u16 = 6;
    pub const DEVICE_GET_IRQ_INFO: u16 = 7;
    pub const DEVICE_SET_IRQS: u16 = 8;
    pub const REGION_READ: u16 = 9;
    pub const REGION_WRITE: u16 = 10;
    pub const DMA_READ: u16 = 11;
    pub const DMA_WRITE: u16 = 12;
    pub const DEVICE_RESET: u16 = 13;
    pub const REGION_WRITE_MULTI: u16 = 15;
    pub const DEVICE_FEATURE: u16 = 16;
    pub const MIG_DATA_READ: u16 = 17;
    pub const MIG_DATA_WRITE: u16 = 18;

    /// A command's name, for logs.
    pub fn name(c: u16) -> &'static str {
        match c {
            VERSION => "VERSION",
            DMA_MAP => "DMA_MAP",
            DMA_UNMAP => "DMA_UNMAP",
            DEVICE_GET_INFO => "DEVICE_GET_INFO",
            DEVICE_GET_REGION_INFO => "DEVICE_GET_REGION_INFO",
            DEVICE_GET_REGION_IO_FDS => "DEVICE_GET_REGION_IO_FDS",
            DEVICE_GET_IRQ_INFO => "DEVICE_GET_IRQ_INFO",
            DEVICE_SET_IRQS => "DEVICE_SET_IRQS",
            REGION_READ => "REGION_READ",
            REGION_WRITE => "REGION_WRITE",
            DMA_READ => "DMA_READ",
            DMA_WRITE => "DMA_WRITE",
            DEVICE_RESET => "DEVICE_RESET",
            REGION_WRITE_MULTI => "REGION_WRITE_MULTI",
            DEVICE_FEATURE => "DEVICE_FEATURE",
            MIG_DATA_READ => "MIG_DATA_READ",
            MIG_DATA_WRITE => "MIG_DATA_WRITE",
            _ => "unknown",
        }
    }
}

/// Header flags.
pub mod flags {
    /// Bits 0..4: the message type.
    pub const TYPE_MASK: u32 = 0xf;
    pub const TYPE_COMMAND: u32 = 0;
    pub const TYPE_REPLY: u32 = 1;
    /// The sender wants no reply.
    pub const NO_REPLY: u32 = 1 << 4;
    /// The reply reports an error (`Header::error` holds the errno).
    pub const ERROR: u32 = 1 << 5;
    /// Every bit the protocol defines.
    pub const ALL: u32 = TYPE_MASK | NO_REPLY | ERROR;
}

/// Size of the header.
pub const HEADER_SIZE: usize = 16;

/// The header every message starts with.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Header {
    pub msg_id: u16,
    pub command: u16,
    /// The whole message, header included.
    pub size: u32,
    pub flags: u32,
    /// errno of an error reply.
    pub error: u32,
}

impl Header {
    /// The message type bits.
    pub fn kind(&self) -> u32 {
        self.flags & flags::TYPE_MASK
    }

    /// Whether the sender asked for no reply.
    pub fn no_reply(&self) -> bool {
        self.flags & flags::NO_REPLY != 0
    }

    /// The header of the reply to this command, for a payload of
    /// `payload` bytes.
    pub fn reply(&self, payload: usize) -> Header {
        Header {
            msg_id: self.msg_id,
            command: self.command,
            size: (HEADER_SIZE + payload) as u32,
            flags: flags::TYPE_REPLY,
            error: 0,
        }
    }

    /// The header of an error reply to this command (no payload, as the
    /// specification requires).
    pub fn error_reply(&self, errno: i32) -> Header {
        Header {
            msg_id: self.msg_id,
            command: self.command,
            size: HEADER_SIZE as u32,
            flags: flags::TYPE_REPLY | flags::ERROR,
            error: errno as u32,
        }
    }
}

/// The fixed part of `VERSION` (the JSON capabilities follow, NUL
/// terminated).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

/// `DMA_MAP`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DmaMap {
    pub argsz: u32,
    pub flags: u32,
    pub offset: u64,
    pub address: u64,
    pub size: u64,
}

/// `DMA_MAP` flags.
pub mod dma_map_flags {
    pub const READ: u32 = 1 << 0;
    pub const WRITE: u32 = 1 << 1;
    pub const ALL: u32 = READ | WRITE;
}

/// `DMA_UNMAP` (request and reply).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DmaUnmap {
    pub argsz: u32,
    pub flags: u32,
    pub address: u64,
    pub size: u64,
}

/// `DMA_UNMAP` flags.
pub mod dma_unmap_flags {
    /// Dirty page tracking (migration): not supported.
    pub const GET_DIRTY_BITMAP: u32 = 1 << 0;
    /// Unmap everything (`VFIO_DMA_UNMAP_FLAG_ALL`, as QEMU sends it).
    pub const ALL: u32 = 1 << 1;
    /// Unmap everything, as rust-vmm's `vfio_user` 0.1.7 spells it.
    pub const ALL_RUST_VMM: u32 = 1 << 2;
}

/// `DEVICE_GET_INFO` (request and reply).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DeviceInfo {
    pub argsz: u32,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
}

/// `DEVICE_GET_REGION_INFO` (request and reply), `struct vfio_region_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RegionInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub cap_offset: u32,
    pub size: u64,
    pub offset: u64,
}

/// `DEVICE_GET_IRQ_INFO` (request and reply), `struct vfio_irq_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct IrqInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub count: u32,
}

/// `DEVICE_SET_IRQS`, `struct vfio_irq_set` without its data.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct IrqSet {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub start: u32,
    pub count: u32,
}

/// `REGION_READ` / `REGION_WRITE` (the data follows).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RegionAccess {
    pub offset: u64,
    pub region: u32,
    pub count: u32,
}

/// `DMA_READ` / `DMA_WRITE` (the data follows).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DmaAccess {
    pub address: u64,
    pub count: u64,
}

/// The capability header of a region capability
/// (`struct vfio_info_cap_header`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct CapHeader {
    pub id: u16,
    pub version: u16,
    pub next: u32,
}

/// `VFIO_REGION_INFO_CAP_SPARSE_MMAP`'s fixed part; `(offset, size)` pairs
/// of u64 follow.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SparseMmap {
    pub nr_areas: u32,
    pub reserved: u32,
}

/// Longest capabilities JSON nicsim reads in a `VERSION` request.
pub const MAX_VERSION_JSON: usize = 4096;

/// What the framer accepts as the payload of a request (the bytes after
/// the header): `min..=max`; the header's size is checked against it
/// before a byte of the payload is read. `max_data` is the
/// `max_data_xfer_size` nicsim announced.
pub fn payload_limits(command: u16, max_data: usize) -> (usize, usize) {
    use std::mem::size_of;
    match command {
        cmd::VERSION => (size_of::<Version>(), size_of::<Version>() + MAX_VERSION_JSON),
        cmd::DMA_MAP => (size_of::<DmaMap>(), size_of::<DmaMap>()),
        // A dirty-bitmap request carries 16 more bytes (refused later).
        cmd::DMA_UNMAP => (size_of::<DmaUnmap>(), size_of::<DmaUnmap>() + 16),
        cmd::DEVICE_GET_INFO => (size_of::<DeviceInfo>(), size_of::<DeviceInfo>()),
        cmd::DEVICE_GET_REGION_INFO => (size_of::<RegionInfo>(), size_of::<RegionInfo>()),
        cmd::DEVICE_GET_IRQ_INFO => (size_of::<IrqInfo>(), size_of::<IrqInfo>()),
        // DATA_BOOL carries a byte per vector (at most 2048 MSI-X vectors).
        cmd::DEVICE_SET_IRQS => (size_of::<IrqSet>(), size_of::<IrqSet>() + 2048),
        cmd::REGION_READ => (size_of::<RegionAccess>(), size_of::<RegionAccess>()),
        cmd::REGION_WRITE => (size_of::<RegionAccess>(), size_of::<RegionAccess>() + max_data),
        cmd::DEVICE_RESET => (0, 0),
        // Commands nicsim does not serve: read (and drop) what a real one
        // could carry, then refuse it.
        _ => (0, max_data + 64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_the_specifications() {
        use std::mem::size_of;
        assert_eq!(size_of::<Header>(), HEADER_SIZE);
        assert_eq!(size_of::<DmaMap>(), 32);
        assert_eq!(size_of::<DmaUnmap>(), 24);
        assert_eq!(size_of::<DeviceInfo>(), 16);
        assert_eq!(size_of::<RegionInfo>(), 32);
        assert_eq!(size_of::<IrqInfo>(), 16);
        assert_eq!(size_of::<IrqSet>(), 20);
        assert_eq!(size_of::<RegionAccess>(), 16);
        assert_eq!(size_of::<DmaAccess>(), 16);
        assert_eq!(size_of::<CapHeader>(), 8);
        assert_eq!(size_of::<SparseMmap>(), 8);
    }

    #[test]
    fn every_payload_limit_is_bounded() {
        for c in 0..=u16::MAX {
            let (min, max) = payload_limits(c, 1 << 20);
            assert!(min <= max && max <= (1 << 20) + 4096, "command {c}");
        }
    }
}
