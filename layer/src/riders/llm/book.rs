//! What the layer keeps of LLM calls: the redacted, capped record of each call; per
//! model, calls, tokens and latency (bounded, however many calls); the last few
//! records for the report; and the JSONL file every record is appended to.
//!
//! Tokens per call are kept as exact histograms, one for prompt and one for response
//! tokens per model, in the report's log-linear layout ([`Histogram`]): counts of
//! integers, here tokens instead of nanoseconds. Up to 511 tokens a bucket is one
//! count, exact; above, a bucket is at most 1/256 of its lower bound wide (a call of
//! 1,000 tokens shares its bucket with 1,001 only), so its midpoint is within 1/512
//! of every token count in it. A histogram lists only non-empty buckets, at most
//! 14,592 of them (all of `u64`), whatever the number of calls: memory is bounded per
//! model. (The models themselves are those the program names; the book does not cap
//! how many.)

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{LlmCall, Message};
use crate::core::stats::{DurationSums, Histogram, LatencyHistogram};
use crate::core::sync::LockUnpoisoned;

/// A redaction hook: text in, text to keep out.
pub(crate) type Redactor = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Default cap on each text of a record (a message's content, the response), bytes.
pub(crate) const DEFAULT_SIZE_CAP: usize = 32 * 1024;

/// Records kept for the report's "recent" list.
pub(crate) const RECENT: usize = 5;

/// One recorded LLM call, redacted and capped: as a recorder collects it, as the JSONL
/// file holds it, and as a report keeps it among its recent records (also a report
/// read back from a file, whose span names it then owns).
///
/// ```
/// use spanlab::llm::{LlmCall, PromptRecord};
/// use tracing_subscriber::prelude::*;
/// let (layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     spanlab::llm::record(LlmCall::new("tiny-1").prompt("hi").response("hello"));
/// });
/// let recent: &PromptRecord = &guard.report().prompts.recent[0];
/// assert_eq!((recent.model.as_str(), recent.response.as_str()), ("tiny-1", "hello"));
/// assert_eq!(recent.prompt_text(), "hi");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PromptRecord {
    /// The model asked.
    pub model: String,
    /// Who serves it, if given.
    pub provider: Option<String>,
    /// The prompt's messages.
    pub messages: Vec<Message>,
    /// The model's answer.
    pub response: String,
    /// Prompt tokens, if given.
    pub input_tokens: Option<u64>,
    /// Response tokens, if given.
    pub output_tokens: Option<u64>,
    /// Why the model stopped, if given.
    pub finish_reason: Option<String>,
    /// How long the call took, if timed, in nanoseconds.
    pub latency_ns: Option<u64>,
    /// Span names from the root to the span that made the call.
    pub span_path: Vec<Cow<'static, str>>,
    /// When it was recorded, ns since the Unix epoch.
    pub unix_nanos: u64,
    /// Some text was cut to the size cap (the cut is marked in the text).
    pub truncated: bool,
}

impl PromptRecord {
    /// The prompt as one string: the messages' contents, one per line.
    pub fn prompt_text(&self) -> String {
        prompt_text(&self.messages)
    }
}

impl std::fmt::Display for PromptRecord {
    /// `[epoch > chat] tiny-1: "prompt" -> "response"`, control characters escaped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.span_path.join(" > ");
        one_line(f, &path, &self.model, &self.messages, &self.response)
    }
}

/// `[path] model: "prompt" -> "response"`, control characters escaped.
fn one_line(
    f: &mut std::fmt::Formatter<'_>,
    path: &str,
    model: &str,
    messages: &[Message],
    response: &str,
) -> std::fmt::Result {
    let path = if path.is_empty() { "-" } else { path };
    write!(
        f,
        "[{path}] {model}: {:?} -> {response:?}",
        prompt_text(messages)
    )
}

