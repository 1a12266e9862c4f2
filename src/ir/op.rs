//! The closed set of IR operations with their typed attributes, and the cost (multiply-adds)
//! of each. Shape rules live in [`crate::passes::infer_shapes`], one match arm per op.
//!
//! Adding an op is a compile error in every pass that must handle it: no match over [`Op`]
//! in the compiler has a wildcard arm.

use super::graph::{ParamId, Region};
use super::shape::{Poly, TensorType};
use std::fmt::Write as _;

/// One IR operation. The inputs of a node are its incoming edges in port order; what each
/// port means is documented on the variant.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Region input number `index` (a net input, or a loop body's state or step input).
    /// No inputs.
    Input {
        /// Position among the region's inputs.
        index: usize,
        /// The source name (`x`, `h`, `c`, …).
        name: String,
        /// The declared type.
        ty: TensorType,
    },
    /// The value of a parameter of the graph's table (weights, fixed kernels, running
    /// statistics). No inputs. A parameter is read by at most one `Param` node per region;
    /// every use of it (every step of a loop) goes through that node.
    Param(ParamId),
    /// A constant tensor of the node's output type with every element equal to `value`
    /// (`zeros[h]`, the `1` of `1 - z`). No inputs.
    Fill {
        /// The element value.
        value: f64,
        /// The produced type.
        ty: TensorType,
    },
    /// 2-D convolution. Inputs: `x [N, C, H, W]`, `weight [O, C/groups, kh, kw]`, optional
    /// `bias [O]`. Output `[N, O, out_h, out_w]`.
    Conv2d(Conv2d),
    /// Max pooling of each channel. Input `[N, C, H, W]`.
    MaxPool2d(Pool2d),
    /// Average pooling of each channel. Input `[N, C, H, W]`.
    AvgPool2d(Pool2d),
    /// Average over all positions: `[N, C, H, W]` → `[N, C, 1, 1]`.
    GlobalAvgPool,
    /// Maximum over all positions: `[N, C, H, W]` → `[N, C, 1, 1]`.
    GlobalMaxPool,
    /// Local response normalisation across channels. Input `[N, C, …]`, same shape out.
    Lrn {
        /// Channels in the window.
        size: u64,
        /// Scale.
        alpha: f64,
        /// Exponent.
        beta: f64,
        /// Offset.
        k: f64,
    },
    /// Batch normalisation per channel (axis 1). Inputs: `x [N, C, …]`, `scale [C]`,
    /// `shift [C]`, `running_mean [C]`, `running_var [C]`. Same shape out.
    BatchNorm {
        /// Added to the variance.
        eps: f64,
    },
    /// Fully connected layer on the last axis. Inputs: `x [N, …, F]`, `weight [U, F]`,
    /// optional `bias [U]`. Output `[N, …, U]`.
    Dense,
    /// Matrix product on the last two axes: `[…, M, K] x […, K, P]` → `[…, M, P]`, the
    /// leading axes broadcast.
    MatMul,
    /// Embedding lookup. Inputs: integer `ids [N, …]`, `table [V, D]`. Output `[N, …, D]`.
    Embed,
    /// `[N, d1, d2, …]` → `[N, d1·d2·…]`.
    Flatten,
    /// `[N, C, H, W]` → `[N, H·W·C]` in channels-last order: element `(n, c, h, w)` goes to
    /// `(n, (h·W + w)·C + c)`. Set by [`crate::passes::layout`] in place of a conversion and
    /// a `flatten` before a dense layer, whose weight columns it permutes to match: on an
    /// NHWC value it is a view.
    FlattenChannelsLast,
    /// Reinterprets the input with `shape` (same number of elements).
    Reshape {
        /// The full output shape, batch axis included.
        shape: Vec<super::shape::Dim>,
    },
    /// Concatenation of two or more inputs on `axis`; the other axes must be equal.
    Concat {
        /// The axis joined on.
        axis: usize,
        /// Set by concat elimination ([`crate::passes::concat_in_place`]): every input is
        /// computed by its producer straight into its slice of this node's output buffer,
        /// so the node itself copies nothing. The memory plan must honour it.
        in_place: bool,
    },
    /// Indices `start..end` of `axis`.
    Slice {
        /// The sliced axis.
        axis: usize,
        /// First index.
        start: u64,
        /// One past the last index.
        end: u64,
    },
    /// Elementwise sum of two or more inputs, broadcasting.
    Add,
    /// Elementwise difference of two inputs, broadcasting.
    Sub,
    /// Elementwise product of two or more inputs, broadcasting.
    Mul,
    /// Elementwise quotient of two inputs, broadcasting.
    Div,
    /// Elementwise negation.
    Neg,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Normalised exponentials along `axis`.
    Softmax {
        /// The normalised axis.
        axis: usize,
    },
    /// Logarithm of the softmax along `axis`.
    LogSoftmax {
        /// The normalised axis.
        axis: usize,
    },
    /// Inverted dropout while training; the identity at inference.
    Dropout {
        /// Probability of dropping a unit.
        rate: f64,
    },
    /// Mean over `axis`, which is removed.
    Mean {
        /// The reduced axis.
        axis: usize,
    },
    /// Sum over `axis`, which is removed.
    Sum {
        /// The reduced axis.
        axis: usize,
    },
    /// Mean cross-entropy of `logits [N, …, C]` against integer `labels [N, …]` or
    /// probabilities of the logits' shape: a scalar `[]`.
    SoftmaxCrossEntropy,
    /// Mean squared error of two tensors of one shape: a scalar `[]`.
    Mse,
    /// A recurrence: the body region runs once per time step (see [`Loop`]).
    Loop(Box<Loop>),
    /// A fused group: its body is computed as one kernel (see [`Group`]).
    Group(Box<Group>),
    /// The identity on values, storing the result in layout `to`: a conversion between
    /// the storage orders of a 4-D activation, inserted by [`crate::passes::layout`].
    Relayout {
        /// The layout of the result.
        to: Layout,
    },
}

