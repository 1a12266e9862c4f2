//! Loading a program: a root file and every file it imports with `use`, each read, decoded and
//! parsed once. Import paths are relative to the importing file. Missing files and import
//! cycles are reported at the `use` that causes them.
//!
//! Reading goes through a [`FileReader`] so that the language server can serve open editor
//! buffers and tests can load programs from memory.

use super::ast::{Item, Module};
use super::parser;
use crate::diagnostics::{Code, Diagnostic, Diagnostics, FileId, Label, SourceMap, Span};
use std::path::{Path, PathBuf};

/// Reads the bytes of a file.
pub trait FileReader {
    /// The contents of `path`, or an I/O error.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// Reads from the file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskReader;

/// Largest source file read: far beyond any network, small enough that `use "/dev/zero"`
/// or a mistaken multi-gigabyte import fails fast instead of exhausting memory.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

impl FileReader for DiskReader {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory",
            ));
        }
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(std::io::Error::other(format!(
                "larger than {} MiB",
                MAX_FILE_BYTES >> 20
            )));
        }
        Ok(bytes)
    }
}

/// Reads from an in-memory map of path → contents, falling back to nothing.
#[derive(Clone, Debug, Default)]
pub struct MemoryReader {
    /// The files.
    pub files: std::collections::BTreeMap<PathBuf, Vec<u8>>,
}

impl FileReader for MemoryReader {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

/// A loaded program: every file, parsed. `modules[i]` is the module of `FileId(i)`; files
/// that failed to read or parse have no module (`None`) and their diagnostics were reported.
#[derive(Clone, Debug)]
pub struct Program {
    /// The text of every file read.
    pub sources: SourceMap,
    /// Parsed modules by file id.
    pub modules: Vec<Option<Module>>,
    /// For each file, the files it imports (by id), in `use` order.
    pub imports: Vec<Vec<FileId>>,
    /// The file the program was loaded from.
    pub root: FileId,
}

impl Program {
    /// The root module, if it parsed.
    pub fn root_module(&self) -> Option<&Module> {
        self.module(self.root)
    }

    /// The module of `file`, if it parsed.
    pub fn module(&self, file: FileId) -> Option<&Module> {
        self.modules.get(file.0 as usize).and_then(Option::as_ref)
    }

    /// The items visible in `file`: its own, then those of the files it imports, transitively,
    /// in import order (a name defined in the file itself wins). Imported `use` items are not
    /// visible.
    pub fn visible_items(&self, file: FileId) -> Vec<(FileId, &Item)> {
        let mut out = Vec::new();
        let mut seen = vec![false; self.modules.len()];
        let mut stack = vec![file];
        let mut order = Vec::new();
        while let Some(f) = stack.pop() {
            let i = f.0 as usize;
            if i >= seen.len() || seen[i] {
                continue;
            }
            seen[i] = true;
            order.push(f);
            for &g in self.imports[i].iter().rev() {
                stack.push(g);
            }
        }
        for f in order {
            if let Some(m) = self.module(f) {
                for item in &m.items {
                    if !matches!(item, Item::Use(_)) {
                        out.push((f, item));
                    }
                }
            }
        }
        out
    }

    /// The first visible item called `name` from `file`.
    pub fn lookup(&self, file: FileId, name: &str) -> Option<(FileId, &Item)> {
        self.visible_items(file)
            .into_iter()
            .find(|(_, item)| item.name() == name)
    }
}

/// Loads `path` and its imports from disk.
pub fn load(path: &Path) -> (Program, Diagnostics) {
    load_with(path, &DiskReader)
}

/// Loads `path` and its imports through `reader`. Always returns a program (possibly with
/// unparsed files) together with the diagnostics found while loading.
pub fn load_with(path: &Path, reader: &dyn FileReader) -> (Program, Diagnostics) {
    let mut l = Loader {
        reader,
        program: Program {
            sources: SourceMap::new(),
            modules: Vec::new(),
            imports: Vec::new(),
            root: FileId(0),
        },
        paths: Vec::new(),
        diags: Diagnostics::new(),
    };
    let root = l.load_file(path, None, &mut Vec::new());
    l.program.root = root.unwrap_or(FileId(0));
    if l.program.modules.is_empty() {
        // The root could not be read: keep an empty file so that ids stay valid.
        l.program.sources.add(display(path), String::new());
        l.program.modules.push(None);
        l.program.imports.push(Vec::new());
    }
    (l.program, l.diags)
}

/// Parses `text` as a program of one file named `name`, whose imports are read from disk
/// relative to `name`.
pub fn load_source(name: &str, text: &str) -> (Program, Diagnostics) {
    load_source_with(name, text.as_bytes(), &DiskReader)
}

/// Like [`load_source`], with imports read through `reader`.
pub fn load_source_with(
    name: &str,
    bytes: &[u8],
    reader: &dyn FileReader,
) -> (Program, Diagnostics) {
    struct Overlay<'a> {
        path: PathBuf,
        bytes: &'a [u8],
        rest: &'a dyn FileReader,
    }
    impl FileReader for Overlay<'_> {
        fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            if normalize(path) == self.path {
                Ok(self.bytes.to_vec())
            } else {
                self.rest.read(path)
            }
        }
    }
    let path = PathBuf::from(name);
    let overlay = Overlay {
        path: normalize(&path),
        bytes,
        rest: reader,
    };
    load_with(&path, &overlay)
}

