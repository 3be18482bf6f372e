//! nicctl's library: the control-socket protocol shared with `nicdrv`
//! ([`proto`]), its client ([`client`]), the unit parsers ([`units`]) and
//! the command line itself ([`cli`]).

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod proto;
pub mod tables;
pub mod units;
