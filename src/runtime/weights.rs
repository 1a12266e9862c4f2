//! Weights: the tensors stored with a model, in safetensors files.
//!
//! Tensor names are the IR's hierarchical parameter names (`conv1/weight`,
//! `inception3a/b2/conv/bias`, `bn1/running_mean`), stable across compiler versions. A weights
//! file holds every trainable parameter and every buffer (batch norm's running statistics) of
//! one net, as little-endian f32; fixed kernels written in the source are not stored.
//!
//! Loading validates everything before any value is used: every expected name present with
//! the expected shape and dtype, nothing extra. All problems are reported in one error.
//! Writing goes to a temporary file renamed into place, so a failed write never leaves a
//! half-written file.
//!
//! Initialisation is deterministic: the same seed gives bit-identical weights on any machine
//! (an integer PRNG, uniform distributions, and only correctly rounded float operations).

use crate::ir::graph::{Derivation, Graph, ParamId, ParamKind, Region, ValueRef};
use crate::ir::op::{LoopKind, Op};
use std::collections::BTreeMap;
use std::path::Path;

/// How a tensor is initialised by `netc init`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// He (Kaiming) uniform: U(−√(6/fan_in), √(6/fan_in)) — convolutions and dense layers.
    HeUniform {
        /// Inputs feeding one output unit.
        fan_in: usize,
    },
    /// Glorot (Xavier) uniform: U(−√(6/(fan_in+fan_out)), +…) — recurrent gates, embeddings.
    XavierUniform {
        /// Inputs of one unit.
        fan_in: usize,
        /// Outputs of one input.
        fan_out: usize,
    },
    /// All zeros (biases, batch-norm shifts and running means).
    Zeros,
    /// All ones (batch-norm scales and running variances).
    Ones,
}

/// One tensor a net expects in its weights file.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    /// The hierarchical name.
    pub name: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// How `netc init` fills it.
    pub init: Init,
}

impl Expected {
    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A set of named f32 tensors, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    /// Tensors by name, each with its shape and data.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// What is wrong with a weights file.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightsError {
    /// The file could not be read or written.
    Io(String),
    /// The file is not a valid safetensors file (truncated, corrupt, not safetensors).
    Corrupt(String),
    /// The file is valid but does not match the net.
    Mismatch {
        /// Expected tensors absent from the file.
        missing: Vec<(String, Vec<usize>)>,
        /// Tensors in the file the net does not have.
        extra: Vec<(String, Vec<usize>)>,
        /// Tensors present with another shape: (name, expected, found).
        wrong_shape: Vec<(String, Vec<usize>, Vec<usize>)>,
        /// Tensors present with another dtype: (name, found dtype).
        wrong_dtype: Vec<(String, String)>,
    },
}

impl WeightsError {
    /// A one-paragraph description, listing every problem.
    pub fn describe(&self) -> String {
        match self {
            WeightsError::Io(e) => e.clone(),
            WeightsError::Corrupt(e) => format!("not a valid safetensors file: {e}"),
            WeightsError::Mismatch {
                missing,
                extra,
                wrong_shape,
                wrong_dtype,
            } => {
                let mut lines = Vec::new();
                for (n, s) in missing {
                    lines.push(format!("missing `{n}` {s:?}"));
                }
                for (n, e, f) in wrong_shape {
                    lines.push(format!("`{n}` has shape {f:?}, the net expects {e:?}"));
                }
                for (n, d) in wrong_dtype {
                    lines.push(format!("`{n}` is {d}, the net expects F32"));
                }
                for (n, s) in extra {
                    lines.push(format!("unexpected `{n}` {s:?}"));
                }
                const SHOWN: usize = 12;
                let total = lines.len();
                let mut out: Vec<String> = lines.into_iter().take(SHOWN).collect();
                if total > SHOWN {
                    out.push(format!("… and {} more", total - SHOWN));
                }
                out.join("\n")
            }
        }
    }

    /// Whether the file looks made for another net (most names do not match).
    pub fn is_other_net(&self) -> bool {
        matches!(self, WeightsError::Mismatch { missing, extra, .. }
            if !missing.is_empty() && !extra.is_empty())
    }
}

