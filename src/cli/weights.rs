//! `netc init` and `netc weights` (being written).

/// Arguments of `netc init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The .net file.
    pub file: std::path::PathBuf,
}

/// Arguments of `netc weights`.
#[derive(clap::Args, Debug)]
pub struct WeightsArgs {
    /// The .net file.
    pub file: std::path::PathBuf,
}

/// Runs `netc init`; returns the exit code.
pub fn run_init(args: &InitArgs) -> i32 {
    let _ = args;
    eprintln!("error: `netc init` is not implemented yet");
    2
}

/// Runs `netc weights`; returns the exit code.
pub fn run_weights(args: &WeightsArgs) -> i32 {
    let _ = args;
    eprintln!("error: `netc weights` is not implemented yet");
    2
}
