//! Per-LIF counters (`StatsGet`, `PortStatsGet`).

use super::*;

abi_enum! {
    /// Index of each counter in [`LifStats::counters`]. Every packet a LIF
    /// sends or receives ends in exactly one of the packet counters
    /// (delivered, or one `Drop*` reason).
    pub enum LifCounter: u8, "lif_stats.counter" {
        /// Frames the LIF sent that the device took from its TX rings.
        TxPackets = 0,
        /// Their bytes.
        TxBytes = 1,
        /// Frames delivered to the LIF's RX rings.
        RxPackets = 2,
        /// Their bytes.
        RxBytes = 3,
        /// Pipeline cost units charged.
        CostUnits = 4,
        /// Bytes moved by DMA on the LIF's behalf.
        DmaBytes = 5,
        /// Dropped: no RX buffer posted.
        DropNoRxBuffer = 6,
        /// Dropped: meter red under the drop policy.
        DropMeterRed = 7,
        /// Dropped: the parser rejected the frame.
        DropParseError = 8,
        /// Dropped: no table entry forwards it.
        DropNoRoute = 9,
        /// Dropped: the destination queue is in the error state.
        DropQueueError = 10,
        /// Delivered cut to the RX buffer (or to the largest frame) and
        /// flagged `TRUNCATED`: the frame was longer.
        DropTooLong = 11,
        /// Dropped: the pipeline's `drop` action.
        DropPipeline = 12,
        /// Frames the LIF's meters marked green.
        MeterGreen = 13,
        /// Frames the LIF's meters marked yellow.
        MeterYellow = 14,
        /// Frames the LIF's meters marked red.
        MeterRed = 15,
        /// Doorbells received.
        Doorbells = 16,
        /// Interrupts raised for the LIF's queues.
        Interrupts = 17,
        /// Interrupts withheld because the consumer was polling.
        InterruptsSuppressed = 18,
        /// Times the fetch scheduler skipped the LIF for backpressure.
        Backpressured = 19,
        /// Frames the LIF sent that the switch sent out of the uplink only
        /// (to the wire: neither received by a LIF nor dropped; the uplink
        /// copy of a flooded frame is not counted).
        ToUplink = 20,
        /// Dropped: sent with a source MAC that is not the LIF's, while
        /// its slot's spoof check is on.
        DropSpoofed = 21,
        /// Dropped: the source MAC is a group (multicast or broadcast)
        /// address, which no station has (from a LIF, or from the wire on
        /// the uplink's counters).
        DropBadSource = 22,
        /// Uplink only (`PortStatsGet`): frames that arrived from the wire.
        /// Each ends in exactly one of: a LIF's `RxPackets` or `Drop*`
        /// counters (the LIF it was delivered to), or the uplink's own
        /// `Drop*` counters. A flood is one frame here and one arrival at
        /// every LIF it reaches.
        WireRxPackets = 23,
        /// Uplink only: frames sent out of the uplink (from any LIF).
        WireTxPackets = 24,
        /// Frames from the wire that arrived at this LIF, then delivered
        /// (`RxPackets`) or dropped here (a `Drop*` counter): what of the
        /// LIF's counters is wire traffic rather than other LIFs'.
        RxFromWire = 25,
        /// Frames the pipeline program sent to the CPU port ([`LIF_CPU`])
        /// that the port queued for the PF (ABI 1.5): an outcome at the
        /// sender, like `ToUplink`. On the uplink's counters: frames from
        /// the wire.
        ToCpu = 26,
        /// Dropped: sent to the CPU port while its queue held
        /// [`CPU_QUEUE_FRAMES`] frames (ABI 1.5); at the sender.
        DropCpuQueueFull = 27,
        /// Uplink only (`PortStatsGet`): frames the PF sent with
        /// `PacketInject` (ABI 1.5). Each ends at its LIF (`RxPackets` or a
        /// `Drop*` counter there) or on the wire (`WireTxPackets`).
        CpuInjected = 28,
    }
}

/// Number of counter slots in [`LifStats`] (room to grow within ABI 1).
pub const LIF_COUNTERS: usize = 32;

/// What `StatsGet` writes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct LifStats {
    /// The LIF the counters belong to; [`LIF_NONE`] for a function's retired
    /// counters and for the uplink's (`PortStatsGet`).
    pub lif: U16,
    /// Reserved, zero.
    pub rsvd: [u8; 6],
    /// Device clock, ns, when the counters were read.
    pub device_clock: U64,
    /// Indexed by [`LifCounter`]; unused slots read zero.
    pub counters: [U64; LIF_COUNTERS],
}
assert_layout!(LifStats, size = 16 + 8 * LIF_COUNTERS, lif @ 0, device_clock @ 8, counters @ 16);

impl Default for LifStats {
    fn default() -> Self {
        LifStats {
            lif: 0.into(),
            rsvd: [0; 6],
            device_clock: 0.into(),
            counters: [U64::new(0); LIF_COUNTERS],
        }
    }
}

impl LifCounter {
    /// Every drop counter: each dropped frame lands in exactly one.
    pub const DROPS: [LifCounter; 10] = [
        LifCounter::DropNoRxBuffer,
        LifCounter::DropMeterRed,
        LifCounter::DropParseError,
        LifCounter::DropNoRoute,
        LifCounter::DropQueueError,
        LifCounter::DropTooLong,
        LifCounter::DropPipeline,
        LifCounter::DropSpoofed,
        LifCounter::DropBadSource,
        LifCounter::DropCpuQueueFull,
    ];
}

impl LifStats {
    /// The value of counter `c`.
    pub fn get(&self, c: LifCounter) -> u64 {
        self.counters[c as usize].get()
    }

    /// Frames dropped, every reason.
    pub fn dropped(&self) -> u64 {
        LifCounter::DROPS.iter().map(|&c| self.get(c)).sum()
    }
}
