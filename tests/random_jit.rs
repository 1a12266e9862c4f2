//! Random-network differential tests of the JIT (`netc::codegen`) against the reference
//! interpreter. Each random net is compiled with all passes, then to native code once with
//! `debug_bounds` off (the host GEMM engine for contractions) and once on (the portable
//! loop nests, every access checked), and each executable runs at three random sizes
//! (batch 1 to 5; sequence lengths `T`, `U` from 1 to 7; image sizes 1 to 9 for nets with
//! symbolic `H`, `W`) and again at the first (its per-size tables cached). Every run must
//! equal `interp::run` on the lowered (unoptimised) net within 1e-4 relative (max |Δ| /
//! max |ref| per output, over the elements where the reference is finite: a random
//! recurrence can overflow to inf and NaN; max |ref| at least 1e-3, as values near zero
//! are residues of cancelling sums) and report no error. Every third net is also compiled after a
//! random number of rewrites (a partly optimised graph).
//!
//! **Image nets** (`x: f32[N, C, H, W]` with odd and even sizes, now and then a larger
//! map, sometimes a second input or symbolic `H`, `W`): convolutions with random kernels
//! (square and `[kh, kw]`), strides, paddings (numbers, pairs, `same`, `valid`),
//! dilations and groups (depthwise, and groups whose channels per group are not a
//! multiple of 4); max and average pools (ceil mode, `count_pad` true and false); batch
//! norms, LRN, activations, softmax and log_softmax on the channel and last axes; sums,
//! products, differences, tensor arithmetic, broadcasts of global pools; concats of
//! several values (the same value twice, nested; most become in place), `concat { … }`
//! branches, residual `add { … | identity }` blocks, `repeat` stacks, channel slices;
//! outputs through flatten and dense heads, global pools, softmax, sums and means.
//! Channel counts take every value from 1 to 17 (every remainder mod 16) and larger ones
//! (multiples of 16 among them), so that vector loops run their 16-wide blocks and every
//! tail.
//!
//! **Sequence nets** (`x: f32[N, T, F]`, token ids through `embed`, a second sequence
//! `y: f32[N, U, G]`, vectors `v: f32[N, G]`): `rnn`, `lstm`, `gru` and random user cells
//! (one or two states starting at zeros or ones, gates, `1 - z`, arithmetic, emitting a
//! state, a gate or a dense layer of another width, one cell used twice) run with
//! `emit: all | last | state`, `init:` from another recurrence's state or a tensor,
//! `steps: K` on vectors; stacked recurrences, dense layers on sequences, concats and
//! slices on the feature axis, means and sums over time, softmax and log_softmax.
//!
//! The generators only make valid nets: a net that does not check is a failure, and
//! `the_generators_cover_the_constructs` checks 300 of each kind, that every construct
//! above occurs, and that the passes fold batch norms, fuse and place concats in them.
//!
//! A failure prints the net's source, its seed, the sizes, which executables differ (by
//! how much, and their first values) and whether the arena executor, running the same
//! optimised graph in the same memory plan, agrees. Save the source to a file to replay
//! it, with `NETC_PASSES` (as `netc run --passes`) to bisect the passes:
//!
//! ```text
//! NETC_REPLAY=bad.net NETC_PASSES=fuse cargo test --test random_jit replay -- --ignored
//! ```
//!
//! CI runs 400 image nets and 240 sequence nets from a fixed seed (deterministic; about
//! 30 s in the test profile on two cores, 80 s with netc at opt-level 0). Longer runs:
//!
//! ```text
//! # n nets of each kind on every core, reporting every failure, not only the first:
//! NETC_SOAK=10000 cargo test --release --test random_jit soak -- --ignored --nocapture
//! NETC_SOAK=10000 NETC_SOAK_SEED=$RANDOM cargo test --release --test random_jit soak -- --ignored --nocapture
//! # or the CI tests with more cases, or other seeds:
//! PROPTEST_CASES=5000 PROPTEST_RNG_SEED=$RANDOM cargo test --release --test random_jit
//! ```

#[path = "shared/nets.rs"]
mod nets;

use netc::codegen::{self, CodegenOptions};
use netc::ir::graph::Graph;
use netc::passes::pipeline::{PassOptions, PassSelection};
use netc::passes::{compile, compile_with, CompileOptions};
use netc::runtime::{arena, interp, Tensor};
use netc::syntax::loader::{load_source_with, DiskReader, Program};
use nets::{random_weights, Rng};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The largest relative difference accepted.
const TOLERANCE: f64 = 1e-4;

/// The values of the symbolic sizes for one run: `("N", 3), ("T", 5)`.
type Sizes = Vec<(&'static str, u64)>;

/// A generated net: its source, the sizes to run it at and what it contains.
struct Net {
    src: String,
    runs: Vec<Sizes>,
    /// Constructs it contains, for the coverage test.
    tags: BTreeSet<String>,
}

/// The generators' random choices.
struct Gen {
    rng: Rng,
    tags: BTreeSet<String>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng(seed),
            tags: BTreeSet::new(),
        }
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.rng.next() % n.max(1) as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.rng.next() % (hi - lo + 1)
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.rng.next() % den < num
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }

    /// A channel or feature count: every count from 1 to 17 (every remainder mod 16, and
    /// 16 itself), or a larger one.
    fn channels(&mut self) -> u64 {
        if self.chance(3, 4) {
            self.range(1, 17)
        } else {
            self.pick(&[20, 24, 31, 32, 33, 48])
        }
    }

    fn tag(&mut self, t: impl Into<String>) {
        self.tags.insert(t.into());
    }

    /// Records a value's channel (feature) count.
    fn count(&mut self, c: u64) {
        self.tag(format!("channels%16={}", c % 16));
        if c >= 16 {
            self.tag("channels>=16");
        }
        if c.is_multiple_of(16) {
            self.tag("channels=16k");
        }
    }
}

/// `a` or `[a, b]`.
fn pair(a: u64, b: u64) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("[{a}, {b}]")
    }
}

// ---------------------------------------------------------------------------------------
// Image nets
// ---------------------------------------------------------------------------------------

/// A value of an image net, `[N, c, h, w]`; `h = w = 0` stands for the symbolic `H`, `W`.
#[derive(Clone)]
struct Map {
    name: String,
    c: u64,
    h: u64,
    w: u64,
}

/// The output size of a window of `k` taps dilated by `d`, at stride `s` with padding `p`
/// on each side, over `n` (floor mode); `None` if the window does not fit: larger than the
/// padded input, or windows that stop before the end of the input (E0305).
fn window_out(n: u64, k: u64, s: u64, p: u64, d: u64) -> Option<u64> {
    let span = d * (k - 1) + 1;
    if n == 0 || n + 2 * p < span {
        return None;
    }
    let rest = n + 2 * p - span;
    if rest % s > p && span >= s {
        return None;
    }
    Some(rest / s + 1)
}

/// The same in ceil mode (pools): a last window starting in the trailing padding is
/// dropped.
fn window_out_ceil(n: u64, k: u64, s: u64, p: u64) -> Option<u64> {
    if n + 2 * p < k {
        return None;
    }
    let mut out = (n + 2 * p - k).div_ceil(s) + 1;
    if (out - 1) * s >= n + p {
        out -= 1;
    }
    Some(out)
}

