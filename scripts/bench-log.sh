#!/usr/bin/env bash
# Throughput, CPU and memory of `tend log` next to s6-log, svlogd, multilog and cat.
#
# Feeds 1 GiB of numbered 100-byte lines and of 1 KiB lines through a pipe into each tool,
# rotating at ~100 MB and keeping 10 archives, and prints a Markdown table: MB/s (median of
# RUNS runs), CPU seconds per GiB (user+sys of the tool), peak RSS, and whether the output
# kept on disk is complete (the newest kept records are gapless and end at the last input
# line). multilog cannot rotate above 16777215 bytes: it runs with s16777215 n10. svlogd
# cannot hold lines above 1000 bytes (-l 1000 is its maximum): it splits 1 KiB lines, so
# only lines starting with a sequence number are counted when verifying it. The row
# "cat > file, cri bytes" feeds cat the same lines already in tend's cri format (1.4x the
# bytes for 100-byte lines): what the kernel alone charges for writing that output. Its
# MB/s and CPU are per GiB of lines, as for tend cri.
#
# Usage: scripts/bench-log.sh            (RUNS=5 by default; RUNS=3 scripts/bench-log.sh)
#        BENCH_DIR=/some/dir to choose where the inputs and logs go (default /var/tmp).
#        TEND_BASELINE=/path/to/old/tend to run an older build's formats beside this one.
set -euo pipefail

RUNS=${RUNS:-5}
SIZE=${BENCH_SIZE:-$((1 << 30))}
cd "$(dirname "$0")/.."

for pkg in s6-log:s6 svlogd:runit multilog:daemontools; do
    if ! command -v "${pkg%%:*}" >/dev/null; then
        apt-get install -y "${pkg#*:}" >/dev/null
    fi
done
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null

WORK=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" tend-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The binary users ship: the static build (musl when available), not the dev build.
if ! bin=$(scripts/build-static.sh 2>"$WORK/build.log" | tail -1); then
    cat "$WORK/build.log" >&2
    exit 1
fi
TEND=$PWD/$bin

# Lines: a 10-digit sequence number, a space, padding, newline; exactly LEN bytes each.
# With PREFIX, each line also starts with it (the same lines as tend's cri would write them).
gen() { # LEN FILE [PREFIX]
    python3 - "$1" "$2" "$SIZE" "${3:-}" <<'PY'
import sys
length, path, size, prefix = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
n = size // length
pad = b"x" * (length - 12)
with open(path, "wb", buffering=1 << 20) as f:
    for start in range(0, n, 10000):
        f.write(b"".join(prefix + b"%010d " % i + pad + b"\n" for i in range(start, min(n, start + 10000))))
PY
}

# name | command reading stdin, writing into $OUT | awk field holding the sequence number
# | input (default: the lines). "cat > file, cri bytes" is cat writing the lines already
# formatted as tend's cri writes them: the kernel's share of `tend cri`, as a floor.
TOOLS=(
    "cat > file|cat > \$OUT/current|1"
    "cat > file, cri bytes|cat > \$OUT/current|4|cri"
    "s6-log|s6-log n10 s100000000 \$OUT|1"
    "s6-log T|s6-log n10 s100000000 T \$OUT|3"
    "svlogd|svlogd -l 1000 \$OUT|1"
    "multilog (s16777215)|multilog s16777215 n10 \$OUT|1"
    "tend plain|$TEND log --format plain --rotate-size 100MB --keep 10 \$OUT|1"
    "tend cri|$TEND log --format cri --rotate-size 100MB --keep 10 \$OUT|4"
    "tend ts|$TEND log --format ts --rotate-size 100MB --keep 10 \$OUT|2"
    "tend json|$TEND log --format json --rotate-size 100MB --keep 10 \$OUT|json"
)
# TEND_BASELINE=/path/to/an/older/tend adds its four formats to the same run: a regression
# shows as a row slower or costlier than the matching "tend" row, on the same machine.
if [ -n "${TEND_BASELINE:-}" ]; then
    for f in plain:1 cri:4 ts:2 json:json; do
        TOOLS+=("baseline ${f%%:*}|$TEND_BASELINE log --format ${f%%:*} --rotate-size 100MB --keep 10 \$OUT|${f#*:}")
    done
fi

# A VM whose balloon driver reports free pages to the host (Firecracker, QEMU with
# free-page-reporting) gets those pages back unbacked: the first touch costs a host fault,
# charged as "sys" to whichever process touches it. On this project's machine that was up
# to 2.5 s/GiB for `cat > file` alone, 7x its cost on warm memory. Writing and deleting as
# much as the run will write, right before it, makes the CPU column measure the tool and not
# the hypervisor; on bare metal it changes nothing. Tools slower than ~1 GB/s outlive the
# warm-up (reporting starts after 2 s), so their CPU figures still carry some of that cost.
warm() { head -c $((SIZE * 2)) /dev/zero >"$WORK/warm"; rm -f "$WORK/warm"; }

median() { sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Kept records, oldest first, must be gapless and end at the last input line. FIELD is
# the awk field holding the sequence number, or "json": it starts the `log` value.
verify() { # OUT FIELD LINES
    local files
    files=$(cd "$1" && ls | grep -E '^(@|current$)' | sort)
    (cd "$1" && cat $files) | awk -v f="$2" -v last=$(($3 - 1)) '
        { s = (f == "json") ? substr($0, 9, 10) : $f }
        length(s) != 10 || s !~ /^[0-9]+$/ { next }
        { n = s + 0; if (k++ && n != p + 1) bad++; p = n }
        END { if (bad == 0 && p == last) print "yes (" k " kept)"; else print "NO: " bad+0 " gaps, last " p " of " last }'
}

declare -A RESULT
for len in 100 1024; do
    IN=$WORK/in-$len
    echo "generating $SIZE bytes of $len-byte lines..." >&2
    gen "$len" "$IN"
    gen "$len" "$IN.cri" "2026-11-30T07:50:00.123456789Z stdout F "
    LINES=$((SIZE / len))
    BYTES=$(stat -c %s "$IN")
    cat "$IN" "$IN.cri" >/dev/null # warm the page cache
    # Round by round, every tool once a round: a slow spell of this shared machine then
    # hits every tool alike instead of all runs of one (the baseline rows depend on it).
    declare -A RATES=() CPUS=() RSS=()
    for run in $(seq "$RUNS"); do
        for spec in "${TOOLS[@]}"; do
            IFS='|' read -r name cmd field input <<<"$spec"
            src=$IN${input:+.$input}
            OUT=$WORK/out
            rm -rf "$OUT"
            mkdir -p "$OUT"
            [ "$name" = svlogd ] && printf 's100000000\nn10\n' >"$OUT/config"
            sync
            warm
            start=$(date +%s.%N)
            cat "$src" | OUT=$OUT /usr/bin/time -o "$WORK/time" -f '%U %S %M' sh -c "exec $cmd"
            end=$(date +%s.%N)
            read -r u s m <"$WORK/time"
            RATES[$name]+=" $(echo "$BYTES / ($end - $start) / 1000000" | bc -l)"
            CPUS[$name]+=" $(echo "($u + $s) * 1073741824 / $BYTES" | bc -l)"
            RSS[$name]+=" $m"
            if [ "$run" = "$RUNS" ]; then
                RESULT["$len,$name,ok"]=$(verify "$OUT" "$field" "$LINES")
            fi
            rm -rf "$OUT"
            echo "  $len B lines, run $run, $name: $(printf '%.0f' "${RATES[$name]##* }") MB/s" >&2
        done
    done
    for spec in "${TOOLS[@]}"; do
        IFS='|' read -r name _ <<<"$spec"
        RESULT["$len,$name,rate"]=$(printf '%s\n' ${RATES[$name]} | median)
        RESULT["$len,$name,cpu"]=$(printf '%s\n' ${CPUS[$name]} | median)
        RESULT["$len,$name,rss"]=$(printf '%s\n' ${RSS[$name]} | sort -g | tail -1)
    done
    rm -f "$IN" "$IN.cri"
done

echo
echo "$SIZE bytes through a pipe, rotating at ~100 MB keeping 10; median of $RUNS runs; $(nproc) CPUs."
echo
echo "| tool | line | MB/s | vs s6-log T | vs cat | CPU s/GiB | peak RSS | output complete |"
echo "|---|---|---:|---:|---:|---:|---:|---|"
for len in 100 1024; do
    for spec in "${TOOLS[@]}"; do
        IFS='|' read -r name _ _ <<<"$spec"
        r=${RESULT["$len,$name,rate"]}
        printf '| %s | %s B | %.0f | %.2fx | %.2fx | %.2f | %.1f MiB | %s |\n' "$name" "$len" "$r" \
            "$(echo "$r / ${RESULT["$len,s6-log T,rate"]}" | bc -l)" \
            "$(echo "$r / ${RESULT["$len,cat > file,rate"]}" | bc -l)" \
            "${RESULT["$len,$name,cpu"]}" \
            "$(echo "${RESULT["$len,$name,rss"]} / 1024" | bc -l)" \
            "${RESULT["$len,$name,ok"]}"
    done
done

# The same figures as JSON, for scripts/chart.py (docs/bench-log.svg).
mkdir -p bench-results
{
    echo "["
    sep=""
    for len in 100 1024; do
        for spec in "${TOOLS[@]}"; do
            IFS='|' read -r name _ _ <<<"$spec"
            printf '%s  {"tool": "%s", "workload": "%s-byte lines", "mb_per_s": %.1f, "cpu_s_per_gib": %.3f, "rss_kib": %d}' \
                "$sep" "$name" "$len" "${RESULT["$len,$name,rate"]}" \
                "${RESULT["$len,$name,cpu"]}" "${RESULT["$len,$name,rss"]}"
            sep=$',\n'
        done
    done
    printf '\n]\n'
} > bench-results/log.json
echo "bench-log: wrote bench-results/log.json" >&2
