//! Lowering: elaborates one net of a checked [`Program`] into an [`ir::graph::Graph`](crate::ir::graph::Graph).
//!
//! Everything static is evaluated here: net parameters and their defaults, block
//! arguments, `if` conditions, `repeat` counts, constants and `in.channels`-style
//! properties. Blocks are inlined under hierarchical names, repeats expanded, and
//! recurrences become [`Op::Loop`] regions. Because static
//! properties need shapes, each node's output types are inferred
//! ([`infer_shapes::infer`](super::infer_shapes::infer)) as soon as it is built, and shape
//! errors are reported at the layer that caused them, with the block call chain.
//!
//! Files: `net.rs` (a net's parameters, inputs, body and outputs), `value.rs`
//! (elaboration values, static arithmetic), `expr.rs` (expressions, chains, names, calls),
//! `structure.rs` (blocks, bodies, `if`, `repeat`, branches), `names.rs` (scopes and layer
//! names), `layers.rs` and `args.rs` (the built-in layers and their arguments),
//! `recurrent.rs` (loops), `errors.rs` (turning errors into diagnostics).
//!
//! Naming (stable: weight files use these names, see `docs/ir.md`): a label names a layer;
//! otherwise a layer is named after its kind with a counter per scope (`conv`, `conv_1`,
//! …), skipping names that labels of the same scope take. A block call opens a scope named
//! by its label or the block's name (with the same counter); the branches of `concat { … }`
//! and `add { … }` are scopes `b1`, `b2`, … numbered through their enclosing scope (under
//! the construct's label when it has one); a repeat adds no level, but every name made
//! directly in copy `i` gets the suffix `.i` (`conv.0`, `basic.1`; nested `conv.1.0`),
//! counters restarting in each copy; a recurrence opens a scope named like its layer.
//! Parameters are `layer/weight`, `layer/bias`; batch norm has `layer/scale`,
//! `layer/shift` and the buffers `layer/mean`, `layer/var`; an embedding `layer/table`
//! (the rules of `docs/language.md`, R14).

mod args;
mod errors;
mod expr;
mod layers;
mod names;
mod net;
mod recurrent;
mod structure;
mod value;

use crate::diagnostics::{Code, Diagnostic, Diagnostics, FileId, Label, Span};
use crate::ir::graph::{Graph, Node, NodeId, Param, ParamId, ParamKind, Region, ScopeId, ValueRef};
use crate::ir::op::Op;
use crate::ir::shape::{DType, Dim, TensorType};
use crate::syntax::ast::{BlockDecl, CellDecl, ConstDecl, Item, NetDecl};
use crate::syntax::loader::Program;
use errors::ErrorSite;
use std::collections::{BTreeMap, BTreeSet};
use value::{TVal, Val};

/// Most block calls nested inside each other.
const MAX_CALL_DEPTH: usize = 48;
/// Most elaboration steps (layer applications, block calls, repeat iterations) for one net.
const MAX_STEPS: u64 = 200_000;

/// What to lower.
#[derive(Clone, Debug, Default)]
pub struct LowerOptions {
    /// The net to lower; `None` for the last net of the root file.
    pub net: Option<String>,
    /// A known batch size to substitute for the batch symbol (axis 0 of the inputs).
    pub batch: Option<u64>,
}

/// Lowers the chosen net of `program`. Never panics on user input: every problem is a
/// diagnostic.
pub fn lower(program: &Program, opts: &LowerOptions) -> Result<Graph, Diagnostics> {
    let Some((net, file)) = find_net(program, opts.net.as_deref()) else {
        return Err(no_net(program, opts.net.as_deref()).into());
    };
    let mut l = Lowerer::new(program, net);
    l.lower_net(net, file, opts);
    if l.diags.has_errors() {
        let mut d = l.diags;
        d.sort();
        return Err(d);
    }
    let mut graph = l.graph;
    if let Some(rs) = l.regions.pop() {
        graph.body = rs.region;
    }
    Ok(graph)
}

