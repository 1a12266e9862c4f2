//! The pipeline as a library: load a `.net` file, check it, compile it through the
//! optimisation passes, generate native code, bind weights and run — the one API that the
//! command line, the tests, the benchmarks and future bindings share.
//!
//! ```no_run
//! use netc::model::{Backend, Model, ModelOptions};
//! use netc::codegen::CodegenOptions;
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let model = Model::load("nets/lenet5.net".as_ref(), &ModelOptions::default())
//!     .map_err(|e| e.render())?;
//! let weights = model.init_weights(0);
//! let compiled = model.compile(&CodegenOptions::default()).map_err(|d| model.render(&d))?;
//! let mut exe = compiled.bind(&weights).map_err(|e| model.render(&e.diagnostic()))?;
//! let x = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 1, 32, 32]));
//! let inputs = std::collections::BTreeMap::from([("x".to_string(), netc::runtime::Tensor::F32(x))]);
//! let logits = exe.run(&inputs).map_err(|e| model.render(&e.diagnostic()))?;
//! # let _ = (logits, Backend::Jit); Ok(()) }
//! ```
//!
//! Every failure is a [`Diagnostic`] with spans into the model's sources; [`Model::render`]
//! turns one into text.

use crate::codegen::{self, CodegenOptions, Compiled};
use crate::diagnostics::{Code, Diagnostic, Diagnostics, SourceMap};
use crate::ir::graph::Graph;
use crate::passes::pipeline::PassOptions;
use crate::passes::{self, CompileOptions};
use crate::report::table::Report;
use crate::runtime::{weights, RunError, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// What to load.
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    /// The net to compile (default: the last net of the file).
    pub net: Option<String>,
    /// A known batch size instead of the symbolic `N`.
    pub batch: Option<u64>,
    /// The optimisation passes; `None` compiles the lowered IR without passes.
    pub passes: Option<PassOptions>,
}

/// How to execute a net.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Native code from the Cranelift JIT ([`crate::codegen`]).
    #[default]
    Jit,
    /// The IR run with every activation at its place in the planned arena
    /// ([`crate::runtime::arena`]).
    Arena,
    /// The reference interpreter ([`crate::runtime::interp`]).
    Interp,
}

/// A loaded, checked and compiled net with its sources (for rendering diagnostics).
#[derive(Clone, Debug)]
pub struct Model {
    /// The IR (optimised when passes were asked for).
    pub graph: Graph,
    /// The layer table.
    pub report: Report,
    /// The source files, for diagnostics.
    pub sources: SourceMap,
}

/// Why a net could not be loaded: its diagnostics, with the sources they point into.
#[derive(Clone, Debug)]
pub struct LoadError {
    /// Every problem found.
    pub diagnostics: Diagnostics,
    /// The sources.
    pub sources: SourceMap,
}

impl LoadError {
    /// Whether a file could not be read (rather than holding errors).
    pub fn is_io(&self) -> bool {
        self.diagnostics.iter().any(|d| d.code == Code::Io)
    }

    /// The diagnostics as plain text.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| crate::diagnostics::render::plain(d, &self.sources))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for LoadError {}

impl Model {
    /// Loads `path` (and its imports), checks it, and compiles the chosen net.
    pub fn load(path: &Path, opts: &ModelOptions) -> Result<Model, Box<LoadError>> {
        Model::finish(
            crate::check_program(crate::syntax::loader::load(path)),
            opts,
        )
    }

    /// Like [`Model::load`] for a source text named `name` (imports are read from disk).
    pub fn from_source(
        name: &str,
        source: &str,
        opts: &ModelOptions,
    ) -> Result<Model, Box<LoadError>> {
        Model::finish(
            crate::check_program(crate::syntax::loader::load_source_with(
                name,
                source.as_bytes(),
                &crate::syntax::loader::DiskReader,
            )),
            opts,
        )
    }

    fn finish(
        (program, diags): (crate::syntax::loader::Program, Diagnostics),
        opts: &ModelOptions,
    ) -> Result<Model, Box<LoadError>> {
        if diags.has_errors() {
            return Err(Box::new(LoadError {
                diagnostics: diags,
                sources: program.sources,
            }));
        }
        let copts = CompileOptions {
            net: opts.net.clone(),
            batch: opts.batch,
        };
        let compiled = match &opts.passes {
            Some(p) => passes::compile_with(&program, &copts, p).map(|o| o.compiled),
            None => passes::compile(&program, &copts),
        };
        match compiled {
            Ok(c) => Ok(Model {
                graph: c.graph,
                report: c.report,
                sources: program.sources,
            }),
            Err(diagnostics) => Err(Box::new(LoadError {
                diagnostics,
                sources: program.sources,
            })),
        }
    }

    /// Generates native code for the net.
    pub fn compile(&self, opts: &CodegenOptions) -> Result<Compiled, Box<Diagnostic>> {
        codegen::compile(&self.graph, opts).map_err(|e| Box::new(e.diagnostic(self.graph.span)))
    }

