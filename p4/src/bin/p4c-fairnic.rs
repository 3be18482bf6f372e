//! `p4c-fairnic`: compile a P4 pipeline program for fairnic.
//!
//! ```text
//! p4c-fairnic <file.p4> [-I dir]... [-o image] [--p4info file] [--dump]
//! ```
//!
//! Checks the program; `-I` adds a directory to look for `#include`s in
//! (after the including file's own, in the order given; the architecture
//! `fairnic_arch.p4` is built in); `-o` writes its pipeline image (what
//! `PipelineLoad` carries, and a P4Runtime controller's
//! `p4_device_config`); `--p4info` writes its P4Info in the protobuf text
//! format (`-` for standard output), for P4Runtime controllers; `--dump`
//! prints the IR. Exit status: 0 compiled, 1 the program has errors
//! (printed as `file:line:column: error: ...`), 2 bad usage or an output
//! could not be written.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: p4c-fairnic <file.p4> [-I dir]... [-o image] [--p4info file] [--dump]";

#[derive(Debug, Default)]
struct Args {
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    p4info: Option<PathBuf>,
    include: Vec<PathBuf>,
    dump: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args::default();
    let mut args = args;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-o" => {
                let o = args.next().ok_or("-o needs a file name")?;
                out.output = Some(PathBuf::from(o));
            }
            "--p4info" => {
                let o = args
                    .next()
                    .ok_or("--p4info needs a file name (or - for standard output)")?;
                out.p4info = Some(PathBuf::from(o));
            }
            "-I" => {
                let d = args.next().ok_or("-I needs a directory")?;
                out.include.push(PathBuf::from(d));
            }
            _ if a.starts_with("-I") => out.include.push(PathBuf::from(&a[2..])),
            "--dump" => out.dump = true,
            "-h" | "--help" => return Err(String::new()),
            _ if a.starts_with('-') && a != "-" => return Err(format!("unknown option `{a}`")),
            _ if out.input.is_some() => return Err("more than one input file".into()),
            _ => out.input = Some(PathBuf::from(a)),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("p4c-fairnic: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(input) = args.input else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let program = match p4::compile_file_with(&input, &args.include) {
        Ok(p) => p,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            return ExitCode::from(1);
        }
    };
    if args.dump {
        println!("{program:#?}");
    }
    if let Some(out) = args.output {
        if let Err(e) = std::fs::write(&out, program.to_image()) {
            eprintln!("p4c-fairnic: cannot write {}: {e}", out.display());
            return ExitCode::from(2);
        }
    }
    if let Some(out) = args.p4info {
        let text = p4rt::p4info::to_text(&p4rt::p4info::p4info(&program));
        let written = if out.as_os_str() == "-" {
            std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
        } else {
            std::fs::write(&out, text)
        };
        if let Err(e) = written {
            eprintln!("p4c-fairnic: cannot write {}: {e}", out.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_arguments() {
        let a = args(&["x.p4", "-o", "x.img", "--dump", "--p4info", "x.txt"]).unwrap();
        assert_eq!(a.input, Some(PathBuf::from("x.p4")));
        assert_eq!(a.output, Some(PathBuf::from("x.img")));
        assert_eq!(a.p4info, Some(PathBuf::from("x.txt")));
        assert!(args(&["x.p4", "--p4info"]).is_err());
        assert!(a.dump);
        assert!(args(&["x.p4", "-o"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["a.p4", "b.p4"]).is_err());
        let a = args(&["-I", "inc", "x.p4", "-Ilib"]).unwrap();
        assert_eq!(a.include, [PathBuf::from("inc"), PathBuf::from("lib")]);
        assert!(args(&["x.p4", "-I"]).is_err());
    }
}
