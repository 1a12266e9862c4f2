//! The graph containers: [`Region`] (a dataflow graph over petgraph's `StableDiGraph`, seen
//! only through [`NodeId`] and [`ValueRef`]) and [`Graph`] (one compiled net: its parameter
//! table, its scopes and its top-level region).

use super::op::Op;
use super::shape::{Poly, TensorType};
use crate::diagnostics::Span;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::BTreeSet;

/// A node of a region. Stable: removing other nodes does not change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(NodeIndex<u32>);

impl NodeId {
    /// The raw index, for diagnostics of compiler bugs only.
    pub fn index(self) -> usize {
        self.0.index()
    }
}

/// A tensor value: output `port` of `node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueRef {
    /// The producing node.
    pub node: NodeId,
    /// Which of its outputs.
    pub port: u32,
}

/// A parameter of [`Graph::params`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub u32);

/// A scope of [`Graph::scopes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(pub u32);

/// One operation with its results' types, the layer name it belongs to and where it came
/// from.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// The type of each output, by port.
    pub outputs: Vec<TensorType>,
    /// The hierarchical layer name (`inception3a/b2/conv`); empty for nodes that belong to
    /// no layer (parameters, constants).
    pub name: String,
    /// The source text the node was lowered from.
    pub span: Span,
    /// The innermost scope (block call, branch, repeat iteration, cell) it was lowered in.
    pub scope: ScopeId,
}

/// An edge: the value `from_port` of the source node feeds input `to_port` of the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// Output port of the producer.
    pub from_port: u32,
    /// Input port of the consumer.
    pub to_port: u32,
    /// The type of the value carried (equal to the producer's output type).
    pub ty: TensorType,
}

/// A named output of a region.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The name (a net output, or `h`/`c`/`emit` in a loop body).
    pub name: String,
    /// The value.
    pub value: ValueRef,
}

/// A dataflow graph: nodes are ops, edges are tensor values.
#[derive(Clone, Debug, Default)]
pub struct Region {
    graph: StableDiGraph<Node, Edge, u32>,
    /// The `Input` nodes, in input order.
    pub inputs: Vec<NodeId>,
    /// The region's results, in order.
    pub outputs: Vec<Output>,
    /// The storage layout of 4-D values chosen by [`crate::passes::layout`]; a value not
    /// listed is row-major (NCHW). Set by the last pass, so no rewrite after it has to
    /// keep it up to date.
    pub layouts: std::collections::BTreeMap<ValueRef, super::op::Layout>,
}

impl PartialEq for Region {
    fn eq(&self, other: &Region) -> bool {
        // Structural equality in topological order, enough for tests of passes.
        let a = self.topo_order();
        let b = other.topo_order();
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| self.node(*x) == other.node(*y))
            && self.outputs.len() == other.outputs.len()
    }
}

impl Region {
    /// An empty region.
    pub fn new() -> Region {
        Region::default()
    }

    /// Adds `node` fed by `inputs` (port `i` gets `inputs[i]`) and returns its id.
    ///
    /// Panics if an input is not a value of this region: callers only pass values they got
    /// from this region, so that would be a compiler bug.
    pub fn add(&mut self, node: Node, inputs: &[ValueRef]) -> NodeId {
        let types: Vec<TensorType> = inputs.iter().map(|v| self.ty(*v).clone()).collect();
        let id = NodeId(self.graph.add_node(node));
        for (i, (v, ty)) in inputs.iter().zip(types).enumerate() {
            let to_port = u32::try_from(i).expect("a node has fewer than 2^32 inputs");
            self.graph.add_edge(
                v.node.0,
                id.0,
                Edge {
                    from_port: v.port,
                    to_port,
                    ty,
                },
            );
        }
        id
    }

    /// The node `id`. Panics if it is not in this region (a compiler bug).
    pub fn node(&self, id: NodeId) -> &Node {
        self.graph
            .node_weight(id.0)
            .expect("node ids are only used with the region that made them")
    }

