#!/usr/bin/env bash
# The train/eval/config commands end to end, as a user runs them:
#   - `config` prints the effective config and rejects a bad key with its location;
#     `config --list-choices` lists the names every choice key takes;
#   - SIGINT during `train` saves a checkpoint and exits 0, and `--resume auto`
#     then finishes the run;
#   - `eval` of the run, with the trained variant and a swapped one, prints the
#     metrics and appends them to RUN/eval.jsonl; a failed write, an architecture
#     key, a damaged best checkpoint and a missing state.yaml are handled;
#   - SIGHUP and SIGQUIT stop like SIGTERM; a non-UTF-8 run directory works.
# Usage: test_train_cli.sh TOPKFORMER_BINARY SOURCE_DIR
source "$(dirname "$0")/fixture.sh"
make_listops_data

"$tool" config --config "$config" "${sets[@]}" --set attention.k=5 | grep -q "^  k: 5$" ||
  fail "config does not print the override"
if "$tool" config --config "$config" --set attention.kind=topK 2>"$work/error"; then
  fail "config accepted attention.kind=topK"
fi
grep -q "attention.kind" "$work/error" || fail "the error does not name the key: $(cat "$work/error")"

# config --list-choices: one `section.key: a|b|c` line per choice key, whose
# names are those the config takes and its errors list; it takes no config.
"$tool" config --list-choices >"$work/choices" || fail "config --list-choices failed"
grep -qvE '^[a-z_]+\.[a-z_]+: [a-z0-9_]+(\|[a-z0-9_]+)+$' "$work/choices" &&
  fail "config --list-choices printed a line not of the form key: a|b: $(cat "$work/choices")"
