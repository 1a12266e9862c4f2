//! Tests of the interpreter on small nets compiled from source: recurrences against
//! hand-written equations, the checks on inputs and weights, and whole nets.

use super::*;
use crate::runtime::error::ShapeProblem;
use crate::runtime::weights::{self, Weights};
use ndarray::Array;

fn compile(src: &str) -> Graph {
    let (program, diags) =
        crate::check_program(crate::syntax::loader::load_source("test.net", src));
    assert!(!diags.has_errors(), "{diags:?}");
    crate::passes::compile(&program, &crate::passes::CompileOptions::default())
        .map(|c| c.graph)
        .unwrap_or_else(|d| panic!("{d:?}"))
}

fn f32s(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::F32(Array::from_shape_vec(IxDyn(shape), data).expect("shape fits data"))
}

fn ids(shape: &[usize], data: Vec<i64>) -> Tensor {
    Tensor::I64(Array::from_shape_vec(IxDyn(shape), data).expect("shape fits data"))
}

fn one(name: &str, t: Tensor) -> BTreeMap<String, Tensor> {
    BTreeMap::from([(name.to_string(), t)])
}

/// Weights with values `sin(0.7·i + k)` for the `k`-th tensor: small, distinct, and easy to
/// reproduce in the hand computations.
fn wavy(graph: &Graph) -> Weights {
    let mut w = Weights::default();
    for (k, e) in weights::expected(graph).iter().enumerate() {
        let data = (0..e.elements())
            .map(|i| (0.7 * i as f32 + k as f32).sin() * 0.5)
            .collect();
        w.tensors.insert(e.name.clone(), (e.shape.clone(), data));
    }
    w
}

fn get<'a>(w: &'a Weights, name: &str) -> &'a [f32] {
    &w.tensors[name].1
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `W [rows, cols] · v + b`, rows `r0..r1`.
fn affine(w: &[f32], b: &[f32], cols: usize, r0: usize, r1: usize, v: &[f64]) -> Vec<f64> {
    (r0..r1)
        .map(|r| {
            f64::from(b[r])
                + (0..cols)
                    .map(|c| f64::from(w[r * cols + c]) * v[c])
                    .sum::<f64>()
        })
        .collect()
}

fn close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((f64::from(*g) - w).abs() < 1e-5, "element {i}: {g} vs {w}");
    }
}

#[test]
fn lstm_steps_follow_the_equations() {
    // hidden 3, input 2, two steps: the second reads the first's h and c.
    let g = compile("net m(x: f32[N, T, 2]) -> y { y = x -> lstm(3) }");
    let w = wavy(&g);
    let (wt, bias) = (get(&w, "lstm/weight"), get(&w, "lstm/bias"));
    let xs = [[0.5, -1.0], [2.0, 0.25]];
    let out = run(
        &g,
        &w,
        &one("x", f32s(&[1, 2, 2], vec![0.5, -1.0, 2.0, 0.25])),
    )
    .expect("runs");
    let (mut h, mut c) = (vec![0.0f64; 3], vec![0.0f64; 3]);
    let mut want = Vec::new();
    for x in xs {
        // z = [h_{t-1}, x_t]; gate blocks i, f, g, o of the weight's rows.
        let z: Vec<f64> = h.iter().copied().chain(x.iter().copied()).collect();
        let i: Vec<f64> = affine(wt, bias, 5, 0, 3, &z).into_iter().map(sig).collect();
        let f: Vec<f64> = affine(wt, bias, 5, 3, 6, &z).into_iter().map(sig).collect();
        let gg: Vec<f64> = affine(wt, bias, 5, 6, 9, &z)
            .into_iter()
            .map(f64::tanh)
            .collect();
        let o: Vec<f64> = affine(wt, bias, 5, 9, 12, &z)
            .into_iter()
            .map(sig)
            .collect();
        c = (0..3).map(|k| f[k] * c[k] + i[k] * gg[k]).collect();
        h = (0..3).map(|k| o[k] * c[k].tanh()).collect();
        want.extend(h.iter().copied());
    }
    let y = out["y"].as_f32().expect("float");
    assert_eq!(y.shape(), &[1, 2, 3]);
    close(y.as_slice().expect("contiguous"), &want);
}

