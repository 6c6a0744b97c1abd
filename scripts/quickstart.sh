#!/usr/bin/env bash
# The quickstart, end to end on a fresh Debian machine: install the
# dependencies and build, generate a small ListOps dataset (no download),
# train a 2-layer classifier with top-k attention (configs/quickstart.yaml, a
# few minutes on 2 CPU cores), then evaluate it on the test split.
#
#   bash scripts/quickstart.sh
#
# Running it again continues the run in runs/quickstart (--resume auto) and
# evaluates again; delete runs/quickstart to train from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
tool=build/src/topkformer
data_dir=data/listops-quickstart
if [[ ! -f $data_dir/basic_test.tsv ]]; then
  "$tool" data listops --out "$data_dir" --seed 0 --train 6000 --val 500 --test 500 \
    --min-length 10 --max-length 60 --max-depth 4
fi
"$tool" train --config configs/quickstart.yaml --run-dir runs/quickstart --resume auto
"$tool" eval --checkpoint runs/quickstart --split test
