# Sourced by the command-line tests: the tool and source folder from the
# arguments, a scratch folder removed on exit, and fail().
set -euo pipefail
tool=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Token caches in the scratch folder, not in the user's ~/.cache/topkformer.
export TOPKFORMER_CACHE=$work/cache
fail() { echo "FAIL: $*" >&2; exit 1; }

# A tiny ListOps dataset in $work/data, and the config that reads it: $config
# with the overrides in $sets.
make_listops_data() {
  "$tool" data listops --out "$work/data" --train 256 --val 32 --test 32 \
    --min-length 4 --max-length 40 --max-depth 3 >/dev/null
  config=$source_dir/configs/tests/listops_tiny.yaml
  sets=(--set "data.dir=$work/data" --set runtime.threads=1)
}

# Once $3 holds $2 (the run started as background process $1 got that far;
# at most 60 s), sends it signal $4 and waits for it: its exit status in $status.
signal_when_logged() {
  for _ in $(seq 1 600); do
    grep -q "$2" "$3" 2>/dev/null && break
    sleep 0.1
  done
  kill "-$4" "$1"
  status=0
  wait "$1" || status=$?
}