/// The storage order of a 4-D activation `[N, C, H, W]` (the IR's indices are always in
/// that logical order; the layout says how the elements lie in memory). Values without a
/// recorded layout ([`super::graph::Region::layouts`]) are row-major, i.e. NCHW.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    /// Row-major in the logical order: `[N, C, H, W]`.
    #[default]
    Nchw,
    /// Channels innermost: memory is row-major `[N, H, W, C]`.
    Nhwc,
}

impl Layout {
    /// `nchw` or `nhwc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        }
    }

    /// The logical axes in memory order (outermost first).
    pub fn memory_order(self) -> [usize; 4] {
        match self {
            Layout::Nchw => [0, 1, 2, 3],
            Layout::Nhwc => [0, 2, 3, 1],
        }
    }
}

/// What kind of loop nest a fused group is; the rules that form each are in
/// [`crate::passes::fuse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// One contraction (`conv2d`, `dense` or `matmul`) with an epilogue: elementwise ops
    /// applied to each output element as it is produced (bias, activation, residual add,
    /// scale).
    Contraction,
    /// Elementwise ops over one iteration space (the shape of the group's outputs), as one
    /// loop; inputs are read with broadcasting or through a slice.
    Elementwise,
    /// A window pool with the activation before it.
    Pool,
}

impl GroupKind {
    /// `contraction`, `elementwise` or `pool`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Contraction => "contraction",
            GroupKind::Elementwise => "elementwise",
            GroupKind::Pool => "pool",
        }
    }
}

/// A fused group of ops, computed as one kernel.
///
/// - Node inputs: the values the group reads from outside, in the order of the body's
///   `Input` nodes (whose types they have).
/// - Body: the fused ops, with their own `Param` and `Fill` nodes.
/// - Node outputs: the body's outputs, in order: every value of the group read outside it.
///
/// The body means exactly what it would mean inlined into the enclosing region; the group
/// only says that codegen emits it as one loop nest, with the values inside it never
/// written to memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The loop nest.
    pub kind: GroupKind,
    /// The fused ops.
    pub body: Region,
}

