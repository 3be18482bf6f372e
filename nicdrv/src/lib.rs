//! nicdrv's applications, on the `host-driver` library: the `nicdrv`
//! binary runs them, and tests and benchmarks call them here.
//!
//! - [`apps`]: ports (one LIF with a TX and an RX queue each) on a set of
//!   functions, and the applications that drive them: `demo`, `gen`,
//!   `forward` and `echo`.
//!
//! The binary (`src/bin/nicdrv/`) adds the command line, the devices
//! (`--device vfio:BDF`, `--device sim:PATH`), the control socket, and,
//! with the `sim` feature (on by default), the embedded simulator that
//! runs when no `--device` is given.

pub mod apps;
pub mod p4runtime;
