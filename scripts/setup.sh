#!/usr/bin/env bash
# Installs topkformer's system dependencies (Debian packages) and builds it.
#
#   bash scripts/setup.sh            # Release build in build/
#   BUILD_DIR=build-asan CMAKE_ARGS="-DTOPKFORMER_SANITIZE=ON" bash scripts/setup.sh
#
# Idempotent: packages already installed are not touched, and nothing is
# printed for them.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-dev libopenblas-openmp-dev libomp-dev
  libyaml-cpp-dev libspdlog-dev libsentencepiece-dev
  libopenmpi-dev openmpi-bin
  libgtest-dev libcli11-dev nlohmann-json3-dev
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_dir=${BUILD_DIR:-build}
# shellcheck disable=SC2086  # CMAKE_ARGS is a list of flags
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"
