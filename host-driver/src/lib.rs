//! The userspace host driver: a `Backend` over kernel VFIO and vfio-user,
//! bring-up, queues, rx/tx bursts, poll and interrupt modes.
//!
//! Until the driver issue lands, the `nicdrv` binary prints the device ABI
//! it is written against.
