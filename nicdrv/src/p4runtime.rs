//! What nicdrv's P4Runtime server drives: the PF this nicdrv holds,
//! through the control socket's shared state.

use dataplane::abi;
use host_driver::control::{ControlState, LoadedPipeline};
use std::sync::{Arc, Mutex};

/// The device id nicdrv's P4Runtime server answers to.
pub const DEVICE_ID: u64 = 1;

/// What the P4Runtime server drives: the PF this nicdrv holds, and the
/// control socket's view of the loaded program (so `nicctl table` works
/// on what a controller loaded).
#[derive(Debug)]
pub struct PfTarget {
    pub state: Arc<ControlState>,
}

impl p4rt::server::Target for PfTarget {
    fn load_pipeline(&self, program: &dataplane::pipeline::Program, image: &[u8]) -> Result<(), String> {
        let pf = self
            .state
            .pf()
            .ok_or("this nicdrv drives no PF: programs are loaded through the PF")?;
        pf.lock()
            .unwrap_or_else(|p| p.into_inner())
            .load_pipeline(image)
            .map_err(|e| e.to_string())?;
        *self.state.pipeline.lock().unwrap_or_else(|p| p.into_inner()) = Some(LoadedPipeline::new(program.clone()));
        Ok(())
    }

    fn table_entry(&self, insert: bool, entry: &abi::TableEntry) -> Result<(), p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        let r = if insert { g.table_add(entry) } else { g.table_del(entry) };
        r.map_err(|e| refusal("the device refused the entry", &e))
    }

    fn table_entries(&self, table: u32) -> Result<Vec<abi::TableEntry>, p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.table_entries(table)
            .map_err(|e| refusal("the device did not list the table", &e))
    }

    fn meter_set(&self, lif: u16, cfg: &abi::MeterConfig) -> Result<abi::MeterConfig, p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.set_meter(lif, *cfg)
            .map_err(|e| refusal("the device refused the meter", &e))
    }

    fn meter_get(&self, lif: u16, resource: abi::MeterResource) -> Result<abi::MeterConfig, p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.meter(lif, resource)
            .map_err(|e| refusal("the device did not read the meter", &e))
    }

    fn lifs(&self) -> Result<Vec<u16>, p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.lif_list()
            .map(|l| l.iter().map(|i| i.lif.get()).collect())
            .map_err(|e| refusal("the device did not list its LIFs", &e))
    }

    fn counters(&self, counter: u32) -> Result<Vec<(u64, u64)>, p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.pipeline_counters(counter)
            .map_err(|e| refusal("the device did not read the counter", &e))
    }

    fn counter_set(&self, counter: u32, index: Option<u32>, value: (u64, u64)) -> Result<(), p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.set_pipeline_counter(counter, index, value.0, value.1)
            .map(|_| ())
            .map_err(|e| refusal("the device did not set the counter", &e))
    }

    fn pipeline_meters(&self, meter: u32) -> Result<Vec<abi::MeterConfig>, p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.pipeline_meters(meter)
            .map_err(|e| refusal("the device did not read the meter array", &e))
    }

    fn pipeline_meter_set(&self, meter: u32, index: u32, cfg: &abi::MeterConfig) -> Result<(), p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.set_pipeline_meter(meter, index, cfg)
            .map_err(|e| refusal("the device refused the meter", &e))
    }

    fn table_data(&self, table: u32) -> Result<Vec<abi::TableEntryData>, p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.table_data(table)
            .map_err(|e| refusal("the device did not list the table's direct counters and meters", &e))
    }

    fn set_table_data(&self, d: &abi::TableEntryData) -> Result<(), p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.set_table_data(d)
            .map_err(|e| refusal("the device refused the direct counter or meter", &e))
    }

    fn packet_out(&self, lif: Option<u16>, frame: &[u8]) -> Result<(), p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        g.packet_inject(lif, frame)
            .map_err(|e| refusal("the device did not send the packet", &e))
    }

    fn packet_in(&self) -> Result<(Vec<p4rt::server::packets::Frame>, u64), p4rt::entries::Refusal> {
        let pf = self.pf()?;
        let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
        let (frames, left) = g
            .packet_in()
            .map_err(|e| refusal("the device's CPU port was not read", &e))?;
        Ok((frames.into_iter().map(|p| (p.ingress_lif, p.frame)).collect(), left))
    }
}

impl PfTarget {
    fn pf(&self) -> Result<&Arc<Mutex<host_driver::nic::Nic>>, p4rt::entries::Refusal> {
        self.state.pf().ok_or((
            p4rt::tonic::Code::FailedPrecondition,
            "this nicdrv drives no PF".to_string(),
        ))
    }
}

/// The P4Runtime status for a driver error: the device's admin status
/// where it gave one.
fn refusal(what: &str, e: &host_driver::error::DriverError) -> p4rt::entries::Refusal {
    use p4rt::tonic::Code;
    let code = match e.admin_status() {
        Some(abi::AdminStatus::Exists) => Code::AlreadyExists,
        Some(abi::AdminStatus::NoEntry) => Code::NotFound,
        Some(abi::AdminStatus::NoSpace) => Code::ResourceExhausted,
        Some(abi::AdminStatus::Invalid) => Code::InvalidArgument,
        Some(abi::AdminStatus::Permission) => Code::PermissionDenied,
        Some(abi::AdminStatus::Again | abi::AdminStatus::Busy) => Code::Unavailable,
        _ if e.is_gone() => Code::Unavailable,
        _ => Code::Internal,
    };
    (code, format!("{what}: {e}"))
}
