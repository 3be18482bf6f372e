//! Meters: resource, mode and policy, `MeterSet`'s configuration (RFC 2697 /
//! 2698 thresholds in the resource's units) and `MeterGet`.

use super::*;

abi_enum! {
    /// The resource a meter measures; it fixes the meter's units.
    pub enum MeterResource: u8, "meter.resource" {
        /// Packets: rates in packets/s, bursts in packets.
        Packets = 0,
        /// Frame bytes: rates in bytes/s, bursts in bytes.
        Bytes = 1,
        /// Pipeline cost units the program charges: units/s, units.
        Cost = 2,
        /// Bytes moved by DMA (descriptors, buffers, completions): bytes/s.
        DmaBytes = 3,
        /// Descriptors fetched but not yet completed: a level, not a rate;
        /// `cburst`/`pburst` are the yellow/red thresholds, rates are zero.
        DescInFlight = 4,
    }
}

abi_enum! {
    /// Meter algorithm.
    pub enum MeterMode: u8, "meter.mode" {
        /// No metering: everything is green.
        Off = 0,
        /// Single rate three color marker, RFC 2697: `cir`, `cburst`, `eburst`.
        SrTcm = 1,
        /// Two rate three color marker, RFC 2698: `cir`, `cburst`, `pir`, `pburst`.
        TrTcm = 2,
    }
}

abi_enum! {
    /// What the device does with a LIF whose meter is red.
    pub enum MeterPolicy: u8, "meter.policy" {
        /// Stop fetching the LIF's rings until it is green again; nothing lost.
        Backpressure = 0,
        /// Serve the LIF only when no other LIF has work (work-conserving).
        Deprioritize = 1,
        /// Drop (wire ingress only), counted per LIF and reason.
        Drop = 2,
    }
}

/// Body of `MeterSet` and the structure `MeterGet` writes: thresholds in
/// the units of P4Runtime's `MeterConfig`, per [`MeterResource`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MeterConfig {
    /// [`MeterResource`].
    pub resource: u8,
    /// [`MeterMode`].
    pub mode: u8,
    /// [`MeterPolicy`].
    pub policy: u8,
    /// Reserved, zero.
    pub rsvd0: u8,
    /// Reserved, zero.
    pub rsvd1: U32,
    /// Committed information rate, units/s.
    pub cir: U64,
    /// Committed burst size, units.
    pub cburst: U64,
    /// Peak information rate, units/s (trTCM).
    pub pir: U64,
    /// Peak burst size, units (trTCM).
    pub pburst: U64,
    /// Excess burst size, units (srTCM).
    pub eburst: U64,
}
assert_layout!(MeterConfig, size = 48, resource @ 0, mode @ 1, policy @ 2, cir @ 8, cburst @ 16, pir @ 24, pburst @ 32, eburst @ 40);

impl MeterConfig {
    /// The [`MeterResource`]; `Packets` for a value outside the enumeration
    /// (which the command decoder refuses).
    pub fn resource(&self) -> MeterResource {
        MeterResource::from_raw(self.resource).unwrap_or(MeterResource::Packets)
    }
    /// The [`MeterMode`]; `Off` for a value outside the enumeration (which
    /// the command decoder refuses).
    pub fn mode(&self) -> MeterMode {
        MeterMode::from_raw(self.mode).unwrap_or(MeterMode::Off)
    }
    /// The [`MeterPolicy`]; `Backpressure` for a value outside the
    /// enumeration (which the command decoder refuses).
    pub fn policy(&self) -> MeterPolicy {
        MeterPolicy::from_raw(self.policy).unwrap_or(MeterPolicy::Backpressure)
    }
    /// Check the config as `MeterSet` does (enumerations, reserved bytes,
    /// the mode's fields): what a driver holds a device's answer to.
    pub fn validate(&self) -> Result<(), AbiError> {
        validate_meter_config(self)
    }
}

/// Body of `MeterGet`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MeterRef {
    /// [`MeterResource`].
    pub resource: u8,
    /// Reserved, zero.
    pub rsvd: [u8; 7],
    /// Where to write the applied [`MeterConfig`] (at least 48 bytes).
    pub dma: DmaRef,
}
assert_layout!(MeterRef, size = 24, resource @ 0, dma @ 8);

