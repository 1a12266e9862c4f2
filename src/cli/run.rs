//! `netc run` (being written).

/// Arguments of `netc run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The .net file.
    pub file: std::path::PathBuf,
}

/// Runs the command; returns the exit code.
pub fn run(args: &RunArgs) -> i32 {
    let _ = args;
    eprintln!("error: `netc run` is not implemented yet");
    2
}
