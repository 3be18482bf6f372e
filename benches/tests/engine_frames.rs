//! `engine-frames` (the engine's fixed workload for callgrind) runs every
//! variant to the end with the device's books balanced, and refuses what
//! it does not know.

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_engine-frames"))
        .args(args)
        .output()
        .expect("engine-frames runs")
}

#[test]
fn every_variant_moves_every_frame_with_the_books_balanced() {
    for v in ["p4", "switch", "floor"] {
        let out = run(&[v, "3000"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{v}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            stdout.contains(&format!(
                "{v}: 3000 frames received of 3000 sent; the device's books balance"
            )),
            "{v}: {stdout}"
        );
    }
}

#[test]
fn unknown_variants_and_counts_are_refused() {
    for args in [&["nope"][..], &["p4", "many"][..], &[][..]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("engine-frames: "), "{args:?}: {err}");
    }
}
