//! `netc export` (being written).

/// Arguments of `netc export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The .net file.
    pub file: std::path::PathBuf,
}

/// Runs the command; returns the exit code.
pub fn run(args: &ExportArgs) -> i32 {
    let _ = args;
    eprintln!("error: `netc export` is not implemented yet");
    2
}
