//! PCI configuration space of one function: the type-0 header, a PCI
//! Express capability (so the extended space exists), MSI-X, and on the PF
//! an SR-IOV extended capability.
//!
//! Writes go through a per-byte writable mask, so read-only fields stay
//! what the device says they are whatever a client writes; BAR0 implements
//! the sizing protocol (write all ones, read back the size mask). VFs show
//! their real vendor and device IDs, as Linux's vfio-pci presents them to
//! userspace (on the wire a VF reads 0xffff there).

pub use dataplane::abi::pci::*;
use dataplane::abi::{
    self, FunctionKind, MSIX_PBA_OFFSET, MSIX_TABLE_OFFSET, PCI_CLASS_ETHERNET, PCI_DEVICE_ID_PF, PCI_DEVICE_ID_VF,
    PCI_VENDOR_ID,
};

/// Where this device puts its PCI Express capability.
pub const PCIE_CAP: usize = CAPABILITIES_START;
/// Where this device puts its MSI-X capability.
pub const MSIX_CAP: usize = 0x80;
/// Where the PF's SR-IOV extended capability sits (the first extended one).
pub const EXT_CAP: usize = CONFIG_LEGACY_SIZE;
/// Offset of the first VF's routing ID from the PF's.
pub const FIRST_VF_OFFSET: u16 = 1;
/// Distance between consecutive VFs' routing IDs.
pub const VF_STRIDE: u16 = 1;

/// One function's configuration space.
#[derive(Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    wmask: [u8; CONFIG_SIZE],
    bar0_size: u64,
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("command", &format_args!("{:#06x}", self.command()))
            .field("bar0_size", &self.bar0_size)
            .finish()
    }
}

impl ConfigSpace {
    /// Configuration space for a function of `kind` with `nintrs` MSI-X
    /// vectors and a BAR0 of `bar0_size` bytes; a PF also gets an SR-IOV
    /// capability announcing `total_vfs` VFs with the same BAR0 size.
    pub fn new(kind: FunctionKind, nintrs: u16, bar0_size: u64, total_vfs: u16) -> ConfigSpace {
        let mut c = ConfigSpace {
            bytes: [0; CONFIG_SIZE],
            wmask: [0; CONFIG_SIZE],
            bar0_size,
        };
        let device = match kind {
            FunctionKind::Pf => PCI_DEVICE_ID_PF,
            FunctionKind::Vf => PCI_DEVICE_ID_VF,
        };
        c.put16(VENDOR_ID, PCI_VENDOR_ID);
        c.put16(DEVICE_ID, device);
        c.wmask16(COMMAND, command::MEMORY | command::BUS_MASTER | command::INTX_DISABLE);
        c.put16(STATUS, status::CAP_LIST);
        c.put8(REVISION_ID, 1);
        c.put8(CLASS_CODE, PCI_CLASS_ETHERNET as u8);
        c.put8(CLASS_CODE + 1, (PCI_CLASS_ETHERNET >> 8) as u8);
        c.put8(CLASS_CODE + 2, (PCI_CLASS_ETHERNET >> 16) as u8);
        c.put8(HEADER_TYPE, 0); // endpoint, single function
        c.put32(BAR0, bar::MEM_64);
        c.wmask32(BAR0, !((bar0_size as u32).wrapping_sub(1)) & !bar::FLAGS_MASK);
        c.wmask32(
            BAR0 + 4,
            if bar0_size > u64::from(u32::MAX) {
                !((bar0_size >> 32) as u32 - 1)
            } else {
                !0
            },
        );
        c.put16(SUBSYSTEM_VENDOR_ID, PCI_VENDOR_ID);
        c.put16(SUBSYSTEM_ID, device);
        c.put8(CAPABILITY_LIST, PCIE_CAP as u8);
        c.wmask8(INTERRUPT_LINE, 0xff); // scratch for the OS
        c.put8(PCIE_CAP, CAP_ID_PCIE);
        c.put8(PCIE_CAP + CAP_NEXT, MSIX_CAP as u8);
        c.put16(PCIE_CAP + 2, PCIE_CAPS_V2_ENDPOINT);
        // MSI-X: table and PBA in BAR0 (BAR indicator 0), last in the list.
        c.put8(MSIX_CAP, CAP_ID_MSIX);
        c.put8(MSIX_CAP + CAP_NEXT, 0);
        c.put16(
            MSIX_CAP + MSIX_MSG_CTRL,
            nintrs.saturating_sub(1) & msix_ctrl::TABLE_SIZE_MASK,
        );
        c.wmask16(MSIX_CAP + MSIX_MSG_CTRL, msix_ctrl::ENABLE | msix_ctrl::FUNCTION_MASK);
        c.put32(MSIX_CAP + MSIX_TABLE, MSIX_TABLE_OFFSET as u32);
        c.put32(MSIX_CAP + MSIX_PBA, MSIX_PBA_OFFSET as u32);
        if kind == FunctionKind::Pf {
            let s = EXT_CAP;
            c.put32(s, u32::from(EXT_CAP_ID_SRIOV) | (1 << EXT_CAP_VERSION_SHIFT));
            let vf_on = sriov_ctrl::VF_ENABLE | sriov_ctrl::VF_MEMORY;
            c.put16(s + SRIOV_CTRL, vf_on);
            c.wmask16(s + SRIOV_CTRL, vf_on);
            c.put16(s + SRIOV_INITIAL_VFS, total_vfs);
            c.put16(s + SRIOV_TOTAL_VFS, total_vfs);
            c.put16(s + SRIOV_NUM_VFS, total_vfs);
            c.put16(s + SRIOV_FIRST_VF_OFFSET, FIRST_VF_OFFSET);
            c.put16(s + SRIOV_VF_STRIDE, VF_STRIDE);
            c.put16(s + SRIOV_VF_DEVICE_ID, PCI_DEVICE_ID_VF);
            c.put32(s + SRIOV_SUPPORTED_PAGE_SIZES, 1); // 4 KiB
            c.put32(s + SRIOV_SYSTEM_PAGE_SIZE, 1); // 4 KiB
            c.wmask32(s + SRIOV_SYSTEM_PAGE_SIZE, 1);
            // VF BAR0: 64-bit memory, same size as the PF's.
            c.put32(s + SRIOV_VF_BAR0, bar::MEM_64);
            c.wmask32(
                s + SRIOV_VF_BAR0,
                !((bar0_size as u32).wrapping_sub(1)) & !bar::FLAGS_MASK,
            );
            c.wmask32(s + SRIOV_VF_BAR0 + 4, !0);
        }
        c
    }

