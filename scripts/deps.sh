#!/usr/bin/env bash
# Installs what the tests and benchmarks need, skipping what is present. Runs as root with
# no stdin (CI); a non-root user without the tools gets a clear message instead.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have unshare   || need+=(util-linux)
have setpriv   || need+=(util-linux)
have file      || need+=(file)
have s6-log    || need+=(s6)
have svlogd    || need+=(runit)
have multilog  || need+=(daemontools)
have tini      || need+=(tini)
have dumb-init || need+=(dumb-init)
have catatonit || need+=(catatonit)
have rsyslogd  || need+=(rsyslog)
[ -x /usr/bin/time ] || need+=(time)
have python3   || need+=(python3)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ "${TEND_SKIP_PODMAN:-0}" != 1 ]; then
  have podman  || need+=(podman)
  have runc    || need+=(runc)
  [ -x /bin/busybox ] || need+=(busybox-static)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages ${need[*]}; run as root or install them" >&2
  exit 1
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
