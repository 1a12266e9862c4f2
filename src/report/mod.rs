//! Reports about compiled nets for people and tools: the layer table ([`table`]) in text
//! and JSON. Reports read the IR only; the counting conventions are in
//! `docs/counting.md`.

pub mod table;
