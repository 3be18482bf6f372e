//! fairnic's dataplane: the contract both ends of the device share, and the
//! data-path algorithms both ends run.
//!
//! - [`abi`]: the device ABI: every byte host and device exchange.
//! - [`meter`]: RFC 2697/2698 token-bucket meters with typed units.
//! - [`fair`]: the fetch scheduler (DRR by cost) and per-LIF regulation.
//! - [`packet`]: header views and frame classification.
//! - [`ring`]: the three-index descriptor ring (head / outgoing tail /
//!   buffer tail) with commit mode and doorbell suppression.
//! - [`moderation`]: when a vector's interrupt is raised (consumer flag,
//!   latency and overflow intervals, adaptive mode).
//! - [`pipeline`]: the pipeline IR, its validation, image format and
//!   executor.
//!
//! What this crate never does: start threads, read a clock, or perform
//! I/O. Memory and `now` are passed in, so every algorithm here is
//! deterministic and testable in virtual time; the simulator and the
//! driver supply the world.
//!
//! Spec: `docs/device-abi.md`; design: `docs/architecture.md`.

#![deny(missing_docs)]

pub mod abi;
pub mod fair;
pub mod meter;
pub mod moderation;
pub mod packet;
pub mod pipeline;
pub mod ring;
pub mod rng;
mod sync;