/// The tensors a weights file for `graph` holds: every trainable parameter and buffer, in
/// the order of the parameter table (source order); fixed kernels are not stored.
///
/// The initialisation of each follows the op that reads it:
///
/// | read as | init |
/// |---|---|
/// | convolution weight `[O, C/g, kh, kw]` | He uniform, `fan_in = C/g·kh·kw` |
/// | dense weight `[U, F]` outside a recurrence | He uniform, `fan_in = F` |
/// | dense weight inside a recurrence (gates) | Xavier uniform, `fan_in = F`, `fan_out` = one gate's units |
/// | embedding table `[V, D]` | Xavier uniform, `fan_in = V`, `fan_out = D` |
/// | biases, batch-norm shifts, running means | zeros |
/// | batch-norm scales, running variances | ones |
/// | anything else | He uniform over the trailing axes (rank ≥ 2), else zeros |
///
/// A built-in recurrence's weight `[g·h, h+F]` stacks `g` gates (1, 4, 3 for `rnn`, `lstm`,
/// `gru`), so one gate has `h` units; a dense layer in a user cell is one gate.
pub fn expected(graph: &Graph) -> Vec<Expected> {
    let mut roles = BTreeMap::new();
    collect_roles(&graph.body, None, &mut roles);
    derived_roles(graph, &mut roles);
    graph
        .params
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.kind, ParamKind::Trainable | ParamKind::Buffer))
        .map(|(i, p)| {
            let shape: Vec<usize> =
                p.ty.shape
                    .dims()
                    .iter()
                    .map(|d| d.known().and_then(|k| usize::try_from(k).ok()).unwrap_or(0))
                    .collect();
            let id = ParamId(u32::try_from(i).unwrap_or(u32::MAX));
            let init = init_for(roles.get(&id).copied(), &shape);
            Expected {
                name: p.name.clone(),
                shape,
                init,
            }
        })
        .collect()
}

/// How a parameter is read, for choosing its initialisation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    ConvWeight,
    DenseWeight,
    /// A dense weight in a loop body; the number of gates stacked in it.
    GateWeight(usize),
    EmbedTable,
    Zeros,
    Ones,
}

fn init_for(role: Option<Role>, shape: &[usize]) -> Init {
    let trailing: usize = shape.iter().skip(1).product();
    let rows = shape.first().copied().unwrap_or(1);
    match role {
        Some(Role::ConvWeight | Role::DenseWeight) => Init::HeUniform { fan_in: trailing },
        Some(Role::GateWeight(gates)) => Init::XavierUniform {
            fan_in: trailing,
            fan_out: rows / gates.max(1),
        },
        Some(Role::EmbedTable) => Init::XavierUniform {
            fan_in: rows,
            fan_out: trailing,
        },
        Some(Role::Zeros) => Init::Zeros,
        Some(Role::Ones) => Init::Ones,
        None if shape.len() >= 2 => Init::HeUniform { fan_in: trailing },
        None => Init::Zeros,
    }
}

/// Records the role of every parameter read in `region` (and in loop bodies within).
/// `gates` is the number of gates of the innermost enclosing recurrence.
fn collect_roles(region: &Region, gates: Option<usize>, roles: &mut BTreeMap<ParamId, Role>) {
    for id in region.node_ids() {
        let node = region.node(id);
        if let Op::Loop(l) = &node.op {
            let g = match l.kind {
                LoopKind::Rnn | LoopKind::Cell(_) => 1,
                LoopKind::Lstm => 4,
                LoopKind::Gru => 3,
            };
            collect_roles(&l.body, Some(g), roles);
        }
        if let Op::Group(g) = &node.op {
            collect_roles(&g.body, gates, roles);
        }
        for (port, v) in region.inputs_of(id).into_iter().enumerate() {
            let Some(param) = source_param(region, v) else {
                continue;
            };
            let role = match &node.op {
                Op::Conv2d(_) if port == 1 => Role::ConvWeight,
                Op::Dense if port == 1 => gates.map_or(Role::DenseWeight, Role::GateWeight),
                Op::Conv2d(_) | Op::Dense => Role::Zeros,
                // Inputs: x, scale, shift, running mean, running variance.
                Op::BatchNorm { .. } if port == 1 || port == 4 => Role::Ones,
                Op::BatchNorm { .. } => Role::Zeros,
                Op::Embed => Role::EmbedTable,
                Op::Input { .. }
                | Op::Param(_)
                | Op::Fill { .. }
                | Op::MaxPool2d(_)
                | Op::AvgPool2d(_)
                | Op::GlobalAvgPool
                | Op::GlobalMaxPool
                | Op::Lrn { .. }
                | Op::MatMul
                | Op::Flatten
                | Op::FlattenChannelsLast
                | Op::Reshape { .. }
                | Op::Concat { .. }
                | Op::Slice { .. }
                | Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Neg
                | Op::Relu
                | Op::Sigmoid
                | Op::Tanh
                | Op::Softmax { .. }
                | Op::LogSoftmax { .. }
                | Op::Dropout { .. }
                | Op::Mean { .. }
                | Op::Sum { .. }
                | Op::SoftmaxCrossEntropy
                | Op::Mse
                | Op::Loop(_)
                | Op::Group(_)
                | Op::Relayout { .. } => continue,
            };
            roles.entry(param).or_insert(role);
        }
    }
}

