//! Compile the .proto files under `proto/` without a system `protoc`:
//! protox parses them into a descriptor set, prost-build generates the
//! Rust types from it, and the encoded set is kept for prost-reflect (the
//! text format of P4Info); tonic-prost-build adds the P4Runtime service.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/p4/v1/p4runtime.proto"];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(out.join("p4rt.fds"), prost::Message::encode_to_vec(&fds))?;
    let mut config = prost_build::Config::new();
    // Proto comments would become doc tests.
    config.disable_comments(["."]);
    // The P4Runtime service (feature `server`): the server nicdrv runs, and
    // the client its tests and benchmarks drive it with.
    #[cfg(feature = "server")]
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(fds, config)?;
    #[cfg(not(feature = "server"))]
    config.compile_fds(fds)?;
    Ok(())
}
