//! The `netc` binary: everything lives in [`netc::cli`].
fn main() {
    std::process::exit(netc::cli::run());
}