/// A random convolution of `a`: kernel, stride, padding, dilation, groups and bias.
/// Returns the step's text and the output's channels and size.
fn conv(g: &mut Gen, a: &Map, sym: bool) -> (String, u64, u64, u64) {
    let groups = match g.below(8) {
        0 | 1 => a.c,
        2 | 3 => {
            let divisors: Vec<u64> = (1..=a.c).filter(|d| a.c.is_multiple_of(*d)).collect();
            g.pick(&divisors)
        }
        _ => 1,
    };
    let out = if groups == 1 {
        g.channels()
    } else {
        groups * g.range(1, if groups > 16 { 1 } else { 3 })
    };
    if groups > 1 {
        if groups == a.c {
            g.tag("depthwise conv");
        } else {
            g.tag("grouped conv");
        }
        if !(a.c / groups).is_multiple_of(4) && groups != a.c {
            g.tag("channels per group not a multiple of 4");
        }
    }
    let mut args = vec![out.to_string()];
    let (h, w);
    if sym {
        // Sizes kept: an odd kernel padded by half its span, or `same`.
        let k = g.pick(&[1, 3, 3, 5]);
        let d = if k > 1 && g.chance(1, 4) { 2 } else { 1 };
        args.push(format!("kernel: {k}"));
        if g.chance(1, 2) {
            args.push("pad: same".into());
        } else if k > 1 {
            args.push(format!("pad: {}", d * (k - 1) / 2));
        }
        if d > 1 {
            args.push(format!("dilation: {d}"));
            g.tag("dilation");
        }
        (h, w) = (a.h, a.w);
    } else {
        let mut found = None;
        for _ in 0..20 {
            let kh = g.pick(&[1, 2, 3, 3, 3, 5]);
            let kw = if g.chance(1, 4) {
                g.pick(&[1, 2, 3, 5])
            } else {
                kh
            };
            let sh = g.pick(&[1, 1, 1, 2, 2, 3]);
            let sw = if g.chance(1, 5) {
                g.pick(&[1, 2, 3])
            } else {
                sh
            };
            let dh = if kh > 1 && g.chance(1, 4) { 2 } else { 1 };
            let dw = if kw > 1 && g.chance(1, 4) {
                dh.max(2)
            } else {
                dh
            };
            let (spanh, spanw) = (dh * (kh - 1) + 1, dw * (kw - 1) + 1);
            // 0: `same`, 1: `valid`, 2: numbers.
            let mode = g.below(4).min(2);
            let (ph, pw) = (g.range(0, spanh / 2 + 1), g.range(0, spanw / 2 + 1));
            let sizes = match mode {
                0 => Some((a.h.div_ceil(sh), a.w.div_ceil(sw))),
                1 => window_out(a.h, kh, sh, 0, dh).zip(window_out(a.w, kw, sw, 0, dw)),
                _ => window_out(a.h, kh, sh, ph, dh).zip(window_out(a.w, kw, sw, pw, dw)),
            };
            if let Some((oh, ow)) = sizes {
                let pad = match mode {
                    0 => Some("same".to_string()),
                    1 => Some("valid".to_string()),
                    _ if ph == 0 && pw == 0 && g.chance(1, 2) => None,
                    _ => Some(pair(ph, pw)),
                };
                found = Some((kh, kw, sh, sw, dh, dw, pad, oh, ow));
                break;
            }
        }
        let (kh, kw, sh, sw, dh, dw, pad, oh, ow) =
            found.unwrap_or((1, 1, 1, 1, 1, 1, None, a.h, a.w));
        args.push(format!("kernel: {}", pair(kh, kw)));
        if sh != 1 || sw != 1 {
            args.push(format!("stride: {}", pair(sh, sw)));
            g.tag("strided conv");
        }
        if let Some(p) = pad {
            if p != "0" && p != "valid" {
                g.tag("padded conv");
            }
            args.push(format!("pad: {p}"));
        }
        if dh != 1 || dw != 1 {
            args.push(format!("dilation: {}", pair(dh, dw)));
            g.tag("dilation");
        }
        if kh != kw {
            g.tag("rectangular kernel");
        }
        (h, w) = (oh, ow);
    }
    if groups > 1 {
        args.push(format!("groups: {groups}"));
    }
    let mut text = String::new();
    if g.chance(1, 3) {
        args.push("bias: false".into());
        if g.chance(2, 3) {
            text = " -> batchnorm".into();
        }
    }
    if g.chance(1, 2) {
        text.push_str(&format!(" -> {}", g.pick(&["relu", "sigmoid", "tanh"])));
    }
    (format!("conv({}){text}", args.join(", ")), out, h, w)
}

/// A random max or average pool of `a`.
fn pool(g: &mut Gen, a: &Map, sym: bool) -> (String, u64, u64) {
    let max = g.chance(1, 2);
    let kind = if max { "maxpool" } else { "avgpool" };
    if sym {
        let k = g.pick(&[1, 3, 5]);
        let cp = if max || g.chance(1, 2) {
            ""
        } else {
            ", count_pad: false"
        };
        return (
            format!("{kind}({k}, stride: 1, pad: {}{cp})", k / 2),
            a.h,
            a.w,
        );
    }
    for _ in 0..20 {
        let kh = g.pick(&[1, 2, 2, 3, 3, 4, 5]);
        let kw = if g.chance(1, 4) {
            g.pick(&[1, 2, 3, 4])
        } else {
            kh
        };
        let stride = if g.chance(1, 3) {
            None
        } else {
            let sh = g.pick(&[1, 2, 2, 3]);
            let sw = if g.chance(1, 5) {
                g.pick(&[1, 2, 3])
            } else {
                sh
            };
            Some((sh, sw))
        };
        let (sh, sw) = stride.unwrap_or((kh, kw));
        let (ph, pw) = if g.chance(1, 2) {
            (g.range(0, kh / 2), g.range(0, kw / 2))
        } else {
            (0, 0)
        };
        let ceil = g.chance(2, 5);
        let out = if ceil {
            window_out_ceil(a.h, kh, sh, ph).zip(window_out_ceil(a.w, kw, sw, pw))
        } else {
            window_out(a.h, kh, sh, ph, 1).zip(window_out(a.w, kw, sw, pw, 1))
        };
        let Some((oh, ow)) = out else { continue };
        let mut args = vec![pair(kh, kw)];
        if let Some((sh, sw)) = stride {
            args.push(format!("stride: {}", pair(sh, sw)));
        }
        if ph != 0 || pw != 0 {
            args.push(format!("pad: {}", pair(ph, pw)));
            g.tag(format!("padded {kind}"));
        }
        if ceil {
            args.push("ceil: true".into());
            g.tag(format!("ceil {kind}"));
        }
        if !max {
            match g.below(3) {
                0 => {
                    args.push("count_pad: false".into());
                    g.tag("count_pad: false");
                }
                1 => args.push("count_pad: true".into()),
                _ => {}
            }
        }
        return (format!("{kind}({})", args.join(", ")), oh, ow);
    }
    (format!("{kind}(1)"), a.h, a.w)
}

/// A step that keeps the spatial size (for branches and residual blocks); `keep` asks
/// for the channels to be kept too. Returns the text and the channels.
fn same_size_step(g: &mut Gen, c: u64, keep: bool) -> (String, u64) {
    let out = if keep { c } else { g.channels() };
    match g.below(9) {
        0 => (format!("conv({out}, kernel: 3, pad: 1)"), out),
        1 => (format!("conv({out}, kernel: 1) -> relu"), out),
        2 => (
            format!("conv({out}, kernel: 3, pad: 1, bias: false) -> batchnorm -> relu"),
            out,
        ),
        3 => (format!("conv({out}, kernel: 5, pad: same)"), out),
        4 => (format!("conv({out}, kernel: 3, pad: 2, dilation: 2)"), out),
        5 => (format!("conv({c}, kernel: 3, pad: 1, groups: {c})"), c),
        6 => ("maxpool(3, stride: 1, pad: 1)".into(), c),
        7 => ("avgpool(3, stride: 1, pad: 1, count_pad: false)".into(), c),
        _ => (g.pick(&["relu", "batchnorm", "identity", "tanh"]).into(), c),
    }
}

