//! Resets and failures: a client gone, an FLR, a mailbox or device reset,
//! a contained panic, a function failed; every one retires the counters it
//! takes away.

use super::*;

impl Device {
    /// Function `f`'s client is gone (closed its connection, or broke the
    /// protocol): a function-level reset, and everything the client gave
    /// the function is released — its LIFs and queues (counters retired),
    /// its DMA mappings, its interrupt eventfds, a pipeline image it was
    /// uploading, and the doorbell pages it mapped (the function gets new
    /// ones: a process that keeps its old mapping rings nothing). The next
    /// client starts from power-on state and sees none of this one's
    /// memory or state.
    pub fn client_gone(&mut self, f: u16) {
        let fi = usize::from(f);
        if fi >= self.functions.len() {
            return;
        }
        self.reset_function(f, abi::reset_reason::CLIENT_GONE);
        self.functions[fi].flr();
        if fi == 0 {
            self.pipeline = admin::PipelineUpload::default();
        }
        let func = &mut self.functions[fi];
        func.dma.clear();
        for v in &mut func.vectors {
            v.eventfd = None;
        }
        match function::DoorbellPages::new(func.bar0_size(), func.limits.nlifs) {
            Ok(d) => func.doorbells = d,
            Err(e) => {
                // The old pages stay (cleared by the reset): the worst a
                // lingering mapping can do is ring doorbells of queues the
                // next client creates, in its own function.
                tracing::error!(function = f, "new doorbell pages: {e}; the old ones stay");
            }
        }
    }

    /// Function-level reset of `f` (vfio-user `DEVICE_RESET`): the
    /// function's LIFs, queues, admin queue and registers return to
    /// power-on state, and so does its configuration space (bus mastering
    /// and MSI-X off). DMA mappings and eventfds belong to the client's
    /// session and stay.
    pub fn flr(&mut self, f: u16) {
        self.reset_function(f, abi::reset_reason::FLR);
        self.functions[usize::from(f)].flr();
    }

    /// The mailbox's Reset (and the device's own, `reason` says which):
    /// LIFs, queues and registers, not configuration space. The PF's
    /// settings for the function's slots (MACs, spoof check, meters) stay:
    /// nothing a VF does to itself sheds them. A reset of the PF returns
    /// every function's settings to their defaults (they are the PF's).
    pub fn reset_function(&mut self, f: u16, reason: u64) {
        let owned: Vec<u16> = self
            .lifs
            .iter()
            .flatten()
            .filter(|l| l.function == f)
            .map(|l| l.id)
            .collect();
        for lif in owned {
            self.destroy_lif(lif);
        }
        self.functions[usize::from(f)].reset_registers();
        self.functions[usize::from(f)].failed = None;
        if f == 0 {
            for func in &mut self.functions {
                let kind = func.kind;
                func.slot_config.fill(function::SlotConfig::default_for(kind));
                func.regulation.fill(function::Regulation::default());
            }
            for lif in self.lifs.iter_mut().flatten() {
                lif.spoof_check =
                    self.functions[usize::from(lif.function)].slot_config[usize::from(lif.slot)].spoof_check;
            }
        }
        let now = self.now();
        self.events.push(now, abi::EventKind::FunctionReset, f, None, reason);
    }

    /// Contain a panic of the engine or a request handler: the function
    /// it was working for (`blame`, else `function`) stops in a reported
    /// error state; with nobody to blame (the uplink, the device's own
    /// bookkeeping) it is logged and counted and the device carries on.
    pub fn contain_panic(&mut self, payload: &(dyn std::any::Any + Send)) {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let who = self.blame.take();
        tracing::error!(function = ?who, "internal error contained: {what}");
        self.internal_errors.push((who, what.clone()));
        if self.internal_errors.len() > 64 {
            self.internal_errors.remove(0);
        }
        if let Some(f) = who {
            // If even this fails, the device must still not die.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.fail_function(f, &what)));
            if r.is_err() {
                tracing::error!(function = f, "stopping the function failed too");
            }
        }
    }

    /// Blame function `f` for the next contained panic (a request handler
    /// working for it).
    pub fn blame_function(&mut self, f: u16) {
        self.blame = Some(f);
    }

    /// Stop function `f` after an internal error: its queues stop with
    /// `DeviceError` in their state blocks (no completion is written: the
    /// queue's bookkeeping may be what broke), its LIFs read `ERROR`, its
    /// admin commands complete with `Internal`, frames to it are dropped
    /// as `DropQueueError`, and the PF gets a `FunctionError` event. A
    /// reset of the function (mailbox `Reset`, FLR, a new client) brings it
    /// back.
    pub fn fail_function(&mut self, f: u16, why: &str) {
        let Some(func) = self.functions.get_mut(usize::from(f)) else {
            return;
        };
        func.failed = Some(why.to_string());
        for lif in self.lifs.iter_mut().flatten().filter(|l| l.function == f) {
            for q in lif.txqs.iter_mut().flatten() {
                q.core.stop_quietly(CompStatus::DeviceError);
            }
            for q in lif.rxqs.iter_mut().flatten() {
                q.core.stop_quietly(CompStatus::DeviceError);
            }
        }
        let now = self.now();
        self.events.push(now, abi::EventKind::FunctionError, f, None, 0);
    }

    pub(super) fn destroy_lif(&mut self, lif: u16) {
        let Some(l) = self.lifs.get_mut(usize::from(lif)).and_then(Option::take) else {
            return;
        };
        self.switch.remove_lif(l.mac, lif);
        self.sched.set_weight(usize::from(lif), 1);
        let func = &mut self.functions[usize::from(l.function)];
        for (r, c) in func.retired.iter_mut().zip(&l.counters) {
            *r += c;
        }
        func.lif_slots[usize::from(l.slot)] = None;
        func.doorbells.clear_slot(l.slot);
        let now = self.now();
        self.events
            .push(now, abi::EventKind::LifDestroyed, l.function, Some((lif, l.slot)), 0);
    }
}
