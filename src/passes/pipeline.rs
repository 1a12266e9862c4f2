//! The pass manager: the [`Pass`] trait, the one ordered list of optimisation passes
//! ([`pipeline`], read top to bottom), the [`RewriteLog`] of applied `pass/rule` rewrites
//! with its `max_rewrites` limit for bisecting, and [`PassSelection`], parsed from the
//! `--passes` strings `all`, `none`, `cse,dce` (only those) or `-cse,-dce` (all but those).
//!
//! [`run`] applies the selected passes in pipeline order and runs the IR verifier after
//! every pass in tests and debug builds ([`super::verify_after`]); a verifier failure is
//! an internal compiler error that panics with the pass name and the IR dump.

use crate::diagnostics::Diagnostics;
use crate::ir::graph::{Graph, Node, NodeId, Param, ParamId, Region, ScopeId};
use crate::ir::op::Op;
use std::collections::BTreeSet;
use std::fmt;

/// One optimisation pass over the IR.
pub trait Pass {
    /// Its name in `--passes`, `--after` and the rewrite log.
    fn name(&self) -> &'static str;
    /// One line saying what it rewrites.
    fn doc(&self) -> &'static str;
    /// Rewrites `graph`, recording each rewrite in `log` and stopping when `log` allows no
    /// more. An error is a problem in the user's net, reported as diagnostics.
    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics>;
}

/// The optimisation passes, in the order they run.
pub fn pipeline() -> Vec<Box<dyn Pass>> {
    vec![
        // Dropout first: removing identities exposes more common subexpressions and puts
        // batch norms right after their layers.
        Box::new(super::drop_dropout::DropDropout),
        // Fold batch norms into the convolution or dense layer before them.
        Box::new(super::fold_batchnorm::FoldBatchNorm),
        // Evaluate constants and remove algebraic identities.
        Box::new(super::fold::Fold),
        // Then merge identical computations.
        Box::new(super::cse::Cse),
        // Then delete what no output needs any more.
        Box::new(super::dce::Dce),
        // Fuse what is left into groups, one loop nest each.
        Box::new(super::fuse::Fuse),
        // Let the producers of concat inputs (groups by now) write into the slices.
        Box::new(super::concat_in_place::ConcatInPlace),
        // Last, choose storage layouts (no rewrite after it has to keep them).
        Box::new(super::layout::ChooseLayout),
    ]
}

/// The names of the pipeline's passes, in order.
pub fn pass_names() -> Vec<&'static str> {
    pipeline().iter().map(|p| p.name()).collect()
}

/// The rewrites applied so far, as `pass/rule` entries, and how many more are allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RewriteLog {
    /// Every applied rewrite, in order: `cse/merge`, `dce/remove`, ….
    pub entries: Vec<String>,
    /// Stop after this many rewrites (for bisecting); `None` for no limit.
    pub max_rewrites: Option<usize>,
}

impl RewriteLog {
    /// An empty log allowing at most `max_rewrites` rewrites.
    pub fn new(max_rewrites: Option<usize>) -> RewriteLog {
        RewriteLog {
            entries: Vec::new(),
            max_rewrites,
        }
    }

    /// Whether one more rewrite is allowed.
    pub fn allows_more(&self) -> bool {
        self.max_rewrites.is_none_or(|m| self.entries.len() < m)
    }

    /// Asks to apply rewrite `pass/rule`: records it and returns true when allowed, returns
    /// false (and the pass must not apply it) when the limit is reached.
    pub fn rewrite(&mut self, pass: &str, rule: &str) -> bool {
        if !self.allows_more() {
            return false;
        }
        self.entries.push(format!("{pass}/{rule}"));
        true
    }
}

/// Which passes run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassSelection {
    enabled: BTreeSet<&'static str>,
}

impl Default for PassSelection {
    fn default() -> PassSelection {
        PassSelection::all()
    }
}

/// A `--passes` string named a pass that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPass {
    /// The name given.
    pub name: String,
    /// The passes there are.
    pub known: Vec<&'static str>,
}

impl fmt::Display for UnknownPass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown pass `{}` (known: {})",
            self.name,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownPass {}

impl PassSelection {
    /// Every pass.
    pub fn all() -> PassSelection {
        PassSelection {
            enabled: pass_names().into_iter().collect(),
        }
    }

    /// No pass.
    pub fn none() -> PassSelection {
        PassSelection {
            enabled: BTreeSet::new(),
        }
    }

    /// Parses `all`, `none`, a list of passes to run (`cse,dce`) or a list of passes to
    /// leave out (`-cse,-dce`, starting from all). Items may mix: `+x` or `x` adds a pass,
    /// `-x` removes one; the start is all passes when the first item is a removal, else none.
    pub fn parse(s: &str) -> Result<PassSelection, UnknownPass> {
        let s = s.trim();
        match s {
            "all" => return Ok(PassSelection::all()),
            "none" | "" => return Ok(PassSelection::none()),
            _ => {}
        }
        let known = pass_names();
        let items: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        let mut sel = if items.first().is_some_and(|i| i.starts_with('-')) {
            PassSelection::all()
        } else {
            PassSelection::none()
        };
        for item in items {
            let (add, name) = match item.strip_prefix('-') {
                Some(n) => (false, n),
                None => (true, item.strip_prefix('+').unwrap_or(item)),
            };
            let Some(&known_name) = known.iter().find(|k| **k == name) else {
                return Err(UnknownPass {
                    name: name.to_string(),
                    known,
                });
            };
            if add {
                sel.enabled.insert(known_name);
            } else {
                sel.enabled.remove(known_name);
            }
        }
        Ok(sel)
    }

