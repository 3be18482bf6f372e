//! The device-command mailbox (before the admin queue exists, and to
//! reset the function), the admin queue, and the scratch buffer admin
//! commands read and write by DMA.

use super::queues::queue_memory;
use super::{Nic, SCRATCH};
use crate::backend::Backend;
use crate::error::{DriverError, ErrorKind, OnDevice};
use crate::mem::DmaMemory;
use crate::queue::{attach, publish_cq_head, CqReader};
use dataplane::abi::{
    devcmd, AdminCmd, AdminCommand, AdminComp, AdminStatus, CmdHeader, DevCommand, Doorbell, IntoBytes, QueueCreate,
    QueueType, DEVCMD_OFFSET, LIF_NONE,
};
use dataplane::ring::{Producer, SharedQueueState};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The admin queue: its ring, completion reader and state block, and the
/// tag of the last command.
pub(super) struct AdminQueue {
    ring: Producer<'static, AdminCmd>,
    cq: CqReader,
    state: std::ptr::NonNull<SharedQueueState>,
    tag: u16,
}

impl Nic {
    /// Run an admin command; any status but Ok is an error.
    pub fn admin(&mut self, cmd: AdminCommand, lif: u16) -> Result<AdminComp, DriverError> {
        let name = cmd.opcode().name();
        let (status, comp) = self.admin_status(cmd, lif)?;
        if status != AdminStatus::Ok {
            return Err(self.err(ErrorKind::Admin { command: name, status }));
        }
        Ok(comp)
    }

    /// Run an admin command and return its status, whatever it is.
    pub fn admin_status(&mut self, cmd: AdminCommand, lif: u16) -> Result<(AdminStatus, AdminComp), DriverError> {
        let device = self.device.as_str();
        let a = &mut self.admin;
        a.tag = a.tag.wrapping_add(1);
        let tag = a.tag;
        let raw = cmd.encode(CmdHeader { tag, lif });
        if !a.ring.fill_bulk(&[raw]) {
            a.ring.reclaim().map_err(DriverError::ring(device, "admin queue"))?;
            if !a.ring.fill_bulk(&[raw]) {
                return Err(DriverError::other(device, "admin queue full"));
            }
        }
        let tail = a.ring.indices().outgoing_tail;
        let db = Doorbell {
            qtype: QueueType::Admin,
            qindex: 0,
            outgoing_tail: tail.get(),
        }
        .encode();
        self.backend
            .bar_write(0, DEVCMD_OFFSET + devcmd::ADMIN_DOORBELL, &db.to_le_bytes())
            .on(&self.device)?;
        let t0 = Instant::now();
        loop {
            let a = &mut self.admin;
            if let Some(e) = a.cq.next_entry() {
                // SAFETY: the state block is in `mem`, kept by the Nic.
                publish_cq_head(&mut a.cq, unsafe { a.state.as_ref() });
                let (status, comp) =
                    AdminComp::parse(&e).map_err(|e| self.other(format!("malformed admin completion: {e}")))?;
                if comp.tag.get() != tag {
                    return Err(self.other(format!(
                        "admin completion for tag {} while waiting for {tag}",
                        comp.tag.get()
                    )));
                }
                return Ok((status, comp));
            }
            if t0.elapsed() > self.timeout {
                return Err(self.err(ErrorKind::NotAnswering {
                    what: format!("admin command {}", cmd.opcode().name()),
                    after: self.timeout,
                }));
            }
            std::thread::yield_now();
        }
    }

    /// The first `len` bytes of the scratch buffer, if it has them.
    fn scratch_ptr(&self, len: usize) -> Result<std::ptr::NonNull<u8>, DriverError> {
        self.scratch_range(0, len)
    }

    /// Bytes `at..at + len` of the scratch buffer, if it has them.
    fn scratch_range(&self, at: usize, len: usize) -> Result<std::ptr::NonNull<u8>, DriverError> {
        at.checked_add(len)
            .and_then(|end| u64::try_from(end).ok())
            .filter(|&end| end <= SCRATCH)
            .and_then(|_| self.scratch.addr.get().checked_add(at as u64))
            .and_then(|iova| self.mem.ptr(iova, len as u64))
            .ok_or_else(|| {
                self.other(format!(
                    "bytes {at}..{} do not fit the {SCRATCH}-byte admin scratch buffer",
                    at.saturating_add(len)
                ))
            })
    }

    /// Put `bytes` at the start of the scratch buffer (a command's input).
    pub(super) fn write_scratch(&self, bytes: &[u8]) -> Result<(), DriverError> {
        let p = self.scratch_ptr(bytes.len())?;
        // SAFETY: `p` has `bytes.len()` bytes of the scratch buffer (checked
        // by scratch_ptr against SCRATCH and the mapping); the buffer is ours
        // and no command using it is outstanding (admin commands run one at
        // a time).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr(), bytes.len()) };
        Ok(())
    }

    /// The first `len` bytes of the scratch buffer (a command's output).
    pub(super) fn read_scratch(&self, len: usize) -> Result<Vec<u8>, DriverError> {
        self.read_scratch_at(0, len)
    }

