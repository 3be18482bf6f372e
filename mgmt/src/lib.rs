//! nicctl's library: the control-socket protocol shared with `nicdrv`
//! ([`proto`]), the client, and the unit parsers (the latter two arrive
//! with the fairness issue).

pub mod proto;
