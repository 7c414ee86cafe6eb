#!/usr/bin/env bash
# Bounded fuzzing of the parsers and encoders (src/fuzz_tests.rs and the server's
# fuzz_ test): proptest property tests, run as ordinary unit tests since the toolchain is
# stable-only (no cargo-fuzz). PROPTEST_CASES sets the cases per target (file-system and
# socket targets run a fraction of them); the default keeps the whole run well under a
# minute on 2 cores, reusing the debug build `cargo test` already made. `timeout` bounds
# the wall time whatever PROPTEST_CASES says.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${PROPTEST_CASES:-2000}
limit=${TEND_FUZZ_TIMEOUT:-300}
start=$(date +%s)
timeout --signal=KILL "$limit" cargo test --locked --bin tend fuzz -- --test-threads=2
echo "fuzz: PROPTEST_CASES=$PROPTEST_CASES, $(( $(date +%s) - start )) s"
