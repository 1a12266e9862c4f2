//! `netc lsp` driven over stdio exactly as an editor drives it: JSON-RPC messages framed by
//! `Content-Length` headers on the server's stdin and stdout, the `initialize` handshake,
//! document notifications with incremental edits, requests, `shutdown` and `exit`.
//!
//! Every wait has a timeout, so a server that hangs fails its test instead of blocking CI, and
//! the server process is killed when a test ends, however it ends.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one answer may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A running `netc lsp` and the client's side of the conversation.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<Value>,
    /// Notifications received while waiting for something else.
    pending: Vec<Value>,
    stderr: Arc<Mutex<String>>,
    next_id: i64,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netc"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("netc lsp starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(msg) = read_frame(&mut r) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err_pipe.read_to_string(&mut s);
            if let Ok(mut e) = sink.lock() {
                e.push_str(&s);
            }
        });
        Server {
            stdin: child.stdin.take(),
            child,
            messages,
            pending: Vec::new(),
            stderr,
            next_id: 1,
        }
    }

    /// Starts a server and completes the handshake; returns it with the `initialize` result.
    fn initialized() -> (Server, Value) {
        let mut s = Server::start();
        let caps = json!({
            "textDocument": {
                "publishDiagnostics": { "relatedInformation": true },
                "synchronization": { "didSave": true },
            },
            "general": { "positionEncodings": ["utf-16"] },
        });
        let result = s.request(
            "initialize",
            json!({ "processId": null, "rootUri": null, "capabilities": caps }),
        );
        s.notify("initialized", json!({}));
        (s, result)
    }

    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(frame.as_bytes())
            .expect("write to netc lsp");
        stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and waits for its answer: the whole response object.
    fn request_raw(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        self.wait(&format!("the answer to {method}"), |m| {
            m["id"] == json!(id) && m.get("method").is_none()
        })
    }

    /// Sends a request and returns its result, failing on an error answer.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let r = self.request_raw(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// Waits for the next message matching `pred`, keeping the others as pending.
    fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) if pred(&m) => return m,
                Ok(m) => self.pending.push(m),
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("timed out waiting for {what}"))
                }
                Err(RecvTimeoutError::Disconnected) => self.fail(&format!(
                    "the server closed stdout while waiting for {what}"
                )),
            }
        }
    }

    /// The next `publishDiagnostics` for `uri`: its diagnostics.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        let n = self.wait(&format!("diagnostics for {uri}"), |m| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        });
        n["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn open(&mut self, uri: &str, text: &str) {
        let doc = json!({ "uri": uri, "languageId": "net", "version": 1, "text": text });
        self.notify("textDocument/didOpen", json!({ "textDocument": doc }));
    }

    fn change(&mut self, uri: &str, version: i32, changes: Value) {
        let doc = json!({ "uri": uri, "version": version });
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": doc, "contentChanges": changes }),
        );
    }

    fn at(&mut self, method: &str, uri: &str, line: u32, character: u32) -> Value {
        let mut params = json!({
            "textDocument": { "uri": uri },
            "position": { "line": line, "character": character },
        });
        if method == "textDocument/completion" {
            params["context"] = json!({ "triggerKind": 1 });
        }
        self.request(method, params)
    }

    /// `shutdown`, then `exit`: returns the exit code.
    fn shutdown(mut self) -> Option<i32> {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r, Value::Null);
        self.notify("exit", Value::Null);
        self.exit_code()
    }

    /// Waits for the process to end (closing its stdin first).
    fn exit_code(&mut self) -> Option<i32> {
        self.stdin = None;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => self.fail("the server did not exit"),
            }
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().map(|e| e.clone()).unwrap_or_default();
        panic!(
            "{why}\n--- server stderr ---\n{err}\n--- pending ---\n{:#?}",
            self.pending
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one `Content-Length`-framed JSON message; `None` at the end of the stream.
fn read_frame(r: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// A fresh folder for one test's files.
fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netc-lsp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn file_uri(path: &Path) -> String {
    let mut s = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The position (line, UTF-16 column) of the `nth` occurrence of `needle` in `text`, plus
/// `delta` characters.
fn pos(text: &str, needle: &str, nth: usize, delta: usize) -> (u32, u32) {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .map(|(i, _)| i)
        .expect("needle in text");
    let before = &text[..at];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[start..at].encode_utf16().count() + delta;
    (line as u32, col as u32)
}

const BLOCKS: &str = "\
/// Two convolutions and a ReLU.
block stage(c, stride = 1) {
    conv(c, kernel: 3, stride: stride, pad: 1) -> conv(c, kernel: 3, pad: 1) -> relu
}
";

/// The broken main file: `kernel= 3` after a comment holding characters that are 2 bytes /
/// 1 UTF-16 unit (é) and 4 bytes / 2 UTF-16 units (😀).
const MAIN: &str = "\
use \"blocks.net\"

/// A tiny classifier.
net tiny(x: f32[N, 3, 32, 32]) -> logits {
    h = x -> /* é😀 */ conv(8, kernel= 3)
    logits = h -> stage(8) -> local(4) -> flatten -> dense(10)
}

/// A local block.
block local(c) { conv(c, kernel: 1) -> relu }
";

struct Project {
    dir: PathBuf,
    main: String,
    blocks: String,
}

fn project(name: &str) -> Project {
    let dir = workspace(name);
    std::fs::write(dir.join("blocks.net"), BLOCKS).expect("write");
    std::fs::write(dir.join("main.net"), MAIN).expect("write");
    Project {
        main: file_uri(&dir.join("main.net")),
        blocks: file_uri(&dir.join("blocks.net")),
        dir,
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `MAIN` with the error fixed, as the incremental edit leaves it.
fn fixed_main() -> String {
    MAIN.replace("kernel= 3", "kernel: 3")
}

#[test]
fn initialize_announces_utf16_incremental_sync_and_the_features() {
    let (s, init) = Server::initialized();
    let caps = &init["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16", "{init}");
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental: {init}");
    assert_eq!(caps["textDocumentSync"]["openClose"], true);
    assert!(caps["textDocumentSync"]["save"].is_object(), "{init}");
    for feature in [
        "hoverProvider",
        "definitionProvider",
        "documentSymbolProvider",
        "inlayHintProvider",
    ] {
        assert_eq!(caps[feature], true, "{feature}: {init}");
    }
    assert!(
        caps["completionProvider"]["triggerCharacters"].is_array(),
        "{init}"
    );
    assert_eq!(init["serverInfo"]["name"], "netc");
    assert_eq!(s.shutdown(), Some(0));
}

#[test]
fn diagnostics_appear_at_the_utf16_range_and_clear_after_an_incremental_fix() {
    let p = project("fix");
    let (mut s, _) = Server::initialized();
    s.open(&p.main, MAIN);
    let diags = s.diagnostics(&p.main);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    // `=` of `kernel= 3` on line 4: byte column 40, character column 36, UTF-16 column 37.
    let line = MAIN.lines().nth(4).expect("line 4");
    let byte = line.find("= 3").expect("the error");
    assert_eq!((byte, line[..byte].chars().count()), (40, 36));
    assert_eq!(
        d["range"]["start"],
        json!({ "line": 4, "character": 37 }),
        "{d}"
    );
    assert_eq!(
        d["range"]["end"],
        json!({ "line": 4, "character": 38 }),
        "{d}"
    );
    assert_eq!(d["code"], "E0100");
    assert_eq!(d["severity"], 1);
    assert_eq!(d["source"], "netc");
    let message = d["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("expected "), "{message}");
    assert!(message.contains("found `=`"), "{message}");
    assert!(
        message.contains("\nhelp: keyword arguments are written `name: value`"),
        "{message}"
    );

    // The editor replaces the `=` (UTF-16 columns 37..38) by `:`.
    let edit = json!([{
        "range": { "start": { "line": 4, "character": 37 }, "end": { "line": 4, "character": 38 } },
        "text": ":",
    }]);
    s.change(&p.main, 2, edit);
    let after = s.diagnostics(&p.main);
    assert_eq!(after, Vec::<Value>::new(), "fixed: {after:#?}");
    // The server's text is the editor's: hovering `conv` right after the emoji still works.
    let (l, c) = pos(&fixed_main(), "conv(8", 0, 1);
    let h = s.at("textDocument/hover", &p.main, l, c);
    assert!(
        h["contents"]["value"]
            .as_str()
            .unwrap_or_default()
            .contains("conv(filters"),
        "{h}"
    );
    assert_eq!(s.shutdown(), Some(0));
}

#[test]
fn secondary_labels_arrive_as_related_information() {
    let dir = workspace("related");
    let uri = file_uri(&dir.join("open.net"));
    let (mut s, _) = Server::initialized();
    s.open(&uri, "net a(x: f32[N, 4]) -> y {\n    y = x -> dense(3\n");
    let diags = s.diagnostics(&uri);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let related = &diags[0]["relatedInformation"][0];
    assert_eq!(related["location"]["uri"], uri.as_str());
    assert_eq!(
        related["location"]["range"]["start"],
        json!({ "line": 1, "character": 18 })
    );
    assert!(
        related["message"]
            .as_str()
            .unwrap_or_default()
            .contains("never closed"),
        "{related}"
    );
    assert_eq!(s.shutdown(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hover_definition_completion_and_symbols() {
    let p = project("features");
    std::fs::write(p.dir.join("main.net"), fixed_main()).expect("write");
    let text = fixed_main();
    let (mut s, _) = Server::initialized();
    s.open(&p.main, &text);
    assert_eq!(s.diagnostics(&p.main), Vec::<Value>::new());

    // Hover: a built-in layer, an imported block, a local block, a binding.
    let hover = |s: &mut Server, needle: &str, nth: usize| {
        let (l, c) = pos(&text, needle, nth, 1);
        let h = s.at("textDocument/hover", &p.main, l, c);
        h["contents"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let conv = hover(&mut s, "conv(8", 0);
    assert!(
        conv.contains("conv(filters") && conv.contains("2-D convolution"),
        "{conv}"
    );
    assert!(conv.contains("`kernel`"), "parameters listed: {conv}");
    let stage = hover(&mut s, "stage(8)", 0);
    assert!(stage.contains("block stage(c, stride = 1)"), "{stage}");
    assert!(
        stage.contains("Two convolutions and a ReLU."),
        "doc comment: {stage}"
    );
    assert!(stage.contains("blocks.net"), "{stage}");
    let local = hover(&mut s, "local(4)", 0);
    assert!(
        local.contains("block local(c)") && local.contains("A local block."),
        "{local}"
    );
    let binding = hover(&mut s, "h -> stage", 0);
    assert!(
        binding.contains("h = x -> /* é😀 */ conv(8, kernel: 3)"),
        "{binding}"
    );
    let kernel = hover(&mut s, "kernel: 3", 0);
    assert!(kernel.contains("parameter of `conv`"), "{kernel}");

    // Definition: local block, imported block, imported file, a binding.
    let def = |s: &mut Server, needle: &str, nth: usize| {
        let (l, c) = pos(&text, needle, nth, 1);
        s.at("textDocument/definition", &p.main, l, c)
    };
    let d = def(&mut s, "local(4)", 0);
    assert_eq!(d["uri"], p.main.as_str());
    assert_eq!(
        d["range"]["start"],
        json!({ "line": 9, "character": 6 }),
        "{d}"
    );
    let d = def(&mut s, "stage(8)", 0);
    assert_eq!(d["uri"], p.blocks.as_str(), "{d}");
    assert_eq!(
        d["range"]["start"],
        json!({ "line": 1, "character": 6 }),
        "{d}"
    );
    let d = def(&mut s, "blocks.net", 0);
    assert_eq!(d["uri"], p.blocks.as_str(), "{d}");
    assert_eq!(
        d["range"]["start"],
        json!({ "line": 0, "character": 0 }),
        "{d}"
    );
    let d = def(&mut s, "h -> stage", 0);
    assert_eq!(
        d["range"]["start"],
        json!({ "line": 4, "character": 4 }),
        "{d}"
    );

    // Completion: layers and blocks in a chain, argument names in calls.
    let labels = |r: &Value| -> Vec<String> {
        let items = r
            .as_array()
            .or_else(|| r["items"].as_array())
            .cloned()
            .unwrap_or_default();
        items
            .iter()
            .filter_map(|i| i["label"].as_str().map(String::from))
            .collect()
    };
    let (l, c) = pos(&text, "stage(8)", 0, 0);
    let chain = labels(&s.at("textDocument/completion", &p.main, l, c));
    for want in ["conv", "relu", "maxpool", "stage", "local", "h"] {
        assert!(chain.iter().any(|x| x == want), "{want} in {chain:?}");
    }
    let (l, c) = pos(&text, "kernel: 3", 0, 0);
    let args = labels(&s.at("textDocument/completion", &p.main, l, c));
    for want in ["stride", "pad", "dilation", "bias"] {
        assert!(args.iter().any(|x| x == want), "{want} in {args:?}");
    }
    let (l, c) = pos(&text, "8) -> local", 0, 0);
    let block_args = labels(&s.at("textDocument/completion", &p.main, l, c));
    assert!(block_args.contains(&"stride".to_string()), "{block_args:?}");
    assert!(block_args.contains(&"c".to_string()), "{block_args:?}");

    // Inside `use "…"`: the files beside the document.
    let files = labels(&s.at("textDocument/completion", &p.main, 0, 5));
    assert_eq!(files, ["blocks.net"], "{files:?}");

    // The outline.
    let syms = s.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": p.main } }),
    );
    let names: Vec<&str> = syms
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["tiny", "local"], "{syms}");
    let children: Vec<&str> = syms[0]["children"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(children, ["h", "logits"], "{syms}");

    // Inlay hints: the shape after each layer, `conv(8, kernel: 3)` giving 8 × 30 × 30.
    let hints = s.request(
        "textDocument/inlayHint",
        json!({ "textDocument": { "uri": p.main }, "range": {
            "start": { "line": 0, "character": 0 }, "end": { "line": 99, "character": 0 } } }),
    );
    let labels: Vec<&str> = hints
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["label"].as_str()).collect())
        .unwrap_or_default();
    assert!(labels.contains(&"f32[N,8,30,30]"), "{hints}");
    assert_eq!(s.shutdown(), Some(0));
}

#[test]
fn requests_mid_edit_are_answered_from_the_last_good_state() {
    let p = project("midedit");
    let text = fixed_main();
    let (mut s, _) = Server::initialized();
    s.open(&p.main, &text);
    assert_eq!(s.diagnostics(&p.main), Vec::<Value>::new());
    // Half-type a layer at the end of line 4: the file no longer parses.
    let (line, end) = pos(&text, "kernel: 3)", 0, "kernel: 3)".len());
    let typed = " -> conv(16, ker";
    let edit = json!([{
        "range": { "start": { "line": line, "character": end }, "end": { "line": line, "character": end } },
        "text": typed,
    }]);
    s.change(&p.main, 2, edit);
    // Requests come before the debounced check would run; they are answered at once.
    let (l, c) = pos(&text, "stage(8)", 0, 1);
    let h = s.at("textDocument/hover", &p.main, l, c);
    assert!(
        h["contents"]["value"]
            .as_str()
            .unwrap_or_default()
            .contains("block stage"),
        "{h}"
    );
    let (l, c) = pos(&text, "local(4)", 0, 1);
    let d = s.at("textDocument/definition", &p.main, l, c);
    assert_eq!(
        d["range"]["start"],
        json!({ "line": 9, "character": 6 }),
        "{d}"
    );
    let r = s.at(
        "textDocument/completion",
        &p.main,
        line,
        end + typed.encode_utf16().count() as u32,
    );
    let items = r.as_array().cloned().unwrap_or_default();
    assert!(
        items
            .iter()
            .any(|i| i["label"] == "kernel" && i["insertText"] == "kernel: "),
        "{r}"
    );
    // The half-typed text is diagnosed, and the symbols still come from the last good parse.
    let diags = s.diagnostics(&p.main);
    assert!(
        !diags.is_empty() && diags[0]["code"] == "E0100",
        "{diags:#?}"
    );
    let syms = s.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": p.main } }),
    );
    assert_eq!(syms.as_array().map(Vec::len), Some(2), "{syms}");
    assert_eq!(s.shutdown(), Some(0));
}

#[test]
fn errors_in_an_unsaved_import_show_on_the_use_and_clear() {
    let p = project("imports");
    let text = fixed_main();
    let (mut s, _) = Server::initialized();
    s.open(&p.main, &text);
    assert_eq!(s.diagnostics(&p.main), Vec::<Value>::new());
    // Open blocks.net and break it without saving: main.net is re-checked against the buffer.
    s.open(&p.blocks, BLOCKS);
    assert_eq!(s.diagnostics(&p.blocks), Vec::<Value>::new());
    let (l, c) = pos(BLOCKS, "kernel: 3, stride", 0, "kernel".len());
    let edit = |text: &str| {
        json!([{
            "range": { "start": { "line": l, "character": c }, "end": { "line": l, "character": c + 1 } },
            "text": text,
        }])
    };
    s.change(&p.blocks, 2, edit("="));
    assert_eq!(s.diagnostics(&p.blocks).len(), 1);
    let diags = s.diagnostics(&p.main);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(
        diags[0]["range"]["start"],
        json!({ "line": 0, "character": 4 }),
        "on the use"
    );
    let message = diags[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("in imported file `") && message.contains("blocks.net"),
        "{message}"
    );
    let related = &diags[0]["relatedInformation"][0]["location"];
    assert_eq!(related["uri"], p.blocks.as_str());
    assert_eq!(
        related["range"]["start"],
        json!({ "line": l, "character": c })
    );
    s.change(&p.blocks, 3, edit(":"));
    assert_eq!(s.diagnostics(&p.blocks), Vec::<Value>::new());
    assert_eq!(s.diagnostics(&p.main), Vec::<Value>::new());
    // Closing a document clears its diagnostics.
    s.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": p.blocks } }),
    );
    assert_eq!(s.diagnostics(&p.blocks), Vec::<Value>::new());
    assert_eq!(s.shutdown(), Some(0));
}

/// A residual block whose main branch widens to 128 channels while the shortcut stays at 64.
const RESIDUAL: &str = "\
/// A residual block whose shortcut has the wrong width.
net bad(x: f32[N, 64, 56, 56]) -> y {
    y = x -> add {
        conv(128, kernel: 3, pad: 1) -> relu
      | identity
    }
}
";

#[test]
fn shape_errors_point_at_the_add_and_both_branches_and_hints_show_shapes() {
    let dir = workspace("shapes");
    let uri = file_uri(&dir.join("residual.net"));
    let (mut s, _) = Server::initialized();
    s.open(&uri, RESIDUAL);
    let diags = s.diagnostics(&uri);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert!(
        d["code"].as_str().unwrap_or_default().starts_with("E03"),
        "a shape error: {d}"
    );
    assert_eq!(
        d["range"]["start"],
        json!({ "line": 2, "character": 13 }),
        "the `add`: {d}"
    );
    let message = d["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("f32[N,128,56,56]") && message.contains("f32[N,64,56,56]"),
        "{message}"
    );
    let related: Vec<Value> = d["relatedInformation"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let lines: Vec<&Value> = related
        .iter()
        .map(|r| &r["location"]["range"]["start"]["line"])
        .collect();
    assert_eq!(lines, [&json!(3), &json!(4)], "both branches: {d}");

    // Make the main branch keep 64 channels: the error clears and every layer has its shape.
    let (l, c) = pos(RESIDUAL, "128", 0, 0);
    let edit = json!([{
        "range": { "start": { "line": l, "character": c }, "end": { "line": l, "character": c + 3 } },
        "text": "64",
    }]);
    s.change(&uri, 2, edit);
    assert_eq!(s.diagnostics(&uri), Vec::<Value>::new());
    let hints = s.request(
        "textDocument/inlayHint",
        json!({ "textDocument": { "uri": uri }, "range": {
            "start": { "line": 0, "character": 0 }, "end": { "line": 99, "character": 0 } } }),
    );
    let labels: Vec<&str> = hints
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["label"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        labels.len() >= 3 && labels.iter().all(|l| *l == "f32[N,64,56,56]"),
        "{hints}"
    );
    let fixed = RESIDUAL.replace("128", "64");
    let (l, c) = pos(&fixed, "conv", 0, 1);
    let h = s.at("textDocument/hover", &uri, l, c);
    let value = h["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        value.contains("→ `f32[N,64,56,56]`") && value.contains("params"),
        "{value}"
    );
    assert_eq!(s.shutdown(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn half_typed_files_never_crash_or_hang_the_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts: Vec<String> = Vec::new();
    // Every net of the showcase, cut at many places, as it is while being typed.
    let mut nets: Vec<PathBuf> = std::fs::read_dir(root.join("nets"))
        .expect("nets/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "net"))
        .collect();
    nets.sort();
    for net in &nets {
        let text = std::fs::read_to_string(net).expect("read net");
        let step = (text.len() / 12).max(1);
        let mut cut = 0;
        while cut < text.len() {
            if text.is_char_boundary(cut) {
                texts.push(text[..cut].to_string());
            }
            cut += step;
        }
        texts.push(text);
    }
    // The fuzz seeds, and the fuzz corpus where a fuzzing run left one.
    for dir in ["fuzz/seeds", "fuzz/corpus/parse"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files.into_iter().take(150) {
            if let Ok(bytes) = std::fs::read(&f) {
                texts.push(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    assert!(texts.len() > 100, "{} texts", texts.len());

    let dir = workspace("replay");
    let uri = file_uri(&dir.join("typing.net"));
    let (mut s, _) = Server::initialized();
    s.open(&uri, "");
    for (i, text) in texts.iter().enumerate() {
        s.change(&uri, i as i32 + 2, json!([{ "text": text }]));
        // Ask at the end of the text, where the user is typing, and in the middle.
        let end = pos_of_end(text);
        let mid = pos_of_end(&text[..floor(text, text.len() / 2)]);
        for (l, c) in [end, mid] {
            s.at("textDocument/completion", &uri, l, c);
            s.at("textDocument/hover", &uri, l, c);
            s.at("textDocument/definition", &uri, l, c);
        }
        s.request(
            "textDocument/documentSymbol",
            json!({ "textDocument": { "uri": uri } }),
        );
    }
    // Still alive, and the last text's diagnostics arrive.
    s.diagnostics(&uri);
    // No check crashed (a crash is reported as an internal error diagnostic).
    for m in &s.pending {
        assert!(!m.to_string().contains("internal compiler error"), "{m}");
    }
    let err = s.stderr.lock().map(|e| e.clone()).unwrap_or_default();
    assert!(!err.contains("panicked"), "{err}");
    let err = s.request_raw("netc/unknown", json!({}));
    assert_eq!(err["error"]["code"], -32601, "{err}");
    assert_eq!(s.shutdown(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

fn floor(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn pos_of_end(text: &str) -> (u32, u32) {
    let line = text.matches('\n').count();
    let start = text.rfind('\n').map_or(0, |i| i + 1);
    (line as u32, text[start..].encode_utf16().count() as u32)
}

#[test]
fn exit_without_shutdown_exits_1() {
    let (mut s, _) = Server::initialized();
    s.notify("exit", Value::Null);
    assert_eq!(s.exit_code(), Some(1));
}
