//! nicsim: the simulated fairnic SmartNIC.
pub mod clock;
pub mod dma;
pub mod pcap;
pub mod pci;
pub mod port;