/// The nets of the root file, in order.
pub fn net_names(program: &Program) -> Vec<String> {
    program
        .root_module()
        .map(|m| {
            m.items
                .iter()
                .filter_map(|i| match i {
                    Item::Net(n) => Some(n.name.name.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn find_net<'p>(program: &'p Program, name: Option<&str>) -> Option<(&'p NetDecl, FileId)> {
    let m = program.root_module()?;
    let mut nets = m.items.iter().filter_map(|i| match i {
        Item::Net(n) => Some(n),
        _ => None,
    });
    match name {
        Some(want) => nets.into_iter().find(|n| n.name.name == want),
        None => nets.next_back(),
    }
    .map(|n| (n, program.root))
}

fn no_net(program: &Program, name: Option<&str>) -> Diagnostic {
    let span = Span::new(program.root, 0, 0);
    let names = net_names(program);
    let mut d = match name {
        Some(n) => Diagnostic::error(
            Code::NetNotFound,
            format!("no net called `{n}` in this file"),
            Label::new(span, ""),
        ),
        None => Diagnostic::error(
            Code::NetNotFound,
            "this file defines no net to compile",
            Label::new(span, ""),
        ),
    };
    if names.is_empty() {
        d = d.with_help("a file to compile needs a `net name(inputs) -> outputs { … }`");
    } else {
        d = d.with_help(format!("the nets of this file: {}", names.join(", ")));
        if let Some(n) = name {
            if let Some(best) = names.iter().min_by_key(|c| strsim::levenshtein(c, n)) {
                d = d.with_note(format!("did you mean `{best}`?"));
            }
        }
    }
    d
}

/// Marks that a diagnostic has been reported; the caller returns `Val::Poison` or stops.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reported;

/// Result of an elaboration step whose failure has been reported.
pub(crate) type Res<T> = Result<T, Reported>;

/// Values bound by name, innermost frame last, and the file whose items are visible.
pub(crate) struct Env<'p> {
    file: FileId,
    frames: Vec<BTreeMap<String, Val<'p>>>,
}

impl<'p> Env<'p> {
    fn new(file: FileId) -> Env<'p> {
        Env {
            file,
            frames: vec![BTreeMap::new()],
        }
    }

    fn push(&mut self) {
        self.frames.push(BTreeMap::new());
    }

    fn pop(&mut self) {
        self.frames.pop();
    }

    fn bind(&mut self, name: &str, v: Val<'p>) {
        if let Some(f) = self.frames.last_mut() {
            f.insert(name.to_string(), v);
        }
    }

    fn get(&self, name: &str) -> Option<&Val<'p>> {
        self.frames.iter().rev().find_map(|f| f.get(name))
    }

    fn names(&self) -> Vec<String> {
        self.frames.iter().flat_map(|f| f.keys().cloned()).collect()
    }
}

/// A region under construction, with the `Param` node of each parameter it reads.
struct RegionState {
    region: Region,
    params: BTreeMap<ParamId, NodeId>,
}

/// A naming scope under construction.
struct ScopeState {
    id: ScopeId,
    path: String,
    used: BTreeSet<String>,
    reserved: BTreeSet<String>,
    counters: BTreeMap<String, u32>,
    branches: u32,
    /// `.i` (`.i.j` nested) in copy `i` of a repeat: appended to every name made directly
    /// in it.
    suffix: String,
}

/// The items visible from one file, by kind.
#[derive(Default)]
struct FileItems<'p> {
    blocks: BTreeMap<&'p str, (&'p BlockDecl, FileId)>,
    cells: BTreeMap<&'p str, (&'p CellDecl, FileId)>,
    consts: BTreeMap<&'p str, (&'p ConstDecl, FileId)>,
}

/// The state of lowering one net.
pub(crate) struct Lowerer<'p> {
    program: &'p Program,
    graph: Graph,
    regions: Vec<RegionState>,
    scopes: Vec<ScopeState>,
    diags: Diagnostics,
    items: BTreeMap<FileId, FileItems<'p>>,
    consts: BTreeMap<(FileId, String), Val<'p>>,
    consts_busy: BTreeSet<(FileId, String)>,
    steps: u64,
    depth: usize,
    /// Net input nodes and the span of their declared types.
    input_decls: BTreeMap<NodeId, Span>,
    /// The names of the parameters made so far.
    param_names: BTreeSet<String>,
}

