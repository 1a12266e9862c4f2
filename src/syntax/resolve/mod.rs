//! Name resolution and the checks that need no shapes.
//!
//! Every module of a [`Program`] that parsed is checked with the items it can see (its own,
//! then those of its imports). The checks, each reported at the text that causes it:
//!
//! - **Items** (this file): two items with one name in a file, a name imported from two
//!   files, or a block, cell or constant named like a built-in layer (E0208); blocks and cells
//!   that call themselves, directly or not, and constants defined in terms of themselves
//!   (E0212); a file that defines nothing (W0003).
//! - **Parameters** (`walk.rs`): duplicates (E0210); a net parameter with neither a tensor
//!   type nor a default, a tensor-typed block or cell parameter, a default of the wrong type
//!   (E0227); tensor-type dimensions must be compile-time (E0220) and may use symbolic names
//!   such as `N`.
//! - **Bodies** (`walk.rs`, `expr.rs`): unknown names (E0200) and layers (E0201) with
//!   suggestions; use before definition (E0211); duplicate bindings (E0209) and labels
//!   (E0223); cell state updates (E0222); undefined outputs (E0215); bodies without a result
//!   (E0216); `emit` (E0217); chains: a value used as a layer or a cell used directly
//!   (E0218), a layer with no input (E0219); compile-time contexts holding tensors (E0220);
//!   ragged or non-numeric constants (E0221); operators on layers, or tensors in conditions
//!   (E0225); compile-time arithmetic that fails (E0226); unused values (W0001) and
//!   parameters (W0002).
//! - **Calls** (`call.rs`): arguments are bound to the parameters of built-in layers (from
//!   [`builtins`]), blocks and cells: unknown (E0202), missing (E0203), duplicate (E0204),
//!   mistyped (E0205), too many (E0206) and misplaced (E0207) arguments, and the number of
//!   tensor inputs of built-in layers (E0224).
//!
//! Expressions are classified by a small type inference (`ty.rs`): compile-time values (with
//! their value when it is known now), tensors, layers (functions of the value flowing in) and
//! cells. After an error the expression's type is unknown and nothing more is said about it,
//! so one mistake gives one diagnostic. Problems are kept as `error::Error` values and turned
//! into diagnostics in one place (`report.rs`).
//!
//! Rules of scope this module settles:
//! - a net sees its inputs and defaulted parameters, a block its parameters and `in`, a cell
//!   its parameters, states and step inputs; all see the visible constants, blocks and cells;
//! - branch, `if` and `repeat` bodies are nested scopes: they see the enclosing names and may
//!   shadow them; what they bind is invisible outside;
//! - unbound names in a tensor type are symbolic sizes (`N`, `T`); they exist only there;
//! - nets cannot be referenced, so a net may share its name with a built-in layer;
//! - the values of block parameters are unknown until a call, so only their declared types
//!   (or, loosely, the types of their defaults) are checked.
//!
//! Missing imports (E0213) and import cycles (E0214) are reported by the
//! [`loader`](super::loader); this check runs only on programs that loaded cleanly.

mod call;
mod error;
mod expr;
mod report;
mod scope;
#[cfg(test)]
mod tests;
mod ty;
mod walk;

use super::ast::{ConstDecl, Item, Module};
use super::builtins;
use super::loader::Program;
use crate::diagnostics::{Diagnostics, FileId, Span};
use error::Error;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use ty::Ty;
use walk::{Owner, Walker};

/// Checks names, arguments and definitions of every module of `program`.
pub fn check(program: &Program) -> Diagnostics {
    let mut cx = Cx::new(program);
    for (i, module) in program.modules.iter().enumerate() {
        if let Some(m) = module {
            cx.check_module(FileId(i as u32), m);
        }
    }
    let mut out = Diagnostics::new();
    for e in cx.errors {
        out.push(e.into_diagnostic());
    }
    out.sort();
    out
}

/// An item seen from some file: where it is defined and its index there.
#[derive(Clone, Copy, Debug)]
struct ItemRef<'p> {
    /// The file that defines it.
    file: FileId,
    /// Its index among that file's items.
    index: usize,
    /// The item.
    item: &'p Item,
}

/// The evaluation state of a constant.
#[derive(Clone, Debug)]
enum ConstSlot {
    /// Being evaluated (a reference now closes a cycle).
    Busy,
    /// Evaluated.
    Done(Ty),
}

/// What the whole check shares: the program, the items visible from each file, the values of
/// constants (each evaluated once, its problems reported once) and the problems found.
struct Cx<'p> {
    /// The program.
    prog: &'p Program,
    /// Per file, the visible items by name (the first definition wins).
    visible: Vec<Option<BTreeMap<&'p str, ItemRef<'p>>>>,
    consts: BTreeMap<(FileId, usize), ConstSlot>,
    const_stack: Vec<(FileId, usize)>,
    /// The problems found so far.
    errors: Vec<Error>,
}

