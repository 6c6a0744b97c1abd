#!/usr/bin/env bash
# The bench commands end to end, with tiny sizes (seconds); no timing is asserted:
#   - every bench CSV has the common columns (times, peak, reserved and resident bytes, their
#     ratio), and every `bench model` row reserves at most 1.25x its live peak;
#   - --precision fp64 doubles the peak bytes of vanilla attention; an unknown precision is refused;
#   - `bench model` decides "does not fit" on the peak reserved bytes: with a budget between
#     two lengths' peaks the longer one does not fit and the longer ones after it are skipped,
#     and a budget below every peak leaves no length;
#   - `bench train` runs the config's model (language model, classifier with accumulation and
#     recomputed layers, dual encoder) and prints `N tokens/s` as its last line.
# Usage: test_bench_cli.sh TOPKFORMER_BINARY SOURCE_DIR
source "$(dirname "$0")/fixture.sh"

common_columns='time_median_s,time_min_s,time_max_s,peak_bytes,peak_reserved_bytes,(peak_rss_bytes|process_peak_rss_bytes),reserved_per_live$'

# The layer benchmarks write the common columns.
"$tool" --threads 1 bench attention --variants vanilla,topk --lengths 16 --d-model 16 --heads 2 \
  --k 4 --chunk-size 8 --backward --warmup 0 --repeats 1 --csv "$work/attention.csv" >/dev/null ||
  fail "bench attention failed"
head -1 "$work/attention.csv" | grep -Eq "^variant,length,.*,$common_columns" ||
  fail "bench attention CSV header: $(head -1 "$work/attention.csv")"
[[ $(wc -l <"$work/attention.csv") -eq 3 ]] || fail "bench attention: expected 2 rows"

# --precision fp64 holds every float tensor in 8 bytes: vanilla attention (no index tensors)
# needs exactly twice the peak bytes of fp32.
peak_of() {  # CSV file -> the peak_bytes of its first row
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "peak_bytes") c = i } NR == 2 { print $c }' "$1"
}
for precision in fp32 fp64; do
  "$tool" --threads 1 bench attention --variants vanilla --lengths 64 --d-model 16 --heads 2 \
    --backward --warmup 0 --repeats 1 --precision $precision --csv "$work/attention_$precision.csv" \
    >/dev/null || fail "bench attention --precision $precision failed"
  grep -q ",$precision," "$work/attention_$precision.csv" || fail "no $precision in the CSV row"
done
[[ $(peak_of "$work/attention_fp64.csv") -eq $((2 * $(peak_of "$work/attention_fp32.csv"))) ]] ||
  fail "fp64 peak $(peak_of "$work/attention_fp64.csv") is not twice fp32's $(peak_of "$work/attention_fp32.csv")"
"$tool" bench ff --precision fp16 >/dev/null 2>&1 && fail "bench ff accepted --precision fp16"
# tf32 and bf16 are tensor-core precisions: refused on the CPU, with the reason.
message=$("$tool" bench attention --precision bf16 --lengths 8 --repeats 1 2>&1) &&
  fail "bench attention accepted --precision bf16 on the CPU"
grep -q "need a GPU" <<<"$message" || fail "no reason given for refusing bf16 on the CPU: $message"

model_bench=("$tool" --threads 1 bench model --lengths 16,32,64,128
  --layers 2 --d-model 16 --heads 2 --d-ff 32 --vocab-size 50 --k 4 --chunk-size 8
  --warmup 1 --repeats 1)

# A budget every length fits.
"${model_bench[@]}" --variants vanilla,topk --memory-budget 1GiB --csv "$work/model.csv" >"$work/model.out" ||
  fail "bench model failed: $(tail -5 "$work/model.out")"
head -1 "$work/model.csv" | grep -Eq "^variant,length,.*,budget,$common_columns" ||
  fail "bench model CSV header: $(head -1 "$work/model.csv")"
[[ $(grep -c ",fits," "$work/model.csv") -eq 8 ]] || fail "bench model: not every row fits"
grep -Eq "^  vanilla +128 \(every length tried fits\)$" "$work/model.out" ||
  fail "bench model summary: $(tail -3 "$work/model.out")"
