//! Fuzz target: arbitrary bytes through the front end (`netc::check_program` on a loaded
//! source) and through decode → parse → print → parse.
//!
//! Properties checked (a failure aborts, which libFuzzer records as a crash):
//! - nothing panics, overflows the stack or hangs (libFuzzer's `-timeout`);
//! - the front end (read, parse, imports, names) and the parser agree on rejecting;
//! - a rejected input yields at least one error diagnostic; every primary and secondary span
//!   lies inside its file on UTF-8 character boundaries, and every diagnostic renders;
//! - `print(m)` parses back to `m` up to spans, and prints the same again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netc::diagnostics::{render, Diagnostics, SourceMap};
use netc::syntax::loader::{self, MemoryReader};
use netc::syntax::{parser, print};

fuzz_target!(|bytes: &[u8]| {
    // The whole front end (reading, parsing, imports, names): this is `netc::check_bytes`
    // with imports served from memory instead of the disk (an input such as
    // `use "/dev/zero"` must not make the fuzzer read forever), keeping the sources so that
    // spans can be checked and every diagnostic rendered.
    let (program, diags) = netc::check_program(loader::load_source_with(
        "fuzz.net",
        bytes,
        &MemoryReader::default(),
    ));
    check_spans(&program.sources, &diags);

    // Then the parser alone, for the printer's round trip.
    let mut sm = SourceMap::new();
    let file = sm.add("fuzz.net", String::from_utf8_lossy(bytes).into_owned());
    let text = match parser::decode(file, bytes) {
        Ok(t) => t,
        Err(d) => {
            assert!(
                diags.has_errors(),
                "invalid UTF-8 accepted by the front end"
            );
            check_spans(&sm, &d);
            return;
        }
    };
    match parser::parse(file, text) {
        Err(ds) => {
            assert!(ds.has_errors(), "parse failed without an error diagnostic");
            assert!(diags.has_errors(), "parse failed but the front end did not");
            check_spans(&sm, &ds);
        }
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

fn first_message(ds: &Diagnostics) -> Option<String> {
    ds.iter()
        .next()
        .map(|d| format!("{} {}", d.code, d.message))
}

/// Every label of every diagnostic lies inside the file it names, on character boundaries,
/// and the diagnostic renders (human and JSON) without panicking.
fn check_spans(sources: &SourceMap, ds: &Diagnostics) {
    let files = sources.iter().count();
    for d in ds.iter() {
        for label in std::iter::once(&d.primary).chain(&d.secondary) {
            let span = label.span;
            assert!(
                (span.file.0 as usize) < files,
                "span in unknown file: {d:?}"
            );
            let text = &sources.get(span.file).text;
            let (s, e) = (span.start as usize, span.end as usize);
            assert!(
                s <= e && e <= text.len(),
                "span {s}..{e} outside 0..{}: {d:?}",
                text.len()
            );
            assert!(
                text.is_char_boundary(s) && text.is_char_boundary(e),
                "span {s}..{e} not on char boundaries: {d:?}"
            );
        }
        let _ = render::human(d, sources, render::RenderOptions { color: false });
        let _ = render::json_line(d, sources);
    }
}
