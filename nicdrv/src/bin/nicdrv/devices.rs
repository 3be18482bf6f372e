//! The devices nicdrv drives: `--device` values into backends, extra PCI
//! IDs, and the pipeline program loaded through the PF.

use host_driver::backend::vfio::VfioBackend;
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::backend::Backend;
use host_driver::nic::Nic;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Compile the program `which` names and load it through the PF.
pub fn load_pipeline<'a>(
    which: &str,
    mut nics: impl Iterator<Item = &'a Arc<Mutex<Nic>>>,
) -> Result<Option<dataplane::pipeline::Program>, String> {
    if which == "none" {
        return Ok(None);
    }
    let program = if which == "fairnic" {
        p4::fairnic()
    } else {
        p4::compile_file(std::path::Path::new(which)).map_err(|diags| {
            let lines: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            format!(
                "--pipeline {which}: the program does not compile:\n{}",
                lines.join("\n")
            )
        })?
    };
    let Some(pf) = nics.find(|n| n.lock().unwrap_or_else(|p| p.into_inner()).is_pf()) else {
        println!("nicdrv: no PF among the devices: the pipeline stays as the device has it");
        return Ok(None);
    };
    let image = program.to_image();
    let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
    g.load_pipeline(&image)
        .map_err(|e| format!("{}: loading pipeline {}: {e}", g.device(), program.name))?;
    // Which executor the device runs it on (DeviceInfo, ABI 1.2).
    let runs = match g.pipeline_executor() {
        Ok(Some(e)) => e,
        Ok(None) => "not active".to_string(),
        Err(e) => format!("executor not known: {e}"),
    };
    println!(
        "nicdrv: pipeline {} loaded ({} bytes; tables {}); executor: {}",
        program.name,
        image.len(),
        program
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        runs
    );
    Ok(Some(program))
}

/// `--pci-id VENDOR:DEVICE` (hex).
pub fn parse_id(s: &str) -> Result<(u16, u16), String> {
    let (v, d) = s
        .split_once(':')
        .ok_or_else(|| format!("--pci-id {s}: want VENDOR:DEVICE in hex"))?;
    let h = |x: &str| u16::from_str_radix(x, 16).map_err(|_| format!("--pci-id {s}: '{x}' is not hex"));
    Ok((h(v)?, h(d)?))
}

/// Expand `--device` values into backends; a sim directory means every
/// socket in it, PF first.
pub fn backends(devices: &[String]) -> Result<Vec<Box<dyn Backend>>, String> {
    let mut out: Vec<Box<dyn Backend>> = Vec::new();
    for d in devices {
        if let Some(bdf) = d.strip_prefix("vfio:") {
            out.push(Box::new(VfioBackend::open(bdf).map_err(|e| e.to_string())?));
        } else if let Some(path) = d.strip_prefix("sim:") {
            let p = Path::new(path);
            if p.is_dir() {
                let mut socks: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| format!("{path}: {e}"))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                    .collect();
                socks.sort_by_key(|s| (s.file_name() != Some("pf.sock".as_ref()), s.clone()));
                if socks.is_empty() {
                    return Err(format!("{path}: no nicsim sockets (*.sock) in it"));
                }
                for s in socks {
                    out.push(Box::new(VfioUserBackend::connect(&s).map_err(|e| e.to_string())?));
                }
            } else {
                out.push(Box::new(VfioUserBackend::connect(p).map_err(|e| e.to_string())?));
            }
        } else {
            return Err(format!(
                "--device {d}: want vfio:BDF (e.g. vfio:0000:3b:02.0) or sim:PATH"
            ));
        }
    }
    Ok(out)
}
