//! nicdrv's library: the userspace host driver for fairnic functions.
//!
//! - [`backend`]: how the driver reaches a device (kernel VFIO or
//!   vfio-user), behind one trait.
//! - [`mem`], [`pool`]: DMA memory and packet buffers.
//! - [`nic`]: bring-up and admin commands of one PCI function.
//! - [`queue`]: `tx_burst` / `rx_burst`, zero-copy and batched.
//! - [`irq`]: interrupt mode (epoll on MSI-X eventfds with the shared
//!   consumer flag, so no wakeup is lost).

pub mod apps;
pub mod backend;
pub mod control;
pub mod irq;
pub mod mem;
pub mod nic;
pub mod pool;
pub mod queue;
