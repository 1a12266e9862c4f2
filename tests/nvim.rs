//! A real editor: headless Neovim opens a `.net` file with a shape error (a residual add of
//! mismatched widths) with `netc lsp` attached through its built-in LSP client, and a Lua
//! script writes what Neovim received — the diagnostic, then (after fixing the layer through
//! Neovim's own buffer edit, sent as an incremental change) the empty list, and a hover with
//! the inferred shape — to a JSON file that the test reads back.
//!
//! The script uses the API of Neovim 0.7 (Debian 12's package): `vim.lsp.start_client` and
//! `vim.lsp.buf_attach_client` (`vim.lsp.start` arrived in 0.8), `vim.diagnostic.get`.
//!
//! Where `nvim` is not installed the test prints why and passes — except under CI (`CI` set),
//! where a missing Neovim fails it: CI installs the `neovim` package.
#![allow(clippy::print_stderr, reason = "the test says why it is skipped")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A residual block whose main branch widens to 128 channels while the shortcut keeps 64: a
/// shape error at the `add`, after a comment holding `é` (2 bytes, 1 UTF-16 unit) and `😀`
/// (4 bytes, 2 UTF-16 units).
const BROKEN: &str = "\
/// A residual block whose shortcut has the wrong width.
net bad(x: f32[N, 64, 56, 56]) -> y {
    y = x -> /* é😀 */ add {
        conv(128, kernel: 3, pad: 1) -> relu
      | identity
    }
}
";

/// Opens the file, attaches `netc lsp`, waits for diagnostics, narrows the convolution to 64
/// channels with a buffer edit, waits for the diagnostics to clear, hovers `conv`, shuts the
/// server down and writes everything to `$NETC_OUT`. Any Lua error is written there too, and
/// Neovim always quits.
const SCRIPT: &str = r#"
local out = os.getenv('NETC_OUT')
local function write(t)
  local f = assert(io.open(out, 'w'))
  f:write(vim.fn.json_encode(t))
  f:close()
end
local function snapshot(buf)
  local ds = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    local lsp = d.user_data and d.user_data.lsp or {}
    table.insert(ds, {
      lnum = d.lnum, col = d.col, end_lnum = d.end_lnum, end_col = d.end_col,
      severity = d.severity, message = d.message, source = d.source,
      code = d.code or lsp.code,
      related = lsp.relatedInformation,
    })
  end
  return ds
end
local ok, err = pcall(function()
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('NETC_FILE')))
  local buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({
    name = 'netc',
    cmd = { os.getenv('NETC_BIN'), 'lsp' },
    root_dir = vim.fn.fnamemodify(os.getenv('NETC_FILE'), ':h'),
  })
  assert(id, 'start_client failed')
  vim.lsp.buf_attach_client(buf, id)
  local result = { version = vim.version() }
  result.got_diagnostics = vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end, 20)
  result.diagnostics = snapshot(buf)
  -- Narrow `conv(128` to `conv(64` (line 3), which fixes the add.
  local line = vim.api.nvim_buf_get_lines(buf, 3, 4, true)[1]
  local col = assert(line:find('128', 1, true)) - 1
  vim.api.nvim_buf_set_text(buf, 3, col, 3, col + 3, { '64' })
  result.cleared = vim.wait(20000, function() return #vim.diagnostic.get(buf) == 0 end, 20)
  result.after_fix = snapshot(buf)
  local conv = assert(line:find('conv', 1, true))
  local client = vim.lsp.get_client_by_id(id)
  result.offset_encoding = client.offset_encoding
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = 3, character = vim.str_utfindex(line, conv) },
  }
  local answers = vim.lsp.buf_request_sync(buf, 'textDocument/hover', params, 10000) or {}
  for _, a in pairs(answers) do
    if a.result and a.result.contents then result.hover = a.result.contents.value end
  end
  vim.lsp.stop_client(id)
  result.stopped = vim.wait(10000, function() return vim.lsp.client_is_stopped(id) end, 20)
  write(result)
end)
if not ok then write({ error = tostring(err) }) end
vim.cmd('qa!')
"#;

