//! Shared by the integration tests that run every net: the size substitutions that make
//! the big nets quick to run in debug builds, deterministic random weights and inputs.

#![allow(dead_code, reason = "each test crate uses a part of this module")]

use ndarray::{ArrayD, IxDyn};
use netc::ir::graph::{Graph, Region};
use netc::ir::op::Op;
use netc::ir::shape::{Dim, TensorType};
use netc::runtime::weights::{self, Init, Weights};
use netc::runtime::Tensor;
use netc::syntax::ast::Item;
use netc::syntax::loader::{load_source_with, DiskReader, Program};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Source substitutions that shrink the big image nets for the test: `(file stem,
/// [(text, replacement)])`. Each text must occur in the file.
pub const OVERRIDES: &[(&str, &[(&str, &str)])] = &[
    // 11x11/4 then three 3x3/2 pools: 67 is the smallest size whose windows tile exactly.
    ("alexnet", &[("f32[N, 3, 227, 227]", "f32[N, 3, 67, 67]")]),
    // At 64x64 the last map is 2x2: the final 7x7 average pool becomes 2x2 (and the
    // classifier reads 1024 features, as at 224x224).
    (
        "googlenet",
        &[
            ("f32[N, 3, 224, 224]", "f32[N, 3, 64, 64]"),
            ("avgpool(7, stride: 1)", "avgpool(2, stride: 1)"),
        ],
    ),
    (
        "inception_naive",
        &[("f32[N, 256, 28, 28]", "f32[N, 256, 8, 8]")],
    ),
    (
        "inception_reduced",
        &[("f32[N, 256, 28, 28]", "f32[N, 256, 8, 8]")],
    ),
    // 75x75 is the smallest input Inception-v3's grid reductions accept.
    (
        "inception_v3",
        &[("f32[N, 3, 299, 299]", "f32[N, 3, 75, 75]")],
    ),
    ("resnet18", &[("f32[N, 3, 224, 224]", "f32[N, 3, 32, 32]")]),
    ("resnet34", &[("f32[N, 3, 224, 224]", "f32[N, 3, 32, 32]")]),
    ("resnet50", &[("f32[N, 3, 224, 224]", "f32[N, 3, 32, 32]")]),
    ("resnet152", &[("f32[N, 3, 224, 224]", "f32[N, 3, 32, 32]")]),
    ("vgg16", &[("f32[N, 3, 224, 224]", "f32[N, 3, 32, 32]")]),
    ("vgg19", &[("f32[N, 3, 224, 224]", "f32[N, 3, 32, 32]")]),
    ("seq2seq", &[("vocab = 8000", "vocab = 100")]),
    ("word2vec_cbow", &[("vocab = 10000", "vocab = 1000")]),
];

/// The value a symbolic size gets at run time (besides the batch `N`).
pub fn symbol_value(name: &str) -> u64 {
    match name {
        "T" => 4,
        "U" => 3,
        "H" => 12,
        "W" => 10,
        _ => 4,
    }
}

/// A small deterministic generator (SplitMix64): the same numbers on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}

/// Random weights: `netc init`'s He/Xavier values for weight matrices, and random values
/// where `init` writes constants (biases, batch-norm shifts and means in ±0.2; scales and
/// variances in [0.5, 1.5]), so that every tensor's role is exercised.
pub fn random_weights(graph: &Graph, seed: u64) -> Weights {
    let expected = weights::expected(graph);
    let mut w = weights::init(&expected, seed);
    let mut rng = Rng(seed ^ 0x5eed);
    for e in &expected {
        let range = match e.init {
            Init::Zeros => Some((-0.2, 0.2)),
            Init::Ones => Some((0.5, 1.5)),
            Init::HeUniform { .. } | Init::XavierUniform { .. } => None,
        };
        if let (Some((lo, hi)), Some((_, data))) = (range, w.tensors.get_mut(&e.name)) {
            for x in data.iter_mut() {
                *x = rng.uniform(lo, hi);
            }
        }
    }
    w
}

/// The concrete shape of `ty` at `batch`.
pub fn concrete(ty: &TensorType, batch: u64) -> Vec<usize> {
    ty.shape
        .dims()
        .iter()
        .map(|d| match d {
            Dim::Known(k) => *k as usize,
            Dim::Sym(p) => {
                let mut q = p.clone();
                for s in p.symbols() {
                    let v = if s == "N" { batch } else { symbol_value(&s) };
                    q = q.substitute(&s, v as i64).expect("small sizes");
                }
                q.as_const().expect("every symbol substituted") as usize
            }
        })
        .collect()
}

