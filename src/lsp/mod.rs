//! `netc lsp`: the language server. It speaks the Language Server Protocol over stdio and
//! shows netc's diagnostics where they are made, while the user types.
//!
//! # Threads
//! - The **reader loop** ([`serve`]) takes messages from the client in order. It keeps the open
//!   documents' text ([`documents`]), applying incremental edits as they come, and forwards
//!   a snapshot of each new text, and every request, to the checker. It never runs a check.
//! - The **checker** ([`worker`]), on a thread with a large stack, re-checks a document 150 ms
//!   after its last edit (at once on open and save), publishes its diagnostics, and answers
//!   requests from the document's last analysis whose text parsed.
//! - The **shapes** thread runs shape inference on each clean check and hands the result
//!   (layer facts, shape diagnostics) back to the checker, which publishes it if the
//!   document has not changed meanwhile.
//! - lsp-server's own threads read stdin and write stdout.
//!
//! # What a check is
//! The same pipeline as `netc check` ([`crate::check_program`]) on the editor's text, with open
//! documents overlaying the files on disk for imports ([`analysis`]), then shape inference
//! ([`facts`]). The document itself is parsed [`incremental`]ly: an edit re-parses only the
//! top-level items it touches. Diagnostics convert in [`publish`]: UTF-16 ranges ([`position`]), secondary
//! labels as related information, problems of imported files shown on their `use`.
//!
//! # Features
//! [`hover`] (signatures, doc comments, parameters, and shapes/params/MACs from [`facts`]),
//! [`definition`] (blocks, cells, constants and locals, across `use`; the imported file of a
//! `use`), [`completion`] (layers, blocks, argument names, symbols, `use` paths),
//! [`symbols`] (the outline), [`inlay`] (output shapes after layers). All of them find names
//! through one AST walk, [`index`].

pub mod analysis;
pub mod completion;
pub mod definition;
pub mod documents;
pub mod facts;
pub mod hover;
pub mod incremental;
pub mod index;
pub mod inlay;
pub mod position;
pub mod publish;
pub mod symbols;
pub mod uri;
pub mod worker;

use documents::Documents;
use lsp_server::{Connection, ErrorCode, Message, Notification, ProtocolError, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    Notification as _,
};
use lsp_types::{
    CompletionOptions, DidChangeTextDocumentParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, DidSaveTextDocumentParams, HoverProviderCapability, OneOf,
    PositionEncodingKind, SaveOptions, ServerCapabilities, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions,
};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use worker::{Job, Worker};

/// How the server behaves.
#[derive(Clone, Copy, Debug)]
pub struct ServerOptions {
    /// How long after the last edit a document is re-checked.
    pub debounce: Duration,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            debounce: Duration::from_millis(150),
        }
    }
}

/// Why the server stopped without an `exit`: the connection broke or a thread failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError(pub String);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

impl From<ProtocolError> for ServerError {
    fn from(e: ProtocolError) -> ServerError {
        ServerError(e.to_string())
    }
}

/// Serves one client over stdio until it says `exit`; returns the process exit code (0 after
/// an orderly `shutdown`, 1 otherwise, as the protocol asks).
pub fn run_stdio() -> Result<i32, ServerError> {
    let (connection, io_threads) = Connection::stdio();
    let code = serve(&connection, ServerOptions::default())?;
    drop(connection);
    io_threads
        .join()
        .map_err(|e| ServerError(format!("stdio failed: {e}")))?;
    Ok(code)
}

/// The capabilities announced in the `initialize` answer.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                will_save: None,
                will_save_wait_until: None,
                save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                    include_text: Some(false),
                })),
            },
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(["(", ",", ">", "\"", ":"].map(String::from).to_vec()),
            ..CompletionOptions::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        inlay_hint_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Serves the client at the other end of `connection`: the handshake, then the reader loop,