struct Loader<'r> {
    reader: &'r dyn FileReader,
    program: Program,
    /// Normalised path of each loaded file, by id.
    paths: Vec<PathBuf>,
    diags: Diagnostics,
}

impl Loader<'_> {
    /// Loads one file (if not loaded yet) and its imports. `chain` holds the files whose
    /// imports are being loaded, to detect cycles; `from` is the `use` that asked for it.
    fn load_file(
        &mut self,
        path: &Path,
        from: Option<Span>,
        chain: &mut Vec<(FileId, Span)>,
    ) -> Option<FileId> {
        let norm = normalize(path);
        if let Some(i) = self.paths.iter().position(|p| *p == norm) {
            let id = FileId(i as u32);
            if let Some(pos) = chain.iter().position(|(f, _)| *f == id) {
                self.report_cycle(id, from, &chain[pos..]);
            }
            return Some(id);
        }
        let bytes = match self.reader.read(path) {
            Ok(b) => b,
            Err(e) => {
                match from {
                    Some(span) => self.diags.push(
                        Diagnostic::error(
                            Code::ImportNotFound,
                            format!(
                                "cannot read imported file `{}`: {}",
                                display(path),
                                io_reason(&e)
                            ),
                            Label::new(span, "imported here"),
                        )
                        .with_help("import paths are relative to the file that contains the `use`"),
                    ),
                    None => {
                        // The root file itself: report against an empty placeholder file.
                        let id = self.add_file(norm, display(path), String::new());
                        self.diags.push(Diagnostic::error(
                            Code::Io,
                            format!("cannot read `{}`: {}", display(path), io_reason(&e)),
                            Label::new(Span::new(id, 0, 0), ""),
                        ));
                        return Some(id);
                    }
                }
                return None;
            }
        };
        let name = display(path);
        let (text, utf8_error) = match std::str::from_utf8(&bytes) {
            Ok(t) => (t.to_string(), None),
            Err(_) => (String::from_utf8_lossy(&bytes).into_owned(), Some(())),
        };
        let id = self.add_file(norm, name, text.clone());
        if utf8_error.is_some() {
            if let Err(d) = parser::decode(id, &bytes) {
                self.diags.extend(d);
            }
            return Some(id);
        }
        let module = match parser::parse(id, &text) {
            Ok(m) => m,
            Err(ds) => {
                self.diags.extend(ds);
                return Some(id);
            }
        };
        let uses: Vec<(String, Span)> = module
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Use(u) => Some((u.path.clone(), u.path_span)),
                _ => None,
            })
            .collect();
        self.program.modules[id.0 as usize] = Some(module);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut imported = Vec::new();
        for (rel, span) in uses {
            chain.push((id, span));
            if let Some(g) = self.load_file(&dir.join(&rel), Some(span), chain) {
                if !imported.contains(&g) && g != id {
                    imported.push(g);
                }
            }
            chain.pop();
        }
        self.program.imports[id.0 as usize] = imported;
        Some(id)
    }

    fn add_file(&mut self, norm: PathBuf, name: String, text: String) -> FileId {
        let id = self.program.sources.add(name, text);
        self.paths.push(norm);
        self.program.modules.push(None);
        self.program.imports.push(Vec::new());
        id
    }

    /// `target` is being imported again while its own imports are loading: a cycle through
    /// the `use`s in `cycle` (each importing the next), closed by `from`.
    fn report_cycle(&mut self, target: FileId, from: Option<Span>, cycle: &[(FileId, Span)]) {
        let Some(from) = from else { return };
        let names: Vec<String> = cycle
            .iter()
            .map(|(f, _)| self.program.sources.get(*f).name.clone())
            .chain(std::iter::once(
                self.program.sources.get(target).name.clone(),
            ))
            .collect();
        let mut d = Diagnostic::error(
            Code::ImportCycle,
            format!("import cycle: {}", names.join(" → ")),
            Label::new(from, "this import closes the cycle"),
        )
        .with_help("move the shared blocks into a file that both can import");
        for (_, span) in cycle.iter().filter(|(_, s)| *s != from) {
            d = d.with_label(Label::new(*span, "imports the next file of the cycle"));
        }
        self.diags.push(d);
    }
}

/// An I/O error in words, without the OS error number.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Lexically normalised path (`a/./b/../c` → `a/c`) used to recognise a file imported twice.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if matches!(
                    out.components().next_back(),
                    Some(std::path::Component::Normal(_))
                ) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The path as shown in diagnostics: as given, normalised, with forward slashes.
fn display(path: &Path) -> String {
    normalize(path).to_string_lossy().replace('\\', "/")
}
