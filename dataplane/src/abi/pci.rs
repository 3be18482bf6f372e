//! PCI configuration space, by name: the registers, bits and capability
//! layouts of the PCI and PCI Express specifications that fairnic's device
//! presents and its driver reads. One place for both ends, so neither
//! writes `0x34` or `0b110` by hand.
//!
//! Offsets are from the start of the function's configuration space;
//! capability register offsets (`MSIX_*`, `SRIOV_*`) are from the start of
//! their capability. Where the device puts each capability is its own
//! choice: a driver walks the list from [`CAPABILITY_LIST`].

/// Size of a PCI Express function's configuration space.
pub const CONFIG_SIZE: usize = 4096;
/// Size of the conventional (PCI) part; extended capabilities start here.
pub const CONFIG_LEGACY_SIZE: usize = 256;

/// Vendor ID (16 bits).
pub const VENDOR_ID: usize = 0x00;
/// Device ID (16 bits).
pub const DEVICE_ID: usize = 0x02;
/// Command register (16 bits): [`command`] bits.
pub const COMMAND: usize = 0x04;
/// Status register (16 bits): [`status`] bits.
pub const STATUS: usize = 0x06;
/// Revision ID (8 bits).
pub const REVISION_ID: usize = 0x08;
/// Class code (24 bits: programming interface, subclass, base class).
pub const CLASS_CODE: usize = 0x09;
/// Header type (8 bits): 0 for an endpoint.
pub const HEADER_TYPE: usize = 0x0e;
/// BAR0; a 64-bit BAR takes BAR0 and BAR1.
pub const BAR0: usize = 0x10;
/// Subsystem vendor ID (16 bits).
pub const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
/// Subsystem ID (16 bits).
pub const SUBSYSTEM_ID: usize = 0x2e;
/// Offset of the first capability (8 bits, 4-byte aligned, 0: none).
pub const CAPABILITY_LIST: usize = 0x34;
/// Interrupt line (8 bits): scratch for the operating system.
pub const INTERRUPT_LINE: usize = 0x3c;
/// The first offset a capability may sit at (after the type-0 header).
pub const CAPABILITIES_START: usize = 0x40;

/// Bits of the [`COMMAND`] register.
pub mod command {
    /// Memory space enable: the BARs decode.
    pub const MEMORY: u16 = 1 << 1;
    /// Bus master enable: without it the function does no DMA and sends no
    /// MSI-X message.
    pub const BUS_MASTER: u16 = 1 << 2;
    /// INTx disable.
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Bits of the [`STATUS`] register.
pub mod status {
    /// The function has a capability list at [`super::CAPABILITY_LIST`].
    pub const CAP_LIST: u16 = 1 << 4;
}

/// Low bits of a memory BAR.
pub mod bar {
    /// A 64-bit memory BAR (type bits 2:1 = 10b), not prefetchable.
    pub const MEM_64: u32 = 0b100;
    /// The bits that are flags, not address.
    pub const FLAGS_MASK: u32 = 0xf;
}

/// A capability's header: its ID at +0, the next capability's offset at +1.
pub const CAP_NEXT: usize = 1;
/// Capability ID: PCI Express.
pub const CAP_ID_PCIE: u8 = 0x10;
/// Capability ID: MSI-X.
pub const CAP_ID_MSIX: u8 = 0x11;

/// PCI Express capabilities register (at +2): version 2, endpoint.
pub const PCIE_CAPS_V2_ENDPOINT: u16 = 0x0002;

/// MSI-X message control (16 bits, at +2 of the capability).
pub const MSIX_MSG_CTRL: usize = 2;
/// MSI-X table offset and BAR indicator (32 bits, at +4).
pub const MSIX_TABLE: usize = 4;
/// MSI-X pending-bit array offset and BAR indicator (32 bits, at +8).
pub const MSIX_PBA: usize = 8;

/// Bits of MSI-X message control.
pub mod msix_ctrl {
    /// Table size minus one.
    pub const TABLE_SIZE_MASK: u16 = 0x7ff;
    /// All vectors masked, whatever their own mask bits.
    pub const FUNCTION_MASK: u16 = 1 << 14;
    /// MSI-X enabled.
    pub const ENABLE: u16 = 1 << 15;
}

/// Extended capability ID: single-root I/O virtualisation.
pub const EXT_CAP_ID_SRIOV: u16 = 0x0010;
/// An extended capability's header: ID in bits 0..16, version in 16..20,
/// next offset in 20..32.
pub const EXT_CAP_VERSION_SHIFT: u32 = 16;

/// SR-IOV control (16 bits).
pub const SRIOV_CTRL: usize = 0x08;
/// InitialVFs (16 bits).
pub const SRIOV_INITIAL_VFS: usize = 0x0c;
/// TotalVFs (16 bits).
pub const SRIOV_TOTAL_VFS: usize = 0x0e;
/// NumVFs (16 bits).
pub const SRIOV_NUM_VFS: usize = 0x10;
/// First VF offset (16 bits): routing ID distance from the PF to VF 0.
pub const SRIOV_FIRST_VF_OFFSET: usize = 0x14;
/// VF stride (16 bits): routing ID distance between consecutive VFs.
pub const SRIOV_VF_STRIDE: usize = 0x16;
/// VF device ID (16 bits).
pub const SRIOV_VF_DEVICE_ID: usize = 0x1a;
/// Supported page sizes (32 bits, bit n: 4 KiB << n).
pub const SRIOV_SUPPORTED_PAGE_SIZES: usize = 0x1c;
/// System page size (32 bits).
pub const SRIOV_SYSTEM_PAGE_SIZE: usize = 0x20;
/// VF BAR0 (a 64-bit BAR takes two words).
pub const SRIOV_VF_BAR0: usize = 0x24;

/// Bits of SR-IOV control.
pub mod sriov_ctrl {
    /// VF enable.
    pub const VF_ENABLE: u16 = 1 << 0;
    /// VF memory space enable.
    pub const VF_MEMORY: u16 = 1 << 3;
}
