//! Focused tests of name resolution on small programs held in memory.

use crate::diagnostics::{Code, Diagnostic};
use crate::syntax::loader::{self, MemoryReader};
use std::path::PathBuf;

/// Checks `src` as the file `main.net`, with `files` importable next to it.
fn check_with(src: &str, files: &[(&str, &str)]) -> Vec<Diagnostic> {
    let mut reader = MemoryReader::default();
    for (name, text) in files {
        reader
            .files
            .insert(PathBuf::from(name), text.as_bytes().to_vec());
    }
    let (program, loaded) = loader::load_source_with("main.net", src.as_bytes(), &reader);
    assert!(loaded.is_empty(), "the program loads: {loaded:?}");
    super::check(&program).into_vec()
}

fn check(src: &str) -> Vec<Diagnostic> {
    check_with(src, &[])
}

fn codes(src: &str) -> Vec<&'static str> {
    check(src).iter().map(|d| d.code.as_str()).collect()
}

/// The one diagnostic of `src`, with the text its primary span covers.
fn single(src: &str) -> (Diagnostic, String) {
    let ds = check(src);
    assert_eq!(ds.len(), 1, "expected one diagnostic, got {ds:#?}");
    let d = ds.into_iter().next().expect("one diagnostic");
    let text = src[d.primary.span.range()].to_string();
    (d, text)
}

const SKETCH: &str = r#"
net lenet5(x: f32[N, 1, 32, 32]) -> logits {
    logits = x
        -> conv(6, kernel: 5) -> sigmoid -> avgpool(2, stride: 2)
        -> conv(16, kernel: 5) -> sigmoid -> avgpool(2, stride: 2)
        -> flatten -> dense(120) -> sigmoid -> dense(84) -> sigmoid -> dense(10)
}

block inception(c1, c3r, c3, c5r, c5, pool_proj) {
    concat {
        conv(c1, kernel: 1) -> relu
      | conv(c3r, kernel: 1) -> relu -> conv(c3, kernel: 3, pad: same) -> relu
      | conv(c5r, kernel: 1) -> relu -> conv(c5, kernel: 5, pad: same) -> relu
      | maxpool(3, stride: 1, pad: same) -> conv(pool_proj, kernel: 1) -> relu
    }
}

net googlenet_part(x: f32[N, 192, 28, 28]) -> y {
    y = x -> inception3a: inception(64, 96, 128, 16, 32, 32) -> maxpool(3, stride: 2)
}

block basic(c, stride = 1) {
    add {
        conv(c, kernel: 3, stride: stride, pad: 1, bias: false) -> batchnorm -> relu
          -> conv(c, kernel: 3, pad: 1, bias: false) -> batchnorm
      | if stride != 1 || in.channels != c {
            conv(c, kernel: 1, stride: stride, bias: false) -> batchnorm
        } else { identity }
    } -> relu
}

net resnet18(x: f32[N, 3, 224, 224]) -> logits {
    logits = x
        -> conv(64, kernel: 7, stride: 2, pad: 3, bias: false) -> batchnorm -> relu
        -> maxpool(3, stride: 2, pad: 1)
        -> repeat 4 as s { basic(64 * 2^s, stride: if s == 0 { 1 } else { 2 }) -> basic(64 * 2^s) }
        -> global_avgpool -> flatten -> dense(1000)
}

cell lstm_cell(hidden) {
    state h = zeros[hidden], c = zeros[hidden]
    step x {
        z = concat(h, x)
        f = sigmoid(dense(z, hidden))
        i = sigmoid(dense(z, hidden))
        o = sigmoid(dense(z, hidden))
        g = tanh(dense(z, hidden))
        c = f * c + i * g
        h = o * tanh(c)
        emit h
    }
}

net seq2seq(src: i64[N, T], tgt: i64[N, U], vocab = 8000) -> logits {
    enc = src -> embed(vocab, dim: 256) -> unroll(lstm_cell(512), emit: state)
    logits = tgt -> embed(vocab, dim: 256) -> unroll(lstm_cell(512), init: enc) -> dense(vocab)
}

const box3 = [[1, 1, 1], [1, 1, 1], [1, 1, 1]] / 9

net filters(img: f32[N, 1, H, W]) -> blurred {
    blurred = img -> conv(kernel: box3, pad: same)
}

net cbow(context: i64[N, 2 * window], vocab = 10000, dim = 100, window = 2) -> probs {
    probs = context -> embed(vocab, dim) -> mean(axis: 1) -> dense(vocab, bias: false) -> softmax
}
"#;

#[test]
fn the_sketch_checks_cleanly() {
    assert_eq!(check(SKETCH), Vec::new());
}

#[test]
fn misspelt_layer_suggests_conv() {
    let (d, text) = single("net n(x: f32[N, 1, 8, 8]) -> y { y = x -> convv(6, kernel: 5) }");
    assert_eq!(d.code, Code::UnknownLayer);
    assert_eq!(text, "convv");
    assert_eq!(d.help.as_deref(), Some("did you mean `conv`?"));
}

