//! Recurrences: the built-in `rnn`, `lstm` and `gru`, and `unroll` of a user cell, all
//! lowered to one [`Op::Loop`] whose body region is a single time step.
//!
//! The body is built once, whatever the number of steps: its parameters are created once
//! and read by every step (one parameter, many uses), and a symbolic `T` stays symbolic.
//! The built-in cells are written in the same ops a user cell would use, with one fused
//! weight per layer (`lstm/weight` is `[4h, h + x]`, rows in gate order i, f, g, o, applied
//! to `[h, x]`; `lstm/bias` is `[4h]`), so `lstm` and an `lstm_cell` written as the
//! lecture's equations have the same parameter and multiply-add counts.

use super::errors::ErrorSite;
use super::value::{TVal, Val};
use super::{Env, Lowerer, RegionState, Reported, Res};
use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::ir::graph::{Node, Output, Region, ScopeKind};
use crate::ir::op::{Emit, Loop, LoopKind, Op};
use crate::ir::shape::{DType, Dim, TensorType};
use crate::passes::infer_shapes::ShapeError;
use crate::syntax::ast::{Ident, Stmt};
use std::collections::BTreeMap;

/// A state of a recurrence: its name, per-step type `[N, …]` and default fill.
struct StateSpec {
    name: String,
    ty: TensorType,
    fill: f64,
}

