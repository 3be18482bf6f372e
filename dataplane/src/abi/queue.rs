//! The queue state block: 256 bytes of host memory per queue that the
//! driver and the device share: four cache lines, each written by one side
//! only, split by how often they change.
//!
//! | offset | field           | written by | meaning |
//! |--------|-----------------|------------|---------|
//! | 0x00   | `head`          | device     | head write-back: every descriptor before it has been fetched and is done |
//! | 0x04   | `cq_tail`       | device     | completions written so far (informational; the color bit is authoritative) |
//! | 0x40   | `fetch_flag`    | device     | [`FetchFlag`]: while active the driver may skip doorbells |
//! | 0x44   | `qstatus`       | device     | 0 while running; a [`super::CompStatus`] once the queue is in the error state |
//! | 0x48   | `error_index`   | device     | ring index of the descriptor that stopped the queue |
//! | 0x80   | `outgoing_tail` | driver     | how far the device may fetch |
//! | 0x84   | `cq_head`       | driver     | completions consumed so far |
//! | 0xc0   | `consumer_flag` | driver     | [`ConsumerFlag`] |
//!
//! All indices run free (`u32`, wrapping) and are masked by the ring size.
//! Fields are little-endian `u32`s accessed atomically (aligned 4-byte
//! loads and stores). The block must be 128-byte aligned. The atomic view
//! used by both ends is [`crate::ring::SharedQueueState`], whose layout is
//! asserted equal to this one.
//!
//! Why four lines: an index changes with every batch, a flag only when a
//! side starts or stops working. Were a flag on its index's line, every
//! read of the flag by the other side would miss (the line was just written
//! for the index); on its own line it stays cached in both. Each side's two
//! lines form one 128-byte-aligned pair, so the adjacent-line prefetcher of
//! x86 cores never drags the other side's hot line along with ours.

use super::{abi_enum, assert_layout, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Required alignment of a queue state block.
pub const QUEUE_STATE_ALIGN: u64 = 128;
/// Size of a queue state block.
pub const QUEUE_STATE_SIZE: usize = 256;

abi_enum! {
    /// `fetch_flag`: whether the device's fetch engine is working the queue.
    pub enum FetchFlag: u32, "queue_state.fetch_flag" {
        /// The device is not fetching; a doorbell is needed.
        Idle = 0,
        /// The device's fetch engine is working this queue and will look at
        /// `outgoing_tail` again before it goes idle: the driver may skip
        /// the doorbell.
        Active = 1,
    }
}

abi_enum! {
    /// `consumer_flag`: what the driver thread behind the queue is doing;
    /// interrupt moderation follows it. Any other value reads as `Idle`.
    pub enum ConsumerFlag: u32, "queue_state.consumer_flag" {
        /// The driver neither polls nor waits (descheduled, busy elsewhere):
        /// at most one interrupt per overflow interval. Zero, so a fresh
        /// state block starts here.
        Idle = 0,
        /// The driver is polling the completion ring: no interrupt.
        Polling = 1,
        /// The driver is about to block: interrupt on the next completion,
        /// at most one per latency interval.
        Armed = 2,
    }
}

impl ConsumerFlag {
    /// The flag a raw word holds; a value the ABI does not define reads as
    /// [`ConsumerFlag::Idle`] (the device never refuses a driver's word).
    pub fn from_word(raw: u32) -> ConsumerFlag {
        ConsumerFlag::from_raw(raw).unwrap_or(ConsumerFlag::Idle)
    }
}

/// Byte layout of the queue state block.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct QueueStateBlock {
    /// Device-written head write-back: every descriptor before it has been
    /// fetched and is done.
    pub head: U32,
    /// Device-written: completions written so far, free-running from 0 (for
    /// diagnostics; the color bit is authoritative).
    pub cq_tail: U32,
    /// Reserved, zero: the rest of the device's index line.
    pub rsvd_device_hot: [u8; 56],
    /// Device-written [`FetchFlag`]: while `Active` the driver may skip the
    /// doorbell.
    pub fetch_flag: U32,
    /// Device-written: 0 while the queue runs; the [`super::CompStatus`] that
    /// stopped it once it is in the error state.
    pub qstatus: U32,
    /// Device-written: ring index of the descriptor that stopped the queue
    /// (valid with a nonzero `qstatus`).
    pub error_index: U32,
    /// Reserved, zero: the rest of the device's flag line.
    pub rsvd_device_cold: [u8; 52],
    /// Driver-written: how far the device may fetch (free-running).
    pub outgoing_tail: U32,
    /// Driver-written: completions consumed so far (free-running from 0).
    pub cq_head: U32,
    /// Reserved, zero: the rest of the driver's index line.
    pub rsvd_driver_hot: [u8; 56],
    /// Driver-written [`ConsumerFlag`]: what the driver behind the queue is
    /// doing; the queue's interrupts follow it.
    pub consumer_flag: U32,
    /// Reserved, zero: the rest of the driver's flag line.
    pub rsvd_driver_cold: [u8; 60],
}
assert_layout!(QueueStateBlock, size = QUEUE_STATE_SIZE,
    head @ 0x00, cq_tail @ 0x04, fetch_flag @ 0x40, qstatus @ 0x44, error_index @ 0x48,
    outgoing_tail @ 0x80, cq_head @ 0x84, consumer_flag @ 0xc0);