    /// All passes but `name`.
    pub fn all_but(name: &str) -> PassSelection {
        let mut sel = PassSelection::all();
        sel.enabled.retain(|n| *n != name);
        sel
    }

    /// Whether `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        self.enabled.contains(name)
    }
}

/// How to run the pipeline.
#[derive(Clone, Debug, Default)]
pub struct PassOptions {
    /// Which passes run.
    pub selection: PassSelection,
    /// Stop after this many rewrites.
    pub max_rewrites: Option<usize>,
    /// Keep a copy of the IR after this pass (`lower` for the IR before any pass).
    pub after: Option<String>,
}

/// What running the pipeline gave besides the rewritten graph.
#[derive(Clone, Debug, Default)]
pub struct PipelineResult {
    /// The applied rewrites.
    pub log: RewriteLog,
    /// The IR right after [`PassOptions::after`], if asked for (also when that pass was
    /// switched off: then the IR at the point where it would have run).
    pub ir_after: Option<Graph>,
}

/// Runs the selected passes of the pipeline over `graph`, in order, verifying after each.
///
/// An `after` name that is neither `lower` nor a pass is an [`UnknownPass`]; check it with
/// [`check_after`] before compiling.
pub fn run(graph: &mut Graph, opts: &PassOptions) -> Result<PipelineResult, Diagnostics> {
    let mut result = PipelineResult {
        log: RewriteLog::new(opts.max_rewrites),
        ir_after: None,
    };
    if opts.after.as_deref() == Some("lower") {
        result.ir_after = Some(graph.clone());
    }
    for pass in pipeline() {
        if opts.selection.runs(pass.name()) {
            pass.run(graph, &mut result.log)?;
            super::verify_after(graph, pass.name());
        }
        if opts.after.as_deref() == Some(pass.name()) {
            result.ir_after = Some(graph.clone());
        }
    }
    Ok(result)
}

/// Checks that `after` names `lower` or a pass of the pipeline.
pub fn check_after(after: &str) -> Result<(), UnknownPass> {
    let known = pass_names();
    if after == "lower" || known.contains(&after) {
        Ok(())
    } else {
        let mut known = known;
        known.insert(0, "lower");
        Err(UnknownPass {
            name: after.to_string(),
            known,
        })
    }
}

/// Calls `f` on the loop bodies inside `region` (innermost first), then on `region`,
/// but not inside fused groups: for the passes that form groups and place their results
/// (a group is one kernel, not a region to rewrite further).
pub fn for_each_step_region(region: &mut Region, f: &mut dyn FnMut(&mut Region)) {
    for id in region.node_ids() {
        if let Op::Loop(l) = &mut region.node_mut(id).op {
            for_each_step_region(&mut l.body, f);
        }
    }
    f(region);
}

/// Calls `f` on every region of `region`: the loop bodies and fused groups inside it
/// (innermost first), then `region` itself, so passes handle nested regions the same way
/// as the net's body.
pub fn for_each_region(region: &mut Region, f: &mut dyn FnMut(&mut Region)) {
    for id in region.node_ids() {
        match &mut region.node_mut(id).op {
            Op::Loop(l) => for_each_region(&mut l.body, f),
            Op::Group(g) => for_each_region(&mut g.body, f),
            _ => {}
        }
    }
    f(region);
}

/// `base` if no parameter of `params` has that name, else the first free `base.2`,
/// `base.3`, …: names of the parameter table must stay unique (a verifier invariant).
pub fn unique_param_name(params: &[Param], base: &str) -> String {
    let taken = |n: &str| params.iter().any(|p| p.name == n);
    if !taken(base) {
        return base.to_string();
    }
    (2u64..)
        .map(|k| format!("{base}.{k}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string())
}

/// Appends `param` to the table and returns its id, or `None` (nothing added) when the
/// table already holds 2^32 parameters.
pub fn push_param(params: &mut Vec<Param>, param: Param) -> Option<ParamId> {
    let id = ParamId(u32::try_from(params.len()).ok()?);
    params.push(param);
    Some(id)
}

/// The `Param` node reading parameter `id` in `r`, added (with `scope`) when the region has
/// none: a region reads each parameter through at most one node (a verifier invariant).
pub fn param_node(r: &mut Region, params: &[Param], id: ParamId, scope: ScopeId) -> Option<NodeId> {
    let existing = r
        .node_ids()
        .into_iter()
        .find(|n| matches!(r.node(*n).op, Op::Param(p) if p == id));
    if existing.is_some() {
        return existing;
    }
    let p = params.get(id.0 as usize)?;
    let node = Node {
        op: Op::Param(id),
        outputs: vec![p.ty.clone()],
        name: String::new(),
        span: p.span,
        scope,
    };
    Some(r.add(node, &[]))
}
