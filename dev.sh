#!/usr/bin/env bash
# Set-up and everyday commands for a fresh Debian/Ubuntu machine with Python 3.11+.
#   ./dev.sh demo    venv + install, then the reference model on the bundled CipherBank sample, with results
#   ./dev.sh test    also installs and starts what the tests use (PostgreSQL, Docker + sandbox images,
#                    bubblewrap, Chromium; needs root), then runs the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

need_root() { [ "$(id -u)" = 0 ] || { echo "error: '$1' installs system packages: run as root (or with sudo)" >&2; exit 2; }; }

setup_python() {
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11+ is needed (found $("$PY" --version 2>&1))" >&2; exit 2; }
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv 2>/dev/null || { need_root "python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && "$PY" -m venv .venv; }
  fi
  # reinstall only when the dependencies changed
  stamp=.venv/.harness-installed
  want=$(sha256sum pyproject.toml setup.py | sha256sum | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e '.[test]'
    # the Every Eval Ever validator the tests check exports with: the package declares Python >= 3.12 and pins
    # heavy dependencies it does not need for validation (pydantic and rich, installed already, are enough)
    .venv/bin/pip install -q --no-deps --ignore-requires-python every-eval-ever==0.3.0
    echo "$want" > "$stamp"
  fi
}

setup_services() {
  need_root "./dev.sh test"
  missing=()
  for pkg in bubblewrap postgresql docker.io debootstrap chromium python3-numpy python3-sympy; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  # GeoJSEval's tests run the host's Node under bwrap and install its pinned libraries with npm (any Node >= 18)
  { command -v node && command -v npm; } >/dev/null 2>&1 || missing+=(nodejs npm)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  HARNESS_TEST_PG_URL=$(bash .ci/setup-postgres.sh)
  export HARNESS_TEST_PG_URL
  bash .ci/setup-sandbox.sh
  # the real LLM server of the tests (llama.cpp + SmolLM2-135M) and its interpreter, for the llamacpp/ provider
  HARNESS_TEST_LLAMACPP_URL=$(bash .ci/setup-llamacpp.sh)
  HARNESS_LLAMACPP_PYTHON=$(bash .ci/setup-llamacpp.sh --python)
  export HARNESS_TEST_LLAMACPP_URL HARNESS_LLAMACPP_PYTHON
  # a single-node Slurm cluster (slurm-wlm + munge) for the work-queue workers' tests (tests/test_slurm.py)
  bash .ci/setup-slurm.sh
  export HARNESS_TEST_SLURM=1
}

case "${1:-}" in
  demo)
    setup_python
    export HARNESS_DB_URL=${HARNESS_DB_URL:-sqlite:///$PWD/demo.db}
    .venv/bin/harness eval --model reference --task cipherbank --data bundled
    echo "stored in $HARNESS_DB_URL; try: .venv/bin/harness runs --db $HARNESS_DB_URL"
    ;;
  test)
    setup_python
    setup_services
    shift
    .venv/bin/pytest -q "$@"
    ;;
  *)
    sed -n '2,6p' "$0"; exit 2 ;;
esac
