//! The `netc` binary as a user runs it: exit codes, output streams, JSON lines, help.

use std::process::{Command, Output};

fn netc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("netc runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_showcase_net_checks_cleanly() {
    let mut nets: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/nets"))
        .expect("nets/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "net"))
        .map(|p| {
            format!(
                "nets/{}",
                p.file_name().unwrap_or_default().to_string_lossy()
            )
        })
        .collect();
    nets.sort();
    assert!(nets.len() >= 19, "the showcase has 19 nets, found {nets:?}");
    let mut args = vec!["check", "--deny-warnings"];
    args.extend(nets.iter().map(String::as_str));
    let o = netc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("no problems"), "{}", stderr(&o));
}

#[test]
fn errors_exit_1_with_a_rendered_diagnostic() {
    let o = netc(&[
        "check",
        "--color",
        "never",
        "tests/fixtures/err/syntax_keyword_arg_equals.net",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("[E0100]"), "{err}");
    assert!(err.contains("syntax_keyword_arg_equals.net:"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes without a terminal: {err}"
    );
}

#[test]
fn colour_on_request() {
    let o = netc(&[
        "check",
        "--color",
        "always",
        "tests/fixtures/err/syntax_keyword_arg_equals.net",
    ]);
    assert!(stderr(&o).contains('\u{1b}'), "{}", stderr(&o));
}

#[test]
fn json_lines_are_valid_and_complete() {
    let o = netc(&[
        "check",
        "--message-format",
        "json",
        "tests/fixtures/err/syntax_keyword_arg_equals.net",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(v["code"], "E0100");
    assert_eq!(v["severity"], "error");
    assert_eq!(
        v["file"],
        "tests/fixtures/err/syntax_keyword_arg_equals.net"
    );
    for key in ["start", "end", "line", "column", "end_line", "end_column"] {
        assert!(v["span"][key].is_u64(), "span.{key} in {v}");
    }
    assert!(v["help"].is_string(), "{v}");
    // The primary span is exactly the offending `=`.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/err/syntax_keyword_arg_equals.net"
    ))
    .expect("fixture");
    let (s, e) = (
        v["span"]["start"].as_u64().unwrap_or(0) as usize,
        v["span"]["end"].as_u64().unwrap_or(0) as usize,
    );
    assert_eq!(&text[s..e], "=");
}

#[test]
fn missing_file_is_an_io_error_exit_2() {
    let o = netc(&["check", "no/such/file.net"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("E0001") && err.contains("no/such/file.net"),
        "{err}"
    );
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(netc(&["check"]).status.code(), Some(2));
    assert_eq!(netc(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        netc(&["check", "--message-format", "xml", "nets/lenet5.net"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn help_is_complete() {
    let o = netc(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for cmd in ["check", "layers"] {
        assert!(out.contains(cmd), "--help lists {cmd}: {out}");
    }
    let o = netc(&["help", "check"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for flag in ["--message-format", "--color", "--deny-warnings", "Exits 0"] {
        assert!(out.contains(flag), "help check mentions {flag}: {out}");
    }
}

#[test]
fn layers_lists_and_describes() {
    let o = netc(&["layers"]);
    assert!(stdout(&o).lines().any(|l| l.starts_with("conv ")));
    let o = netc(&["layers", "maxpool"]);
    assert!(
        stdout(&o).contains("maxpool(window, stride: window"),
        "{}",
        stdout(&o)
    );
    let o = netc(&["layers", "maxpol"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `maxpool`"),
        "{}",
        stderr(&o)
    );
}
