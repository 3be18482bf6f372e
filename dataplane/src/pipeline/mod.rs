//! The device pipeline: the IR a P4 program compiles to ([`ir`]), its
//! checks, its match tables, and the executor that runs it on packets
//! ([`Pipeline`]).

mod compile;
mod exec;
mod image;
pub mod ir;
#[cfg(feature = "jit")]
mod jit;
pub mod table;
mod validate;

pub use exec::{Applied, Backend, Direct, EntryError, Executor, Input, Nanos, Outcome, Pipeline, Stats, Verdict};
pub use ir::*;

/// A program's meter arrays that the device keeps in step with each LIF's
/// own meters, indexed by LIF number: `MeterSet` of a LIF's `Packets`
/// meter sets cell `lif` of `lif_packets`, of its `Bytes` meter that of
/// `lif_bytes` (and a P4Runtime `MeterEntry` of either sets the LIF's).
pub const LIF_METERS: [(&str, crate::abi::MeterResource); 2] = [
    ("lif_packets", crate::abi::MeterResource::Packets),
    ("lif_bytes", crate::abi::MeterResource::Bytes),
];

/// The LIF meter resource a program's meter array `name` mirrors.
pub fn lif_meter_resource(name: &str) -> Option<crate::abi::MeterResource> {
    LIF_METERS.iter().find(|(n, _)| *n == name).map(|&(_, r)| r)
}

#[cfg(all(test, feature = "jit"))]
mod diff_tests;
#[cfg(all(test, feature = "jit"))]
pub(crate) mod gen;
#[cfg(test)]
mod tests;