/// until `exit`. Returns the exit code (see [`run_stdio`]).
pub fn serve(connection: &Connection, options: ServerOptions) -> Result<i32, ServerError> {
    let (id, _params) = connection.initialize_start()?;
    let init = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": { "name": "netc", "version": env!("CARGO_PKG_VERSION") },
    });
    connection.initialize_finish(id, init)?;

    let (jobs, inbox) = mpsc::channel::<Job>();
    let out = connection.sender.clone();
    let send: worker::Send = Box::new(move |m| {
        // A closed channel means the client is gone; the reader loop ends on its own then.
        let _ = out.send(m);
    });
    let checker = Worker::new(send, options.debounce, jobs.clone());
    let handle = std::thread::Builder::new()
        .name("netc-lsp-check".into())
        .stack_size(256 << 20)
        .spawn(move || checker.run(&inbox))
        .map_err(|e| ServerError(format!("cannot start the checker thread: {e}")))?;

    let mut docs = Documents::new();
    let mut shutting_down = false;
    let mut code = 1;
    for msg in &connection.receiver {
        match msg {
            Message::Request(req) if req.method == "shutdown" => {
                shutting_down = true;
                let _ = connection.sender.send(Response::new_ok(req.id, ()).into());
            }
            Message::Request(req) if shutting_down => {
                let message = "the server is shutting down".to_string();
                let err = Response::new_err(req.id, ErrorCode::InvalidRequest as i32, message);
                let _ = connection.sender.send(err.into());
            }
            Message::Request(req) => {
                if let Err(mpsc::SendError(Job::Request(req))) = jobs.send(Job::Request(req)) {
                    // The checker is gone (it cannot be, short of a bug): answer, never hang.
                    let message = "netc's checker thread stopped".to_string();
                    let code = ErrorCode::InternalError as i32;
                    let _ = connection
                        .sender
                        .send(Response::new_err(req.id, code, message).into());
                }
            }
            Message::Notification(n) if n.method == "exit" => {
                code = if shutting_down { 0 } else { 1 };
                break;
            }
            Message::Notification(n) => {
                if let Some(job) = document_job(&mut docs, n, options) {
                    let _ = jobs.send(job);
                }
            }
            Message::Response(_) => {}
        }
    }
    let _ = jobs.send(Job::Stop);
    // A panic in the checker was already reported on stderr.
    let _ = handle.join();
    Ok(code)
}

/// Applies a document notification to `docs` and says what the checker must do about it.
fn document_job(docs: &mut Documents, n: Notification, options: ServerOptions) -> Option<Job> {
    let update = |uri, doc: &documents::Document, delay| Job::Update {
        uri,
        version: doc.version,
        text: Arc::clone(&doc.text),
        delay,
    };
    match n.method.as_str() {
        DidOpenTextDocument::METHOD => {
            let p: DidOpenTextDocumentParams = serde_json::from_value(n.params).ok()?;
            let d = p.text_document;
            let doc = docs.open(d.uri.clone(), d.version, d.text);
            Some(update(d.uri, doc, Duration::ZERO))
        }
        DidChangeTextDocument::METHOD => {
            let p: DidChangeTextDocumentParams = serde_json::from_value(n.params).ok()?;
            let d = p.text_document;
            let doc = docs.change(&d.uri, d.version, p.content_changes)?;
            Some(update(d.uri, doc, options.debounce))
        }
        DidSaveTextDocument::METHOD => {
            let p: DidSaveTextDocumentParams = serde_json::from_value(n.params).ok()?;
            let uri = p.text_document.uri;
            let doc = docs.get(&uri)?;
            Some(update(uri, doc, Duration::ZERO))
        }
        DidCloseTextDocument::METHOD => {
            let p: DidCloseTextDocumentParams = serde_json::from_value(n.params).ok()?;
            docs.close(&p.text_document.uri);
            Some(Job::Close {
                uri: p.text_document.uri,
            })
        }
        _ => None,
    }
}
