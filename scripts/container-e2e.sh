#!/usr/bin/env bash
# End-to-end: tend as PID 1 of a real container (podman), logs on a host volume.
#
# Usage: scripts/container-e2e.sh            # the real static tend
#        TEND_BIN=/path/to/tend scripts/container-e2e.sh
#
# What it checks (SPEC.md §2 layout, §5 services, §6 PID 1 and exit codes):
#   1. the image is Dockerfile.base (FROM scratch + static tend) plus a test layer
#      (busybox, a service tree: `talker` logs to stdout and stderr and records
#      /proc/1/cmdline, `crasher` exits 3 at once, forever);
#   2. run detached with -v HOST:/data/logs and POD_NAMESPACE/APP_NAME/POD_NAME:
#      - PID 1 is tend                        (talker's log shows /proc/1/cmdline)
#      - logs in HOST/<ns>/<app>/<pod>/<svc>/current, stdout and stderr tagged (cri)
#      - dirs 0750, files 0640                (§2)
#      - crasher restarted: >= 2 start lines  (§5 restart=always, backoff)
#   3. `podman stop -t 10`: exits by itself in < 5 s (no SIGKILL), exit code 0
#      (no CMD, signal-initiated shutdown: §6). podman reports PID 1's own exit
#      status; 137 would mean podman had to SIGKILL it after the timeout.
#   4. same identity again with CMD `sh -c '...; exit 7'`: `podman run` exits 7,
#      CMD's output is in <pod>/main/current, talker's current was appended to
#      (not truncated) across the restart (§2).
#   5. CMD `sleep 600` + `podman stop` -> 143 (128+SIGTERM, §6).
#   6. POD_NAMESPACE=../etc -> exit 111, error names the variable (§2, §6).
#   7. read-only root, non-root: `--read-only --read-only-tmpfs=false --user 1000:1000`,
#      only the log volume (owned by 1000) writable, TEND_METRICS_ADDR=:9090, TEND_TEE=1:
#      - the control socket falls back to @tend/control (tend says so on stderr)
#      - `podman exec` (same uid) `tend ctl status` / `status NAME` / `ready` work
#      - `tend ctl ready` and GET /readyz say "not ready: gate, main" (503) until gate's
#        `check` passes, then 0 / 200; GET /livez 200; GET /metrics is Prometheus text
#        (busybox wget inside the container's own network namespace)
#      - tee: `podman logs` shows the services' records
#      - a second container in the same network namespace (--network container:,
#        like a pod) gets @tend/control/<pidns>; its `tend ctl` reaches its own tend
#      - `podman stop` -> 143 (CMD sleep), in < 5 s
#   8. after `podman rm`, `podman ps -a` is empty.
# Everything runs with --network=none in a private podman root under a temp dir,
# removed on exit (trap), whatever happened.
#
# The podman invocation that works on this machine (Debian 12, podman 4.3, hybrid
# cgroup v1, root, no registry): see PODMAN_GLOBAL/RUN_FLAGS below. Found by trial:
#   --runtime runc         what works here (crun is not installed on this machine; it is
#                          reported to fail on hybrid cgroups, not re-checked). E2E_RUNTIME overrides
#   --storage-driver vfs   no overlay mounts to leak; images here are a few MB
#   --cgroup-manager cgroupfs, --events-backend file   no systemd/journald in here
#   --ulimit nofile/nproc  without them runc fails: "error setting rlimit type 7:
#                          operation not permitted" (podman copies host limits the
#                          sandbox will not let it raise), exit 126
#   --root/--runroot/--tmpdir under $WORK   never touches the system's podman state
# Exit: 0 all PASS; 1 any FAIL; 0 with "SKIP: reason" only if podman cannot run here.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS=e2e-ns APP=e2e-app POD=e2e-pod-1
TAG=e2e-$$
START=$SECONDS
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