/// The prompt as one string: the messages' contents, one per line.
fn prompt_text(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Cuts `text` to at most `cap` bytes on a character boundary, marking the cut.
fn cap_text(text: &mut String, cap: usize) -> bool {
    if text.len() <= cap {
        return false;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("…[truncated {cut} bytes]"));
    true
}

/// Per model: what the report shows.
#[derive(Default)]
struct ModelAgg {
    provider: Option<String>,
    calls: u64,
    input_tokens: u64,
    output_tokens: u64,
    latency: LatencyHistogram,
    /// Tokens per call, of the calls that gave them.
    input_token_histogram: Histogram,
    output_token_histogram: Histogram,
}

/// What recorders collect: the records made beneath their span.
#[derive(Default, Debug)]
pub(crate) struct RecorderSink(Mutex<Vec<PromptRecord>>);

impl RecorderSink {
    pub(crate) fn push(&self, record: PromptRecord) {
        self.0.lock_unpoisoned().push(record);
    }

    pub(crate) fn records(&self) -> Vec<PromptRecord> {
        self.0.lock_unpoisoned().clone()
    }
}

/// The layer's prompt state.
pub(crate) struct PromptBook {
    redact: Option<Redactor>,
    cap: usize,
    models: Mutex<BTreeMap<String, ModelAgg>>,
    recent: Mutex<VecDeque<PromptRecord>>,
    jsonl: Mutex<Option<File>>,
    warnings: Mutex<Vec<String>>,
    /// Recorder spans alive: while 0, a record looks for none.
    pub(crate) recorders: AtomicUsize,
}

impl Default for PromptBook {
    fn default() -> Self {
        PromptBook::new(None, DEFAULT_SIZE_CAP, None)
    }
}

impl PromptBook {
    pub(crate) fn new(redact: Option<Redactor>, cap: usize, jsonl: Option<File>) -> Self {
        PromptBook {
            redact,
            cap,
            models: Mutex::default(),
            recent: Mutex::default(),
            jsonl: Mutex::new(jsonl),
            warnings: Mutex::default(),
            recorders: AtomicUsize::new(0),
        }
    }

    /// The record of `call`: redacted first, then capped, so nothing unredacted is kept.
    pub(crate) fn prepare(
        &self,
        call: LlmCall,
        span_path: Vec<Cow<'static, str>>,
        unix_nanos: u64,
    ) -> PromptRecord {
        let LlmCall {
            model,
            provider,
            mut messages,
            mut response,
            input_tokens,
            output_tokens,
            finish_reason,
            latency_ns,
        } = call;
        if let Some(redact) = &self.redact {
            for m in &mut messages {
                m.content = redact(&m.content);
            }
            response = redact(&response);
        }
        let mut truncated = false;
        for m in &mut messages {
            truncated |= cap_text(&mut m.content, self.cap);
        }
        truncated |= cap_text(&mut response, self.cap);
        PromptRecord {
            model,
            provider,
            messages,
            response,
            input_tokens,
            output_tokens,
            finish_reason,
            latency_ns,
            span_path,
            unix_nanos,
            truncated,
        }
    }

    /// Counts the record, keeps it among the recent ones, and appends it to the JSONL
    /// file (flushed: a crash later loses nothing already recorded).
    pub(crate) fn add(&self, record: &PromptRecord) {
        {
            let mut models = self.models.lock_unpoisoned();
            let m = models.entry(record.model.clone()).or_default();
            m.provider = record.provider.clone().or(m.provider.take());
            m.calls += 1;
            m.input_tokens += record.input_tokens.unwrap_or(0);
            m.output_tokens += record.output_tokens.unwrap_or(0);
            if let Some(ns) = record.latency_ns {
                m.latency.record(ns);
            }
            if let Some(n) = record.input_tokens {
                m.input_token_histogram.record(n);
            }
            if let Some(n) = record.output_tokens {
                m.output_token_histogram.record(n);
            }
        }
        {
            let mut recent = self.recent.lock_unpoisoned();
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(record.clone());
        }
        let mut jsonl = self.jsonl.lock_unpoisoned();
        if let Some(file) = jsonl.as_mut() {
            let mut line = serde_json::to_string(record).expect("a record always serializes");
            line.push('\n');
            if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                *jsonl = None; // stop writing; say so once
                self.warnings.lock_unpoisoned().push(format!(
                    "prompt records are no longer appended to the JSONL file: {e}"
                ));
            }
        }
    }

    /// The report section and the warnings so far.
    pub(crate) fn report(&self) -> (PromptReport, Vec<String>) {
        let models = self.models.lock_unpoisoned();
        let report = PromptReport {
            models: models
                .iter()
                .map(|(model, m)| {
                    let mut stats = ModelStats::from_sums(model.clone(), m.latency.sums());
                    stats.provider = m.provider.clone();
                    (stats.calls, stats.input_tokens, stats.output_tokens) =
                        (m.calls, m.input_tokens, m.output_tokens);
                    stats.input_token_histogram = Some(m.input_token_histogram.clone());
                    stats.output_token_histogram = Some(m.output_token_histogram.clone());
                    stats
                })
                .collect(),
            recent: self.recent.lock_unpoisoned().iter().cloned().collect(),
        };
        (report, self.warnings.lock_unpoisoned().clone())
    }
}