/// Gives the sources of derived parameters the roles they had before the passes read them
/// through a derivation: a folded layer's weight keeps the folded weight's role, batch
/// norm's scale and variance are ones, its shift, mean and the layer's bias zeros; a sliced
/// weight keeps its slice's role. So the
/// weights an optimised net expects are exactly the unoptimised net's.
fn derived_roles(graph: &Graph, roles: &mut BTreeMap<ParamId, Role>) {
    for (i, p) in graph.params.iter().enumerate() {
        let Some(how) = &p.derived else {
            continue;
        };
        let own = roles
            .get(&ParamId(u32::try_from(i).unwrap_or(u32::MAX)))
            .copied();
        match how {
            Derivation::FoldedWeight {
                weight, scale, var, ..
            } => {
                if let Some(role) = own {
                    roles.entry(*weight).or_insert(role);
                }
                roles.entry(*scale).or_insert(Role::Ones);
                roles.entry(*var).or_insert(Role::Ones);
            }
            Derivation::FoldedBias {
                bias,
                scale,
                shift,
                mean,
                var,
                ..
            } => {
                for z in bias.iter().chain([shift, mean]) {
                    roles.entry(*z).or_insert(Role::Zeros);
                }
                roles.entry(*scale).or_insert(Role::Ones);
                roles.entry(*var).or_insert(Role::Ones);
            }
            // A slice or a permutation is read as its source was (a gate block of a
            // recurrent weight, a dense weight).
            Derivation::Slice { source, .. } | Derivation::ChannelsLastColumns { source, .. } => {
                if let Some(role) = own {
                    roles.entry(*source).or_insert(role);
                }
            }
        }
    }
}

/// The parameter a value reads, through slices (a GRU reads its gate blocks as slices).
fn source_param(region: &Region, v: ValueRef) -> Option<ParamId> {
    let node = region.node(v.node);
    match &node.op {
        Op::Param(id) => Some(*id),
        Op::Slice { .. } => source_param(region, *region.inputs_of(v.node).first()?),
        _ => None,
    }
}

/// Deterministic initial weights for `expected`.
pub fn init(expected: &[Expected], seed: u64) -> Weights {
    let mut tensors = BTreeMap::new();
    for (i, e) in expected.iter().enumerate() {
        // One stream per tensor, so adding a layer does not change the others' values.
        let mut rng = Rng::new(seed ^ fnv1a(e.name.as_bytes()) ^ (i as u64).rotate_left(32));
        let n = e.elements();
        let data = match e.init {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::HeUniform { fan_in } => {
                let a = (6.0 / fan_in.max(1) as f64).sqrt();
                (0..n).map(|_| rng.uniform(a)).collect()
            }
            Init::XavierUniform { fan_in, fan_out } => {
                let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                (0..n).map(|_| rng.uniform(a)).collect()
            }
        };
        tensors.insert(e.name.clone(), (e.shape.clone(), data));
    }
    Weights { tensors }
}

/// Serialises `weights` as safetensors bytes, with `metadata` (for example the net's name).
///
/// The layout is safetensors' own: an 8-byte little-endian header length, a JSON header
/// (`__metadata__`, then per tensor its dtype, shape and byte range), padded with spaces
/// to a multiple of 8, then the data of every tensor in name order. The header's keys are
/// sorted, so the bytes are a function of the weights and metadata alone (same seed, same
/// file); [`from_bytes`] reads files through the safetensors crate.
pub fn to_bytes(
    weights: &Weights,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, WeightsError> {
    let mut header: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::json!(metadata));
    }
    let mut offset = 0usize;
    for (name, (shape, data)) in &weights.tensors {
        if shape.iter().product::<usize>() != data.len() {
            return Err(WeightsError::Corrupt(format!(
                "`{name}` has {} values for shape {shape:?}",
                data.len()
            )));
        }
        let end = offset + 4 * data.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_vec(&header).map_err(|e| WeightsError::Corrupt(e.to_string()))?;
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + offset);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    for (_, data) in weights.tensors.values() {
        for x in data {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    Ok(out)
}

/// The metadata stored in a safetensors file (`net`, `netc`, `seed` for files `netc init`
/// writes), or `None` if the header cannot be read.
pub fn read_metadata(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).ok()?;
    meta.metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Writes `bytes` to `path` through a temporary file in the same folder, renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = match dir {
        Some(d) => d.join(format!(".{file_name}.tmp{}", std::process::id())),
        None => Path::new(&format!(".{file_name}.tmp{}", std::process::id())).to_path_buf(),
    };
    let io = |e: std::io::Error, what: &Path| {
        WeightsError::Io(format!("cannot write `{}`: {e}", what.display()))
    };
    std::fs::write(&tmp, bytes).map_err(|e| io(e, &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e, path)
    })
}