impl<'p> Lowerer<'p> {
    fn new(program: &'p Program, net: &NetDecl) -> Lowerer<'p> {
        let graph = Graph::new(
            &net.name.name,
            net.doc.as_ref().map(|d| d.text.clone()),
            net.span,
        );
        Lowerer {
            program,
            graph,
            regions: vec![RegionState {
                region: Region::new(),
                params: BTreeMap::new(),
            }],
            scopes: vec![ScopeState {
                id: ScopeId(0),
                path: String::new(),
                used: BTreeSet::new(),
                reserved: BTreeSet::new(),
                counters: BTreeMap::new(),
                branches: 0,
                suffix: String::new(),
            }],
            diags: Diagnostics::new(),
            items: BTreeMap::new(),
            consts: BTreeMap::new(),
            consts_busy: BTreeSet::new(),
            steps: 0,
            depth: 0,
            input_decls: BTreeMap::new(),
            param_names: BTreeSet::new(),
        }
    }

    // ---------------------------------------------------------------------------------
    // The net

    // ---------------------------------------------------------------------------------
    // Diagnostics

    /// Reports `d`, adding the block call chain that led to the current scope.
    fn error(&mut self, d: Diagnostic) {
        let d = self.with_call_chain(d);
        self.diags.push(d);
    }

    /// Reports `d` (like [`Lowerer::error`]) and returns the marker.
    fn report(&mut self, d: Diagnostic) -> Reported {
        self.error(d);
        Reported
    }

    fn overflow(&mut self, span: Span) -> Reported {
        self.report(
            Diagnostic::error(
                Code::SizeOverflow,
                "size arithmetic overflows 64 bits",
                Label::new(span, "this size is too large"),
            )
            .with_help(
                "sizes, parameter counts and costs must fit in 64 bits; check the dimensions",
            ),
        )
    }

    /// Counts one elaboration step, failing past the budget.
    fn step(&mut self, span: Span) -> Res<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            if self.steps == MAX_STEPS + 1 {
                self.error(
                    Diagnostic::error(
                        Code::NetTooLarge,
                        format!("the net expands to more than {MAX_STEPS} layers"),
                        Label::new(span, "while expanding this"),
                    )
                    .with_help("check the repeat counts"),
                );
            }
            return Err(Reported);
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Regions, nodes and parameters

    fn depth(&self) -> usize {
        self.regions.len() - 1
    }

    fn region(&self) -> &Region {
        &self.regions[self.regions.len() - 1].region
    }

    fn region_mut(&mut self) -> &mut Region {
        let i = self.regions.len() - 1;
        &mut self.regions[i].region
    }

    /// The region that holds `t`.
    fn region_of(&self, t: TVal) -> &Region {
        &self.regions[t.depth.min(self.regions.len() - 1)].region
    }

    /// The type of `t`.
    fn ty(&self, t: TVal) -> &TensorType {
        self.region_of(t).ty(t.v)
    }

    fn scope_id(&self) -> ScopeId {
        self.scopes[self.scopes.len() - 1].id
    }

    /// Adds a node computing `op` from `inputs` at the current depth, inferring its output
    /// types; a shape error is reported against `site`.
    fn node(&mut self, op: Op, inputs: &[TVal], name: &str, site: &ErrorSite<'_>) -> Res<NodeId> {
        let depth = self.depth();
        if let Some(bad) = inputs.iter().find(|t| t.depth != depth) {
            let _ = bad;
            return Err(self.report(
                Diagnostic::error(
                    Code::NotALayer,
                    "a value from outside this cell is used inside its step",
                    Label::new(site.span, "here"),
                )
                .with_help(
                    "a cell's step sees only its states, its step input and the cell's parameters",
                ),
            ));
        }
        let types: Vec<&TensorType> = inputs.iter().map(|t| self.region().ty(t.v)).collect();
        match super::infer_shapes::infer(&op, &types, &self.graph.params) {
            Ok(outputs) => {
                let node = Node {
                    op,
                    outputs,
                    name: name.to_string(),
                    span: site.span,
                    scope: self.scope_id(),
                };
                let vals: Vec<ValueRef> = inputs.iter().map(|t| t.v).collect();
                Ok(self.region_mut().add(node, &vals))
            }
            Err(e) => Err(self.shape_error(&e, inputs, site)),
        }
    }

    /// The single output of `id` as a value.
    fn out(&self, id: NodeId, port: u32) -> TVal {
        TVal {
            v: ValueRef { node: id, port },
            depth: self.depth(),
        }
    }

    /// Creates parameter `{layer}/{suffix}` of `dims` and returns its value in the current
    /// region.
    fn param(
        &mut self,
        layer: &str,
        suffix: &str,
        dims: &[u64],
        kind: ParamKind,
        init: Option<Vec<f64>>,
        span: Span,
    ) -> Res<TVal> {
        let mut elements: u64 = 1;
        for d in dims {
            elements = elements
                .checked_mul(*d)
                .ok_or_else(|| self.overflow(span))?;
        }
        if i64::try_from(elements).is_err() {
            return Err(self.overflow(span));
        }
        let name = format!("{layer}/{suffix}");
        if !self.param_names.insert(name.clone()) {
            return Err(self.report(
                Diagnostic::error(
                    Code::DuplicateLabel,
                    format!("two layers are both named `{layer}`"),
                    Label::new(span, "this layer's parameters clash with another's"),
                )
                .with_help("give one of them a different label"),
            ));
        }
        let ty = TensorType::new(DType::F32, dims.iter().map(|d| Dim::Known(*d)).collect());
        let id = self.graph.add_param(Param {
            name,
            ty: ty.clone(),
            kind,
            init,
            derived: None,
            span,
        });
        let node = Node {
            op: Op::Param(id),
            outputs: vec![ty],
            name: String::new(),
            span,
            scope: self.scope_id(),
        };
        let nid = self.region_mut().add(node, &[]);
        let i = self.regions.len() - 1;
        self.regions[i].params.insert(id, nid);
        Ok(self.out(nid, 0))
    }

    /// A constant of `ty` filled with `value`.
    fn fill(&mut self, value: f64, ty: TensorType, span: Span) -> TVal {
        let node = Node {
            op: Op::Fill {
                value,
                ty: ty.clone(),
            },
            outputs: vec![ty],
            name: String::new(),
            span,
            scope: self.scope_id(),
        };
        let id = self.region_mut().add(node, &[]);
        self.out(id, 0)
    }

    // ---------------------------------------------------------------------------------
    // Scopes and names

    // ---------------------------------------------------------------------------------
    // Items

    fn file_items(&mut self, file: FileId) -> &FileItems<'p> {
        let program = self.program;
        self.items.entry(file).or_insert_with(|| {
            let mut fi = FileItems::default();
            for (f, item) in program.visible_items(file) {
                match item {
                    Item::Block(b) => {
                        fi.blocks.entry(b.name.name.as_str()).or_insert((b, f));
                    }
                    Item::Cell(c) => {
                        fi.cells.entry(c.name.name.as_str()).or_insert((c, f));
                    }
                    Item::Const(c) => {
                        fi.consts.entry(c.name.name.as_str()).or_insert((c, f));
                    }
                    Item::Use(_) | Item::Net(_) => {}
                }
            }
            fi
        })
    }

