#!/bin/sh
# STAND-IN for `tend init`, in busybox sh. NOT tend.
#
# It exists only so scripts/container-e2e.sh can prove its own plumbing (podman
# flags, image build, volume, env, stop timing, exit codes, the assertions
# themselves) before the real `tend init` lands. It imitates the observable
# contract of SPEC.md closely enough for those checks and nothing more:
#   - §2 layout  <root>/<ns>/<app>/<pod>/<service>/current, identity from
#                TEND_*/POD_NAMESPACE/APP_NAME/POD_NAME/HOSTNAME, bad value -> 111
#   - §3 cri     "<time> stdout|stderr F <line>" (time has no real nanoseconds)
#   - §5         every dir with an executable `run` is a longrun, restarted
#                (first immediately, then every 1 s; no real backoff)
#   - §6         TERM/INT/QUIT -> stop CMD, TERM everything, exit CMD's code,
#                128+N for a signal, 0 without CMD
# Used only with E2E_STANDIN=1; the script says so loudly in its output.
set -u

case "${1:-}" in
    --version) echo "tend-standin 0 (busybox sh, not tend)"; exit 0 ;;
    init) shift ;;
    *) echo "tend-standin: only 'init' is imitated" >&2; exit 2 ;;
esac
[ "${1:-}" = "--" ] && shift

root=${TEND_LOG_ROOT:-/data/logs}
svcroot=${TEND_SERVICES:-/etc/tend/services}
ns=${TEND_NAMESPACE:-${POD_NAMESPACE:-default}}
app=${TEND_APP:-${APP_NAME:-default}}
# shellcheck disable=SC3028 # podman sets HOSTNAME in the container env
pod=${TEND_POD:-${POD_NAME:-${HOSTNAME:-$(hostname)}}}

check_component() { # VARNAME VALUE
    case "$2" in
        '' | [!A-Za-z0-9]* | */* | *[!A-Za-z0-9._-]*)
            echo "tend-standin: invalid $1 value '$2' (must match [A-Za-z0-9][A-Za-z0-9._-]*)" >&2
            exit 111 ;;
    esac
}
check_component POD_NAMESPACE "$ns"
check_component APP_NAME "$app"
check_component POD_NAME "$pod"

tag() { # STREAM: stdin lines -> CRI records on stdout
    while IFS= read -r line; do
        printf '%s %s F %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)" "$1" "$line"
    done
}

logdir() { # SERVICE -> prints the directory, created 0750 with current 0640
    d=$root/$ns/$app/$pod/$1
    mkdir -p "$d" && chmod 750 "$root/$ns" "$root/$ns/$app" "$root/$ns/$app/$pod" "$d"
    touch "$d/current" && chmod 640 "$d/current"
    echo "$d"
}

supervise() { # NAME DIR
    cur=$(logdir "$1")/current
    n=0
    while :; do
        { (cd "$2" && exec ./run) 2>&1 1>&3 3>&- | tag stderr >>"$cur"; } 3>&1 | tag stdout >>"$cur"
        n=$((n + 1))
        [ "$n" -gt 1 ] && sleep 1
    done
}

cmdpid=
shutdown() {
    trap '' TERM INT QUIT
    rc=0
    if [ -n "$cmdpid" ]; then
        kill -TERM "$cmdpid" 2>/dev/null
        wait "$cmdpid"
        rc=$?
    fi
    kill -TERM -1 2>/dev/null # PID 1: every process but itself
    wait
    exit "$rc"
}
trap shutdown TERM INT QUIT

mkdir -p "$root"
for d in "$svcroot"/*/; do
    [ -x "$d/run" ] || continue
    name=$(basename "$d")
    supervise "$name" "$d" &
done

if [ $# -gt 0 ]; then
    mkdir -p /run/tend-standin
    out=/run/tend-standin/main.out err=/run/tend-standin/main.err
    mkfifo "$out" "$err"
    cur=$(logdir main)/current
    tag stdout <"$out" >>"$cur" &
    t1=$!
    tag stderr <"$err" >>"$cur" &
    t2=$!
    "$@" >"$out" 2>"$err" &
    cmdpid=$!
    wait "$cmdpid"
    rc=$?
    cmdpid=
    wait "$t1" "$t2" # drain CMD's output to EOF before stopping the rest
    trap '' TERM INT QUIT
    kill -TERM -1 2>/dev/null
    wait
    exit "$rc"
fi
while :; do
    sleep 3600 &
    wait $!
done