/// A random image net: 3 to 14 statements over one or two inputs, one to three outputs.
fn image_net(seed: u64) -> Net {
    let mut g = Gen::new(seed ^ 0x1a6e);
    let sym = g.chance(1, 6);
    // Now and then a larger map, so that blocked loops (GEMM blocks of 96 to 256 output
    // positions) run several blocks and a remainder.
    let big = !sym && g.chance(1, 10);
    let c0 = if big || g.chance(1, 2) {
        g.range(1, 5)
    } else {
        g.channels().min(17)
    };
    let (h0, w0) = if sym {
        g.tag("symbolic H, W");
        (0, 0)
    } else if big {
        g.tag("large map");
        (g.range(14, 24), g.range(14, 24))
    } else {
        let h = g.range(1, 13);
        let w = if g.chance(1, 3) { h } else { g.range(1, 13) };
        (h, w)
    };
    if h0 % 2 == 1 && w0 % 2 == 1 {
        g.tag("odd spatial size");
    }
    let dims = |c: u64, h: u64, w: u64| {
        if sym {
            format!("[N, {c}, H, W]")
        } else {
            format!("[N, {c}, {h}, {w}]")
        }
    };
    let mut inputs = vec![format!("x: f32{}", dims(c0, h0, w0))];
    let mut values = vec![Map {
        name: "x".into(),
        c: c0,
        h: h0,
        w: w0,
    }];
    if g.chance(1, 5) {
        let c = if g.chance(1, 2) { c0 } else { g.range(1, 8) };
        inputs.push(format!("y: f32{}", dims(c, h0, w0)));
        values.push(Map {
            name: "y".into(),
            c,
            h: h0,
            w: w0,
        });
        g.tag("two inputs");
    }
    g.count(c0);
    let mut body = String::new();
    let mut consts = String::new();
    let statements = 3 + g.below(12);
    for k in 0..statements {
        // Half the time the latest value (stacks), else any.
        let a = if g.chance(1, 2) {
            values[values.len() - 1].clone()
        } else {
            values[g.below(values.len())].clone()
        };
        let same: Vec<Map> = values
            .iter()
            .filter(|v| v.c == a.c && v.h == a.h && v.w == a.w)
            .cloned()
            .collect();
        let spatial: Vec<Map> = values
            .iter()
            .filter(|v| v.h == a.h && v.w == a.w)
            .cloned()
            .collect();
        let b = g.pick(&same);
        let c = g.pick(&spatial);
        let n = &a.name;
        let (expr, ch, h, w) = match g.below(26) {
            0..=5 => {
                let (t, ch, h, w) = conv(&mut g, &a, sym);
                (format!("{n} -> {t}"), ch, h, w)
            }
            6 => {
                let act = g.pick(&["relu", "sigmoid", "tanh"]);
                (format!("{n} -> {act}"), a.c, a.h, a.w)
            }
            7 | 8 => {
                let (t, h, w) = pool(&mut g, &a, sym);
                (format!("{n} -> {t}"), a.c, h, w)
            }
            9 => {
                g.tag("add");
                if g.chance(1, 3) {
                    let d = g.pick(&same);
                    (format!("add({n}, {}, {})", b.name, d.name), a.c, a.h, a.w)
                } else {
                    (format!("add({n}, {})", b.name), a.c, a.h, a.w)
                }
            }
            10 => {
                if b.name != a.name && g.chance(1, 2) {
                    g.tag("sub");
                    (format!("sub({n}, {})", b.name), a.c, a.h, a.w)
                } else {
                    g.tag("mul");
                    (format!("mul({n}, {})", b.name), a.c, a.h, a.w)
                }
            }
            11 => {
                g.tag("tensor arithmetic");
                let d = g.pick(&same);
                let e = match g.below(3) {
                    0 => format!("{n} * {} + {}", b.name, d.name),
                    1 => format!("(1 - {n}) * {}", b.name),
                    _ => format!("-{n} + {} * 0.5", b.name),
                };
                (e, a.c, a.h, a.w)
            }
            12 | 13 => {
                g.tag("concat");
                if g.chance(1, 3) {
                    let d = g.pick(&spatial);
                    (
                        format!("concat({n}, {}, {}, axis: 1)", c.name, d.name),
                        a.c + c.c + d.c,
                        a.h,
                        a.w,
                    )
                } else {
                    (
                        format!("concat({n}, {}, axis: 1)", c.name),
                        a.c + c.c,
                        a.h,
                        a.w,
                    )
                }
            }
            14 => {
                g.tag("concat branch");
                let mut parts = Vec::new();
                let mut total = 0;
                for _ in 0..2 + g.below(3) {
                    let (t, ch) = same_size_step(&mut g, a.c, false);
                    parts.push(t);
                    total += ch;
                }
                (
                    format!("{n} -> concat {{ {} }}", parts.join(" | ")),
                    total,
                    a.h,
                    a.w,
                )
            }
            15 => {
                g.tag("residual");
                let (t1, _) = same_size_step(&mut g, a.c, true);
                let (t2, _) = same_size_step(&mut g, a.c, true);
                let short = if g.chance(1, 2) {
                    "identity".to_string()
                } else {
                    format!("conv({}, kernel: 1, bias: false) -> batchnorm", a.c)
                };
                (
                    format!("{n} -> add {{ {t1} -> {t2} | {short} }} -> relu"),
                    a.c,
                    a.h,
                    a.w,
                )
            }
            16 => {
                g.tag("batchnorm");
                let eps = if g.chance(1, 3) { "(eps: 0.001)" } else { "" };
                (format!("{n} -> batchnorm{eps} -> relu"), a.c, a.h, a.w)
            }
            17 => {
                g.tag("lrn");
                let size = g.pick(&[1, 3, 5, 7]);
                let alpha = g.pick(&["0.0001", "0.01", "0.5"]);
                let beta = g.pick(&["0.75", "0.5", "1.0"]);
                let kk = g.pick(&["2.0", "1.0"]);
                (
                    format!("{n} -> lrn(size: {size}, alpha: {alpha}, beta: {beta}, k: {kk})"),
                    a.c,
                    a.h,
                    a.w,
                )
            }
            18 => {
                let kind = g.pick(&["global_avgpool", "global_maxpool"]);
                g.tag(kind);
                (format!("{n} -> {kind}"), a.c, 1, 1)
            }
            19 => {
                g.tag("broadcast");
                let gate = if g.chance(1, 3) {
                    // [N, 1, H, W] across the channels.
                    g.tag("channel broadcast");
                    values
                        .iter()
                        .find(|v| v.c == 1 && v.h == a.h && v.w == a.w && a.c != 1)
                        .map(|v| v.name.clone())
                        .unwrap_or_else(|| format!("({n} -> conv(1, kernel: 1) -> sigmoid)"))
                } else {
                    // [N, C, 1, 1] across the map.
                    values
                        .iter()
                        .find(|v| v.c == a.c && v.h == 1 && v.w == 1 && (a.h != 1 || a.w != 1))
                        .map(|v| v.name.clone())
                        .unwrap_or_else(|| format!("({n} -> global_avgpool -> sigmoid)"))
                };
                let op = g.pick(&["mul", "add"]);
                (format!("{op}({n}, {gate})"), a.c, a.h, a.w)
            }
            20 => {
                let f = g.pick(&["softmax", "log_softmax"]);
                let axis = g.pick(&["1", "-1"]);
                g.tag(format!("{f}(axis: {axis})"));
                // A log_softmax of a log_softmax is itself, up to rounding: a difference of
                // the two would be all rounding. A tanh after it keeps that from occurring.
                let then = if f == "log_softmax" { " -> tanh" } else { "" };
                (format!("{n} -> {f}(axis: {axis}){then}"), a.c, a.h, a.w)
            }
            21 => {
                g.tag("repeat");
                let f = g.channels().min(24);
                let times = g.range(1, 3);
                // Labelled: the copies of two unlabelled repeats would both be `conv.0`.
                let t = match g.below(4) {
                    0 => format!("r{k}c: conv({f}, kernel: 3, pad: 1) -> relu"),
                    1 => format!(
                        "r{k}c: conv({f}, kernel: 3, pad: 1, bias: false) -> r{k}n: batchnorm -> relu"
                    ),
                    2 => format!(
                        "r{k}c: conv({f}, kernel: 1) -> r{k}d: conv({f}, kernel: 3, pad: 1, groups: {f}) -> tanh"
                    ),
                    _ => format!("r{k}c: conv({f}, kernel: 3, pad: 1) -> maxpool(3, stride: 1, pad: 1)"),
                };
                (format!("{n} -> repeat {times} {{ {t} }}"), f, a.h, a.w)
            }
            22 if a.c >= 2 => {
                g.tag("slice");
                let start = g.range(0, a.c - 1);
                let end = g.range(start + 1, a.c);
                (
                    format!("{n} -> slice(axis: 1, start: {start}, end: {end})"),
                    end - start,
                    a.h,
                    a.w,
                )
            }
            23 => {
                g.tag("concat of itself");
                if g.chance(1, 2) {
                    (format!("concat({n}, {n}, axis: 1)"), 2 * a.c, a.h, a.w)
                } else {
                    (
                        format!("concat({n}, concat({}, {n}, axis: 1), axis: 1)", c.name),
                        2 * a.c + c.c,
                        a.h,
                        a.w,
                    )
                }
            }
            24 => {
                // A fixed filter on every channel: an array, inline or a `const`.
                g.tag("constant kernel");
                let (kh, kw) = g.pick(&[(3, 3), (3, 3), (1, 3), (3, 1), (5, 5), (2, 2)]);
                let rows: Vec<String> = (0..kh)
                    .map(|_| {
                        let row: Vec<String> = (0..kw)
                            .map(|_| (g.range(0, 4) as i64 - 2).to_string())
                            .collect();
                        format!("[{}]", row.join(", "))
                    })
                    .collect();
                let array = format!("[{}]", rows.join(", "));
                let kernel = if g.chance(1, 2) {
                    let _ = writeln!(consts, "const k{k} = {array} / {}\n", g.range(1, 9));
                    format!("k{k}")
                } else {
                    array
                };
                (
                    format!("{n} -> conv(kernel: {kernel}, pad: same)"),
                    a.c,
                    a.h,
                    a.w,
                )
            }
            _ => {
                g.tag("dropout");
                (format!("{n} -> dropout(0.5) -> relu"), a.c, a.h, a.w)
            }
        };
        let name = format!("v{k}");
        let _ = writeln!(body, "    {name} = {expr}");
        g.count(ch);
        values.push(Map { name, c: ch, h, w });
    }
    // The last value, and up to two others, as outputs.
    let first = values.len() - 1;
    let mut outputs = vec![values[first].clone()];
    for _ in 0..g.below(3) {
        let v = values[1 + g.below(values.len() - 1)].clone();
        if outputs.iter().all(|o| o.name != v.name) {
            outputs.push(v);
        }
    }
    let mut lines = String::new();
    for (i, o) in outputs.iter().enumerate() {
        let u = g.channels();
        let head = match g.below(8) {
            0 | 1 if !sym => {
                let act = g.pick(&["", " -> softmax", " -> log_softmax", " -> relu -> dense(3)"]);
                format!(" -> flatten -> dense({u}){act}")
            }
            2 => {
                let pool = g.pick(&["global_avgpool", "global_maxpool"]);
                let act = g.pick(&["", " -> softmax", " -> log_softmax"]);
                format!(" -> {pool} -> flatten -> dense({u}){act}")
            }
            3 => format!(" -> {}(axis: {})", g.pick(&["sum", "mean"]), g.range(1, 3)),
            _ => String::new(),
        };
        if head.contains("flatten -> dense") {
            g.tag("flatten -> dense");
        }
        let _ = writeln!(lines, "    o{i} = {}{head}", o.name);
    }
    // Sometimes a loss too: a scalar output, well conditioned (logits through a tanh, not
    // a value minus a function of itself close to it).
    let mut n_out = outputs.len();
    if g.chance(1, 6) {
        let a = values[1 + g.below(values.len() - 1)].clone();
        let pool = if sym { " -> global_avgpool" } else { "" };
        if g.chance(1, 2) {
            let k = g.range(2, 17);
            inputs.push("labels: i64[N]".into());
            let _ = writeln!(
                lines,
                "    o{n_out} = softmax_cross_entropy({}{pool} -> flatten -> tanh -> dense({k}), labels)",
                a.name
            );
            g.tag("softmax_cross_entropy");
        } else {
            // Against half of itself: against another value, one close to `a` or to its
            // half (an LRN of `x` with a tiny alpha, and `k: 2`, `beta: 1`) would leave
            // only rounding.
            let _ = writeln!(lines, "    o{n_out} = mse({}, {} * 0.5)", a.name, a.name);
            g.tag("mse");
        }
        n_out += 1;
    }
    let names: Vec<String> = (0..n_out).map(|i| format!("o{i}")).collect();
    let mut src = format!(
        "{consts}net random({}) -> ({}) {{\n{body}{lines}",
        inputs.join(", "),
        names.join(", ")
    );
    src.push_str("}\n");
    // Three batch sizes (and image sizes for symbolic H, W).
    let mut runs = Vec::new();
    for _ in 0..3 {
        let mut s: Sizes = vec![("N", g.range(1, 5))];
        if sym {
            s.push(("H", g.range(1, 9)));
            s.push(("W", g.range(1, 9)));
        }
        runs.push(s);
    }
    Net {
        src,
        runs,
        tags: g.tags,
    }
}

