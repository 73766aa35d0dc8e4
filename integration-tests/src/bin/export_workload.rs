//! An instrumented program for the OTLP export end-to-end tests (`tests/export_phoenix.rs`):
//! `export_workload MODE`. Export is configured by the `OTEL_*` variables the test sets;
//! the report by `SPANLAB_REPORT_JSON`.
//!
//! * `tree`: a training loop of 3 epochs, each a trace of its own:
//!
//!   ```text
//!   epoch{epoch, loss}      (root: i64 field; f64 `loss` recorded later)
//!   ├── forward             (i64, i64, f64, f64, bool and string fields)
//!   ├── loss                (an INFO event with i64, f64 and bool fields)
//!   ├── backward            (sleeps 2 ms)
//!   ├── validate            (#[instrument(err)]: fails in epoch 2 only)
//!   ├── prefetch            (created here, entered on another thread with in_scope;
//!   │   │                    an event from that thread; closed here)
//!   │   └── decode          (created on that thread; an event)
//!   └── checkpoint          (created here, moved to another thread and entered,
//!                            recorded, given an event and closed there)
//!   ```
//!
//!   then a root `summary` that follows from the last epoch, with two LLM calls in it:
//!   `llm::chat` (exported as `chat tiny-1`, no token counts) and a `rerank` span that
//!   records a call with `llm::record` (token counts and a finish reason). 27 spans in 4
//!   traces. The prompts and responses are the `PROMPT_*` / `REPLY_*` constants below.
//! * `outage [STEPS_PER_SEC]`: spans without end, paced at STEPS_PER_SEC (default 1000)
//!   root spans a second, each with one child `work`. The root span is named after the
//!   phase: `before` at first; every line read from stdin (`during`, `after`) switches
//!   the phase, and `stop` (or the end of stdin) ends the program normally (the guard
//!   flushes and writes the report). Both spans carry the phase as a field, `phase`.
//!   Prints `ready` once the first spans are made, and at every switch `phase NAME
//!   steps=N secs=S rate=R max_step_us=M finished=F exported=E dropped=D failed=X` for
//!   the phase that ended (the export counters as they are at its end), then `switched
//!   NAME`; `stopped` last.
//! * `burst [SPANS [until-retried]]`: SPANS spans (default 12,900: `training_loop`'s
//!   count), made as fast as they come (roots of 43 spans each), then the guard is
//!   dropped. With `until-retried`, the drop waits until export has sent a request
//!   again (at most 60 s): against a receiver that is down, until an attempt has been
//!   refused, as in a run that lasts a while. Prints `dropping the guard` just before
//!   the drop and `guard dropped in NS ns` right after it, timed by this process, which
//!   then exits: what exit costs.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use spanlab::llm::{self, LlmCall};
use tracing::{info, info_span, instrument, Span};

/// The prompt given to `llm::chat`.
const PROMPT_CHAT: &str = "PROMPT-7f3a: what is the loss after three epochs?";
/// `llm::chat`'s response.
const REPLY_CHAT: &str = "REPLY-9c2e: about a sixth";
/// The prompt recorded with `llm::record` in `rerank`.
const PROMPT_RERANK: &str = "PROMPT-51d0: rank these checkpoints";
/// The response recorded with `llm::record` in `rerank`.
const REPLY_RERANK: &str = "REPLY-e8b4: epoch 2 first";

#[instrument]
fn forward(epoch: i64, batch_size: i64, lr: f64, scale: f64, train: bool, model: &str) -> f64 {
    std::hint::black_box((0..1000).fold(lr, |a, b| a + (b as f64) * 1e-9))
}

#[instrument]
fn loss(epoch: i64) -> f64 {
    let value = 0.5 / (epoch + 1) as f64;
    info!(
        step = epoch * 100,
        value,
        converged = epoch == 2,
        "loss computed"
    );
    value
}

#[instrument]
fn backward(epoch: i64) {
    std::thread::sleep(Duration::from_millis(2));
}

#[instrument(err)]
fn validate(epoch: i64) -> Result<(), String> {
    if epoch == 2 {
        Err(format!("loss diverged at epoch {epoch}"))
    } else {
        Ok(())
    }
}

fn tree() {
    let mut last_epoch: Option<Span> = None;
    for epoch in 0..3i64 {
        let span = info_span!("epoch", epoch, loss = tracing::field::Empty);
        let _entered = span.enter();
        forward(epoch, 32, 0.125, 2.0, epoch % 2 == 0, "mlp");
        span.record("loss", loss(epoch));
        backward(epoch);
        let _ = validate(epoch);
        // Created here (a child of `epoch`), entered on another thread.
        let prefetch = info_span!("prefetch", worker = 1_i64, shard = "train-0");
        std::thread::scope(|s| {
            s.spawn(|| {
                prefetch.in_scope(|| {
                    info_span!("decode", bytes = 4096_i64).in_scope(|| {
                        info!(items = 32_i64, "batch decoded");
                    });
                    info!(rows = 128_i64, "prefetched");
                })
            });
        });
        drop(prefetch);
        // Created here, moved to another thread, entered, given a value and closed there.
        let checkpoint = info_span!(
            "checkpoint",
            path = "ckpt.bin",
            bytes = tracing::field::Empty
        );
        std::thread::spawn(move || {
            let _entered = checkpoint.enter();
            checkpoint.record("bytes", 1_i64 << 20);
            info!(kept = true, "checkpoint written");
        })
        .join()
        .expect("the checkpoint thread");
        last_epoch = Some(span.clone());
    }
    let summary = info_span!("summary", epochs = 3_i64);
    if let Some(last) = &last_epoch {
        summary.follows_from(last);
    }
    summary.in_scope(|| {
        let reply = llm::chat("tiny-1", "local", PROMPT_CHAT, |_prompt| {
            REPLY_CHAT.to_string()
        });
        assert_eq!(reply, REPLY_CHAT);
        info_span!("rerank", candidates = 3_i64).in_scope(|| {
            llm::record(
                LlmCall::new("tiny-2")
                    .provider("local")
                    .prompt(PROMPT_RERANK)
                    .response(REPLY_RERANK)
                    .tokens(7, 5)
                    .finish_reason("stop"),
            );
        });
    });
    drop(last_epoch);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Before,
    During,
    After,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::During => "during",
            Phase::After => "after",
        }
    }
}

