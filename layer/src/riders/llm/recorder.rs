//! [`PromptRecorder`]: a span that collects the LLM calls made beneath it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::book::{PromptRecord, RecorderSink};
use crate::core::sync::LockUnpoisoned;

/// Live recorders by id: how the layer finds a new recorder span's sink.
fn registry() -> &'static Mutex<HashMap<u64, Weak<RecorderSink>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Weak<RecorderSink>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// The sink of recorder `id`, if it is still alive.
pub(crate) fn sink(id: u64) -> Option<Arc<RecorderSink>> {
    registry().lock_unpoisoned().get(&id)?.upgrade()
}

/// Collects every LLM call recorded beneath it — in nested functions, and on other
/// threads or tasks that carry its span (`Span::in_scope`, `.instrument(...)`).
///
/// It is a span (`prompt_recorder`), a child of the span current when it is created, so
/// it shows in reports and traces like any other. A recorder created inside another's
/// scope is nested in it, and each gets the records made beneath it. Without the
/// spanlab layer installed it records nothing.
///
/// ```
/// # use tracing_subscriber::prelude::*;
/// # let (layer, _guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
/// # let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
/// use spanlab::llm::{self, LlmCall, PromptRecorder};
/// let outer = PromptRecorder::new();
/// let inner = outer.in_scope(PromptRecorder::new); // nested: created inside `outer`
/// outer.in_scope(|| {
///     llm::record(LlmCall::new("m").prompt("a").response("1"));
///     inner.in_scope(|| llm::record(LlmCall::new("m").prompt("b").response("2")));
/// });
/// assert_eq!(outer.records().len(), 2);
/// assert_eq!(inner.records().len(), 1);
/// println!("{outer}"); // the transcript
/// ```
pub struct PromptRecorder {
    id: u64,
    span: tracing::Span,
    sink: Arc<RecorderSink>,
}

impl PromptRecorder {
    /// A new recorder: a `prompt_recorder` span, a child of the current span.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let sink = Arc::new(RecorderSink::default());
        registry()
            .lock_unpoisoned()
            .insert(id, Arc::downgrade(&sink));
        let span = tracing::info_span!(target: "spanlab::llm::recorder", "prompt_recorder", spanlab.recorder = id);
        PromptRecorder { id, span, sink }
    }

    /// The recorder's span: enter it, or hand it to other threads and tasks.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Runs `f` inside the recorder (`with recorder:` in Python).
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        self.span.in_scope(f)
    }

    /// Enters the recorder until the guard drops.
    pub fn enter(&self) -> tracing::span::Entered<'_> {
        self.span.enter()
    }

    /// The records made beneath the recorder so far, in the order they were made.
    pub fn records(&self) -> Vec<PromptRecord> {
        self.sink.records()
    }

    /// Writes the records as JSON lines (one record per line), atomically.
    pub fn to_jsonl(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let mut out = String::new();
        for record in self.records() {
            out.push_str(&serde_json::to_string(&record).expect("a record always serializes"));
            out.push('\n');
        }
        crate::files::write_atomically(path.as_ref(), out.as_bytes())
    }
}

impl Default for PromptRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PromptRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptRecorder")
            .field("id", &self.id)
            .field("records", &self.sink.records().len())
            .finish()
    }
}

impl std::fmt::Display for PromptRecorder {
    /// The transcript: each call's prompt and response, numbered.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.records().iter().enumerate() {
            writeln!(f, "#{} {} ({})", i + 1, r.model, r.span_path.join(" > "))?;
            for m in &r.messages {
                writeln!(f, "  {}: {}", m.role, m.content.escape_debug())?;
            }
            writeln!(f, "  response: {}", r.response.escape_debug())?;
        }
        Ok(())
    }
}

impl Drop for PromptRecorder {
    fn drop(&mut self) {
        registry().lock_unpoisoned().remove(&self.id);
    }
}
