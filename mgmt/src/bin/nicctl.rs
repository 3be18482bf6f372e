//! nicctl: manage a running nicdrv (see `mgmt::cli`).

#![forbid(unsafe_code)]

fn main() {
    let code = mgmt::cli::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