/// One step: a root span named after the phase (one callsite each), with a child; both
/// carry the phase as a field.
fn step(phase: Phase, n: u64) {
    let span = match phase {
        Phase::Before => info_span!("before", phase = "before", step = n),
        Phase::During => info_span!("during", phase = "during", step = n),
        Phase::After => info_span!("after", phase = "after", step = n),
    };
    let _entered = span.enter();
    info_span!("work", phase = phase.name())
        .in_scope(|| std::hint::black_box((0..200u64).fold(n, u64::wrapping_add)));
}

/// The export counters now, as `finished=F exported=E dropped=D failed=X`. Spans are
/// counted finished, and dropped when the queue is full, by the thread that closes
/// them (this one): the differences between two calls belong to the spans made between.
fn export_counters(guard: &spanlab::Guard) -> String {
    match guard.report().export {
        Some(e) => format!(
            "finished={} exported={} dropped={} failed={}",
            e.finished, e.exported, e.dropped, e.failed
        ),
        None => "export=off".into(),
    }
}

fn outage(guard: &spanlab::Guard, steps_per_sec: f64) {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim().to_string()).is_err() {
                return;
            }
        }
        let _ = tx.send("stop".into()); // end of stdin
    });
    let out = std::io::stdout();
    let say = |line: String| {
        let mut out = out.lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let mut phase = Phase::Before;
    let mut steps = 0u64;
    let mut max_step = Duration::ZERO;
    let mut start = Instant::now();
    // The pacing schedule: never more than 50 ms of catching up, so that a stall shows
    // as a lower rate instead of being made up for by a burst.
    let mut schedule = start;
    let interval = Duration::from_secs_f64(1.0 / steps_per_sec);
    let mut ready = false;
    loop {
        if let Ok(command) = rx.try_recv() {
            let secs = start.elapsed().as_secs_f64();
            say(format!(
                "phase {} steps={steps} secs={secs:.3} rate={:.1} max_step_us={} {}",
                phase.name(),
                steps as f64 / secs,
                max_step.as_micros(),
                export_counters(guard)
            ));
            phase = match command.as_str() {
                "during" => Phase::During,
                "after" => Phase::After,
                "stop" => break,
                other => {
                    eprintln!("export_workload: unknown command {other:?}");
                    std::process::exit(2);
                }
            };
            say(format!("switched {}", phase.name()));
            steps = 0;
            max_step = Duration::ZERO;
            start = Instant::now();
            schedule = start;
        }
        let began = Instant::now();
        step(phase, steps);
        max_step = max_step.max(began.elapsed());
        steps += 1;
        if !ready && steps == 10 {
            say("ready".into());
            ready = true;
        }
        schedule += interval;
        let now = Instant::now();
        if schedule > now {
            std::thread::sleep(schedule - now);
        } else if now - schedule > Duration::from_millis(50) {
            schedule = now;
        }
    }
    say("stopped".into());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let guard = spanlab::init();
    match mode.as_str() {
        "tree" => tree(),
        "outage" => {
            let rate = args
                .next()
                .map(|r| r.parse::<f64>().expect("STEPS_PER_SEC is a number"))
                .unwrap_or(1000.0);
            outage(&guard, rate);
        }
        "burst" => {
            let spans = args
                .next()
                .map(|n| n.parse::<usize>().expect("SPANS is a number"))
                .unwrap_or(12_900);
            let until_retried = match args.next().as_deref() {
                None => false,
                Some("until-retried") => true,
                Some(other) => {
                    eprintln!("export_workload: expected `until-retried`, not {other:?}");
                    std::process::exit(2);
                }
            };
            burst(guard, spans, until_retried);
            return;
        }
        other => {
            eprintln!(
                "export_workload: unknown mode {other:?} (expected `tree`, `outage` or `burst`)"
            );
            std::process::exit(2);
        }
    }
    drop(guard);
}

/// `spans` spans as fast as they come, then the guard's drop, timed; first, with
/// `until_retried`, a wait for export's first retry.
fn burst(guard: spanlab::Guard, spans: usize, until_retried: bool) {
    for _ in 0..spans / 43 {
        let _root = info_span!("step").entered();
        for _ in 0..42 {
            info_span!("part").in_scope(|| ());
        }
    }
    for _ in 0..spans % 43 {
        info_span!("rest").in_scope(|| ());
    }
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while until_retried
        && guard.report().export.is_some_and(|e| e.retries == 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    say("dropping the guard");
    let dropping = Instant::now();
    drop(guard);
    let took = dropping.elapsed();
    say(&format!("guard dropped in {} ns", took.as_nanos()));
}
