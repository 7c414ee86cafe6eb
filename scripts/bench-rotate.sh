#!/usr/bin/env bash
# Rotation cost against the number of archives already in the directory.
#
# Feeds `tend log --rotate-size 4KiB --keep 100000` enough 100-byte lines for 20,000
# rotations, into an empty directory and into one holding 6,000 archives (a fresh copy
# each run; the fastest of RUNS runs counts), and prints both times and their ratio.
# Rotation and retention must not grow with the archive count (SPEC §4: O(log n) per
# rotation), so the ratio must stay under 1.5; the script exits 1 when it does not. The
# directory is listed once when tend opens it (~20 ms for 6,000 archives), which is part
# of the second time. Before the index, 1,110 rotations took 1.7 s empty and 44 s with
# 6,000 archives (every rotation listed and stat'ed the whole directory).
#
# Usage: scripts/bench-rotate.sh [TEND_BINARY]   (default: target/release/tend, built)
#        ARCHIVES=6000 ROTATIONS=20000 RUNS=3 BENCH_DIR=DIR to change the shape (default
#        /dev/shm: on tmpfs fsync is free and the CPU cost of rotation shows).
set -euo pipefail
cd "$(dirname "$0")/.."

ARCHIVES=${ARCHIVES:-6000}
ROTATIONS=${ROTATIONS:-20000}
RUNS=${RUNS:-3}
if [ $# -ge 1 ]; then
    TEND=$1
else
    cargo build --release --quiet
    TEND=$PWD/target/release/tend
fi

WORK=$(mktemp -d -p "${BENCH_DIR:-$(test -w /dev/shm && echo /dev/shm || echo /var/tmp)}" tend-bench-rotate.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# 100-byte lines are 140-byte cri records: 29 to a 4 KiB file.
python3 - "$WORK/in" "$ROTATIONS" <<'PY'
import sys
path, rotations = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    for i in range(rotations * 29):
        f.write(b"%010d " % i + b"x" * 88 + b"\n")
PY

# ARCHIVES old archive names, one a second back from 2020 (a few bytes each).
mkdir -p "$WORK/full"
python3 - "$WORK/full" "$ARCHIVES" <<'PY'
import sys, os, time
d, n = sys.argv[1], int(sys.argv[2])
t0 = 1577836800  # 2020-01-01
for i in range(n):
    stem = time.strftime("@%Y%m%dT%H%M%S", time.gmtime(t0 + i)) + ".000000000Z"
    with open(os.path.join(d, stem + ".log"), "w") as f:
        f.write("x\n")
PY
mkdir -p "$WORK/none"

best() { # SEED_DIR → fastest seconds of RUNS runs, each into a fresh copy of SEED_DIR
    local best="" t0 t1 t i
    for i in $(seq "$RUNS"); do
        rm -rf "$WORK/d"
        cp -a "$1" "$WORK/d"
        t0=$(date +%s.%N)
        "$TEND" log --format cri --rotate-size 4KiB --keep 100000 "$WORK/d" < "$WORK/in"
        t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
    done
    echo "$best"
}

# The one-time cost of opening a directory of ARCHIVES archives (listing it), no input.
rm -rf "$WORK/d" && cp -a "$WORK/full" "$WORK/d"
t0=$(date +%s.%N)
"$TEND" log --keep 100000 "$WORK/d" < /dev/null
open=$(echo "$(date +%s.%N) - $t0" | bc -l)

empty=$(best "$WORK/none")
full=$(best "$WORK/full")
ratio=$(echo "$full / $empty" | bc -l)
printf '| archives before | rotations | seconds (best of %d) |\n|---|---|---|\n' "$RUNS"
printf '| 0 | %d | %.2f |\n' "$ROTATIONS" "$empty"
printf '| %d | %d | %.2f |\n' "$ARCHIVES" "$ROTATIONS" "$full"
printf '\nratio %.2f (must stay under 1.5); opening the %d archives alone: %.3f s\n' \
    "$ratio" "$ARCHIVES" "$open"
[ "$(echo "$ratio < 1.5" | bc -l)" = 1 ]
