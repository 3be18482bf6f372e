//! DPDK's SWX pipeline (`rte_swx_pipeline`, what p4c's DPDK back end emits
//! for) running `csrc/fairnic_swx.spec`, a hand-written equivalent of
//! fairnic.p4's path for the pipeline bench's traffic, through the C shim
//! `csrc/rte_swx_shim.c` (its header says what each call does). The
//! pipeline bench's production peer, with the `dpdk` feature.
//!
//! Needs, when it runs: gcc and pkg-config (DPDK 22.11 builds a spec by
//! generating C and compiling it), and two headers of DPDK's source tree
//! that libdpdk-dev does not ship, which `scripts/install-deps --bench`
//! fetches into `~/.cache/fairnic/dpdk-<version>` (or name their directory
//! in `FNIC_SWX_DPDK_INTERNAL_INCLUDE`).

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::ptr::NonNull;

extern "C" {
    fn fnic_swx_new(spec_path: *const c_char, lifs: u32, err: *mut c_char, errlen: usize) -> *mut c_void;
    fn fnic_swx_load(s: *mut c_void, frames: *const u8, lens: *const u32, in_lif: *const u16, n: u32) -> i32;
    fn fnic_swx_trace(s: *mut c_void, i: u32, egress: *mut i32, color_packets: *mut u32, color_bytes: *mut u32) -> i32;
    fn fnic_swx_run(s: *mut c_void, frames: u64) -> u64;
    fn fnic_swx_dropped(s: *const c_void) -> u64;
    fn fnic_swx_last_error(s: *const c_void) -> i32;
    fn fnic_swx_counter(s: *mut c_void, regarray: *const c_char, idx: u32, val: *mut u64) -> i32;
    fn fnic_swx_free(s: *mut c_void);
}

/// The spec, in this crate's source tree.
pub fn spec_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/csrc/fairnic_swx.spec"))
}

/// Where `scripts/install-deps --bench` puts DPDK's source headers.
pub fn headers_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache
        .join("fairnic")
        .join(format!("dpdk-{}", option_env!("SWX_DPDK_VERSION").unwrap_or("unknown")))
}

/// One SWX pipeline with its working set.
#[derive(Debug)]
pub struct Swx(NonNull<c_void>);

/// Where a frame went and the colors its meters gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trace {
    /// The LIF it left on, `None` if dropped.
    pub egress: Option<u16>,
    /// The packets and bytes meters' colors (0 green, 1 yellow, 2 red).
    pub colors: (u32, u32),
}

fn errno(what: &str, rc: i32) -> String {
    format!("{what}: {}", std::io::Error::from_raw_os_error(-rc))
}

impl Swx {
    /// Build the pipeline for `lifs` LIFs (EAL without hugepages or PCI,
    /// the spec compiled, l2_fwd filled with every LIF's MAC, meters all
    /// green).
    pub fn new(lifs: u32) -> Result<Swx, String> {
        if std::env::var_os("FNIC_SWX_DPDK_INTERNAL_INCLUDE").is_none() {
            std::env::set_var("FNIC_SWX_DPDK_INTERNAL_INCLUDE", headers_dir());
        }
        let spec = CString::new(spec_path().into_os_string().into_encoded_bytes()).map_err(|e| e.to_string())?;
        let mut err = vec![0 as c_char; 512];
        // SAFETY: `spec` is a NUL-terminated path; `err` has `err.len()`
        // bytes the shim writes a NUL-terminated message into.
        let p = unsafe { fnic_swx_new(spec.as_ptr(), lifs, err.as_mut_ptr(), err.len()) };
        match NonNull::new(p) {
            Some(p) => Ok(Swx(p)),
            None => {
                // SAFETY: the shim NUL-terminates `err` on failure (and
                // the buffer starts zeroed).
                let msg = unsafe { CStr::from_ptr(err.as_ptr()) };
                Err(msg.to_string_lossy().into_owned())
            }
        }
    }

    /// The working set: frames and the LIF each enters on.
    pub fn load(&mut self, frames: &[(Vec<u8>, u16)]) -> Result<(), String> {
        let bytes: Vec<u8> = frames.iter().flat_map(|(f, _)| f.iter().copied()).collect();
        let lens: Vec<u32> = frames.iter().map(|(f, _)| f.len() as u32).collect();
        let lifs: Vec<u16> = frames.iter().map(|(_, l)| *l).collect();
        let n = u32::try_from(frames.len()).map_err(|e| e.to_string())?;
        // SAFETY: the three arrays hold `n` frames as the shim reads them
        // (lengths summing to `bytes.len()`), alive for the call.
        let rc = unsafe { fnic_swx_load(self.0.as_ptr(), bytes.as_ptr(), lens.as_ptr(), lifs.as_ptr(), n) };
        if rc < 0 {
            return Err(errno("fnic_swx_load", rc));
        }
        Ok(())
    }

    /// Working-set frame `i` alone through the pipeline.
    pub fn trace(&mut self, i: u32) -> Result<Trace, String> {
        let (mut egress, mut cp, mut cb) = (0i32, 0u32, 0u32);
        // SAFETY: the out pointers are to locals alive for the call.
        let rc = unsafe { fnic_swx_trace(self.0.as_ptr(), i, &mut egress, &mut cp, &mut cb) };
        if rc < 0 {
            return Err(errno("fnic_swx_trace", rc));
        }
        Ok(Trace {
            egress: u16::try_from(egress).ok(),
            colors: (cp, cb),
        })
    }

    /// Push `frames` frames of the working set through; frames delivered.
    pub fn run(&mut self, frames: u64) -> Result<u64, String> {
        // SAFETY: `self.0` is a live pipeline with a loaded working set.
        let n = unsafe { fnic_swx_run(self.0.as_ptr(), frames) };
        // SAFETY: as above.
        let rc = unsafe { fnic_swx_last_error(self.0.as_ptr()) };
        if n == 0 && rc < 0 {
            return Err(errno("fnic_swx_run", rc));
        }
        Ok(n)
    }

    /// Frames the pipeline dropped since it was built.
    pub fn dropped(&self) -> u64 {
        // SAFETY: `self.0` is a live pipeline.
        unsafe { fnic_swx_dropped(self.0.as_ptr()) }
    }

    /// Register `idx` of the spec's register array `name`.
    pub fn counter(&mut self, name: &str, idx: u32) -> Result<u64, String> {
        let c = CString::new(name).map_err(|e| e.to_string())?;
        let mut v = 0u64;
        // SAFETY: `c` is NUL-terminated, `v` a local alive for the call.
        let rc = unsafe { fnic_swx_counter(self.0.as_ptr(), c.as_ptr(), idx, &mut v) };
        if rc < 0 {
            return Err(errno(&format!("fnic_swx_counter({name}[{idx}])"), rc));
        }
        Ok(v)
    }
}

impl Drop for Swx {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from fnic_swx_new and is freed once.
        unsafe { fnic_swx_free(self.0.as_ptr()) }
    }
}
