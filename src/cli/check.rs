//! `netc check FILE…`: syntax, import, name and argument checks.

use super::{ColorChoice, MessageFormat};

use std::path::PathBuf;

/// Arguments of `netc check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The .net files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormat,
    /// When to colour human output.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorChoice,
    /// Treat warnings as errors (exit 1 when any warning is reported).
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Runs the check and returns the exit code.
pub fn run(args: &CheckArgs) -> i32 {
    let reporter = super::output::Reporter::new(args.message_format, args.color);
    let mut errors = 0usize;
    let mut warnings = 0usize;
    let mut io_failure = false;
    for path in &args.files {
        let (program, diags) = crate::check_program(crate::syntax::loader::load(path));
        io_failure |= diags.iter().any(|d| d.code == crate::diagnostics::Code::Io);
        reporter.emit_all(&diags, &program.sources);
        errors += diags.iter().filter(|d| d.is_error()).count();
        warnings += diags.iter().filter(|d| !d.is_error()).count();
    }
    if args.message_format == MessageFormat::Human {
        let files = args.files.len();
        let s = if files == 1 { "" } else { "s" };
        if errors + warnings == 0 {
            eprintln!("checked {files} file{s}: no problems");
        } else {
            eprintln!(
                "checked {files} file{s}: {errors} error{}, {warnings} warning{}",
                plural(errors),
                plural(warnings)
            );
        }
    }
    if io_failure {
        2
    } else if errors > 0 || (args.deny_warnings && warnings > 0) {
        1
    } else {
        0
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
