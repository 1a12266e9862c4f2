//! Recurrences ([`Op::Loop`]) in ONNX.
//!
//! - **Built-in `rnn`, `lstm`, `gru`** (with [`Recurrent::Native`], the default) become
//!   ONNX's `RNN`, `LSTM` and `GRU` operators. netc keeps one weight `[G·h, h + x]` acting
//!   on `[h, x]` and one bias `[G·h]`; ONNX wants `W [1, G·h, x]`, `R [1, G·h, h]` and
//!   `B [1, 2·G·h]` (input bias, then recurrent bias). Nodes derive them from the
//!   initializers: the gate blocks are reordered (netc's LSTM order i, f, g, o to ONNX's
//!   i, o, f, c), the columns split (`R` is the first `h`, `W` the rest), and the recurrent
//!   half of `B` is zero. ONNX's GRU keeps `(1 − z)` for the candidate where netc keeps `z`
//!   (`h = (1 − z) ⊙ h + z ⊙ h̃`), so its update gate is netc's with the pre-activation
//!   negated: the z rows of the weight and bias are multiplied by −1 (σ(−a) = 1 − σ(a)).
//!   netc's reset gate acts before the recurrent product: `linear_before_reset = 0`.
//!   Sequences are `[N, T, F]` in netc and `[T, N, F]` (layout 0) in ONNX: transposes
//!   around the node.
//! - **Everything else scanned over `T`** (user cells under `unroll`, or built-ins with
//!   [`Recurrent::Scan`]) becomes a `Scan` whose body is the step region, with
//!   `scan_input_axes = scan_output_axes = [1]`; `T` stays symbolic.
//! - **`steps: K`** (the input fed whole at every step) becomes a `Loop` of K iterations
//!   whose body reads the input from the enclosing graph; its stacked outputs `[K, N, …]`
//!   are transposed to `[N, K, …]`.
//!
//! `emit: last` takes the last step's emitted value (`Y_h`, or a `Gather` of index −1 of
//! the stacked outputs); `emit: state` returns only the final states.

use super::onnx::{axis_i64, without, ExportError, Exporter, Recurrent, RegionNames};
use super::onnx_build::{self as build, attr_graph, attr_int, attr_ints};
use super::onnx_proto as pb;
use crate::ir::graph::{NodeId, ParamId, Region, ValueRef};
use crate::ir::op::{Emit, Loop, LoopKind, Op};
use crate::ir::shape::Dim;

/// The ONNX recurrent operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NativeOp {
    Rnn,
    Lstm,
    Gru,
}

impl NativeOp {
    fn op_type(self) -> &'static str {
        match self {
            NativeOp::Rnn => "RNN",
            NativeOp::Lstm => "LSTM",
            NativeOp::Gru => "GRU",
        }
    }
}

/// A built-in recurrence that maps onto an ONNX operator.
struct NativeCell {
    /// Which operator.
    op: NativeOp,
    /// Gates: 1, 4 or 3.
    gates: u64,
    /// Hidden size `h`.
    hidden: u64,
    /// Input features `x`.
    features: u64,
    /// The fused weight `[G·h, h + x]`.
    weight: ParamId,
    /// The fused bias `[G·h]`.
    bias: ParamId,
}