impl<'p> Lowerer<'p> {
    /// Lowers `kind` (`rnn`, `lstm`, `gru` or `unroll`) applied to `x`.
    pub(super) fn lower_recurrent(
        &mut self,
        kind: &str,
        x: TVal,
        b: &super::layers::Bound<'p>,
        name: &str,
        label: Option<&'p Ident>,
        span: Span,
    ) -> Res<Val<'p>> {
        let site = ErrorSite::new(kind, span);
        let emit = match b_sym(b, "emit").as_deref() {
            Some("last") => Emit::Last,
            Some("state") => Emit::State,
            _ => Emit::All,
        };
        let steps = match b_get(b, "steps") {
            None => None,
            Some(Val::Int(k)) if *k >= 1 => Some(k.unsigned_abs()),
            Some(v) => {
                let d = super::expr::non_positive("`steps`", v, span);
                return Err(self.report(d));
            }
        };
        let xt = self.ty(x).clone();
        if !xt.dtype.is_float() {
            return Err(self.shape_error(
                &ShapeError::DType {
                    input: 0,
                    expected: "floating-point",
                    found: xt.dtype,
                },
                &[x],
                &site,
            ));
        }
        let (t_dim, step_ty) = match steps {
            None => {
                if xt.shape.rank() < 3 {
                    return Err(self.shape_error(
                        &ShapeError::Rank {
                            input: 0,
                            expected: "3-D [N, T, F]",
                            found: xt.shape.rank(),
                        },
                        &[x],
                        &site,
                    ));
                }
                let mut dims = xt.shape.dims().to_vec();
                let t = dims.remove(1);
                (t, TensorType::new(xt.dtype, dims))
            }
            Some(k) => {
                if xt.shape.rank() < 2 {
                    return Err(self.shape_error(
                        &ShapeError::Rank {
                            input: 0,
                            expected: "2-D [N, F] (fed at every step)",
                            found: xt.shape.rank(),
                        },
                        &[x],
                        &site,
                    ));
                }
                (Dim::Known(k), xt.clone())
            }
        };
        let batch = xt.shape.dims()[0].clone();
        let (cell, states, layer_name) = if kind == "unroll" {
            let inst = match b_get(b, "cell") {
                Some(Val::Cell(c)) => c.clone(),
                Some(other) => {
                    let msg = format!(
                        "`unroll` runs a cell such as `lstm_cell(256)`, not {}",
                        other.describe()
                    );
                    return Err(self.report(Diagnostic::error(
                        Code::WrongArgumentType,
                        msg,
                        Label::new(span, "expected a cell"),
                    )));
                }
                None => return Err(Reported),
            };
            let decl = inst.decl;
            let mut env = self.bind_params(
                "cell",
                &decl.name.name,
                &decl.params,
                inst.args.clone(),
                inst.file,
                inst.span,
            )?;
            let mut states = Vec::new();
            for s in &decl.states {
                let v = self.eval(&s.init, None, &mut env);
                let (fill, dims) = match v {
                    Val::Fill { value, dims } => (value, dims),
                    Val::Int(_) | Val::Float(_) => (v.as_f64().unwrap_or(0.0), Vec::new()),
                    Val::Poison => return Err(Reported),
                    other => {
                        let msg = format!(
                            "a state starts as `zeros[…]`, `ones[…]` or a number, not {}",
                            other.describe()
                        );
                        return Err(self.report(Diagnostic::error(
                            Code::BadConstant,
                            msg,
                            Label::new(s.init.span, "invalid initial state"),
                        )));
                    }
                };
                let mut d = vec![batch.clone()];
                d.extend(dims.into_iter().map(Dim::Known));
                states.push(StateSpec {
                    name: s.name.name.clone(),
                    ty: TensorType::new(DType::F32, d),
                    fill,
                });
            }
            let lname = self.fresh_name(label, &decl.name.name);
            (Cell::User(decl, env), states, lname)
        } else {
            let hidden = match b_get(b, "hidden") {
                Some(Val::Int(h)) if *h >= 1 => h.unsigned_abs(),
                Some(v) => {
                    let d = super::expr::non_positive(&format!("`hidden` of `{kind}`"), v, span);
                    return Err(self.report(d));
                }
                None => return Err(Reported),
            };
            if step_ty.shape.rank() != 2 {
                return Err(self.shape_error(
                    &ShapeError::Rank {
                        input: 0,
                        expected: "3-D [N, T, F]",
                        found: xt.shape.rank(),
                    },
                    &[x],
                    &site,
                ));
            }
            let st = TensorType::new(DType::F32, vec![batch.clone(), Dim::Known(hidden)]);
            let lk = match kind {
                "lstm" => LoopKind::Lstm,
                "gru" => LoopKind::Gru,
                _ => LoopKind::Rnn,
            };
            let mut states = vec![StateSpec {
                name: "h".into(),
                ty: st.clone(),
                fill: 0.0,
            }];
            if lk == LoopKind::Lstm {
                states.push(StateSpec {
                    name: "c".into(),
                    ty: st,
                    fill: 0.0,
                });
            }
            (Cell::Builtin(lk, hidden), states, name.to_string())
        };
        // Initial states, in the enclosing region.
        let inits = self.initial_states(b, &states, span)?;
        // The step body.
        let callee = match &cell {
            Cell::Builtin(k, _) => k.layer_name().to_string(),
            Cell::User(d, _) => d.name.name.clone(),
        };
        self.push_scope(
            layer_name.clone(),
            ScopeKind::Cell,
            span,
            Some(callee.clone()),
        );
        self.regions.push(RegionState {
            region: Region::new(),
            params: BTreeMap::new(),
        });
        let built = self.build_step(&cell, &states, &step_ty, &layer_name, emit, span);
        let body = self.regions.pop().map(|r| r.region).unwrap_or_default();
        self.pop_scope();
        let mut body = body;
        let outs = built?;
        for (n, v) in outs {
            body.outputs.push(Output {
                name: n,
                value: v.v,
            });
        }
        let loop_kind = match cell {
            Cell::Builtin(k, _) => k,
            Cell::User(d, _) => LoopKind::Cell(d.name.name.clone()),
        };
        let op = Op::Loop(Box::new(Loop {
            kind: loop_kind,
            body,
            steps: t_dim,
            states: states.len(),
            scan: steps.is_none(),
            emit,
        }));
        let mut inputs = inits;
        inputs.push(x);
        let id = self.node(op, &inputs, &layer_name, &site)?;
        let k = u32::try_from(states.len()).map_err(|_| self.overflow(span))?;
        Ok(match emit {
            Emit::State => Val::State((0..k).map(|i| self.out(id, i)).collect()),
            Emit::All | Emit::Last => Val::Tensor(self.out(id, k)),
        })
    }

    fn initial_states(
        &mut self,
        b: &super::layers::Bound<'p>,
        states: &[StateSpec],
        span: Span,
    ) -> Res<Vec<TVal>> {
        let given: Option<Vec<TVal>> = match b_get(b, "init") {
            None => None,
            Some(Val::State(ts)) => Some(ts.clone()),
            Some(Val::Tensor(t)) => Some(vec![*t]),
            Some(Val::Poison) => return Err(Reported),
            Some(other) => {
                let msg = format!(
                    "`init:` takes a recurrent state (from `emit: state`) or a tensor, not {}",
                    other.describe()
                );
                return Err(self.report(Diagnostic::error(
                    Code::WrongArgumentType,
                    msg,
                    Label::new(span, "invalid initial state"),
                )));
            }
        };
        match given {
            None => Ok(states
                .iter()
                .map(|s| self.fill(s.fill, s.ty.clone(), span))
                .collect()),
            Some(ts) => {
                if ts.len() != states.len() {
                    let names: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
                    return Err(self.report(
                        Diagnostic::error(
                            Code::StateMismatch,
                            format!("`init:` gives {} state{}, but this recurrence has {} ({})", ts.len(), if ts.len() == 1 { "" } else { "s" }, states.len(), names.join(", ")),
                            Label::new(span, "initial state does not fit"),
                        )
                        .with_help("hand over the state of the same kind of recurrence (`emit: state` of an lstm for an lstm)"),
                    ));
                }
                for (i, (t, s)) in ts.iter().zip(states).enumerate() {
                    let ty = self.ty(*t).clone();
                    if ty != s.ty {
                        let (pspan, pmsg) = self.producer(*t);
                        return Err(self.report(
                            Diagnostic::error(
                                Code::StateMismatch,
                                format!(
                                    "initial state `{}` is {ty}, but the recurrence carries {}",
                                    s.name, s.ty
                                ),
                                Label::new(span, format!("state {i} (`{}`) does not fit", s.name)),
                            )
                            .with_label(Label::new(pspan, pmsg))
                            .with_help("the hidden sizes of the two recurrences must match"),
                        ));
                    }
                }
                Ok(ts)
            }
        }
    }

    /// Builds the body of one step in the (pushed) body region: inputs, computation,
    /// and the values to return (new states, then the emitted value).
    fn build_step(
        &mut self,
        cell: &Cell<'p>,
        states: &[StateSpec],
        step_ty: &TensorType,
        layer: &str,
        emit: Emit,
        span: Span,
    ) -> Res<Vec<(String, TVal)>> {
        let mut ins = Vec::new();
        let input_name = match cell {
            Cell::User(d, _) => d
                .step
                .inputs
                .first()
                .map(|i| i.name.clone())
                .unwrap_or_else(|| "x".into()),
            Cell::Builtin(..) => "x".into(),
        };
        let mut all: Vec<(String, TensorType)> = states
            .iter()
            .map(|s| (s.name.clone(), s.ty.clone()))
            .collect();
        all.push((input_name, step_ty.clone()));
        for (index, (n, ty)) in all.into_iter().enumerate() {
            let path = self.fresh_name(None, &n);
            let node = Node {
                op: Op::Input {
                    index,
                    name: n.clone(),
                    ty: ty.clone(),
                },
                outputs: vec![ty],
                name: path,
                span,
                scope: self.scope_id(),
            };
            let id = self.region_mut().add(node, &[]);
            self.region_mut().inputs.push(id);
            ins.push(self.out(id, 0));
        }
        let xt = ins[states.len()];
        let (new_states, emitted) = match cell {
            Cell::Builtin(kind, hidden) => {
                self.builtin_step(kind, *hidden, &ins[..states.len()], xt, layer, span)?
            }
            Cell::User(decl, env) => self.user_step(decl, env, states, &ins, span)?,
        };
        let mut out: Vec<(String, TVal)> = states
            .iter()
            .map(|s| s.name.clone())
            .zip(new_states)
            .collect();
        if emit != Emit::State {
            out.push(("emit".into(), emitted));
        }
        Ok(out)
    }

    fn builtin_step(
        &mut self,
        kind: &LoopKind,
        hidden: u64,
        states: &[TVal],
        x: TVal,
        layer: &str,
        span: Span,
    ) -> Res<(Vec<TVal>, TVal)> {
        let h = states[0];
        let site = ErrorSite::new(kind.layer_name(), span);
        let f = self.ty(x).shape.dims().get(1).and_then(Dim::known);
        let Some(f) = f else {
            let size = self
                .ty(x)
                .shape
                .dims()
                .get(1)
                .and_then(Dim::to_poly)
                .unwrap_or_default();
            return Err(self.shape_error(
                &ShapeError::SymbolicSize {
                    size,
                    what: "a recurrent layer needs a known number of input features",
                },
                &[x],
                &site,
            ));
        };
        let width = hidden.checked_add(f).ok_or_else(|| self.overflow(span))?;
        let gates: u64 = match kind {
            LoopKind::Lstm => 4,
            LoopKind::Gru => 3,
            LoopKind::Rnn | LoopKind::Cell(_) => 1,
        };
        let rows = hidden
            .checked_mul(gates)
            .ok_or_else(|| self.overflow(span))?;
        let w = self.param(
            layer,
            "weight",
            &[rows, width],
            crate::ir::graph::ParamKind::Trainable,
            None,
            span,
        )?;
        let bias = self.param(
            layer,
            "bias",
            &[rows],
            crate::ir::graph::ParamKind::Trainable,
            None,
            span,
        )?;
        let z = self.op1(
            Op::Concat {
                axis: 1,
                in_place: false,
            },
            &[h, x],
            "concat",
            &site,
        )?;
        match kind {
            LoopKind::Lstm => {
                let g = self.op1(Op::Dense, &[z, w, bias], "gates", &site)?;
                let part = |l: &mut Self, i: u64, act: Op, n: &str| -> Res<TVal> {
                    let s = l.op1(
                        Op::Slice {
                            axis: 1,
                            start: i * hidden,
                            end: (i + 1) * hidden,
                        },
                        &[g],
                        "slice",
                        &site,
                    )?;
                    l.op1(act, &[s], n, &site)
                };
                let i = part(self, 0, Op::Sigmoid, "i")?;
                let fg = part(self, 1, Op::Sigmoid, "f")?;
                let gg = part(self, 2, Op::Tanh, "g")?;
                let o = part(self, 3, Op::Sigmoid, "o")?;
                let fc = self.op1(Op::Mul, &[fg, states[1]], "mul", &site)?;
                let ig = self.op1(Op::Mul, &[i, gg], "mul", &site)?;
                let c = self.op1(Op::Add, &[fc, ig], "c", &site)?;
                let tc = self.op1(Op::Tanh, &[c], "tanh", &site)?;
                let hn = self.op1(Op::Mul, &[o, tc], "h", &site)?;
                Ok((vec![hn, c], hn))
            }
            LoopKind::Gru => {
                let rows_of = |l: &mut Self, v: TVal, a: u64, e: u64| -> Res<TVal> {
                    l.op1(
                        Op::Slice {
                            axis: 0,
                            start: a,
                            end: e,
                        },
                        &[v],
                        "slice",
                        &site,
                    )
                };
                let w_zr = rows_of(self, w, 0, 2 * hidden)?;
                let b_zr = rows_of(self, bias, 0, 2 * hidden)?;
                let zr = self.op1(Op::Dense, &[z, w_zr, b_zr], "gates", &site)?;
                let zs = self.op1(
                    Op::Slice {
                        axis: 1,
                        start: 0,
                        end: hidden,
                    },
                    &[zr],
                    "slice",
                    &site,
                )?;
                let zg = self.op1(Op::Sigmoid, &[zs], "z", &site)?;
                let rs = self.op1(
                    Op::Slice {
                        axis: 1,
                        start: hidden,
                        end: 2 * hidden,
                    },
                    &[zr],
                    "slice",
                    &site,
                )?;
                let r = self.op1(Op::Sigmoid, &[rs], "r", &site)?;
                let rh = self.op1(Op::Mul, &[r, h], "mul", &site)?;
                let z2 = self.op1(
                    Op::Concat {
                        axis: 1,
                        in_place: false,
                    },
                    &[rh, x],
                    "concat",
                    &site,
                )?;
                let w_h = rows_of(self, w, 2 * hidden, 3 * hidden)?;
                let b_h = rows_of(self, bias, 2 * hidden, 3 * hidden)?;
                let cand = self.op1(Op::Dense, &[z2, w_h, b_h], "dense", &site)?;
                let hh = self.op1(Op::Tanh, &[cand], "candidate", &site)?;
                let one = self.fill(1.0, TensorType::new(DType::F32, Vec::new()), span);
                let omz = self.op1(Op::Sub, &[one, zg], "sub", &site)?;
                let keep = self.op1(Op::Mul, &[omz, h], "mul", &site)?;
                let upd = self.op1(Op::Mul, &[zg, hh], "mul", &site)?;
                let hn = self.op1(Op::Add, &[keep, upd], "h", &site)?;
                Ok((vec![hn], hn))
            }
            LoopKind::Rnn | LoopKind::Cell(_) => {
                let a = self.op1(Op::Dense, &[z, w, bias], "dense", &site)?;
                let hn = self.op1(Op::Tanh, &[a], "h", &site)?;
                Ok((vec![hn], hn))
            }
        }
    }

    /// A node named `kind` (with the scope's counter) with one output.
    fn op1(&mut self, op: Op, inputs: &[TVal], kind: &str, site: &ErrorSite<'_>) -> Res<TVal> {
        let name = self.fresh_name(None, kind);
        let id = self.node(op, inputs, &name, site)?;
        Ok(self.out(id, 0))
    }

    fn user_step(
        &mut self,
        decl: &'p crate::syntax::ast::CellDecl,
        env: &Env<'p>,
        states: &[StateSpec],
        ins: &[TVal],
        span: Span,
    ) -> Res<(Vec<TVal>, TVal)> {
        let mut env = Env {
            file: env.file,
            frames: env.frames.clone(),
        };
        env.push();
        for (s, t) in states.iter().zip(ins) {
            env.bind(&s.name, Val::Tensor(*t));
        }
        if decl.step.inputs.len() > 1 {
            return Err(self.report(Diagnostic::error(
                Code::BadParameter,
                "a cell's step takes one input (the sequence element)",
                Label::new(decl.step.span, "more than one step input"),
            )));
        }
        if let Some(i) = decl.step.inputs.first() {
            env.bind(&i.name, Val::Tensor(ins[states.len()]));
        }
        self.reserve_labels(&decl.step.body.stmts);
        let mut emitted: Option<Val<'p>> = None;
        let mut failed = false;
        for stmt in &decl.step.body.stmts {
            match stmt {
                Stmt::Let { name, value, .. } => {
                    let v = self.eval(value, None, &mut env);
                    failed |= matches!(v, Val::Poison);
                    env.bind(&name.name, v);
                }
                Stmt::Expr(e) => {
                    failed |= matches!(self.eval(e, None, &mut env), Val::Poison);
                }
                Stmt::Emit { value, span } => {
                    let v = self.eval(value, None, &mut env);
                    if emitted.is_some() {
                        self.error(Diagnostic::error(
                            Code::BadEmit,
                            "a step emits once",
                            Label::new(*span, "second `emit`"),
                        ));
                        failed = true;
                    }
                    emitted = Some(v);
                }
            }
        }
        if failed {
            return Err(Reported);
        }
        let Some(emitted) = emitted else {
            return Err(self.report(
                Diagnostic::error(
                    Code::BadEmit,
                    format!("the step of cell `{}` emits nothing", decl.name.name),
                    Label::new(decl.step.span, "no `emit`"),
                )
                .with_help("end the step with `emit h` (the value output at each step)"),
            ));
        };
        let as_tensor = |l: &mut Self, v: Option<&Val<'p>>, what: &str| -> Res<TVal> {
            match v {
                Some(Val::Tensor(t)) => Ok(*t),
                Some(Val::Poison) | None => Err(Reported),
                Some(other) => {
                    let msg = format!("{what} must be a tensor, not {}", other.describe());
                    Err(l.report(Diagnostic::error(
                        Code::BadOperand,
                        msg,
                        Label::new(span, "in this cell"),
                    )))
                }
            }
        };
        let mut new_states = Vec::new();
        for s in states {
            let t = as_tensor(self, env.get(&s.name), &format!("state `{}`", s.name))?;
            new_states.push(t);
        }
        let e = as_tensor(self, Some(&emitted), "the emitted value")?;
        Ok((new_states, e))
    }
}

/// The cell of a recurrence: a built-in with its hidden size, or a user cell with its
/// bound parameters.
enum Cell<'p> {
    Builtin(LoopKind, u64),
    User(&'p crate::syntax::ast::CellDecl, Env<'p>),
}

fn b_get<'a, 'p>(b: &'a super::layers::Bound<'p>, name: &str) -> Option<&'a Val<'p>> {
    b.value(name)
}

fn b_sym(b: &super::layers::Bound<'_>, name: &str) -> Option<String> {
    match b.value(name) {
        Some(Val::Sym(s)) => Some(s.clone()),
        _ => None,
    }
}
