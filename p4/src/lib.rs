//! The P4_16 front end: `p4/programs/*.p4` (the device pipeline and its
//! architecture include) compiled to the dataplane's pipeline IR, with
//! `file:line:column` errors.
//!
//! Empty until the pipeline issue builds it; the crate exists so the
//! workspace has its final shape.
