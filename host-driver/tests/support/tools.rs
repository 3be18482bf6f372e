//! Outside tools the integration tests of several crates use (tshark,
//! promtool, Prometheus, the P4Runtime reference clients). When one cannot
//! run, the check that needs it is skipped with a line saying so and how
//! to install it; with `FAIRNIC_REQUIRE_TOOLS` set (`.ci/run` sets it
//! after installing every tool) its absence fails instead. No crate of the
//! project is needed here, so any test file can take it with `#[path]`.

// Each test binary compiles this file on its own and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Fail (tools required) or say that `check` is skipped and why.
fn missing(check: &str, why: &str, install: &str) {
    assert!(
        std::env::var_os("FAIRNIC_REQUIRE_TOOLS").is_none(),
        "{check}: {why}, and FAIRNIC_REQUIRE_TOOLS is set; install it with {install}"
    );
    // Straight to the process's stderr, past the test harness's output
    // capture, so `cargo test` shows the skip even when the test passes.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {check} ({why}; install it with {install})");
}

/// Whether the outside tool `name` runs here (`name --version`).
pub fn outside_tool(name: &str, install: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        missing(&format!("the {name} check"), &format!("{name} not installed"), install);
    }
    found
}

/// The Python of the venv `scripts/install-deps --p4runtime` makes (the
/// reference P4Runtime clients: p4runtime 1.6.0's messages, grpcio,
/// p4runtime-shell 0.0.6), if it can `import` all of `modules`; else
/// `None` after [`missing`] for `check`.
pub fn p4runtime_python(check: &str, modules: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    let python = cache.join("fairnic/p4runtime-venv/bin/python");
    let found = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        missing(
            check,
            &format!("{} cannot import {modules}", python.display()),
            "scripts/install-deps --p4runtime",
        );
        return None;
    }
    Some(python)
}
