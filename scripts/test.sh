#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: the Release build, then the
# same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   bash scripts/test.sh               # both
#   SANITIZE=0 bash scripts/test.sh    # the Release build only
#
# Tests that need real data read it from $TOPKFORMER_DATA (default
# ../shared/data) and skip, saying why, when it is absent. GPU tests (built
# with the CUDA backend only) skip, saying why, when no GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
ctest --test-dir build --output-on-failure --parallel "$(nproc)"

if [[ ${SANITIZE:-1} != 0 ]]; then
  BUILD_DIR=build-sanitize BUILD_TYPE=RelWithDebInfo \
    CMAKE_ARGS="-DTOPKFORMER_SANITIZE=ON -DTOPKFORMER_CUDA=OFF" bash scripts/setup.sh
  # OpenBLAS and OpenMP keep thread pools alive until exit; LeakSanitizer
  # reports those as leaks, so leak checking is off. Every other check is on.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-sanitize --output-on-failure --parallel "$(nproc)"
fi
