//! The P4_16 front end: a pipeline program (`p4/programs/fairnic.p4` and
//! the architecture include `p4/include/fairnic_arch.p4`) compiled to the
//! dataplane's pipeline IR ([`dataplane::pipeline::Program`]), or
//! `file:line:column: error: message` diagnostics.
//!
//! Stages: [`source`] loads the file and its `#include`s through the
//! [`lexer`] (nom); [`parse`] builds the [`ast`] (nom over tokens);
//! [`check`] type-checks it and lowers it to the IR, which must pass
//! `Program::validate`. Any input, however malformed, gives a program or
//! diagnostics: never a panic, and recursion is bounded by
//! [`parse::MAX_NESTING`].
//!
//! ```
//! let p = p4::fairnic();
//! assert!(p.table("l2_fwd").is_some());
//! ```

#![forbid(unsafe_code)]

pub mod ast;
pub mod check;
pub mod diag;
pub mod lexer;
pub mod parse;
pub mod source;

pub use diag::Diagnostic;

use dataplane::pipeline::Program;
use diag::Files;
use source::{Loader, Origin};
use std::path::{Path, PathBuf};

/// The device pipeline's source, built in.
pub const FAIRNIC_P4: &str = include_str!("../programs/fairnic.p4");

/// Compile `source`, named `file_name` in diagnostics (its stem names the
/// program). `#include`s are found in `p4/include` (and the built-in
/// `fairnic_arch.p4`); nothing else on disk is read.
pub fn compile_str(source: &str, file_name: &str) -> Result<Program, Vec<Diagnostic>> {
    compile(source, file_name, Origin::Memory, &[])
}

/// Compile the file at `path`; its `#include "..."`s are also looked for
/// next to it.
pub fn compile_file(path: &Path) -> Result<Program, Vec<Diagnostic>> {
    compile_file_with(path, &[])
}

/// Compile the file at `path`, looking for `#include`s next to the
/// including file, then in `include_dirs` in order (`p4c-fairnic -I`),
/// then in the compiler's own include directory and its built-in
/// `fairnic_arch.p4`.
pub fn compile_file_with(path: &Path, include_dirs: &[PathBuf]) -> Result<Program, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| vec![whole_file(&name, format!("cannot read: {e}"))])?;
    let text = String::from_utf8(text).map_err(|_| vec![whole_file(&name, "not UTF-8 text".into())])?;
    compile(&text, &name, Origin::Disk(path.to_path_buf()), include_dirs)
}

/// The device pipeline, compiled from the built-in `programs/fairnic.p4`.
///
/// # Panics
/// If the shipped program does not compile (a test guarantees it does).
pub fn fairnic() -> Program {
    match compile_str(FAIRNIC_P4, "fairnic.p4") {
        Ok(p) => p,
        Err(d) => {
            let lines: Vec<String> = d.iter().map(Diagnostic::to_string).collect();
            panic!("programs/fairnic.p4 does not compile:\n{}", lines.join("\n"))
        }
    }
}

fn whole_file(file: &str, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: 1,
        column: 1,
        message,
    }
}

fn compile(
    source: &str,
    file_name: &str,
    origin: Origin,
    include_dirs: &[PathBuf],
) -> Result<Program, Vec<Diagnostic>> {
    let mut loader = Loader::with_include_dirs(include_dirs.to_vec());
    let toks = loader.load_main(source, file_name, origin);
    let files: &Files = &loader.files;
    let toks = toks.map_err(|d| vec![files.diagnostic(&d)])?;
    let decls = parse::parse(&toks).map_err(|d| vec![files.diagnostic(&d)])?;
    let eof = toks.last().map(|t| t.span).unwrap_or_default();
    let stem = Path::new(file_name)
        .file_stem()
        .map_or_else(|| file_name.to_string(), |s| s.to_string_lossy().into_owned());
    let program = check::lower(&decls, &stem, eof).map_err(|ds| files.diagnostics(&ds))?;
    // What the device would refuse whole: an image larger than it takes.
    let bytes = program.to_image().len();
    if bytes > dataplane::pipeline::limits::IMAGE_BYTES as usize {
        return Err(vec![whole_file(
            file_name,
            format!(
                "the program's image is {bytes} bytes; the device takes at most {} (fewer tables, actions or statements)",
                dataplane::pipeline::limits::IMAGE_BYTES
            ),
        )]);
    }
    Ok(program)
}
