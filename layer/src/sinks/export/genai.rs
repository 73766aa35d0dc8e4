//! LLM calls on exported spans: the OpenTelemetry GenAI semantic conventions, plus the
//! OpenInference attributes Phoenix reads.
//!
//! Always exported (no text): `gen_ai.operation.name`, `gen_ai.provider.name`,
//! `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens`,
//! `gen_ai.usage.output_tokens`, `gen_ai.response.finish_reasons`, and
//! `openinference.span.kind = "LLM"` with `llm.model_name`, `llm.provider` and
//! `llm.token_count.*`. Only with content capture on
//! ([`Builder::capture_message_content`](crate::Builder::capture_message_content) or
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`): the messages as
//! `gen_ai.input.messages` / `gen_ai.output.messages` (JSON in the conventions' shape),
//! `input.value` / `output.value`, and an event
//! `gen_ai.client.inference.operation.details` carrying the messages. The text is the
//! record's, so the redaction hook and the size cap have already been applied.

use serde_json::json;

use super::span::{AttrValue, SpanEvent};
use crate::riders::llm::PromptRecord;

/// The name of the event that carries the messages when capture is on.
pub const DETAILS_EVENT: &str = "gen_ai.client.inference.operation.details";

/// The attributes (and, with capture, the details event) for one recorded call.
pub(crate) fn annotations(
    record: &PromptRecord,
    capture: bool,
    ticks: u64,
) -> (Vec<(String, AttrValue)>, Option<SpanEvent>) {
    let mut attrs: Vec<(String, AttrValue)> = Vec::with_capacity(16);
    let mut put = |k: &str, v: AttrValue| attrs.push((k.to_owned(), v));
    let text = |s: &str| AttrValue::str(s);
    let tokens = |n: u64| AttrValue::I64(i64::try_from(n).unwrap_or(i64::MAX));
    put("gen_ai.operation.name", text("chat"));
    put("gen_ai.request.model", text(&record.model));
    put("gen_ai.response.model", text(&record.model));
    put("openinference.span.kind", text("LLM"));
    put("llm.model_name", text(&record.model));
    if let Some(provider) = &record.provider {
        put("gen_ai.provider.name", text(provider));
        put("llm.provider", text(provider));
    }
    if let Some(n) = record.input_tokens {
        put("gen_ai.usage.input_tokens", tokens(n));
        put("llm.token_count.prompt", tokens(n));
    }
    if let Some(n) = record.output_tokens {
        put("gen_ai.usage.output_tokens", tokens(n));
        put("llm.token_count.completion", tokens(n));
    }
    if let (Some(i), Some(o)) = (record.input_tokens, record.output_tokens) {
        put("llm.token_count.total", tokens(i.saturating_add(o)));
    }
    if let Some(reason) = &record.finish_reason {
        put(
            "gen_ai.response.finish_reasons",
            AttrValue::StrArray(Box::new(vec![reason.clone()])),
        );
    }
    if !capture {
        return (attrs, None);
    }
    let input = json!(record
        .messages
        .iter()
        .map(|m| json!({"role": m.role, "parts": [{"type": "text", "content": m.content}]}))
        .collect::<Vec<_>>())
    .to_string();
    let mut output_message = json!({
        "role": "assistant",
        "parts": [{"type": "text", "content": record.response}],
    });
    if let Some(reason) = &record.finish_reason {
        output_message["finish_reason"] = json!(reason);
    }
    let output = json!([output_message]).to_string();
    put("gen_ai.input.messages", text(&input));
    put("gen_ai.output.messages", text(&output));
    put("input.value", text(&record.prompt_text()));
    put("input.mime_type", text("text/plain"));
    put("output.value", text(&record.response));
    put("output.mime_type", text("text/plain"));
    let event = SpanEvent {
        name: DETAILS_EVENT.to_owned(),
        ticks,
        attributes: vec![
            ("gen_ai.operation.name".into(), text("chat")),
            ("gen_ai.request.model".into(), text(&record.model)),
            ("gen_ai.input.messages".into(), AttrValue::str(input)),
            ("gen_ai.output.messages".into(), AttrValue::str(output)),
        ],
    };
    (attrs, Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::riders::llm::Message;

    fn record() -> PromptRecord {
        PromptRecord {
            model: "tiny-1".into(),
            provider: Some("local".into()),
            messages: vec![Message {
                role: "user".into(),
                content: "say \"hi\"".into(),
            }],
            response: "hi".into(),
            input_tokens: Some(3),
            output_tokens: Some(1),
            finish_reason: Some("stop".into()),
            latency_ns: None,
            span_path: vec!["chat".into()],
            unix_nanos: 0,
            truncated: false,
        }
    }

    fn get<'a>(attrs: &'a [(String, AttrValue)], key: &str) -> Option<&'a AttrValue> {
        attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    #[test]
    fn without_capture_no_text_leaves() {
        let (attrs, event) = annotations(&record(), false, 0);
        assert!(event.is_none());
        assert_eq!(
            get(&attrs, "gen_ai.usage.input_tokens"),
            Some(&AttrValue::I64(3))
        );
        assert_eq!(
            get(&attrs, "gen_ai.provider.name"),
            Some(&AttrValue::str("local"))
        );
        assert_eq!(
            get(&attrs, "gen_ai.response.finish_reasons"),
            Some(&AttrValue::StrArray(Box::new(vec!["stop".into()])))
        );
        for (k, v) in &attrs {
            if let AttrValue::Str(s) = v {
                assert!(!s.contains("hi"), "{k} carries text: {s}");
            }
        }
    }

    #[test]
    fn with_capture_messages_follow_the_conventions_shape() {
        let (attrs, event) = annotations(&record(), true, 5);
        let Some(AttrValue::Str(input)) = get(&attrs, "gen_ai.input.messages") else {
            panic!("no input messages");
        };
        let input: serde_json::Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            input,
            json!([{"role": "user", "parts": [{"type": "text", "content": "say \"hi\""}]}])
        );
        let Some(AttrValue::Str(output)) = get(&attrs, "gen_ai.output.messages") else {
            panic!("no output messages");
        };
        let output: serde_json::Value = serde_json::from_str(output).unwrap();
        assert_eq!(output[0]["finish_reason"], "stop");
        assert_eq!(output[0]["parts"][0]["content"], "hi");
        assert_eq!(
            get(&attrs, "input.value"),
            Some(&AttrValue::str("say \"hi\""))
        );
        assert_eq!(get(&attrs, "output.value"), Some(&AttrValue::str("hi")));
        let event = event.expect("details event");
        assert_eq!(event.name, DETAILS_EVENT);
        assert_eq!(event.ticks, 5);
    }
}
