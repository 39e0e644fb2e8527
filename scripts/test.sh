#!/usr/bin/env bash
# The test command: runs the whole suite on the build from scripts/setup.sh, then builds the
# AddressSanitizer + UndefinedBehaviorSanitizer configuration (build-asan/) and runs the suite there too.
# Set TERN_SKIP_SANITIZE=1 to run only the first pass while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

echo "== tests (release build) =="
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"

if [ "${TERN_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== tests (address + undefined sanitizers) =="
  WERROR=OFF
  [ "${CI:-}" = "true" ] && WERROR=ON
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTERN_SANITIZE=ON -DTERN_WERROR="$WERROR" >/dev/null
  cmake --build build-asan -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS"
fi
