//! Bring-up errors a lab engineer must be able to act on, produced by a
//! scripted device (a test double of `Backend` for the failure paths the
//! simulator, being correct, never takes): an ABI version mismatch, a
//! device that stops answering, a function that is not fairnic's.

use dataplane::abi::{
    self, caps, DeviceIdentity, FunctionKind, IntoBytes, ABI_MINOR, DEVCMD_OFFSET, IDENTITY_OFFSET, PCI_DEVICE_ID_VF,
    PCI_VENDOR_ID,
};
use host_driver::backend::{Backend, BackendError, BarMapping, IrqKind};
use host_driver::mem::DmaMemory;
use host_driver::nic::{ErrorKind, Nic, NicConfig};
use std::time::Duration;
use vmm_sys_util::eventfd::EventFd;

#[derive(Debug)]
struct Scripted {
    vendor: u16,
    device: u16,
    abi_major: u16,
    answers_mailbox: bool,
    done: u32,
}

impl Scripted {
    fn identity(&self) -> abi::Identity {
        let mut id = DeviceIdentity {
            abi_major: abi::ABI_MAJOR,
            abi_minor: ABI_MINOR,
            capabilities: caps::ALL,
            function_id: 1,
            function_kind: FunctionKind::Vf,
            nlifs: 1,
            nqueues: 1,
            nintrs: 1,
            min_ring_order: 2,
            max_ring_order: 10,
            clock_hz: 1_000_000_000,
            device_clock: 0,
            serial: "T".into(),
            fw_version: "scripted".into(),
        }
        .encode();
        id.abi_major = self.abi_major.into();
        id
    }
}

impl Backend for Scripted {
    fn describe(&self) -> String {
        "scripted:test".into()
    }
    fn config_read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let mut cfg = [0u8; 64];
        cfg[0..2].copy_from_slice(&self.vendor.to_le_bytes());
        cfg[2..4].copy_from_slice(&self.device.to_le_bytes());
        let o = offset as usize;
        buf.copy_from_slice(&cfg[o..o + buf.len()]);
        Ok(())
    }
    fn config_write(&mut self, _: u64, _: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }
    fn bar_size(&self, _: u32) -> u64 {
        0x10000
    }
    fn bar_read(&mut self, _: u32, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        buf.fill(0);
        if offset == IDENTITY_OFFSET {
            buf.copy_from_slice(&self.identity().as_bytes()[..buf.len()]);
        } else if offset == DEVCMD_OFFSET + abi::devcmd::DONE {
            buf.copy_from_slice(&self.done.to_le_bytes());
        }
        Ok(())
    }
    fn bar_write(&mut self, _: u32, offset: u64, _: &[u8]) -> Result<(), BackendError> {
        if offset == DEVCMD_OFFSET + abi::devcmd::DOORBELL && self.answers_mailbox {
            self.done = 1;
        }
        Ok(())
    }
    fn map_bar(&mut self, bar: u32, offset: u64, len: u64) -> Result<BarMapping, BackendError> {
        Err(BackendError::NotMappable {
            bar,
            offset,
            len,
            areas: "none".into(),
        })
    }
    fn dma_map(&mut self, _: &DmaMemory) -> Result<(), BackendError> {
        Ok(())
    }
    fn dma_unmap(&mut self, _: &DmaMemory) -> Result<(), BackendError> {
        Ok(())
    }
    fn irq_count(&mut self, _: IrqKind) -> Result<u32, BackendError> {
        Ok(0)
    }
    fn enable_irqs(&mut self, _: IrqKind, _: &[&EventFd]) -> Result<(), BackendError> {
        Ok(())
    }
    fn disable_irqs(&mut self, _: IrqKind) -> Result<(), BackendError> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

fn scripted() -> Scripted {
    Scripted {
        vendor: PCI_VENDOR_ID,
        device: PCI_DEVICE_ID_VF,
        abi_major: abi::ABI_MAJOR,
        answers_mailbox: true,
        done: 0,
    }
}

fn cfg() -> NicConfig {
    NicConfig {
        timeout: Duration::from_millis(100),
        mem_bytes: 1 << 20,
        ..NicConfig::default()
    }
}

#[test]
fn abi_version_mismatch_is_named() {
    let e = Nic::open(
        Box::new(Scripted {
            abi_major: 2,
            ..scripted()
        }),
        &cfg(),
    )
    .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Abi { .. }), "{e}");
    let s = e.to_string();
    assert!(
        s.contains(&format!(
            "device ABI 2.{m}, driver ABI 1.{m}",
            m = dataplane::abi::ABI_MINOR
        )) && s.contains("update nicdrv"),
        "{s}"
    );
}

#[test]
fn a_device_that_stops_answering_is_named() {
    let e = Nic::open(
        Box::new(Scripted {
            answers_mailbox: false,
            ..scripted()
        }),
        &cfg(),
    )
    .unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("the device stopped answering: mailbox Reset not done after 100ms"),
        "{s}"
    );
}

#[test]
fn a_foreign_function_is_refused_unless_its_id_is_given() {
    let foreign = || Scripted {
        vendor: 0x8086,
        device: 0x154c,
        ..scripted()
    };
    let e = Nic::open(Box::new(foreign()), &cfg()).unwrap_err();
    assert!(
        e.to_string().contains("8086:154c is not a fairnic function") && e.to_string().contains("--pci-id"),
        "{e}"
    );
    // With the ID allowed, bring-up gets as far as the mailbox answers
    // (this scripted device has no doorbell pages to map).
    let c = NicConfig {
        extra_ids: vec![(0x8086, 0x154c)],
        ..cfg()
    };
    let e = Nic::open(Box::new(foreign()), &c).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Backend(BackendError::NotMappable { .. })),
        "{e}"
    );
}
