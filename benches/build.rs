//! With the `dpdk` feature, compile the rte_ring, rte_meter and SWX
//! pipeline shims against the system's libdpdk (found with pkg-config) and
//! link the DPDK libraries they use.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=csrc/rte_ring_shim.c");
    println!("cargo:rerun-if-changed=csrc/rte_meter_shim.c");
    println!("cargo:rerun-if-changed=csrc/rte_swx_shim.c");
    println!("cargo:rerun-if-changed=csrc/rte_swx_shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if std::env::var_os("CARGO_FEATURE_DPDK").is_none() {
        return;
    }
    let out = Command::new("pkg-config").args(["--cflags", "libdpdk"]).output();
    let cflags = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => panic!(
            "feature `dpdk` needs the system's libdpdk, found with `pkg-config libdpdk`: \
             install it with `scripts/install-deps --bench` (Debian: apt-get install libdpdk-dev pkg-config), \
             or build without `--features dpdk`"
        ),
    };
    let mut build = cc::Build::new();
    build
        .file("csrc/rte_ring_shim.c")
        .file("csrc/rte_meter_shim.c")
        .file("csrc/rte_swx_shim.c")
        .opt_level(3)
        .warnings(false);
    let mut flags = cflags.split_whitespace();
    while let Some(f) = flags.next() {
        if f == "-include" {
            if let Some(h) = flags.next() {
                build.flag("-include").flag(h);
            }
        } else {
            build.flag(f);
        }
    }
    build.compile("fnic_rte_ring_shim");
    // The version the SWX peer looks for DPDK's source headers by
    // (scripts/install-deps --bench puts them in a cache named after it).
    if let Ok(o) = Command::new("pkg-config").args(["--modversion", "libdpdk"]).output() {
        println!(
            "cargo:rustc-env=SWX_DPDK_VERSION={}",
            String::from_utf8_lossy(&o.stdout).trim()
        );
    }
    pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libdpdk")
        .expect("libdpdk found above");
    println!("cargo:rustc-link-lib=rte_ring");
    println!("cargo:rustc-link-lib=rte_meter");
    println!("cargo:rustc-link-lib=rte_pipeline");
    println!("cargo:rustc-link-lib=rte_mbuf");
    println!("cargo:rustc-link-lib=rte_mempool");
    println!("cargo:rustc-link-lib=m");
    println!("cargo:rustc-link-lib=rte_eal");
}
