//! One check of one document: the same pipeline as `netc check` (load with imports, parse,
//! resolve) with the editor's unsaved buffers standing in for the files on disk
//! ([`analyse`]), then shape inference through [`super::facts`]
//! ([`Analysis::with_shapes`], which the checker runs on a thread of its own).
//!
//! A check never takes the server down: it runs under `catch_unwind`, so a bug in any stage
//! becomes one "internal error" diagnostic instead of a dead server. The caller runs it on a
//! thread with a large stack (see [`worker`](super::worker)).

use super::facts::{self, Facts};
use super::incremental::{self, ParseCache};
use super::position;
use super::uri;
use crate::diagnostics::{
    Code, Diagnostic, Diagnostics, FileId, Label, SourceFile, SourceMap, Span,
};
use crate::syntax::ast::{Item, Module};
use crate::syntax::loader::{self, DiskReader, FileReader, Program};
use lsp_types::{Position, Range};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The text of every open document that has a file path, by normalised path: imports of an
/// open file are read from the editor, not from disk.
pub type OpenFiles = BTreeMap<PathBuf, Arc<str>>;

/// The result of checking one version of a document.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The document version that was checked.
    pub version: i32,
    /// The program: the document (its root file) and everything it imports.
    pub program: Program,
    /// Every diagnostic, sorted, as `netc check` would report them plus shape diagnostics.
    pub diagnostics: Diagnostics,
    /// What shape inference found out about each layer.
    pub facts: Facts,
}

impl Analysis {
    /// The document's parsed module, when it parsed.
    pub fn module(&self) -> Option<&Module> {
        self.program.root_module()
    }

    /// The document's source file, as checked.
    pub fn root_file(&self) -> &SourceFile {
        self.program.sources.get(self.program.root)
    }

    /// The byte offset of an editor position in the checked text.
    pub fn offset(&self, pos: Position) -> usize {
        position::file_offset(self.root_file(), pos)
    }

    /// The editor range of a span of the program.
    pub fn range(&self, span: Span) -> Range {
        position::span_range(&self.program.sources, span)
    }

    /// The path of a file of the program, as the loader read it.
    pub fn path(&self, file: FileId) -> &Path {
        Path::new(&self.program.sources.get(file).name)
    }

    /// The path that `use "rel"` in the document names: relative to the document's folder.
    pub fn use_target(&self, rel: &str) -> PathBuf {
        let dir = self
            .path(self.program.root)
            .parent()
            .unwrap_or(Path::new(""));
        uri::normalize(&dir.join(rel))
    }

    /// The file of the program that was read from `path` (normalised), if any.
    pub fn file_of(&self, path: &Path) -> Option<FileId> {
        self.program
            .sources
            .iter()
            .find(|(_, f)| uri::normalize(Path::new(&f.name)) == path)
            .map(|(id, _)| id)
    }
}

/// Checks the document called `name` (a path, or an opaque name for non-file documents)
/// whose text is `text`, reading imports from `open` documents first and then from disk.
/// `cache` holds the document's pieces from its last check ([`incremental`]).
pub fn analyse(
    name: &str,
    version: i32,
    text: &str,
    open: &OpenFiles,
    cache: &mut ParseCache,
) -> Analysis {
    let reader = Overlay { open };
    let run = || crate::check_program(load(name, text, &reader, cache));
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok((program, diagnostics)) => Analysis {
            version,
            program,
            diagnostics,
            facts: Facts::default(),
        },
        Err(panic) => {
            *cache = ParseCache::new();
            crashed(name, version, text, &panic_message(&panic))
        }
    }
}

/// What [`loader::load_source_with`] returns for `text`, with the document itself parsed
/// incrementally: the loader is handed only the document's `use` items (at their places, so
/// that its import diagnostics point at the right bytes), and the document's real text and
/// module are put in afterwards. When the document does not parse, the program is the
/// document alone, as the loader leaves it.
pub fn load(
    name: &str,
    text: &str,
    reader: &dyn FileReader,
    cache: &mut ParseCache,
) -> (Program, Diagnostics) {
    let root = FileId(0);
    let module = match incremental::parse(cache, root, text) {
        Ok(m) => m,
        Err(diags) => {
            let mut sources = SourceMap::new();
            sources.add(loader_name(name), text);
            let program = Program {
                sources,
                modules: vec![None],
                imports: vec![Vec::new()],
                root,
            };
            return (program, diags);
        }
    };
    let uses_end = module
        .items
        .iter()
        .filter(|i| matches!(i, Item::Use(_)))
        .map(|i| i.span().end as usize)
        .max()
        .unwrap_or(0);
    let mut stub: Vec<u8> = text.as_bytes()[..uses_end]
        .iter()
        .map(|&b| if b == b'\n' { b'\n' } else { b' ' })
        .collect();
    for item in &module.items {
        if let Item::Use(u) = item {
            stub[u.span.range()].copy_from_slice(&text.as_bytes()[u.span.range()]);
        }
    }
    let (program, diags) = loader::load_source_with(name, &stub, reader);
    if program.root != root || program.module(root).is_none() {
        // Cannot happen (the stub's `use`s parsed as part of the whole); stay exact anyway.
        return loader::load_source_with(name, text.as_bytes(), reader);
    }
    let mut sources = SourceMap::new();
    for (id, f) in program.sources.iter() {
        if id == root {
            sources.add(f.name.clone(), text);
        } else {
            sources.add(f.name.clone(), f.text.clone());
        }
    }
    let mut modules = program.modules;
    modules[0] = Some(module);
    let program = Program {
        sources,
        modules,
        imports: program.imports,
        root,
    };
    (program, diags)
}