#[test]
fn argument_problems_point_at_the_argument() {
    let (d, text) = single("net n(x: f32[N, 1, 8, 8]) -> y { y = x -> conv(6, kernal: 5) }");
    assert_eq!((d.code, text.as_str()), (Code::UnknownArgument, "kernal"));
    assert_eq!(d.help.as_deref(), Some("did you mean `kernel`?"));

    let (d, text) = single("net n(x: f32[N, 1, 8, 8]) -> y { y = x -> conv(6) }");
    assert_eq!((d.code, text.as_str()), (Code::MissingArgument, "conv"));
    assert!(d.message.contains("`kernel`"), "{}", d.message);

    let (d, text) =
        single("net n(x: f32[N, 1, 8, 8]) -> y { y = x -> conv(6, kernel: 3, pad: sme) }");
    assert_eq!((d.code, text.as_str()), (Code::WrongArgumentType, "sme"));
    assert!(d.message.contains("`same` or `valid`"), "{}", d.message);
    assert_eq!(d.help.as_deref(), Some("did you mean `same`?"));

    let (d, text) = single("net n(x: f32[N, 1, 8, 8]) -> y { y = x -> conv(6.5, kernel: 3) }");
    assert_eq!((d.code, text.as_str()), (Code::WrongArgumentType, "6.5"));
}

#[test]
fn inputs_are_counted_with_the_flowing_value() {
    let net = |body: &str| format!("net n(x: f32[N, 8], y: f32[N, 8]) -> z {{ z = {body} }}");
    assert_eq!(codes(&net("x -> add(y)")), Vec::<&str>::new());
    assert_eq!(codes(&net("add(x, y) -> relu")), Vec::<&str>::new());
    assert_eq!(codes(&net("x -> add")), vec!["E0224"]);
    assert_eq!(codes(&net("x -> matmul(x, y)")), vec!["E0224"]);
    assert_eq!(codes(&net("dense(4)")), vec!["E0219"]);
    assert_eq!(codes(&net("x -> y")), vec!["E0218"]);
}

#[test]
fn one_mistake_gives_one_diagnostic() {
    // The unknown input makes `concat`'s input count unknowable: no E0224 or E0219 follows.
    let src = "net n(a: f32[N, 8], b: f32[N, 8]) -> y { y = concat(a, bb, axis: 1) -> dense(1) }";
    let (d, text) = single(src);
    assert_eq!((d.code, text.as_str()), (Code::UnknownName, "bb"));
    assert_eq!(d.help.as_deref(), Some("did you mean `b`?"));
}

#[test]
fn cells_are_unrolled_not_applied() {
    let cell =
        "cell c(h) { state s = zeros[h] step x { s = tanh(dense(concat(s, x), h)) emit s } }";
    let (d, _) = single(&format!(
        "{cell} net n(x: f32[N, T, 4]) -> y {{ y = x -> c(8) }}"
    ));
    assert_eq!(d.code, Code::NotALayer);
    assert_eq!(
        d.help.as_deref(),
        Some("run it over the sequence: `unroll(c(8))`")
    );
}

#[test]
fn recursion_is_reported_with_its_cycle() {
    let src = "block a(c) { conv(c, kernel: 1) -> b(c) }
               block b(c) { relu -> a(c) }
               net n(x: f32[N, 3, 8, 8]) -> y { y = x -> a(4) }";
    let (d, text) = single(src);
    assert_eq!(d.code, Code::RecursiveBlock);
    assert_eq!(text, "a");
    assert!(d.message.contains("a → b → a"), "{}", d.message);
}

#[test]
fn use_before_definition_is_not_an_unknown_name() {
    let src = "net n(x: f32[N, 8]) -> y { y = h -> dense(1) h = x -> relu }";
    let (d, text) = single(src);
    assert_eq!((d.code, text.as_str()), (Code::UseBeforeDefinition, "h"));
    assert_eq!(d.secondary.len(), 1);
}

#[test]
fn states_are_updated_once() {
    let src = "cell c(h) { state s = zeros[h] step x { s = dense(x, h) s = tanh(s) emit s } }";
    assert_eq!(codes(src), vec!["E0222"]);
    let src = "cell c(h) { state s = zeros[h] step x { s = dense(x, h) } }";
    assert_eq!(codes(src), vec!["E0217"]);
}

#[test]
fn compile_time_arithmetic_is_checked() {
    let src = "net n(x: f32[N, 8], g = 0) -> y { y = x -> dense(64 / g) }";
    let (d, text) = single(src);
    assert_eq!((d.code, text.as_str()), (Code::StaticArithmetic, "/"));
}

#[test]
fn names_imported_from_two_files_conflict() {
    let block = "block unit(c) { conv(c, kernel: 1) }";
    let src = "use \"a.net\"\nuse \"b.net\"\nnet n(x: f32[N, 3, 8, 8]) -> y { y = x -> unit(4) }";
    let ds = check_with(src, &[("a.net", block), ("b.net", block)]);
    assert_eq!(ds.len(), 1, "{ds:#?}");
    assert_eq!(ds[0].code, Code::DuplicateItem);
    assert_eq!(&src[ds[0].primary.span.range()], "\"b.net\"");
    assert_eq!(ds[0].secondary.len(), 2);
}

#[test]
fn warnings_for_unused_values_parameters_and_empty_files() {
    assert_eq!(
        codes("net n(x: f32[N, 8]) -> y { h = x -> relu  y = x -> dense(1) }"),
        vec!["W0001"]
    );
    assert_eq!(
        codes("net n(x: f32[N, 8]) -> y { _h = x -> relu  y = x -> dense(1) }"),
        Vec::<&str>::new()
    );
    assert_eq!(
        codes("block b(c, unused) { conv(c, kernel: 1) }"),
        vec!["W0002"]
    );
    assert_eq!(codes("// nothing here\n"), vec!["W0003"]);
}
