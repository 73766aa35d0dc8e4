//! llamabot's `PromptRecorder`, in Rust: the bot records its own calls, and whoever
//! wants them opens a recorder around the code — no handle passed down.
//!
//! ```python
//! recorder = PromptRecorder(); bot = SimpleBot()
//! with recorder:
//!     bot(first_prompt); bot(second_prompt)
//! ```
//!
//! `cargo run --release --example prompt_recorder`. The bot's replies come from a tiny
//! word model driven by `spanlab::rng()` inside a seeded span, so the transcript is the
//! same on every run. The program prints the recorded pairs, writes them as JSON lines,
//! and the report ends with the prompts section.

use rand::RngExt;
use spanlab::llm::{self, LlmCall, PromptRecorder};
use tracing::instrument;

/// A stand-in for a chat model: answers with words drawn from a small vocabulary.
struct SimpleBot {
    system: &'static str,
}

const WORDS: [&str; 12] = [
    "spans", "measure", "the", "loss", "gradient", "epoch", "seeded", "stream", "report", "tokens",
    "nicely", "again",
];

impl SimpleBot {
    /// One call: the "model" runs inside a `chat` span, and the bot records the call —
    /// the one line `autorecord(prompt, response)` is in llamabot.
    fn call(&self, prompt: &str) -> String {
        llm::chat("simple-bot-1", "local", prompt, |prompt| {
            let n = spanlab::rng().random_range(3..8);
            let words: Vec<&str> = (0..n)
                .map(|_| WORDS[spanlab::rng().random_range(0..WORDS.len())])
                .collect();
            format!(
                "{} ({} words in reply to {} characters)",
                words.join(" "),
                n,
                prompt.len()
            )
        })
    }
}

/// The conversation: a seeded scope, so the bot's "model" draws the same words each run.
#[instrument(skip_all, fields(seed = 42))]
fn conversation(bot: &SimpleBot) {
    bot.call("What does spanlab measure?");
    bot.call("And how do I reproduce a run?");
    // A call recorded by hand, with tokens and a finish reason:
    let reply = "Use the replay line at the end of the report.";
    llm::record(
        LlmCall::new("simple-bot-1")
            .provider("local")
            .message("system", bot.system)
            .prompt("Where is the replay line?")
            .response(reply)
            .tokens(9, 10)
            .finish_reason("stop"),
    );
}

fn main() -> std::io::Result<()> {
    let guard = spanlab::SpanLab::builder()
        .redact(|text| text.replace("secret", "[redacted]"))
        .init();
    let bot = SimpleBot {
        system: "You answer in a few words. The secret is 42.",
    };

    let recorder = PromptRecorder::new();
    recorder.in_scope(|| conversation(&bot));

    println!("{recorder}");
    let path = std::env::temp_dir().join("spanlab-prompt-records.jsonl");
    recorder.to_jsonl(&path)?;
    println!(
        "{} records written to {}",
        recorder.records().len(),
        path.display()
    );
    assert_eq!(recorder.records().len(), 3);
    assert!(
        recorder
            .records()
            .iter()
            .all(|r| !r.prompt_text().contains("secret")),
        "redacted before storing"
    );
    drop(guard); // the report, with its prompts section
    Ok(())
}
