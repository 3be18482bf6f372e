//! fairnic's vfio-user protocol (0.1, as QEMU's
//! `docs/interop/vfio-user.rst` specifies it): the wire format ([`wire`]),
//! framing by the header with every size checked before anything is read
//! or allocated ([`channel`]), and a client ([`client`]) that trusts
//! nothing its server sends. nicsim's server and nicdrv's vfio-user backend
//! are built on it.

pub mod channel;
pub mod client;
pub mod wire;