# The caching allocator's bound (Note [caching allocator]): every row reserves at most 1.25x
# its live peak (exact counters, so deterministic).
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "reserved_per_live") c = i; next }
  !($c > 0 && $c <= 1.25) { print; bad = 1 } END { exit bad }' "$work/model.csv" ||
  fail "bench model: a row reserves more than 1.25x its live peak: $(cat "$work/model.csv")"

# A budget between the peak reserved bytes of lengths 32 and 64 (the allocator counts are
# deterministic): 32 fits, 64 does not, 128 is skipped.
reserved() { awk -F, -v len="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "peak_reserved_bytes") c = i }
  $1 == "vanilla" && $2 == len { print $c }' "$work/model.csv"; }
low=$(reserved 32)
high=$(reserved 64)
((low < high)) || fail "peak reserved bytes do not grow with the length: $low, $high"
budget=$(((low + high) / 2))
"${model_bench[@]}" --variants vanilla --memory-budget "$budget" --csv "$work/budget.csv" \
  >"$work/budget.out" || fail "bench model with a budget failed: $(tail -5 "$work/budget.out")"
for expected in "16,fits" "32,fits" "64,does not fit" "128,skipped"; do
  grep -q "^vanilla,${expected%%,*},.*,${expected#*,}," "$work/budget.csv" ||
    fail "length ${expected%%,*} should be '${expected#*,}': $(cat "$work/budget.csv")"
done
grep -Eq "^  vanilla +32$" "$work/budget.out" || fail "longest fit: $(tail -2 "$work/budget.out")"
# The skipped row has no measurement.
grep -q "^vanilla,128,.*,skipped,,,,,,,$" "$work/budget.csv" || fail "skipped row has values"

# Below every peak: nothing fits.
"${model_bench[@]}" --variants topk --memory-budget 1KiB >"$work/tiny.out" ||
  fail "bench model with a tiny budget failed"
grep -Eq "^  topk +none$" "$work/tiny.out" || fail "tiny budget: $(tail -2 "$work/tiny.out")"
[[ $(grep -c "skipped" "$work/tiny.out") -eq 3 ]] || fail "tiny budget: longer lengths not skipped"

if "${model_bench[@]}" --variants topk --memory-budget 30XB >"$work/bad.out" 2>&1; then
  fail "bench model accepted --memory-budget 30XB"
fi
grep -q "30XB" "$work/bad.out" || fail "the error does not name the budget: $(cat "$work/bad.out")"

# bench train: the last line is the throughput.
last_line_is_throughput() {
  [[ $(tail -1 "$1") =~ ^[0-9]+(\.[0-9])?\ tokens/s$ ]] || fail "$2: last line '$(tail -1 "$1")'"
}
"$tool" bench train --config "$source_dir/configs/bench/lm_small.yaml" --steps 2 --warmup 1 \
  --vocab-size 64 --set model.layers=1 --set model.d_model=16 --set model.heads=2 \
  --set model.d_ff=32 --set data.max_length=16 --set eval.segment_length=16 \
  --set train.batch_size=2 --set runtime.threads=1 --csv "$work/train.csv" >"$work/lm.out" ||
  fail "bench train (lm) failed: $(tail -5 "$work/lm.out")"
last_line_is_throughput "$work/lm.out" "bench train (lm)"
grep -q "^lm_small,lm,1,16,2,32,vanilla,2,16,64," "$work/train.csv" ||
  fail "bench train CSV: $(cat "$work/train.csv")"
"$tool" bench train --config "$source_dir/configs/tests/listops_tiny.yaml" --steps 2 --warmup 1 \
  --vocab-size 20 --set train.accumulation=2 --set train.recompute_layers=true \
  >"$work/listops.out" || fail "bench train (listops) failed: $(tail -5 "$work/listops.out")"
last_line_is_throughput "$work/listops.out" "bench train (listops)"
"$tool" bench train --config "$source_dir/configs/tests/aan_tiny.yaml" --steps 1 --warmup 0 \
  --vocab-size 20 --set data.max_length=16 >"$work/aan.out" ||
  fail "bench train (retrieval) failed: $(tail -5 "$work/aan.out")"
last_line_is_throughput "$work/aan.out" "bench train (retrieval)"
echo "PASS"
