//! The fairnic host driver, as a library: the userspace driver of fairnic
//! functions. The `nicdrv` crate builds the `nicdrv` binary and its
//! applications on it.
//!
//! - [`backend`]: how the driver reaches a device (kernel VFIO or
//!   vfio-user), behind one trait.
//! - [`mem`], [`pool`]: DMA memory and packet buffers.
//! - [`nic`]: bring-up and admin commands of one PCI function; [`error`]:
//!   why they fail.
//! - [`queue`]: `tx_burst` / `rx_burst`, zero-copy and batched.
//! - [`irq`]: interrupt mode (epoll on MSI-X eventfds with the shared
//!   consumer flag, so no wakeup is lost).
//! - [`control`]: the control socket `nicctl` talks to.
//! - [`metrics`]: `/metrics` for Prometheus, read from the device on
//!   each scrape.

pub mod backend;
pub mod control;
pub mod error;
pub mod irq;
pub mod mem;
pub mod metrics;
pub mod nic;
pub mod pool;
pub mod queue;
