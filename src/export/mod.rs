//! Exporting compiled nets to other formats: ONNX ([`onnx::export`]), written through the
//! protobuf schema subset of [`onnx_proto`]. docs/onnx.md describes the mapping of every
//! construct and how the export is checked against ONNX Runtime.

pub mod onnx;
mod onnx_build;
mod onnx_loop;
mod onnx_ops;
pub mod onnx_proto;
