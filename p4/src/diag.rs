//! Source positions and diagnostics: every error the front end reports is a
//! [`Diagnostic`] printed as `file:line:column: error: message`.
//!
//! Inside the compiler a position is a [`Span`] (a file number, line and
//! column) and an error is a [`Diag`] (a span and a message); [`Files`]
//! turns them into diagnostics carrying the file's name.

use std::fmt;

/// An error in a P4 source, with where it is (line and column are 1-based;
/// the column counts characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: error: {message}")]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// A position in a loaded source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Index into [`Files`].
    pub file: u16,
    pub line: u32,
    pub col: u32,
}

impl Span {
    /// Whether `next` starts right after this one-character token.
    pub fn touches(self, next: Span) -> bool {
        self.file == next.file && self.line == next.line && self.col.checked_add(1) == Some(next.col)
    }
}

/// An error inside the compiler, before it is given its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub span: Span,
    pub msg: String,
}

impl Diag {
    pub fn new(span: Span, msg: impl Into<String>) -> Diag {
        Diag { span, msg: msg.into() }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.span.line, self.span.col, self.msg)
    }
}

/// Shorthand for an internal result.
pub type DResult<T> = Result<T, Diag>;

/// Shorthand: an error at `span`.
pub fn err<T>(span: Span, msg: impl Into<String>) -> DResult<T> {
    Err(Diag::new(span, msg))
}

/// The names of the files a compilation loaded, indexed by [`Span::file`].
#[derive(Debug, Clone, Default)]
pub struct Files {
    names: Vec<String>,
}

impl Files {
    /// Register a file; its number, or None past `u16::MAX` files.
    pub fn add(&mut self, name: String) -> Option<u16> {
        let id = u16::try_from(self.names.len()).ok()?;
        self.names.push(name);
        Some(id)
    }

    pub fn name(&self, file: u16) -> &str {
        self.names.get(usize::from(file)).map_or("<unknown>", String::as_str)
    }

    /// The public form of `d`.
    pub fn diagnostic(&self, d: &Diag) -> Diagnostic {
        Diagnostic {
            file: self.name(d.span.file).to_string(),
            line: d.span.line,
            column: d.span.col,
            message: d.msg.clone(),
        }
    }

    pub fn diagnostics(&self, ds: &[Diag]) -> Vec<Diagnostic> {
        ds.iter().map(|d| self.diagnostic(d)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_file_line_column() {
        let mut f = Files::default();
        let id = f.add("a.p4".into()).unwrap();
        let d = f.diagnostic(&Diag::new(
            Span {
                file: id,
                line: 3,
                col: 7,
            },
            "oops",
        ));
        assert_eq!(d.to_string(), "a.p4:3:7: error: oops");
    }

    #[test]
    fn touches_only_the_next_column() {
        let a = Span {
            file: 0,
            line: 1,
            col: 4,
        };
        assert!(a.touches(Span { col: 5, ..a }));
        assert!(!a.touches(Span { col: 6, ..a }));
        assert!(!a.touches(Span { line: 2, col: 5, ..a }));
    }
}
