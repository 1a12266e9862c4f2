//! Tests of `fold` on small hand-built regions, one per rule and per case that must be
//! left alone, each checked against the interpreter: the folded graph's outputs are bit
//! for bit the unfolded graph's.

use super::*;
use crate::diagnostics::Span;
use crate::ir::graph::{Output, ScopeId};
use crate::ir::shape::Dim;
use crate::passes::pipeline::{self, PassOptions, PassSelection};
use crate::runtime::{interp, weights::Weights, Tensor};
use std::collections::BTreeMap;

fn ty(dtype: DType, dims: &[Dim]) -> TensorType {
    TensorType::new(dtype, dims.to_vec())
}

fn f32_ty(dims: &[u64]) -> TensorType {
    ty(
        DType::F32,
        &dims.iter().map(|d| Dim::Known(*d)).collect::<Vec<_>>(),
    )
}

/// `f32[N, 3]`.
fn batch_ty() -> TensorType {
    ty(DType::F32, &[Dim::sym("N"), Dim::Known(3)])
}

/// A graph being built, with its inputs.
struct B {
    g: Graph,
}

impl B {
    fn new() -> B {
        B {
            g: Graph::new("t", None, Span::default()),
        }
    }

    fn node(&mut self, op: Op, out: TensorType, inputs: &[ValueRef]) -> ValueRef {
        let name = match op {
            Op::Fill { .. } | Op::Param(_) => String::new(),
            _ => format!("n{}", self.g.body.len()),
        };
        let id = self.g.body.add(
            Node {
                op,
                outputs: vec![out],
                name,
                span: Span::default(),
                scope: ScopeId(0),
            },
            inputs,
        );
        Region::value(id)
    }

    /// An op whose output type the shape rule gives.
    fn op(&mut self, op: Op, inputs: &[ValueRef]) -> ValueRef {
        let types: Vec<&TensorType> = inputs.iter().map(|v| self.g.body.ty(*v)).collect();
        let out = crate::passes::infer_shapes::infer(&op, &types, &self.g.params)
            .expect("well typed")
            .remove(0);
        self.node(op, out, inputs)
    }

    fn input(&mut self, name: &str, t: TensorType) -> ValueRef {
        let index = self.g.body.inputs.len();
        let v = self.node(
            Op::Input {
                index,
                name: name.into(),
                ty: t.clone(),
            },
            t,
            &[],
        );
        self.g.body.inputs.push(v.node);
        v
    }

    fn fill(&mut self, value: f64, t: TensorType) -> ValueRef {
        self.node(
            Op::Fill {
                value,
                ty: t.clone(),
            },
            t,
            &[],
        )
    }

    fn scalar(&mut self, value: f64) -> ValueRef {
        self.fill(value, f32_ty(&[]))
    }

    fn fixed(&mut self, name: &str, dims: &[u64], values: Vec<f64>) -> ValueRef {
        let t = f32_ty(dims);
        let id = self.g.add_param(Param {
            name: name.into(),
            ty: t.clone(),
            kind: ParamKind::Fixed,
            init: Some(values),
            derived: None,
            span: Span::default(),
        });
        self.node(Op::Param(id), t, &[])
    }

    fn output(&mut self, name: &str, v: ValueRef) {
        self.g.body.outputs.push(Output {
            name: name.into(),
            value: v,
        });
    }
}

/// Runs `fold` (verifying the result) and returns the rewrite log.
fn fold(g: &mut Graph) -> Vec<String> {
    let opts = PassOptions {
        selection: PassSelection::parse("fold").expect("a pass"),
        ..Default::default()
    };
    pipeline::run(g, &opts).expect("runs").log.entries
}

/// Folds `g` and checks that every output is bit for bit what it was, on `x` for each
/// input (`[2, 3]` floats).
fn fold_exactly(g: &Graph) -> (Graph, Vec<String>) {
    let mut h = g.clone();
    let log = fold(&mut h);
    let mut inputs = BTreeMap::new();
    for &id in &g.body.inputs {
        if let Op::Input { name, ty, .. } = &g.body.node(id).op {
            let t = if ty.dtype.is_int() {
                Tensor::I64(
                    ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![5, -7, 0, 3, 9, -1]).expect("fits"),
                )
            } else {
                let v = vec![0.5, -1.25, 0.0, -0.0, 3.0, f32::INFINITY];
                Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[2, 3]), v).expect("fits"))
            };
            inputs.insert(name.clone(), t);
        }
    }
    let w = Weights::default();
    let want = interp::run(g, &w, &inputs).expect("runs unfolded");
    let got = interp::run(&h, &w, &inputs).expect("runs folded");
    for (name, t) in &want {
        match (t, &got[name]) {
            (Tensor::F32(a), Tensor::F32(b)) => {
                assert_eq!(a.shape(), b.shape(), "{name}");
                for (x, y) in a.iter().zip(b) {
                    // Equal bits, or both NaN; `x + 0` may turn −0 into +0 (see the docs).
                    let ok = x.to_bits() == y.to_bits()
                        || (x.is_nan() && y.is_nan())
                        || (*x == 0.0 && *y == 0.0);
                    assert!(ok, "{name}: {x} vs {y}");
                }
            }
            (a, b) => assert_eq!(a, b, "{name}"),
        }
    }
    (h, log)
}

