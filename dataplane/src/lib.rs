//! fairnic's dataplane: the contract both ends of the device share, and the
//! data-path algorithms both ends run.
//!
//! - [`abi`]: the device ABI: every byte host and device exchange.
//! - [`meter`]: RFC 2697/2698 token-bucket meters with typed units.
//! - [`fair`]: the fetch scheduler (DRR by cost) and per-LIF regulation.
//! - [`packet`]: header views and frame classification.
//! - [`ring`]: the three-index descriptor ring (head / outgoing tail /
//!   buffer tail) with commit mode and doorbell suppression.
//!
//! Later parts (interrupt moderation, the pipeline executor) live here too. What this crate must never do: start threads,
//! read a clock, or perform I/O. Memory and `now` are passed in, so every
//! algorithm here is deterministic and testable in virtual time; the
//! simulator and the driver supply the world.
//!
//! Spec: `docs/device-abi.md` and `../shared/ARCHITECTURE.md`.

pub mod abi;
pub mod coalesce;
pub mod fair;
pub mod meter;
pub mod packet;
pub mod pipeline;
pub mod ring;
mod sync;