// ---------------------------------------------------------------------------------------
// Sequence nets
// ---------------------------------------------------------------------------------------

/// The time axis of a sequence: a symbolic length or a fixed one (`steps:`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Time {
    Sym(&'static str),
    Fixed(u64),
}

/// What a value of a sequence net is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `[N, time, f]`.
    Seq(Time),
    /// `[N, f]`.
    Vec,
    /// The final states of a recurrence (`emit: state`; one for `rnn`, `gru` and
    /// one-state cells, two for `lstm` and two-state cells), `f` units each: only `init:`
    /// reads them.
    State(usize),
}

#[derive(Clone)]
struct Val {
    name: String,
    kind: Kind,
    f: u64,
}

/// A generated cell: its name, how many states it has, and the width it emits
/// (`None`: its `hidden`).
#[derive(Clone)]
struct Cell {
    name: String,
    states: usize,
    emit: Option<u64>,
}

/// A random recurrent cell: one or two states of `hidden` units, 2 to 9 equations mixing
/// gate layers, activations and arithmetic, then the new states and what it emits.
fn random_cell(g: &mut Gen, name: &str) -> (Cell, String) {
    let states = if g.chance(1, 2) { 2 } else { 1 };
    let mut values: Vec<String> = vec!["h".into()];
    if states == 2 {
        values.push("c".into());
    }
    let mut body = String::new();
    let equations = 2 + g.below(8);
    for k in 0..equations {
        let a = g.pick(&values);
        let b = g.pick(&values);
        // The first equation reads the step input.
        let expr = match if k == 0 { g.below(3) } else { g.below(14) } {
            0 => format!("sigmoid(dense(concat({a}, x), hidden))"),
            1 => format!("tanh(dense(concat(x, {a}), hidden))"),
            2 => "relu(dense(x, hidden))".to_string(),
            3 => format!("tanh({a})"),
            4 => format!("sigmoid({a})"),
            5 => format!("{a} * {b}"),
            6 => format!("{a} + {b}"),
            7 if a != b => format!("{a} - {b}"),
            8 => format!("(1 - {a}) * {b}"),
            9 => format!("dense({a}, hidden, bias: false)"),
            10 => format!("-{a} * 0.5 + {b}"),
            11 => format!("tanh(dense(concat({a}, {b}, x), hidden))"),
            12 => format!("relu({a})"),
            _ => format!("dense({a}, hidden)"),
        };
        let v = format!("v{k}");
        let _ = writeln!(body, "        {v} = {expr}");
        values.push(v);
    }
    let last = values[values.len() - 1].clone();
    // New states mostly through a tanh: products of unbounded states explode over a few
    // steps (to inf and NaN, which are not compared).
    let bound = |g: &mut Gen, v: &str| {
        if g.chance(3, 4) {
            format!("tanh({v})")
        } else {
            v.to_string()
        }
    };
    if states == 2 && g.chance(4, 5) {
        let other = g.pick(&values[2..]);
        let _ = writeln!(body, "        c = {}", bound(g, &other));
    }
    let _ = writeln!(body, "        h = {}", bound(g, &last));
    let (emit, width) = match g.below(4) {
        0 | 1 => ("h".to_string(), None),
        2 => (g.pick(&values[states..]), None),
        _ => {
            let e = g.channels().min(17);
            (format!("dense({}, {e})", g.pick(&values)), Some(e))
        }
    };
    let _ = writeln!(body, "        emit {emit}");
    let mut inits = Vec::new();
    for s in &["h", "c"][..states] {
        let fill = if g.chance(1, 4) { "ones" } else { "zeros" };
        inits.push(format!("{s} = {fill}[hidden]"));
    }
    let src = format!(
        "cell {name}(hidden) {{\n    state {}\n    step x {{\n{body}    }}\n}}\n\n",
        inits.join(", ")
    );
    (
        Cell {
            name: name.to_string(),
            states,
            emit: width,
        },
        src,
    )
}

