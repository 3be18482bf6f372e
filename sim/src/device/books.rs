//! The device-wide books: totals of a counter over live and retired LIFs,
//! and the check that every frame ended in exactly one counter.

use super::*;

impl Device {
    /// Sum of a counter over every LIF, live and retired, and the uplink.
    pub fn total_with_retired(&self, c: LifCounter) -> u64 {
        self.total(c) + self.functions.iter().map(|f| f.retired[c as usize]).sum::<u64>()
    }

    /// The books: every frame that entered the switch (sent by a LIF, or
    /// from the wire) ended in exactly one outcome, and every copy that
    /// arrived at a LIF in exactly one of its counters. `Err` names the
    /// equation that does not hold.
    pub fn check_books(&self) -> Result<(), String> {
        let t = |c| self.total_with_retired(c);
        let a = self.audit;
        let frames = t(LifCounter::TxPackets) + t(LifCounter::WireRxPackets) + t(LifCounter::CpuInjected);
        let sender_drops = t(LifCounter::DropPipeline)
            + t(LifCounter::DropParseError)
            + t(LifCounter::DropSpoofed)
            + t(LifCounter::DropBadSource)
            + t(LifCounter::DropCpuQueueFull)
            + t(LifCounter::DropNoRoute).saturating_sub(a.arrivals_no_lif);
        let outcomes = a.to_lif
            + a.floods
            + t(LifCounter::ToUplink)
            + a.hairpins
            + t(LifCounter::ToCpu)
            + a.injected_to_wire
            + sender_drops;
        if frames != outcomes {
            return Err(format!(
                "{frames} frames entered the switch, {outcomes} outcomes (to a LIF {}, floods {}, to the wire {}, \
                 hairpins {}, to the CPU port {}, injected to the wire {}, dropped at the sender {sender_drops})",
                a.to_lif,
                a.floods,
                t(LifCounter::ToUplink),
                a.hairpins,
                t(LifCounter::ToCpu),
                a.injected_to_wire
            ));
        }
        if a.arrivals != a.to_lif + a.flood_copies {
            return Err(format!(
                "{} arrivals, {} sent to LIFs and {} flood copies",
                a.arrivals, a.to_lif, a.flood_copies
            ));
        }
        let ended = t(LifCounter::RxPackets)
            + t(LifCounter::DropTooLong)
            + t(LifCounter::DropNoRxBuffer)
            + t(LifCounter::DropMeterRed)
            + t(LifCounter::DropQueueError)
            + a.arrivals_no_lif;
        if a.arrivals != ended {
            return Err(format!(
                "{} arrivals at LIFs, {ended} ended in a receiver's counter",
                a.arrivals
            ));
        }
        Ok(())
    }

    /// Sum of a counter over every LIF plus the uplink's drops.
    pub fn total(&self, c: LifCounter) -> u64 {
        self.lifs.iter().flatten().map(|l| l.counter(c)).sum::<u64>() + self.uplink_counters[c as usize]
    }
}
