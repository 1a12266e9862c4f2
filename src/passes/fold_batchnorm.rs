//! `fold_batchnorm`: folds a `batchnorm` into the `conv2d` or `dense` layer that feeds it.
//!
//! At inference batch normalisation is an affine map per channel with fixed statistics,
//! `y = (x − mean) · k + shift` with `k = scale / sqrt(var + eps)`, and a convolution or
//! dense layer is linear in its weight and bias per output channel `o`. So
//! `batchnorm(layer(x, w, b))` equals `layer(x, w', b')` with `w'[o, …] = w[o, …] · k[o]`
//! and `b'[o] = (b[o] − mean[o]) · k[o] + shift[o]` (`b = 0` without a bias): the
//! formulas of [`Derivation::FoldedWeight`] and [`Derivation::FoldedBias`].
//!
//! The rewrite replaces the pair by one layer node (the layer's op, name, span and scope,
//! now always with a bias) reading two new [`ParamKind::Derived`] parameters,
//! `<layer>/weight.bn_folded` and `<layer>/bias.bn_folded`. Their values are computed when
//! weights are bound ([`crate::runtime::derive`]), in `f64` and rounded once to `f32`;
//! weights files keep the unfolded tensors, which stay in the table.
//!
//! Safe when, and only when, it is checked:
//!
//! - the batch norm's input is the layer's only output and nothing else reads it (not
//!   another node, not a region output): the unnormalised value disappears;
//! - the layer's weight and bias, and the batch norm's four statistics, are `Param` nodes
//!   of stored (not derived) parameters, so the derivation has values to read;
//! - the channel the batch norm normalises (axis 1) is the layer's output channel: always
//!   for a convolution `[N, O, H, W]`; for a dense layer only when its output is 2-D
//!   `[N, U]` (on `[N, T, U]` axis 1 is time);
//! - the statistics and bias have shape `[O]`, `O` the weight's axis 0.
//!
//! The result differs from the unfolded computation only by `f32` rounding. Rules:
//! `fold_batchnorm/conv` and `fold_batchnorm/dense`, one per folded pair. Loop bodies and
//! fused groups are rewritten too.

use super::pipeline::{
    for_each_region, param_node, push_param, unique_param_name, Pass, RewriteLog,
};
use crate::diagnostics::Diagnostics;
use crate::ir::graph::{
    Derivation, Graph, Node, NodeId, Param, ParamId, ParamKind, Region, ValueRef,
};
use crate::ir::op::Op;
use crate::ir::shape::{Dim, TensorType};

/// The pass.
pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold_batchnorm"
    }

    fn doc(&self) -> &'static str {
        "folds a batch norm into the convolution or dense layer before it"
    }

    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics> {
        // Regions are rewritten one at a time while the graph-level table grows.
        let Graph { body, params, .. } = graph;
        for_each_region(body, &mut |r| fold_in(r, params, log));
        Ok(())
    }
}

/// A batch norm that can be folded into the layer before it.
struct Fold {
    /// The batch norm node.
    bn: NodeId,
    /// The conv2d or dense node.
    layer: NodeId,
    /// The layer's data input.
    x: ValueRef,
    /// The layer's weight `[O, …]`.
    weight: ParamId,
    /// Its bias `[O]`, if any.
    bias: Option<ParamId>,
    /// Scale, shift, running mean, running variance, each `[O]`.
    stats: [ParamId; 4],
    /// The batch norm's epsilon.
    eps: f64,
    /// The number of output channels `O`.
    channels: u64,
    /// `conv` or `dense`.
    rule: &'static str,
}

/// One sweep over `r` in topological order, folding every batch norm that qualifies.
fn fold_in(r: &mut Region, params: &mut Vec<Param>, log: &mut RewriteLog) {
    for id in r.topo_order() {
        if !r.contains(id) {
            continue;
        }
        let Some(f) = find(r, params, id) else {
            continue;
        };
        if !log.rewrite("fold_batchnorm", f.rule) {
            return;
        }
        apply(r, params, &f);
    }
}

/// The parameter `v` reads, when `v` is the value of a `Param` node of a stored parameter.
fn stored_param(r: &Region, params: &[Param], v: ValueRef) -> Option<ParamId> {
    match r.node(v.node).op {
        Op::Param(id) if v.port == 0 => {
            let p = params.get(id.0 as usize)?;
            (p.kind != ParamKind::Derived).then_some(id)
        }
        _ => None,
    }
}

/// Whether parameter `id` has shape `[channels]`.
fn is_per_channel(params: &[Param], id: ParamId, channels: u64) -> bool {
    params
        .get(id.0 as usize)
        .is_some_and(|p| p.ty.shape.dims() == [Dim::Known(channels)])
}