    fn put8(&mut self, at: usize, v: u8) {
        self.bytes[at] = v;
    }
    fn put16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn wmask8(&mut self, at: usize, m: u8) {
        self.wmask[at] = m;
    }
    fn wmask16(&mut self, at: usize, m: u16) {
        self.wmask[at..at + 2].copy_from_slice(&m.to_le_bytes());
    }
    fn wmask32(&mut self, at: usize, m: u32) {
        self.wmask[at..at + 4].copy_from_slice(&m.to_le_bytes());
    }

    /// Read `out.len()` bytes at `offset`; bytes past the end read as 0xff
    /// (as a read past a device's configuration space does).
    pub fn read(&self, offset: u64, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| self.bytes.get(o as usize))
                .copied()
                .unwrap_or(0xff);
        }
    }

    /// Write `data` at `offset`, honouring the writable mask; bytes past
    /// the end are dropped. Returns whether anything changed.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> bool {
        let mut changed = false;
        for (i, &v) in data.iter().enumerate() {
            let Some(o) = offset
                .checked_add(i as u64)
                .map(|o| o as usize)
                .filter(|&o| o < CONFIG_SIZE)
            else {
                continue;
            };
            let m = self.wmask[o];
            let new = (self.bytes[o] & !m) | (v & m);
            changed |= new != self.bytes[o];
            self.bytes[o] = new;
        }
        changed
    }

    fn get16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.get16(COMMAND)
    }

    /// Whether the function may master the bus (DMA, MSI-X).
    pub fn bus_master(&self) -> bool {
        self.command() & command::BUS_MASTER != 0
    }

    /// MSI-X enabled and the function not masked.
    pub fn msix_enabled(&self) -> bool {
        self.get16(MSIX_CAP + MSIX_MSG_CTRL) & msix_ctrl::ENABLE != 0
    }

    /// MSI-X function mask.
    pub fn msix_function_masked(&self) -> bool {
        self.get16(MSIX_CAP + MSIX_MSG_CTRL) & msix_ctrl::FUNCTION_MASK != 0
    }

    /// Function-level reset: the command register, MSI-X control and BAR
    /// addresses return to power-on values.
    pub fn reset(&mut self) {
        self.bytes[COMMAND..COMMAND + 2].copy_from_slice(&0u16.to_le_bytes());
        let ctrl = self.get16(MSIX_CAP + MSIX_MSG_CTRL) & !(msix_ctrl::ENABLE | msix_ctrl::FUNCTION_MASK);
        self.put16(MSIX_CAP + MSIX_MSG_CTRL, ctrl);
        self.put32(BAR0, bar::MEM_64);
        self.put32(BAR0 + 4, 0);
    }

    /// BAR0 size in bytes.
    pub fn bar0_size(&self) -> u64 {
        self.bar0_size
    }
}