[[ $(wc -l <"$work/choices") -eq 13 ]] || fail "config --list-choices should list 13 keys"
grep -q '^train.best_metric: auto|' "$work/choices" || fail "best_metric does not list auto first"
kinds=$(sed -n 's/^attention\.kind: //p' "$work/choices")
for kind in ${kinds//|/ }; do
  "$tool" config --config "$config" "${sets[@]}" --set attention.kind="$kind" >"$work/listed"
  grep -q "^  kind: $kind$" "$work/listed" || fail "config does not take the listed attention.kind $kind"
done
grep -qF "expected one of $kinds," "$work/error" ||
  fail "the attention.kind error does not list the names config --list-choices gives"
if "$tool" config --list-choices --config "$config" >/dev/null 2>&1; then
  fail "config took --list-choices with --config"
fi
if "$tool" config >"$work/no_config" 2>&1; then fail "config without --config exited 0"; fi
grep -q -- "--config is required" "$work/no_config" || fail "no --config error: $(cat "$work/no_config")"

# A run long enough to be interrupted: stop it after its first log line.
run=$work/run
"$tool" train --config "$config" "${sets[@]}" --set train.steps=100000 --set train.log_every=1 \
  --set train.save_every=0 --set train.eval_every=0 --run-dir "$run" >"$work/train.out" 2>&1 &
signal_when_logged $! "step 2/" "$run/train.log" INT
[[ $status -eq 0 ]] || fail "train exited with $status after SIGINT: $(tail -5 "$work/train.out")"
grep -q "stop requested" "$run/train.log" || fail "no stop message in train.log"
ls "$run/checkpoints" | grep -q "^step_" || fail "no checkpoint after SIGINT"
stopped_at=$(ls "$run/checkpoints" | grep "^step_" | sort | tail -1)

"$tool" train --config "$config" "${sets[@]}" --set train.steps=$((10#${stopped_at#step_} + 3)) \
  --run-dir "$run" --resume auto >"$work/resume.out" 2>&1 ||
  fail "resume failed: $(tail -5 "$work/resume.out")"
grep -q "resumed from .*$stopped_at" "$run/train.log" || fail "did not resume from $stopped_at"

"$tool" eval --checkpoint "$run" --split test >"$work/eval.out" || fail "eval failed"
grep -q "accuracy" "$work/eval.out" || fail "eval printed no accuracy"
"$tool" eval --checkpoint "$run" --split test --set attention.kind=vanilla >"$work/eval2.out" ||
  fail "eval with vanilla attention failed"
[[ $(wc -l <"$run/eval.jsonl") -eq 2 ]] || fail "eval.jsonl should hold two lines"
grep -q '"attention":"vanilla"' "$run/eval.jsonl" || fail "eval.jsonl does not record the variant"
# eval: a failed write of the result is an error (the result is still printed);
# keys that change the architecture are refused, naming the key; a damaged
# best checkpoint falls back to the newest valid one; a missing state.yaml is
# found before evaluating.
if "$tool" eval --checkpoint "$run" --split test --output /dev/full >"$work/full.out" 2>&1; then
  fail "eval --output /dev/full exited 0"
fi
grep -q "No space left on device" "$work/full.out" || fail "no disk-full error: $(cat "$work/full.out")"
grep -q '"loss"' "$work/full.out" || fail "the result was not printed before the failed write"
for key in model.positions=sinusoidal model.pre_layer_norm=false feedforward.activation=gelu \
  model.scale_embeddings=true train.steps=99999; do
  if "$tool" eval --checkpoint "$run" --set "$key" >"$work/refused.out" 2>&1; then
    fail "eval accepted --set $key"
  fi
  grep -q "${key%%=*} is" "$work/refused.out" || fail "the refusal does not name ${key%%=*}: $(cat "$work/refused.out")"
done
"$tool" eval --checkpoint "$run" --set attention.kind=chunked --set eval.batch_size=3 \
  --set runtime.threads=1 >/dev/null || fail "eval refused variant and evaluation keys"
best=$(readlink -f "$run/checkpoints/best")
cp -r "$run/checkpoints" "$work/saved_checkpoints"
printf 'damaged' >>"$best/model.safetensors"
"$tool" eval --checkpoint "$run" >"$work/fallback.out" 2>&1 || fail "eval did not fall back: $(cat "$work/fallback.out")"
grep -q "best is damaged" "$work/fallback.out" || fail "the fallback is not announced"
rm -rf "$run/checkpoints" && cp -r "$work/saved_checkpoints" "$run/checkpoints"
newest=$(ls -d "$run"/checkpoints/step_* | sort | tail -1)
mv "$newest/state.yaml" "$work/state.yaml"
if "$tool" eval --checkpoint "$newest" >"$work/nostate.out" 2>&1; then fail "eval without state.yaml exited 0"; fi
grep -q "state.yaml" "$work/nostate.out" || fail "the error does not name state.yaml"
grep -q '"loss"' "$work/nostate.out" && fail "evaluated before reading state.yaml"
mv "$work/state.yaml" "$newest/state.yaml"

# SIGHUP (a closed terminal) and SIGQUIT stop like SIGTERM: a checkpoint, exit 0.
# A run directory whose name is not UTF-8 trains, resumes and evaluates.
for signal in HUP QUIT; do
  odd=$work/$'run-\xff-'$signal
  "$tool" train --config "$config" "${sets[@]}" --set train.steps=100000 --set train.log_every=1 \
    --set train.eval_every=0 --run-dir "$odd" >"$work/signal.out" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "step 2/" "$odd/train.log" 2>/dev/null && break
    sleep 0.1
  done
  kill -"$signal" "$pid"
  status=0
  wait "$pid" || status=$?
  [[ $status -eq 0 ]] || fail "train exited with $status after SIG$signal: $(tail -3 "$work/signal.out")"
  ls "$odd/checkpoints" | grep -q "^step_" || fail "no checkpoint after SIG$signal"
done
stopped_at=$(ls "$odd/checkpoints" | grep "^step_" | sort | tail -1)
"$tool" train --config "$config" "${sets[@]}" --set train.steps=$((10#${stopped_at#step_} + 1)) \
  --run-dir "$odd" --resume auto >"$work/odd.out" 2>&1 || fail "non-UTF-8 resume: $(tail -3 "$work/odd.out")"
"$tool" eval --checkpoint "$odd" >"$work/odd_eval.out" 2>&1 || fail "non-UTF-8 eval: $(tail -3 "$work/odd_eval.out")"

# The tokenizer helpers, and a language model that reads a vocabulary file.
for line in $(seq 1 400); do echo "the cat sat on mat number $((line % 17)) and ran"; done >"$work/text.txt"
"$tool" data vocab --input "$work/text.txt" --out "$work/vocab.txt" >/dev/null
[[ $(wc -l <"$work/vocab.txt") -eq 29 ]] || fail "expected 4 special entries, 8 words and 17 numbers"
"$tool" data sentencepiece --input "$work/text.txt" --prefix "$work/pieces" --vocab-size 30 \
  >/dev/null 2>&1 || fail "sentencepiece training failed"
[[ -f $work/pieces.model ]] || fail "no pieces.model"
"$tool" train --config "$source_dir/configs/tests/wikitext_tiny.yaml" --set "data.dir=$work" \
  --set data.train_file=text.txt --set data.valid_file=text.txt --set data.test_file=text.txt \
  --set "data.vocab=$work/vocab.txt" --set "data.cache_dir=$work/cache" \
  --set data.max_train_examples=0 --set train.steps=2 --set runtime.threads=1 \
  --run-dir "$work/lm" >"$work/lm.out" 2>&1 || fail "lm training failed: $(tail -5 "$work/lm.out")"
grep -q "perplexity" "$work/lm/train.log" || fail "no perplexity in the lm's log"
echo "PASS"
