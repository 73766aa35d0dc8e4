//! Prompt/response records of LLM calls, on the spans that make them.
//!
//! The Rust version of llamabot's `PromptRecorder` and `autorecord`. Code that calls a
//! model records the call with one line, and whoever wants the records opens a
//! [`PromptRecorder`] around that code — no handle is passed down, because the span
//! tree is the context:
//!
//! ```
//! use spanlab::llm::{self, LlmCall, PromptRecorder};
//! use tracing_subscriber::prelude::*;
//!
//! fn bot(prompt: &str) -> String {
//!     let reply = format!("you said: {prompt}");
//!     llm::record(LlmCall::new("tiny-1").prompt(prompt).response(&reply).tokens(3, 4)); // autorecord
//!     reply
//! }
//!
//! let (layer, _guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
//!     let recorder = PromptRecorder::new();
//!     recorder.in_scope(|| {
//!         bot("hello");
//!         bot("how are you?");
//!     });
//!     let records = recorder.records();
//!     assert_eq!(records.len(), 2);
//!     assert_eq!(records[1].response, "you said: how are you?");
//! });
//! ```
//!
//! A record is also a tracing event (target `spanlab::llm`, with the model, provider
//! and token counts as fields — never the text), so `fmt` and other layers see the call
//! happen. The text reaches spanlab alone, which applies the redaction hook and the size
//! cap ([`Builder::redact`](crate::Builder::redact),
//! [`Builder::prompt_size_cap`](crate::Builder::prompt_size_cap)) before it stores,
//! writes (`SPANLAB_PROMPTS_JSONL`, flushed per record) or reports anything. Every
//! recorder above the span that makes the call gets the record: nested recorders each
//! get theirs, on any thread or task that carries their span.

mod book;
mod recorder;
pub(crate) mod rider;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use book::PromptRecord;
pub use book::{ModelStats, PromptReport};
pub(crate) use book::{PromptBook, RecorderSink, Redactor, DEFAULT_SIZE_CAP, RECENT};
pub(crate) use recorder::sink as recorder_sink;
pub use recorder::PromptRecorder;

/// One message of a prompt: a role (`system`, `user`, `assistant`, ...) and its text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: String,
    /// What is said.
    pub content: String,
}

/// One LLM call, as the code that made it describes it. Built with its methods:
///
/// ```
/// use spanlab::llm::LlmCall;
/// let call = LlmCall::new("gpt-4o")
///     .provider("openai")
///     .message("system", "Be brief.")
///     .prompt("What is 2 + 2?")
///     .response("4")
///     .tokens(12, 1)
///     .finish_reason("stop");
/// # let _ = call;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmCall {
    pub(crate) model: String,
    pub(crate) provider: Option<String>,
    pub(crate) messages: Vec<Message>,
    pub(crate) response: String,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) finish_reason: Option<String>,
    pub(crate) latency_ns: Option<u64>,
}

impl LlmCall {
    /// A call to `model`.
    pub fn new(model: impl Into<String>) -> Self {
        LlmCall {
            model: model.into(),
            ..LlmCall::default()
        }
    }

    /// Who serves the model (`openai`, `anthropic`, `local`, ...).
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Adds a message with this role.
    pub fn message(mut self, role: impl Into<String>, content: impl Into<String>) -> Self {
        self.messages.push(Message {
            role: role.into(),
            content: content.into(),
        });
        self
    }

    /// Adds a `user` message: the plain-text prompt.
    pub fn prompt(self, text: impl Into<String>) -> Self {
        self.message("user", text)
    }

    /// Adds a `user` message from bytes that may not be UTF-8 (invalid sequences become
    /// U+FFFD instead of failing).
    pub fn prompt_bytes(self, bytes: &[u8]) -> Self {
        self.prompt(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The model's answer.
    pub fn response(mut self, text: impl Into<String>) -> Self {
        self.response = text.into();
        self
    }

    /// Tokens in the prompt and in the response.
    pub fn tokens(mut self, input: u64, output: u64) -> Self {
        self.input_tokens = Some(input);
        self.output_tokens = Some(output);
        self
    }

    /// Why the model stopped (`stop`, `length`, ...).
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }

    /// How long the call took, when the caller timed it ([`chat`] does).
    pub fn latency(mut self, latency: std::time::Duration) -> Self {
        self.latency_ns = Some(latency.as_nanos().min(u64::MAX as u128) as u64);
        self
    }
}

std::thread_local! {
    /// The call being recorded on this thread, between `record` and the layer's
    /// `on_event`: the text travels here, not in event fields.
    static PENDING: RefCell<Option<LlmCall>> = const { RefCell::new(None) };
}

/// The metadata address of `record`'s event callsite, once seen: from then on the layer
/// recognises record events with one comparison.
static RECORD_CALLSITE: AtomicUsize = AtomicUsize::new(0);

/// The target of record events.
pub(crate) const TARGET: &str = "spanlab::llm";

/// Whether `meta` is the record event's callsite.
#[inline]
pub(crate) fn is_record_event(meta: &tracing_core::Metadata<'_>) -> bool {
    let known = RECORD_CALLSITE.load(Ordering::Relaxed);
    if known != 0 {
        return known == meta as *const _ as usize;
    }
    // Before the first record: compare the target (the length first: almost every other
    // event stops there), and remember the callsite.
    let ours = meta.target().len() == TARGET.len() && meta.target() == TARGET;
    if ours {
        RECORD_CALLSITE.store(meta as *const _ as usize, Ordering::Relaxed);
    }
    ours
}

/// The call being recorded on this thread, for the layer.
pub(crate) fn take_pending() -> Option<LlmCall> {
    PENDING.with(|p| p.borrow_mut().take())
}

/// Records one LLM call in the current span: an event for every layer, the full record
/// for spanlab (and every [`PromptRecorder`] above this span).
pub fn record(call: LlmCall) {
    // What the call did not say stays out of the event (`None` fields are not recorded),
    // rather than reading as a 0 or an empty provider.
    let (model, provider) = (call.model.clone(), call.provider.clone());
    let (input, output) = (call.input_tokens, call.output_tokens);
    PENDING.with(|p| *p.borrow_mut() = Some(call));
    tracing::event!(
        target: "spanlab::llm",
        tracing::Level::INFO,
        gen_ai.operation.name = "chat",
        gen_ai.request.model = %model,
        gen_ai.provider.name = provider.as_deref(),
        gen_ai.usage.input_tokens = input,
        gen_ai.usage.output_tokens = output,
        "llm call"
    );
    // No spanlab layer took it (none installed, or filtered out): do not keep it.
    PENDING.with(|p| p.borrow_mut().take());
}

/// Makes the call its own span (`chat`, with `gen_ai.request.model`), times it, and
/// records it with the response `call` returns.
///
/// ```
/// let reply = spanlab::llm::chat("tiny-1", "local", "hello", |prompt| format!("{prompt}!"));
/// assert_eq!(reply, "hello!");
/// ```
pub fn chat(
    model: &str,
    provider: &str,
    prompt: &str,
    call: impl FnOnce(&str) -> String,
) -> String {
    let span = tracing::info_span!(
        target: TARGET,
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = model
    );
    span.in_scope(|| {
        let started = std::time::Instant::now();
        let response = call(prompt);
        let latency = started.elapsed();
        record(
            LlmCall::new(model)
                .provider(provider)
                .prompt(prompt)
                .response(response.clone())
                .latency(latency),
        );
        response
    })
}

#[cfg(test)]
mod tests;
