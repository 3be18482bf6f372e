//! LIF commands: LifCreate (slot, MAC, the PF's regulation re-applied) and
//! FunctionConfigSet.

use super::*;

impl Device {
    pub(super) fn lif_create(&mut self, fi: usize, l: &abi::LifCreate) -> Res {
        let slot = self.functions[fi]
            .lif_slots
            .iter()
            .position(Option::is_none)
            .ok_or(Outcome::err(AdminStatus::NoSpace))?;
        let id = self
            .lifs
            .iter()
            .position(Option::is_none)
            .ok_or(Outcome::err(AdminStatus::NoSpace))? as u16;
        let cfg = self.functions[fi].slot_config[slot];
        // The MAC: the one the PF assigned to the slot, else the device's;
        // a function may name another only if the PF trusts it (else it
        // could take the MAC meant for another function).
        let unset = l.mac == [0; 6];
        let mac = match (l.mac, cfg.mac) {
            (_, Some(assigned)) if unset => assigned,
            (_, None) if unset => lif_mac(id),
            (asked, Some(assigned)) if asked == assigned => assigned,
            (asked, _) if cfg.trust => asked,
            _ => {
                tracing::debug!(function = fi, "LifCreate: an untrusted function may not choose its MAC");
                return Err(AdminStatus::Permission.into());
            }
        };
        if !self.switch.add_lif(mac, id) {
            return Err(AdminStatus::Exists.into());
        }
        let func = &mut self.functions[fi];
        func.lif_slots[slot] = Some(id);
        let nq = usize::from(func.limits.nqueues);
        let regulation = func.regulation[slot];
        self.lifs[usize::from(id)] = Some(Lif {
            id,
            function: fi as u16,
            slot: slot as u16,
            name: l.name,
            mac,
            txqs: Vec::with_capacity(nq),
            rxqs: Vec::with_capacity(nq),
            max_queues: nq,
            counters: [0; LIF_COUNTERS],
            meters: crate::device::meters::LifMeters::default(),
            rx_next: 0,
            tx_next: 0,
            blocked: false,
            spoof_check: cfg.spoof_check,
            source_events: 0,
            inject_panic: false,
        });
        let now = self.now();
        self.events
            .push(now, EventKind::LifCreated, fi as u16, Some((id, slot as u16)), 0);
        // The PF's meters for the slot apply to whatever LIF is created in
        // it, and the PF hears of it.
        let mut applied = 0u64;
        for m in regulation.iter().flatten() {
            let lif = self.lifs[usize::from(id)].as_mut().expect("just created");
            match lif.meters.set(m, now) {
                Ok(()) => {
                    applied |= 1 << m.resource;
                    self.switch.mirror_meter(id, m, now);
                }
                Err((_, why)) => tracing::error!(lif = id, "PF regulation not applied: {why}"),
            }
        }
        if applied != 0 {
            let func = &mut self.functions[fi];
            func.counters.regulation_applied += 1;
            let detail = applied | func.counters.regulation_applied << 32;
            self.events.push(
                now,
                EventKind::RegulationApplied,
                fi as u16,
                Some((id, slot as u16)),
                detail,
            );
        }
        Ok(Outcome::ok(u32::from(id), slot as u64))
    }

    /// `FunctionConfigSet`: the PF's settings for a function's LIF slot.
    /// Spoof check and trust apply to the slot's LIF at once; a MAC to
    /// the LIF created there next (a LIF in the slot keeps its MAC).
    pub(super) fn function_config_set(&mut self, c: &abi::FunctionConfig) -> Res {
        use abi::function_config_flags as ff;
        let (f, slot) = (usize::from(c.function.get()), usize::from(c.slot.get()));
        let func = self.functions.get(f).ok_or(Outcome::err(AdminStatus::NoEntry))?;
        if slot >= func.slot_config.len() {
            return Err(AdminStatus::NoEntry.into());
        }
        let mac = (c.flags & ff::MAC != 0).then_some(c.mac);
        if let Some(m) = mac {
            // One assignment per MAC.
            let taken = self.functions.iter().enumerate().any(|(g, func)| {
                func.slot_config
                    .iter()
                    .enumerate()
                    .any(|(s, sc)| sc.mac == Some(m) && (g, s) != (f, slot))
            });
            if taken {
                return Err(AdminStatus::Exists.into());
            }
        }
        let sc = crate::device::function::SlotConfig {
            mac,
            spoof_check: c.flags & ff::SPOOF_CHECK != 0,
            trust: c.flags & ff::TRUST != 0,
        };
        let func = &mut self.functions[f];
        func.slot_config[slot] = sc;
        if let Some(lif) = func.lif_slots[slot] {
            if let Some(l) = self.lifs[usize::from(lif)].as_mut() {
                l.spoof_check = sc.spoof_check;
            }
        }
        Ok(Outcome::ok(0, 0))
    }
}
