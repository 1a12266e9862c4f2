//! How long the language server takes to re-check a 5,000-line file after an edit (target:
//! under 100 ms). Run with `cargo bench --bench lsp_recheck`.
//!
//! The file is generated: 60 blocks of about 50 lines and 20 nets of about 100 lines (layers
//! written out, and two block calls each), a model zoo in one file. Each figure is the median
//! (and worst) of 20 runs:
//! - `cold`: the whole check with nothing remembered (opening the file; no target);
//! - `edit in a block` / `edit in a net`: the check (parse, imports, names, arguments) after a
//!   one-character edit, as the server runs it (the document is parsed incrementally, so only
//!   the edited item is re-parsed);
//! - `edit leaving a syntax error`: the same with a half-typed argument;
//! - `shapes`: shape inference of all 20 nets, which the server runs after a clean check;
//! - `server`: a `didChange` + `didSave` sent to an in-process server until its
//!   `publishDiagnostics` arrives (check, then shapes) — everything the editor waits for
//!   except the pipe.
#![cfg_attr(
    test,
    allow(
        dead_code,
        reason = "built as a test harness until Cargo.toml says harness = false"
    )
)]
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its figures and may stop on a broken set-up"
)]

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use netc::lsp::incremental::ParseCache;
use netc::lsp::{analysis, publish, serve, ServerOptions};
use serde_json::json;
use std::time::{Duration, Instant};

const TARGET: Duration = Duration::from_millis(100);
const RUNS: usize = 20;

/// A file of about `lines` lines: 60 blocks, then nets calling them.
fn generate(lines: usize) -> String {
    let mut s = String::from("/// A generated model zoo for the re-check benchmark.\n\n");
    for b in 0..60 {
        s.push_str(&format!(
            "/// Block {b}: a stack of convolutions.\nblock unit{b}(c, stride = 1) {{\n    in\n"
        ));
        for _ in 0..23 {
            s.push_str("        -> conv(c, kernel: 3, stride: stride, pad: 1) -> batchnorm\n");
            s.push_str("        -> relu\n");
        }
        s.push_str("}\n\n");
    }
    let mut n = 0;
    while s.lines().count() + 105 < lines {
        s.push_str(&format!(
            "/// Net {n}.\nnet zoo{n}(x: f32[N, 16, 64, 64]) -> y {{\n    h0 = x\n"
        ));
        for i in 1..=97 {
            // Mostly layers written out, and two block calls per net.
            let step = if i % 48 == 0 {
                format!("unit{}(16)", (i + n) % 60)
            } else {
                "conv(16, kernel: 3, pad: 1) -> relu".to_string()
            };
            s.push_str(&format!("    h{i} = h{} -> {step}\n", i - 1));
        }
        s.push_str("    y = h97\n}\n\n");
        n += 1;
    }
    while s.lines().count() < lines {
        s.push_str("// padding\n");
    }
    s
}

fn time<F: FnMut()>(mut f: F) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[RUNS / 2], times[RUNS - 1])
}

/// Prints a figure; with a target, says whether the median meets it.
fn report(what: &str, (median, worst): (Duration, Duration), target: Option<Duration>) -> bool {
    let ok = target.is_none_or(|t| median < t);
    let verdict = match target {
        None => "(once, on opening)",
        Some(_) if ok => "ok (< 100 ms)",
        Some(_) => "OVER TARGET",
    };
    println!(
        "{what:<28} median {:>7.2} ms   worst {:>7.2} ms   {verdict}",
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
    );
    ok
}