    /// The tensors a weights file for this net holds.
    pub fn expected_weights(&self) -> Vec<weights::Expected> {
        weights::expected(&self.graph)
    }

    /// Deterministic initial weights (as `netc init --seed`).
    pub fn init_weights(&self, seed: u64) -> weights::Weights {
        weights::init(&self.expected_weights(), seed)
    }

    /// Runs the net once on `inputs` with `backend` (compiling it first for
    /// [`Backend::Jit`]).
    pub fn run(
        &self,
        backend: Backend,
        w: &weights::Weights,
        inputs: &BTreeMap<String, Tensor>,
        opts: &CodegenOptions,
    ) -> Result<BTreeMap<String, Tensor>, Box<Diagnostic>> {
        let diag = |e: RunError| Box::new(e.diagnostic());
        match backend {
            Backend::Interp => crate::runtime::interp::run(&self.graph, w, inputs).map_err(diag),
            Backend::Arena => crate::runtime::arena::run(&self.graph, w, inputs).map_err(diag),
            Backend::Jit => {
                let compiled = self.compile(opts)?;
                let mut exe = compiled.bind(w).map_err(diag)?;
                exe.run(inputs).map_err(diag)
            }
        }
    }

    /// Deterministic random inputs for every declared input: floats uniform in
    /// `[-1, 1)`, integer ids valid for the embedding table (or the classes of the loss)
    /// they index. `sizes` gives each symbolic size (`N`, `T`, …); a missing one is an
    /// error naming it.
    pub fn random_inputs(
        &self,
        sizes: &BTreeMap<String, u64>,
        seed: u64,
    ) -> Result<BTreeMap<String, Tensor>, String> {
        use crate::ir::op::Op;
        let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            // SplitMix64.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let body = &self.graph.body;
        let mut out = BTreeMap::new();
        for &id in &body.inputs {
            let Op::Input { name, ty, .. } = &body.node(id).op else {
                continue;
            };
            let mut shape = Vec::new();
            for d in ty.shape.dims() {
                let v = match d {
                    crate::ir::shape::Dim::Known(k) => *k,
                    crate::ir::shape::Dim::Sym(p) => {
                        let mut q = p.clone();
                        for s in p.symbols() {
                            let v = sizes
                                .get(&s)
                                .ok_or_else(|| format!("no value for the size `{s}` of input `{name}` (give --size {s}=…)"))?;
                            q = q
                                .substitute(&s, i64::try_from(*v).map_err(|_| "size too large")?)
                                .ok_or("size overflow")?;
                        }
                        u64::try_from(q.as_const().ok_or("unbound size")?)
                            .map_err(|_| format!("a negative size for input `{name}`"))?
                    }
                };
                shape.push(usize::try_from(v).map_err(|_| "size too large")?);
            }
            let n: usize = shape.iter().product();
            let t = if ty.dtype.is_int() {
                let range = int_range(body, id).max(1);
                let v: Vec<i64> = (0..n).map(|_| (next() % range) as i64).collect();
                Tensor::I64(
                    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), v)
                        .map_err(|e| e.to_string())?,
                )
            } else {
                let v: Vec<f32> = (0..n)
                    .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
                    .collect();
                Tensor::F32(
                    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), v)
                        .map_err(|e| e.to_string())?,
                )
            };
            out.insert(name.clone(), t);
        }
        Ok(out)
    }

    /// Multiply-adds of one run at `sizes` (the batch `N` included), if every size is
    /// given.
    pub fn macs_at(&self, sizes: &BTreeMap<String, u64>) -> Option<u64> {
        let m = self.graph.body.macs()?;
        let mut q = m.checked_mul(&crate::ir::shape::Poly::symbol("N"))?;
        for s in q.symbols() {
            q = q.substitute(&s, i64::try_from(*sizes.get(&s)?).ok()?)?;
        }
        u64::try_from(q.as_const()?).ok()
    }

    /// A diagnostic as plain text with this model's sources.
    pub fn render(&self, d: &Diagnostic) -> String {
        crate::diagnostics::render::plain(d, &self.sources)
    }
}

/// The number of valid values of integer input `id`: the rows of the embedding table it
/// indexes, or the classes of the loss it labels (2 when neither).
fn int_range(region: &crate::ir::graph::Region, id: crate::ir::graph::NodeId) -> u64 {
    use crate::ir::op::Op;
    use crate::ir::shape::Dim;
    for user in region.users_of(id) {
        let args = region.inputs_of(user);
        match region.node(user).op {
            Op::Embed => {
                if let Some(Dim::Known(v)) =
                    args.get(1).and_then(|t| region.ty(*t).shape.dims().first())
                {
                    return *v;
                }
            }
            Op::SoftmaxCrossEntropy => {
                if let Some(Dim::Known(c)) =
                    args.first().and_then(|t| region.ty(*t).shape.dims().last())
                {
                    return *c;
                }
            }
            _ => {}
        }
    }
    2
}
