#!/usr/bin/env bash
# Benchmarks tend's PID-1 / supervisor side against tini, dumb-init, catatonit and s6
# (s6-svscan + s6-supervise), all in one run on the same host:
#   1. start-up overhead of wrapping /bin/true   (hyperfine median, or an EPOCHREALTIME loop)
#   2. peak RSS supervising 1 and 10 services    (VmHWM of the supervisor processes only)
#   3. binary size                               (+ whether static, shared libs)
#   4. SIGTERM-to-exit of a tree of 5 services   (tend init / s6-svscan as PID 1 of a PID ns)
#   5. CPU of a crash-looping service            (supervisor utime+stime over CRASH_SECS)
# Writes bench-results/pid1.json and bench-results/pid1.md, prints the Markdown.
#
# Env: RUNS (default 200), ROUNDS (10), CRASH_SECS (30), STOP_REPS (5), TEND_BIN (skip the build),
#      OUT_DIR (bench-results), NO_HYPERFINE=1 (time the start-up with a shell loop).
#      Needs root (apt-get for missing tools, unshare --pid).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-200}
ROUNDS=${ROUNDS:-10}
CRASH_SECS=${CRASH_SECS:-30}
STOP_REPS=${STOP_REPS:-5}
OUT_DIR=${OUT_DIR:-bench-results}
export TEND_NAMESPACE=bench TEND_APP=pid1 TEND_POD=bench