    /// Bytes `at..at + len` of the scratch buffer (a command's output).
    pub(super) fn read_scratch_at(&self, at: usize, len: usize) -> Result<Vec<u8>, DriverError> {
        let p = self.scratch_range(at, len)?;
        let mut v = vec![0u8; len];
        // SAFETY: `p` has `len` bytes of the scratch buffer (checked by
        // scratch_range); the buffer is ours, and the device wrote it before
        // completing the command we waited for.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), v.as_mut_ptr(), len) };
        Ok(v)
    }

    /// Whether the function still answers its admin queue (a Nop). A
    /// function that reset by itself has no admin queue: this times out
    /// (`NotAnswering`); a device that vanished fails at once (`Backend`).
    pub fn check_alive(&mut self) -> Result<(), DriverError> {
        self.admin(AdminCommand::Nop, LIF_NONE).map(|_| ())
    }

    /// After the function reset by itself: reset it through the mailbox,
    /// identify it again and give it a new admin queue. Its LIFs and
    /// queues are gone: the caller abandons the old queues
    /// ([`crate::queue::TxQueue::abandon`],
    /// [`crate::queue::RxQueue::release_buffers`]), counting what
    /// they held as dropped, and creates new ones. DMA mappings, doorbell
    /// pages and interrupt eventfds are the function's and stay.
    pub fn recover_from_reset(&mut self) -> Result<(), DriverError> {
        let mut mailbox = Mailbox {
            backend: self.backend.as_mut(),
            device: &self.device,
            timeout: self.timeout,
            tag: 0,
        };
        mailbox.run(DevCommand::Reset, "mailbox Reset")?;
        mailbox.run(DevCommand::Identify, "mailbox Identify")?;
        let order = self.admin.cq.order();
        self.admin = admin_queue(self.backend.as_mut(), &self.device, &self.mem, order, self.timeout)?;
        self.device_info()?;
        Ok(())
    }
}

/// The device-command mailbox, used before the admin queue exists.
pub(super) struct Mailbox<'a> {
    pub(super) backend: &'a mut dyn Backend,
    pub(super) device: &'a str,
    pub(super) timeout: Duration,
    pub(super) tag: u16,
}

impl Mailbox<'_> {
    /// Run `cmd` (`what` names it in errors) and wait for its completion.
    pub(super) fn run(&mut self, cmd: DevCommand, what: &'static str) -> Result<AdminComp, DriverError> {
        self.tag += 1;
        let raw = cmd.encode(CmdHeader {
            tag: self.tag,
            lif: LIF_NONE,
        });
        let b = &mut *self.backend;
        let device = self.device;
        b.bar_write(0, DEVCMD_OFFSET + devcmd::CMD, raw.as_bytes()).on(device)?;
        b.bar_write(0, DEVCMD_OFFSET + devcmd::DONE, &0u32.to_le_bytes())
            .on(device)?;
        b.bar_write(0, DEVCMD_OFFSET + devcmd::DOORBELL, &1u32.to_le_bytes())
            .on(device)?;
        let t0 = Instant::now();
        loop {
            let mut done = [0u8; 4];
            b.bar_read(0, DEVCMD_OFFSET + devcmd::DONE, &mut done).on(device)?;
            if u32::from_le_bytes(done) == 1 {
                break;
            }
            if t0.elapsed() > self.timeout {
                return Err(DriverError::new(
                    device,
                    ErrorKind::NotAnswering {
                        what: what.into(),
                        after: self.timeout,
                    },
                ));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let mut comp = [0u8; 16];
        b.bar_read(0, DEVCMD_OFFSET + devcmd::COMP, &mut comp).on(device)?;
        let (status, c) = AdminComp::parse(&comp)
            .map_err(|e| DriverError::other(device, format!("{what}: malformed completion: {e}")))?;
        if status != AdminStatus::Ok {
            return Err(DriverError::new(device, ErrorKind::Admin { command: what, status }));
        }
        Ok(c)
    }
}

/// Give the function an admin queue (`1 << order` entries) in `mem`
/// through the mailbox.
pub(super) fn admin_queue(
    backend: &mut dyn Backend,
    device: &str,
    mem: &Arc<DmaMemory>,
    order: u8,
    timeout: Duration,
) -> Result<AdminQueue, DriverError> {
    let (ring, cq, state) = queue_memory(mem, order, 64).on(device)?;
    let q = QueueCreate {
        qtype: QueueType::Admin.raw(),
        ring_order: order,
        ring_base: ring.iova.into(),
        cq_base: cq.iova.into(),
        state_base: state.iova.into(),
        ..Default::default()
    };
    Mailbox {
        backend,
        device,
        timeout,
        tag: 2,
    }
    .run(DevCommand::AdminQueueInit(q), "mailbox AdminQueueInit")?;
    // SAFETY: ring and state lie in `mem`, which the Nic keeps for as long
    // as the producer lives; the device initialised the block.
    let producer =
        unsafe { attach::<AdminCmd>(state.ptr, ring.ptr, order) }.map_err(DriverError::ring(device, "admin queue"))?;
    Ok(AdminQueue {
        ring: producer,
        // SAFETY: as for the ring, in `mem`; 16-aligned by `queue_memory`;
        // status words accessed only atomically, here and by the device.
        cq: unsafe { CqReader::new(cq.ptr, order) }.map_err(DriverError::ring(device, "admin completion ring"))?,
        state: state.ptr.cast(),
        tag: 16,
    })
}