/// The fold of batch norm `bn`, if every condition of the module docs holds.
fn find(r: &Region, params: &[Param], bn: NodeId) -> Option<Fold> {
    let Op::BatchNorm { eps } = r.node(bn).op else {
        return None;
    };
    let bn_in = r.inputs_of(bn);
    let [lv, s, sh, m, v] = bn_in.as_slice() else {
        return None;
    };
    let layer = lv.node;
    let rule = match r.node(layer).op {
        Op::Conv2d(_) => "conv",
        Op::Dense => "dense",
        _ => return None,
    };
    // The layer's value is read by the batch norm alone.
    if lv.port != 0
        || r.users_of(layer) != [bn]
        || r.outputs.iter().any(|o| o.value.node == layer)
        || bn_in.iter().filter(|i| i.node == layer).count() != 1
    {
        return None;
    }
    let layer_in = r.inputs_of(layer);
    let (x, w, b) = match layer_in.as_slice() {
        [x, w] => (*x, *w, None),
        [x, w, b] => (*x, *w, Some(*b)),
        _ => return None,
    };
    let weight = stored_param(r, params, w)?;
    let bias = match b {
        Some(b) => Some(stored_param(r, params, b)?),
        None => None,
    };
    let stats = [
        stored_param(r, params, *s)?,
        stored_param(r, params, *sh)?,
        stored_param(r, params, *m)?,
        stored_param(r, params, *v)?,
    ];
    // Axis 1 of the layer's output is its output channel: any conv output, a 2-D dense one.
    let out = r.node(layer).outputs.first()?;
    let rank_ok = match rule {
        "conv" => out.shape.rank() == 4,
        _ => out.shape.rank() == 2,
    };
    let channels = out.shape.dims().get(1)?.known()?;
    let w_ty = &params.get(weight.0 as usize)?.ty;
    if !rank_ok || w_ty.shape.dims().first()?.known()? != channels {
        return None;
    }
    let per_channel = bias
        .iter()
        .chain(&stats)
        .all(|p| is_per_channel(params, *p, channels));
    if !per_channel {
        return None;
    }
    // Room in the table for the two new parameters.
    u32::try_from(params.len() + 2).ok()?;
    Some(Fold {
        bn,
        layer,
        x,
        weight,
        bias,
        stats,
        eps,
        channels,
        rule,
    })
}

/// The id of a derived parameter with derivation `how` and type `ty`: an existing one with
/// exactly that derivation (the same layer folded with the same batch norm elsewhere, in
/// another region), else a new one named after `base`.
fn derived(
    params: &mut Vec<Param>,
    how: Derivation,
    ty: TensorType,
    base: &str,
    span: crate::diagnostics::Span,
) -> Option<ParamId> {
    if let Some(i) = params
        .iter()
        .position(|p| p.derived.as_ref() == Some(&how) && p.ty == ty)
    {
        return u32::try_from(i).ok().map(ParamId);
    }
    let name = unique_param_name(params, base);
    push_param(
        params,
        Param {
            name,
            ty,
            kind: ParamKind::Derived,
            init: None,
            derived: Some(how),
            span,
        },
    )
}

