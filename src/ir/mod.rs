//! The IR: one compiled net as a graph of typed tensor operations. Everything after the
//! front end (shape reports, the DOT view, and later fusion, autodiff, memory planning,
//! the interpreter and the code generator) reads and rewrites this representation; this
//! documentation is its specification (summarised for users in `docs/ir.md`).
//!
//! # Entities
//!
//! A [`Graph`](graph::Graph) is one net. It owns:
//!
//! - **parameters** ([`Param`](graph::Param), addressed by
//!   [`ParamId`](graph::ParamId)): every tensor stored with the model. Each has a stable,
//!   unique hierarchical name (`conv1/weight`, `inception3a/b2/conv/bias`,
//!   `layer2.0/basic/b1/batchnorm/scale`) — weight files use these names —, a type of known
//!   shape, and a [`ParamKind`](graph::ParamKind): `Trainable` (learned; counted),
//!   `Fixed` (a constant kernel written in the source, with its values; counted as a
//!   parameter but not trainable) or `Buffer` (state such as batch norm's running
//!   statistics; not a parameter, not counted). Parameters are entities of the graph, not
//!   attributes of ops: an op reads one through a [`Op::Param`](op::Op::Param) node, so a
//!   parameter used at every step of a recurrence is one parameter with many uses;
//! - **scopes** ([`Scope`](graph::Scope)): the naming tree of block calls, branches,
//!   repeat iterations and recurrences, each with the span of the call or construct that
//!   made it. `scopes[0]` is the net. A node's scope gives its block call chain, which
//!   diagnostics show and the DOT view draws as clusters;
//! - **the body**, a [`Region`](graph::Region).
//!
//! A **region** is a dataflow graph over petgraph's `StableDiGraph`: **nodes** are
//! operations ([`Node`](graph::Node)), **edges** are tensor values
//! ([`Edge`](graph::Edge)). Passes see [`NodeId`](graph::NodeId)s and
//! [`ValueRef`](graph::ValueRef)s (`node` + output `port`), never petgraph indices;
//! ids are stable when other nodes are removed. Every node has:
//!
//! - `op`: one [`Op`](op::Op) of the closed set, with typed attributes;
//! - `outputs`: the [`TensorType`](shape::TensorType) of each output port;
//! - `name`: the hierarchical name of the layer it implements (empty only for `Param`
//!   and `Fill` nodes);
//! - `span`: the source text it was lowered from, kept through every pass;
//! - `scope`: the innermost scope it was lowered in.
//!
//! An edge from `a` to `b` with `from_port: i, to_port: j` means output `i` of `a` is input
//! `j` of `b`; the edge carries that value's type. A value read by several nodes has one
//! edge per reader.
//!
//! # Types and shapes
//!
//! A [`TensorType`](shape::TensorType) is an element type ([`DType`](shape::DType)) and a
//! [`Shape`](shape::Shape) of [`Dim`](shape::Dim)s. Layouts: images `[N, C, H, W]`,
//! sequences `[N, T, F]` (batch first); axis 0 is always the batch. A dimension is
//! `Known(u64)` or `Sym(Poly)`: a polynomial over symbolic names (`N`, `T`, `U`, `H`,
//! `W`: any name in an input type that is not a static parameter). Polynomials are closed
//! under the `+ - *` that shape rules need (`flatten` of `[N, C, H, W]` gives `C*H*W`; a
//! valid 3x3 stride-1 convolution over `H` gives `H-2`); rules that would divide or round
//! a symbolic size (a strided window, `pad: same` at stride 2) are shape errors instead of
//! new symbols. Parameter shapes are always known. All size arithmetic is checked.
//!
//! # Recurrences
//!
//! A recurrence is one [`Op::Loop`](op::Op::Loop) node whose attribute is a nested
//! [`Region`](graph::Region) holding **one time step** (the design of ONNX's `Scan`): the
//! body's inputs are the carried states then the step input, its outputs the new states
//! then the emitted value. The loop node's inputs are the initial states and the sequence
//! `[N, T, …]` (scanned over axis 1) or, for `steps:`, one `[N, …]` fed at every step; its
//! outputs are the final states and the emitted values (`[N, T, …]` for `emit: all`,
//! `[N, …]` for `last`, none for `state`). The body is built once whatever `T` is, so a
//! symbolic `T` stays symbolic, and every step reads the same parameters: fusion of the
//! gate equations, autodiff through time (a reverse scan) and code generation (a loop)
//! work on the step, never on `T` copies. Expanding a loop with a known `T` into copies is
//! a later, optional rewrite. The built-in `rnn`, `lstm` and `gru` lower to the same kind
//! of loop as a user `cell`, written in the same ops with one fused weight per layer.
//!
//! # Invariants (checked by [`verify`])
//!
//! - edges carry exactly the type of the output they read; input ports are `0..n`;
//! - every node's stored output types are what its op's shape rule
//!   ([`crate::passes::infer_shapes::infer`]) gives for its input types;
//! - regions are acyclic; a region's `inputs` are exactly its `Input` nodes in index
//!   order; its outputs name existing values;
//! - at most one `Param` node per parameter per region; parameter names are unique and
//!   non-empty; fixed parameters carry exactly their elements' values;
//! - scopes' parents precede them; node scopes exist; only `Param`/`Fill` nodes are
//!   unnamed.
//!
//! The verifier runs after every pass in tests and debug builds; a failure is a compiler
//! bug and panics with the IR dump ([`crate::passes::verify_after`]).
//!
//! # Text form
//!
//! [`mod@print`] writes the IR with stable names: values `%0, %1, …` in topological order,
//! multi-output nodes `%k:n` with outputs `%k#i`, parameters `@name`, and each line's
//! layer name and source position:
//!
//! ```text
//! %1 = conv2d %0, @c1/weight, @c1/bias {kernel=[5,5], stride=[1,1], pad=[0,0,0,0]} : f32[N,6,28,28]  // c1 @ nets/lenet5.net:9:16
//! ```
//!
//! Padding is `[top, left, bottom, right]` (ONNX's `pads` order). [`dot`] writes Graphviz.

pub mod dot;
pub mod graph;
pub mod op;
pub mod print;
pub mod shape;
pub mod verify;
