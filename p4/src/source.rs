//! Loading a program: the main source and the files it `#include`s,
//! lexed and spliced into one token stream (as a C preprocessor would).
//!
//! `#include "f"` looks in the including file's directory (when it came
//! from disk), then in each `-I` directory in order, then in `p4/include`
//! of the tree the compiler was built from; `#include <f>` skips the
//! first. `fairnic_arch.p4` is also built into the compiler, so it is
//! found wherever the compiler is installed. Another target's
//! architecture (`core.p4`, `v1model.p4`, `psa.p4`, ...) is not found, and
//! the error says what fairnic's is and how its `main` reads. A file is included once: a
//! second `#include` of it is skipped (there is no `#ifndef` to guard
//! with). Only regular files of at most 4 MiB are read, and `p4/include`
//! is searched only for relative names that do not climb out of it.

use crate::diag::{Diag, Files, Span};
use crate::lexer::{lex, Tok, Token};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The architecture include's name.
pub const ARCH_NAME: &str = "fairnic_arch.p4";
/// The architecture include, built in.
pub const ARCH_SOURCE: &str = include_str!("../include/fairnic_arch.p4");
/// `p4/include` of the source tree this compiler was built from.
pub const INCLUDE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include");

const MAX_FILE_BYTES: u64 = 4 << 20;
const MAX_INCLUDE_DEPTH: usize = 16;
/// Tokens of a whole program, all files together.
const MAX_TOKENS: usize = 1 << 21;

/// Where a source came from.
#[derive(Debug, Clone)]
pub enum Origin {
    Disk(PathBuf),
    /// Built into the compiler.
    Embedded,
    /// Handed to [`crate::compile_str`].
    Memory,
}

/// A file found for an `#include`.
struct Found {
    /// Identity, for include-once.
    key: String,
    display: String,
    origin: Origin,
    text: String,
}

/// Reads the main source and its includes into one token stream.
#[derive(Debug)]
pub struct Loader {
    pub files: Files,
    seen: HashSet<String>,
    out: Vec<Token>,
    /// Where `#include`s are looked for after the including file's
    /// directory, in order.
    include_dirs: Vec<PathBuf>,
}

impl Default for Loader {
    fn default() -> Self {
        Loader::with_include_dirs(Vec::new())
    }
}

/// Read `p` if it is a regular file. `Ok(None)`: nothing there.
fn read_file(p: &Path) -> Result<Option<String>, String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => {}
        _ => return Ok(None),
    }
    let f = std::fs::File::open(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("`{}` is larger than {MAX_FILE_BYTES} bytes", p.display()));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("`{}` is not UTF-8 text", p.display()))
}

fn disk_key(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

impl Loader {
    /// A loader that looks for includes in `dir` instead of `p4/include`.
    pub fn with_include_dir(dir: PathBuf) -> Loader {
        Loader::searching(vec![dir])
    }

    /// A loader that looks for includes in `dirs` (`-I`), in order, then
    /// in `p4/include`.
    pub fn with_include_dirs(mut dirs: Vec<PathBuf>) -> Loader {
        dirs.push(PathBuf::from(INCLUDE_DIR));
        Loader::searching(dirs)
    }

    fn searching(include_dirs: Vec<PathBuf>) -> Loader {
        Loader {
            files: Files::default(),
            seen: HashSet::new(),
            out: Vec::new(),
            include_dirs,
        }
    }

    /// Load the main source `text` named `name`.
    pub fn load_main(&mut self, text: &str, name: &str, origin: Origin) -> Result<Vec<Token>, Diag> {
        let key = match &origin {
            Origin::Disk(p) => disk_key(p),
            Origin::Embedded => format!("<embedded>/{name}"),
            Origin::Memory => format!("<memory>/{name}"),
        };
        self.seen.insert(key);
        let file = self.add_file(name.to_string(), Span::default())?;
        self.load(text, file, &origin, 0)?;
        let eof = self.out.last().map(|t| t.span).unwrap_or_default();
        if self.out.last().map(|t| &t.tok) != Some(&Tok::Eof) {
            self.out.push(Token {
                tok: Tok::Eof,
                span: eof,
            });
        }
        Ok(std::mem::take(&mut self.out))
    }

    fn add_file(&mut self, name: String, at: Span) -> Result<u16, Diag> {
        self.files
            .add(name)
            .ok_or_else(|| Diag::new(at, "too many included files"))
    }

    /// Lex `text` (file number `file`) and append its tokens, splicing
    /// includes in; the Eof token is appended only for the main file.
    fn load(&mut self, text: &str, file: u16, origin: &Origin, depth: usize) -> Result<(), Diag> {
        let toks = lex(text, file)?;
        if self.out.len().saturating_add(toks.len()) > MAX_TOKENS {
            let at = toks.first().map(|t| t.span).unwrap_or_default();
            return Err(Diag::new(
                at,
                format!("program too large (more than {MAX_TOKENS} tokens)"),
            ));
        }
        for t in toks {
            match t.tok {
                Tok::Include { path, angle } => self.include(&path, angle, origin, t.span, depth)?,
                Tok::Eof if depth > 0 => {}
                _ => self.out.push(t),
            }
        }
        Ok(())
    }

    fn include(&mut self, path: &str, angle: bool, from: &Origin, at: Span, depth: usize) -> Result<(), Diag> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(Diag::new(
                at,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"),
            ));
        }
        if path.contains('\0') {
            return Err(Diag::new(at, "bad include file name"));
        }
        let found = find(path, angle, from, &self.include_dirs).map_err(|m| Diag::new(at, m))?;
        let Some(found) = found else {
            return Err(Diag::new(at, not_found(path)));
        };
        if !self.seen.insert(found.key) {
            return Ok(());
        }
        let file = self.add_file(found.display, at)?;
        self.load(&found.text, file, &found.origin, depth + 1)
    }
}

