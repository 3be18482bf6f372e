//! The device pipeline: the IR a P4 program compiles to ([`ir`]), its
//! checks, and the executor that runs it on packets.

pub mod ir;
mod validate;

pub use ir::*;
