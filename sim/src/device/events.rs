//! The device's event log: what the PF's driver learns with `EventsGet`
//! about things other functions did or the device did to them (LIFs made
//! and gone, resets, regulation applied again, functions stopped after an
//! internal error, spoofed frames).

use crate::clock::Nanos;
use dataplane::abi::{DeviceEvent, EventKind, EVENT_LOG_LEN, LIF_NONE};
use std::collections::VecDeque;

/// The last [`EVENT_LOG_LEN`] events, numbered from 0.
#[derive(Debug, Default)]
pub struct EventLog {
    log: VecDeque<DeviceEvent>,
    next_seq: u64,
}

impl EventLog {
    /// Record an event. `lif`/`slot`: `None` for events about a function.
    pub fn push(&mut self, now: Nanos, kind: EventKind, function: u16, lif: Option<(u16, u16)>, detail: u64) {
        let (lif, slot) = lif.unwrap_or((LIF_NONE, 0xffff));
        if self.log.len() == EVENT_LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(DeviceEvent {
            seq: self.next_seq.into(),
            device_clock: now.into(),
            kind: kind.raw(),
            rsvd0: 0,
            function: function.into(),
            lif: lif.into(),
            slot: slot.into(),
            detail: detail.into(),
        });
        self.next_seq += 1;
    }

    /// Up to `max` events from sequence number `from` on, oldest first,
    /// and the sequence number to ask from next.
    pub fn since(&self, from: u64, max: usize) -> (Vec<DeviceEvent>, u64) {
        let out: Vec<DeviceEvent> = self
            .log
            .iter()
            .filter(|e| e.seq.get() >= from)
            .take(max)
            .copied()
            .collect();
        let next = match out.last() {
            Some(e) => e.seq.get() + 1,
            None => from.min(self.next_seq),
        };
        (out, next)
    }

    /// Every event kept, oldest first (tests, logs).
    pub fn iter(&self) -> impl Iterator<Item = &DeviceEvent> {
        self.log.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_events_and_numbers_them() {
        let mut l = EventLog::default();
        for i in 0..(EVENT_LOG_LEN as u64 + 10) {
            l.push(i, EventKind::LifCreated, 1, Some((3, 0)), i);
        }
        let (ev, next) = l.since(0, 4);
        assert_eq!(ev[0].seq.get(), 10, "the oldest ten were overwritten: a gap");
        assert_eq!(next, 14);
        let (ev, next) = l.since(next, usize::MAX);
        assert_eq!(ev.len(), EVENT_LOG_LEN - 4);
        assert_eq!(next, EVENT_LOG_LEN as u64 + 10);
        let (ev, again) = l.since(next, 8);
        assert!(ev.is_empty());
        assert_eq!(again, next, "nothing new: ask from the same place");
        assert_eq!(l.since(u64::MAX, 8).1, next, "a future sequence number is clamped");
    }
}