    fn lookup_block(&mut self, file: FileId, name: &str) -> Option<(&'p BlockDecl, FileId)> {
        self.file_items(file).blocks.get(name).copied()
    }

    fn lookup_cell(&mut self, file: FileId, name: &str) -> Option<(&'p CellDecl, FileId)> {
        self.file_items(file).cells.get(name).copied()
    }

    fn lookup_const(&mut self, file: FileId, name: &str) -> Option<(&'p ConstDecl, FileId)> {
        self.file_items(file).consts.get(name).copied()
    }

    /// The value of constant `decl` (evaluated once).
    fn const_value(&mut self, decl: &'p ConstDecl, file: FileId) -> Val<'p> {
        let key = (file, decl.name.name.clone());
        if let Some(v) = self.consts.get(&key) {
            return v.clone();
        }
        if !self.consts_busy.insert(key.clone()) {
            self.error(Diagnostic::error(
                Code::RecursiveBlock,
                format!(
                    "constant `{}` is defined in terms of itself",
                    decl.name.name
                ),
                Label::new(decl.name.span, "defined here"),
            ));
            return Val::Poison;
        }
        let mut env = Env::new(file);
        let v = self.eval(&decl.value, None, &mut env);
        self.consts_busy.remove(&key);
        self.consts.insert(key, v.clone());
        v
    }
}