#[test]
fn gru_step_resets_before_the_matmul() {
    let g = compile("net m(x: f32[N, T, 2]) -> y { y = x -> gru(2, emit: last) }");
    let w = wavy(&g);
    let (wt, bias) = (get(&w, "gru/weight"), get(&w, "gru/bias"));
    let xs = [[1.0f32, -0.5], [0.25, 0.75], [-1.0, 2.0]];
    let flat: Vec<f32> = xs.iter().flatten().copied().collect();
    let out = run(&g, &w, &one("x", f32s(&[1, 3, 2], flat))).expect("runs");
    let mut h = vec![0.0f64; 2];
    for x in xs {
        let xv: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
        let hz: Vec<f64> = h.iter().copied().chain(xv.iter().copied()).collect();
        // Rows: z (0..2), r (2..4), candidate (4..6); the candidate reads [r ⊙ h, x].
        let z: Vec<f64> = affine(wt, bias, 4, 0, 2, &hz)
            .into_iter()
            .map(sig)
            .collect();
        let r: Vec<f64> = affine(wt, bias, 4, 2, 4, &hz)
            .into_iter()
            .map(sig)
            .collect();
        let rh: Vec<f64> = (0..2)
            .map(|k| r[k] * h[k])
            .chain(xv.iter().copied())
            .collect();
        let cand: Vec<f64> = affine(wt, bias, 4, 4, 6, &rh)
            .into_iter()
            .map(f64::tanh)
            .collect();
        h = (0..2)
            .map(|k| (1.0 - z[k]) * h[k] + z[k] * cand[k])
            .collect();
    }
    let y = out["y"].as_f32().expect("float");
    assert_eq!(y.shape(), &[1, 2]);
    close(y.as_slice().expect("contiguous"), &h);
}

#[test]
fn rnn_cell_unrolled_and_builtin_agree() {
    // The same recurrence written as a cell and as the built-in, with the same weights.
    let src = "cell step1(hidden) { state h = zeros[hidden]\n step x { h = tanh(dense(concat(h, x), hidden))\n emit h } }\n\
               net a(x: f32[N, T, 2]) -> y { y = x -> unroll(step1(3)) }\n\
               net b(x: f32[N, T, 2]) -> y { y = x -> rnn(3) }";
    let (program, diags) = crate::check_program(crate::syntax::loader::load_source("t.net", src));
    assert!(!diags.has_errors(), "{diags:?}");
    let opts = |n: &str| crate::passes::CompileOptions {
        net: Some(n.into()),
        batch: None,
    };
    let ga = crate::passes::compile(&program, &opts("a"))
        .expect("a compiles")
        .graph;
    let gb = crate::passes::compile(&program, &opts("b"))
        .expect("b compiles")
        .graph;
    let wb = wavy(&gb);
    let mut wa = Weights::default();
    let names_a: Vec<String> = weights::expected(&ga).into_iter().map(|e| e.name).collect();
    assert_eq!(names_a, vec!["step1/dense/weight", "step1/dense/bias"]);
    wa.tensors
        .insert(names_a[0].clone(), wb.tensors["rnn/weight"].clone());
    wa.tensors
        .insert(names_a[1].clone(), wb.tensors["rnn/bias"].clone());
    let x = f32s(
        &[2, 4, 2],
        (0..16).map(|i| (i as f32 * 0.3).cos()).collect(),
    );
    let ya = run(&ga, &wa, &one("x", x.clone())).expect("a runs");
    let yb = run(&gb, &wb, &one("x", x)).expect("b runs");
    assert_eq!(ya["y"].shape(), &[2, 4, 3]);
    assert_eq!(ya["y"], yb["y"]);
}