/// Replaces the batch norm and its layer by one layer node reading the derived weight and
/// bias (added to the table, or found there), each through one `Param` node of `r`.
fn apply(r: &mut Region, params: &mut Vec<Param>, f: &Fold) {
    let [scale, shift, mean, var] = f.stats;
    let Some(wp) = params.get(f.weight.0 as usize) else {
        return;
    };
    let (w_name, w_ty, span) = (wp.name.clone(), wp.ty.clone(), wp.span);
    let layer = r.node(f.layer).clone();
    // `conv1/weight` → `conv1`; a weight named otherwise keeps its whole name.
    let prefix = w_name
        .strip_suffix("/weight")
        .unwrap_or(&w_name)
        .to_string();
    let b_ty = TensorType::new(w_ty.dtype, vec![Dim::Known(f.channels)]);
    let w_how = Derivation::FoldedWeight {
        weight: f.weight,
        scale,
        var,
        eps: f.eps,
    };
    let b_how = Derivation::FoldedBias {
        bias: f.bias,
        scale,
        shift,
        mean,
        var,
        eps: f.eps,
    };
    let Some(w_id) = derived(
        params,
        w_how,
        w_ty,
        &format!("{prefix}/weight.bn_folded"),
        span,
    ) else {
        return;
    };
    let Some(b_id) = derived(
        params,
        b_how,
        b_ty,
        &format!("{prefix}/bias.bn_folded"),
        span,
    ) else {
        return;
    };
    let (Some(wn), Some(bn)) = (
        param_node(r, params, w_id, layer.scope),
        param_node(r, params, b_id, layer.scope),
    ) else {
        return;
    };
    let node = Node {
        op: layer.op,
        outputs: layer.outputs,
        name: layer.name,
        span: layer.span,
        scope: layer.scope,
    };
    let folded = r.add(node, &[f.x, Region::value(wn), Region::value(bn)]);
    r.replace_uses(Region::value(f.bn), Region::value(folded));
    r.remove(f.bn);
    r.remove(f.layer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::pipeline::{self, PassOptions, PassSelection};
    use crate::runtime::{interp, weights, Tensor};
    use ndarray::{ArrayD, IxDyn};
    use std::collections::BTreeMap;

    fn compile(src: &str) -> Graph {
        let (program, diags) =
            crate::check_program(crate::syntax::loader::load_source("test.net", src));
        assert!(!diags.has_errors(), "{diags:?}");
        crate::passes::compile(&program, &crate::passes::CompileOptions::default())
            .map(|c| c.graph)
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn run_pass(g: &mut Graph) -> Vec<String> {
        let opts = PassOptions {
            selection: PassSelection::parse("fold_batchnorm").expect("a pass"),
            ..Default::default()
        };
        pipeline::run(g, &opts).expect("runs").log.entries
    }

    fn count(r: &Region, pred: impl Fn(&Op) -> bool) -> usize {
        r.node_ids()
            .iter()
            .filter(|id| pred(&r.node(**id).op))
            .count()
    }

    /// Deterministic values in `[lo, hi)`.
    fn values(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = ((i as f32 + 1.0) * 0.618_034 + seed as f32 * 0.414_214).fract();
                lo + (hi - lo) * t
            })
            .collect()
    }

    /// `netc init`'s weights with random batch-norm statistics (init makes them the
    /// identity, which would hide a wrong fold).
    fn weights_with_stats(g: &Graph) -> weights::Weights {
        let mut w = weights::init(&weights::expected(g), 5);
        for (i, (name, (shape, data))) in w.tensors.iter_mut().enumerate() {
            let n: usize = shape.iter().product();
            let seed = i as u32;
            let (lo, hi) = if name.ends_with("/scale") {
                (0.5, 1.5)
            } else if name.ends_with("/var") || name.ends_with("running_var") {
                (0.2, 2.0)
            } else if name.ends_with("/shift") || name.contains("mean") {
                (-0.5, 0.5)
            } else if name.ends_with("/bias") {
                (-0.3, 0.3)
            } else {
                continue;
            };
            *data = values(n, seed, lo, hi);
        }
        w
    }

    fn input(shape: &[usize]) -> BTreeMap<String, Tensor> {
        let n = shape.iter().product();
        let x = ArrayD::from_shape_vec(IxDyn(shape), values(n, 99, -1.0, 1.0)).expect("fits");
        BTreeMap::from([("x".to_string(), Tensor::F32(x))])
    }

    /// The largest difference relative to the largest magnitude of `b`.
    fn rel(a: &Tensor, b: &Tensor) -> f64 {
        let (Tensor::F32(a), Tensor::F32(b)) = (a, b) else {
            panic!("float outputs");
        };
        let scale = b.iter().fold(1e-30_f64, |m, x| m.max(f64::from(x.abs())));
        a.iter()
            .zip(b)
            .fold(0.0, |m, (x, y)| m.max(f64::from((x - y).abs()) / scale))
    }

    /// Folds `src` and checks that the outputs agree with the unfolded net.
    fn folds_and_agrees(src: &str, shape: &[usize], rule: &str, folds: usize) -> Graph {
        let g = compile(src);
        let mut h = g.clone();
        let log = run_pass(&mut h);
        assert_eq!(log, vec![format!("fold_batchnorm/{rule}"); folds]);
        assert_eq!(count(&h.body, |o| matches!(o, Op::BatchNorm { .. })), 0);
        let w = weights_with_stats(&g);
        let x = input(shape);
        let want = interp::run(&g, &w, &x).expect("runs unfolded");
        let got = interp::run(&h, &w, &x).expect("runs folded");
        for (name, t) in &got {
            let e = rel(t, &want[name]);
            assert!(e <= 1e-5, "{name}: relative error {e}");
        }
        h
    }

    #[test]
    fn folds_a_conv_without_bias() {
        let h = folds_and_agrees(
            "net t(x: f32[N, 2, 6, 6]) -> y { \
             y = x -> c: conv(3, kernel: 3, bias: false) -> bn: batchnorm(eps: 0.001) -> relu }",
            &[2, 2, 6, 6],
            "conv",
            1,
        );
        let conv = h
            .body
            .node_ids()
            .into_iter()
            .find(|id| matches!(h.body.node(*id).op, Op::Conv2d(_)))
            .expect("a conv");
        assert_eq!(h.body.node(conv).name, "c");
        let inputs = h.body.inputs_of(conv);
        assert_eq!(inputs.len(), 3, "the folded conv has a bias");
        let names: Vec<&str> = inputs[1..]
            .iter()
            .map(|v| match h.body.node(v.node).op {
                Op::Param(p) => h.param(p).name.as_str(),
                _ => panic!("a param"),
            })
            .collect();
        assert_eq!(names, ["c/weight.bn_folded", "c/bias.bn_folded"]);
        let folded = h
            .params
            .iter()
            .filter(|p| p.kind == ParamKind::Derived)
            .count();
        assert_eq!(folded, 2);
        assert!(matches!(
            h.params.iter().find(|p| p.name == "c/bias.bn_folded").and_then(|p| p.derived.clone()),
            Some(Derivation::FoldedBias { bias: None, eps, .. }) if eps == 0.001
        ));
        // The stored weights are unchanged: a file for the unfolded net fits.
        assert_eq!(
            weights::expected(&h).len(),
            weights::expected(&compile(
                "net t(x: f32[N, 2, 6, 6]) -> y { \
                 y = x -> c: conv(3, kernel: 3, bias: false) -> bn: batchnorm(eps: 0.001) -> relu }"
            ))
            .len()
        );
    }

    #[test]
    fn folds_convs_with_bias_strides_and_groups() {
        folds_and_agrees(
            "net t(x: f32[N, 4, 9, 9]) -> y { \
             y = x -> conv(6, kernel: 3, stride: 2, pad: 1) -> batchnorm \
               -> conv(6, kernel: 3, groups: 2) -> batchnorm }",
            &[3, 4, 9, 9],
            "conv",
            2,
        );
    }

    #[test]
    fn folds_a_dense_layer() {
        folds_and_agrees(
            "net t(x: f32[N, 5]) -> y { y = x -> dense(4) -> batchnorm -> dense(3, bias: false) -> batchnorm }",
            &[3, 5],
            "dense",
            2,
        );
    }

    #[test]
    fn folds_in_a_loop_body() {
        let h = folds_and_agrees(
            "cell c(hidden) { state h = zeros[hidden] step x { \
               h = tanh(batchnorm(dense(concat(h, x), hidden))) emit h } } \
             net t(x: f32[N, 4, 2]) -> y { y = x -> unroll(c(3)) }",
            &[2, 4, 2],
            "dense",
            1,
        );
        let body = h
            .body
            .node_ids()
            .into_iter()
            .find_map(|id| match &h.body.node(id).op {
                Op::Loop(l) => Some(l.body.clone()),
                _ => None,
            })
            .expect("a loop");
        assert_eq!(count(&body, |o| matches!(o, Op::BatchNorm { .. })), 0);
        assert_eq!(count(&body, |o| matches!(o, Op::Param(_))), 2 + 4 + 2);
    }

    #[test]
    fn keeps_a_conv_whose_output_is_read_elsewhere() {
        let mut g = compile(
            "net t(x: f32[N, 2, 6, 6]) -> (y, z) { \
             c = x -> conv(3, kernel: 3) \
             y = c -> batchnorm \
             z = c -> relu }",
        );
        assert!(run_pass(&mut g).is_empty());
        assert_eq!(count(&g.body, |o| matches!(o, Op::BatchNorm { .. })), 1);
        // Also when the conv's value is itself a net output.
        let mut g = compile(
            "net t(x: f32[N, 2, 6, 6]) -> (y, c) { c = x -> conv(3, kernel: 3) \
             y = c -> batchnorm }",
        );
        assert!(run_pass(&mut g).is_empty());
    }

    #[test]
    fn keeps_a_dense_layer_on_sequences() {
        // On [N, T, U] batch norm normalises axis 1, time, not the dense layer's units.
        let mut g = compile("net t(x: f32[N, 4, 5]) -> y { y = x -> dense(4) -> batchnorm }");
        assert!(run_pass(&mut g).is_empty());
    }

    #[test]
    fn keeps_a_batchnorm_after_other_ops() {
        let mut g = compile(
            "net t(x: f32[N, 2, 6, 6]) -> y { y = x -> conv(3, kernel: 3) -> relu -> batchnorm }",
        );
        assert!(run_pass(&mut g).is_empty());
    }

    #[test]
    fn respects_the_rewrite_limit() {
        let mut g = compile(
            "net t(x: f32[N, 2, 6, 6]) -> y { \
             y = x -> conv(3, kernel: 3) -> batchnorm -> conv(3, kernel: 3) -> batchnorm }",
        );
        let opts = PassOptions {
            selection: PassSelection::parse("fold_batchnorm").expect("a pass"),
            max_rewrites: Some(1),
            after: None,
        };
        let log = pipeline::run(&mut g, &opts).expect("runs").log;
        assert_eq!(log.entries, ["fold_batchnorm/conv"]);
        assert_eq!(count(&g.body, |o| matches!(o, Op::BatchNorm { .. })), 1);
    }
}
