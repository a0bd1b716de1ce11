#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (run as root) for the sandbox backends: Docker + bubblewrap,
# a running dockerd, and the sandbox images. Idempotent: a second run only checks and exits fast
# (images are cached by a content hash of their definition).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
DOCKERD_LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
DOCKERD_WAIT_S=${DOCKERD_WAIT_S:-60}

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    echo "setup-sandbox: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

if ! docker info >/dev/null 2>&1; then
    echo "setup-sandbox: starting dockerd (log: $DOCKERD_LOG)"
    nohup dockerd >"$DOCKERD_LOG" 2>&1 &
    for ((i = 0; i < DOCKERD_WAIT_S; i++)); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        echo "setup-sandbox: dockerd did not come up within ${DOCKERD_WAIT_S}s; last log lines:" >&2
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
fi

# Through the project's own code, so CI builds exactly what the harness will look for.
if [ -x .venv/bin/harness ] && .venv/bin/harness sandbox --help >/dev/null 2>&1; then
    .venv/bin/harness sandbox build --quiet
else
    "$PY" -m harness.sandboxes build --quiet
fi
"$PY" -m harness.sandboxes status
# GeoJSEval's pinned JavaScript libraries on the host (npm ci from the committed lock; cached by its hash)
if command -v npm >/dev/null; then
    "$PY" -c 'from harness.tasks.geojseval.libs import main; main()' >/dev/null
fi