    /// The node `id`, mutably.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.graph
            .node_weight_mut(id.0)
            .expect("node ids are only used with the region that made them")
    }

    /// Whether `id` is a node of this region.
    pub fn contains(&self, id: NodeId) -> bool {
        self.graph.contains_node(id.0)
    }

    /// Whether `v` is a value of this region.
    pub fn has_value(&self, v: ValueRef) -> bool {
        self.graph
            .node_weight(v.node.0)
            .is_some_and(|n| (v.port as usize) < n.outputs.len())
    }

    /// The type of `v`. Panics if `v` is not a value of this region.
    pub fn ty(&self, v: ValueRef) -> &TensorType {
        self.node(v.node)
            .outputs
            .get(v.port as usize)
            .expect("value refs name an existing output")
    }

    /// The single value of a one-output node.
    pub fn value(id: NodeId) -> ValueRef {
        ValueRef { node: id, port: 0 }
    }

    /// The inputs of `id`, by port.
    pub fn inputs_of(&self, id: NodeId) -> Vec<ValueRef> {
        let mut edges: Vec<(u32, ValueRef)> = self
            .graph
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| {
                (
                    e.weight().to_port,
                    ValueRef {
                        node: NodeId(e.source()),
                        port: e.weight().from_port,
                    },
                )
            })
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, v)| v).collect()
    }

    /// The edges into `id` with their types, by port.
    pub fn in_edges(&self, id: NodeId) -> Vec<(ValueRef, Edge)> {
        let mut edges: Vec<(ValueRef, Edge)> = self
            .graph
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| {
                (
                    ValueRef {
                        node: NodeId(e.source()),
                        port: e.weight().from_port,
                    },
                    e.weight().clone(),
                )
            })
            .collect();
        edges.sort_by_key(|(_, e)| e.to_port);
        edges
    }

    /// The nodes reading an output of `id` (each once), in id order.
    pub fn users_of(&self, id: NodeId) -> Vec<NodeId> {
        let set: BTreeSet<NodeId> = self
            .graph
            .neighbors_directed(id.0, Direction::Outgoing)
            .map(NodeId)
            .collect();
        set.into_iter().collect()
    }

    /// Makes every reader of `old` (edges and region outputs) read `new` instead. The two
    /// values must have the same type (callers replace a value by an equal one); the edges
    /// keep their input ports.
    pub fn replace_uses(&mut self, old: ValueRef, new: ValueRef) {
        let ty = self.ty(new).clone();
        let readers: Vec<(petgraph::stable_graph::EdgeIndex<u32>, NodeIndex<u32>, u32)> = self
            .graph
            .edges_directed(old.node.0, Direction::Outgoing)
            .filter(|e| e.weight().from_port == old.port)
            .map(|e| (e.id(), e.target(), e.weight().to_port))
            .collect();
        for (edge, target, to_port) in readers {
            self.graph.remove_edge(edge);
            self.graph.add_edge(
                new.node.0,
                target,
                Edge {
                    from_port: new.port,
                    to_port,
                    ty: ty.clone(),
                },
            );
        }
        for o in &mut self.outputs {
            if o.value == old {
                o.value = new;
            }
        }
    }

    /// Makes input `port` of `node` read `new` instead (which must have the same type).
    pub fn replace_input(&mut self, node: NodeId, port: u32, new: ValueRef) {
        let ty = self.ty(new).clone();
        let edge = self
            .graph
            .edges_directed(node.0, Direction::Incoming)
            .find(|e| e.weight().to_port == port)
            .map(|e| e.id());
        if let Some(e) = edge {
            self.graph.remove_edge(e);
        }
        self.graph.add_edge(
            new.node.0,
            node.0,
            Edge {
                from_port: new.port,
                to_port: port,
                ty,
            },
        );
    }

    /// The storage layout of `v` (NCHW unless one was chosen).
    pub fn layout(&self, v: ValueRef) -> super::op::Layout {
        self.layouts.get(&v).copied().unwrap_or_default()
    }

    /// Removes `id` and its edges.
    pub fn remove(&mut self, id: NodeId) -> Option<Node> {
        self.graph.remove_node(id.0)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the region has no nodes.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Every node id, in id order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.graph.node_indices().map(NodeId).collect()
    }

    /// The nodes in a deterministic topological order: Kahn's algorithm taking the smallest
    /// ready id first, so the order is insertion order whenever that is topological. Nodes
    /// on a cycle (which the verifier reports) are left out.
    pub fn topo_order(&self) -> Vec<NodeId> {
        let ids = self.node_ids();
        let mut indegree: std::collections::BTreeMap<NodeId, usize> = ids
            .iter()
            .map(|&id| {
                let d = self
                    .graph
                    .neighbors_directed(id.0, Direction::Incoming)
                    .count();
                (id, d)
            })
            .collect();
        let mut ready: BTreeSet<NodeId> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(id, _)| *id)
            .collect();
        let mut order = Vec::with_capacity(ids.len());
        while let Some(id) = ready.pop_first() {
            order.push(id);
            for e in self.graph.edges_directed(id.0, Direction::Outgoing) {
                let t = NodeId(e.target());
                if let Some(d) = indegree.get_mut(&t) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(t);
                    }
                }
            }
        }
        order
    }

    /// Multiply-adds of one example over the whole region (see [`Op::macs`]), or `None` on
    /// overflow.
    pub fn macs(&self) -> Option<Poly> {
        let mut total = Poly::zero();
        for id in self.node_ids() {
            total = total.checked_add(&self.node_macs(id)?)?;
        }
        Some(total)
    }

    /// Multiply-adds of one example of node `id`, or `None` on overflow.
    pub fn node_macs(&self, id: NodeId) -> Option<Poly> {
        let edges = self.in_edges(id);
        let inputs: Vec<&TensorType> = edges.iter().map(|(_, e)| &e.ty).collect();
        let n = self.node(id);
        n.op.macs(&inputs, &n.outputs)
    }
}