#[test]
fn states_initialise_and_steps_feed_every_step() {
    // emit: state then init: (seq2seq), and steps: K (one to many).
    let g = compile(
        "net m(a: f32[N, T, 2], b: f32[N, U, 2], c: f32[N, 2]) -> (y, z) {\n\
         enc = a -> e: lstm(2, emit: state)\n\
         y = b -> d: lstm(2, init: enc, emit: last)\n\
         z = c -> r: rnn(2, steps: 3)\n}",
    );
    let w = wavy(&g);
    let a = f32s(&[1, 2, 2], vec![0.1, 0.2, 0.3, 0.4]);
    let b = f32s(&[1, 1, 2], vec![-0.5, 0.5]);
    let c = f32s(&[1, 2], vec![1.0, -1.0]);
    let inputs = BTreeMap::from([
        ("a".into(), a.clone()),
        ("b".into(), b.clone()),
        ("c".into(), c),
    ]);
    let out = run(&g, &w, &inputs).expect("runs");
    let z = out["z"].as_f32().expect("float");
    assert_eq!(z.shape(), &[1, 3, 2]);
    // The rnn with a constant input: h1 = tanh(W [0, c] + b), h2 = tanh(W [h1, c] + b), …
    let (wt, bias) = (get(&w, "r/weight"), get(&w, "r/bias"));
    let mut h = vec![0.0f64; 2];
    let mut want = Vec::new();
    for _ in 0..3 {
        let v: Vec<f64> = h.iter().copied().chain([1.0, -1.0]).collect();
        h = affine(wt, bias, 4, 0, 2, &v)
            .into_iter()
            .map(f64::tanh)
            .collect();
        want.extend(h.iter().copied());
    }
    close(z.as_slice().expect("contiguous"), &want);
    // The decoder's last step differs from a decoder started at zero: init took effect.
    let g0 = compile("net m(b: f32[N, U, 2]) -> y { y = b -> d: lstm(2, emit: last) }");
    let mut w0 = Weights::default();
    for n in ["d/weight", "d/bias"] {
        w0.tensors.insert(n.into(), w.tensors[n].clone());
    }
    let y0 = run(&g0, &w0, &one("b", b)).expect("runs");
    assert_ne!(y0["y"], out["y"]);
    assert_eq!(out["y"].shape(), &[1, 2]);
}