/// The `nvim` on `PATH`, if any.
fn find_nvim() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nvim"))
        .find(|p| p.is_file())
}

#[test]
fn neovim_shows_the_shape_error_clears_it_after_an_edit_and_hovers() {
    let Some(nvim) = find_nvim() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nvim is not installed, and under CI it must be: install the Debian package `neovim`"
        );
        eprintln!("SKIPPED neovim test: `nvim` is not on PATH (apt-get install -y neovim)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("netc-nvim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("broken.net");
    let script = dir.join("probe.lua");
    let out = dir.join("received.json");
    std::fs::write(&file, BROKEN).expect("write");
    std::fs::write(&script, SCRIPT).expect("write");

    let got = run_nvim(&nvim, &dir, &file, &script, &out);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("Neovim received: {got:#}");
    assert!(got.get("error").is_none(), "the Lua script failed: {got}");
    assert_eq!(got["got_diagnostics"], true, "{got}");
    let diags = got["diagnostics"].as_array().cloned().unwrap_or_default();
    assert_eq!(diags.len(), 1, "{got}");
    let d = &diags[0];
    // Neovim turns the server's UTF-16 column 23 of `add` into its byte column 26.
    let line = BROKEN.lines().nth(2).unwrap_or_default();
    let byte = line.find("add").unwrap_or_default();
    assert_eq!((byte, line[..byte].encode_utf16().count()), (26, 23));
    assert_eq!(
        (&d["lnum"], &d["col"]),
        (&Value::from(2), &Value::from(26)),
        "{d}"
    );
    assert_eq!(
        (&d["end_lnum"], &d["end_col"]),
        (&Value::from(2), &Value::from(29)),
        "{d}"
    );
    assert_eq!(d["code"], "E0302", "{d}");
    assert_eq!(d["severity"], 1, "an error: {d}");
    assert_eq!(d["source"], "netc", "{d}");
    let message = d["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("f32[N,128,56,56]") && message.contains("f32[N,64,56,56]"),
        "{message}"
    );
    assert!(message.contains("help: "), "{message}");
    // Both branches arrive as related information.
    let related = d["related"].as_array().cloned().unwrap_or_default();
    let lines: Vec<&Value> = related
        .iter()
        .map(|r| &r["location"]["range"]["start"]["line"])
        .collect();
    assert_eq!(lines, [&Value::from(3), &Value::from(4)], "{d}");
    assert_eq!(got["offset_encoding"], "utf-16", "{got}");
    assert_eq!(
        got["cleared"], true,
        "the fix cleared the diagnostic: {got}"
    );
    let hover = got["hover"].as_str().unwrap_or_default();
    assert!(hover.contains("conv(filters"), "{got}");
    assert!(
        hover.contains("→ `f32[N,64,56,56]`"),
        "the inferred shape: {got}"
    );
    assert_eq!(got["stopped"], true, "the server shut down: {got}");
}

/// Runs headless Neovim on the script (killed after a minute) and returns what it wrote.
fn run_nvim(nvim: &Path, dir: &Path, file: &Path, script: &Path, out: &Path) -> Value {
    let log = dir.join("nvim-stderr.txt");
    let mut child = Command::new(nvim)
        .args([
            "--headless",
            "--clean",
            "-n",
            "-i",
            "NONE",
            "-u",
            "NONE",
            "-c",
        ])
        .arg(format!("luafile {}", script.display()))
        .current_dir(dir)
        .env("NETC_BIN", env!("CARGO_BIN_EXE_netc"))
        .env("NETC_FILE", file)
        .env("NETC_OUT", out)
        .env("XDG_STATE_HOME", dir)
        .env("XDG_DATA_HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_or_else(|_| Stdio::null(), Stdio::from))
        .spawn()
        .expect("nvim starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("headless nvim did not finish within a minute");
            }
        }
    }
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let text = std::fs::read_to_string(out).unwrap_or_else(|e| {
        panic!(
            "nvim wrote nothing to {} ({e}); stderr: {stderr}",
            out.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON from nvim ({e}): {text}"))
}
