#!/usr/bin/env bash
# The main job, locally: tend init runs the demo service tree in examples/services and
# writes every service's log under ./data/logs until you press ^C.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
export TEND_NAMESPACE=${TEND_NAMESPACE:-demo} TEND_APP=${TEND_APP:-shop} TEND_POD=${TEND_POD:-pod-1}
export TEND_RUN_DIR=${TEND_RUN_DIR:-$PWD/data/run}
mkdir -p data/logs "$TEND_RUN_DIR"
echo "demo: logs go to ./data/logs/$TEND_NAMESPACE/$TEND_APP/$TEND_POD/<service>/current;" \
     "try: TEND_RUN_DIR=$TEND_RUN_DIR target/release/tend ctl status   (^C stops)" >&2
exec target/release/tend init --services examples/services --log-root ./data/logs --tee "$@"