skip() { say "SKIP: $*"; exit 0; }
WORK=$(mktemp -d /tmp/tend-container-e2e.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/ctx" "$WORK/test"

PODMAN_GLOBAL=(--root "$WORK/root" --runroot "$WORK/runroot" --tmpdir "$WORK/tmp"
    --storage-driver vfs --runtime "${E2E_RUNTIME:-runc}"
    --cgroup-manager cgroupfs --events-backend file)
RUN_FLAGS=(--network=none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
    -v "$LOGS:/data/logs")
ID_ENV=(-e "POD_NAMESPACE=$NS" -e "APP_NAME=$APP" -e "POD_NAME=$POD")
pm() { timeout "${PM_TIMEOUT:-60}" podman "${PODMAN_GLOBAL[@]}" "$@"; }

cleanup() {
    local rc=$?
    set +e
    if command -v podman >/dev/null && [ -d "$WORK/root" ]; then
        PM_TIMEOUT=30 pm rm -af -t 0 >/dev/null 2>&1
        PM_TIMEOUT=30 pm rmi -af >/dev/null 2>&1
    fi
    # vfs makes no mounts, but unmount anything podman may have left below WORK
    # (deepest first) so rm -rf cannot reach through a mount.
    awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m"; done
    rm -rf "$WORK"
    say "container-e2e took $((SECONDS - START)) s"
    say "container-e2e: ${PASSES} passed, ${FAILS} failed"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
apt_need podman runc busybox-static || skip "podman/runc/busybox-static could not be installed"
command -v podman >/dev/null || skip "podman not installed"
BUSYBOX=/bin/busybox
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
    { [ -x "${BUSYBOX}" ] && "$BUSYBOX" true; } || skip "no static busybox at $BUSYBOX"

# ---------------------------------------------------------------- the binary
TEND=$(find_tend)
if [ -z "$TEND" ] || [ ! -x "$TEND" ]; then
    fail "no tend binary (set TEND_BIN or build it)"
    exit 1
fi
if file -L "$TEND" | grep -Eq 'statically linked|static-pie linked'; then
    pass "tend binary is static: $TEND ($(stat -c %s "$TEND") bytes, $("$TEND" --version 2>&1 | head -n 1))"
else
    fail "tend binary is not static (FROM scratch needs it): $(file -L "$TEND")"
    exit 1
fi

# ---------------------------------------------------------------- podman works here?
mkdir -p "$WORK/probe/bin"
cp "$BUSYBOX" "$WORK/probe/bin/busybox"
ln -s busybox "$WORK/probe/bin/sh"
printf 'FROM scratch\nCOPY bin/ /bin/\n' >"$WORK/probe/Containerfile"
pm build --network=none -q -t "localhost/tend-probe:$TAG" "$WORK/probe" >"$WORK/probe.log" 2>&1 ||
    { cat "$WORK/probe.log"; skip "podman cannot build a FROM scratch image here"; }
probe=$(pm run --rm "${RUN_FLAGS[@]}" "localhost/tend-probe:$TAG" /bin/sh -c 'echo $$' 2>&1) ||
    { say "$probe"; skip "podman cannot run a container here"; }
[ "$probe" = 1 ] || { say "$probe"; skip "podman runs, but the container's command is not PID 1"; }
pass "podman plumbing: FROM scratch + busybox container runs, its command is PID 1"
pm rmi "localhost/tend-probe:$TAG" >/dev/null

# ---------------------------------------------------------------- images
# Base: exactly Dockerfile.base with the binary staged as ctx/tend.
cp "$TEND" "$WORK/ctx/tend"
chmod 0755 "$WORK/ctx/tend"
pm build --network=none -q -f "$ROOT/Dockerfile.base" -t "localhost/tend-base:$TAG" "$WORK/ctx" \
    >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail "build Dockerfile.base"; exit 1; }
pass "Dockerfile.base builds (FROM scratch, only /usr/bin/tend)"
ep=$(pm image inspect -f '{{json .Config.Entrypoint}}' "localhost/tend-base:$TAG")
check "base ENTRYPOINT is tend init -- ($ep)" test "$ep" = '["/usr/bin/tend","init","--"]'

# Test layer: busybox applets, the service trees.
T=$WORK/test
mkdir -p "$T/bin" "$T/services/talker" "$T/services/crasher" "$T/services-cmd/talker" \
    "$T/services-ro/talker" "$T/services-ro/gate"
cp "$BUSYBOX" "$T/bin/busybox"
for a in sh cat echo sleep tr date ls kill env true false test wget; do ln -s busybox "$T/bin/$a"; done
cat >"$T/services/talker/run" <<'EOF'
#!/bin/sh
echo "talker start pid=$$ pid1=$(tr '\0' ' ' </proc/1/cmdline)"
echo "talker identity ns=${POD_NAMESPACE:-} app=${APP_NAME:-} pod=${POD_NAME:-}"
echo "talker to-stderr" >&2
i=0
while :; do i=$((i + 1)); echo "talker tick $i"; sleep 0.2; done
EOF
cat >"$T/services/crasher/run" <<'EOF'
#!/bin/sh
echo "crasher start"
exit 3
EOF
cp "$T/services/talker/run" "$T/services-cmd/talker/run"
cp "$T/services/talker/run" "$T/services-ro/talker/run"
# gate: up at once, ready only once its check finds a file on the log volume.
printf '#!/bin/sh\nexec sleep 600\n' >"$T/services-ro/gate/run"
printf '#!/bin/sh\ntest -e /data/logs/gate.ok\n' >"$T/services-ro/gate/check"
chmod 0755 "$T"/services*/*/run "$T/services-ro/gate/check"
cat >"$T/Containerfile" <<EOF
FROM localhost/tend-base:$TAG
COPY bin/ /bin/
COPY services/ /etc/tend/services/
COPY services-cmd/ /etc/tend/services-cmd/
COPY services-ro/ /etc/tend/services-ro/
EOF
pm build --network=none -q -t "localhost/tend-test:$TAG" "$T" >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log"; fail "build test image"; exit 1; }
IMG=localhost/tend-test:$TAG

# ---------------------------------------------------------------- helpers
svc_log() { echo "$LOGS/$NS/$APP/$POD/$1/current"; }
count_ge() { # FILE PATTERN N
    [ -f "$1" ] && [ "$(grep -c -- "$2" "$1" || true)" -ge "$3" ]
}
cri_line() { # FILE STREAM TEXT: a CRI record "<RFC3339 time> STREAM F TEXT"
    grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z $2 F $3\$" "$1"
}
dump_logs() {
    say "---- log tree:"
    find "$LOGS" -printf '%M %s %p\n' 2>/dev/null | sed "s|$LOGS|HOSTDIR|" | head -40
    for f in "$LOGS"/*/*/*/*/current; do
        [ -f "$f" ] || continue
        say "---- ${f#"$LOGS"/} (tail)"
        tail -n 8 "$f"
    done
}