/// Whether `p` is relative and never climbs (`..`).
fn stays_inside(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
}

/// Look for an include: the including file's directory (quoted form, disk
/// sources only), `include_dirs` in order, then the built-in architecture
/// file.
fn find(path: &str, angle: bool, from: &Origin, include_dirs: &[PathBuf]) -> Result<Option<Found>, String> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let (false, Origin::Disk(p)) = (angle, from) {
        dirs.push(p.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    // The include directories serve plain names only: nothing outside
    // them is read for a source that did not come from disk (a
    // fuzzer's, say).
    if stays_inside(Path::new(path)) {
        dirs.extend(include_dirs.iter().cloned());
    }
    for d in dirs {
        let p = d.join(path);
        if let Some(text) = read_file(&p)? {
            return Ok(Some(Found {
                key: disk_key(&p),
                display: p.display().to_string(),
                origin: Origin::Disk(p),
                text,
            }));
        }
    }
    if path == ARCH_NAME {
        return Ok(Some(Found {
            key: format!("<embedded>/{ARCH_NAME}"),
            display: ARCH_NAME.to_string(),
            origin: Origin::Embedded,
            text: ARCH_SOURCE.to_string(),
        }));
    }
    Ok(None)
}

/// Architecture includes of other P4 targets.
const FOREIGN_ARCHS: [&str; 10] = [
    "core.p4",
    "v1model.p4",
    "psa.p4",
    "pna.p4",
    "tna.p4",
    "t2na.p4",
    "ebpf_model.p4",
    "xdp_model.p4",
    "ubpf_model.p4",
    "dpdk/pna.p4",
];

/// What a missing include is told: for another target's architecture,
/// fairnic's own and the skeleton of its `main`.
fn not_found(path: &str) -> String {
    if !FOREIGN_ARCHS.contains(&path) {
        return format!("cannot find include file `{path}` (looked next to the including file, in each -I directory and in the compiler's own include directory)");
    }
    let what = if path == "core.p4" {
        "`core.p4` is p4c's core library: fairnic's architecture file declares what a fairnic program uses of it"
            .to_string()
    } else {
        format!("`{path}` is another target's architecture")
    };
    format!(
        "{what}. fairnic has one architecture, `fairnic_arch.p4` (built into the compiler): write \
         `#include <fairnic_arch.p4>` instead, and end the program with its package:\n\
         \n    parser MyParser(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{ ... }}\n\
         \x20   control MyIngress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{ ... }}\n\
         \x20   control MyDeparser(packet_out pkt, in headers_t hdr) {{ ... }}\n\
         \x20   FairnicPipeline(MyParser(), MyIngress(), MyDeparser()) main;"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_the_architecture_once() {
        let mut l = Loader::default();
        let src = "#include <fairnic_arch.p4>\n#include \"fairnic_arch.p4\"\nx";
        let toks = l.load_main(src, "t.p4", Origin::Memory).unwrap();
        let n = toks
            .iter()
            .filter(|t| t.tok == Tok::Word("standard_metadata_t".into()))
            .count();
        assert!(n >= 1);
        let again = {
            let mut l2 = Loader::default();
            let t = l2
                .load_main("#include <fairnic_arch.p4>\nx", "t.p4", Origin::Memory)
                .unwrap();
            t.len()
        };
        assert_eq!(toks.len(), again);
        assert_eq!(toks.last().map(|t| &t.tok), Some(&Tok::Eof));
    }

    #[test]
    fn missing_include_is_an_error_at_the_directive() {
        let mut l = Loader::default();
        let e = l
            .load_main("\n  #include <nope.p4>\n", "t.p4", Origin::Memory)
            .unwrap_err();
        assert_eq!((e.span.line, e.span.col), (2, 3));
        assert!(e.msg.contains("cannot find include file `nope.p4`"));
    }

    #[test]
    fn the_built_in_architecture_needs_no_file_system() {
        let mut l = Loader::with_include_dir(PathBuf::from("/nonexistent/include"));
        let toks = l.load_main(crate::FAIRNIC_P4, "fairnic.p4", Origin::Memory).unwrap();
        assert_eq!(l.files.name(1), ARCH_NAME);
        let decls = crate::parse::parse(&toks).unwrap();
        let p = crate::check::lower(&decls, "fairnic", Span::default()).unwrap();
        assert_eq!(p, crate::fairnic());
        let on_disk = std::fs::read_to_string(Path::new(INCLUDE_DIR).join(ARCH_NAME)).unwrap();
        assert_eq!(on_disk, ARCH_SOURCE);
    }

    #[test]
    fn devices_are_not_read() {
        let mut l = Loader::default();
        let e = l
            .load_main("#include </dev/zero>\n", "t.p4", Origin::Memory)
            .unwrap_err();
        assert!(e.msg.contains("cannot find"));
        let mut l = Loader::default();
        let e = l
            .load_main("#include <../Cargo.toml>\n", "t.p4", Origin::Memory)
            .unwrap_err();
        assert!(e.msg.contains("cannot find"));
    }
}