/// Attributes of [`Op::Conv2d`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Kernel `[kh, kw]`.
    pub kernel: [u64; 2],
    /// Stride `[sh, sw]`.
    pub stride: [u64; 2],
    /// Zero padding `[top, left, bottom, right]` (the order of ONNX's `pads`).
    pub pad: [u64; 4],
    /// Dilation `[dh, dw]`.
    pub dilation: [u64; 2],
    /// Channel groups.
    pub groups: u64,
}

/// Attributes of the windowed pools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// Window `[kh, kw]`.
    pub window: [u64; 2],
    /// Stride `[sh, sw]`.
    pub stride: [u64; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pad: [u64; 4],
    /// Round the output size up (PyTorch's `ceil_mode`, Caffe's pooling).
    pub ceil: bool,
    /// Average pools: whether padded zeros count in the average.
    pub count_pad: bool,
}

/// Which recurrence a loop implements; the report shows it as the layer's op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoopKind {
    /// The built-in `rnn`.
    Rnn,
    /// The built-in `lstm`.
    Lstm,
    /// The built-in `gru`.
    Gru,
    /// `unroll` of the user cell with this name.
    Cell(String),
}

impl LoopKind {
    /// The layer name: `rnn`, `lstm`, `gru` or `unroll`.
    pub fn layer_name(&self) -> &'static str {
        match self {
            LoopKind::Rnn => "rnn",
            LoopKind::Lstm => "lstm",
            LoopKind::Gru => "gru",
            LoopKind::Cell(_) => "unroll",
        }
    }
}

/// What a loop returns besides its final states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// Every step's emitted value, stacked on axis 1: `[N, T, …]`.
    All,
    /// The last step's emitted value: `[N, …]`.
    Last,
    /// Nothing: only the final states.
    State,
}

impl Emit {
    /// The keyword: `all`, `last` or `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Emit::All => "all",
            Emit::Last => "last",
            Emit::State => "state",
        }
    }
}

/// A scan over time (the design of ONNX's `Scan`): `body` is one step, run `steps` times
/// with its parameters shared by every step.
///
/// - Node inputs: the `states` initial states `[N, …]`, then the sequence input: `[N, T, …]`
///   when `scan` (step `t` sees index `t` of axis 1), or `[N, …]` fed whole to every step
///   when not (one to many, `steps:`).
/// - Body inputs (its `Input` nodes, in order): the states, then the step input.
/// - Body outputs: the new states (each of its state's type), then the emitted value
///   (absent when `emit` is [`Emit::State`]).
/// - Node outputs: the final states, then (unless `emit` is `State`) the emitted values of
///   all steps `[N, T, …]` or of the last step `[N, …]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Loop {
    /// The recurrence.
    pub kind: LoopKind,
    /// One time step.
    pub body: Region,
    /// Number of steps: the `T` axis of the input, or `steps:`.
    pub steps: super::shape::Dim,
    /// Number of carried states.
    pub states: usize,
    /// Whether the sequence input is scanned over axis 1 (else fed whole at every step).
    pub scan: bool,
    /// What the loop returns.
    pub emit: Emit,
}

