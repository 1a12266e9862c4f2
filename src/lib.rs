//! netc: a compiler for declarative neural-network descriptions.
pub mod cli;
pub mod diagnostics;
pub mod syntax;
