//! Writing to the terminal: results on stdout (a closed pipe ends the output quietly rather
//! than panicking), diagnostics through one [`Reporter`] that honours `--message-format` and
//! `--color`.

use super::{ColorChoice, MessageFormat};
use crate::diagnostics::{render, Diagnostic, Diagnostics, SourceMap};

/// `println!` that ignores a closed stdout (`netc weights … | head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use say;

/// Prints diagnostics as `--message-format` and `--color` say.
pub(crate) struct Reporter {
    format: MessageFormat,
    color: bool,
}

impl Reporter {
    pub(crate) fn new(format: MessageFormat, color: ColorChoice) -> Reporter {
        Reporter {
            format,
            color: color.enabled(),
        }
    }

    pub(crate) fn emit(&self, d: &Diagnostic, sources: &SourceMap) {
        match self.format {
            MessageFormat::Human => eprint!(
                "{}",
                render::human(d, sources, render::RenderOptions { color: self.color })
            ),
            MessageFormat::Json => say!("{}", render::json_line(d, sources)),
        }
    }

    pub(crate) fn emit_all(&self, ds: &Diagnostics, sources: &SourceMap) {
        for d in ds {
            self.emit(d, sources);
        }
    }
}
