//! Stable diagnostic codes. A code, once published, keeps its meaning; every code is explained
//! in `docs/errors.md` (a test checks that each one is) and exercised by a fixture under
//! `tests/fixtures/`.
//!
//! Ranges: `E00xx` reading files, `E01xx` syntax, `E02xx` names and arguments, `E03xx` shapes,
//! `E04xx` running nets (inputs, weights, outputs), `W0xxx` warnings.

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $title:literal;)*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            /// Every code: errors in numeric order, then warnings in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as printed, such as `E0201`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $code,)*
                }
            }

            /// A short title, as used in `docs/errors.md`.
            pub fn title(self) -> &'static str {
                match self {
                    $(Code::$name => $title,)*
                }
            }
        }
    };
}

codes! {
    /// A file could not be read.
    Io = "E0001", "file cannot be read";
    /// A file is not valid UTF-8.
    InvalidUtf8 = "E0002", "file is not valid UTF-8";
    /// The text does not follow the grammar.
    Syntax = "E0100", "syntax error";
    /// Brackets nest deeper than the parser allows.
    NestingTooDeep = "E0101", "nesting too deep";
    /// An integer literal does not fit in 64 bits.
    IntegerTooLarge = "E0102", "integer literal too large";
    /// A single expression has more operators than the parser allows.
    ExpressionTooLong = "E0103", "expression too long";
    /// A doc comment is followed by no item it could document.
    DanglingDoc = "E0104", "doc comment documents nothing";
    /// A string literal has an escape other than \" \\ \n \t.
    InvalidEscape = "E0105", "invalid escape in string";
    /// A name is not defined.
    UnknownName = "E0200", "unknown name";
    /// A layer, block or cell is not defined.
    UnknownLayer = "E0201", "unknown layer or block";
    /// A keyword argument is not a parameter of the callee.
    UnknownArgument = "E0202", "unknown argument";
    /// A required argument is not given.
    MissingArgument = "E0203", "missing argument";
    /// An argument is given twice.
    DuplicateArgument = "E0204", "duplicate argument";
    /// An argument has the wrong type.
    WrongArgumentType = "E0205", "wrong argument type";
    /// More positional arguments than parameters.
    TooManyArguments = "E0206", "too many arguments";
    /// A positional argument follows a keyword argument.
    PositionalAfterKeyword = "E0207", "positional argument after keyword argument";
    /// Two items (nets, blocks, cells, constants) have the same name.
    DuplicateItem = "E0208", "duplicate definition";
    /// A value name is bound twice in one body.
    DuplicateBinding = "E0209", "duplicate binding";
    /// Two parameters have the same name.
    DuplicateParameter = "E0210", "duplicate parameter";
    /// A value is used before the statement that binds it.
    UseBeforeDefinition = "E0211", "use before definition";
    /// A block or cell calls itself, directly or through others.
    RecursiveBlock = "E0212", "recursive block";
    /// A `use` names a file that does not exist.
    ImportNotFound = "E0213", "imported file not found";
    /// Files import each other in a cycle.
    ImportCycle = "E0214", "import cycle";
    /// A net declares an output that its body never binds.
    UndefinedOutput = "E0215", "output not defined";
    /// A block or branch body ends without a value.
    MissingResult = "E0216", "body has no result";
    /// A cell's step has no `emit`, has two, or `emit` appears outside a cell.
    BadEmit = "E0217", "misplaced or missing emit";
    /// A tensor value is used where a layer is expected, or a layer where a value is expected.
    NotALayer = "E0218", "value used as a layer";
    /// A layer has no input to apply to (a chain in a net must start from a value).
    NoInput = "E0219", "layer has no input";
    /// A compile-time value is required (a repeat count, a dimension, an argument).
    NotStatic = "E0220", "compile-time value expected";
    /// A constant array is ragged or holds something other than numbers.
    BadConstant = "E0221", "invalid constant";
    /// A state variable is updated twice in one step, or a name that is not state is reassigned.
    BadStateUpdate = "E0222", "invalid state update";
    /// Two layers in one body carry the same explicit name.
    DuplicateLabel = "E0223", "duplicate layer name";
    /// A layer is given the wrong number of tensor inputs.
    WrongInputCount = "E0224", "wrong number of inputs";
    /// An operator is applied to operands it does not accept (a layer plus a number, …).
    BadOperand = "E0225", "invalid operand";
    /// Static arithmetic failed: division by zero, overflow, negative power.
    StaticArithmetic = "E0226", "invalid compile-time arithmetic";
    /// A net's input has no tensor type, or a parameter's default has the wrong type.
    BadParameter = "E0227", "invalid parameter";
    /// A layer gets a tensor of the wrong rank (a conv on a 2-D tensor, a net input whose
    /// declared rank does not fit its first layer).
    WrongRank = "E0300", "wrong input rank";
    /// A convolution's input channels do not fit its groups or its kernel.
    ChannelMismatch = "E0301", "channel mismatch";
    /// Operands of an elementwise operation (a residual `add`, `mul`, `-`) or of a loss
    /// have shapes that do not broadcast.
    ShapeMismatch = "E0302", "operand shapes do not match";
    /// Concatenated tensors differ on an axis other than the concatenation axis.
    ConcatMismatch = "E0303", "concatenated shapes do not match";
    /// A dense layer is fed a tensor of rank 4 or more (an image without `flatten`).
    DenseOnImage = "E0304", "dense layer fed an image";
    /// A window (kernel and stride) does not tile its input: real input would be dropped.
    WindowMisfit = "E0305", "window does not fit";
    /// A kernel or pooling window is larger than its padded input.
    KernelTooLarge = "E0306", "kernel larger than its input";
    /// A size (filters, units, kernel, stride, a dimension) is zero or negative.
    NonPositiveSize = "E0307", "size is zero or negative";
    /// Size, parameter or cost arithmetic overflows 64 bits.
    SizeOverflow = "E0308", "size arithmetic overflow";
    /// A size that must be known (channels, a strided window) is symbolic.
    SymbolicSize = "E0309", "size must be known";
    /// A tensor has the wrong element type (embedding floats, convolving integers).
    WrongDType = "E0310", "wrong element type";
    /// An axis is out of range for the tensor's rank.
    AxisOutOfRange = "E0311", "axis out of range";
    /// A slice does not lie inside its axis.
    BadSlice = "E0312", "slice out of range";
    /// A reshape changes the number of elements.
    ReshapeMismatch = "E0313", "reshape changes the number of elements";
    /// The inner dimensions of a matrix product differ.
    MatMulMismatch = "E0314", "matrix product dimensions do not match";
    /// A recurrent state changes shape in a step, or its initial value has the wrong shape.
    StateMismatch = "E0315", "recurrent state shape mismatch";
    /// The net asked for (or any net) is not in the file.
    NetNotFound = "E0316", "net not found";
    /// Expanding blocks and repeats gives more layers than netc accepts.
    NetTooLarge = "E0317", "net too large to expand";
    /// Shape inference met IR it cannot type: a bug in netc.
    InternalShapeError = "E0318", "internal error in shape inference";
    /// A net input was not given, or a value was given for a name that is not an input.
    MissingInput = "E0400", "input missing or unknown";
    /// An input's shape does not fit the net's declaration (or a sequence is empty).
    InputShape = "E0401", "input shape does not match";
    /// An input's element type does not fit the net's declaration.
    InputDType = "E0402", "input element type does not match";
    /// An input file cannot be decoded: not an image, not a valid .npy, text outside the
    /// vocabulary, images of different sizes in one batch.
    BadInputFile = "E0403", "input file cannot be decoded";
    /// A weights file does not fit the net: missing, extra or misshapen tensors.
    WeightsMismatch = "E0404", "weights do not match the net";
    /// A weights file is not a valid safetensors file (truncated, corrupt, another format).
    CorruptWeights = "E0405", "weights file is corrupt";
    /// A net with learned parameters was run without `--weights`.
    MissingWeights = "E0406", "no weights given";
    /// An integer in the data is out of range: a token id beyond the vocabulary, a label
    /// beyond the classes, an integer division by zero.
    IndexOutOfRange = "E0407", "index out of range";
    /// An output cannot be written as asked: unknown output name, a tensor that is not an
    /// image written as PNG, an unknown extension.
    BadOutput = "E0408", "output cannot be written";
    /// The interpreter computed values that do not fit the IR: a bug in netc.
    InternalRunError = "E0409", "internal error in the interpreter";
    /// The code generator cannot compile a net to native code: an op it does not lower
    /// yet, or a bug in netc (Cranelift rejected a function).
    Codegen = "E0410", "native code cannot be generated";
    /// A value bound by `name = …` is never used.
    UnusedValue = "W0001", "unused value";
    /// A block or cell parameter is never used.
    UnusedParameter = "W0002", "unused parameter";
    /// A file defines no net, block, cell or constant.
    EmptyFile = "W0003", "file defines nothing";
    /// An input holds NaN or infinite values (the net still runs).
    NonFiniteInput = "W0400", "input has NaN or infinite values";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_unique_and_ordered() {
        let keys: Vec<(bool, &str)> = Code::ALL
            .iter()
            .map(|c| (c.as_str().starts_with('W'), c.as_str()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted);
    }
}
