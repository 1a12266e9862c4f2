//! The command line (being written).
/// Runs netc with the process arguments; returns the exit code.
pub fn run() -> i32 {
    0
}