fn ops(r: &Region) -> Vec<&'static str> {
    r.topo_order()
        .into_iter()
        .map(|id| r.node(id).op.name())
        .collect()
}

/// The op producing output `name`.
fn producer<'g>(g: &'g Graph, name: &str) -> &'g Op {
    let o = g
        .body
        .outputs
        .iter()
        .find(|o| o.name == name)
        .expect("an output");
    &g.body.node(o.value.node).op
}

#[test]
fn elementwise_ops_of_fills_are_one_fill() {
    let mut b = B::new();
    // Binds N for the run.
    b.input("x", batch_ty());
    let a = b.scalar(0.1);
    let c = b.fill(0.2, batch_ty());
    let s = b.op(Op::Add, &[a, c]);
    let t = b.scalar(3.0);
    let m = b.op(Op::Mul, &[s, t, s]);
    let d = b.op(Op::Div, &[m, t]);
    let e = b.op(Op::Sub, &[d, c]);
    let n = b.op(Op::Neg, &[e]);
    let r = b.op(Op::Relu, &[n]);
    let sg = b.op(Op::Sigmoid, &[n]);
    let th = b.op(Op::Tanh, &[sg]);
    b.output("relu", r);
    b.output("tanh", th);
    let (h, log) = fold_exactly(&b.g);
    assert_eq!(log, vec!["fold/fill"; 8]);
    // The sum is computed in f32 from the f32 fills: not 0.1 + 0.2 in f64.
    let sum = 0.1f32 + 0.2f32;
    let n = -((sum * 3.0 * sum) / 3.0 - 0.2f32);
    assert!(n > 0.0);
    assert!(
        matches!(producer(&h, "relu"), Op::Fill { value, ty } if *value == f64::from(n) && *ty == batch_ty())
    );
    // At run time, as the pass computes it: with optimisation, the compiler would fold
    // these constant calls itself, possibly to a float one ulp away from libm's.
    let t = elementwise::sigmoid(std::hint::black_box(n)).tanh();
    assert!(matches!(producer(&h, "tanh"), Op::Fill { value, .. } if *value == f64::from(t)));
}

#[test]
fn integer_fills_fold_except_a_division_by_zero() {
    let int = |b: &mut B, v: f64| b.fill(v, ty(DType::I64, &[]));
    let mut b = B::new();
    let x = int(&mut b, 7.0);
    let y = int(&mut b, -2.0);
    let z = int(&mut b, 0.0);
    let q = b.op(Op::Div, &[x, y]);
    let p = b.op(Op::Mul, &[q, y, x]);
    let bad = b.op(Op::Div, &[x, z]);
    b.output("p", p);
    b.output("bad", bad);
    let mut h = b.g.clone();
    assert_eq!(fold(&mut h), ["fold/fill", "fold/fill"]);
    // 7 / −2 truncates to −3; −3 · −2 · 7 = 42.
    assert!(matches!(producer(&h, "p"), Op::Fill { value, .. } if *value == 42.0));
    assert!(matches!(producer(&h, "bad"), Op::Div));
}

#[test]
fn layout_ops_of_fills_are_fills() {
    let mut b = B::new();
    let f = b.fill(2.5, f32_ty(&[2, 6]));
    let r = b.op(
        Op::Reshape {
            shape: vec![Dim::Known(2), Dim::Known(3), Dim::Known(2)],
        },
        &[f],
    );
    let fl = b.op(Op::Flatten, &[r]);
    let s = b.op(
        Op::Slice {
            axis: 1,
            start: 1,
            end: 4,
        },
        &[fl],
    );
    let same = b.fill(2.5, f32_ty(&[2, 2]));
    let c = b.op(
        Op::Concat {
            axis: 1,
            in_place: false,
        },
        &[s, same],
    );
    let other = b.fill(1.0, f32_ty(&[2, 2]));
    let mixed = b.op(
        Op::Concat {
            axis: 1,
            in_place: false,
        },
        &[s, other],
    );
    b.output("c", c);
    b.output("mixed", mixed);
    let (h, log) = fold_exactly(&b.g);
    // Reshape, flatten, slice and the uniform concat are fills; the mixed concat becomes
    // a fixed parameter.
    assert_eq!(
        log,
        [
            "fold/fill",
            "fold/fill",
            "fold/fill",
            "fold/fill",
            "fold/param"
        ]
    );
    assert!(
        matches!(producer(&h, "c"), Op::Fill { value, ty } if *value == 2.5 && *ty == f32_ty(&[2, 5]))
    );
    let Op::Param(p) = producer(&h, "mixed") else {
        panic!("a param");
    };
    assert_eq!(
        h.param(*p).init.as_deref(),
        Some(&[2.5, 2.5, 2.5, 1.0, 1.0, 2.5, 2.5, 2.5, 1.0, 1.0][..])
    );
}

