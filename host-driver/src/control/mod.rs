//! The control socket: `nicctl` talks to a running `nicdrv` here, one JSON
//! line per request and per answer (`mgmt::proto`).
//!
//! Admin commands go to the function that may carry them: meters through
//! the PF (the device refuses them from a VF, and the answer says so),
//! statistics through the PF or the LIF's own function, moderation to the
//! function named.
//!
//! - `server`: the socket, one thread per client, one line in and one out;
//! - `handlers`: what each request does, and which function it goes to;
//! - `tables`: table entries between their text form and the ABI's;
//! - `convert`: the protocol's types from and to the ABI's, and events in
//!   words.

mod convert;
mod handlers;
mod server;
mod tables;

pub use convert::{counters, describe_event};
pub use server::{respond, ControlServer};

use crate::nic::Nic;
use dataplane::pipeline::Program;
use mgmt::proto::{self, TableEntryRow};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the control socket serves.
#[derive(Debug)]
pub struct ControlState {
    pub nics: Vec<Arc<Mutex<Nic>>>,
    pub app: String,
    /// The application's latest live figures.
    pub app_stats: Mutex<(f64, Vec<proto::AppLif>)>,
    /// The pipeline program this nicdrv loaded (through the PF), and the
    /// entries added through this socket, by table.
    pub pipeline: Mutex<Option<LoadedPipeline>>,
}

/// A loaded pipeline program and the entries the control plane added.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    pub program: Program,
    pub entries: BTreeMap<String, Vec<TableEntryRow>>,
}

impl LoadedPipeline {
    pub fn new(program: Program) -> LoadedPipeline {
        LoadedPipeline {
            program,
            entries: BTreeMap::new(),
        }
    }
}

/// A function, locked (a poisoned lock is used as it is).
fn lock(n: &Arc<Mutex<Nic>>) -> std::sync::MutexGuard<'_, Nic> {
    n.lock().unwrap_or_else(|p| p.into_inner())
}

/// The client half (for tests; `nicctl` uses it too).
pub use mgmt::client::request;
