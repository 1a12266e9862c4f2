//! Running nets: the reference interpreter over the IR, weights files, and reading and
//! writing the tensors a run consumes and produces.
//!
//! ```text
//! .net ──compile──▶ ir::Graph ─┐
//! W.safetensors ──weights::load(expected(graph))──▶ Weights ─┼─▶ interp::run ──▶ outputs
//! x.npy / photo.png / text.txt ──io──▶ Tensor (by input) ─┘          │
//!                                                     io::write_npy / write_png ◀──┘
//! ```
//!
//! # Library API
//!
//! ```no_run
//! # fn demo(graph: &netc::ir::graph::Graph) -> Result<(), netc::runtime::RunError> {
//! use netc::runtime::{interp, tensor::Tensor, weights};
//! use std::collections::BTreeMap;
//!
//! // Weights: deterministic initial values (or `weights::load(path, &expected)`).
//! let expected = weights::expected(graph);
//! let w = weights::init(&expected, 0);
//! // Inputs by the net's input names; outputs come back by output name.
//! let x = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[3, 1, 32, 32]));
//! let inputs = BTreeMap::from([("x".to_string(), Tensor::F32(x))]);
//! let outputs: BTreeMap<String, Tensor> = interp::run(graph, &w, &inputs)?;
//! # Ok(()) }
//! ```
//!
//! - [`interp::run`]`(graph, weights, inputs)` runs a net once; [`interp::Interpreter`]
//!   checks the weights once and runs many inputs. Errors are [`RunError`]s, each with a
//!   span (the input's declaration, the layer) and a [`RunError::diagnostic`].
//! - [`weights::expected`] lists the tensors a weights file must hold for a graph, with
//!   their initialisation; [`weights::init`], [`weights::load`], [`weights::to_bytes`].
//! - [`bind::inputs`] lists a net's declared inputs; [`bind::bind_inputs`] checks values
//!   against them.
//! - [`io`] reads `.npy`, images and text into [`tensor::Tensor`]s and writes `.npy` and
//!   PNG, atomically.
//!
//! Semantics: every op computes in `f32` (integers in `i64`) at inference: dropout is the
//! identity and batch normalisation uses its running statistics. The formula of each op
//! is documented on its kernel in [`kernels`].

pub mod arena;
pub mod bind;
pub mod derive;
pub mod error;
pub mod interp;
pub mod io;
pub mod kernels;
pub mod tensor;
pub mod weights;

pub use error::RunError;
pub use tensor::Tensor;
