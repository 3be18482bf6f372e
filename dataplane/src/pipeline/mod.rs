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

pub use exec::{Applied, Backend, EntryError, Executor, Input, Nanos, Outcome, Pipeline, Stats, Verdict};
pub use ir::*;

#[cfg(all(test, feature = "jit"))]
mod diff_tests;
#[cfg(all(test, feature = "jit"))]
pub(crate) mod gen;
#[cfg(test)]
mod tests;
