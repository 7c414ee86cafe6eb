#!/usr/bin/env bash
# Builds the release binary statically: the musl target when it can be had, else the gnu
# target with +crt-static. Checks with `file` that the result is static, prints its size,
# and prints the binary's path on the last line (other scripts read it).
set -euo pipefail
cd "$(dirname "$0")/.."

musl=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
  rustup target add "$musl" >&2 || echo "build-static: musl target unavailable; using gnu +crt-static" >&2
fi

# A fixed-address executable needs no run-time relocations (static-pie carries ~33 KiB of
# them), and with panic=abort nothing unwinds, so no unwind tables need forcing, and the
# ones std and musl bring are dropped at link time (scripts/no-unwind.ld says why it is safe).
small="-C relocation-model=static -C force-unwind-tables=no"
small="$small -C link-arg=-Wl,-T,$PWD/scripts/no-unwind.ld -C link-arg=-Wl,--no-eh-frame-hdr"
# One read-only+code segment instead of three page-aligned ones: ~4 KB of padding less.
small="$small -C link-arg=-Wl,-z,noseparate-code"
# Panic locations name dependency sources by path: without the registry directory
# (`nix-0.31.3/src/fcntl.rs`), ~60 bytes less each, and the same on every machine. No build
# id either: nothing reads it.
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  small="$small --remap-path-prefix=$d="
done
small="$small -C link-arg=-Wl,--build-id=none"
if [ -z "${TEND_FORCE_GNU:-}" ] && rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
  # musl applies PT_GNU_RELRO only in its dynamic loader, never in a static executable, so
  # the segment protects nothing here; without it the data segment need not end on a page
  # boundary (up to 4 KiB of padding). glibc's static start-up does apply it: kept there.
  RUSTFLAGS="$small -C link-arg=-Wl,-z,norelro" cargo build --release --locked --target "$musl" >&2
  bin="target/$musl/release/tend"
else
  RUSTFLAGS="$small -C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu >&2
  bin="target/x86_64-unknown-linux-gnu/release/tend"
fi

command -v file >/dev/null || { apt-get update -qq && apt-get install -y -qq file >/dev/null; }
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"*|*"static-pie linked"*) ;;
  *) echo "build-static: $bin is not static: $desc" >&2; exit 1 ;;
esac
size=$(stat -c %s "$bin")
echo "build-static: $bin: $size bytes ($((size / 1024)) KiB), $desc" >&2
# Issue 16: at most 917504 bytes (896 KiB) with every feature (906,184 bytes on 2026-12-02,
# README Benchmarks). TEND_SIZE_CEILING overrides it for experiments.
ceiling=${TEND_SIZE_CEILING:-$((896 * 1024))}
if [ "$size" -gt "$ceiling" ]; then
  echo "build-static: $size bytes is above the ceiling of $ceiling (scripts/size-report.sh shows where they go)" >&2
  exit 1
fi
echo "$bin"