/// The name the loader shows a file under: the path normalised, with forward slashes.
fn loader_name(name: &str) -> String {
    uri::normalize(Path::new(name))
        .to_string_lossy()
        .replace('\\', "/")
}

impl Analysis {
    /// Whether shape inference can run: the document parsed and passed the checks.
    pub fn wants_shapes(&self) -> bool {
        self.module().is_some() && !self.diagnostics.has_errors()
    }

    /// This analysis with shape inference done: the layer facts, and the shape diagnostics
    /// added to the others. A panic in shape inference becomes an internal-error diagnostic.
    pub fn with_shapes(&self) -> Analysis {
        let mut a = self.clone();
        match catch_unwind(AssertUnwindSafe(|| {
            facts::compute(&a.program, &a.diagnostics)
        })) {
            Ok((facts, diags)) => {
                a.facts = facts;
                a.diagnostics.extend(diags);
            }
            Err(panic) => {
                let at = Span::new(a.program.root, 0, 0);
                a.diagnostics
                    .push(internal_error(at, &panic_message(&*panic)));
            }
        }
        a.diagnostics.sort();
        a
    }
}

/// The diagnostic for a bug in netc found while checking.
fn internal_error(at: Span, why: &str) -> Diagnostic {
    Diagnostic::error(
        Code::Syntax,
        format!("internal compiler error while checking this file: {why}"),
        Label::new(at, "netc failed here"),
    )
    .with_help("this is a bug in netc; please report it with this file")
}

/// An analysis standing for a check that panicked: no module, one diagnostic saying so.
fn crashed(name: &str, version: i32, text: &str, why: &str) -> Analysis {
    let mut sources = SourceMap::new();
    let root = sources.add(loader_name(name), text);
    let diag = internal_error(Span::new(root, 0, 0), why);
    Analysis {
        version,
        program: Program {
            sources,
            modules: vec![None],
            imports: vec![Vec::new()],
            root,
        },
        diagnostics: diag.into(),
        facts: Facts::default(),
    }
}

/// The message a panic carried.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Reads open documents from the editor and everything else from disk.
struct Overlay<'a> {
    open: &'a OpenFiles,
}

impl FileReader for Overlay<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        match self.open.get(&uri::normalize(path)) {
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => DiskReader.read(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_read_from_open_documents_first() {
        let dir = std::env::temp_dir();
        let lib = dir.join("netc-lsp-analysis-unit").join("lib.net");
        let mut open = OpenFiles::new();
        open.insert(
            uri::normalize(&lib),
            Arc::from("block b(c) { conv(c, kernel: 3) }"),
        );
        let main = dir.join("netc-lsp-analysis-unit").join("./main.net");
        let text = "use \"lib.net\"\nnet n(x: f32[N, 3, 8, 8]) -> y { y = x -> b(4) }";
        let a = analyse(
            &main.to_string_lossy(),
            7,
            text,
            &open,
            &mut ParseCache::new(),
        );
        assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
        assert_eq!(a.version, 7);
        assert!(a.module().is_some());
        assert!(a.program.lookup(a.program.root, "b").is_some());
    }

    #[test]
    fn loading_matches_the_loader_on_every_fixture() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in [
            "nets",
            "nets/blocks",
            "tests/fixtures/ok",
            "tests/fixtures/err",
        ] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
        files.sort();
        assert!(files.len() > 30, "{files:?}");
        let mut cache = ParseCache::new();
        for path in files {
            let bytes = std::fs::read(&path).expect("read");
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            let name = path.to_string_lossy();
            let (a, da) = crate::check_program(load(&name, &text, &DiskReader, &mut cache));
            let loaded = loader::load_source_with(&name, text.as_bytes(), &DiskReader);
            let (b, db) = crate::check_program(loaded);
            assert_eq!(da, db, "{name}");
            assert_eq!(a.modules, b.modules, "{name}");
            assert_eq!(a.imports, b.imports, "{name}");
            assert_eq!(a.root, b.root, "{name}");
            let files = |p: &Program| -> Vec<(String, String)> {
                p.sources
                    .iter()
                    .map(|(_, f)| (f.name.clone(), f.text.clone()))
                    .collect()
            };
            assert_eq!(files(&a), files(&b), "{name}");
        }
    }

    #[test]
    fn missing_imports_are_diagnosed() {
        let a = analyse(
            "/nonexistent/dir/m.net",
            1,
            "use \"gone.net\"",
            &OpenFiles::new(),
            &mut ParseCache::new(),
        );
        assert!(a.diagnostics.iter().any(|d| d.code == Code::ImportNotFound));
    }
}
