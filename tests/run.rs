//! `netc init`, `netc weights` and `netc run` as a user runs them: weights files, runs on
//! `.npy` batches, images and text, the errors for bad input, and every net of `nets/`
//! run on small inputs.
#![allow(
    clippy::print_stderr,
    reason = "the every-net test reports its timings and what it skipped"
)]

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn netc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netc"))
        .args(args)
        .arg("--color")
        .arg("never")
        .current_dir(ROOT)
        .output()
        .expect("netc runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netc-run-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn save_f32(path: &Path, shape: &[usize], f: impl Fn(usize) -> f32) {
    let n: usize = shape.iter().product();
    let a = ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).expect("fits");
    a.write_npy(std::fs::File::create(path).expect("create"))
        .expect("write npy");
}

fn save_i64(path: &Path, shape: &[usize], f: impl Fn(usize) -> i64) {
    let n: usize = shape.iter().product();
    let a = ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).expect("fits");
    a.write_npy(std::fs::File::create(path).expect("create"))
        .expect("write npy");
}

fn read_f32(path: &Path) -> ArrayD<f32> {
    ArrayD::<f32>::read_npy(std::fs::File::open(path).expect("output exists")).expect("valid npy")
}

/// `netc init` for `net` into `dir/name.safetensors`.
fn init(net: &str, dir: &Path, name: &str, seed: &str) -> PathBuf {
    let w = dir.join(format!("{name}.safetensors"));
    let o = netc(&["init", net, "-o", s(&w), "--seed", seed]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    w
}

#[test]
fn init_is_deterministic() {
    let dir = scratch("init");
    let a = std::fs::read(init("nets/lenet5.net", &dir, "a", "7")).expect("a");
    let b = std::fs::read(init("nets/lenet5.net", &dir, "b", "7")).expect("b");
    let c = std::fs::read(init("nets/lenet5.net", &dir, "c", "8")).expect("c");
    let d = std::fs::read(init("nets/lenet5.net", &dir, "d", "0")).expect("d");
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, other values");
    assert_eq!(a.len(), c.len());
    // 61,706 f32 values plus the header.
    assert!(
        a.len() > 4 * 61_706 && a.len() < 4 * 61_706 + 4096,
        "{}",
        a.len()
    );
    let header = String::from_utf8_lossy(&a[8..512]).into_owned();
    assert!(
        header.contains(r#""net":"lenet5""#) && header.contains(r#""seed":"7""#),
        "{header}"
    );
    // The default seed is 0.
    let e = dir.join("e.safetensors");
    let o = netc(&["init", "nets/lenet5.net", "-o", s(&e)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(&e).expect("e"), d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn weights_lists_lenet5s_tensors() {
    let o = netc(&["weights", "nets/lenet5.net", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let tensors = v["tensors"].as_array().expect("tensors");
    let got: Vec<(String, Vec<u64>, u64)> = tensors
        .iter()
        .map(|t| {
            let shape = t["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .filter_map(|d| d.as_u64())
                .collect();
            (
                t["name"].as_str().unwrap_or("").to_string(),
                shape,
                t["elements"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let want: Vec<(String, Vec<u64>, u64)> = [
        ("c1/weight", vec![6, 1, 5, 5], 150),
        ("c1/bias", vec![6], 6),
        ("c3/weight", vec![16, 6, 5, 5], 2400),
        ("c3/bias", vec![16], 16),
        ("c5/weight", vec![120, 400], 48_000),
        ("c5/bias", vec![120], 120),
        ("f6/weight", vec![84, 120], 10_080),
        ("f6/bias", vec![84], 84),
        ("output/weight", vec![10, 84], 840),
        ("output/bias", vec![10], 10),
    ]
    .into_iter()
    .map(|(n, s, e)| (n.to_string(), s, e))
    .collect();
    assert_eq!(got, want);
    assert_eq!(v["totals"]["trainable"], 61_706);
    assert_eq!(v["totals"]["tensors"], 10);
    assert!(tensors.iter().all(|t| t["kind"] == "trainable"));
    // Text: the same rows, and the fixed kernels of the filters listed as not stored.
    let o = netc(&["weights", "nets/lenet5.net"]);
    assert!(
        stdout(&o).contains("c5/weight") && stdout(&o).contains("61,706"),
        "{}",
        stdout(&o)
    );
    let o = netc(&["weights", "nets/filters.net"]);
    assert!(
        stdout(&o).contains("0 tensors") && stdout(&o).contains("not stored"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn lenet5_on_a_npy_batch_and_on_images() {
    let dir = scratch("lenet");
    let w = init("nets/lenet5.net", &dir, "w", "0");
    let x = dir.join("x.npy");
    // Three different images.
    save_f32(&x, &[3, 1, 32, 32], |i| {
        ((i * 37 % 101) as f32 / 101.0) * (1.0 + (i / 1024) as f32)
    });
    let y = dir.join("logits.npy");
    let o = netc(&[
        "run",
        "nets/lenet5.net",
        "--weights",
        s(&w),
        "--input",
        s(&x),
        "--output",
        s(&y),
        "--top",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let logits = read_f32(&y);
    assert_eq!(logits.shape(), &[3, 10]);
    assert!(logits.iter().all(|v| v.is_finite()));
    let out = stdout(&o);
    assert!(
        out.contains("top 3 of 10 classes") && out.contains("softmax probabilities of the logits"),
        "{out}"
    );
    for i in 0..3 {
        assert!(out.contains(&format!("[{i}]")), "{out}");
    }
    // The printed top class of example 0 is the argmax of its logits.
    let row: Vec<f32> = logits
        .index_axis(ndarray::Axis(0), 0)
        .iter()
        .copied()
        .collect();
    let best = (0..10)
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .expect("ten");
    let line0 = out
        .lines()
        .find(|l| l.trim_start().starts_with("[0]"))
        .expect("a line for example 0");
    assert!(
        line0.trim_start().starts_with(&format!("[0] {best} ")),
        "{line0} vs {best}"
    );
    // Running twice gives the same numbers; a batch of one gives the same row.
    let x1 = dir.join("x1.npy");
    let all = {
        let a = ArrayD::<f32>::read_npy(std::fs::File::open(&x).expect("x")).expect("npy");
        a.slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..1))
            .to_owned()
    };
    all.write_npy(std::fs::File::create(&x1).expect("x1"))
        .expect("write");
    let y1 = dir.join("y1.npy");
    let o = netc(&[
        "run",
        "nets/lenet5.net",
        "--weights",
        s(&w),
        "--input",
        s(&x1),
        "--output",
        s(&y1),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let one = read_f32(&y1);
    for (a, b) in one.iter().zip(logits.iter()) {
        assert!((a - b).abs() < 1e-6);
    }
    // A photograph (256x256, resized to 32x32), twice: one batch of two identical rows.
    let labels = dir.join("labels.txt");
    std::fs::write(
        &labels,
        "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n",
    )
    .expect("labels");
    let yp = dir.join("photo.npy");
    let o = netc(&[
        "run",
        "nets/lenet5.net",
        "--weights",
        s(&w),
        "--input",
        "tests/data/camera.png",
        "--input",
        "tests/data/camera.png",
        "--output",
        s(&yp),
        "--labels",
        s(&labels),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p = read_f32(&yp);
    assert_eq!(p.shape(), &[2, 10]);
    assert_eq!(
        p.index_axis(ndarray::Axis(0), 0),
        p.index_axis(ndarray::Axis(0), 1)
    );
    let out = stdout(&o);
    let names = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    assert!(
        names.iter().any(|n| out.contains(&format!(" {n} "))),
        "labels are shown: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn text_drives_a_language_model() {
    let dir = scratch("text");
    let w = init("nets/lstm.net", &dir, "w", "1");
    let prompt = dir.join("prompt.txt");
    std::fs::write(&prompt, "To be, or not\n").expect("prompt");
    let y = dir.join("logits.npy");
    let o = netc(&[
        "run",
        "nets/lstm.net",
        "--weights",
        s(&w),
        "--input",
        s(&prompt),
        "--output",
        s(&y),
        "--top",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // 13 characters (the final newline dropped), 65 classes.
    assert_eq!(read_f32(&y).shape(), &[1, 13, 65]);
    assert!(stdout(&o).contains("at the last step"), "{}", stdout(&o));
    // A character outside the vocabulary.
    std::fs::write(&prompt, "naïve").expect("prompt");
    let o = netc(&[
        "run",
        "nets/lstm.net",
        "--weights",
        s(&w),
        "--input",
        s(&prompt),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("E0403") && stderr(&o).contains("'ï'"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs lenet5 with `input` and an output path in `dir`; returns the output and checks
/// that no file was written.
fn lenet_fails(dir: &Path, w: &Path, input: &Path, code: i32) -> String {
    let y = dir.join("should-not-exist.npy");
    let before = files_in(dir);
    let o = netc(&[
        "run",
        "nets/lenet5.net",
        "--weights",
        s(w),
        "--input",
        s(input),
        "--output",
        s(&y),
    ]);
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    assert_eq!(files_in(dir), before, "nothing written");
    stderr(&o)
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = scratch("bad");
    let w = init("nets/lenet5.net", &dir, "w", "0");
    // Wrong shape: names the input, both shapes, and points at the declaration.
    let x = dir.join("small.npy");
    save_f32(&x, &[3, 1, 28, 28], |_| 0.5);
    let err = lenet_fails(&dir, &w, &x, 1);
    for want in [
        "E0401",
        "input `x`",
        "[3,1,28,28]",
        "[N,1,32,32]",
        "lenet5.net:7:12",
        "axis 2 must be 32",
        "small.npy",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
    // Wrong dtype.
    let xi = dir.join("ints.npy");
    save_i64(&xi, &[1, 1, 32, 32], |_| 1);
    let err = lenet_fails(&dir, &w, &xi, 1);
    assert!(
        err.contains("E0402") && err.contains("declared f32") && err.contains("i64"),
        "{err}"
    );
    // Not an image, and not a file at all.
    let fake = dir.join("fake.png");
    std::fs::write(&fake, "this is text, not a picture").expect("fake");
    let err = lenet_fails(&dir, &w, &fake, 1);
    assert!(
        err.contains("E0403") && err.contains("fake.png") && err.contains("not a PNG or JPEG"),
        "{err}"
    );
    let err = lenet_fails(&dir, &w, &dir.join("missing.npy"), 2);
    assert!(
        err.contains("E0001") && err.contains("missing.npy"),
        "{err}"
    );
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, [1u8, 2, 3]).expect("junk");
    let err = lenet_fails(&dir, &w, &junk, 1);
    assert!(
        err.contains("E0403") && err.contains("not a .npy array"),
        "{err}"
    );
    // An image for a token input.
    let tw = init("nets/rnn.net", &dir, "rnn", "0");
    let o = netc(&[
        "run",
        "nets/rnn.net",
        "--weights",
        s(&tw),
        "--input",
        "tests/data/camera.png",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot feed input `tokens`"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn non_finite_inputs_warn_and_run() {
    let dir = scratch("nan");
    let w = init("nets/lenet5.net", &dir, "w", "0");
    let x = dir.join("nan.npy");
    save_f32(&x, &[1, 1, 32, 32], |i| {
        if i == 5 {
            f32::NAN
        } else if i == 9 {
            f32::INFINITY
        } else {
            0.0
        }
    });
    let y = dir.join("y.npy");
    let o = netc(&[
        "run",
        "nets/lenet5.net",
        "--weights",
        s(&w),
        "--input",
        s(&x),
        "--output",
        s(&y),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("W0400") && stderr(&o).contains("2 NaN or infinite values"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read_f32(&y).shape(), &[1, 10]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_weights_are_clear_errors() {
    let dir = scratch("weights");
    let x = dir.join("x.npy");
    save_f32(&x, &[1, 1, 32, 32], |_| 0.5);
    // Weights of another net: the rnn language model's for lenet5.
    let other = init("nets/rnn.net", &dir, "rnn", "0");
    let err = lenet_fails(&dir, &other, &x, 1);
    for want in [
        "E0404",
        "made for another net? 10 of 10 names differ",
        "made for net `rnn`",
        "missing `c1/weight`",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
    // Truncated and garbage files.
    let good = std::fs::read(init("nets/lenet5.net", &dir, "good", "0")).expect("good");
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &good[..good.len() / 2]).expect("cut");
    let err = lenet_fails(&dir, &cut, &x, 1);
    assert!(
        err.contains("E0405")
            && err.contains("cut.safetensors")
            && err.contains("truncated or corrupt"),
        "{err}"
    );
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, "not weights").expect("garbage");
    assert!(lenet_fails(&dir, &garbage, &x, 1).contains("E0405"));
    let err = lenet_fails(&dir, &dir.join("absent.safetensors"), &x, 2);
    assert!(
        err.contains("E0001") && err.contains("absent.safetensors"),
        "{err}"
    );
    // No weights at all.
    let o = netc(&["run", "nets/lenet5.net", "--input", s(&x)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("E0406") && stderr(&o).contains("netc init"),
        "{}",
        stderr(&o)
    );
    // The filters need none.
    let o = netc(&[
        "run",
        "nets/filters.net",
        "--input",
        "tests/data/camera.png",
        "--top",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_outputs_are_refused_before_running() {
    let dir = scratch("outputs");
    let w = init("nets/lenet5.net", &dir, "w", "0");
    let x = dir.join("x.npy");
    save_f32(&x, &[1, 1, 32, 32], |_| 0.5);
    let before = files_in(&dir);
    for (out, want) in [
        ("logits.png", "a PNG needs a float [N, 1 or 3, H, W] image"),
        ("logits.csv", "outputs are written as .npy or .png"),
    ] {
        let p = dir.join(out);
        let o = netc(&[
            "run",
            "nets/lenet5.net",
            "--weights",
            s(&w),
            "--input",
            s(&x),
            "--output",
            s(&p),
        ]);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(
            stderr(&o).contains("E0408") && stderr(&o).contains(want),
            "{}",
            stderr(&o)
        );
    }
    // A folder that does not exist: exit 2, and no half-written or temporary file.
    let p = dir.join("no-such-folder").join("y.npy");
    let o = netc(&[
        "run",
        "nets/lenet5.net",
        "--weights",
        s(&w),
        "--input",
        s(&x),
        "--output",
        s(&p),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
    assert_eq!(files_in(&dir), before);
    // Several filter outputs where one cannot be written: none is.
    let ok = dir.join("box.npy");
    let bad = dir.join("no-such-folder").join("v.npy");
    let o = netc(&[
        "run",
        "nets/filters.net",
        "--input",
        "tests/data/camera.png",
        "--output",
        &format!("box={}", s(&ok)),
        "--output",
        &format!("v_edge={}", s(&bad)),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        files_in(&dir),
        before,
        "the writable output is not written either"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sizes for the symbolic dimensions of the nets' inputs.
fn symbol_value(name: &str) -> u64 {
    match name {
        "N" => 2,
        "T" => 5,
        "U" => 4,
        _ => 16,
    }
}

/// Whether a net is too slow for the interpreter in a debug build (netc itself is not
/// optimised there); `cargo test --release --test run` runs them all.
fn too_slow_for_debug(params: u64, macs: u64) -> bool {
    cfg!(debug_assertions) && (params > 12_000_000 || macs > 2_000_000_000)
}

/// Every net of `nets/` runs on small inputs (random weights from `init`, ids within the
/// vocabulary) and gives finite outputs of the shapes shape inference gave.
#[test]
fn every_net_runs_and_gives_finite_outputs_of_the_inferred_shapes() {
    use netc::runtime::{bind, interp, tensor::Tensor, weights};
    let mut nets: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("nets"))
        .expect("nets/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "net"))
        .collect();
    nets.sort();
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    for path in &nets {
        let (program, diags) = netc::check_program(netc::syntax::loader::load(path));
        assert!(!diags.has_errors(), "{}", path.display());
        for name in netc::passes::lower::net_names(&program) {
            let opts = netc::passes::CompileOptions {
                net: Some(name.clone()),
                batch: None,
            };
            let compiled = netc::passes::compile(&program, &opts).expect("compiles");
            let g = &compiled.graph;
            let mut b = bind::Bindings::default();
            for spec in bind::inputs(g) {
                for d in spec.ty.shape.dims() {
                    if let netc::ir::shape::Dim::Sym(p) = d {
                        for sym in p.symbols() {
                            b.bind(&sym, symbol_value(&sym), "test");
                        }
                    }
                }
            }
            let macs = b
                .eval_poly(&compiled.report.totals.macs)
                .unwrap_or(u64::MAX);
            if too_slow_for_debug(compiled.report.totals.params, macs) {
                skipped.push(name);
                continue;
            }
            // Big convolutional nets run one example; the others a batch of two.
            if macs > 200_000_000 {
                b.bind("N", 1, "test");
            }
            // The smallest embedding vocabulary bounds the token ids.
            let vocab = weights::expected(g)
                .iter()
                .filter(|e| e.name.ends_with("/table") || e.name.ends_with("embed/weight"))
                .map(|e| e.shape[0])
                .min()
                .unwrap_or(2);
            let mut inputs = BTreeMap::new();
            for spec in bind::inputs(g) {
                let shape = b.eval_shape(&spec.ty.shape).expect("bound");
                let n: usize = shape.iter().product();
                let t = if spec.ty.dtype.is_int() {
                    Tensor::I64(
                        ArrayD::from_shape_vec(
                            IxDyn(&shape),
                            (0..n).map(|i| ((i * 7 + 3) % vocab) as i64).collect(),
                        )
                        .expect("fits"),
                    )
                } else {
                    Tensor::F32(
                        ArrayD::from_shape_vec(
                            IxDyn(&shape),
                            (0..n).map(|i| ((i % 13) as f32 / 13.0) - 0.3).collect(),
                        )
                        .expect("fits"),
                    )
                };
                inputs.insert(spec.name.clone(), t);
            }
            let started = std::time::Instant::now();
            let w = weights::init(&weights::expected(g), 0);
            let out = interp::run(g, &w, &inputs).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            eprintln!("{name}: {:.2} s", started.elapsed().as_secs_f64());
            for o in &g.body.outputs {
                let want = b.eval_shape(&g.body.ty(o.value).shape).expect("bound");
                let t = &out[&o.name];
                assert_eq!(t.shape(), want.as_slice(), "{name}/{}", o.name);
                assert_eq!(t.non_finite(), 0, "{name}/{}: non-finite values", o.name);
            }
            ran.push(name);
        }
    }
    assert!(ran.len() >= 10, "ran {ran:?}, skipped {skipped:?}");
    if cfg!(debug_assertions) {
        eprintln!("ran {ran:?}; skipped in this debug build (run with --release): {skipped:?}");
    } else {
        assert!(skipped.is_empty());
    }
    for must in [
        "lenet5",
        "filters",
        "rnn",
        "lstm",
        "lstm_cell",
        "gru",
        "gru_cell_lm",
        "word2vec_cbow",
        "seq2seq",
        "resnet18",
    ] {
        assert!(
            ran.iter().any(|n| n == must),
            "{must} must run: ran {ran:?}"
        );
    }
}
