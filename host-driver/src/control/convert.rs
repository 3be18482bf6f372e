//! The control protocol's types from and to the ABI's: LIF rows,
//! counters by name, slot settings, events (and events in words), meters,
//! moderation, MAC addresses.

use dataplane::abi::{self, LifCounter, MeterConfig, Moderation};
use dataplane::packet::EthernetAddress;
use mgmt::proto::{self, EventRow, LifRow, Meter, ModerationSettings};
use std::collections::BTreeMap;

/// A LIF as `nicctl lif list` shows it.
pub(super) fn lif_row(l: &abi::LifInfo) -> LifRow {
    LifRow {
        lif: l.lif.get(),
        function: l.function_id.get(),
        name: abi::ascii_field(&l.name),
        mac: l.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
        state: match l.state {
            abi::lif_state::UP => "up",
            abi::lif_state::ERROR => "error",
            _ => "down",
        }
        .into(),
        txq: l.ntxq.get(),
        rxq: l.nrxq.get(),
    }
}

/// A LIF's counters by name (snake case of [`LifCounter`]).
pub fn counters(s: &abi::LifStats) -> BTreeMap<String, u64> {
    LifCounter::ALL
        .iter()
        .map(|&c| (c.key().to_string(), s.get(c)))
        .collect()
}

/// A slot's settings as the protocol carries them.
pub(super) fn slot_settings(c: &abi::FunctionConfig) -> proto::SlotSettings {
    use abi::function_config_flags as ff;
    proto::SlotSettings {
        function: c.function.get(),
        slot: c.slot.get(),
        mac: (c.flags & ff::MAC != 0).then(|| EthernetAddress(c.mac).to_string()),
        spoof_check: c.flags & ff::SPOOF_CHECK != 0,
        trust: c.flags & ff::TRUST != 0,
    }
}

/// An event as `nicctl events` shows it.
pub(super) fn event_row(e: &abi::DeviceEvent) -> EventRow {
    let lif = e.lif.get();
    let slot = e.slot.get();
    EventRow {
        seq: e.seq.get(),
        device_clock_ns: e.device_clock.get(),
        kind: match abi::EventKind::from_raw(e.kind) {
            Ok(k) => k.key().to_string(),
            Err(_) => format!("unknown_{}", e.kind),
        },
        function: e.function.get(),
        lif: (lif != abi::LIF_NONE).then_some(lif),
        slot: (slot != 0xffff).then_some(slot),
        detail: e.detail.get(),
        text: describe_event(e),
    }
}

/// What a device event says, in words: `VF 1 created LIF 5 in slot 0: PF
/// regulation applied (cost meter)`.
pub fn describe_event(e: &abi::DeviceEvent) -> String {
    use abi::EventKind;
    let f = crate::nic::function_name(e.function.get());
    let (lif, slot, detail) = (e.lif.get(), e.slot.get(), e.detail.get());
    match EventKind::from_raw(e.kind) {
        Ok(EventKind::LifCreated) => format!("{f} created LIF {lif} in slot {slot}"),
        Ok(EventKind::LifDestroyed) => format!("{f}'s LIF {lif} in slot {slot} destroyed"),
        Ok(EventKind::FunctionReset) => {
            let why = match detail {
                abi::reset_reason::MAILBOX => "by its driver (mailbox Reset)".to_string(),
                abi::reset_reason::FLR => "by a function-level reset".to_string(),
                abi::reset_reason::CLIENT_GONE => "because its driver went away".to_string(),
                abi::reset_reason::DEVICE => "by the device itself (firmware restart)".to_string(),
                other => format!("(reason {other})"),
            };
            format!("{f} was reset {why}: its LIFs and queues are gone")
        }
        Ok(EventKind::RegulationApplied) => {
            let meters: Vec<String> = abi::MeterResource::ALL
                .iter()
                .filter(|r| r.raw() < 32 && detail & (1 << r.raw()) != 0)
                .map(|r| r.key().to_string())
                .collect();
            let count = detail >> 32;
            format!(
                "{f} created LIF {lif} in slot {slot}: PF regulation applied ({} meter{}){}",
                if meters.is_empty() {
                    "no".to_string()
                } else {
                    meters.join(", ")
                },
                if meters.len() == 1 { "" } else { "s" },
                if count > 1 {
                    format!("; {count} times for this function")
                } else {
                    String::new()
                }
            )
        }
        Ok(EventKind::FunctionError) => {
            format!("{f} stopped after an internal device error; a reset of the function recovers it")
        }
        Ok(EventKind::SourceDropped) => {
            let why = match u8::try_from(detail).ok().and_then(|d| LifCounter::from_raw(d).ok()) {
                Some(LifCounter::DropSpoofed) => {
                    "drop_spoofed: a source MAC that is not the LIF's (spoof check)".to_string()
                }
                Some(LifCounter::DropBadSource) => "drop_bad_source: a group source MAC".to_string(),
                Some(c) => c.key().to_string(),
                None => format!("counter {detail}"),
            };
            format!("{f}'s LIF {lif} sent a frame the device dropped, {why} (the first; the counter has them all)")
        }
        Err(_) => format!(
            "{f}: event kind {} this driver does not know (LIF {lif}, slot {slot}, detail {detail:#x})",
            e.kind
        ),
    }
}

/// A meter as the ABI's `MeterSet` carries it.
pub(super) fn to_abi_meter(m: &Meter) -> MeterConfig {
    MeterConfig {
        resource: m.resource.raw(),
        mode: m.mode.raw(),
        policy: m.policy.raw(),
        cir: m.cir.into(),
        cburst: m.cburst.into(),
        pir: m.pir.into(),
        pburst: m.pburst.into(),
        eburst: m.eburst.into(),
        ..Default::default()
    }
}

/// A meter the device applied, as the protocol carries it.
pub(super) fn from_abi_meter(m: &MeterConfig) -> Meter {
    Meter {
        resource: m.resource(),
        mode: m.mode(),
        policy: m.policy(),
        cir: m.cir.get(),
        cburst: m.cburst.get(),
        pir: m.pir.get(),
        pburst: m.pburst.get(),
        eburst: m.eburst.get(),
    }
}

/// Moderation settings of `vector` as the ABI's `ModerationSet` carries them.
pub(super) fn to_abi_moderation(vector: u16, c: &ModerationSettings) -> Moderation {
    Moderation {
        vector: vector.into(),
        mode: c.mode.raw(),
        high_watermark_pct: c.high_watermark_pct,
        latency_interval_us: c.latency_interval_us.into(),
        overflow_interval_us: c.overflow_interval_us.into(),
        frame_threshold: c.frame_threshold.into(),
    }
}

/// Moderation the device applied, as the protocol carries it.
pub(super) fn from_abi_moderation(m: &Moderation) -> ModerationSettings {
    ModerationSettings {
        mode: m.mode(),
        latency_interval_us: m.latency_interval_us.get(),
        overflow_interval_us: m.overflow_interval_us.get(),
        frame_threshold: m.frame_threshold.get(),
        high_watermark_pct: m.high_watermark_pct,
    }
}