/// What a parameter is for, which decides whether it counts as a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParamKind {
    /// Learned: counted in `params` and `trainable_params`.
    Trainable,
    /// A constant kernel given in the source: counted in `params`, not trainable.
    Fixed,
    /// State that is not a parameter (batch norm's running statistics): not counted.
    Buffer,
    /// Computed from other parameters when the weights are bound (a batch norm folded into
    /// the layer before it): not counted, not stored in weight files. See [`Derivation`].
    Derived,
}

impl ParamKind {
    /// `trainable`, `fixed` or `buffer`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Trainable => "trainable",
            ParamKind::Fixed => "fixed",
            ParamKind::Buffer => "buffer",
            ParamKind::Derived => "derived",
        }
    }
}

/// A tensor stored with the model: a weight, a fixed kernel or a buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The stable hierarchical name (`inception3a/b2/conv/weight`): weight files use it.
    pub name: String,
    /// Its type; always of known shape.
    pub ty: TensorType,
    /// Trainable, fixed or buffer.
    pub kind: ParamKind,
    /// The values of a fixed parameter, row-major; `None` for learned ones.
    pub init: Option<Vec<f64>>,
    /// How a [`ParamKind::Derived`] parameter is computed; `None` for every other kind.
    pub derived: Option<Derivation>,
    /// The layer call that created it.
    pub span: Span,
}

/// How a derived parameter is computed from stored ones, when weights are bound. Every
/// source is a stored (not derived) parameter of the same table; the arithmetic is done in
/// `f64` and rounded once to `f32`.
///
/// Batch normalisation `y = (x − mean) · scale / sqrt(var + eps) + shift` after a layer
/// `x = w ⋆ in + b` (a convolution or dense layer, linear in `w` and `b` per output channel
/// `o`) equals that layer with `w'[o, …] = w[o, …] · k[o]` and
/// `b'[o] = (b[o] − mean[o]) · k[o] + shift[o]`, where `k[o] = scale[o] / sqrt(var[o] + eps)`
/// (`b = 0` when the layer has no bias).
#[derive(Clone, Debug, PartialEq)]
pub enum Derivation {
    /// `w'[o, …] = w[o, …] · scale[o] / sqrt(var[o] + eps)`; `w` has the output channel on
    /// axis 0.
    FoldedWeight {
        /// The layer's weight `[O, …]`.
        weight: ParamId,
        /// Batch norm's scale `[O]`.
        scale: ParamId,
        /// Its running variance `[O]`.
        var: ParamId,
        /// Its epsilon.
        eps: f64,
    },
    /// `b'[o] = (b[o] − mean[o]) · scale[o] / sqrt(var[o] + eps) + shift[o]`.
    FoldedBias {
        /// The layer's bias `[O]`, if it has one.
        bias: Option<ParamId>,
        /// Batch norm's scale `[O]`.
        scale: ParamId,
        /// Its shift `[O]`.
        shift: ParamId,
        /// Its running mean `[O]`.
        mean: ParamId,
        /// Its running variance `[O]`.
        var: ParamId,
        /// Its epsilon.
        eps: f64,
    },
    /// A dense weight `[U, C·H·W]` whose columns, in `(c, h, w)` order, are put in
    /// `(h, w, c)` order: `w'[u, (h·W + w)·C + c] = w[u, (c·H + h)·W + w]`, for a dense
    /// layer reading a channels-last flatten instead of an NCHW one.
    ChannelsLastColumns {
        /// The dense layer's weight.
        source: ParamId,
        /// `C`, `H` and `W` of the flattened map.
        map: [u64; 3],
    },
    /// Indices `start..end` of `axis` of a stored parameter: one gate's rows of a fused
    /// recurrent weight, read once when weights are bound instead of sliced at every step.
    Slice {
        /// The sliced parameter.
        source: ParamId,
        /// The sliced axis.
        axis: usize,
        /// First index.
        start: u64,
        /// One past the last index.
        end: u64,
    },
}

