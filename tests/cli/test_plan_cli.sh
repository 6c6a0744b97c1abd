#!/usr/bin/env bash
# `topkformer plan` and the plan `train` logs, as a user runs them:
#   - `plan --json` prints one JSON object (logs go to stderr) whose train, eval
#     and run objects hold peak_bytes, peak_reserved_bytes and peak_rss_bytes,
#     with the method that obtained them;
#   - `--memory-budget` adds the longest length and largest batch of every
#     attention variant `config --list-choices` names, in JSON and as a table;
#   - a bad size, an unknown device and an unknown key are errors that name them;
#   - `train` logs the plan before its first step; `train --no-plan` does not.
# Usage: test_plan_cli.sh TOPKFORMER_BINARY SOURCE_DIR
source "$(dirname "$0")/fixture.sh"
make_listops_data

"$tool" plan --config "$config" "${sets[@]}" --json >"$work/plan.json" 2>"$work/plan.err" ||
  fail "plan --json failed: $(cat "$work/plan.err")"
[[ $(head -c 1 "$work/plan.json") == "{" && $(tail -n 1 "$work/plan.json") == "}" ]] ||
  fail "plan --json printed more than a JSON object: $(cat "$work/plan.json")"
for phase in train eval run; do
  sed -n "/^  \"$phase\": {/,/^  }/p" "$work/plan.json" >"$work/phase_$phase"
  for key in peak_bytes peak_reserved_bytes peak_rss_bytes; do
    grep -qE "^    \"$key\": [1-9][0-9]*,?$" "$work/phase_$phase" ||
      fail "plan --json has no positive $phase.$key: $(cat "$work/plan.json")"
  done
done
grep -q '"method": "measured dry run of 2 training steps' "$work/plan.json" ||
  fail "plan --json does not say how it predicts: $(cat "$work/plan.json")"

"$tool" plan --config "$config" "${sets[@]}" --memory-budget 2GiB --json >"$work/budget.json" ||
  fail "plan --memory-budget failed"
grep -q '"bytes": 2147483648' "$work/budget.json" || fail "the budget is not 2 GiB in the JSON"
"$tool" plan --config "$config" "${sets[@]}" --memory-budget 2GiB >"$work/budget.txt" ||
  fail "plan --memory-budget (table) failed"
grep -q "^variant .*longest data.max_length (batch 8)" "$work/budget.txt" ||
  fail "no budget table: $(cat "$work/budget.txt")"
kinds=$("$tool" config --list-choices | sed -n 's/^attention\.kind: //p')
for kind in ${kinds//|/ }; do
  sed -n "/^      \"$kind\": {/,/^      }/p" "$work/budget.json" >"$work/variant"
  grep -qE '"longest_length": [1-9]' "$work/variant" ||
    fail "plan --memory-budget gives no longest length for $kind: $(cat "$work/budget.json")"
  grep -qE '"largest_batch": [1-9]' "$work/variant" ||
    fail "plan --memory-budget gives no largest batch for $kind"
  grep -q "^$kind " "$work/budget.txt" || fail "the budget table has no row for $kind"
done

if "$tool" plan --config "$config" "${sets[@]}" --memory-budget lots 2>"$work/error"; then
  fail "plan accepted --memory-budget lots"
fi
grep -q -- "--memory-budget.*'lots'" "$work/error" || fail "the error does not name the option: $(cat "$work/error")"
if "$tool" plan --config "$config" "${sets[@]}" --device tpu 2>"$work/error"; then
  fail "plan accepted --device tpu"
fi
grep -q -- "--device.*'tpu'" "$work/error" || fail "the error does not name the option: $(cat "$work/error")"
if "$tool" plan --config "$config" "${sets[@]}" --set model.nope=1 2>"$work/error"; then
  fail "plan accepted model.nope"
fi
grep -q "model.nope" "$work/error" || fail "the error does not name the key: $(cat "$work/error")"

"$tool" train --config "$config" "${sets[@]}" --set train.steps=2 --run-dir "$work/run" \
  >"$work/train.out" 2>&1 || fail "train failed: $(tail -3 "$work/train.out")"
grep -q "plan: .* MiB live, .* MiB reserved, .* MiB resident (measured dry run" "$work/run/train.log" ||
  fail "train logged no plan: $(cat "$work/run/train.log")"
grep -q '"type":"plan"' "$work/run/metrics.jsonl" || fail "no plan line in metrics.jsonl"
"$tool" train --config "$config" "${sets[@]}" --set train.steps=2 --run-dir "$work/unplanned" \
  --no-plan >/dev/null 2>&1 || fail "train --no-plan failed"
if grep -q "plan:" "$work/unplanned/train.log"; then fail "train --no-plan logged a plan"; fi
echo "plan CLI: ok"