impl<'p> Cx<'p> {
    fn new(prog: &'p Program) -> Cx<'p> {
        Cx {
            prog,
            visible: vec![None; prog.modules.len()],
            consts: BTreeMap::new(),
            const_stack: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Records a problem.
    fn report(&mut self, e: Error) {
        self.errors.push(e);
    }

    /// The items visible from `file`.
    fn visible(&mut self, file: FileId) -> &BTreeMap<&'p str, ItemRef<'p>> {
        let i = file.0 as usize;
        if i >= self.visible.len() {
            self.visible.resize(i + 1, None);
        }
        let prog = self.prog;
        self.visible[i].get_or_insert_with(|| {
            let mut map = BTreeMap::new();
            for (f, item) in prog.visible_items(file) {
                let index = prog
                    .module(f)
                    .and_then(|m| m.items.iter().position(|x| std::ptr::eq(x, item)))
                    .unwrap_or(0);
                map.entry(item.name()).or_insert(ItemRef {
                    file: f,
                    index,
                    item,
                });
            }
            map
        })
    }

    /// The item called `name` visible from `file`.
    fn item(&mut self, file: FileId, name: &str) -> Option<ItemRef<'p>> {
        self.visible(file).get(name).copied()
    }

    /// The names of the visible items of `file` for which `keep` holds.
    fn item_names(&mut self, file: FileId, keep: fn(&Item) -> bool) -> Vec<&'p str> {
        self.visible(file)
            .iter()
            .filter(|(_, r)| keep(r.item))
            .map(|(n, _)| *n)
            .collect()
    }

    /// The source text of `span`, on one line and shortened, for messages.
    fn text(&self, span: Span) -> String {
        let src = &self.prog.sources.get(span.file).text;
        let raw = src.get(span.range()).unwrap_or("");
        let one_line: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 48 {
            let cut: String = one_line.chars().take(45).collect();
            format!("{cut}…")
        } else {
            one_line
        }
    }

    /// The type of the constant `r` (evaluating it on first use); `at` is the reference.
    fn const_ty(&mut self, r: ItemRef<'p>, c: &'p ConstDecl, at: Span) -> Ty {
        let key = (r.file, r.index);
        match self.consts.get(&key) {
            Some(ConstSlot::Done(t)) => return t.clone(),
            Some(ConstSlot::Busy) => {
                let start = self.const_stack.iter().position(|k| *k == key).unwrap_or(0);
                let mut cycle: Vec<String> = self.const_stack[start..]
                    .iter()
                    .filter_map(|(f, i)| self.prog.module(*f)?.items.get(*i))
                    .map(|item| item.name().to_string())
                    .collect();
                cycle.push(c.name.name.clone());
                self.report(Error::Recursive {
                    cycle,
                    span: at,
                    kind: "constant",
                });
                return Ty::Unknown;
            }
            None => {}
        }
        self.consts.insert(key, ConstSlot::Busy);
        self.const_stack.push(key);
        let t = Walker::new(self, r.file, Owner::Const).constant(c);
        self.const_stack.pop();
        self.consts.insert(key, ConstSlot::Done(t.clone()));
        t
    }

    /// Checks one module.
    fn check_module(&mut self, file: FileId, m: &'p Module) {
        self.duplicate_items(m);
        self.import_conflicts(file, m);
        let mut refs: BTreeMap<usize, Vec<(usize, Span)>> = BTreeMap::new();
        for (index, item) in m.items.iter().enumerate() {
            let r = ItemRef { file, index, item };
            match item {
                Item::Use(_) => {}
                Item::Const(c) => {
                    self.const_ty(r, c, c.name.span);
                }
                Item::Block(b) => {
                    refs.insert(index, Walker::new(self, file, Owner::Block(b)).block(b));
                }
                Item::Cell(c) => {
                    refs.insert(index, Walker::new(self, file, Owner::Cell(c)).cell(c));
                }
                Item::Net(n) => {
                    Walker::new(self, file, Owner::Net(n)).net(n);
                }
            }
        }
        self.recursion(m, &refs);
        if m.items.iter().all(|i| matches!(i, Item::Use(_))) {
            self.report(Error::EmptyFile {
                span: Span::new(file, 0, 0),
            });
        }
    }

    /// E0208 within a file, and items named like built-in layers.
    fn duplicate_items(&mut self, m: &'p Module) {
        let mut first: BTreeMap<&str, Span> = BTreeMap::new();
        for item in &m.items {
            let name = match item {
                Item::Use(_) => continue,
                Item::Const(c) => &c.name,
                Item::Block(b) => &b.name,
                Item::Cell(c) => &c.name,
                Item::Net(n) => &n.name,
            };
            if let Some(&f) = first.get(name.name.as_str()) {
                self.report(Error::DuplicateItem {
                    name: name.name.clone(),
                    span: name.span,
                    first: f,
                });
                continue;
            }
            first.insert(&name.name, name.span);
            if !matches!(item, Item::Net(_)) && builtins::lookup(&name.name).is_some() {
                self.report(Error::ShadowsBuiltin {
                    name: name.name.clone(),
                    span: name.span,
                });
            }
        }
    }

    /// E0208 for a name that two imported files define (and this file does not).
    fn import_conflicts(&mut self, file: FileId, m: &'p Module) {
        let prog = self.prog;
        let imports = prog
            .imports
            .get(file.0 as usize)
            .cloned()
            .unwrap_or_default();
        if imports.len() < 2 {
            return;
        }
        let uses = use_spans(prog, file, m, &imports);
        let closures: Vec<Vec<FileId>> = imports.iter().map(|&g| closure(prog, g)).collect();
        let own: Vec<&str> = m.items.iter().map(Item::name).collect();
        let mut seen: BTreeMap<&str, (FileId, Span)> = BTreeMap::new();
        for (f, item) in prog.visible_items(file) {
            if f == file || own.contains(&item.name()) {
                continue;
            }
            let span = item_name_span(item);
            match seen.get(item.name()) {
                None => {
                    seen.insert(item.name(), (f, span));
                }
                Some(&(g, first)) if g != f => {
                    let via = closures.iter().position(|c| c.contains(&f)).unwrap_or(0);
                    let at = uses
                        .get(via)
                        .copied()
                        .flatten()
                        .unwrap_or(Span::new(file, 0, 0));
                    self.report(Error::ImportConflict {
                        name: item.name().to_string(),
                        span: at,
                        first,
                        second: span,
                    });
                }
                Some(_) => {}
            }
        }
    }

    /// E0212 for blocks and cells of one module that call each other in a cycle. `refs` holds,
    /// for each block and cell (by item index), the own-file blocks and cells it refers to.
    fn recursion(&mut self, m: &'p Module, refs: &BTreeMap<usize, Vec<(usize, Span)>>) {
        let n = m.items.len();
        let mut state = vec![0u8; n]; // 0 unvisited, 1 on the stack, 2 done
        let empty = Vec::new();
        for &start in refs.keys() {
            if state[start] != 0 {
                continue;
            }
            state[start] = 1;
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            while let Some(top) = stack.last_mut() {
                let (u, edge) = *top;
                let edges = refs.get(&u).unwrap_or(&empty);
                let Some(&(v, span)) = edges.get(edge) else {
                    state[u] = 2;
                    stack.pop();
                    continue;
                };
                top.1 += 1;
                if v >= n {
                    continue;
                }
                match state[v] {
                    0 => {
                        state[v] = 1;
                        stack.push((v, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(x, _)| *x == v).unwrap_or(0);
                        let mut cycle: Vec<String> = stack[from..]
                            .iter()
                            .map(|(x, _)| m.items[*x].name().to_string())
                            .collect();
                        cycle.push(m.items[v].name().to_string());
                        let kind = if matches!(m.items[v], Item::Cell(_)) {
                            "cell"
                        } else {
                            "block"
                        };
                        self.report(Error::Recursive { cycle, span, kind });
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The span of an item's name.
fn item_name_span(item: &Item) -> Span {
    match item {
        Item::Use(u) => u.path_span,
        Item::Const(c) => c.name.span,
        Item::Block(b) => b.name.span,
        Item::Cell(c) => c.name.span,
        Item::Net(n) => n.name.span,
    }
}

/// Every file reachable from `file` through imports, `file` included.
fn closure(prog: &Program, file: FileId) -> Vec<FileId> {
    let mut out = Vec::new();
    let mut stack = vec![file];
    while let Some(f) = stack.pop() {
        if out.contains(&f) {
            continue;
        }
        out.push(f);
        if let Some(next) = prog.imports.get(f.0 as usize) {
            stack.extend(next.iter().copied());
        }
    }
    out
}

/// For each import of `file` (in the loader's order), the span of the `use` that names it.
fn use_spans(prog: &Program, file: FileId, m: &Module, imports: &[FileId]) -> Vec<Option<Span>> {
    let dir = Path::new(&prog.sources.get(file).name)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    imports
        .iter()
        .map(|&g| {
            let target = normalize(Path::new(&prog.sources.get(g).name));
            m.items.iter().find_map(|i| match i {
                Item::Use(u) if normalize(&dir.join(&u.path)) == target => Some(u.path_span),
                _ => None,
            })
        })
        .collect()
}

/// Lexically normalised path, as the loader names files.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
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
