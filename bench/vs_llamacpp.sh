#!/usr/bin/env bash
# tern against llama.cpp, side by side (see vs_llamacpp.py). Installs llama.cpp's Python bindings into
# bench/.venv-llama (built from source with -DGGML_NATIVE=ON, so llama.cpp uses every instruction set this
# CPU has; takes a while the first time), makes the random-weight TinyLlama-1.1B-shape models with
# `tern synth` under bench/models/, and prints the table for docs/performance.md.
# Usage: bash bench/vs_llamacpp.sh [--threads N] [--prompt P] [--gen G] [--reps R]   (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=build/tern
[ -x "$TERN" ] || { echo "vs_llamacpp: $TERN not found; run scripts/setup.sh first" >&2; exit 1; }
VENV=bench/.venv-llama
if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  python3 -m venv "$VENV"
  CMAKE_ARGS="-DGGML_NATIVE=ON" "$VENV/bin/pip" install --no-cache-dir llama-cpp-python==0.3.36
fi
mkdir -p bench/models
for t in Q4_0 Q8_0 F16; do
  f=bench/models/tinyllama-1.1b-$t.gguf
  [ -f "$f" ] || "$TERN" synth --shape TinyLlama-1.1B --type "$t" -o "$f"
done
SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf
exec "$VENV/bin/python" bench/vs_llamacpp.py --tern "$TERN" "$@" \
  bench/models/tinyllama-1.1b-Q4_0.gguf bench/models/tinyllama-1.1b-Q8_0.gguf bench/models/tinyllama-1.1b-F16.gguf "$SMOL"
