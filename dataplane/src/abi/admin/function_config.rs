//! What the PF decides for a function's LIF slots (`FunctionConfigSet` /
//! `FunctionConfigGet`): MAC, spoof check, trust.

use super::*;

/// Flags of a [`FunctionConfig`].
pub mod function_config_flags {
    /// `mac` is the slot's assigned MAC: a LIF created in the slot gets it
    /// (clear: the device assigns `lif_mac(lif)`).
    pub const MAC: u8 = 1 << 0;
    /// Drop (and count as `DropSpoofed`) frames the slot's LIF sends with
    /// a source MAC that is not the LIF's own.
    pub const SPOOF_CHECK: u8 = 1 << 1;
    /// The function may choose its LIF's MAC in `LifCreate` (else only the
    /// assigned one, or the device's).
    pub const TRUST: u8 = 1 << 2;
    /// Every defined bit.
    pub const ALL: u8 = MAC | SPOOF_CHECK | TRUST;
}

/// Body of `FunctionConfigSet`, and what `FunctionConfigGet` writes: the
/// PF's settings for one LIF slot of a function. At reset a VF's slots
/// have spoof check on and trust off, the PF's spoof check off and trust
/// on; no slot has an assigned MAC.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FunctionConfig {
    /// 0 for the PF, `n + 1` for VF `n`.
    pub function: U16,
    /// The LIF slot.
    pub slot: U16,
    /// [`function_config_flags`].
    pub flags: u8,
    /// Reserved, zero.
    pub rsvd0: u8,
    /// The assigned MAC (with `MAC`); unicast.
    pub mac: [u8; 6],
    /// Reserved, zero.
    pub rsvd1: [u8; 4],
}
assert_layout!(FunctionConfig, size = 16, function @ 0, slot @ 2, flags @ 4, mac @ 6, rsvd1 @ 12);

/// Body of `FunctionConfigGet`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FunctionConfigRef {
    /// 0 for the PF, `n + 1` for VF `n`.
    pub function: U16,
    /// The LIF slot, below that function's `nlifs`.
    pub slot: U16,
    /// Reserved, zero.
    pub rsvd: [u8; 4],
    /// Where to write the [`FunctionConfig`] (at least 16 bytes).
    pub dma: DmaRef,
}
assert_layout!(FunctionConfigRef, size = 24, function @ 0, slot @ 2, dma @ 8);
