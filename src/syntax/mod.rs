//! The front end: `.net` text → AST ([`parser`]), canonical printing ([`mod@print`]), the
//! catalogue of built-in layers ([`builtins`]), and name resolution with the checks that need
//! no shapes ([`resolve`]).

pub mod ast;
pub mod builtins;
pub mod loader;
mod parse_error;
pub mod parser;
pub mod print;
pub mod resolve;
