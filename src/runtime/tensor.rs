//! Runtime tensors: an n-dimensional array of `f32` values or of `i64` integers.
//!
//! The interpreter computes every float op in `f32` and keeps integer tensors (token ids,
//! labels) as `i64`, whatever integer width the net declares: an `i32` input is widened on
//! the way in. Arrays are ndarray's [`ArrayD`], row-major (C order) whenever they are built
//! by netc; views of other layouts are accepted everywhere.

use crate::ir::shape::DType;
use ndarray::ArrayD;

/// A tensor value at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// Floating point values (every float type of the IR is computed in `f32`).
    F32(ArrayD<f32>),
    /// Integer values (`i32` and `i64` of the IR).
    I64(ArrayD<i64>),
}

impl Tensor {
    /// The element type as stored: [`DType::F32`] or [`DType::I64`].
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::I64(_) => DType::I64,
        }
    }

    /// The shape, outermost axis first.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::I64(a) => a.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Tensor::F32(a) => a.len(),
            Tensor::I64(a) => a.len(),
        }
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The float array, if this is a float tensor.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Some(a),
            Tensor::I64(_) => None,
        }
    }

    /// The integer array, if this is an integer tensor.
    pub fn as_i64(&self) -> Option<&ArrayD<i64>> {
        match self {
            Tensor::I64(a) => Some(a),
            Tensor::F32(_) => None,
        }
    }

    /// Number of elements that are NaN or infinite (always 0 for integers).
    pub fn non_finite(&self) -> usize {
        match self {
            Tensor::F32(a) => a.iter().filter(|x| !x.is_finite()).count(),
            Tensor::I64(_) => 0,
        }
    }

    /// The type as the IR prints it: `f32[3,1,32,32]`.
    pub fn describe(&self) -> String {
        format!("{}{}", self.dtype().as_str(), shape_string(self.shape()))
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Tensor {
        Tensor::F32(a)
    }
}

impl From<ArrayD<i64>> for Tensor {
    fn from(a: ArrayD<i64>) -> Tensor {
        Tensor::I64(a)
    }
}

/// A concrete shape as the IR prints shapes: `[3,1,32,32]`.
pub fn shape_string(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// The storage type the interpreter uses for a declared element type: `F32` for floats,
/// `I64` for integers; `None` for types it does not run (`bool`).
pub fn storage(dtype: DType) -> Option<DType> {
    match dtype {
        DType::F16 | DType::F32 | DType::F64 => Some(DType::F32),
        DType::I32 | DType::I64 => Some(DType::I64),
        DType::Bool => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn describes_like_the_ir() {
        let t = Tensor::F32(ArrayD::zeros(IxDyn(&[3, 1, 2])));
        assert_eq!(t.describe(), "f32[3,1,2]");
        assert_eq!(t.len(), 6);
        let mut a = ArrayD::<f32>::zeros(IxDyn(&[4]));
        a[[1]] = f32::NAN;
        a[[2]] = f32::INFINITY;
        assert_eq!(Tensor::F32(a).non_finite(), 2);
        let i = Tensor::I64(ArrayD::zeros(IxDyn(&[2, 5])));
        assert_eq!(i.describe(), "i64[2,5]");
        assert_eq!(storage(DType::I32), Some(DType::I64));
    }
}