/// Whether `offset..offset+len` is the PF's SR-IOV capability region (used
/// by tests to find it).
pub fn find_ext_cap(config: &ConfigSpace, id: u16) -> Option<usize> {
    let mut at = EXT_CAP;
    for _ in 0..64 {
        let mut b = [0u8; 4];
        config.read(at as u64, &mut b);
        let header = u32::from_le_bytes(b);
        if header == 0 || header == u32::MAX {
            return None;
        }
        if header as u16 == id {
            return Some(at);
        }
        let next = (header >> 20) as usize;
        if next < EXT_CAP || next <= at {
            return None;
        }
        at = next;
    }
    None
}

/// `bar0_size` for a function with `nlifs` LIFs, as BAR0 must be.
pub fn bar0_size(nlifs: u16) -> u64 {
    abi::bar0_size(nlifs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd16(c: &ConfigSpace, at: u64) -> u16 {
        let mut b = [0; 2];
        c.read(at, &mut b);
        u16::from_le_bytes(b)
    }

    fn rd32(c: &ConfigSpace, at: u64) -> u32 {
        let mut b = [0; 4];
        c.read(at, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn ids_and_capabilities() {
        let pf = ConfigSpace::new(FunctionKind::Pf, 16, 0x10000, 4);
        assert_eq!(rd16(&pf, 0), PCI_VENDOR_ID);
        assert_eq!(rd16(&pf, 2), PCI_DEVICE_ID_PF);
        assert_eq!(rd32(&pf, 8) >> 8, PCI_CLASS_ETHERNET);
        assert_eq!(rd16(&pf, MSIX_CAP as u64 + 2) & 0x7ff, 15);
        let sriov = find_ext_cap(&pf, EXT_CAP_ID_SRIOV).expect("PF has SR-IOV");
        assert_eq!(rd16(&pf, (sriov + SRIOV_TOTAL_VFS) as u64), 4);
        let vf = ConfigSpace::new(FunctionKind::Vf, 8, 0x10000, 0);
        assert_eq!(rd16(&vf, 2), PCI_DEVICE_ID_VF);
        assert_eq!(find_ext_cap(&vf, EXT_CAP_ID_SRIOV), None);
    }

    #[test]
    fn read_only_fields_stay_and_bar_sizing_works() {
        let mut c = ConfigSpace::new(FunctionKind::Vf, 8, 0x10000, 0);
        c.write(0, &[0, 0, 0, 0]);
        assert_eq!(rd16(&c, 0), PCI_VENDOR_ID);
        c.write(BAR0 as u64, &u32::MAX.to_le_bytes());
        assert_eq!(rd32(&c, BAR0 as u64), 0xffff_0004, "size mask of 64 KiB, 64-bit memory");
        c.write(COMMAND as u64, &(command::BUS_MASTER | 0x100).to_le_bytes());
        assert!(c.bus_master());
        assert_eq!(c.command(), command::BUS_MASTER, "SERR enable is not writable");
        c.reset();
        assert!(!c.bus_master());
    }

    #[test]
    fn out_of_range_access_is_harmless() {
        let mut c = ConfigSpace::new(FunctionKind::Pf, 4, 0x10000, 1);
        let mut b = [0u8; 8];
        c.read(4092, &mut b);
        assert_eq!(&b[4..], &[0xff; 4]);
        c.read(u64::MAX - 2, &mut b);
        assert_eq!(b, [0xff; 8]);
        assert!(!c.write(u64::MAX - 1, &[1, 2, 3, 4]));
    }
}