#[test]
fn fills_of_symbolic_shape_fold() {
    let mut b = B::new();
    b.input("x", batch_ty());
    let z = b.fill(0.0, batch_ty());
    let o = b.fill(1.0, ty(DType::F32, &[Dim::sym("N"), Dim::Known(1)]));
    let s = b.op(Op::Sub, &[o, z]);
    b.output("s", s);
    let (h, log) = fold_exactly(&b.g);
    assert_eq!(log, ["fold/fill"]);
    assert!(
        matches!(producer(&h, "s"), Op::Fill { value, ty } if *value == 1.0 && *ty == batch_ty())
    );
}

#[test]
fn neutral_operands_are_removed() {
    let mut b = B::new();
    let x = b.input("x", batch_ty());
    let y = b.input("y", batch_ty());
    let zero = b.scalar(0.0);
    let neg_zero = b.scalar(-0.0);
    let one = b.fill(1.0, f32_ty(&[3]));
    let outs = [
        ("add_zero", b.op(Op::Add, &[x, zero])),
        ("zero_add", b.op(Op::Add, &[neg_zero, x])),
        ("sub_zero", b.op(Op::Sub, &[x, zero])),
        ("mul_one", b.op(Op::Mul, &[x, one])),
        ("one_mul", b.op(Op::Mul, &[one, x])),
        ("div_one", b.op(Op::Div, &[x, one])),
    ];
    let n = b.op(Op::Neg, &[y]);
    let nn = b.op(Op::Neg, &[n]);
    let sum = b.op(Op::Add, &[x, zero, y, zero]);
    let prod = b.op(Op::Mul, &[one, x, one, y]);
    for (name, v) in outs {
        b.output(name, v);
    }
    b.output("neg_neg", nn);
    b.output("sum", sum);
    b.output("prod", prod);
    let (h, log) = fold_exactly(&b.g);
    assert_eq!(
        log,
        [
            "fold/add_zero",
            "fold/add_zero",
            "fold/sub_zero",
            "fold/mul_one",
            "fold/mul_one",
            "fold/div_one",
            "fold/neg_neg",
            "fold/add_zero",
            "fold/mul_one",
        ]
    );
    for name in [
        "add_zero", "zero_add", "sub_zero", "mul_one", "one_mul", "div_one",
    ] {
        let o = h
            .body
            .outputs
            .iter()
            .find(|o| o.name == name)
            .expect("output");
        assert_eq!(o.value, x, "{name}");
    }
    let o = h
        .body
        .outputs
        .iter()
        .find(|o| o.name == "neg_neg")
        .expect("output");
    assert_eq!(o.value, y);
    // Two operands left: the node stays, without the neutral ones.
    for (name, op) in [("sum", "add"), ("prod", "mul")] {
        let o = h
            .body
            .outputs
            .iter()
            .find(|o| o.name == name)
            .expect("output");
        assert_eq!(h.body.node(o.value.node).op.name(), op);
        assert_eq!(h.body.inputs_of(o.value.node), [x, y], "{name}");
    }
}

#[test]
fn identities_that_would_change_the_type_are_kept() {
    let mut b = B::new();
    // x is [N, 1]; adding zeros of [3] broadcasts it to [N, 3].
    let x = b.input("x", ty(DType::F32, &[Dim::sym("N"), Dim::Known(1)]));
    let zero = b.fill(0.0, f32_ty(&[3]));
    let one = b.fill(1.0, f32_ty(&[1, 3]));
    let a = b.op(Op::Add, &[x, zero]);
    let m = b.op(Op::Mul, &[one, x]);
    let d = b.op(Op::Div, &[x, one]);
    let s = b.op(Op::Sub, &[x, zero]);
    b.output("a", a);
    b.output("m", m);
    b.output("d", d);
    b.output("s", s);
    let mut h = b.g.clone();
    assert!(fold(&mut h).is_empty());
    assert_eq!(ops(&h.body), ops(&b.g.body));
}

