//! nicsim: the simulated device. PCI functions served over vfio-user, BAR0
//! per [`dataplane::abi`], device engines, wire ports, real or virtual clock.
//!
//! Empty until the nicsim issue builds it.