/// The prompts part of a report.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PromptReport {
    /// Per model, by name.
    pub models: Vec<ModelStats>,
    /// The last few records, oldest first.
    pub recent: Vec<PromptRecord>,
}

/// One model's calls.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ModelStats {
    /// The model.
    pub model: String,
    /// Who serves it, as last given.
    pub provider: Option<String>,
    /// Recorded calls.
    pub calls: u64,
    /// Prompt tokens, summed.
    pub input_tokens: u64,
    /// Response tokens, summed.
    pub output_tokens: u64,
    /// Mean latency of the timed calls.
    pub latency_mean: Option<Duration>,
    /// 95th-percentile latency of the timed calls, within
    /// [`QUANTILE_RELATIVE_ERROR`](crate::stats::QUANTILE_RELATIVE_ERROR).
    pub latency_p95: Option<Duration>,
    /// The timed calls' latencies as exact sums, which the two figures above derive
    /// from and reports merge.
    pub latency: DurationSums,
    /// Prompt tokens per call, of the calls that gave them: `input_tokens` is the sum
    /// of its values. In the report's layout ([`Histogram::LAYOUT`]), counting tokens
    /// instead of nanoseconds: exact up to 511 tokens, a bucket at most 1/256 of its
    /// lower bound wide above, so every count in a bucket is within 1/512 of its
    /// midpoint. `None` for a report read from a file written before spanlab kept it,
    /// and for a merge with such a report (its calls are not in any histogram).
    ///
    /// ```
    /// use spanlab::llm::LlmCall;
    /// use tracing_subscriber::prelude::*;
    /// let (layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     for input in [12, 12, 900] {
    ///         spanlab::llm::record(LlmCall::new("tiny-1").tokens(input, 3));
    ///     }
    /// });
    /// let model = &guard.report().prompts.models[0];
    /// let input = model.input_token_histogram.as_ref().unwrap();
    /// let buckets: Vec<_> = input.buckets().collect();
    /// assert_eq!(buckets, [(12..=12, 2), (900..=901, 1)]);
    /// assert_eq!(model.input_tokens, 924);
    /// ```
    pub input_token_histogram: Option<Histogram>,
    /// Response tokens per call, of the calls that gave them: as
    /// [`input_token_histogram`](Self::input_token_histogram), summing to
    /// `output_tokens`.
    pub output_token_histogram: Option<Histogram>,
}

impl ModelStats {
    /// A model with no calls counted yet (empty token histograms), and the latency
    /// figures of `latency`.
    pub(crate) fn from_sums(model: String, latency: DurationSums) -> Self {
        ModelStats {
            model,
            provider: None,
            calls: 0,
            input_tokens: 0,
            output_tokens: 0,
            latency_mean: latency.mean(),
            latency_p95: latency.quantile(0.95),
            latency,
            input_token_histogram: Some(Histogram::default()),
            output_token_histogram: Some(Histogram::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_cuts_on_a_character_boundary_and_marks_the_cut() {
        let mut text = "ééééé".to_string(); // 10 bytes
        assert!(cap_text(&mut text, 5));
        assert_eq!(text, "éé…[truncated 6 bytes]");
        let mut short = "ok".to_string();
        assert!(!cap_text(&mut short, 5));
        assert_eq!(short, "ok");
    }

    #[test]
    fn redaction_comes_before_the_cap() {
        let redact: Redactor = Arc::new(|t: &str| t.replace("secret-token", "[redacted]"));
        let book = PromptBook::new(Some(redact), 20, None);
        let call = LlmCall::new("m")
            .prompt("my secret-token is here")
            .response("ok secret-token");
        let record = book.prepare(call, vec![], 0);
        assert_eq!(
            record.messages[0].content,
            "my [redacted] is her…[truncated 1 bytes]"
        );
        assert_eq!(record.response, "ok [redacted]");
        assert!(record.truncated);
    }
}
