# Sourced by the command-line tests: the tool and source folder from the
# arguments, a scratch folder removed on exit, and fail().
set -euo pipefail
tool=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A tiny ListOps dataset in $work/data, and the config that reads it: $config
# with the overrides in $sets.
make_listops_data() {
  "$tool" data listops --out "$work/data" --train 256 --val 32 --test 32 \
    --min-length 4 --max-length 40 --max-depth 3 >/dev/null
  config=$source_dir/configs/tests/listops_tiny.yaml
  sets=(--set "data.dir=$work/data" --set runtime.threads=1)
}
