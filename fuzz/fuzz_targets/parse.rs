//! Fuzz target: arbitrary bytes → decode → parse; whenever parsing succeeds, the canonical
//! print must parse again and print identically (the printer's round-trip contract).
//!
//! Properties checked (a failure aborts, which libFuzzer records as a crash):
//! - nothing panics or overflows the stack;
//! - a rejected input yields at least one error diagnostic, and every primary and secondary
//!   span lies inside the text on UTF-8 character boundaries;
//! - `print(parse(x))` parses, and `print(parse(print(parse(x)))) == print(parse(x))`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netc::diagnostics::{Diagnostic, Diagnostics, FileId, SourceMap};
use netc::syntax::{parser, print};

fuzz_target!(|bytes: &[u8]| {
    let mut sm = SourceMap::new();
    let file = sm.add("fuzz.net", String::from_utf8_lossy(bytes).into_owned());

    // TODO(check_bytes): once `netc::check_bytes` exists, also run
    //     let ds = netc::check_bytes("fuzz.net", bytes);
    // and check `ds` with `check_spans` against the lossy text (name resolution then runs
    // on every input too). The decode+parse below stays: it is what the round trip needs.
    let text = match parser::decode(file, bytes) {
        Ok(t) => t,
        Err(d) => {
            // The valid prefix is the same in the lossy text, so the offset must be a
            // boundary there too.
            let text = lossy_text(&sm, file);
            check_diag(&d, text.len(), |i| text.is_char_boundary(i));
            return;
        }
    };
    match parser::parse(file, text) {
        Err(ds) => check_spans(&ds, text),
        Ok(m) => {
            let printed = print::module(&m);
            let f2 = sm.add("printed.net", printed.clone());
            let m2 = match parser::parse(f2, &printed) {
                Ok(m2) => m2,
                Err(ds) => panic!(
                    "printed module does not parse: {:?}\n--- input\n{text}\n--- printed\n{printed}",
                    first_message(&ds)
                ),
            };
            let reprinted = print::module(&m2);
            assert_eq!(
                printed, reprinted,
                "print(parse(print(m))) != print(m)\n--- input\n{text}"
            );
            // Equal prints can still hide different trees (`f((l: x))` prints as `f(l: x)`,
            // a keyword argument), so compare the trees themselves, spans erased.
            assert_eq!(
                erase_spans(&format!("{m:?}")),
                erase_spans(&format!("{m2:?}")),
                "parse(print(m)) != m up to spans\n--- input\n{text}\n--- printed\n{printed}"
            );
        }
    }
});

/// The `Debug` text of an AST with every `Span { … }` and file id blanked out.
fn erase_spans(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find("Span {") {
        out.push_str(&rest[..i]);
        out.push('_');
        rest = &rest[i..];
        rest = rest.find('}').map_or("", |j| &rest[j + 1..]);
    }
    out.push_str(rest);
    let mut res = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("FileId(") {
        res.push_str(&rest[..i]);
        res.push_str("FileId");
        rest = &rest[i..];
        rest = rest.find(')').map_or("", |j| &rest[j + 1..]);
    }
    res.push_str(rest);
    res
}

fn lossy_text(sm: &SourceMap, file: FileId) -> &str {
    &sm.get(file).text
}

fn first_message(ds: &Diagnostics) -> Option<String> {
    ds.iter().next().map(|d| format!("{} {}", d.code, d.message))
}

fn check_spans(ds: &Diagnostics, text: &str) {
    assert!(ds.has_errors(), "parse failed without an error diagnostic");
    for d in ds.iter() {
        check_diag(d, text.len(), |i| text.is_char_boundary(i));
    }
}

fn check_diag(d: &Diagnostic, len: usize, boundary: impl Fn(usize) -> bool) {
    assert!(d.is_error(), "rejection reported as a warning: {d:?}");
    for label in std::iter::once(&d.primary).chain(&d.secondary) {
        let (s, e) = (label.span.start as usize, label.span.end as usize);
        assert!(s <= e && e <= len, "span {s}..{e} outside 0..{len}: {d:?}");
        assert!(boundary(s) && boundary(e), "span {s}..{e} not on char boundaries: {d:?}");
    }
}
