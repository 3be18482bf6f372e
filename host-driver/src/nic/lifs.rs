//! LIFs and what the device says about them: creating and listing LIFs,
//! their counters and the uplink's, the device's events, and the PF's
//! per-slot settings of other functions.

use super::{read_struct, Lif, Nic, SCRATCH};
use crate::error::DriverError;
use dataplane::abi::{
    self, AdminCommand, DeviceEvent, DmaRef, EventsRef, FromBytes, FunctionConfig, FunctionConfigRef, LifCreate,
    LifInfo, LifStats, LIF_NONE,
};
use dataplane::packet::Mac;

impl Nic {
    /// Create a LIF (MAC `None`: the device assigns one).
    pub fn create_lif(&mut self, name: &str, mac: Option<Mac>) -> Result<Lif, DriverError> {
        let c = self.admin(
            AdminCommand::LifCreate(LifCreate {
                name: abi::pad_ascii(name),
                mac: mac.unwrap_or([0; 6]),
                ..Default::default()
            }),
            LIF_NONE,
        )?;
        // The LIF number goes into every later command's header, and the
        // slot picks the doorbell page: both are checked before use (cut
        // to 16 bits they would name another LIF, or a page past the
        // mapping).
        let id = self.below(
            "LifCreate",
            "LIF number",
            c.value.get(),
            self.info.max_lifs.get(),
            "DeviceInfo.max_lifs",
        )?;
        let slot = self.below(
            "LifCreate",
            "doorbell slot",
            c.data.get(),
            self.identity.nlifs,
            "identity.nlifs, the doorbell pages mapped",
        )?;
        let info = self.lif_list()?.into_iter().find(|l| l.lif.get() == id);
        Ok(Lif {
            id,
            slot,
            mac: info.map(|i| i.mac).unwrap_or_else(|| mac.unwrap_or(abi::lif_mac(id))),
        })
    }

    /// Every LIF this function may see (PF: all).
    pub fn lif_list(&mut self) -> Result<Vec<LifInfo>, DriverError> {
        let c = self.admin(AdminCommand::LifList(self.scratch), LIF_NONE)?;
        // The count says how much of the buffer to read: no more entries
        // than fit it.
        let entry = std::mem::size_of::<LifInfo>();
        let room = SCRATCH / entry as u64;
        let n = c.data.get();
        if n > room {
            return Err(self.lied(
                "LifList",
                "entry count",
                n,
                format!("0..={room} (the entries that fit the {SCRATCH}-byte buffer)"),
            ));
        }
        let bytes = self.read_scratch(n as usize * entry)?;
        Ok(bytes
            .chunks_exact(std::mem::size_of::<LifInfo>())
            .filter_map(|c| LifInfo::read_from_bytes(c).ok())
            .collect())
    }

    /// The counters of this function's LIFs that the device destroyed (by
    /// `LifDestroy`, or a reset that took them with it), summed.
    pub fn retired_stats(&mut self) -> Result<LifStats, DriverError> {
        self.stats(LIF_NONE)
    }

    /// A LIF's device counters.
    pub fn stats(&mut self, lif: u16) -> Result<LifStats, DriverError> {
        self.admin(AdminCommand::StatsGet(self.scratch), lif)?;
        let b = self.read_scratch(std::mem::size_of::<LifStats>())?;
        let st: LifStats = read_struct(&self.device, "StatsGet", &b)?;
        if st.lif.get() != lif {
            return Err(self.lied("StatsGet", "LIF", st.lif.get(), format!("{lif} (the LIF asked for)")));
        }
        Ok(st)
    }

    /// The uplink's counters (PF only): frames from the wire and where
    /// those that no LIF took ended, frames sent to the wire.
    pub fn port_stats(&mut self) -> Result<LifStats, DriverError> {
        self.admin(AdminCommand::PortStatsGet(self.scratch), LIF_NONE)?;
        let b = self.read_scratch(std::mem::size_of::<LifStats>())?;
        read_struct(&self.device, "PortStatsGet", &b)
    }

    /// The device's events from sequence number `from` on (PF only), and
    /// the sequence number to ask from next. A gap in the numbers means the
    /// device's log overflowed meanwhile.
    pub fn events(&mut self, from: u64) -> Result<(Vec<DeviceEvent>, u64), DriverError> {
        let c = self.admin(
            AdminCommand::EventsGet(EventsRef {
                from_seq: from.into(),
                dma: self.scratch,
            }),
            LIF_NONE,
        )?;
        let size = std::mem::size_of::<DeviceEvent>();
        let room = SCRATCH / size as u64;
        let n = u64::from(c.value.get());
        if n > room {
            return Err(self.lied(
                "EventsGet",
                "event count",
                n,
                format!("0..={room} (the events that fit the {SCRATCH}-byte buffer)"),
            ));
        }
        let next = c.data.get();
        let bytes = self.read_scratch(n as usize * size)?;
        let events: Vec<DeviceEvent> = bytes
            .chunks_exact(size)
            .filter_map(|c| DeviceEvent::read_from_bytes(c).ok())
            .collect();
        if events.iter().any(|e| e.seq.get() < from || e.seq.get() >= next) {
            return Err(self.lied(
                "EventsGet",
                "event sequence number",
                events.first().map_or(0, |e| e.seq.get()),
                format!("{from}..{next} (the range asked for and answered)"),
            ));
        }
        Ok((events, next))
    }

    /// Set a function's LIF slot's MAC, spoof check and trust (PF only).
    pub fn set_function_config(&mut self, c: &FunctionConfig) -> Result<(), DriverError> {
        self.admin(AdminCommand::FunctionConfigSet(*c), LIF_NONE)?;
        Ok(())
    }

    /// A function's LIF slot's settings (PF only).
    pub fn function_config(&mut self, function: u16, slot: u16) -> Result<FunctionConfig, DriverError> {
        let r = FunctionConfigRef {
            function: function.into(),
            slot: slot.into(),
            dma: DmaRef::new(self.scratch.addr.get(), 16),
            ..Default::default()
        };
        self.admin(AdminCommand::FunctionConfigGet(r), LIF_NONE)?;
        let c: FunctionConfig = read_struct(&self.device, "FunctionConfigGet", &self.read_scratch(16)?)?;
        if (c.function.get(), c.slot.get()) != (function, slot) {
            return Err(self.lied(
                "FunctionConfigGet",
                "function and slot",
                u64::from(c.function.get()) << 16 | u64::from(c.slot.get()),
                format!("function {function} slot {slot} (asked for)"),
            ));
        }
        Ok(c)
    }
}
