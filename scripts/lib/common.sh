# Shell helpers shared by the end-to-end scripts (sourced, not run).
# Expects ROOT (the repository) to be set by the caller.

FAILS=0 PASSES=0
say() { printf '%s\n' "$*"; }
pass() { PASSES=$((PASSES + 1)); say "PASS: $*"; }
fail() { FAILS=$((FAILS + 1)); say "FAIL: $*"; }

# The shared tools directory: TEND_SHARED, else ../shared next to the repository (CI).
shared_dir() {
    printf '%s\n' "${TEND_SHARED:-$ROOT/../shared}"
}

# Prints the tend binary to test: TEND_BIN, else the static release build.
find_tend() {
    if [ -n "${TEND_BIN:-}" ]; then
        printf '%s\n' "$TEND_BIN"
    else
        timeout 900 "$ROOT/scripts/build-static.sh" </dev/null | tail -n 1
    fi
}

# apt_need PKG...: installs the Debian packages not yet installed (root, no stdin).
apt_need() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 120 apt-get update -qq </dev/null >/dev/null 2>&1 || true
    timeout 300 apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null 2>&1
}

# wait_pid_gone PID SECONDS: waits for PID to exit; returns 1 if it is still there.
wait_pid_gone() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$1" 2>/dev/null
}

# check DESCRIPTION COMMAND...: PASS if the command succeeds, else FAIL.
check() {
    local what=$1
    shift
    if "$@" 2>/dev/null; then pass "$what"; else fail "$what"; fi
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.2 s until COMMAND succeeds
# (PASS), or FAILs and returns 1 after SECONDS.
wait_for() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { fail "$what (not within ${limit} s)"; return 1; }
        sleep 0.2
    done
    pass "$what"
}