impl Op {
    /// The op's name in the IR dump (`conv2d`, `maxpool2d`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param(_) => "param",
            Op::Fill { .. } => "fill",
            Op::Conv2d(_) => "conv2d",
            Op::MaxPool2d(_) => "maxpool2d",
            Op::AvgPool2d(_) => "avgpool2d",
            Op::GlobalAvgPool => "global_avgpool",
            Op::GlobalMaxPool => "global_maxpool",
            Op::Lrn { .. } => "lrn",
            Op::BatchNorm { .. } => "batchnorm",
            Op::Dense => "dense",
            Op::MatMul => "matmul",
            Op::Embed => "embed",
            Op::Flatten => "flatten",
            Op::FlattenChannelsLast => "flatten_channels_last",
            Op::Reshape { .. } => "reshape",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Neg => "neg",
            Op::Relu => "relu",
            Op::Sigmoid => "sigmoid",
            Op::Tanh => "tanh",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Dropout { .. } => "dropout",
            Op::Mean { .. } => "mean",
            Op::Sum { .. } => "sum",
            Op::SoftmaxCrossEntropy => "softmax_cross_entropy",
            Op::Mse => "mse",
            Op::Loop(_) => "loop",
            Op::Group(_) => "group",
            Op::Relayout { .. } => "relayout",
        }
    }

    /// The name of the surface layer this op implements, as the layer table shows it
    /// (`conv`, `maxpool`, `lstm`, …).
    pub fn layer_name(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv",
            Op::MaxPool2d(_) => "maxpool",
            Op::AvgPool2d(_) => "avgpool",
            Op::Loop(l) => l.kind.layer_name(),
            Op::Group(_) => "group",
            Op::Relayout { .. } => "relayout",
            Op::Input { .. }
            | Op::Param(_)
            | Op::Fill { .. }
            | Op::GlobalAvgPool
            | Op::GlobalMaxPool
            | Op::Lrn { .. }
            | Op::BatchNorm { .. }
            | Op::Dense
            | Op::MatMul
            | Op::Embed
            | Op::Flatten
            | Op::FlattenChannelsLast
            | Op::Reshape { .. }
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Neg
            | Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Dropout { .. }
            | Op::Mean { .. }
            | Op::Sum { .. }
            | Op::SoftmaxCrossEntropy
            | Op::Mse => self.name(),
        }
    }

    /// The attributes as printed in the IR dump, `{kernel=[5,5], stride=[1,1]}`; empty for
    /// ops without attributes. Loops print their attributes and body separately.
    pub fn attributes(&self) -> String {
        let mut s = String::new();
        let mut put = |k: &str, v: String| {
            if !s.is_empty() {
                s.push_str(", ");
            }
            let _ = write!(s, "{k}={v}");
        };
        match self {
            Op::Input { index, name, .. } => {
                put("index", index.to_string());
                put("name", format!("{name:?}"));
            }
            Op::Fill { value, .. } => put("value", fmt_f64(*value)),
            Op::Conv2d(c) => {
                put("kernel", list(&c.kernel));
                put("stride", list(&c.stride));
                put("pad", list(&c.pad));
                if c.dilation != [1, 1] {
                    put("dilation", list(&c.dilation));
                }
                if c.groups != 1 {
                    put("groups", c.groups.to_string());
                }
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                put("window", list(&p.window));
                put("stride", list(&p.stride));
                put("pad", list(&p.pad));
                if p.ceil {
                    put("ceil", "true".into());
                }
                if matches!(self, Op::AvgPool2d(_)) && !p.count_pad {
                    put("count_pad", "false".into());
                }
            }
            Op::Lrn {
                size,
                alpha,
                beta,
                k,
            } => {
                put("size", size.to_string());
                put("alpha", fmt_f64(*alpha));
                put("beta", fmt_f64(*beta));
                put("k", fmt_f64(*k));
            }
            Op::BatchNorm { eps } => put("eps", fmt_f64(*eps)),
            Op::Reshape { shape } => {
                let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
                put("shape", format!("[{}]", dims.join(",")));
            }
            Op::Concat { axis, in_place } => {
                put("axis", axis.to_string());
                if *in_place {
                    put("in_place", "true".into());
                }
            }
            Op::Softmax { axis }
            | Op::LogSoftmax { axis }
            | Op::Mean { axis }
            | Op::Sum { axis } => put("axis", axis.to_string()),
            Op::Slice { axis, start, end } => {
                put("axis", axis.to_string());
                put("start", start.to_string());
                put("end", end.to_string());
            }
            Op::Dropout { rate } => put("rate", fmt_f64(*rate)),
            Op::Loop(l) => {
                if let LoopKind::Cell(name) = &l.kind {
                    put("cell", name.clone());
                }
                put("steps", l.steps.to_string());
                put("states", l.states.to_string());
                put("scan", l.scan.to_string());
                put("emit", l.emit.as_str().into());
            }
            Op::Group(g) => put("kind", g.kind.as_str().into()),
            Op::Relayout { to } => put("to", to.as_str().into()),
            Op::Param(_)
            | Op::GlobalAvgPool
            | Op::GlobalMaxPool
            | Op::Dense
            | Op::MatMul
            | Op::Embed
            | Op::Flatten
            | Op::FlattenChannelsLast
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Neg
            | Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::SoftmaxCrossEntropy
            | Op::Mse => {}
        }
        s
    }

    /// Multiply-adds for one example (the batch axis excluded), given the node's input and
    /// output types: convolutions, dense layers, matrix products, and the matrix products
    /// of recurrent steps times the number of steps; zero for everything else. `None` on
    /// overflow or when the types do not fit the op (which the verifier rules out).
    pub fn macs(&self, inputs: &[&TensorType], outputs: &[TensorType]) -> Option<Poly> {
        match self {
            Op::Conv2d(_) => {
                // out_c · out_h · out_w · (kh · kw · in_c / groups): the weight's
                // elements per output channel are exactly kh · kw · in_c / groups.
                let w = inputs.get(1)?;
                let per_out = super::shape::product(w.shape.dims().get(1..)?)?;
                outputs
                    .first()?
                    .shape
                    .elements_per_example()?
                    .checked_mul(&per_out)
            }
            Op::Dense => {
                let w = inputs.get(1)?;
                let f = w.shape.dims().get(1)?.to_poly()?;
                outputs
                    .first()?
                    .shape
                    .elements_per_example()?
                    .checked_mul(&f)
            }
            Op::MatMul => {
                let a = inputs.first()?;
                let k = a.shape.dims().last()?.to_poly()?;
                outputs
                    .first()?
                    .shape
                    .elements_per_example()?
                    .checked_mul(&k)
            }
            Op::Loop(l) => l.body.macs()?.checked_mul(&l.steps.to_poly()?),
            Op::Group(g) => g.body.macs(),
            Op::Relayout { .. } => Some(Poly::zero()),
            Op::Input { .. }
            | Op::Param(_)
            | Op::Fill { .. }
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::GlobalAvgPool
            | Op::GlobalMaxPool
            | Op::Lrn { .. }
            | Op::BatchNorm { .. }
            | Op::Embed
            | Op::Flatten
            | Op::FlattenChannelsLast
            | Op::Reshape { .. }
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Neg
            | Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Dropout { .. }
            | Op::Mean { .. }
            | Op::Sum { .. }
            | Op::SoftmaxCrossEntropy
            | Op::Mse => Some(Poly::zero()),
        }
    }

    /// Whether the output of this op counts in the activation total (the lecture's VGG
    /// table: the input, and each conv, pool, dense and concat output; also embeddings,
    /// matrix products and recurrent outputs, which are new tensors too). Elementwise ops,
    /// activations, normalisations and reshapes are taken as done in place.
    pub fn counts_as_activation(&self) -> bool {
        match self {
            Op::Input { .. }
            | Op::Conv2d(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::GlobalAvgPool
            | Op::GlobalMaxPool
            | Op::Dense
            | Op::MatMul
            | Op::Embed
            | Op::Concat { .. }
            | Op::Loop(_)
            | Op::Group(_) => true,
            Op::Param(_)
            | Op::Fill { .. }
            | Op::Relayout { .. }
            | Op::Lrn { .. }
            | Op::BatchNorm { .. }
            | Op::Flatten
            | Op::FlattenChannelsLast
            | Op::Reshape { .. }
            | Op::Slice { .. }
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Neg
            | Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Dropout { .. }
            | Op::Mean { .. }
            | Op::Sum { .. }
            | Op::SoftmaxCrossEntropy
            | Op::Mse => false,
        }
    }
}

fn list(xs: &[u64]) -> String {
    let parts: Vec<String> = xs.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// A float as the dump prints it: the shortest text that reads back to the same value.
pub fn fmt_f64(x: f64) -> String {
    let s = format!("{x:?}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}