fn main() {
    let text = generate(5_000);
    let lines = text.lines().count();
    println!(
        "re-checking a generated file of {lines} lines, {} bytes",
        text.len()
    );
    let open = analysis::OpenFiles::new();
    let name = "/bench/zoo.net";
    let uri: lsp_types::Uri = "file:///bench/zoo.net".parse().unwrap();
    let mut cache = ParseCache::new();
    let a = analysis::analyse(name, 1, &text, &open, &mut cache);
    assert!(a.module().is_some(), "{:?}", a.diagnostics);
    let mut ok = true;

    report(
        "cold (nothing cached)",
        time(|| {
            analysis::analyse(name, 1, &text, &open, &mut ParseCache::new());
        }),
        None,
    );
    // One-character edits, alternating so that every run re-parses the edited item.
    let edits = |needle: &str, a: &str, b: &str| {
        let at = text.find(needle).unwrap() + text[text.find(needle).unwrap()..].find(a).unwrap();
        let mut other = text.clone();
        other.replace_range(at..at + a.len(), b);
        [text.clone(), other]
    };
    let mut run = |what: &str, texts: [String; 2]| {
        let mut i = 0;
        let t = time(|| {
            i += 1;
            let a = analysis::analyse(name, i, &texts[i as usize % 2], &open, &mut cache);
            publish::diagnostics(&a, &uri);
        });
        report(what, t, Some(TARGET))
    };
    ok &= run("edit in a block", edits("block unit30", "pad: 1", "pad: 2"));
    ok &= run("edit in a net", edits("net zoo10", "(16)", "(32)"));
    ok &= run(
        "edit leaving a syntax error",
        edits("block unit30", "pad: 1", "pad: "),
    );
    let checked = analysis::analyse(name, 1, &text, &open, &mut ParseCache::new());
    assert!(checked.wants_shapes(), "{:?}", checked.diagnostics);
    let shaped = checked.with_shapes();
    assert!(!shaped.facts.is_empty(), "{:?}", shaped.diagnostics);
    assert!(!shaped.diagnostics.has_errors(), "{:?}", shaped.diagnostics);
    let t = time(|| drop(checked.with_shapes()));
    ok &= report("shapes (20 nets)", t, Some(TARGET));

    // The whole server, in process: didChange + didSave → publishDiagnostics.
    let (server, client) = Connection::memory();
    let handle = std::thread::spawn(move || serve(&server, ServerOptions::default()));
    let init = Request::new(
        RequestId::from(1),
        "initialize".into(),
        json!({"capabilities": {}}),
    );
    client.sender.send(init.into()).unwrap();
    let _ = client.receiver.recv().unwrap();
    let note = |method: &str, params| Message::from(Notification::new(method.into(), params));
    client.sender.send(note("initialized", json!({}))).unwrap();
    let item = json!({"uri": uri, "languageId": "net", "version": 1, "text": text});
    client
        .sender
        .send(note("textDocument/didOpen", json!({"textDocument": item})))
        .unwrap();
    let wait_publish = || loop {
        match client
            .receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap()
        {
            Message::Notification(n) if n.method == "textDocument/publishDiagnostics" => break n,
            _ => {}
        }
    };
    wait_publish();
    // Type and delete a space inside block 30.
    let line = text[..text.find("block unit30").unwrap()].lines().count() as u32 + 2;
    let mut version = 1;
    let t = time(|| {
        version += 1;
        let (end, insert) = if version % 2 == 0 { (8, " ") } else { (9, "") };
        let change = json!({
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{
                "range": {"start": {"line": line, "character": 8}, "end": {"line": line, "character": end}},
                "text": insert,
            }],
        });
        client
            .sender
            .send(note("textDocument/didChange", change))
            .unwrap();
        let save = json!({"textDocument": {"uri": uri}});
        client
            .sender
            .send(note("textDocument/didSave", save))
            .unwrap();
        wait_publish();
    });
    ok &= report("server (didChange+didSave)", t, Some(TARGET));
    let shutdown = Request::new(RequestId::from(2), "shutdown".into(), json!(null));
    client.sender.send(shutdown.into()).unwrap();
    client.sender.send(note("exit", json!(null))).unwrap();
    let _ = handle.join();

    if !ok && !cfg!(debug_assertions) {
        std::process::exit(1);
    }
}