/// A random recurrence on `a` (a sequence, or a vector fed for `steps:`): a built-in or
/// a cell, with `emit:`, sometimes `init:`. Returns the step's text and the result.
fn recurrence(
    g: &mut Gen,
    a: &Val,
    values: &[Val],
    cells: &mut Vec<Cell>,
    items: &mut String,
) -> (String, Kind, u64) {
    // The recurrence: (text before the hidden size, its states, its emitted width).
    let (head, states, emit_w) = if g.chance(3, 5) {
        let b = g.pick(&["rnn", "lstm", "gru"]);
        g.tag(b);
        (format!("{b}("), if b == "lstm" { 2 } else { 1 }, None)
    } else {
        g.tag("cell");
        let cell = if !cells.is_empty() && g.chance(1, 3) {
            g.tag("cell used twice");
            g.pick(cells)
        } else {
            let (c, src) = random_cell(g, &format!("rc{}", cells.len()));
            items.push_str(&src);
            cells.push(c.clone());
            c
        };
        if cell.states == 2 {
            g.tag("two-state cell");
        }
        (format!("unroll({}(", cell.name), cell.states, cell.emit)
    };
    let mut args = Vec::new();
    let mut hidden = g.channels().min(33);
    if g.chance(1, 3) {
        let fits: Vec<&Val> = values
            .iter()
            .filter(|v| v.kind == Kind::State(states) || (states == 1 && v.kind == Kind::Vec))
            .collect();
        if !fits.is_empty() {
            let s = fits[g.below(fits.len())];
            hidden = s.f;
            args.push(format!("init: {}", s.name));
            g.tag("init:");
        }
    }
    let time = match a.kind {
        Kind::Seq(t) => t,
        Kind::Vec | Kind::State(_) => {
            let k = g.range(1, 5);
            args.push(format!("steps: {k}"));
            g.tag("steps:");
            Time::Fixed(k)
        }
    };
    let width = emit_w.unwrap_or(hidden);
    let (kind, f) = match g.below(4) {
        0 => {
            args.push("emit: last".into());
            g.tag("emit: last");
            (Kind::Vec, width)
        }
        1 => {
            args.push("emit: state".into());
            g.tag("emit: state");
            (Kind::State(states), hidden)
        }
        _ => {
            if g.chance(1, 4) {
                args.push("emit: all".into());
            }
            (Kind::Seq(time), width)
        }
    };
    // Shuffle the keyword arguments a little.
    if args.len() > 1 && g.chance(1, 2) {
        args.reverse();
    }
    let close = if head.starts_with("unroll") { ")" } else { "" };
    let rest: String = args.iter().map(|s| format!(", {s}")).collect();
    (format!("{head}{hidden}{close}{rest})"), kind, f)
}