# ---------------------------------------------------------------- run 1: services, no CMD, stop
say "== run 1: service tree, no CMD, podman stop"
cid=$(pm run -d "${RUN_FLAGS[@]}" "${ID_ENV[@]}" --name "tend-e2e-1-$TAG" "$IMG") ||
    { fail "podman run -d"; exit 1; }
TALK=$(svc_log talker) CRASH=$(svc_log crasher)
container_up() { test "$(pm inspect -f '{{.State.Running}}' "$1")" = true; }
deadline=$((SECONDS + 10))
while ! count_ge "$TALK" 'talker tick' 3 && container_up "$cid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
if ! container_up "$cid"; then
    running=false
    fail "run 1: container exited at once (code $(pm inspect -f '{{.State.ExitCode}}' "$cid")); its output:"
    pm logs "$cid" 2>&1 | tail -n 20 | sed 's/^/    /'
else
    check "talker log at HOSTDIR/$NS/$APP/$POD/talker/current" count_ge "$TALK" 'talker tick' 3
    check "PID 1 is tend (talker read /proc/1/cmdline)" grep -q "talker start pid=[0-9]* pid1=/usr/bin/tend init --" "$TALK"
    check "services inherit the container env (POD_NAMESPACE/APP_NAME/POD_NAME)" \
        grep -q "talker identity ns=$NS app=$APP pod=$POD" "$TALK"
    check "stdout captured as CRI 'stdout F'" cri_line "$TALK" stdout 'talker tick 1'
    check "stderr captured as CRI 'stderr F' in the same current" cri_line "$TALK" stderr 'talker to-stderr'
    wait_for 15 "crash-looping service restarted (>= 2 'crasher start' lines)" count_ge "$CRASH" '^.* crasher start$' 2 || true
    check "log dirs are 0750" test "$(stat -c %a "$LOGS/$NS" "$LOGS/$NS/$APP" "$LOGS/$NS/$APP/$POD" "${TALK%/current}" 2>/dev/null | sort -u)" = 750
    check "current is 0640" test "$(stat -c %a "$TALK" 2>/dev/null)" = 640
    running=$(pm inspect -f '{{.State.Running}}' "$cid")
    check "container still running while a service crash-loops" test "$running" = true
fi

t0=$(date +%s.%N)
pm stop -t 10 "$cid" >/dev/null || fail "podman stop returned non-zero"
t1=$(date +%s.%N)
took=$(echo "$t1 - $t0" | bc)
say "podman stop took ${took} s"
check "podman stop -t 10 of a running container finishes in < 5 s (tend shut down by itself)" \
    test "$running" = true -a "$(echo "$took < 5" | bc)" = 1
