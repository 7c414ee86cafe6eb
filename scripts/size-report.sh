#!/usr/bin/env bash
# Where the static binary's bytes go: builds the release code with its symbol table kept
# (profile `size-report`, same flags as scripts/build-static.sh), then prints the bytes of
# code and data per crate and the N largest functions (N=20 by default). Uses only nm/size
# from binutils. Symbols are attributed to the crate named first in their demangled path
# (`<tend::x as core::fmt::Display>::fmt` counts as tend); C code (musl) has no `::`.
#
# Usage: scripts/size-report.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
top=${1:-20}

musl=x86_64-unknown-linux-musl
target=x86_64-unknown-linux-gnu
flags="-C relocation-model=static -C force-unwind-tables=no"
flags="$flags -C link-arg=-Wl,-T,$PWD/scripts/no-unwind.ld -C link-arg=-Wl,--no-eh-frame-hdr"
flags="$flags -C link-arg=-Wl,-z,noseparate-code"
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do # as scripts/build-static.sh
  flags="$flags --remap-path-prefix=$d="
done
flags="$flags -C link-arg=-Wl,--build-id=none"
if [ -z "${TEND_FORCE_GNU:-}" ] && rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
  target=$musl
  flags="$flags -C link-arg=-Wl,-z,norelro" # as scripts/build-static.sh, which says why
else
  flags="$flags -C target-feature=+crt-static"
fi
RUSTFLAGS="$flags" cargo build --profile size-report --locked --target "$target" >&2
bin="target/$target/size-report/tend"
stripped=$(mktemp)
trap 'rm -f "$stripped"' EXIT
strip -o "$stripped" "$bin"

echo "binary: $(stat -c %s "$stripped") bytes stripped ($bin)"
echo
echo "sections (bytes):"
size -A "$bin" | awk '$1 ~ /^\.(text|rodata|data|data\.rel\.ro|bss|eh_frame|eh_frame_hdr|gcc_except_table|init_array|got|tdata|tbss)$/ { printf "  %-18s %9d\n", $1, $2 }'

# nm -S: address size type name; keep code (t/T/W) and read-only/initialised data.
syms=$(nm -t d -S --size-sort -C "$bin" | awk '$3 ~ /^[tTwWrRdDvV]$/')

echo
echo "by crate (code+data with a symbol; bytes, share of symbol bytes):"
echo "$syms" | awk '
{
  size = $2 + 0; name = $0
  sub(/^[0-9]+ [0-9]+ [a-zA-Z] /, "", name)
  n = name
  gsub(/^(<|&|\*const |\*mut |dyn |_<)+/, "", n)
  if (index(n, "::") == 0) crate = ($3 ~ /[tTwW]/) ? "[C: musl, compiler-rt]" : "[data without path]"
  else {
    # "u128 as core" (a trait impl on a primitive) -> core; "bool libunwind" (C++) -> libunwind
    crate = substr(n, 1, index(n, "::") - 1); sub(/^.* /, "", crate); gsub(/[^A-Za-z0-9_]/, "", crate)
    if (crate ~ /^([iu](8|16|32|64|128|size)|f32|f64|char|str|bool)$/) crate = "core"
    if (crate == "") crate = "[other]"
  }
  by[crate] += size; total += size
}
END {
  for (c in by) printf "  %-28s %9d  %5.1f%%\n", c, by[c], 100 * by[c] / total | "sort -k2 -n -r"
  close("sort -k2 -n -r")
  printf "  %-28s %9d\n", "total", total
}'

echo
echo "$top largest functions (bytes):"
echo "$syms" | awk '$3 ~ /^[tTwW]$/' | tail -n "$top" | tac | awk '
{ size = $2 + 0; name = $0; sub(/^[0-9]+ [0-9]+ [a-zA-Z] /, "", name)
  if (length(name) > 110) name = substr(name, 1, 107) "..."
  printf "  %7d  %s\n", size, name }'