/// A random sequence net: inputs among `x: f32[N, T, F]`, token ids `[N, T]` through an
/// embedding, `y: f32[N, U, G]` and `v: f32[N, G]`; 2 to 10 statements; one to three
/// outputs.
fn sequence_net(seed: u64) -> Net {
    let mut g = Gen::new(seed ^ 0x5e9);
    let mut inputs = Vec::new();
    let mut values = Vec::new();
    let mut body = String::new();
    let mut symbols = BTreeSet::new();
    match g.below(6) {
        0 => {
            let vocab = g.range(2, 40);
            let dim = g.channels().min(17);
            inputs.push("tokens: i64[N, T]".to_string());
            let _ = writeln!(body, "    e = tokens -> embed({vocab}, {dim})");
            values.push(Val {
                name: "e".into(),
                kind: Kind::Seq(Time::Sym("T")),
                f: dim,
            });
            symbols.insert("T");
            g.tag("embed");
        }
        1 => {}
        _ => {
            let f = g.channels().min(17);
            inputs.push(format!("x: f32[N, T, {f}]"));
            values.push(Val {
                name: "x".into(),
                kind: Kind::Seq(Time::Sym("T")),
                f,
            });
            symbols.insert("T");
        }
    }
    if values.is_empty() || g.chance(1, 4) {
        let f = g.channels().min(17);
        inputs.push(format!("v: f32[N, {f}]"));
        values.push(Val {
            name: "v".into(),
            kind: Kind::Vec,
            f,
        });
    }
    if g.chance(1, 5) {
        let f = g.channels().min(17);
        inputs.push(format!("y: f32[N, U, {f}]"));
        values.push(Val {
            name: "y".into(),
            kind: Kind::Seq(Time::Sym("U")),
            f,
        });
        symbols.insert("U");
        g.tag("two sequence lengths");
    }
    let mut cells = Vec::new();
    let mut items = String::new();
    let statements = 2 + g.below(9);
    for k in 0..statements {
        let a = if g.chance(1, 2) {
            values[values.len() - 1].clone()
        } else {
            values[g.below(values.len())].clone()
        };
        let same: Vec<Val> = values
            .iter()
            .filter(|v| v.kind == a.kind && v.f == a.f)
            .cloned()
            .collect();
        let along: Vec<Val> = values
            .iter()
            .filter(|v| v.kind == a.kind)
            .cloned()
            .collect();
        let b = g.pick(&same);
        let c = g.pick(&along);
        let n = &a.name;
        let feature_axis = if matches!(a.kind, Kind::Seq(_)) { 2 } else { 1 };
        let (expr, kind, f) = if matches!(a.kind, Kind::State(_)) {
            // Only `init:` reads a state: start a recurrence from another value.
            let seqs: Vec<Val> = values
                .iter()
                .filter(|v| !matches!(v.kind, Kind::State(_)))
                .cloned()
                .collect();
            let s = g.pick(&seqs);
            let (t, kind, f) = recurrence(&mut g, &s, &values, &mut cells, &mut items);
            (format!("{} -> {t}", s.name), kind, f)
        } else {
            match g.below(16) {
                0..=4 => {
                    let (t, kind, f) = recurrence(&mut g, &a, &values, &mut cells, &mut items);
                    (format!("{n} -> {t}"), kind, f)
                }
                5 if matches!(a.kind, Kind::Seq(_)) => {
                    g.tag("stacked recurrences");
                    let h = g.channels().min(24);
                    let first = g.pick(&["rnn", "lstm", "gru"]);
                    let inner = Val {
                        name: String::new(),
                        kind: a.kind,
                        f: h,
                    };
                    let (t, kind, f) = recurrence(&mut g, &inner, &values, &mut cells, &mut items);
                    (format!("{n} -> {first}({h}) -> {t}"), kind, f)
                }
                5 | 6 => {
                    let u = g.channels();
                    let bias = if g.chance(1, 4) { ", bias: false" } else { "" };
                    let act = g.pick(&["", " -> relu", " -> tanh", " -> sigmoid"]);
                    g.tag("dense");
                    (format!("{n} -> dense({u}{bias}){act}"), a.kind, u)
                }
                7 => {
                    let act = g.pick(&["relu", "sigmoid", "tanh", "dropout(0.2)"]);
                    (format!("{n} -> {act}"), a.kind, a.f)
                }
                8 => {
                    let s = g.pick(&["softmax", "log_softmax"]);
                    g.tag(s);
                    // As in image nets: no log_softmax of a log_softmax.
                    let then = if s == "log_softmax" { " -> tanh" } else { "" };
                    (format!("{n} -> {s}{then}"), a.kind, a.f)
                }
                9 => {
                    let op = if b.name != a.name {
                        g.pick(&["add", "mul", "sub"])
                    } else {
                        g.pick(&["add", "mul"])
                    };
                    g.tag(format!("{op} on sequences"));
                    (format!("{op}({n}, {})", b.name), a.kind, a.f)
                }
                10 => {
                    g.tag("tensor arithmetic");
                    let e = match g.below(3) {
                        0 => format!("{n} * {} + 1", b.name),
                        1 => format!("(1 - {n}) * {}", b.name),
                        _ => format!("-{n} + {} * 2", b.name),
                    };
                    (e, a.kind, a.f)
                }
                11 | 12 => {
                    g.tag("concat on features");
                    let ax = if g.chance(1, 2) {
                        "-1".to_string()
                    } else {
                        feature_axis.to_string()
                    };
                    (
                        format!("concat({n}, {}, axis: {ax})", c.name),
                        a.kind,
                        a.f + c.f,
                    )
                }
                13 if matches!(a.kind, Kind::Seq(_)) => {
                    let r = g.pick(&["mean", "sum"]);
                    g.tag(format!("{r} over time"));
                    (format!("{n} -> {r}(axis: 1)"), Kind::Vec, a.f)
                }
                14 if a.f >= 2 => {
                    g.tag("slice of features");
                    let start = g.range(0, a.f - 1);
                    let end = g.range(start + 1, a.f);
                    (
                        format!("{n} -> slice(axis: {feature_axis}, start: {start}, end: {end})"),
                        a.kind,
                        end - start,
                    )
                }
                _ => {
                    let (t, kind, f) = recurrence(&mut g, &a, &values, &mut cells, &mut items);
                    (format!("{n} -> {t}"), kind, f)
                }
            }
        };
        let name = format!("s{k}");
        let _ = writeln!(body, "    {name} = {expr}");
        g.count(f);
        values.push(Val { name, kind, f });
    }
    // Outputs: the last value that is a tensor, and up to two others.
    let tensors: Vec<Val> = values
        .iter()
        .filter(|v| {
            !matches!(v.kind, Kind::State(_)) && !["x", "v", "y", "e"].contains(&v.name.as_str())
        })
        .cloned()
        .collect();
    let mut outputs: Vec<Val> = Vec::new();
    match tensors.last() {
        Some(last) => outputs.push(last.clone()),
        None => {
            // Only states were made: read the first input.
            let _ = writeln!(body, "    s = {} -> dense(2)", values[0].name);
            outputs.push(Val {
                name: "s".into(),
                kind: values[0].kind,
                f: 2,
            });
        }
    }
    for _ in 0..g.below(3) {
        if tensors.is_empty() {
            break;
        }
        let v = g.pick(&tensors);
        if outputs.iter().all(|o| o.name != v.name) {
            outputs.push(v);
        }
    }
    let mut outs = Vec::new();
    for (i, o) in outputs.iter().enumerate() {
        let head = match g.below(6) {
            0 => format!(" -> dense({})", g.channels().min(17)),
            1 => format!(" -> dense({}) -> log_softmax", g.range(2, 9)),
            _ => String::new(),
        };
        outs.push(format!("    o{i} = {}{head}\n", o.name));
    }
    // Every state that no `init:` reads starts one more recurrence (an output).
    let mut extra = String::new();
    let mut n_out = outs.len();
    for v in &values {
        let Kind::State(states) = v.kind else {
            continue;
        };
        if !body.contains(&format!("init: {},", v.name))
            && !body.contains(&format!("init: {})", v.name))
        {
            let reader = values
                .iter()
                .find(|s| matches!(s.kind, Kind::Seq(_)))
                .map(|s| s.name.clone());
            if let Some(s) = reader {
                let _ = writeln!(
                    extra,
                    "    o{n_out} = {s} -> {}({}, init: {}, emit: last)",
                    if states == 2 { "lstm" } else { "gru" },
                    v.f,
                    v.name
                );
                n_out += 1;
            }
        }
    }
    // Sometimes a loss too: a scalar output.
    if g.chance(1, 6) {
        if let Some(t) = outputs.first() {
            if g.chance(1, 2) {
                let labels = match t.kind {
                    Kind::Seq(Time::Sym(sym)) => format!("i64[N, {sym}]"),
                    Kind::Seq(Time::Fixed(k)) => format!("i64[N, {k}]"),
                    Kind::Vec | Kind::State(_) => "i64[N]".to_string(),
                };
                inputs.push(format!("labels: {labels}"));
                let k = g.range(2, 17);
                let _ = writeln!(
                    extra,
                    "    o{n_out} = softmax_cross_entropy({} -> tanh -> dense({k}), labels)",
                    t.name
                );
                g.tag("softmax_cross_entropy");
            } else {
                let _ = writeln!(
                    extra,
                    "    o{n_out} = mse({}, {} -> sigmoid)",
                    t.name, t.name
                );
                g.tag("mse");
            }
            n_out += 1;
        }
    }
    let names: Vec<String> = (0..n_out).map(|i| format!("o{i}")).collect();
    let src = format!(
        "{items}net random({}) -> ({}) {{\n{body}{}{extra}}}\n",
        inputs.join(", "),
        names.join(", "),
        outs.concat()
    );
    // Three runs at random batch sizes and sequence lengths.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let mut s: Sizes = vec![("N", g.range(1, 5))];
        for sym in &symbols {
            s.push((sym, g.range(1, 7)));
        }
        runs.push(s);
    }
    Net {
        src,
        runs,
        tags: g.tags,
    }
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

/// Random inputs for `graph` with the symbolic sizes of `sizes`: floats in [−1, 1), valid
/// integer ids.
fn inputs_at(graph: &Graph, sizes: &Sizes, seed: u64) -> BTreeMap<String, Tensor> {
    let size_of = |s: &str| {
        sizes
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no size for `{s}`"))
    };
    nets::random_inputs_with(graph, &size_of, seed)
}

/// Checks `src`; a net that does not check is a bug in the generator.
fn checked(src: &str) -> Result<Program, String> {
    let (program, diags) =
        netc::check_program(load_source_with("random.net", src.as_bytes(), &DiskReader));
    if diags.has_errors() {
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.severity == netc::diagnostics::Severity::Error)
            .map(|d| {
                format!(
                    "{:?} {} ({} at {:?}) {:?}",
                    d.code, d.message, d.primary.message, d.primary.span, d.notes
                )
            })
            .collect();
        return Err(format!(
            "the generator made an invalid net: {}",
            errors.join("; ")
        ));
    }
    Ok(program)
}

