//! A training loop timed phase by phase: the example spanlab is made for.
//!
//! A small multi-layer perceptron (32 inputs, 128 tanh units, 1 output) learns a
//! synthetic regression problem on the CPU with plain mini-batch SGD. Each phase of a
//! training step is an ordinary function with `#[tracing::instrument]`, called inside
//! the span of its epoch, so spanlab sees exactly these paths:
//!
//! ```text
//! epoch
//! epoch > forward
//! epoch > loss
//! epoch > backward
//! epoch > update
//! ```
//!
//! `spanlab::init()` installs the layer and returns a guard; when the guard drops at
//! the end of `main`, the report (calls, total, mean, std, min, p50/p95/p99, max and
//! self time per path) is printed on stderr. Before that, the example reads one path
//! from the live profile, as a program would to log or check its own timings.
//!
//! ```text
//! cargo run --release --example training_loop
//! SPANLAB_REPORT_JSON=report.json cargo run --release --example training_loop  # also write JSON
//! ```
//!
//! `TRAINING_LOOP_SLOW_BACKWARD_US=N` makes every `backward` call N microseconds slower
//! (a busy wait, so the time is the span's own): a deliberate regression to compare two
//! runs with `spanlab diff` (see the README's "After the run"). A value that is not a
//! whole number is reported on stderr and ignored.
//!
//! The example checks its own arithmetic: it fails if the final loss is not below half
//! the loss of the first epoch.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use spanlab::SeededRng;
use tracing::instrument;

const INPUTS: usize = 32;
const HIDDEN: usize = 128;
const SAMPLES: usize = 2048;
const BATCH: usize = 64;
const EPOCHS: usize = 100;
const LEARNING_RATE: f32 = 0.05;

fn main() {
    // Keep the guard to the end of `main`: dropping it prints the report.
    let guard = spanlab::init();

    // spanlab's seedable generator: every run trains on the same data.
    let mut rng = SeededRng::seed_from_u64(0x5eed);
    let data = Dataset::synthetic(&mut rng);
    let mut model = Mlp::random(&mut rng);
    let mut work = Workspace::new();
    let mut order: Vec<usize> = (0..SAMPLES).collect();

    println!(
        "training a {INPUTS}-{HIDDEN}-1 MLP on {SAMPLES} samples: \
         {EPOCHS} epochs of {} mini-batches of {BATCH}",
        SAMPLES / BATCH
    );
    let mut losses = Vec::with_capacity(EPOCHS);
    for epoch in 0..EPOCHS {
        let loss = train_epoch(epoch, &mut model, &data, &mut order, &mut work, &mut rng);
        if epoch % 20 == 0 || epoch == EPOCHS - 1 {
            println!("epoch {epoch:>3}  loss {loss:.4}");
        }
        losses.push(loss);
    }
    let (initial, last) = (losses[0], losses[EPOCHS - 1]);
    println!(
        "loss {initial:.4} -> {last:.4} ({:.0}x lower)",
        initial / last
    );
    assert!(
        last < initial / 2.0,
        "training did not converge: loss {initial} -> {last}"
    );

    // The live profile can be read at any time, not only in the final report.
    let fwd = guard.profile().get("epoch > forward").unwrap();
    println!(
        "epoch > forward: {} calls, mean {:.1?} (read from the live profile)",
        fwd.calls, fwd.mean
    );
}

/// One pass over the shuffled data set; returns the mean mini-batch loss.
#[instrument(name = "epoch", skip_all, fields(epoch = epoch))]
fn train_epoch(
    epoch: usize,
    model: &mut Mlp,
    data: &Dataset,
    order: &mut [usize],
    work: &mut Workspace,
    rng: &mut SeededRng,
) -> f32 {
    order.shuffle(rng);
    let mut total_loss = 0.0;
    for batch in order.chunks_exact(BATCH) {
        // Copying the batch into contiguous buffers is data loading: it shows up as
        // the epoch's self time, not inside any of the four phases.
        for (row, &i) in batch.iter().enumerate() {
            work.x[row * INPUTS..(row + 1) * INPUTS].copy_from_slice(data.input(i));
            work.y[row] = data.y[i];
        }
        forward(model, &work.x, &mut work.hidden, &mut work.output);
        total_loss += loss(&work.output, &work.y, &mut work.d_output);
        backward(
            model,
            &work.x,
            &work.hidden,
            &work.d_output,
            &mut work.grads,
        );
        update(model, &work.grads, LEARNING_RATE);
    }
    total_loss / (order.len() / BATCH) as f32
}

/// `hidden = tanh(W1 x + b1)`, `output = w2 · hidden + b2`, for every row of the batch.
#[instrument(skip_all)]
fn forward(model: &Mlp, x: &[f32], hidden: &mut [f32], output: &mut [f32]) {
    let rows = x.chunks_exact(INPUTS).zip(hidden.chunks_exact_mut(HIDDEN));
    for ((x, hidden), out) in rows.zip(output.iter_mut()) {
        for ((h, w), b) in hidden
            .iter_mut()
            .zip(model.w1.chunks_exact(INPUTS))
            .zip(&model.b1)
        {
            *h = (b + dot(w, x)).tanh();
        }
        *out = model.b2 + dot(&model.w2, hidden);
    }
}

/// Mean squared error, and its gradient with respect to each output.
#[instrument(skip_all)]
fn loss(output: &[f32], target: &[f32], d_output: &mut [f32]) -> f32 {
    let n = output.len() as f32;
    let mut sum = 0.0;
    for ((o, t), d) in output.iter().zip(target).zip(d_output.iter_mut()) {
        let err = o - t;
        sum += err * err;
        *d = 2.0 * err / n;
    }
    sum / n
}