code=$(pm inspect -f '{{.State.ExitCode}}' "$cid")
check "exit code after stop without CMD is 0 (podman reports $code; 137 = SIGKILLed)" test "$code" = 0
lines_before=$(grep -c 'talker start' "$TALK" 2>/dev/null || true)
lines_before=${lines_before:-0}
pm rm "$cid" >/dev/null

# ---------------------------------------------------------------- run 2: CMD exit code, append
say "== run 2: same identity, CMD exits 7"
set +e
pm run --rm "${RUN_FLAGS[@]}" "${ID_ENV[@]}" -e TEND_SERVICES=/etc/tend/services-cmd \
    --name "tend-e2e-2-$TAG" "$IMG" sh -c 'sleep 1; echo "main says hi"; echo "main err" >&2; exit 7' \
    >"$WORK/run2.out" 2>&1
code=$?
set -e
check "CMD exit code comes through podman run (7, got $code)" test "$code" = 7
MAIN=$(svc_log main)
check "CMD output logged as service 'main' ($NS/$APP/$POD/main/current)" cri_line "$MAIN" stdout 'main says hi'
check "CMD stderr logged as 'stderr F'" cri_line "$MAIN" stderr 'main err'
check "restart with the same identity appends to talker/current (starts: $lines_before -> more)" \
    count_ge "$TALK" 'talker start' $((lines_before + 1))

# ---------------------------------------------------------------- run 3: CMD killed by stop -> 143
say "== run 3: CMD sleep, podman stop -> 128+15"
cid=$(pm run -d "${RUN_FLAGS[@]}" "${ID_ENV[@]}" -e TEND_SERVICES=/etc/tend/services-cmd \
    --name "tend-e2e-3-$TAG" "$IMG" sleep 600) || { fail "podman run -d (run 3)"; exit 1; }
wait_for 10 "run 3 up (talker logging again)" count_ge "$TALK" 'talker start' $((lines_before + 2)) || true
t0=$(date +%s.%N)
pm stop -t 10 "$cid" >/dev/null || true
took=$(echo "$(date +%s.%N) - $t0" | bc)
code=$(pm inspect -f '{{.State.ExitCode}}' "$cid")
check "CMD killed by SIGTERM -> exit 143 (got $code, stop took ${took} s)" test "$code" = 143
pm rm "$cid" >/dev/null

# ---------------------------------------------------------------- run 4: bad identity -> 111
say "== run 4: POD_NAMESPACE=../etc"
set +e
pm run --rm "${RUN_FLAGS[@]}" -e POD_NAMESPACE=../etc -e APP_NAME=$APP -e POD_NAME=$POD \
    "$IMG" true >"$WORK/run4.out" 2>&1
code=$?
set -e
check "invalid POD_NAMESPACE refused with exit 111 (got $code)" test "$code" = 111
check "error names the variable and the value" grep -q 'POD_NAMESPACE.*\.\./etc\|\.\./etc.*POD_NAMESPACE' "$WORK/run4.out"

# ---------------------------------------------------------------- run 5: read-only, non-root, probes
say "== run 5: --read-only --user 1000:1000, abstract control socket, HTTP probes"
LOGS_RO=$WORK/logs-ro
mkdir -p "$LOGS_RO"
chown 1000:1000 "$LOGS_RO"
RO_POD=e2e-pod-ro
cid=$(pm run -d --network=none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
    --read-only --read-only-tmpfs=false --user 1000:1000 -v "$LOGS_RO:/data/logs" \
    -e "POD_NAMESPACE=$NS" -e "APP_NAME=$APP" -e "POD_NAME=$RO_POD" \
    -e TEND_SERVICES=/etc/tend/services-ro -e TEND_METRICS_ADDR=:9090 -e TEND_TEE=1 \
    --name "tend-e2e-5-$TAG" "$IMG" sleep 600) || { fail "podman run -d (run 5)"; exit 1; }
