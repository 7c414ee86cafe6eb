#!/usr/bin/env bash
# Checks that tend builds with the oldest Rust it claims: `rust-version` in Cargo.toml.
# Installs that toolchain with rustup if missing (minimal profile, no stdin), then
# `cargo +VER check --workspace --locked --all-targets` in its own target dir (target/msrv) so the
# main build's artifacts are not thrown away.
set -euo pipefail
cd "$(dirname "$0")/.."

ver=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
if [ -z "$ver" ]; then
    echo "msrv: no rust-version = \"X.Y\" line in Cargo.toml" >&2
    exit 1
fi
# rustup names 1.88 and 1.88.0 alike; pin the .0 patch so "installed?" has one answer.
case $ver in *.*.*) ;; *) ver=$ver.0 ;; esac
if ! rustup toolchain list | grep -q "^$ver-"; then
    echo "msrv: installing Rust $ver (rustup, minimal profile)"
    timeout 600 rustup toolchain install "$ver" --profile minimal --no-self-update </dev/null
fi
echo "msrv: cargo +$ver check --locked --all-targets"
CARGO_TARGET_DIR=target/msrv timeout 1200 cargo "+$ver" check --workspace --locked --all-targets </dev/null
