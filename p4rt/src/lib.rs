//! P4Runtime for fairnic.
//!
//! - [`proto`]: the P4Runtime v1.4 and P4Info messages. The `.proto` files
//!   under `p4rt/proto` were written from the specification's message and
//!   field tables (field numbers are the specification's) and are compiled
//!   at build time by protox and prost-build: no system `protoc`.
//! - [`p4info`]: a program's P4Info, with ids that depend on each object's
//!   kind and name only, and its text format (what `p4c-fairnic --p4info`
//!   writes and P4Runtime clients such as p4runtime-shell read).
//! - `server` (feature `server`, on by default): the P4Runtime gRPC server
//!   (tonic): client arbitration and `Capabilities` so far.

#![forbid(unsafe_code)]

/// The gRPC crate the server is built on (its status codes appear in
/// [`entries::Refusal`]).
#[cfg(feature = "server")]
pub use tonic;
#[cfg(feature = "server")]
pub mod client;
#[cfg(feature = "server")]
pub mod entries;
#[cfg(feature = "server")]
pub mod meters;
pub mod p4info;
#[cfg(feature = "server")]
pub mod server;

/// The generated message types, in their protobuf packages.
#[allow(missing_docs, missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod proto {
    pub mod p4 {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/p4.v1.rs"));
        }
        pub mod config {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/p4.config.v1.rs"));
            }
        }
    }
    pub mod google {
        pub mod rpc {
            include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
        }
    }
}

/// The encoded descriptor set of every message in [`proto`] (for
/// reflection: the text format).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/p4rt.fds"));