pub(super) fn validate_meter_config(m: &MeterConfig) -> Result<(), AbiError> {
    let resource = MeterResource::from_raw(m.resource)?;
    let mode = MeterMode::from_raw(m.mode)?;
    MeterPolicy::from_raw(m.policy)?;
    check_reserved_bits("meter.rsvd0", m.rsvd0.into(), 0)?;
    check_reserved_bits("meter.rsvd1", m.rsvd1.get().into(), 0)?;
    let (cir, cburst, pir, pburst, eburst) = (m.cir.get(), m.cburst.get(), m.pir.get(), m.pburst.get(), m.eburst.get());
    // P4Runtime carries these as int64: values above i64::MAX are not
    // representable there and are refused here.
    for (field, v) in [
        ("meter.cir", cir),
        ("meter.cburst", cburst),
        ("meter.pir", pir),
        ("meter.pburst", pburst),
        ("meter.eburst", eburst),
    ] {
        if v > i64::MAX as u64 {
            return Err(AbiError::OutOfRange {
                field,
                value: v,
                reason: "larger than P4Runtime's int64",
            });
        }
    }
    let unused = |field: &'static str, v: u64| check_reserved_bits(field, v, 0);
    match mode {
        MeterMode::Off => {
            unused("meter.cir", cir)?;
            unused("meter.cburst", cburst)?;
            unused("meter.pir", pir)?;
            unused("meter.pburst", pburst)?;
            unused("meter.eburst", eburst)?;
        }
        _ if resource == MeterResource::DescInFlight => {
            // A level meter: yellow at cburst, red at pburst.
            unused("meter.cir", cir)?;
            unused("meter.pir", pir)?;
            unused("meter.eburst", eburst)?;
            if cburst == 0 || pburst < cburst {
                return Err(AbiError::OutOfRange {
                    field: "meter.pburst",
                    value: pburst,
                    reason: "a level meter needs 0 < cburst <= pburst",
                });
            }
        }
        MeterMode::SrTcm => {
            unused("meter.pir", pir)?;
            unused("meter.pburst", pburst)?;
            if cburst == 0 && eburst == 0 {
                return Err(AbiError::OutOfRange {
                    field: "meter.cburst",
                    value: 0,
                    reason: "RFC 2697: CBS or EBS must be larger than 0",
                });
            }
        }
        MeterMode::TrTcm => {
            unused("meter.eburst", eburst)?;
            if pir < cir {
                return Err(AbiError::OutOfRange {
                    field: "meter.pir",
                    value: pir,
                    reason: "RFC 2698: PIR must be at least CIR",
                });
            }
            if cburst == 0 || pburst == 0 {
                return Err(AbiError::OutOfRange {
                    field: if cburst == 0 { "meter.cburst" } else { "meter.pburst" },
                    value: 0,
                    reason: "RFC 2698: CBS and PBS must be larger than 0",
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::admin::tests::*;

    #[test]
    fn meter_validation_follows_the_rfcs() {
        let bad_pir = MeterConfig {
            pir: 1.into(),
            ..trtcm()
        };
        let err = AdminCommand::decode(&AdminCommand::MeterSet(bad_pir).encode(HDR)).unwrap_err();
        assert!(err.to_string().contains("PIR must be at least CIR"), "{err}");

        let sr = MeterConfig {
            mode: MeterMode::SrTcm.raw(),
            pir: 0.into(),
            pburst: 0.into(),
            eburst: 1000.into(),
            ..trtcm()
        };
        assert!(AdminCommand::decode(&AdminCommand::MeterSet(sr).encode(HDR)).is_ok());
        let sr_with_pir = MeterConfig { pir: 5.into(), ..sr };
        assert!(matches!(
            AdminCommand::decode(&AdminCommand::MeterSet(sr_with_pir).encode(HDR)),
            Err(AbiError::ReservedBits { field: "meter.pir", .. })
        ));
        let huge = MeterConfig {
            cir: u64::MAX.into(),
            pir: u64::MAX.into(),
            ..trtcm()
        };
        assert!(matches!(
            AdminCommand::decode(&AdminCommand::MeterSet(huge).encode(HDR)),
            Err(AbiError::OutOfRange { field: "meter.cir", .. })
        ));
    }
}