/// Parses safetensors `bytes` and checks them against `expected`.
pub fn from_bytes(bytes: &[u8], expected: &[Expected]) -> Result<Weights, WeightsError> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| WeightsError::Corrupt(e.to_string()))?;
    let mut found: BTreeMap<String, safetensors::tensor::TensorView<'_>> = BTreeMap::new();
    for (name, view) in st.tensors() {
        found.insert(name, view);
    }
    let mut missing = Vec::new();
    let mut wrong_shape = Vec::new();
    let mut wrong_dtype = Vec::new();
    let mut tensors = BTreeMap::new();
    for e in expected {
        let Some(view) = found.remove(&e.name) else {
            missing.push((e.name.clone(), e.shape.clone()));
            continue;
        };
        if view.dtype() != safetensors::Dtype::F32 {
            wrong_dtype.push((e.name.clone(), format!("{:?}", view.dtype())));
            continue;
        }
        if view.shape() != e.shape.as_slice() {
            wrong_shape.push((e.name.clone(), e.shape.clone(), view.shape().to_vec()));
            continue;
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(e.name.clone(), (e.shape.clone(), data));
    }
    let extra: Vec<(String, Vec<usize>)> = found
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    if missing.is_empty() && extra.is_empty() && wrong_shape.is_empty() && wrong_dtype.is_empty() {
        Ok(Weights { tensors })
    } else {
        Err(WeightsError::Mismatch {
            missing,
            extra,
            wrong_shape,
            wrong_dtype,
        })
    }
}

/// Reads and checks a weights file.
pub fn load(path: &Path, expected: &[Expected]) -> Result<Weights, WeightsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| WeightsError::Io(format!("cannot read `{}`: {e}", path.display())))?;
    from_bytes(&bytes, expected)
}