ex() { pm exec "$cid" "$@"; } # as the container's user, 1000:1000
http() { ex wget -q -O - "http://127.0.0.1:9090$1"; }
ctl_up() { ex /usr/bin/tend ctl status talker >/dev/null; }
if wait_for 15 "run 5: tend ctl status talker as uid 1000 on a read-only root (exit 0)" ctl_up; then
    pm logs "$cid" >"$WORK/run5.out" 2>&1 || true
    check "run 5: tend moved the control socket to @tend/control (stderr says so)" \
        grep -q 'listening on @tend/control instead' "$WORK/run5.out"
    not_ok() { ! "$@"; }
    ready_names_gate() {
        local out
        out=$(ex /usr/bin/tend ctl ready 2>&1 || true)
        say "    tend ctl ready: $out"
        # CMD (main) waits for every service to be ready, so it is not ready either.
        test "$out" = 'tend ctl: not ready: gate (starting), main (starting)'
    }
    check "run 5: the read-only root really is read-only for tend's uid" not_ok ex sh -c 'echo x > /probe'
    check "run 5: tend ctl ready exits 1 while gate's check fails" not_ok ex /usr/bin/tend ctl ready
    check "run 5: ... with one line naming gate and CMD" ready_names_gate
    check "run 5: GET /livez -> 200 ok" test "$(http /livez)" = ok
    check "run 5: GET /readyz -> 503 while gate is not ready" not_ok http /readyz
    touch "$LOGS_RO/gate.ok"
    gate_ready() { ex /usr/bin/tend ctl ready >/dev/null; }
    wait_for 15 "run 5: tend ctl ready exits 0 once gate's check passes" gate_ready || true
    check "run 5: tend ctl status gate exits 0 (ready)" ex /usr/bin/tend ctl status gate
    check "run 5: GET /readyz -> 200 ready" test "$(http /readyz)" = ready
    http /metrics >"$WORK/run5.metrics" 2>&1 || true
    check "run 5: GET /metrics is Prometheus text with talker up" \
        grep -q '^tend_service_up{service="talker"} 1$' "$WORK/run5.metrics"
    check "run 5: logs written as uid 1000 on the volume" count_ge "$LOGS_RO/$NS/$APP/$RO_POD/talker/current" 'talker tick' 1
    pm logs "$cid" >"$WORK/run5.out" 2>&1 || true
    check "run 5: tee shows the services' records in podman logs" grep -q 'talker tick' "$WORK/run5.out"
    # A second container joining the first one's network namespace, like a pod: the
    # abstract @tend/control is taken, so its tend takes its PID namespace's name.
    cid2=$(pm run -d --network "container:$cid" --ulimit nofile=1024:1024 \
        --ulimit nproc=4096:4096 --read-only --read-only-tmpfs=false --user 1000:1000 \
        -v "$LOGS_RO:/data/logs" -e "POD_NAMESPACE=$NS" -e "APP_NAME=$APP" \
        -e "POD_NAME=$RO_POD-b" -e TEND_SERVICES=/etc/tend/services-cmd \
        --name "tend-e2e-5b-$TAG" "$IMG" sleep 600) || fail "podman run -d (run 5b)"
    if [ -n "${cid2:-}" ]; then
        ctl2_up() { pm exec "$cid2" /usr/bin/tend ctl status talker >/dev/null; }
        own_tend() { # the second container's tend ctl lists its own services only
            local out
            out=$(pm exec "$cid2" /usr/bin/tend ctl status 2>&1 || true)
            ! echo "$out" | grep -q '^gate ' && echo "$out" | grep -q '^talker '
        }
        moved() { pm logs "$cid2" 2>&1 | grep -q 'listening on @tend/control/[0-9]* instead'; }
        wait_for 15 "run 5b: tend ctl in a second container of the same network namespace works" ctl2_up || true
        check "run 5b: ... its tend listens on @tend/control/<pidns> (the first has @tend/control)" moved
        check "run 5b: ... and tend ctl there reaches its own tend, not the first one" own_tend
        pm rm -f -t 0 "$cid2" >/dev/null 2>&1 || true
    fi
else
    pm logs "$cid" 2>&1 | tail -n 20 | sed 's/^/    /'
fi
t0=$(date +%s.%N)
pm stop -t 10 "$cid" >/dev/null || true
took=$(echo "$(date +%s.%N) - $t0" | bc)
code=$(pm inspect -f '{{.State.ExitCode}}' "$cid")
check "run 5: podman stop -> 143 in < 5 s (got $code in ${took} s)" \
    test "$code" = 143 -a "$(echo "$took < 5" | bc)" = 1
pm rm "$cid" >/dev/null

# ---------------------------------------------------------------- nothing left
left=$(pm ps -aq | wc -l)
check "podman ps -a is empty after rm ($left left)" test "$left" = 0

if [ "$FAILS" -gt 0 ]; then
    dump_logs
    say "---- run 2 output:"; cat "$WORK/run2.out"
    say "---- run 4 output:"; cat "$WORK/run4.out"
    say "---- run 5 output:"; cat "$WORK/run5.out" 2>/dev/null || true
    exit 1
fi
