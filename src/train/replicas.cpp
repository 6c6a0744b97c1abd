#include "replicas.h"

#include <bit>

namespace topkformer::train {

void broadcast_tensors(dist::Communicator& communicator, const nn::NamedTensors& tensors) {
  if (communicator.world_size() == 1) return;
  for (const auto& [name, tensor] : tensors) communicator.broadcast(tensor, 0);
}

void broadcast_state(dist::Communicator& communicator, TrainingState& state) {
  if (communicator.world_size() == 1) return;
  // Integers travel as i64 (the Philox words bit for bit), doubles as f64.
  Tensor integers = Tensor::from_vector<std::int64_t>(
      {8},
      {state.step, state.data.epoch, state.data.position,
       std::bit_cast<std::int64_t>(state.rng.seed), std::bit_cast<std::int64_t>(state.rng.offset),
       state.best_step, state.evals_without_improvement, state.best_metric.has_value() ? 1 : 0});
  Tensor reals =
      Tensor::from_vector<double>({2}, {state.best_metric.value_or(0.0), state.elapsed_seconds});
  communicator.broadcast(integers, 0);
  communicator.broadcast(reals, 0);
  const std::vector<std::int64_t> i = integers.to_vector<std::int64_t>();
  const std::vector<double> r = reals.to_vector<double>();
  state.step = i[0];
  state.data = {i[1], i[2]};
  state.rng = {std::bit_cast<std::uint64_t>(i[3]), std::bit_cast<std::uint64_t>(i[4])};
  state.best_step = i[5];
  state.evals_without_improvement = i[6];
  state.best_metric = i[7] ? std::optional<double>(r[0]) : std::nullopt;
  state.elapsed_seconds = r[1];
}

std::vector<double> sum_over_ranks(dist::Communicator& communicator, std::vector<double> values) {
  if (communicator.world_size() == 1) return values;
  Tensor buffer = Tensor::from_vector<double>({std::int64_t(values.size())}, values);
  communicator.all_reduce(buffer, dist::ReduceOp::sum);
  return buffer.to_vector<double>();
}

void combine_shards(dist::Communicator& communicator, EvalResult& result) {
  // Counts stay exact as doubles far beyond any split's size (2^53).
  const std::vector<double> sums = sum_over_ranks(
      communicator, {result.loss_sum, double(result.correct), double(result.examples),
                     double(result.tokens), result.interrupted ? 1.0 : 0.0});
  result.loss_sum = sums[0];
  result.correct = std::int64_t(sums[1]);
  result.examples = std::int64_t(sums[2]);
  result.tokens = std::int64_t(sums[3]);
  // Interrupted on any rank: the sums cover part of the split, and no rank
  // may take a decision (best checkpoint, early stopping) from them.
  result.interrupted = sums[4] > 0;
  if (!result.interrupted) result.complete();
}

}  // namespace topkformer::train