log() { printf 'bench-pid1: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
# Installs the Debian packages of missing commands (skips what is present).
ensure() {
  local missing=() cmd pkg
  for pair in "$@"; do
    cmd=${pair%%=*} pkg=${pair#*=}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null >&2
}
ensure tini=tini dumb-init=dumb-init catatonit=catatonit s6-svscan=s6 \
  /usr/bin/time=time file=file unshare=util-linux
command -v hyperfine >/dev/null 2>&1 || ensure hyperfine=hyperfine || log "no hyperfine: using a shell loop"
HAVE_HYPERFINE=0
command -v hyperfine >/dev/null 2>&1 && [ -z "${NO_HYPERFINE:-}" ] && HAVE_HYPERFINE=1
[ "$(id -u)" -eq 0 ] || die "run as root (unshare --pid, apt-get)"

if [ -n "${TEND_BIN:-}" ]; then
  TEND=$TEND_BIN
else
  TEND=$(scripts/build-static.sh | tail -n 1)
fi
TEND=$(readlink -f "$TEND")
[ -x "$TEND" ] || die "no tend binary at $TEND"

# ---------------------------------------------------------------- temp dir, cleanup
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/tend-bench-pid1.XXXXXX)
BG=() # pids of background processes started here (unshare --kill-child, /usr/bin/time)
cleanup() {
  local p
  for p in "${BG[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ROWS=$WORK/rows.tsv       # measure, tool, value, role, detail
# role: ref = the tend row later rows are compared with; tend = another tend row;
#       base = a baseline (no ratio); - = a peer.
MEASURES=$WORK/measures.tsv # id, title, unit, note
: >"$ROWS"
: >"$MEASURES"
measure() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$MEASURES"; }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$ROWS"; }

# ---------------------------------------------------------------- process helpers
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
# True while PID exists and is not a zombie.
alive() {
  local s
  s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "$s" != Z ]
}
# Children of PID (all threads), space-separated.
children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }
# Polls `$2…` every 20 ms for at most $1 seconds; fails on timeout.
wait_until() {
  local limit=$1 deadline
  shift
  deadline=$(($(now_us) + limit * 1000000))
  until "$@"; do
    [ "$(now_us)" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}
first_child() {
  local c
  c=$(children "$1")
  c=${c%% *}
  [ -n "$c" ] && echo "$c"
}
has_child() { [ -n "$(children "$1")" ]; }
vmhwm() { awk '/^VmHWM:/ {print $2; f=1} END {if (!f) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Peak RSS (kB) summed over the given pids.
sum_hwm() {
  local p t=0
  for p in "$@"; do t=$((t + $(vmhwm "$p"))); done
  echo "$t"
}
# On-CPU ns of a process, all live threads (schedstat), and utime+stime ticks (stat).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Number of processes named `sleep` among the children of the given pids.
count_sleep_children() {
  local p c n=0
  for p in "$@"; do
    for c in $(children "$p"); do
      [ "$(cat "/proc/$c/comm" 2>/dev/null)" = sleep ] && n=$((n + 1))
    done
  done
  echo "$n"
}

# Starts "$@" as PID 1 of a new PID namespace; sets NS_U (unshare) and NS_P (pid 1).
ns_start() {
  unshare --pid --fork --mount-proc --kill-child -- "$@" </dev/null >"$WORK/ns.out" 2>&1 &
  NS_U=$!
  BG+=("$NS_U")
  wait_until 5 has_child "$NS_U" || die "nothing started under unshare: $*"
  NS_P=$(first_child "$NS_U")
}
ns_gone() { ! alive "$NS_U"; }
# Stops a namespace started by ns_start: SIGTERM to pid 1, then waits (10 s) for unshare.
ns_stop() {
  kill -TERM "$NS_P" 2>/dev/null || true
  wait_until 10 ns_gone || kill -KILL "$NS_U" 2>/dev/null || true
  wait "$NS_U" 2>/dev/null || true
}

# A service tree of N `exec sleep 600` longruns; layout shared by tend and s6.
make_tree() {
  local dir=$1 n=$2 body=${3:-exec sleep 600} i
  mkdir -p "$dir"
  for i in $(seq 1 "$n"); do
    mkdir -p "$dir/svc$i"
    printf '#!/bin/sh\n%s\n' "$body" >"$dir/svc$i/run"
    chmod 755 "$dir/svc$i/run"
  done
}
tend_init() { # tend init over services dir $1, logs and run dir under $2
  mkdir -p "$2/logs" "$2/run"
  ns_start env TEND_RUN_DIR="$2/run" "$TEND" init --services "$1" --log-root "$2/logs"
}
s6_supervisors() { children "$NS_P"; }
tend_up() { [ "$(count_sleep_children "$NS_P")" -ge "$1" ]; }
s6_up() { [ "$(s6_service_count)" -ge "$1" ]; }
s6_service_count() {
  local s
  s=$(s6_supervisors)
  [ -n "$s" ] || { echo 0; return; }
  # shellcheck disable=SC2086 # word splitting of the pid list is intended
  count_sleep_children $s
}

# ---------------------------------------------------------------- 1. start-up overhead
log "start-up: $RUNS runs each"
measure startup "Start-up overhead of wrapping /bin/true" "µs" \
  "Median wall time per run over $RUNS runs, in $ROUNDS interleaved rounds against load drift ($([ $HAVE_HYPERFINE = 1 ] && echo 'hyperfine -N, 3 warm-ups per round' || echo 'EPOCHREALTIME loop, commands alternating')); value = median minus bare /bin/true; ratio vs tend run --no-capture (the tini equivalent)."
mkdir -p "$WORK/startup-logs"
names=("tend run --no-capture" "tend run (capture)" "tini" "dumb-init" "catatonit" "/bin/true alone")
cmds=("$TEND run --no-capture -- /bin/true"
  "$TEND run --log-root $WORK/startup-logs -- /bin/true"
  "tini -- /bin/true"
  "dumb-init /bin/true"
  "catatonit -- /bin/true"
  "/bin/true")
# The machine may be shared: running all runs of one command, then all of the next, lets
# load drift bias the comparison. So the runs are split into ROUNDS interleaved rounds and
# the median is taken over the pooled per-run times (µs) of each command.
: >"$WORK/times.tsv" # command index, µs
if [ "$HAVE_HYPERFINE" = 1 ]; then
  per=$(((RUNS + ROUNDS - 1) / ROUNDS))
  for r in $(seq 1 "$ROUNDS"); do
    hyperfine -N --warmup 3 --runs "$per" --style none --export-json "$WORK/startup-$r.json" \
      "${cmds[@]}" </dev/null >/dev/null 2>"$WORK/hyperfine.err" ||
      { cat "$WORK/hyperfine.err" >&2; die "hyperfine failed"; }
    # hyperfine's JSON is pretty-printed: one number per line inside each "times" array.
    awk '/"command":/ {c++} /"times": \[/ {t=1; next} t && /\]/ {t=0} t {gsub(/[ ,]/, ""); printf "%d\t%.3f\n", c - 1, $0 * 1e6}' \
      "$WORK/startup-$r.json" >>"$WORK/times.tsv"
  done
  mkdir -p "$OUT_DIR/pid1-hyperfine"
  cp "$WORK"/startup-*.json "$OUT_DIR/pid1-hyperfine/"
else
  for i in "${!cmds[@]}"; do
    read -r -a argv <<<"${cmds[$i]}"
    for _ in 1 2 3; do "${argv[@]}" </dev/null >/dev/null 2>&1; done
  done
  for _ in $(seq 1 "$RUNS"); do
    for i in "${!cmds[@]}"; do
      read -r -a argv <<<"${cmds[$i]}"
      t0=${EPOCHREALTIME/./}
      "${argv[@]}" </dev/null >/dev/null 2>&1
      t1=${EPOCHREALTIME/./}
      printf '%d\t%d\n' "$i" $((t1 - t0)) >>"$WORK/times.tsv"
    done
  done
fi
medians=()
for i in "${!cmds[@]}"; do
  medians+=("$(awk -F'\t' -v i="$i" '$1 == i {print $2}' "$WORK/times.tsv" | sort -n |
    awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f\n", m}')")
done
[ ${#medians[@]} -eq ${#cmds[@]} ] || die "start-up: expected ${#cmds[@]} medians, got ${#medians[@]}"
bare=${medians[5]}
for i in 0 1 2 3 4; do
  over=$(awk -v a="${medians[$i]}" -v b="$bare" 'BEGIN {printf "%.1f", a - b}')
  row startup "${names[$i]}" "$over" "$(case $i in 0) echo ref ;; 1) echo tend ;; *) echo - ;; esac)" "median ${medians[$i]} µs/run"
done
row startup "/bin/true alone" "0" base "median $bare µs/run (baseline)"

# ---------------------------------------------------------------- 2. peak RSS
log "peak RSS"
measure rss1 "Peak RSS supervising 1 service (sleep 1)" "KiB" \
  "VmHWM of the supervisor process(es) only, sampled every 50 ms until exit; s6 = s6-svscan + s6-supervise. time %M = /usr/bin/time -f %M, which is max(supervisor, its children) and so includes sleep itself."
# Runs "$@" under /usr/bin/time; sets H (supervisor VmHWM) and M (time %M).
rss_single() {
  local tp sp hwm=0 v
  /usr/bin/time -f %M -o "$WORK/time.out" "$@" </dev/null >/dev/null 2>&1 &
  tp=$!
  BG+=("$tp")
  wait_until 5 has_child "$tp" || die "rss: $* did not start"
  sp=$(first_child "$tp")
  while alive "$sp"; do
    v=$(vmhwm "$sp")
    [ "$v" -gt "$hwm" ] && hwm=$v
    sleep 0.05
  done
  wait "$tp" || true
  H=$hwm M=$(tail -n 1 "$WORK/time.out")
}
mkdir -p "$WORK/rss-logs"
rss_single "$TEND" run --log-root "$WORK/rss-logs" -- sleep 1
row rss1 "tend run (capture)" "$H" ref "time %M $M"
rss_single "$TEND" run --no-capture -- sleep 1
row rss1 "tend run --no-capture" "$H" tend "time %M $M"
rss_single tini -- sleep 1
row rss1 "tini" "$H" - "time %M $M"
rss_single dumb-init sleep 1
row rss1 "dumb-init" "$H" - "time %M $M"
rss_single catatonit -- sleep 1
row rss1 "catatonit" "$H" - "time %M $M"

# Supervisor trees: tend init / s6-svscan as PID 1 over N `exec sleep 600` services.
rss_tree() { # N -> rows "tend init" and "s6"
  local n=$1 id=$2 tend_tool=$3 h procs
  make_tree "$WORK/rss$n/tend" "$n"
  tend_init "$WORK/rss$n/tend" "$WORK/rss$n/tend-state"
  wait_until 10 tend_up "$n" ||
    die "tend init: $n services did not start"
  sleep 0.5
  h=$(vmhwm "$NS_P")
  row "$id" "$tend_tool" "$h" ref "1 process, $(find /proc/"$NS_P"/task -mindepth 1 -maxdepth 1 | wc -l) threads"
  ns_stop

  make_tree "$WORK/rss$n/s6" "$n"
  ns_start s6-svscan "$WORK/rss$n/s6"
  wait_until 10 s6_up "$n" || die "s6: $n services did not start"
  sleep 0.5
  read -r -a procs <<<"$NS_P $(s6_supervisors)"
  h=$(sum_hwm "${procs[@]}")
  row "$id" "s6 (s6-svscan + s6-supervise)" "$h" - "${#procs[@]} processes: s6-svscan $(vmhwm "$NS_P") + s6-supervise $((h - $(vmhwm "$NS_P")))"
  ns_stop
}
rss_tree 1 rss1 "tend init (1 service)"
measure rss10 "Peak RSS supervising 10 services (exec sleep 600)" "KiB" \
  "Supervisor processes only (not the services), as PID 1 of a PID namespace, 0.5 s after all 10 are up. tend: one process (incl. its log thread). s6: s6-svscan + 10 s6-supervise, VmHWM summed (shared libc/libskarnet pages counted once per process, as RSS does)."
rss_tree 10 rss10 "tend init"
for t in tini dumb-init catatonit; do row rss10 "$t" NA - "N/A: supervises one child"; done

# ---------------------------------------------------------------- 3. binary size
log "binary size"
measure size "Binary size" "KiB" \
  "On-disk size of the executables; ratio vs tend static. Dynamic binaries also need the listed shared libraries at run time (not counted)."
bin_row() { # tool, role, files…
  local tool=$1 is=$2 f bytes=0 kind libs
  shift 2
  for f in "$@"; do bytes=$((bytes + $(stat -L -c %s "$f"))); done
  f=$(readlink -f "$1")
  case "$(file -b "$f")" in
    *"statically linked"* | *"static-pie linked"*) kind=static ;;
    *"dynamically linked"*) kind=dynamic ;;
    *) kind=unknown ;;
  esac
  if [ "$kind" = dynamic ]; then
    libs=$(ldd "$f" 2>/dev/null | awk '$1 !~ /vdso|ld-linux/ {print $1}' | paste -sd, -)
    kind="dynamic: $libs"
  fi
  row size "$tool" "$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1024}')" "$is" "$bytes bytes, $kind"
}
bin_row "tend (static)" ref "$TEND"
bin_row "tini" - "$(command -v tini)"
command -v tini-static >/dev/null && bin_row "tini-static" - "$(command -v tini-static)"
bin_row "dumb-init" - "$(command -v dumb-init)"
bin_row "catatonit" - "$(command -v catatonit)"
bin_row "s6-svscan + s6-supervise" - "$(command -v s6-svscan)" "$(command -v s6-supervise)"
skalib=$(ldd "$(command -v s6-svscan)" | awk '/libskarnet/ {print $3}')
[ -n "$skalib" ] && row size "  (+ libskarnet, needed by s6)" \
  "$(awk -v b="$(stat -L -c %s "$skalib")" 'BEGIN {printf "%.1f", b / 1024}')" - "$(basename "$(readlink -f "$skalib")")"

# ---------------------------------------------------------------- 4. SIGTERM to exit
log "SIGTERM-to-exit: $STOP_REPS reps"
measure stop "Time from SIGTERM to exit, 5 services (exec sleep 600)" "ms" \
  "Median of $STOP_REPS. Supervisor is PID 1 of a PID namespace; clock (EPOCHREALTIME) starts just before SIGTERM to it and stops when unshare's wait returns: the kernel completes pid 1's exit only after every process of the namespace is gone, so this includes all 5 services. Before the clock: services up, 0.2 s settle, sync (steady state; tend still fsyncs its 5 logs on the way out, s6 here has no loggers). tini with one sleep child shows the floor of the method. s6: SIGTERM to s6-svscan, which s6 $(dpkg-query -W -f '${Version}' s6 2>/dev/null) handles as s6-svscanctl -t (documented; checked: s6-svscan waits for its s6-supervise, which wait for their services)."
make_tree "$WORK/stop/tend" 5
make_tree "$WORK/stop/s6" 5
# Times one stop of the running namespace; SVC = service pids. Prints ms.
# `wait` on unshare returns when pid 1 of the namespace has exited, and the kernel lets
# pid 1's exit complete only once every other process of the namespace is gone, so
# this is "supervisor and all services gone", with no polling. A watchdog bounds it.
# The watchdog is forked before the services are waited for, so that neither its fork
# nor `sync` (steady state: log files and dirs already on disk) overlaps the clock.
time_stop() {
  local t0 t1 w p
  (sleep 20 && kill -KILL "$NS_U") 2>/dev/null &
  w=$!
  "$@"
  SVC=$(svc_pids)
  sleep 0.2
  sync
  t0=${EPOCHREALTIME/./}
  kill -TERM "$NS_P"
  wait "$NS_U" 2>/dev/null || true
  t1=${EPOCHREALTIME/./}
  kill "$w" 2>/dev/null || true
  wait "$w" 2>/dev/null || true
  for p in $SVC; do alive "$p" && log "warning: service $p outlived the stop"; done
  awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f\n", d / 1000}'
}
median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f\n", m}'; }
: >"$WORK/stop-tend.txt"
: >"$WORK/stop-s6.txt"
tend_started() { wait_until 10 tend_up "$1" || die "tend: $1 services did not start"; }
s6_started() { wait_until 10 s6_up "$1" || die "s6: $1 services did not start"; }
: >"$WORK/stop-tini.txt"
for _ in $(seq 1 "$STOP_REPS"); do
  rm -rf "$WORK/stop/tend-state"
  tend_init "$WORK/stop/tend" "$WORK/stop/tend-state"
  svc_pids() { children "$NS_P"; }
  time_stop tend_started 5 >>"$WORK/stop-tend.txt"

  ns_start s6-svscan "$WORK/stop/s6"
  svc_pids() { local s; for s in $(s6_supervisors); do children "$s"; done; }
  time_stop s6_started 5 >>"$WORK/stop-s6.txt"

  ns_start tini -- sleep 600
  svc_pids() { children "$NS_P"; }
  time_stop tend_started 1 >>"$WORK/stop-tini.txt"
done
row stop "tend init" "$(median <"$WORK/stop-tend.txt")" ref "runs: $(paste -sd' ' "$WORK/stop-tend.txt")"
row stop "s6-svscan" "$(median <"$WORK/stop-s6.txt")" - "runs: $(paste -sd' ' "$WORK/stop-s6.txt")"
row stop "tini, 1 child (floor, not comparable)" "$(median <"$WORK/stop-tini.txt")" - "runs: $(paste -sd' ' "$WORK/stop-tini.txt"); PID-namespace set-up/teardown floor"

# ---------------------------------------------------------------- 5. crash-loop CPU
log "crash loop: $CRASH_SECS s (tend and s6 side by side)"
TCK=$(getconf CLK_TCK)
measure crash "CPU of a crash-looping service over ${CRASH_SECS} s" "CPU ms" \
  "One service whose run is 'exit 1', both supervisors side by side, each PID 1 of its own PID namespace. Value = on-CPU time of the supervisor processes over the window (schedstat, ns resolution; tend: all its threads; s6: s6-svscan + s6-supervise), from start-up on; ticks = utime+stime from /proc/PID/stat (1/$TCK s). Services' own CPU not counted. Restart policies differ: tend backs off (1 s doubling to 30 s), s6-supervise restarts at most once per second."
for who in tend s6; do
  make_tree "$WORK/crash/$who" 1 "echo x >>$WORK/crash/$who.count; exit 1"
done
tend_init "$WORK/crash/tend" "$WORK/crash/tend-state"
CT_U=$NS_U CT_P=$NS_P
ns_start s6-svscan "$WORK/crash/s6"
CS_U=$NS_U CS_P=$NS_P
sleep "$CRASH_SECS"
tend_ns=$(cpu_ns "$CT_P")
tend_tk=$(cpu_ticks "$CT_P")
s6_ns=0 s6_tk=0
for p in $CS_P $(children "$CS_P"); do
  s6_ns=$((s6_ns + $(cpu_ns "$p")))
  s6_tk=$((s6_tk + $(cpu_ticks "$p")))
done
for who in tend s6; do
  if [ "$who" = tend ]; then cns=$tend_ns tk=$tend_tk is=ref; else cns=$s6_ns tk=$s6_tk is=-; fi
  starts=$(wc -l <"$WORK/crash/$who.count" 2>/dev/null || echo 0)
  row crash "$([ "$who" = tend ] && echo "tend init" || echo "s6-supervise (+ s6-svscan)")" \
    "$(awk -v n="$cns" 'BEGIN {printf "%.2f", n / 1e6}')" "$is" \
    "$(awk -v n="$cns" -v s="$CRASH_SECS" -v t="$tk" -v h="$TCK" -v r="$starts" \
      'BEGIN {printf "%.4f%% of one core; ticks %d (%.2f s); %d starts of run, %.2f CPU ms per start", n / 1e7 / s, t, t / h, r, r ? n / 1e6 / r : 0}')"
done
NS_U=$CT_U NS_P=$CT_P ns_stop
NS_U=$CS_U NS_P=$CS_P ns_stop

# ---------------------------------------------------------------- report
mkdir -p "$OUT_DIR"
host="$(nproc) CPU, $(uname -sr), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
versions="$("$TEND" --version 2>&1 | head -n 1); $(tini --version 2>&1 | head -n 1); dumb-init $(dpkg-query -W -f '${Version}' dumb-init); catatonit $(dpkg-query -W -f '${Version}' catatonit); s6 $(dpkg-query -W -f '${Version}' s6)"
gen="$(date -u +%Y-%m-%dT%H:%M:%SZ), load average at start $LOAD0"
awk -F'\t' -v md="$OUT_DIR/pid1.md" -v js="$OUT_DIR/pid1.json" -v host="$host" \
  -v versions="$versions" -v gen="$gen" -v runs="$RUNS" -v crash="$CRASH_SECS" \
  -v reps="$STOP_REPS" -v tendbin="$TEND" '
  function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s); return s }
  FNR == NR && FILENAME ~ /measures/ { nm++; mid[nm] = $1; mtitle[$1] = $2; munit[$1] = $3; mnote[$1] = $4; next }
  { n[$1]++; k = $1 SUBSEP n[$1]; tool[k] = $2; val[k] = $3; role[k] = $4; det[k] = $5 }
  END {
    printf "# tend vs other PID 1s and supervisors\n\n%s; %s; generated %s.\n", host, versions, gen > md
    printf "Ratios are value / value of the tend row marked (ref) above it: > 1 means the peer uses more than tend.\n" > md
    printf "{\n  \"generated\": \"%s\",\n  \"host\": \"%s\",\n  \"versions\": \"%s\",\n", gen, esc(host), esc(versions) > js
    printf "  \"params\": {\"runs\": %d, \"crash_secs\": %d, \"stop_reps\": %d, \"tend_binary\": \"%s\"},\n  \"measures\": [\n", runs, crash, reps, esc(tendbin) > js
    for (i = 1; i <= nm; i++) {
      m = mid[i]; ref = ""; reftool = ""
      printf "\n## %s\n\n%s\n\n| tool | value (%s) | detail | ratio vs tend |\n|---|---:|---|---:|\n", mtitle[m], mnote[m], munit[m] > md
      printf "    {\"id\": \"%s\", \"title\": \"%s\", \"unit\": \"%s\", \"note\": \"%s\", \"lower_is_better\": true, \"rows\": [\n", m, esc(mtitle[m]), esc(munit[m]), esc(mnote[m]) > js
      for (j = 1; j <= n[m]; j++) {
        k = m SUBSEP j
        na = (val[k] == "NA")
        if (role[k] == "ref") { ref = val[k]; reftool = tool[k] }
        if (na) { ratio = "N/A"; jr = "null" }
        else if (role[k] == "ref") { ratio = "1 (ref)"; jr = "1" }
        else if (role[k] == "base") { ratio = "baseline"; jr = "null" }
        else if (ref == "" || ref + 0 == 0) { ratio = "n/a"; jr = "null" }
        else { jr = sprintf("%.4f", val[k] / ref); ratio = sprintf("%.2f×", val[k] / ref) }
        istend = (role[k] == "ref" || role[k] == "tend")
        name = istend ? "**" tool[k] "**" : tool[k]
        printf "| %s | %s | %s | %s |\n", name, na ? "N/A" : val[k], det[k], ratio > md
        printf "      {\"tool\": \"%s\", \"value\": %s, \"is_tend\": %s, \"role\": \"%s\", \"ratio_vs_tend\": %s, \"ratio_ref\": \"%s\", \"detail\": \"%s\"}%s\n", \
          esc(tool[k]), na ? "null" : val[k] + 0, istend ? "true" : "false", role[k], jr, esc(reftool), esc(det[k]), j < n[m] ? "," : "" > js
      }
      printf "    ]}%s\n", i < nm ? "," : "" > js
    }
    printf "  ]\n}\n" > js
  }' "$MEASURES" "$ROWS"
cat "$OUT_DIR/pid1.md"
log "wrote $OUT_DIR/pid1.md and $OUT_DIR/pid1.json"
