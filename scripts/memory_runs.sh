#!/usr/bin/env bash
# Issue 19's memory benchmark (docs/benchmarks.md, "Memory of a whole training run"):
# 200 training steps with an evaluation every 100 of the IMDb word, IMDb byte and
# WikiText LM configs under configs/small/, one after the other, each with the
# planner's prediction beside the measured peaks.
#
#   bash scripts/memory_runs.sh [OUT_DIR] [CONFIG ...]   # default: runs/memory
#
# TOPKFORMER_TOOL picks the binary (default build/src/topkformer); a binary
# without `plan` (an older one, for "before" figures) is run without predictions.
# OUT_DIR/NAME/ holds the run, GNU time's report and the plan; the table at the
# end is scripts/memory_table.py's.
set -euo pipefail
cd "$(dirname "$0")/.."

tool=${TOPKFORMER_TOOL:-build/src/topkformer}
out=${1:-runs/memory}
shift || true
configs=(imdb_vanilla imdb_bytes_vanilla lm_vanilla)
(($# > 0)) && configs=("$@")
overrides=(--set train.steps=200 --set train.eval_every=100 --set train.save_every=200
           --set train.log_every=20)

for name in "${configs[@]}"; do
  dir=$out/$name
  rm -rf "$dir" && mkdir -p "$dir"
  if "$tool" --help | grep -q "^  plan "; then
    "$tool" plan --config "configs/small/$name.yaml" "${overrides[@]}" --json \
      > "$dir/plan.json"
  fi
  /usr/bin/time -v -o "$dir/time.txt" "$tool" train --config "configs/small/$name.yaml" \
    --run-dir "$dir/run" "${overrides[@]}" > "$dir/stdout.txt" 2>&1
done
/usr/bin/python3 scripts/memory_table.py "$out" "${configs[@]}"
