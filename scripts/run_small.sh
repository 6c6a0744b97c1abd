#!/usr/bin/env bash
# The scaled-down experiments of docs/results.md, on a CPU: ListOps (generated),
# word-level IMDb and a WikiText-103 language model (real data from
# ${TOPKFORMER_DATA:-../shared/data}), each with vanilla, top-k and Performer
# attention (configs/small/), then the test evaluations and the learning curves.
#
#   bash scripts/run_small.sh [RUN ...]     # default: all nine, e.g. imdb_vanilla
#
# Runs go to runs/small/RUN; the configs set one thread each, and JOBS (default
# 2) runs train side by side. Running the script again continues unfinished runs
# (--resume auto) and skips finished ones. RUN/time.txt holds the wall time and
# peak resident memory of the training process (GNU time), RUN/eval.jsonl the
# test evaluations; it ends with a table per task (scripts/summarize_runs.py).
# The plug-and-play tables: scripts/plug_and_play.py.
set -euo pipefail
cd "$(dirname "$0")/.."

tool=${TOPKFORMER_TOOL:-build/src/topkformer}
jobs=${JOBS:-2}
runs=(imdb_vanilla lm_vanilla listops_vanilla imdb_topk lm_topk listops_topk
      imdb_performer lm_performer listops_performer imdb_bytes_vanilla imdb_bytes_topk)
(($# > 0)) && runs=("$@")

if [[ ! -f data/listops-small/basic_test.tsv ]]; then
  "$tool" data listops --out data/listops-small --seed 0 --train 20000 --val 1000 --test 1000 \
    --min-length 50 --max-length 250 --max-depth 6
fi

train_and_test() {
  local run=$1 dir=runs/small/$1
  mkdir -p "$dir"
  if [[ ! -f $dir/time.txt ]]; then
    /usr/bin/time -o "$dir/time.part" -f "%e s wall, %M KiB peak resident" \
      "$tool" train --config "configs/small/$run.yaml" --run-dir "$dir" --resume auto \
      > "$dir/stdout.txt" 2>&1
    mv "$dir/time.part" "$dir/time.txt"
  fi
  # Tests use the whole test split, except the byte-level IMDb one: 25,000 reviews
  # of 1K bytes, of which the report uses 5,000, spread evenly over the file.
  local subset=(--set data.max_eval_examples=0)
  [[ $run == imdb_bytes_* ]] && subset=(--set data.max_eval_examples=5000)
  "$tool" eval --checkpoint "$dir" --split test "${subset[@]}" > "$dir/test.txt" 2>&1
  [[ $run == lm_* ]] && "$tool" eval --checkpoint "$dir" --split valid >> "$dir/test.txt" 2>&1
  echo "$run: $(cat "$dir/time.txt"); $(grep -m1 -E 'accuracy|perplexity' "$dir/test.txt")"
}
export -f train_and_test
export tool

printf '%s\n' "${runs[@]}" | xargs -P "$jobs" -I{} bash -c 'train_and_test {}'

for task in imdb imdb_bytes lm listops; do
  dirs=()
  for variant in vanilla topk performer; do
    [[ -f runs/small/${task}_$variant/time.txt ]] && dirs+=("runs/small/${task}_$variant")
  done
  ((${#dirs[@]} > 0)) || continue
  /usr/bin/python3 scripts/plot_runs.py "${dirs[@]}" \
    --out "docs/figures/small_$task.png" --title "configs/small/${task}_*.yaml on the CPU"
  /usr/bin/python3 scripts/summarize_runs.py --tool "$tool" "${dirs[@]}"
done