/// The smallest magnitude an output is measured against: an output whose values are all
/// smaller is the residue of cancelling sums of values near 1 (a ReLU of a batch norm of
/// a convolution leaving 3e-5), whose rounding alone (a folded batch norm) differs by
/// more than 1e-4 of it.
const SCALE_FLOOR: f64 = 1e-3;

/// The largest difference between `got` and `want` relative to the largest magnitude of
/// `want` (at least [`SCALE_FLOOR`]), per output (max |Δ| / max |ref|, the largest over
/// the outputs; NaN where an output of `got` is missing or has another shape). Only where
/// the reference is finite: products in random recurrences can overflow, to inf and NaN
/// in both.
fn rel_diff(want: &BTreeMap<String, Tensor>, got: &BTreeMap<String, Tensor>) -> f64 {
    let mut worst: f64 = 0.0;
    for (name, w) in want {
        let d = match (w, got.get(name)) {
            (Tensor::F32(a), Some(Tensor::F32(b))) if a.shape() == b.shape() => {
                let mut scale: f64 = SCALE_FLOOR;
                let mut diff: f64 = 0.0;
                for (x, y) in a.iter().zip(b.iter()) {
                    if x.is_finite() {
                        scale = scale.max(f64::from(x.abs()));
                        let d = f64::from((x - y).abs());
                        diff = diff.max(if d.is_nan() { f64::INFINITY } else { d });
                    }
                }
                diff / scale
            }
            (Tensor::I64(a), Some(Tensor::I64(b))) if a == b => 0.0,
            _ => f64::NAN,
        };
        if d.is_nan() {
            return d;
        }
        worst = worst.max(d);
    }
    if got.len() != want.len() {
        return f64::NAN;
    }
    worst
}

/// Each output's relative difference, and the first values of those that differ, for a
/// failure's report.
fn per_output(want: &BTreeMap<String, Tensor>, got: &BTreeMap<String, Tensor>) -> String {
    let first = |t: Option<&Tensor>| -> String {
        match t {
            Some(Tensor::F32(a)) => {
                format!("{:?} {:?}", a.shape(), a.iter().take(8).collect::<Vec<_>>())
            }
            Some(Tensor::I64(a)) => {
                format!("{:?} {:?}", a.shape(), a.iter().take(8).collect::<Vec<_>>())
            }
            None => "nothing".to_string(),
        }
    };
    want.keys()
        .map(|k| {
            let w: BTreeMap<_, _> = [(k.clone(), want[k].clone())].into();
            let g: BTreeMap<_, _> = got
                .get(k)
                .map(|t| (k.clone(), t.clone()))
                .into_iter()
                .collect();
            let d = rel_diff(&w, &g);
            if d.is_nan() || d > TOLERANCE {
                format!(
                    "{k}: {d:e}, want {} got {}",
                    first(want.get(k)),
                    first(got.get(k))
                )
            } else {
                format!("{k}: {d:e}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Compiles `net` with all passes to native code (bounds checks off and on), runs it at
/// every size of `net.runs` and compares with the interpreter on the lowered net.
fn agrees(net: &Net, seed: u64) -> Result<(), String> {
    let program = checked(&net.src)?;
    let opts = CompileOptions {
        net: Some("random".into()),
        batch: None,
    };
    let lowered = compile(&program, &opts)
        .map_err(|d| format!("the generator made a net that does not compile: {d:?}"))?
        .graph;
    // `NETC_PASSES` (as `netc run --passes`) selects the passes, for bisecting.
    let selection = std::env::var("NETC_PASSES")
        .ok()
        .map(|s| PassSelection::parse(&s).expect("NETC_PASSES: known passes"))
        .unwrap_or_default();
    let passes = PassOptions {
        selection,
        ..PassOptions::default()
    };
    let full = compile_with(&program, &opts, &passes).map_err(|d| format!("passes: {d:?}"))?;
    let rewrites = full.pipeline.log.entries.len();
    let label = std::env::var("NETC_PASSES").unwrap_or_else(|_| "all".into());
    let mut graphs = vec![(format!("passes {label}"), full.compiled.graph)];
    if seed.is_multiple_of(3) {
        let cut = (seed / 3) as usize % (rewrites + 1);
        let popts = PassOptions {
            max_rewrites: Some(cut),
            ..passes.clone()
        };
        let g = compile_with(&program, &opts, &popts)
            .map_err(|d| format!("passes (max rewrites {cut}): {d:?}"))?
            .compiled
            .graph;
        graphs.push((format!("{cut} of {rewrites} rewrites"), g));
    }
    let w = random_weights(&lowered, seed);
    let mut compiled = Vec::new();
    for (gi, (what, g)) in graphs.iter().enumerate() {
        for debug_bounds in [false, true] {
            let cg = CodegenOptions {
                debug_bounds,
                keep_clif: false,
                ..CodegenOptions::default()
            };
            let c = codegen::compile(g, &cg)
                .map_err(|e| format!("codegen ({what}, debug_bounds {debug_bounds}): {e}"))?;
            compiled.push((format!("{what}, debug_bounds {debug_bounds}"), gi, c));
        }
    }
    let mut exes = Vec::new();
    for (what, gi, c) in &compiled {
        let exe = c.bind(&w).map_err(|e| format!("bind ({what}): {e:?}"))?;
        exes.push((what, *gi, exe));
    }
    // Every size, then the first again (its tables come from the cache).
    let mut runs: Vec<&Sizes> = net.runs.iter().collect();
    runs.push(&net.runs[0]);
    for (i, sizes) in runs.into_iter().enumerate() {
        let inputs = inputs_at(&lowered, sizes, seed ^ (i as u64 + 1));
        let want = interp::run(&lowered, &w, &inputs)
            .map_err(|e| format!("interp at {sizes:?}: {e:?}"))?;
        // Every executable at this size, so that a failure says which ones differ.
        let mut bad = Vec::new();
        let mut arenas = BTreeSet::new();
        for (what, gi, exe) in &mut exes {
            let got = match exe.run(&inputs) {
                Ok(got) => got,
                Err(e) => {
                    bad.push(format!("JIT ({what}): {e:?}"));
                    continue;
                }
            };
            let d = rel_diff(&want, &got);
            if d.is_nan() || d > TOLERANCE {
                bad.push(format!(
                    "JIT ({what}): relative difference {d:e} ({})",
                    per_output(&want, &got)
                ));
                arenas.insert(*gi);
            }
        }
        if !bad.is_empty() {
            // Whether the arena executor, on the same graph and memory plan, agrees.
            for gi in arenas {
                let (what, g) = &graphs[gi];
                let a = match arena::run(g, &w, &inputs) {
                    Ok(a) => format!("relative difference {:e}", rel_diff(&want, &a)),
                    Err(e) => format!("{e:?}"),
                };
                bad.push(format!("arena executor ({what}): {a}"));
            }
            return Err(format!("at {sizes:?}:\n  {}", bad.join("\n  ")));
        }
    }
    Ok(())
}

/// Runs `agrees`, turning a panic into a failure that names the net.
fn check_net(net: &Net, seed: u64, kind: &str) -> Result<(), String> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| agrees(net, seed)));
    let why = match r {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(why)) => why,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("panicked: {msg}")
        }
    };
    Err(format!(
        "random {kind} net, seed {seed} (NETC_SEED for a replay): {why}\n--- source ---\n{}",
        net.src
    ))
}

