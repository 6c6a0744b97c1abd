#!/usr/bin/env bash
# The GPU session's checks, in one run on a GPU machine, from a bundle made by
# scripts/bundle.sh (the machine needs only the NVIDIA driver and CUDA's
# libraries):
#
#   bash scripts/gpu_check.sh BUNDLE_DIR OUT_DIR [quick|full]
#
# 1. the whole test suite on the GPU (the CUDA tests no longer skip);
# 2. compute-sanitizer memcheck and racecheck on the CUDA kernel tests
#    (when compute-sanitizer is on the PATH and SANITIZE is not 0);
# 3. the GPU rows of the paper's figures (docs/benchmarks.md), fp32 with TF32
#    off, then bf16: `quick` (default) takes lengths up to 16K and d_ff up to
#    16K, `full` the paper's ranges.
# Everything is written under OUT_DIR (logs and CSVs); the script goes on after
# a failed step and exits non-zero if any step failed.
set -uo pipefail
bundle=$(realpath "${1:?bundle folder}")
mkdir -p "${2:?output folder}"
out=$(realpath "$2")
size=${3:-quick}
bin=$bundle/bin
status=0
step() {
  local name=$1
  shift
  echo "== $name: $*"
  if "$@" >"$out/$name.log" 2>&1; then
    echo "   ok"
  else
    echo "   FAILED (exit $?), see $name.log"
    tail -n 30 "$out/$name.log"
    status=1
  fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1
"$bin/topkformer" info >"$out/info.txt" 2>&1
cat "$out/gpu.txt" "$out/info.txt"

# The tests find configs/ from the working directory: run them in the repository.
cd "$(dirname "$0")/.."
step tests "$bin/topkformer_tests" --gtest_brief=1
# The sanitizers slow kernels down by 10-100x: SANITIZE=0 skips them.
if [[ ${SANITIZE:-1} != 0 ]] && command -v compute-sanitizer >/dev/null; then
  kernels='Cuda*:-CudaModels*:CudaTrainer*'
  step memcheck compute-sanitizer --tool memcheck --error-exitcode 1 \
    "$bin/topkformer_tests" --gtest_brief=1 --gtest_filter="$kernels"
  step racecheck compute-sanitizer --tool racecheck --error-exitcode 1 \
    "$bin/topkformer_tests" --gtest_brief=1 --gtest_filter="$kernels"
fi

if [[ $size == full ]]; then
  lengths=4096,8192,16384,32768,65536
  widths=2048,4096,8192,16384,32768,65536
else
  lengths=4096,8192,16384
  widths=2048,4096,8192,16384
fi
for precision in fp32 bf16; do
  common=(--device cuda --precision "$precision" --backward --warmup 1 --repeats 3)
  step "figure1_$precision" "$bin/topkformer" bench attention "${common[@]}" --causal \
    --d-model 768 --heads 12 --k 128 --chunk-size 1024 --lengths "$lengths" \
    --csv "$out/figure1_$precision.csv"
  step "figure3b_$precision" "$bin/topkformer" bench ff "${common[@]}" --d-model 768 \
    --k 512 --lengths 262144 --d-ff "$widths" --csv "$out/figure3b_$precision.csv"
done
exit $status