impl Exporter<'_> {
    /// Emits the recurrence `id` of `region`, whose inputs have the ONNX names `ins`.
    pub(super) fn emit_loop(
        &mut self,
        region: &Region,
        id: NodeId,
        lp: &Loop,
        ins: &[String],
        rn: &mut RegionNames,
    ) -> Result<(), ExportError> {
        if let Some(cell) = self.native_cell(lp) {
            self.emit_native(region, id, lp, &cell, ins, rn)
        } else if lp.scan {
            self.emit_scan(region, id, lp, ins, rn)
        } else {
            self.emit_steps(region, id, lp, ins, rn)
        }
    }

    /// The ONNX operator for a built-in recurrence whose body has the built-in's weights.
    fn native_cell(&self, lp: &Loop) -> Option<NativeCell> {
        if self.opts.recurrent != Recurrent::Native || !lp.scan {
            return None;
        }
        let (op, gates, states) = match &lp.kind {
            LoopKind::Rnn => (NativeOp::Rnn, 1, 1),
            LoopKind::Lstm => (NativeOp::Lstm, 4, 2),
            LoopKind::Gru => (NativeOp::Gru, 3, 1),
            LoopKind::Cell(_) => return None,
        };
        if lp.states != states {
            return None;
        }
        let params: Vec<ParamId> = lp
            .body
            .node_ids()
            .into_iter()
            .filter_map(|n| {
                if let Op::Param(p) = &lp.body.node(n).op {
                    Some(*p)
                } else {
                    None
                }
            })
            .collect();
        let known = |p: ParamId| -> Option<Vec<u64>> {
            self.graph
                .param(p)
                .ty
                .shape
                .dims()
                .iter()
                .map(Dim::known)
                .collect()
        };
        let (weight, bias) = match params.as_slice() {
            [a, b] if known(*a)?.len() == 2 => (*a, *b),
            [a, b] => (*b, *a),
            _ => return None,
        };
        let (w, b) = (known(weight)?, known(bias)?);
        let ([rows, width], [brows]) = (w.as_slice(), b.as_slice()) else {
            return None;
        };
        let step = lp.body.inputs.get(states)?;
        let step_ty = lp.body.node(*step).outputs.first()?;
        let features = step_ty.shape.dims().get(1).and_then(Dim::known)?;
        let hidden = rows / gates;
        let fits = rows % gates == 0
            && brows == rows
            && *width == hidden + features
            && step_ty.shape.rank() == 2;
        fits.then_some(NativeCell {
            op,
            gates,
            hidden,
            features,
            weight,
            bias,
        })
    }

    /// A built-in recurrence as an ONNX `RNN`, `LSTM` or `GRU` node.
    fn emit_native(
        &mut self,
        region: &Region,
        id: NodeId,
        lp: &Loop,
        cell: &NativeCell,
        ins: &[String],
        rn: &mut RegionNames,
    ) -> Result<(), ExportError> {
        let node = region.node(id);
        let layer = node.name.clone();
        let l = layer.as_str();
        let (h, g) = (cell.hidden, cell.gates);
        let hi = build::to_i64(h);
        let gh = build::to_i64(g * h);
        let x = ins
            .get(lp.states)
            .cloned()
            .ok_or_else(|| internal(node.span))?;
        let xt = self.b.node1(
            "Transpose",
            &format!("{l}/x_tnf"),
            vec![x],
            vec![attr_ints("perm", &[1, 0, 2])],
        );
        let w = self.param(cell.weight)?;
        let bias = self.param(cell.bias)?;
        // Gate blocks in ONNX's order and sign.
        let (wp, bp) = match cell.op {
            NativeOp::Lstm => {
                // netc i, f, g, o → ONNX i, o, f, c: blocks 0, 3, 1, 2.
                let idx: Vec<i64> = [0i64, 3, 1, 2]
                    .iter()
                    .flat_map(|blk| (blk * hi)..((blk + 1) * hi))
                    .collect();
                let idx = self.b.const_i64(l, &idx, false);
                let a = vec![attr_int("axis", 0)];
                let wp = self.b.node1(
                    "Gather",
                    &format!("{l}/weight_iofc"),
                    vec![w, idx.clone()],
                    a.clone(),
                );
                let bp = self
                    .b
                    .node1("Gather", &format!("{l}/bias_iofc"), vec![bias, idx], a);
                (wp, bp)
            }
            NativeOp::Gru => {
                // z' = 1 − z: negate the update gate's rows.
                let n = usize::try_from(g * h).unwrap_or(usize::MAX);
                let hu = usize::try_from(h).unwrap_or(usize::MAX);
                let sign: Vec<f32> = (0..n).map(|r| if r < hu { -1.0 } else { 1.0 }).collect();
                let col = self.b.constant(
                    &format!("{l}/z_sign"),
                    build::tensor_f32("", &[gh, 1], &sign),
                );
                let row = self
                    .b
                    .constant(&format!("{l}/z_sign"), build::tensor_f32("", &[gh], &sign));
                let wp = self
                    .b
                    .node1("Mul", &format!("{l}/weight_zrh"), vec![w, col], Vec::new());
                let bp = self
                    .b
                    .node1("Mul", &format!("{l}/bias_zrh"), vec![bias, row], Vec::new());
                (wp, bp)
            }
            NativeOp::Rnn => (w, bias),
        };
        let axes0 = self.b.const_i64(l, &[0], false);
        let wu = self.b.node1(
            "Unsqueeze",
            &format!("{l}/weight_1"),
            vec![wp, axes0.clone()],
            Vec::new(),
        );
        let (zero, hcol) = (
            self.b.const_i64(l, &[0], false),
            self.b.const_i64(l, &[hi], false),
        );
        let end = self
            .b
            .const_i64(l, &[hi + build::to_i64(cell.features)], false);
        let axis2 = self.b.const_i64(l, &[2], false);
        let r = self.b.node1(
            "Slice",
            &format!("{l}/R"),
            vec![wu.clone(), zero, hcol.clone(), axis2.clone()],
            Vec::new(),
        );
        let wx = self.b.node1(
            "Slice",
            &format!("{l}/W"),
            vec![wu, hcol, end, axis2],
            Vec::new(),
        );
        let zshape = self.b.const_i64(l, &[gh], false);
        let zeros = self.b.node1(
            "ConstantOfShape",
            &format!("{l}/recurrent_bias"),
            vec![zshape],
            vec![build::attr_tensor(
                "value",
                build::tensor_f32("", &[1], &[0.0]),
            )],
        );
        let b2 = self.b.node1(
            "Concat",
            &format!("{l}/bias_2"),
            vec![bp, zeros],
            vec![attr_int("axis", 0)],
        );
        let bb = self.b.node1(
            "Unsqueeze",
            &format!("{l}/B"),
            vec![b2, axes0.clone()],
            Vec::new(),
        );
        // Initial states: omitted when they are zeros, else [1, N, h].
        let init_vals = region.inputs_of(id);
        let mut inits = Vec::new();
        for s in 0..lp.states {
            let zero_fill = init_vals.get(s).is_some_and(
                |v| matches!(region.node(v.node).op, Op::Fill { value, .. } if value == 0.0),
            );
            if zero_fill {
                inits.push(String::new());
            } else {
                let v = ins.get(s).cloned().ok_or_else(|| internal(node.span))?;
                inits.push(self.b.node1(
                    "Unsqueeze",
                    &format!("{l}/initial_{s}"),
                    vec![v, axes0.clone()],
                    Vec::new(),
                ));
            }
        }
        let mut inputs = vec![xt, wx, r, bb];
        if inits.iter().any(|i| !i.is_empty()) {
            inputs.push(String::new()); // sequence_lens: every sequence has T steps
            inputs.extend(inits);
        }
        // Outputs: Y [T, 1, N, h], Y_h [1, N, h], Y_c [1, N, h], each only when needed.
        let port = |p: usize| ValueRef {
            node: id,
            port: u32::try_from(p).unwrap_or(u32::MAX),
        };
        let k = lp.states;
        let emit_used = lp.emit != Emit::State && used(region, port(k));
        let need_y = emit_used && lp.emit == Emit::All;
        let need_yh = used(region, port(0)) || (emit_used && lp.emit == Emit::Last);
        let need_yc = k == 2 && used(region, port(1));
        let mut outs = vec![String::new(); 3];
        if need_y {
            outs[0] = self.b.values.fresh(&format!("{l}/Y"));
        }
        if need_yh || !(need_y || need_yc) {
            outs[1] = self.b.values.fresh(&format!("{l}/Y_h"));
        }
        if need_yc {
            outs[2] = self.b.values.fresh(&format!("{l}/Y_c"));
        }
        let node_outs: Vec<String> = {
            let last = outs.iter().rposition(|o| !o.is_empty()).unwrap_or(0);
            outs[..=last].to_vec()
        };
        let mut attrs = vec![attr_int("hidden_size", hi)];
        if cell.op == NativeOp::Gru {
            attrs.push(attr_int("linear_before_reset", 0));
        }
        self.b
            .node_into(cell.op.op_type(), l, inputs, node_outs, attrs);
        // netc's outputs: the final states, then the emitted value.
        let squeeze0 = |ex: &mut Self, src: &str, p: usize, rn: &mut RegionNames| {
            let y = ex.out(region, rn, port(p));
            let axes = ex.b.const_i64(l, &[0], false);
            ex.b.node_into(
                "Squeeze",
                "",
                vec![src.to_string(), axes],
                vec![y.clone()],
                Vec::new(),
            );
            rn.vals.insert(port(p), y);
        };
        if used(region, port(0)) {
            squeeze0(self, &outs[1], 0, rn);
        }
        if need_yc {
            squeeze0(self, &outs[2], 1, rn);
        }
        if emit_used {
            match lp.emit {
                Emit::Last => squeeze0(self, &outs[1], k, rn),
                Emit::All => {
                    let axes = self.b.const_i64(l, &[1], false);
                    let tnh = self.b.node1(
                        "Squeeze",
                        &format!("{l}/y_tnh"),
                        vec![outs[0].clone(), axes],
                        Vec::new(),
                    );
                    let y = self.out(region, rn, port(k));
                    self.b.node_into(
                        "Transpose",
                        &format!("{l}/y"),
                        vec![tnh],
                        vec![y.clone()],
                        vec![attr_ints("perm", &[1, 0, 2])],
                    );
                    rn.vals.insert(port(k), y);
                }
                Emit::State => {}
            }
        }
        Ok(())
    }

    /// The body of a recurrence as an ONNX graph: `inputs` are the ONNX names of its inputs
    /// (fresh names are declared as graph inputs, others are read from enclosing graphs),
    /// `leading` graph inputs and outputs come first (`Loop`'s iteration number and
    /// condition).
    fn body_graph(
        &mut self,
        lp: &Loop,
        name: &str,
        inputs: &[(String, bool)],
        leading_in: Vec<pb::ValueInfoProto>,
        leading_out: Option<(String, String)>,
    ) -> Result<pb::GraphProto, ExportError> {
        let body = &lp.body;
        self.b.push_frame();
        let names: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
        let none = vec![None; body.outputs.len()];
        let result = self.emit_region(body, name, &names, &none);
        let mut out_infos = Vec::new();
        if let Some((cond_in, cond_out)) = &leading_out {
            self.b.node_into(
                "Identity",
                "",
                vec![cond_in.clone()],
                vec![cond_out.clone()],
                Vec::new(),
            );
            out_infos.push(build::scalar_info(cond_out, pb::data_type::BOOL));
        }
        let frame = self.b.pop_frame();
        let outs = result?;
        out_infos.extend(
            outs.iter()
                .zip(&body.outputs)
                .map(|(n, o)| build::value_info(n, body.ty(o.value))),
        );
        let mut in_infos = leading_in;
        for &bid in &body.inputs {
            if let Op::Input { index, ty, .. } = &body.node(bid).op {
                if let Some((n, true)) = inputs.get(*index) {
                    in_infos.push(build::value_info(n, ty));
                }
            }
        }
        Ok(pb::GraphProto {
            node: frame.nodes,
            name: format!("{name}/step"),
            initializer: Vec::new(),
            doc_string: String::new(),
            input: in_infos,
            value_info: without(frame.value_info, &outs),
            output: out_infos,
        })
    }

    /// Fresh names for the body's inputs, after their IR names.
    fn body_input_names(&mut self, lp: &Loop) -> Vec<String> {
        let mut names = vec![String::new(); lp.body.inputs.len()];
        for &bid in &lp.body.inputs {
            let n = lp.body.node(bid);
            if let Op::Input { index, .. } = &n.op {
                if let Some(slot) = names.get_mut(*index) {
                    *slot = self.b.values.fresh(&n.name);
                }
            }
        }
        names
    }

    /// A recurrence scanned over axis 1 as an ONNX `Scan`.
    fn emit_scan(
        &mut self,
        region: &Region,
        id: NodeId,
        lp: &Loop,
        ins: &[String],
        rn: &mut RegionNames,
    ) -> Result<(), ExportError> {
        let layer = region.node(id).name.clone();
        let l = layer.as_str();
        let names: Vec<(String, bool)> = self
            .body_input_names(lp)
            .into_iter()
            .map(|n| (n, true))
            .collect();
        let g = self.body_graph(lp, l, &names, Vec::new(), None)?;
        let mut attrs = vec![
            attr_graph("body", g),
            attr_int("num_scan_inputs", 1),
            attr_ints("scan_input_axes", &[1]),
        ];
        let (outs, stacked) = self.loop_outputs(region, id, lp, true, rn);
        if stacked.is_some() {
            attrs.push(attr_ints("scan_output_axes", &[1]));
        }
        let mut node_outs = outs;
        node_outs.extend(stacked.clone());
        self.b.node_into("Scan", l, ins.to_vec(), node_outs, attrs);
        if let (Some(all), Emit::Last) = (stacked, lp.emit) {
            self.finish_emitted(region, id, lp, &all, 1, rn);
        }
        Ok(())
    }

    /// A recurrence of `steps: K` as an ONNX `Loop` of K iterations.
    fn emit_steps(
        &mut self,
        region: &Region,
        id: NodeId,
        lp: &Loop,
        ins: &[String],
        rn: &mut RegionNames,
    ) -> Result<(), ExportError> {
        let node = region.node(id);
        let layer = node.name.clone();
        let l = layer.as_str();
        let Some(k) = lp.steps.known() else {
            return Err(ExportError::Unsupported {
                what: "a recurrence over a symbolic number of steps without a scanned input".into(),
                span: node.span,
            });
        };
        let iter = self.b.values.fresh(&format!("{l}/iteration"));
        let cond_in = self.b.values.fresh(&format!("{l}/cond_in"));
        let cond_out = self.b.values.fresh(&format!("{l}/cond_out"));
        // States are body inputs; the step input is the enclosing graph's value itself.
        let mut names: Vec<(String, bool)> = self
            .body_input_names(lp)
            .into_iter()
            .map(|n| (n, true))
            .collect();
        if let (Some(slot), Some(x)) = (names.get_mut(lp.states), ins.get(lp.states)) {
            *slot = (x.clone(), false);
        }
        let leading = vec![
            build::scalar_info(&iter, pb::data_type::INT64),
            build::scalar_info(&cond_in, pb::data_type::BOOL),
        ];
        let g = self.body_graph(lp, l, &names, leading, Some((cond_in, cond_out)))?;
        let m = self.b.const_i64(l, &[build::to_i64(k)], true);
        let mut inputs = vec![m, String::new()];
        inputs.extend(ins.iter().take(lp.states).cloned());
        let (outs, stacked) = self.loop_outputs(region, id, lp, false, rn);
        let mut node_outs = outs;
        node_outs.extend(stacked.clone());
        self.b
            .node_into("Loop", l, inputs, node_outs, vec![attr_graph("body", g)]);
        if let Some(all) = stacked {
            self.finish_emitted(region, id, lp, &all, 0, rn);
        }
        Ok(())
    }

    /// Names for a `Scan`/`Loop` node's outputs: the final states (named as netc's values),
    /// and the stacked emitted values unless `emit: state` (netc's own value when
    /// `direct_all` and `emit: all`, else a helper name).
    fn loop_outputs(
        &mut self,
        region: &Region,
        id: NodeId,
        lp: &Loop,
        direct_all: bool,
        rn: &mut RegionNames,
    ) -> (Vec<String>, Option<String>) {
        let mut outs = Vec::with_capacity(lp.states);
        for s in 0..lp.states {
            let v = ValueRef {
                node: id,
                port: u32::try_from(s).unwrap_or(u32::MAX),
            };
            let n = self.out(region, rn, v);
            rn.vals.insert(v, n.clone());
            outs.push(n);
        }
        let stacked = match lp.emit {
            Emit::State => None,
            Emit::All if direct_all => {
                let v = ValueRef {
                    node: id,
                    port: u32::try_from(lp.states).unwrap_or(u32::MAX),
                };
                let n = self.out(region, rn, v);
                rn.vals.insert(v, n.clone());
                Some(n)
            }
            Emit::All | Emit::Last => {
                let l = &region.node(id).name;
                Some(self.b.values.fresh(&format!("{l}/stacked")))
            }
        };
        (outs, stacked)
    }

    /// netc's emitted output from the stacked one (`T` on `time_axis`): `[N, T, …]` for
    /// `emit: all`, the last step for `emit: last`.
    fn finish_emitted(
        &mut self,
        region: &Region,
        id: NodeId,
        lp: &Loop,
        stacked: &str,
        time_axis: usize,
        rn: &mut RegionNames,
    ) {
        let v = ValueRef {
            node: id,
            port: u32::try_from(lp.states).unwrap_or(u32::MAX),
        };
        let l = region.node(id).name.clone();
        let y = self.out(region, rn, v);
        match lp.emit {
            Emit::Last => {
                let last = self.b.const_i64(&l, &[-1], true);
                let a = vec![attr_int("axis", axis_i64(time_axis))];
                self.b.node_into(
                    "Gather",
                    "",
                    vec![stacked.to_string(), last],
                    vec![y.clone()],
                    a,
                );
            }
            Emit::All => {
                let rank = region.ty(v).shape.rank();
                let mut perm = vec![1i64, 0];
                perm.extend((2..rank).map(axis_i64));
                self.b.node_into(
                    "Transpose",
                    "",
                    vec![stacked.to_string()],
                    vec![y.clone()],
                    vec![attr_ints("perm", &perm)],
                );
            }
            Emit::State => return,
        }
        rn.vals.insert(v, y);
    }
}

/// Whether the value `v` is read by a node or is an output of `region`.
fn used(region: &Region, v: ValueRef) -> bool {
    region.outputs.iter().any(|o| o.value == v)
        || region
            .users_of(v.node)
            .into_iter()
            .any(|u| region.inputs_of(u).contains(&v))
}

fn internal(span: crate::diagnostics::Span) -> ExportError {
    ExportError::Unsupported {
        what: "a recurrence whose inputs do not match its body (an internal error)".into(),
        span,
    }
}
