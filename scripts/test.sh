#!/usr/bin/env bash
# The project's whole test command (README, .ci/run): installs what the tests need, checks
# format and lints, runs unit and integration tests (the real binary as PID 1 in PID
# namespaces), builds the static binary, and runs the end-to-end suites.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

passed=0
failed=0
failures=()
suite() {
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

scripts/deps.sh
suite "cargo fmt --check" cargo fmt --all --check
suite "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
suite "oldest Rust (Cargo.toml rust-version)" scripts/msrv.sh
suite "cargo test" cargo test --workspace --locked --no-fail-fast -- --test-threads=2
suite "static build" scripts/build-static.sh
suite "example configs" python3 scripts/validate-examples.py
if [ -x scripts/fuzz.sh ]; then suite "bounded fuzzing" scripts/fuzz.sh; fi
suite "collector end to end (Fluent Bit, rsyslog)" scripts/collector-e2e.sh
suite "container end to end (podman)" scripts/container-e2e.sh

echo
if [ "$failed" -gt 0 ]; then printf 'failed suite: %s\n' "${failures[@]}"; fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
