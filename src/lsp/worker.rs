//! The checker thread: re-checks documents after edits (debounced), publishes diagnostics,
//! and answers the requests that need an analysis; and the shapes thread, which runs shape
//! inference on each clean check so that a slow one never holds up an answer.
//!
//! The reader loop ([`serve`](super::serve)) never waits for a check: it forwards [`Job`]s
//! here. An edit schedules a check of its document `debounce` after the last edit (opening or
//! saving checks at once); a request about a document with a check still due runs it first,
//! so answers match the text the editor sent. When a document's text changes, the open
//! documents that import it are re-checked too.
//!
//! Each document keeps its latest analysis and the latest one whose text parsed; requests are
//! answered from the latter, so hover, definition and completion keep working while a line is
//! half typed. Checks and handlers run under `catch_unwind`: a bug answers with an error
//! rather than killing the server.

use super::analysis::{self, Analysis, OpenFiles};
use super::incremental::ParseCache;
use super::{completion, definition, hover, inlay, position, publish, symbols, uri};
use lsp_server::{ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{Notification as _, PublishDiagnostics};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest, InlayHintRequest, Request as _,
};
use lsp_types::{
    CompletionParams, CompletionResponse, DocumentSymbolParams, DocumentSymbolResponse,
    GotoDefinitionParams, GotoDefinitionResponse, HoverParams, InlayHintParams,
    PublishDiagnosticsParams, Uri,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Work for the checker thread, sent by the reader loop.
#[derive(Debug)]
pub enum Job {
    /// A document was opened, changed or saved: check it after `delay`.
    Update {
        /// The document.
        uri: Uri,
        /// Its version.
        version: i32,
        /// Its whole text.
        text: Arc<str>,
        /// How long to wait for further edits before checking.
        delay: Duration,
    },
    /// A document was closed: forget it and clear its diagnostics.
    Close {
        /// The document.
        uri: Uri,
    },
    /// A request to answer.
    Request(Request),
    /// Shape inference finished for a version of a document (sent by the shapes thread).
    Shapes {
        /// The document.
        uri: Uri,
        /// Its analysis, now with facts and shape diagnostics.
        analysis: Arc<Analysis>,
    },
    /// The client said `exit`: stop.
    Stop,
}

/// Sends a message to the client.
pub type Send = Box<dyn Fn(Message) + std::marker::Send>;

struct Doc {
    version: i32,
    text: Arc<str>,
    /// The name the loader is given: the file path, or the URI for non-file documents.
    name: String,
    /// The normalised file path, for `file:` documents.
    path: Option<PathBuf>,
    /// When a check is due.
    due: Option<Instant>,
    /// Whether the text changed since the last check (so importers need a re-check).
    changed: bool,
    latest: Option<Arc<Analysis>>,
    good: Option<Arc<Analysis>>,
    /// The pieces of the last parse, for incremental re-parsing.
    cache: ParseCache,
}

/// The checker's state.
pub struct Worker {
    send: Send,
    debounce: Duration,
    docs: BTreeMap<Uri, Doc>,
    /// Where checked analyses go for shape inference (none if its thread could not start:
    /// shape inference then runs on the checker thread).
    shapes: Option<mpsc::Sender<(Uri, Arc<Analysis>)>>,
}

impl Worker {
    /// A worker that talks to the client through `send` and waits `debounce` after edits;
    /// `jobs` is its own job queue, where the shapes thread it starts posts results.
    pub fn new(send: Send, debounce: Duration, jobs: mpsc::Sender<Job>) -> Worker {
        let (tx, rx) = mpsc::channel::<(Uri, Arc<Analysis>)>();
        let shapes = std::thread::Builder::new()
            .name("netc-lsp-shapes".into())
            .stack_size(256 << 20)
            .spawn(move || infer_shapes(&rx, &jobs))
            .ok()
            .map(|_| tx);
        Worker {
            send,
            debounce,
            docs: BTreeMap::new(),
            shapes,
        }
    }

    /// Runs until [`Job::Stop`] (or until every sender is gone).
    pub fn run(mut self, jobs: &Receiver<Job>) {
        loop {
            let job = match self.next_due() {
                Some(due) => {
                    let now = Instant::now();
                    if due <= now {
                        self.check_due();
                        continue;
                    }
                    match jobs.recv_timeout(due - now) {
                        Ok(j) => Some(j),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match jobs.recv() {
                    Ok(j) => Some(j),
                    Err(_) => break,
                },
            };
            match job {
                Some(Job::Stop) => break,
                Some(job) => self.handle(job),
                None => {}
            }
            self.check_due();
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.docs.values().filter_map(|d| d.due).min()
    }

    fn handle(&mut self, job: Job) {
        match job {
            Job::Update {
                uri,
                version,
                text,
                delay,
            } => {
                let due = Instant::now() + delay;
                let doc = self.docs.entry(uri.clone()).or_insert_with(|| {
                    let path = uri::to_path(&uri).map(|p| uri::normalize(&p));
                    // Importers read the file from disk until now: they need a re-check only
                    // if the editor's text differs from it.
                    let on_disk = path.as_ref().and_then(|p| std::fs::read(p).ok());
                    Doc {
                        version,
                        text: Arc::clone(&text),
                        name: path.as_ref().map_or_else(
                            || uri.as_str().to_string(),
                            |p| p.to_string_lossy().into_owned(),
                        ),
                        changed: on_disk.as_deref() != Some(text.as_bytes()),
                        path,
                        due: None,
                        latest: None,
                        good: None,
                        cache: ParseCache::new(),
                    }
                });
                doc.changed |= *doc.text != *text;
                doc.version = version;
                doc.text = text;
                doc.due = Some(due);
            }
            Job::Close { uri } => {
                let closed = self.docs.remove(&uri);
                self.publish(uri, Vec::new(), None);
                // Importers go back to reading the file from disk.
                if let Some(path) = closed.and_then(|d| d.path) {
                    self.schedule_importers(&path);
                }
            }
            Job::Request(req) => {
                let response = self.request(req);
                (self.send)(response.into());
            }
            Job::Shapes { uri, analysis } => self.shaped(uri, analysis),
            // Handled by the loop.
            Job::Stop => {}
        }
    }

    /// Shape inference finished: publish, unless the document changed meanwhile.
    fn shaped(&mut self, uri: Uri, analysis: Arc<Analysis>) {
        let Some(doc) = self.docs.get_mut(&uri) else {
            return;
        };
        let current = doc.latest.as_ref().map(|l| l.version) == Some(analysis.version);
        if !current || doc.due.is_some() {
            return;
        }
        doc.latest = Some(Arc::clone(&analysis));
        doc.good = Some(Arc::clone(&analysis));
        let diagnostics = catch_unwind(AssertUnwindSafe(|| publish::diagnostics(&analysis, &uri)))
            .unwrap_or_default();
        self.publish(uri, diagnostics, Some(analysis.version));
    }

    /// Runs every check that is due.
    fn check_due(&mut self) {
        let now = Instant::now();
        let due: Vec<Uri> = self
            .docs
            .iter()
            .filter(|(_, d)| d.due.is_some_and(|t| t <= now))
            .map(|(u, _)| u.clone())
            .collect();
        for uri in due {
            self.check(&uri);
        }
    }

    /// Checks `uri` now, publishes its diagnostics, and schedules its importers.
    fn check(&mut self, uri: &Uri) {
        let open: OpenFiles = self
            .docs
            .values()
            .filter_map(|d| Some((d.path.clone()?, Arc::clone(&d.text))))
            .collect();
        let Some(doc) = self.docs.get_mut(uri) else {
            return;
        };
        doc.due = None;
        let a = analysis::analyse(&doc.name, doc.version, &doc.text, &open, &mut doc.cache);
        let mut a = Arc::new(a);
        // A clean check goes on to shape inference, on its own thread; its diagnostics are
        // published when that is done, so that a shape error does not blink on every edit.
        let mut deferred = false;
        if a.wants_shapes() {
            match &self.shapes {
                Some(tx) => deferred = tx.send((uri.clone(), Arc::clone(&a))).is_ok(),
                None => a = Arc::new(a.with_shapes()),
            }
        }
        if a.module().is_some() {
            doc.good = Some(Arc::clone(&a));
        }
        doc.latest = Some(Arc::clone(&a));
        let version = doc.version;
        let changed = std::mem::take(&mut doc.changed);
        let path = doc.path.clone();
        if !deferred {
            let diagnostics = catch_unwind(AssertUnwindSafe(|| publish::diagnostics(&a, uri)))
                .unwrap_or_default();
            self.publish(uri.clone(), diagnostics, Some(version));
        }
        if let Some(path) = path.filter(|_| changed) {
            self.schedule_importers(&path);
        }
    }

    /// Schedules a check of every open document whose last check read the file at `path`
    /// as an import.
    fn schedule_importers(&mut self, path: &Path) {
        let due = Instant::now() + self.debounce;
        for d in self.docs.values_mut() {
            let imports = d
                .latest
                .as_ref()
                .is_some_and(|l| l.file_of(path).is_some_and(|f| f != l.program.root));
            if imports && d.due.is_none() {
                d.due = Some(due);
            }
        }
    }

    fn publish(&self, uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>, version: Option<i32>) {
        let params = PublishDiagnosticsParams {
            uri,
            diagnostics,
            version,
        };
        (self.send)(Notification::new(PublishDiagnostics::METHOD.to_string(), params).into());
    }

    /// Answers a request, checking its document first when a check is due.
    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let uri = req
            .params
            .pointer("/textDocument/uri")
            .and_then(|v| serde_json::from_value::<Uri>(v.clone()).ok());
        if let Some(u) = &uri {
            if self.docs.get(u).is_some_and(|d| d.due.is_some()) {
                self.check(u);
            }
        }
        let doc = uri.as_ref().and_then(|u| self.docs.get(u).map(|d| (u, d)));
        let answer = catch_unwind(AssertUnwindSafe(|| dispatch(req, doc)));
        match answer {
            Ok(Ok(value)) => Response {
                id,
                result: Some(value),
                error: None,
            },
            Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
            Err(panic) => Response::new_err(
                id,
                ErrorCode::InternalError as i32,
                format!(
                    "internal error in netc: {}",
                    analysis::panic_message(&*panic)
                ),
            ),
        }
    }
}

/// The shapes thread: runs shape inference on each checked analysis it is sent — only the
/// newest of each document when several are waiting — and posts the result to the checker.
fn infer_shapes(inbox: &mpsc::Receiver<(Uri, Arc<Analysis>)>, checker: &mpsc::Sender<Job>) {
    while let Ok(first) = inbox.recv() {
        // Keyed by the URI's text (a `Uri` caches parts of itself inside).
        let mut waiting: BTreeMap<String, (Uri, Arc<Analysis>)> = BTreeMap::new();
        waiting.insert(first.0.as_str().to_string(), first);
        while let Ok((uri, a)) = inbox.try_recv() {
            waiting.insert(uri.as_str().to_string(), (uri, a));
        }
        for (uri, a) in waiting.into_values() {
            let analysis = Arc::new(a.with_shapes());
            if checker.send(Job::Shapes { uri, analysis }).is_err() {
                return;
            }
        }
    }
}

type Answer = Result<Value, (ErrorCode, String)>;

/// Runs the handler of a request about `doc` (the document it names, when open).
fn dispatch(req: Request, doc: Option<(&Uri, &Doc)>) -> Answer {
    let method = req.method.clone();
    // The analysis requests are answered from the last state whose text parsed.
    let good = doc.and_then(|(_, d)| d.good.as_deref().or(d.latest.as_deref()));
    match method.as_str() {
        HoverRequest::METHOD => {
            let p: HoverParams = params(req)?;
            let pos = p.text_document_position_params.position;
            json(good.and_then(|a| hover::hover(a, a.offset(pos))))
        }
        GotoDefinition::METHOD => {
            let p: GotoDefinitionParams = params(req)?;
            let pos = p.text_document_position_params.position;
            let loc = doc
                .zip(good)
                .and_then(|((u, _), a)| definition::definition(a, u, a.offset(pos)));
            json(loc.map(GotoDefinitionResponse::Scalar))
        }
        Completion::METHOD => {
            let p: CompletionParams = params(req)?;
            let pos = p.text_document_position.position;
            let items = doc.map_or_else(Vec::new, |(_, d)| {
                let offset = position::text_offset(&d.text, pos);
                let path = d.path.as_deref().map(Path::new);
                completion::completion(&d.text, offset, good, path)
            });
            json(CompletionResponse::Array(items))
        }
        DocumentSymbolRequest::METHOD => {
            let _: DocumentSymbolParams = params(req)?;
            let syms = good.map(symbols::symbols).unwrap_or_default();
            json(DocumentSymbolResponse::Nested(syms))
        }
        InlayHintRequest::METHOD => {
            let p: InlayHintParams = params(req)?;
            json(good.map(|a| inlay::hints(a, p.range)).unwrap_or_default())
        }
        _ => Err((
            ErrorCode::MethodNotFound,
            format!("netc lsp does not handle `{method}`"),
        )),
    }
}

fn params<P: serde::de::DeserializeOwned>(req: Request) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(req.params).map_err(|e| {
        (
            ErrorCode::InvalidParams,
            format!("invalid parameters for `{}`: {e}", req.method),
        )
    })
}

fn json(value: impl serde::Serialize) -> Answer {
    serde_json::to_value(value).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}