#[test]
fn multiplication_by_zero_is_kept() {
    // x · 0 is NaN for an infinite x (the test input has one) and −0 for a negative one.
    let mut b = B::new();
    let x = b.input("x", batch_ty());
    let zero = b.scalar(0.0);
    let m = b.op(Op::Mul, &[x, zero]);
    let m2 = b.op(Op::Mul, &[zero, x]);
    // 0 − x is not x either.
    let s = b.op(Op::Sub, &[zero, x]);
    b.output("m", m);
    b.output("m2", m2);
    b.output("s", s);
    let (h, log) = fold_exactly(&b.g);
    assert!(log.is_empty(), "{log:?}");
    assert!(matches!(producer(&h, "m"), Op::Mul));
    assert!(matches!(producer(&h, "m2"), Op::Mul));
    assert!(matches!(producer(&h, "s"), Op::Sub));
}

#[test]
fn constant_expressions_become_fixed_parameters() {
    let mut b = B::new();
    let k = b.fixed("k", &[2, 3], vec![-1.5, 0.0, 0.25, 2.0, -3.0, 0.1]);
    let j = b.fixed("j", &[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let one = b.scalar(1.0);
    let s = b.op(Op::Sub, &[k, one]);
    let q = b.op(Op::Div, &[s, j]);
    let t = b.op(Op::Sigmoid, &[q]);
    let c = b.op(
        Op::Concat {
            axis: 0,
            in_place: false,
        },
        &[t, k],
    );
    let r = b.op(
        Op::Reshape {
            shape: vec![Dim::Known(12)],
        },
        &[c],
    );
    let sl = b.op(
        Op::Slice {
            axis: 0,
            start: 2,
            end: 9,
        },
        &[r],
    );
    let x = b.input("x", f32_ty(&[2, 3]));
    let y = b.op(Op::Mul, &[x, j]);
    b.output("sl", sl);
    b.output("y", y);
    let (h, log) = fold_exactly(&b.g);
    assert_eq!(log, vec!["fold/param"; 6]);
    let Op::Param(p) = producer(&h, "sl") else {
        panic!("a param");
    };
    let p = h.param(*p);
    assert_eq!(p.kind, ParamKind::Fixed);
    assert_eq!(p.ty, f32_ty(&[7]));
    assert_eq!(p.name, format!("{}/folded", b.g.body.node(sl.node).name));
    let sig = |v: f32| f64::from(elementwise::sigmoid(v));
    let init = p.init.clone().expect("values");
    assert_eq!(init[0], sig((0.25f32 - 1.0) / 3.0));
    assert_eq!(init[3], sig((0.1f32 - 1.0) / 6.0));
    // Then the first row of `k`, as f32 values.
    assert_eq!(init[4..], [-1.5, 0.0, 0.25]);
    // x · j reads an input: kept. Fixed params only: `k` and `j` plus the six folded ones.
    assert!(matches!(producer(&h, "y"), Op::Mul));
    assert_eq!(h.params.len(), 8);
}

#[test]
fn big_and_symbolic_constants_are_not_materialised() {
    let mut b = B::new();
    let big = b.fill(0.5, f32_ty(&[300, 300]));
    let k = b.fixed("k", &[300], vec![1.0; 300]);
    let s = b.op(Op::Add, &[big, k]);
    let sym = b.fill(0.5, batch_ty());
    let k3 = b.fixed("k3", &[3], vec![1.0, 2.0, 3.0]);
    let t = b.op(Op::Add, &[sym, k3]);
    b.output("s", s);
    b.output("t", t);
    let mut h = b.g.clone();
    assert!(fold(&mut h).is_empty());
}

#[test]
fn a_cell_with_constants_folds_in_its_loop_body() {
    let src = "cell c(hidden) {
        state h = zeros[hidden]
        step x {
            z = sigmoid(dense(concat(h, x), hidden))
            h = -(-(((1 - z) * h * 1 + z * tanh(dense(x, hidden))) / 1 + 0))
            emit h
        }
    }
    net t(x: f32[N, T, 2]) -> y { y = x -> unroll(c(3)) }";
    let (program, diags) =
        crate::check_program(crate::syntax::loader::load_source("test.net", src));
    assert!(!diags.has_errors(), "{diags:?}");
    let g = crate::passes::compile(&program, &crate::passes::CompileOptions::default())
        .map(|c| c.graph)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let mut h = g.clone();
    let log = fold(&mut h);
    for rule in [
        "fold/mul_one",
        "fold/div_one",
        "fold/add_zero",
        "fold/neg_neg",
    ] {
        assert!(log.iter().any(|e| e == rule), "{rule} in {log:?}");
    }
    let w = crate::runtime::weights::init(&crate::runtime::weights::expected(&g), 3);
    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    let inputs = BTreeMap::from([(
        "x".to_string(),
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[2, 4, 2]), x).expect("fits")),
    )]);
    let want = interp::run(&g, &w, &inputs).expect("runs");
    let got = interp::run(&h, &w, &inputs).expect("runs folded");
    assert_eq!(want, got);
}
