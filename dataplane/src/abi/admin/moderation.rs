//! Interrupt moderation of a vector: `ModerationSet`'s settings and
//! `ModerationGet`.

use super::*;

/// Body of `ModerationSet` and the structure `ModerationGet` writes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Moderation {
    /// MSI-X vector.
    pub vector: U16,
    /// [`ModerationMode`].
    pub mode: u8,
    /// Critical event: interrupt at once when a ring on this vector is this
    /// full, percent (1..=100; 0 = never).
    pub high_watermark_pct: u8,
    /// Interval while the consumer is active, µs.
    pub latency_interval_us: U32,
    /// Interval while the consumer is inactive, µs.
    pub overflow_interval_us: U32,
    /// Interrupt once this many completions wait (0 = no threshold).
    pub frame_threshold: U32,
}
assert_layout!(Moderation, size = 16, vector @ 0, mode @ 2, high_watermark_pct @ 3,
    latency_interval_us @ 4, overflow_interval_us @ 8, frame_threshold @ 12);

impl Moderation {
    /// The [`ModerationMode`]; `Off` for a value outside the enumeration
    /// (which the command decoder refuses).
    pub fn mode(&self) -> ModerationMode {
        ModerationMode::from_raw(self.mode).unwrap_or(ModerationMode::Off)
    }
}

/// Body of `ModerationGet`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct ModerationRef {
    /// MSI-X vector of the sending function to read, below its `nintrs`.
    pub vector: U16,
    /// Reserved, zero.
    pub rsvd: [u8; 6],
    /// Where to write the applied [`Moderation`] (at least 16 bytes).
    pub dma: DmaRef,
}
assert_layout!(ModerationRef, size = 24, vector @ 0, dma @ 8);

pub(super) fn validate_moderation(m: &Moderation) -> Result<(), AbiError> {
    ModerationMode::from_raw(m.mode)?;
    if m.high_watermark_pct > 100 {
        return Err(AbiError::OutOfRange {
            field: "moderation.high_watermark_pct",
            value: m.high_watermark_pct.into(),
            reason: "a percentage, 0..=100",
        });
    }
    for (field, v) in [
        ("moderation.latency_interval_us", m.latency_interval_us.get()),
        ("moderation.overflow_interval_us", m.overflow_interval_us.get()),
    ] {
        if v > MAX_INTERVAL_US {
            return Err(AbiError::OutOfRange {
                field,
                value: v.into(),
                reason: "at most 1 s",
            });
        }
    }
    if m.frame_threshold.get() > MAX_FRAME_THRESHOLD {
        return Err(AbiError::OutOfRange {
            field: "moderation.frame_threshold",
            value: m.frame_threshold.get().into(),
            reason: "at most 65536",
        });
    }
    Ok(())
}
