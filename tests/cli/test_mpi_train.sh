#!/usr/bin/env bash
# `mpirun -np 2 topkformer train` as users launch it: runtime.distributed auto
# picks MPI, rank 0 logs and checkpoints, and the run finishes; a global batch
# that does not split over the ranks is refused; ranks started with different
# models (MPMD, `mpirun ... : ...`) are refused at start, without a crash or a
# hang; SIGUSR1 to mpirun stops the run with a checkpoint and the job exits 0.
# Usage: test_mpi_train.sh TOPKFORMER_BINARY SOURCE_DIR MPIEXEC
source "$(dirname "$0")/fixture.sh"
make_listops_data
mpiexec=$3

"$mpiexec" --oversubscribe -np 2 "$tool" train --config "$config" "${sets[@]}" \
  --set train.steps=4 --run-dir "$work/run" >"$work/out" 2>&1 ||
  fail "mpirun train failed: $(tail -20 "$work/out")"
grep -q "2 rank(s) (mpi)" "$work/run/train.log" || fail "train.log does not show 2 MPI ranks"
[[ -d $work/run/checkpoints/step_0000004 ]] || fail "no final checkpoint"
if "$mpiexec" --oversubscribe -np 2 "$tool" train --config "$config" "${sets[@]}" \
  --set train.batch_size=7 --run-dir "$work/odd" >"$work/odd.out" 2>&1; then
  fail "a batch of 7 over 2 ranks was accepted"
fi
grep -q "train.batch_size" "$work/odd.out" || fail "the error does not name train.batch_size"

status=0
timeout 120 "$mpiexec" --oversubscribe -np 1 "$tool" train --config "$config" "${sets[@]}" \
  --run-dir "$work/differ" : -np 1 "$tool" train --config "$config" "${sets[@]}" \
  --set model.d_model=16 --run-dir "$work/differ" >"$work/differ.out" 2>&1 || status=$?
[[ $status -ne 0 && $status -ne 124 ]] ||
  fail "ranks with different models: status $status (124: a hang): $(tail -20 "$work/differ.out")"
grep -q "rank 1's config differs from rank 0's: model.d_model is 16 on rank 1 and 32 on rank 0" \
  "$work/differ.out" || fail "the error does not name model.d_model: $(tail -20 "$work/differ.out")"
if grep -qiE "segmentation|double free|bus error|exited on signal" "$work/differ.out"; then
  fail "ranks with different models crashed: $(tail -20 "$work/differ.out")"
fi

# mpirun forwards SIGUSR1 to every rank, which finish the step, save and exit
# 0, and so does mpirun (SIGTERM would make it kill the ranks and exit 1). A
# run ignoring the signal would go on to step 20000 and pass no check below.
stop=$work/stop
"$mpiexec" --oversubscribe -np 2 "$tool" train --config "$config" "${sets[@]}" \
  --set train.steps=20000 --set train.log_every=10 --set train.save_every=0 \
  --set train.eval_every=0 --run-dir "$stop" >"$work/stop.out" 2>&1 &
signal_when_logged $! "step 10/" "$stop/train.log" USR1
[[ $status -eq 0 ]] || fail "mpirun exited with $status after SIGUSR1: $(tail -20 "$work/stop.out")"
grep -q "stop requested" "$stop/train.log" || fail "no stop after SIGUSR1: $(tail -5 "$stop/train.log")"
last=$(ls "$stop/checkpoints" | grep "^step_" | sort | tail -1)
[[ -n $last && $last != step_0020000 ]] || fail "no checkpoint of an interrupted run: '$last'"
echo PASS