/// Backpropagation: the gradient of the loss with respect to every parameter.
#[instrument(skip_all)]
fn backward(model: &Mlp, x: &[f32], hidden: &[f32], d_output: &[f32], grads: &mut Mlp) {
    slow_down(slow_backward());
    grads.fill_zero();
    let rows = x.chunks_exact(INPUTS).zip(hidden.chunks_exact(HIDDEN));
    for ((x, hidden), &d_out) in rows.zip(d_output) {
        grads.b2 += d_out;
        for (j, &h) in hidden.iter().enumerate() {
            grads.w2[j] += d_out * h;
            // The hidden layer's pre-activation gradient; tanh'(z) = 1 - tanh(z)².
            let d_z = d_out * model.w2[j] * (1.0 - h * h);
            grads.b1[j] += d_z;
            axpy(d_z, x, &mut grads.w1[j * INPUTS..(j + 1) * INPUTS]);
        }
    }
}

/// One plain SGD step: `θ -= learning_rate · ∇θ`.
#[instrument(skip_all)]
fn update(model: &mut Mlp, grads: &Mlp, learning_rate: f32) {
    axpy(-learning_rate, &grads.w1, &mut model.w1);
    axpy(-learning_rate, &grads.b1, &mut model.b1);
    axpy(-learning_rate, &grads.w2, &mut model.w2);
    model.b2 -= learning_rate * grads.b2;
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// `y += a · x`.
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// The network's parameters (also used, same shapes, for their gradients).
struct Mlp {
    /// `HIDDEN` rows of `INPUTS` weights, row-major.
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: f32,
}

impl Mlp {
    fn zeros() -> Self {
        Mlp {
            w1: vec![0.0; HIDDEN * INPUTS],
            b1: vec![0.0; HIDDEN],
            w2: vec![0.0; HIDDEN],
            b2: 0.0,
        }
    }

    /// Glorot-uniform weights, zero biases: keeps tanh out of saturation at the start.
    fn random(rng: &mut SeededRng) -> Self {
        let mut model = Mlp::zeros();
        let limit1 = (6.0 / (INPUTS + HIDDEN) as f32).sqrt();
        let limit2 = (6.0 / (HIDDEN + 1) as f32).sqrt();
        model
            .w1
            .iter_mut()
            .for_each(|w| *w = limit1 * rng.random_range(-1.0f32..1.0));
        model
            .w2
            .iter_mut()
            .for_each(|w| *w = limit2 * rng.random_range(-1.0f32..1.0));
        model
    }

    fn fill_zero(&mut self) {
        self.w1.fill(0.0);
        self.b1.fill(0.0);
        self.w2.fill(0.0);
        self.b2 = 0.0;
    }
}

/// `y = f(a · x) + noise` for a fixed random direction `a`, where `f` is linear plus a
/// sine: smooth enough for the tanh layer to fit, not something a linear model could.
struct Dataset {
    /// `SAMPLES` rows of `INPUTS` features, row-major.
    x: Vec<f32>,
    y: Vec<f32>,
}

impl Dataset {
    fn synthetic(rng: &mut SeededRng) -> Self {
        let direction: Vec<f32> = (0..INPUTS)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let x: Vec<f32> = (0..SAMPLES * INPUTS)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let y = x
            .chunks_exact(INPUTS)
            .map(|x| {
                let t = 0.5 * dot(&direction, x);
                t + 0.5 * (2.0 * t).sin() + 0.05 * rng.random_range(-1.0f32..1.0)
            })
            .collect();
        Dataset { x, y }
    }

    fn input(&self, i: usize) -> &[f32] {
        &self.x[i * INPUTS..(i + 1) * INPUTS]
    }
}

/// Buffers for one mini-batch, allocated once so that the timed phases measure
/// arithmetic, not the allocator.
struct Workspace {
    x: Vec<f32>,
    y: Vec<f32>,
    hidden: Vec<f32>,
    output: Vec<f32>,
    d_output: Vec<f32>,
    grads: Mlp,
}

impl Workspace {
    fn new() -> Self {
        Workspace {
            x: vec![0.0; BATCH * INPUTS],
            y: vec![0.0; BATCH],
            hidden: vec![0.0; BATCH * HIDDEN],
            output: vec![0.0; BATCH],
            d_output: vec![0.0; BATCH],
            grads: Mlp::zeros(),
        }
    }
}

/// The deliberate slowdown of `backward` (`TRAINING_LOOP_SLOW_BACKWARD_US`), read once.
fn slow_backward() -> std::time::Duration {
    static SLOW: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *SLOW.get_or_init(|| {
        let Ok(text) = std::env::var("TRAINING_LOOP_SLOW_BACKWARD_US") else {
            return std::time::Duration::ZERO;
        };
        match text.trim().parse::<u64>() {
            Ok(us) => std::time::Duration::from_micros(us),
            Err(_) => {
                eprintln!(
                    "TRAINING_LOOP_SLOW_BACKWARD_US={text:?} is not a whole number of \
                     microseconds; no slowdown"
                );
                std::time::Duration::ZERO
            }
        }
    })
}

/// Waits `d` on the CPU (not asleep: the time stays inside the caller's span, as a
/// slower computation's would).
fn slow_down(d: std::time::Duration) {
    if d.is_zero() {
        return;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}