fn config(default_cases: u32) -> ProptestConfig {
    let from_env = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            from_env.cases
        } else {
            default_cases
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            from_env.rng_seed
        } else {
            proptest::test_runner::RngSeed::Fixed(0x6a69_7421)
        },
        failure_persistence: None,
        // The seed is the whole input: a "smaller" seed is an unrelated net.
        max_shrink_iters: 0,
        ..from_env
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn jit_computes_what_the_interpreter_computes_on_random_image_nets(seed in any::<u64>()) {
        let net = image_net(seed);
        if let Err(why) = check_net(&net, seed, "image") {
            prop_assert!(false, "{}", why);
        }
    }
}

proptest! {
    #![proptest_config(config(240))]

    #[test]
    fn jit_computes_what_the_interpreter_computes_on_random_sequence_nets(seed in any::<u64>()) {
        let net = sequence_net(seed);
        if let Err(why) = check_net(&net, seed, "sequence") {
            prop_assert!(false, "{}", why);
        }
    }
}

/// The generators make valid nets with every construct asked of them, and the passes
/// fuse, fold and place concats in them.
#[test]
fn the_generators_cover_the_constructs() {
    let mut tags = BTreeSet::new();
    let mut rewrites = BTreeSet::new();
    for seed in 0..300u64 {
        for net in [image_net(seed), sequence_net(seed)] {
            let program =
                checked(&net.src).unwrap_or_else(|why| panic!("seed {seed}: {why}\n{}", net.src));
            let opts = CompileOptions {
                net: Some("random".into()),
                batch: None,
            };
            let full = compile_with(&program, &opts, &PassOptions::default())
                .unwrap_or_else(|d| panic!("seed {seed}: {d:?}\n{}", net.src));
            for e in full.pipeline.log.entries {
                rewrites.insert(e);
            }
            tags.extend(net.tags);
        }
    }
    let mut want: Vec<String> = (0..16).map(|r| format!("channels%16={r}")).collect();
    want.extend(
        [
            "channels>=16",
            "channels=16k",
            "depthwise conv",
            "grouped conv",
            "channels per group not a multiple of 4",
            "dilation",
            "strided conv",
            "padded conv",
            "rectangular kernel",
            "padded maxpool",
            "padded avgpool",
            "ceil maxpool",
            "ceil avgpool",
            "count_pad: false",
            "add",
            "sub",
            "mul",
            "tensor arithmetic",
            "concat",
            "concat branch",
            "residual",
            "concat of itself",
            "repeat",
            "batchnorm",
            "lrn",
            "global_avgpool",
            "global_maxpool",
            "broadcast",
            "softmax(axis: 1)",
            "log_softmax(axis: -1)",
            "slice",
            "flatten -> dense",
            "symbolic H, W",
            "constant kernel",
            "channel broadcast",
            "mse",
            "softmax_cross_entropy",
            "large map",
            "odd spatial size",
            "two inputs",
            "rnn",
            "lstm",
            "gru",
            "cell",
            "two-state cell",
            "cell used twice",
            "stacked recurrences",
            "emit: last",
            "emit: state",
            "init:",
            "steps:",
            "embed",
            "two sequence lengths",
            "mean over time",
            "sum over time",
            "concat on features",
            "slice of features",
            "softmax",
            "log_softmax",
        ]
        .map(String::from),
    );
    let missing: Vec<&String> = want.iter().filter(|t| !tags.contains(*t)).collect();
    assert!(missing.is_empty(), "not generated in 300 nets: {missing:?}");
    let rewrites: BTreeSet<String> = rewrites
        .iter()
        .map(|e| e.split('/').next().unwrap_or_default().to_string())
        .collect();
    for pass in [
        "fold_batchnorm",
        "fuse",
        "concat_in_place",
        "layout",
        "cse",
        "dce",
    ] {
        assert!(
            rewrites.contains(pass),
            "no `{pass}` rewrite in 600 nets: {rewrites:?}"
        );
    }
}

/// Runs `src` (a net called `random`) as the random tests do, at batch 1 to 3 and each
/// symbol at 1, 2, 5 and 7.
fn run_source(src: &str, seed: u64) -> Result<(), String> {
    let symbols: Vec<&'static str> = ["T", "U", "H", "W"]
        .into_iter()
        .filter(|s| src.contains(&format!("{s},")) || src.contains(&format!("{s}]")))
        .collect();
    let mut runs = Vec::new();
    for (i, n) in [1, 2, 3].into_iter().enumerate() {
        for t in [1, 2, 5, 7] {
            let mut s: Sizes = vec![("N", n)];
            s.extend(symbols.iter().map(|&y| (y, if i == 0 { t } else { 8 - t })));
            runs.push(s);
        }
    }
    let net = Net {
        src: src.to_string(),
        runs,
        tags: BTreeSet::new(),
    };
    check_net(&net, seed, "fixed")
}

/// Found by this test: a step whose emitted value (a dense layer with its ReLU) was
/// overwritten by the new value of the second state (a fused group computing both new
/// states): the JIT emitted `2 (c + 1)` where the interpreter emits `relu(W x + b)`, with
/// and without bounds checks, while the arena executor agreed.
#[test]
fn regression_emitted_value_and_two_new_states() {
    let src = "cell rc0(hidden) {
    state h = zeros[hidden], c = zeros[hidden]
    step x {
        v0 = relu(dense(x, hidden))
        h = c + 1
        c = h * 2
        emit v0
    }
}

net random(x: f32[N, T, 1]) -> o1 {
    o1 = x -> unroll(rc0(7))
}
";
    run_source(src, 1).unwrap_or_else(|why| panic!("{why}"));
}

/// Replays the net in the file `NETC_REPLAY` (a failure's source, saved; its net must be
/// called `random`) at batch 1 to 3 and every symbol at 1, 2, 5 and 7:
/// `NETC_REPLAY=bad.net cargo test --test random_jit replay -- --ignored --nocapture`.
#[test]
#[ignore = "reads the net named by NETC_REPLAY"]
fn replay() {
    let path = std::env::var("NETC_REPLAY").expect("NETC_REPLAY names a .net file");
    let src = std::fs::read_to_string(&path).expect("readable");
    let seed = std::env::var("NETC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    if let Err(why) = run_source(&src, seed) {
        panic!("{why}");
    }
}

/// A soak: `NETC_SOAK` nets of each kind (seeds from `NETC_SOAK_SEED`, default 1), on
/// every core, reporting every failure rather than the first:
/// `NETC_SOAK=10000 cargo test --release --test random_jit soak -- --ignored --nocapture`.
#[test]
#[ignore = "a long run: set NETC_SOAK"]
#[allow(
    clippy::print_stderr,
    reason = "a soak reports its progress and every failure"
)]
fn soak() {
    let n: u64 = std::env::var("NETC_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let base: u64 = std::env::var("NETC_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let threads = std::thread::available_parallelism().map_or(2, |t| t.get()) as u64;
    let next = std::sync::atomic::AtomicU64::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= 2 * n {
                    break;
                }
                let seed = Rng(base.wrapping_mul(0x1_0000_0001).wrapping_add(i / 2)).next();
                let (net, kind) = if i.is_multiple_of(2) {
                    (image_net(seed), "image")
                } else {
                    (sequence_net(seed), "sequence")
                };
                if let Err(why) = check_net(&net, seed, kind) {
                    eprintln!("{why}\n");
                    failures.lock().expect("not poisoned").push(why);
                }
                if (i + 1).is_multiple_of(500) {
                    eprintln!("{} nets, {:.0} s", i + 1, start.elapsed().as_secs_f64());
                }
            });
        }
    });
    let failures = failures.into_inner().expect("not poisoned");
    eprintln!(
        "soak: {} nets ({n} image, {n} sequence) in {:.0} s, {} failures",
        2 * n,
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} nets failed",
        failures.len(),
        2 * n
    );
}