/// FNV-1a, to derive a per-tensor stream from its name.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// xoshiro256** seeded by SplitMix64: small, fast, and the same on every platform.
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [−a, a): 53 random bits scaled exactly, then one rounding to f32.
    fn uniform(&mut self, a: f64) -> f32 {
        let u = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        ((2.0 * u - 1.0) * a) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Vec<Expected> {
        vec![
            Expected {
                name: "conv1/weight".into(),
                shape: vec![6, 1, 5, 5],
                init: Init::HeUniform { fan_in: 25 },
            },
            Expected {
                name: "conv1/bias".into(),
                shape: vec![6],
                init: Init::Zeros,
            },
        ]
    }

    #[test]
    fn init_is_deterministic_and_bounded() {
        let a = init(&spec(), 7);
        let b = init(&spec(), 7);
        let c = init(&spec(), 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let (_, w) = &a.tensors["conv1/weight"];
        let bound = (6.0f32 / 25.0).sqrt();
        assert!(w.iter().all(|x| x.abs() <= bound));
        // Not degenerate: the values spread over the interval.
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        assert!(mean.abs() < 0.2 * bound, "{mean}");
        assert!(w.iter().any(|x| *x > 0.5 * bound) && w.iter().any(|x| *x < -0.5 * bound));
        assert!(a.tensors["conv1/bias"].1.iter().all(|x| *x == 0.0));
    }

    const GOLDEN: [u32; 3] = [0xbda5_5f1f, 0x3ecd_79f4, 0x3ee1_3890];

    /// Golden values: a change here changes every weights file `netc init` writes.
    #[test]
    fn init_values_are_stable() {
        let w = init(&spec(), 0);
        let first: Vec<u32> = w.tensors["conv1/weight"].1[..3]
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(first, GOLDEN, "{first:#x?}");
    }

    #[test]
    fn round_trip_and_validation() {
        let w = init(&spec(), 1);
        let bytes = to_bytes(&w, &BTreeMap::new()).expect("serialises");
        assert_eq!(from_bytes(&bytes, &spec()).expect("loads"), w);

        // Another net's expectations: everything reported at once.
        let other = vec![
            Expected {
                name: "conv1/weight".into(),
                shape: vec![6, 3, 5, 5],
                init: Init::Zeros,
            },
            Expected {
                name: "fc/weight".into(),
                shape: vec![10, 4],
                init: Init::Zeros,
            },
        ];
        let err = from_bytes(&bytes, &other).expect_err("mismatch");
        let WeightsError::Mismatch {
            missing,
            extra,
            wrong_shape,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(missing, &[("fc/weight".to_string(), vec![10, 4])]);
        assert_eq!(extra, &[("conv1/bias".to_string(), vec![6])]);
        assert_eq!(wrong_shape.len(), 1);
        assert!(err.is_other_net());
        let text = err.describe();
        assert!(text.contains("missing `fc/weight`") && text.contains("unexpected `conv1/bias`"));
    }

    #[test]
    fn bytes_are_deterministic_and_read_back() {
        let w = init(&spec(), 3);
        let meta = BTreeMap::from([
            ("net".to_string(), "lenet5".to_string()),
            ("netc".to_string(), "0.1.0".to_string()),
            ("seed".to_string(), "3".to_string()),
        ]);
        let a = to_bytes(&w, &meta).expect("serialises");
        let b = to_bytes(&w, &meta).expect("serialises");
        assert_eq!(a, b);
        assert_eq!(
            from_bytes(&a, &spec()).expect("the safetensors crate reads it"),
            w
        );
        assert_eq!(read_metadata(&a), Some(meta));
        let n = u64::from_le_bytes(a[..8].try_into().expect("8 bytes"));
        assert_eq!(n % 8, 0, "the header is padded to 8 bytes");
    }

    fn compile(src: &str) -> Graph {
        let (program, diags) =
            crate::check_program(crate::syntax::loader::load_source("t.net", src));
        assert!(!diags.has_errors(), "{diags:?}");
        crate::passes::compile(&program, &crate::passes::CompileOptions::default())
            .map(|c| c.graph)
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    #[test]
    fn initialisation_follows_the_reading_op() {
        let g = compile(
            "net m(x: f32[N, 3, 8, 8], t: i64[N, T]) -> (a, b) {\n\
             a = x -> c: conv(4, kernel: 3) -> bn: batchnorm -> flatten -> fc: dense(5)\n\
             b = t -> e: embed(10, 6) -> r: lstm(7) -> g: gru(2)\n}",
        );
        let by_name: BTreeMap<String, Init> =
            expected(&g).into_iter().map(|e| (e.name, e.init)).collect();
        let init_of = |suffix: &str| {
            by_name
                .iter()
                .find(|(n, _)| n.ends_with(suffix))
                .map(|(_, i)| *i)
                .unwrap_or_else(|| panic!("no `{suffix}` in {by_name:?}"))
        };
        assert_eq!(init_of("c/weight"), Init::HeUniform { fan_in: 27 });
        assert_eq!(init_of("c/bias"), Init::Zeros);
        assert_eq!(init_of("fc/weight"), Init::HeUniform { fan_in: 4 * 6 * 6 });
        // LSTM [4·7, 7 + 6]: one gate has 7 units; GRU [3·2, 2 + 7] through its slices.
        assert_eq!(
            init_of("r/weight"),
            Init::XavierUniform {
                fan_in: 13,
                fan_out: 7
            }
        );
        assert_eq!(
            init_of("g/weight"),
            Init::XavierUniform {
                fan_in: 9,
                fan_out: 2
            }
        );
        assert_eq!(init_of("r/bias"), Init::Zeros);
        assert_eq!(
            init_of("e/table"),
            Init::XavierUniform {
                fan_in: 10,
                fan_out: 6
            }
        );
        let bn: Vec<Init> = by_name
            .iter()
            .filter(|(n, _)| n.starts_with("bn/"))
            .map(|(_, i)| *i)
            .collect();
        // Sorted by name: mean, scale, shift, var.
        assert_eq!(bn, vec![Init::Zeros, Init::Ones, Init::Zeros, Init::Ones]);
    }

    #[test]
    fn truncated_and_garbage_files_are_corrupt() {
        let bytes = to_bytes(&init(&spec(), 1), &BTreeMap::new()).expect("serialises");
        for cut in [0, 4, 8, bytes.len() / 2, bytes.len() - 1] {
            let r = from_bytes(&bytes[..cut], &spec());
            assert!(
                matches!(r, Err(WeightsError::Corrupt(_))),
                "cut at {cut}: {r:?}"
            );
        }
        let r = from_bytes(b"\x89PNG\r\n\x1a\n not weights at all", &spec());
        assert!(matches!(r, Err(WeightsError::Corrupt(_))));
    }
}