/// The number of valid values of an integer input: the rows of the embedding it indexes,
/// or the classes of the loss it labels.
pub fn int_range(region: &Region, input: netc::ir::graph::NodeId) -> i64 {
    for user in region.users_of(input) {
        let args = region.inputs_of(user);
        let node = region.node(user);
        if let Op::Embed = node.op {
            if let Some(table) = args.get(1) {
                if let Some(Dim::Known(v)) = region.ty(*table).shape.dims().first() {
                    return *v as i64;
                }
            }
        }
        if let Op::SoftmaxCrossEntropy = node.op {
            if let Some(logits) = args.first() {
                if let Some(Dim::Known(c)) = region.ty(*logits).shape.dims().last() {
                    return *c as i64;
                }
            }
        }
    }
    2
}

/// Random inputs for `graph` at `batch`: floats in [−1, 1), valid integer ids.
pub fn random_inputs(graph: &Graph, batch: u64, seed: u64) -> BTreeMap<String, Tensor> {
    random_inputs_with(
        graph,
        &|s| if s == "N" { batch } else { symbol_value(s) },
        seed,
    )
}

/// Random inputs for `graph` with each symbolic size given by `size_of`: floats in
/// [−1, 1), valid integer ids.
pub fn random_inputs_with(
    graph: &Graph,
    size_of: &dyn Fn(&str) -> u64,
    seed: u64,
) -> BTreeMap<String, Tensor> {
    let mut rng = Rng(seed);
    let region = &graph.body;
    let mut out = BTreeMap::new();
    for &id in &region.inputs {
        let Op::Input { name, ty, .. } = &region.node(id).op else {
            continue;
        };
        let shape: Vec<usize> = ty
            .shape
            .dims()
            .iter()
            .map(|d| match d {
                Dim::Known(k) => *k as usize,
                Dim::Sym(p) => {
                    let mut q = p.clone();
                    for s in p.symbols() {
                        q = q.substitute(&s, size_of(&s) as i64).expect("small sizes");
                    }
                    q.as_const().expect("every symbol substituted") as usize
                }
            })
            .collect();
        let n: usize = shape.iter().product();
        let t = if ty.dtype.is_int() {
            let range = int_range(region, id);
            let v: Vec<i64> = (0..n).map(|_| (rng.next() % range as u64) as i64).collect();
            Tensor::I64(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape"))
        } else {
            let v: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
            Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape"))
        };
        out.insert(name.clone(), t);
    }
    out
}

/// One net of `nets/`, with the size substitutions applied, checked and loaded.
pub struct ShrunkNet {
    /// `file.net` or `file.net:net`.
    pub label: String,
    /// The net's name.
    pub net: String,
    /// The checked program of its file.
    pub program: Program,
}

/// Every net of every file in `nets/`, sorted by file, shrunk by [`OVERRIDES`].
pub fn shrunk_nets() -> Vec<ShrunkNet> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("nets/ lists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "net"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut source = std::fs::read_to_string(&path).expect("readable net");
        for (_, subs) in OVERRIDES.iter().filter(|(s, _)| *s == stem) {
            for (from, to) in subs.iter() {
                assert!(
                    source.contains(from),
                    "{stem}.net no longer contains `{from}`"
                );
                source = source.replace(from, to);
            }
        }
        let loaded = load_source_with(&path.to_string_lossy(), source.as_bytes(), &DiskReader);
        let (program, diags) = netc::check_program(loaded);
        assert!(!diags.has_errors(), "{}: {diags:?}", path.display());
        let nets: Vec<String> = program
            .root_module()
            .map(|m| {
                m.items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Net(n) => Some(n.name.name.clone()),
                        Item::Use(_) | Item::Const(_) | Item::Block(_) | Item::Cell(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let several = nets.len() > 1;
        for net in nets {
            out.push(ShrunkNet {
                label: if several {
                    format!("{stem}.net:{net}")
                } else {
                    format!("{stem}.net")
                },
                net,
                program: program.clone(),
            });
        }
    }
    out
}

/// The largest difference between two sets of outputs relative to the largest magnitude
/// of `want`; panics (naming `what`) if they have different names or shapes.
pub fn max_rel_diff(
    want: &BTreeMap<String, Tensor>,
    got: &BTreeMap<String, Tensor>,
    what: &str,
) -> f64 {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: output names"
    );
    let mut worst: f64 = 0.0;
    for (name, w) in want {
        let g = &got[name];
        match (w, g) {
            (Tensor::F32(a), Tensor::F32(b)) => {
                assert_eq!(a.shape(), b.shape(), "{what}: `{name}` shape");
                let scale = a
                    .iter()
                    .fold(0f64, |m, x| m.max(f64::from(x.abs())))
                    .max(1e-30);
                let diff = a.iter().zip(b.iter()).fold(0f64, |m, (x, y)| {
                    let d = f64::from((x - y).abs());
                    if d.is_nan() {
                        f64::INFINITY
                    } else {
                        m.max(d)
                    }
                });
                worst = worst.max(diff / scale);
            }
            (Tensor::I64(a), Tensor::I64(b)) => {
                assert_eq!(a, b, "{what}: `{name}`");
            }
            _ => panic!("{what}: `{name}` has different element types"),
        }
    }
    worst
}
