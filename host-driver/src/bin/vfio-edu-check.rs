//! The kernel VFIO backend, run for real: against QEMU's `edu` PCI device
//! bound to vfio-pci in a guest (scripts/qemu-vfio-check builds the guest
//! and runs this inside it).
//!
//! It uses the driver's own `VfioBackend` and `DmaMemory`, the code that
//! drives fairnic hardware, and checks, printing `PASS`/`FAIL` per step:
//! BAR mmap and a register read, a register write, an MSI interrupt
//! through an eventfd, and a DMA round trip through IOMMU-mapped memory.
//!
//! edu (QEMU docs/specs/edu.rst): 0x00 ID (0x010000ed), 0x04 liveness
//! (reads back the bitwise NOT of what was written), 0x60 raise interrupt,
//! 0x64 acknowledge, 0x80/0x88/0x90/0x98 DMA source, destination, count,
//! command (bit 0 start, bit 1 to RAM, bit 2 interrupt when done); its DMA
//! buffer is at device address 0x40000; DMA addresses are 28-bit.
//! Transfers are 2 KiB: QEMU before 8.2.1 (Debian 12 ships 7.2) rejects a
//! transfer that ends exactly at the end of the 4 KiB buffer ("edu: fix DMA
//! range upper bound check", QEMU commit of January 2024) and aborts.

use dataplane::abi::pci;
use host_driver::backend::vfio::VfioBackend;
use host_driver::backend::{Backend, ConfigExt, IrqKind};
use host_driver::mem::{DmaMemory, MemKind};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

const EDU_BUFFER: u64 = 0x40000;
const LEN: usize = 2048;
const IOVA: u64 = 0x0100_0000;

struct Checks {
    failed: u32,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: String) {
        println!("{} {what}: {detail}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            self.failed += 1;
        }
    }
}

fn wait_eventfd(e: &EventFd, timeout: Duration) -> Option<u64> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if let Ok(n) = e.read() {
            return Some(n);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn main() -> ExitCode {
    let Some(bdf) = std::env::args().nth(1) else {
        eprintln!("usage: vfio-edu-check BDF");
        return ExitCode::from(2);
    };
    match run(&bdf) {
        Ok(0) => {
            println!("ALL PASS");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("{n} FAILED");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("FAIL setup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(bdf: &str) -> Result<u32, String> {
    let mut c = Checks { failed: 0 };
    let mut dev = VfioBackend::open(bdf).map_err(|e| e.to_string())?;
    c.check(
        "open",
        true,
        format!("{} through container, group and device", dev.describe()),
    );
    let vendor = dev.config_read16(0).map_err(|e| e.to_string())?;
    let device = dev.config_read16(2).map_err(|e| e.to_string())?;
    c.check(
        "config space",
        (vendor, device) == (0x1234, 0x11e8),
        format!("{vendor:04x}:{device:04x}"),
    );
    let cmd = dev.config_read16(pci::COMMAND as u64).map_err(|e| e.to_string())?;
    dev.config_write16(
        pci::COMMAND as u64,
        cmd | pci::command::MEMORY | pci::command::BUS_MASTER,
    )
    .map_err(|e| e.to_string())?;

    let bar = dev.map_bar(0, 0, 4096).map_err(|e| e.to_string())?;
    let id = bar.read32(0);
    c.check(
        "BAR0 mmap + register read",
        id & 0xff == 0xed,
        format!("ID register {id:#010x}"),
    );
    bar.write32(4, 0x1234_5678);
    let live = bar.read32(4);
    c.check(
        "register write",
        live == !0x1234_5678u32,
        format!("liveness wrote 0x12345678, read {live:#010x}"),
    );

    let nmsi = dev.irq_count(IrqKind::Msi).map_err(|e| e.to_string())?;
    let efd = EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?;
    dev.enable_irqs(IrqKind::Msi, &[&efd]).map_err(|e| e.to_string())?;
    bar.write32(0x60, 0x1);
    let got = wait_eventfd(&efd, Duration::from_secs(5));
    bar.write32(0x64, 0x1);
    c.check(
        "MSI through an eventfd",
        got.is_some(),
        format!("{nmsi} MSI vector(s); eventfd counted {got:?}"),
    );

    let mem = DmaMemory::new(1 << 20, IOVA, MemKind::Pages).map_err(|e| e.to_string())?;
    dev.dma_map(&mem).map_err(|e| e.to_string())?;
    let pattern: Vec<u8> = (0..LEN as u32).map(|i| (i * 7 + 3) as u8).collect();
    let src = mem.alloc(4096, 4096).map_err(|e| e.to_string())?;
    let dst = mem.alloc(4096, 4096).map_err(|e| e.to_string())?;
    // SAFETY: `src` is ours and the device does not touch it until the
    // DMA command below.
    unsafe { std::ptr::copy_nonoverlapping(pattern.as_ptr(), src.ptr.as_ptr(), LEN) };
    let dma = |from: u64, to: u64, to_ram: bool| -> bool {
        bar.write64(0x80, from);
        bar.write64(0x88, to);
        bar.write64(0x90, LEN as u64);
        bar.write64(0x98, 1 | if to_ram { 2 } else { 0 } | 4);
        let t0 = Instant::now();
        while bar.read64(0x98) & 1 != 0 {
            if t0.elapsed() > Duration::from_secs(5) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    };
    let _ = efd.read();
    let to_dev = dma(src.iova, EDU_BUFFER, false);
    let irq1 = wait_eventfd(&efd, Duration::from_secs(5)).is_some();
    bar.write32(0x64, 0x100);
    let to_ram = dma(EDU_BUFFER, dst.iova, true);
    let irq2 = wait_eventfd(&efd, Duration::from_secs(5)).is_some();
    bar.write32(0x64, 0x100);
    let mut back = vec![0u8; LEN];
    // SAFETY: the DMA into `dst` has completed (command bit 0 cleared).
    unsafe { std::ptr::copy_nonoverlapping(dst.ptr.as_ptr(), back.as_mut_ptr(), LEN) };
    c.check(
        "DMA through IOMMU-mapped memory",
        to_dev && to_ram && back == pattern,
        format!(
            "{LEN} bytes RAM {:#x} -> edu -> RAM {:#x}: {}; completion interrupts {irq1}/{irq2}",
            src.iova,
            dst.iova,
            if back == pattern { "identical" } else { "DIFFERENT" }
        ),
    );
    let unmapped = dev.dma_unmap(&mem);
    c.check("DMA unmap", unmapped.is_ok(), format!("{unmapped:?}"));
    dev.disable_irqs(IrqKind::Msi).map_err(|e| e.to_string())?;
    dev.reset().map_err(|e| e.to_string())?;
    Ok(c.failed)
}
