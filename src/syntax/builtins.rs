//! The catalogue of built-in layers: their names, tensor inputs, parameters with types and
//! defaults, and one-line docs. Name resolution checks calls against it, lowering reads
//! argument defaults from it, and the language server offers it for completion and hover.
//!
//! The catalogue describes the *surface* language; each entry lowers to one or more IR ops.

/// How many tensor inputs a layer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// At least this many (concat).
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` inputs are accepted.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

/// The type of a layer argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgTy {
    /// A compile-time integer.
    Int,
    /// A compile-time real (integers accepted).
    Float,
    /// `true` or `false`.
    Bool,
    /// One of the listed symbols, written as a bare name (`same`, `last`, …).
    Sym(&'static [&'static str]),
    /// An integer, or an `[h, w]` pair.
    IntOrPair,
    /// An integer, an `[h, w]` pair, or one of the listed symbols (padding).
    IntPairOrSym(&'static [&'static str]),
    /// An integer, an `[h, w]` pair, or a constant array (a fixed kernel).
    IntPairOrConst,
    /// A list of integers (`shape: [N, 64, -1]`).
    IntList,
    /// A recurrent state value (the result of `emit: state`), or a tensor.
    State,
    /// A cell applied to its arguments: `lstm_cell(256)`.
    Cell,
}

impl ArgTy {
    /// How the type is described in messages and docs.
    pub fn describe(self) -> String {
        match self {
            ArgTy::Int => "an integer".into(),
            ArgTy::Float => "a number".into(),
            ArgTy::Bool => "`true` or `false`".into(),
            ArgTy::Sym(s) => one_of(s),
            ArgTy::IntOrPair => "an integer or an `[h, w]` pair".into(),
            ArgTy::IntPairOrSym(s) => {
                let syms: Vec<String> = s.iter().map(|x| format!("`{x}`")).collect();
                format!("an integer, an `[h, w]` pair, {}", one_of_words(&syms))
            }
            ArgTy::IntPairOrConst => "an integer, an `[h, w]` pair or a constant kernel".into(),
            ArgTy::IntList => "a list of integers".into(),
            ArgTy::State => "a recurrent state (from `emit: state`) or a tensor".into(),
            ArgTy::Cell => "a cell such as `lstm_cell(256)`".into(),
        }
    }
}

fn one_of(s: &[&str]) -> String {
    let quoted: Vec<String> = s.iter().map(|x| format!("`{x}`")).collect();
    one_of_words(&quoted)
}

fn one_of_words(quoted: &[String]) -> String {
    match quoted {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// The default of a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultValue {
    /// The argument must be given.
    Required,
    /// The argument may be omitted; the layer then behaves as its docs say.
    Absent,
    /// An integer default.
    Int(i64),
    /// A real default.
    Float(f64),
    /// A boolean default.
    Bool(bool),
    /// A symbol default.
    Sym(&'static str),
    /// Defaults to the value of another parameter (pooling's stride is its window).
    SameAs(&'static str),
}

/// One parameter of a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSig {
    /// Keyword name.
    pub name: &'static str,
    /// Accepted type.
    pub ty: ArgTy,
    /// Default.
    pub default: DefaultValue,
    /// Whether it may be given positionally (positional parameters come first).
    pub positional: bool,
    /// One line of documentation.
    pub doc: &'static str,
}

/// One built-in layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerSig {
    /// Name as written.
    pub name: &'static str,
    /// Tensor inputs.
    pub inputs: Arity,
    /// Parameters in positional order.
    pub params: &'static [ParamSig],
    /// One line of documentation.
    pub doc: &'static str,
}

impl LayerSig {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&'static ParamSig> {
        self.params.iter().find(|p| p.name == name)
    }

    /// A signature line such as `conv(filters, kernel:, stride: 1, …)`.
    pub fn signature(&self) -> String {
        let ps: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.default {
                DefaultValue::Required if p.positional => p.name.to_string(),
                DefaultValue::Required => format!("{}:", p.name),
                DefaultValue::Absent => format!("{}?", p.name),
                DefaultValue::Int(v) => format!("{}: {v}", p.name),
                DefaultValue::Float(v) => format!("{}: {v}", p.name),
                DefaultValue::Bool(v) => format!("{}: {v}", p.name),
                DefaultValue::Sym(s) => format!("{}: {s}", p.name),
                DefaultValue::SameAs(o) => format!("{}: {o}", p.name),
            })
            .collect();
        if ps.is_empty() {
            self.name.to_string()
        } else {
            format!("{}({})", self.name, ps.join(", "))
        }
    }
}

const fn req(name: &'static str, ty: ArgTy, doc: &'static str) -> ParamSig {
    ParamSig {
        name,
        ty,
        default: DefaultValue::Required,
        positional: true,
        doc,
    }
}

const fn kw(name: &'static str, ty: ArgTy, default: DefaultValue, doc: &'static str) -> ParamSig {
    ParamSig {
        name,
        ty,
        default,
        positional: false,
        doc,
    }
}

const fn opt_pos(
    name: &'static str,
    ty: ArgTy,
    default: DefaultValue,
    doc: &'static str,
) -> ParamSig {
    ParamSig {
        name,
        ty,
        default,
        positional: true,
        doc,
    }
}

/// Padding symbols of convolutions.
pub const PAD_SYMS: &[&str] = &["same", "valid"];
/// What an unrolled recurrence returns.
pub const EMIT_SYMS: &[&str] = &["all", "last", "state"];

const STRIDE: ParamSig = kw(
    "stride",
    ArgTy::IntOrPair,
    DefaultValue::Int(1),
    "step between windows",
);
const POOL_STRIDE: ParamSig = kw(
    "stride",
    ArgTy::IntOrPair,
    DefaultValue::SameAs("window"),
    "step between windows (default: the window)",
);
const PAD: ParamSig = kw(
    "pad",
    ArgTy::IntPairOrSym(PAD_SYMS),
    DefaultValue::Int(0),
    "zero padding on each side, or `same` / `valid`",
);
const CEIL: ParamSig = kw(
    "ceil",
    ArgTy::Bool,
    DefaultValue::Bool(false),
    "round the output size up (Caffe/GoogLeNet pooling)",
);
const AXIS_LAST: ParamSig = kw(
    "axis",
    ArgTy::Int,
    DefaultValue::Int(-1),
    "axis to normalise over",
);
const RECURRENT: &[ParamSig] = &[
    req("hidden", ArgTy::Int, "size of the hidden state"),
    kw(
        "emit",
        ArgTy::Sym(EMIT_SYMS),
        DefaultValue::Sym("all"),
        "`all` outputs [N, T, hidden], `last` the last step [N, hidden], `state` the final state",
    ),
    kw(
        "init",
        ArgTy::State,
        DefaultValue::Absent,
        "initial state (zeros when absent)",
    ),
    kw(
        "steps",
        ArgTy::Int,
        DefaultValue::Absent,
        "run this many steps on a [N, F] input fed at every step (one to many)",
    ),
];

const fn unary(name: &'static str, doc: &'static str) -> LayerSig {
    LayerSig {
        name,
        inputs: Arity::Exactly(1),
        params: &[],
        doc,
    }
}

/// Every built-in layer, sorted by name.
pub const LAYERS: &[LayerSig] = &[
    LayerSig {
        name: "add",
        inputs: Arity::AtLeast(2),
        params: &[],
        doc: "elementwise sum of its inputs (broadcasting)",
    },
    LayerSig {
        name: "avgpool",
        inputs: Arity::Exactly(1),
        params: &[
            req("window", ArgTy::IntOrPair, "window size"),
            POOL_STRIDE,
            PAD,
            CEIL,
            kw(
                "count_pad",
                ArgTy::Bool,
                DefaultValue::Bool(true),
                "count padded zeros in the average",
            ),
        ],
        doc: "average pooling over windows of each channel",
    },
    LayerSig {
        name: "batchnorm",
        inputs: Arity::Exactly(1),
        params: &[kw(
            "eps",
            ArgTy::Float,
            DefaultValue::Float(1e-5),
            "added to the variance",
        )],
        doc: "batch normalisation per channel: 2 trainable params (scale, shift) per channel plus running statistics",
    },
    LayerSig {
        name: "concat",
        inputs: Arity::AtLeast(1),
        params: &[kw("axis", ArgTy::Int, DefaultValue::Int(1), "axis to join on (channels)")],
        doc: "concatenation of its inputs on an axis",
    },
    LayerSig {
        name: "conv",
        inputs: Arity::Exactly(1),
        params: &[
            opt_pos(
                "filters",
                ArgTy::Int,
                DefaultValue::Absent,
                "number of output channels (omitted with a constant kernel)",
            ),
            kw(
                "kernel",
                ArgTy::IntPairOrConst,
                DefaultValue::Required,
                "kernel size, or a constant array for a fixed filter",
            ),
            STRIDE,
            PAD,
            kw("dilation", ArgTy::IntOrPair, DefaultValue::Int(1), "spacing of kernel taps"),
            kw("groups", ArgTy::Int, DefaultValue::Int(1), "channel groups"),
            kw("bias", ArgTy::Bool, DefaultValue::Bool(true), "add a bias per output channel"),
        ],
        doc: "2-D convolution over [N, C, H, W]",
    },
    LayerSig {
        name: "dense",
        inputs: Arity::Exactly(1),
        params: &[
            req("units", ArgTy::Int, "output features"),
            kw("bias", ArgTy::Bool, DefaultValue::Bool(true), "add a bias"),
        ],
        doc: "fully connected layer on the last axis",
    },
    LayerSig {
        name: "dropout",
        inputs: Arity::Exactly(1),
        params: &[req("rate", ArgTy::Float, "probability of dropping a unit")],
        doc: "inverted dropout while training; the identity at inference",
    },
    LayerSig {
        name: "embed",
        inputs: Arity::Exactly(1),
        params: &[
            req("vocab", ArgTy::Int, "number of tokens"),
            req("dim", ArgTy::Int, "embedding width"),
        ],
        doc: "embedding lookup: integer ids [N, …] to [N, …, dim]",
    },
    LayerSig {
        name: "flatten",
        inputs: Arity::Exactly(1),
        params: &[],
        doc: "[N, d1, d2, …] to [N, d1·d2·…]",
    },
    LayerSig {
        name: "global_avgpool",
        inputs: Arity::Exactly(1),
        params: &[],
        doc: "average over all positions of each channel: [N, C, H, W] to [N, C, 1, 1]",
    },
    LayerSig {
        name: "global_maxpool",
        inputs: Arity::Exactly(1),
        params: &[],
        doc: "maximum over all positions of each channel: [N, C, H, W] to [N, C, 1, 1]",
    },
    LayerSig {
        name: "gru",
        inputs: Arity::Exactly(1),
        params: RECURRENT,
        doc: "gated recurrent unit over [N, T, F] (the lecture's equations, one bias per gate)",
    },
    unary("identity", "passes its input through"),
    LayerSig {
        name: "log_softmax",
        inputs: Arity::Exactly(1),
        params: &[AXIS_LAST],
        doc: "logarithm of the softmax, computed stably",
    },
    LayerSig {
        name: "lrn",
        inputs: Arity::Exactly(1),
        params: &[
            kw("size", ArgTy::Int, DefaultValue::Int(5), "channels in the window"),
            kw("alpha", ArgTy::Float, DefaultValue::Float(1e-4), "scale"),
            kw("beta", ArgTy::Float, DefaultValue::Float(0.75), "exponent"),
            kw("k", ArgTy::Float, DefaultValue::Float(2.0), "offset"),
        ],
        doc: "local response normalisation across channels (AlexNet)",
    },
    LayerSig {
        name: "lstm",
        inputs: Arity::Exactly(1),
        params: RECURRENT,
        doc: "long short-term memory over [N, T, F] (gates i, f, g, o; one bias per gate)",
    },
    LayerSig {
        name: "matmul",
        inputs: Arity::Exactly(2),
        params: &[],
        doc: "matrix product on the last two axes",
    },
    LayerSig {
        name: "maxpool",
        inputs: Arity::Exactly(1),
        params: &[
            req("window", ArgTy::IntOrPair, "window size"),
            POOL_STRIDE,
            PAD,
            CEIL,
        ],
        doc: "max pooling over windows of each channel",
    },
    LayerSig {
        name: "mean",
        inputs: Arity::Exactly(1),
        params: &[kw("axis", ArgTy::Int, DefaultValue::Required, "axis to average over")],
        doc: "mean over one axis, which is removed",
    },
    LayerSig {
        name: "mse",
        inputs: Arity::Exactly(2),
        params: &[],
        doc: "mean squared error between a prediction and a target: a scalar",
    },
    LayerSig {
        name: "mul",
        inputs: Arity::AtLeast(2),
        params: &[],
        doc: "elementwise product of its inputs (broadcasting)",
    },
    unary("relu", "max(x, 0)"),
    LayerSig {
        name: "reshape",
        inputs: Arity::Exactly(1),
        params: &[kw(
            "shape",
            ArgTy::IntList,
            DefaultValue::Required,
            "new shape per example (the batch axis is kept); one entry may be -1",
        )],
        doc: "reinterprets each example with a new shape",
    },
    LayerSig {
        name: "rnn",
        inputs: Arity::Exactly(1),
        params: RECURRENT,
        doc: "vanilla recurrence h = tanh(W [h, x] + b) over [N, T, F]",
    },
    unary("sigmoid", "1 / (1 + e^-x)"),
    LayerSig {
        name: "slice",
        inputs: Arity::Exactly(1),
        params: &[
            kw("axis", ArgTy::Int, DefaultValue::Required, "axis to slice"),
            kw("start", ArgTy::Int, DefaultValue::Int(0), "first index"),
            kw("end", ArgTy::Int, DefaultValue::Absent, "one past the last index (default: the end)"),
        ],
        doc: "a contiguous range of one axis",
    },
    LayerSig {
        name: "softmax",
        inputs: Arity::Exactly(1),
        params: &[AXIS_LAST],
        doc: "normalised exponentials along an axis",
    },
    LayerSig {
        name: "softmax_cross_entropy",
        inputs: Arity::Exactly(2),
        params: &[],
        doc: "mean cross-entropy of logits against integer labels or probabilities: a scalar",
    },
    LayerSig {
        name: "sub",
        inputs: Arity::Exactly(2),
        params: &[],
        doc: "elementwise difference (broadcasting)",
    },
    LayerSig {
        name: "sum",
        inputs: Arity::Exactly(1),
        params: &[kw("axis", ArgTy::Int, DefaultValue::Required, "axis to sum over")],
        doc: "sum over one axis, which is removed",
    },
    unary("tanh", "hyperbolic tangent"),
    LayerSig {
        name: "unroll",
        inputs: Arity::Exactly(1),
        params: &[
            req("cell", ArgTy::Cell, "the cell to run at every step"),
            RECURRENT[1],
            RECURRENT[2],
            RECURRENT[3],
        ],
        doc: "runs a cell over the time axis of [N, T, F], its weights shared by every step",
    },
];

/// The built-in layer called `name`.
pub fn lookup(name: &str) -> Option<&'static LayerSig> {
    LAYERS
        .binary_search_by(|l| l.name.cmp(name))
        .ok()
        .map(|i| &LAYERS[i])
}

/// Symbols that may be written as bare names in argument position.
pub fn is_symbol(name: &str) -> bool {
    PAD_SYMS.contains(&name) || EMIT_SYMS.contains(&name)
}

/// Static properties of a tensor readable as `value.field`.
pub const FIELDS: &[(&str, &str)] = &[
    ("channels", "axis 1 of an [N, C, …] tensor"),
    ("height", "axis 2 of an [N, C, H, W] tensor"),
    ("width", "axis 3 of an [N, C, H, W] tensor"),
    ("features", "the last axis"),
    ("rank", "the number of axes"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_and_unique() {
        for w in LAYERS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn positional_parameters_come_first() {
        for l in LAYERS {
            let first_kw = l.params.iter().position(|p| !p.positional);
            if let Some(k) = first_kw {
                assert!(l.params[k..].iter().all(|p| !p.positional), "{}", l.name);
            }
        }
    }

    #[test]
    fn lookup_finds_every_layer() {
        for l in LAYERS {
            assert_eq!(lookup(l.name).map(|x| x.name), Some(l.name));
        }
        assert!(lookup("convv").is_none());
    }
}
