//! Exporting compiled nets to other formats.

pub mod onnx_proto;
