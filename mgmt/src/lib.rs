//! nicctl's library: the control-socket client and the unit parsers.
//!
//! Empty until the fairness issue builds it.