impl Derivation {
    /// The stored parameters it reads.
    pub fn sources(&self) -> Vec<ParamId> {
        match self {
            Derivation::FoldedWeight {
                weight, scale, var, ..
            } => vec![*weight, *scale, *var],
            Derivation::FoldedBias {
                bias,
                scale,
                shift,
                mean,
                var,
                ..
            } => {
                let mut v: Vec<ParamId> = bias.iter().copied().collect();
                v.extend([*scale, *shift, *mean, *var]);
                v
            }
            Derivation::Slice { source, .. } | Derivation::ChannelsLastColumns { source, .. } => {
                vec![*source]
            }
        }
    }
}

/// How a scope came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKind {
    /// The net itself (the root scope, with an empty name).
    Net,
    /// A block call.
    Block,
    /// One branch of `concat { … }` / `add { … }`.
    Branch,
    /// One iteration of `repeat`.
    Repeat,
    /// The step of a recurrence.
    Cell,
}

/// A naming scope: layer names inside it are prefixed by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The full path (`inception3a/b2`); empty for the net.
    pub name: String,
    /// What made it.
    pub kind: ScopeKind,
    /// The enclosing scope; `None` only for the net.
    pub parent: Option<ScopeId>,
    /// The call or construct that made it.
    pub span: Span,
    /// For block and cell scopes: the block or cell name.
    pub callee: Option<String>,
}

/// One compiled net.
#[derive(Clone, Debug)]
pub struct Graph {
    /// The net's name.
    pub name: String,
    /// Its doc comment.
    pub doc: Option<String>,
    /// The net declaration.
    pub span: Span,
    /// Every parameter, in creation order (source order); names are unique.
    pub params: Vec<Param>,
    /// Every scope; `scopes[0]` is the net.
    pub scopes: Vec<Scope>,
    /// The top-level region: inputs are the net inputs, outputs the net outputs.
    pub body: Region,
}

impl Graph {
    /// An empty graph for net `name`.
    pub fn new(name: &str, doc: Option<String>, span: Span) -> Graph {
        Graph {
            name: name.to_string(),
            doc,
            span,
            params: Vec::new(),
            scopes: vec![Scope {
                name: String::new(),
                kind: ScopeKind::Net,
                parent: None,
                span,
                callee: None,
            }],
            body: Region::new(),
        }
    }

    /// The parameter `id`. Panics if it is not in the table (a compiler bug).
    pub fn param(&self, id: ParamId) -> &Param {
        self.params
            .get(id.0 as usize)
            .expect("param ids index the graph's table")
    }

    /// The scope `id`. Panics if it is not in the table (a compiler bug).
    pub fn scope(&self, id: ScopeId) -> &Scope {
        self.scopes
            .get(id.0 as usize)
            .expect("scope ids index the graph's table")
    }

    /// Adds a parameter and returns its id.
    pub fn add_param(&mut self, param: Param) -> ParamId {
        let id = ParamId(u32::try_from(self.params.len()).expect("fewer than 2^32 params"));
        self.params.push(param);
        id
    }

    /// Adds a scope and returns its id.
    pub fn add_scope(&mut self, scope: Scope) -> ScopeId {
        let id = ScopeId(u32::try_from(self.scopes.len()).expect("fewer than 2^32 scopes"));
        self.scopes.push(scope);
        id
    }

    /// The block calls enclosing `scope`, innermost first.
    pub fn call_chain(&self, scope: ScopeId) -> Vec<&Scope> {
        let mut out = Vec::new();
        let mut cur = Some(scope);
        while let Some(id) = cur {
            let Some(s) = self.scopes.get(id.0 as usize) else {
                break;
            };
            if matches!(s.kind, ScopeKind::Block | ScopeKind::Cell) {
                out.push(s);
            }
            cur = s.parent;
        }
        out
    }

    /// Elements of a parameter, or `None` on overflow.
    pub fn param_elements(&self, id: ParamId) -> Option<u64> {
        let p = self.param(id).ty.shape.elements()?.as_const()?;
        u64::try_from(p).ok()
    }
}
