//! `netc lsp`: runs the language server ([`crate::lsp`]) on stdin/stdout.

/// Serves one editor over stdio and returns the exit code: 0 after an orderly shutdown, 1 when
/// the client exits without one, 2 when the connection fails.
pub fn run() -> i32 {
    match crate::lsp::run_stdio() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netc lsp: {e}");
            2
        }
    }
}
