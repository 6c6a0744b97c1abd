#!/usr/bin/env bash
# `mpirun -np 2 topkformer train` as users launch it: runtime.distributed auto
# picks MPI, rank 0 logs and checkpoints, and the run finishes; a global batch
# that does not split over the ranks is refused.
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
echo PASS