#[test]
fn embedding_softmax_and_means() {
    let g =
        compile("net m(t: i64[N, 3]) -> p { p = t -> e: embed(4, 2) -> mean(axis: 1) -> softmax }");
    let mut w = Weights::default();
    let table = weights::expected(&g)[0].name.clone();
    w.tensors.insert(
        table,
        (vec![4, 2], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
    );
    let out = run(&g, &w, &one("t", ids(&[1, 3], vec![0, 3, 2]))).expect("runs");
    // Rows [0, 1], [6, 7], [4, 5] average to [10/3, 13/3]; softmax of a gap of 1.
    let p = out["p"].as_f32().expect("float");
    let e = 1f64.exp();
    close(
        p.as_slice().expect("contiguous"),
        &[1.0 / (1.0 + e), e / (1.0 + e)],
    );
    let bad = run(&g, &w, &one("t", ids(&[1, 3], vec![0, 4, 1]))).expect_err("id 4 of 4");
    assert!(
        matches!(
            &bad,
            RunError::IndexOutOfRange {
                index: 4,
                limit: 4,
                ..
            }
        ),
        "{bad:?}"
    );
}

#[test]
fn inputs_are_checked_against_declarations() {
    let g = compile("net m(a: f32[N, 3], b: f32[N, 3]) -> y { y = add(a, b) }");
    let w = Weights::default();
    let ok = f32s(&[2, 3], vec![0.0; 6]);
    let mut inputs = BTreeMap::from([("a".to_string(), ok.clone()), ("b".to_string(), ok.clone())]);
    assert_eq!(run(&g, &w, &inputs).expect("runs")["y"].shape(), &[2, 3]);
    // N is fixed by `a`; `b` disagrees.
    inputs.insert("b".into(), f32s(&[1, 3], vec![0.0; 3]));
    let e = run(&g, &w, &inputs).expect_err("N differs");
    assert!(
        matches!(&e, RunError::InputShape { name, problem, .. }
            if name == "b" && matches!(**problem, ShapeProblem::Symbol { bound: 2, .. })),
        "{e:?}"
    );
    inputs.insert("b".into(), f32s(&[2, 4], vec![0.0; 8]));
    let e = run(&g, &w, &inputs).expect_err("3 is known");
    assert!(
        matches!(&e, RunError::InputShape { problem, .. }
            if **problem == ShapeProblem::Size { axis: 1, expected: 3 }),
        "{e:?}"
    );
    inputs.insert("b".into(), ids(&[2, 3], vec![0; 6]));
    assert!(matches!(
        run(&g, &w, &inputs),
        Err(RunError::InputDType { .. })
    ));
    inputs.remove("b");
    assert!(matches!(
        run(&g, &w, &inputs),
        Err(RunError::MissingInput { .. })
    ));
    inputs.insert("b".into(), ok.clone());
    inputs.insert("c".into(), ok);
    assert!(matches!(
        run(&g, &w, &inputs),
        Err(RunError::UnknownInput { .. })
    ));
    // The diagnostic points at the declaration of `b`.
    let e = run(
        &g,
        &w,
        &BTreeMap::from([("a".to_string(), f32s(&[2, 3], vec![0.0; 6]))]),
    )
    .expect_err("b missing");
    let d = e.diagnostic();
    assert_eq!(d.code, crate::diagnostics::Code::MissingInput);
    assert!(d.message.contains("`b`"));
}

#[test]
fn weights_are_checked() {
    let g = compile("net m(x: f32[N, 3]) -> y { y = x -> fc: dense(2) }");
    let mut w = Weights::default();
    assert!(matches!(
        Interpreter::new(&g, &w),
        Err(RunError::MissingWeight { .. })
    ));
    w.tensors
        .insert("fc/weight".into(), (vec![3, 2], vec![0.0; 6]));
    w.tensors.insert("fc/bias".into(), (vec![2], vec![0.0; 2]));
    assert!(matches!(
        Interpreter::new(&g, &w),
        Err(RunError::WeightShape { expected, .. }) if expected == vec![2, 3]
    ));
}

#[test]
fn fixed_kernels_and_same_padding() {
    // An even kernel with `pad: same` pads one more after than before.
    let g = compile(
        "net m(x: f32[N, 1, H, W]) -> y { y = x -> conv(kernel: [[1, 2], [3, 4]], pad: same) }",
    );
    let x = f32s(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = run(&g, &Weights::default(), &one("x", x)).expect("runs");
    // Output (i, j) = 1·x[i,j] + 2·x[i,j+1] + 3·x[i+1,j] + 4·x[i+1,j+1], zeros past the end.
    let y = y["y"].as_f32().expect("float");
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        vec![1.0 + 4.0 + 9.0 + 16.0, 2.0 + 12.0, 3.0 + 8.0, 4.0]
    );
}

#[test]
fn lenet5_runs_with_initial_weights() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/nets/lenet5.net"))
        .expect("nets/lenet5.net");
    let g = compile(&src);
    let expected = weights::expected(&g);
    assert_eq!(expected.len(), 10);
    let w = weights::init(&expected, 0);
    let x = f32s(
        &[2, 1, 32, 32],
        (0..2048).map(|i| ((i % 37) as f32) / 37.0).collect(),
    );
    let out = run(&g, &w, &one("x", x)).expect("runs");
    let y = out["logits"].as_f32().expect("float");
    assert_eq!(y.shape(), &[2, 10]);
    assert!(y.iter().all(|v| v.is_finite()));
    // Two different images give different logits.
    assert_ne!(
        y.index_axis(ndarray::Axis(0), 0),
        y.index_axis(ndarray::Axis(0), 1)
    );
}
