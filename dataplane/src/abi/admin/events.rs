//! The device's event log, read by the PF with `EventsGet`.

use super::*;

/// Body of `EventsGet`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct EventsRef {
    /// The first sequence number wanted (0: the oldest the device keeps).
    pub from_seq: U64,
    /// Where to write `DeviceEvent`s (as many as fit).
    pub dma: DmaRef,
}
assert_layout!(EventsRef, size = 24, from_seq @ 0, dma @ 8);

abi_enum! {
    /// What happened, in a [`DeviceEvent`].
    pub enum EventKind: u8, "event.kind" {
        /// A LIF was created (`detail`: 0).
        LifCreated = 1,
        /// A LIF was destroyed (`LifDestroy`, or the reset of its function).
        LifDestroyed = 2,
        /// A function was reset; `detail`: [`reset_reason`].
        FunctionReset = 3,
        /// A LIF was created in a slot the PF regulates: the PF's meters
        /// were applied to it. `detail`: bit `1 << resource` for each
        /// [`MeterResource`] applied; the function's count of such
        /// re-applications is in bits 32..64.
        RegulationApplied = 4,
        /// The device stopped a function after an internal error (a bug);
        /// a reset of the function recovers it. `detail`: 0.
        FunctionError = 5,
        /// A LIF's first frame with a spoofed or group source address was
        /// dropped (one event per LIF, per reason: `detail` is the
        /// `LifCounter` that counts them all).
        SourceDropped = 6,
    }
}

/// Why a function was reset, in a `FunctionReset` event's `detail`.
pub mod reset_reason {
    /// The mailbox's `Reset` command.
    pub const MAILBOX: u64 = 1;
    /// A PCI function-level reset (vfio-user `DEVICE_RESET`).
    pub const FLR: u64 = 2;
    /// Its client disconnected.
    pub const CLIENT_GONE: u64 = 3;
    /// The device reset it by itself (fault injection: a firmware restart).
    pub const DEVICE: u64 = 4;
}

/// One event `EventsGet` writes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct DeviceEvent {
    /// Sequence number: consecutive; a gap means the device's event log
    /// (the last [`EVENT_LOG_LEN`]) overflowed.
    pub seq: U64,
    /// Device clock, ns.
    pub device_clock: U64,
    /// [`EventKind`].
    pub kind: u8,
    /// Reserved, zero.
    pub rsvd0: u8,
    /// The function it concerns.
    pub function: U16,
    /// The LIF (`LIF_NONE` if none).
    pub lif: U16,
    /// The LIF's doorbell slot in its function (`0xffff` if none).
    pub slot: U16,
    /// Per kind (see [`EventKind`]).
    pub detail: U64,
}
assert_layout!(DeviceEvent, size = 32, seq @ 0, device_clock @ 8, kind @ 16, function @ 18, lif @ 20, slot @ 22, detail @ 24);

/// Events the device keeps for `EventsGet`.
pub const EVENT_LOG_LEN: usize = 1024;
