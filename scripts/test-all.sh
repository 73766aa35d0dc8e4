#!/usr/bin/env bash
# Every test spanlab has, on a fresh clone: the README's test command.
#
#   bash scripts/test-all.sh
#
# Installs, besides the Rust crates cargo fetches itself, the Phoenix OTLP receiver
# (scripts/install-phoenix.sh: a Python venv in .phoenix-venv; needs python3), and the
# Debian packages below (Chromium, chromedriver, Prometheus) with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run for real (CI runs as root), installed when missing:
# - chromium and chromium-driver: cli/tests/browser.rs opens `spanlab html`'s page in
#   headless Chromium;
# - prometheus: the live-metrics test's scraper. Its postinst may start a service; the
#   test starts its own on free ports instead.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v prometheus >/dev/null || missing+=(prometheus)
if ((${#missing[@]})); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# Phoenix, the real OTLP receiver the end-to-end tests export to (a venv in .phoenix-venv).
SPANLAB_PHOENIX="$(bash scripts/install-phoenix.sh)"
export SPANLAB_PHOENIX

echo "== unit, integration and doc tests (the benchmarks run once each as smoke tests)"
cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== the real GPU probes (features cuda, nvml): built, and tested for a clean 'no GPU'"
# cudarc needs its CUDA version chosen by the application; 12.8 here, as the examples do.
CUDARC_CUDA_VERSION=12080 cargo test -p spanlab --features cuda,nvml --lib gpu

echo "== spanlab's optional parts: none at all, then each one alone (unit tests)"
# Each feature is switched in one place; these builds check that nothing else leans
# on it. cudarc needs its CUDA version chosen (12.8, as above).
for features in "" env-filter signals otlp cuda nvml; do
    echo "-- --no-default-features --features '$features'"
    CUDARC_CUDA_VERSION=12080 cargo test -p spanlab --no-default-features --features "$features" --lib --quiet
done

echo "== the examples, in release, with their own assertions"
# training_loop asserts the loss halves; overhead asserts RSS grows <= 8 MB over 10M spans.
SPANLAB_REPORT=off cargo run --release --quiet --example training_loop
# temporary_seed asserts the seeded and restored streams equal plain generators'.
SPANLAB_REPORT=off cargo run --release --quiet --example temporary_seed
# gpu_memory runs on the GPU when there is one, else on the simulated device.
SPANLAB_REPORT=off cargo run --release --quiet --example gpu_memory
# prompt_recorder asserts its three records were kept, and redacted.
SPANLAB_REPORT=off cargo run --release --quiet --example prompt_recorder
cargo run --release --quiet --example overhead
# launcher asserts its 4 worker processes (itself, with RANK etc.) ran and succeeded.
SPANLAB_REPORT=off cargo run --release --quiet --example launcher
# seed_sweep asserts RSS grows <= 8 MB and the JSON report stays under 1 MB over 10^6
# distinct seeds.
cargo run --release --quiet --example seed_sweep
