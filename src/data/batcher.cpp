#include "topkformer/data/batcher.h"

#include <algorithm>
#include <numeric>
#include <utility>
#include <vector>

#include "topkformer/core/error.h"

namespace topkformer::data {

namespace {

// The batch's width: fixed_length, or its longest sequence. At least one
// column, so that a batch of empty texts still has valid shapes (its rows
// are all padding and attention masks them out).
std::int64_t padded_length(std::int64_t longest, std::int64_t fixed_length) {
  TKF_CHECK(fixed_length >= 0, "collate: fixed_length must be non-negative, got ", fixed_length);
  if (fixed_length == 0) return std::max<std::int64_t>(longest, 1);
  TKF_CHECK(longest <= fixed_length, "collate: an item has ", longest,
            " tokens, more than fixed_length ", fixed_length);
  return fixed_length;
}

// Pads the sequences of `indices` into tokens [B, L] and lengths [B].
template <typename Sequence>
std::pair<Tensor, Tensor> pad_sequences(std::span<const std::int64_t> indices, Sequence sequence_of,
                                        std::int32_t pad_id, std::int64_t fixed_length) {
  const auto rows = static_cast<std::int64_t>(indices.size());
  std::vector<std::int64_t> lengths;
  lengths.reserve(indices.size());
  for (const std::int64_t index : indices)
    lengths.push_back(static_cast<std::int64_t>(sequence_of(index).size()));
  const std::int64_t longest =
      lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end());
  const std::int64_t width = padded_length(longest, fixed_length);
  std::vector<std::int64_t> tokens(static_cast<std::size_t>(rows * width), pad_id);
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::span<const std::int32_t> sequence = sequence_of(indices[row]);
    std::copy(sequence.begin(), sequence.end(), tokens.begin() + row * width);
  }
  return {Tensor::from_vector<std::int64_t>({rows, width}, tokens),
          Tensor::from_vector<std::int64_t>({rows}, lengths)};
}

template <typename Dataset>
Tensor gather_labels(const Dataset& dataset, std::span<const std::int64_t> indices) {
  std::vector<std::int64_t> labels;
  labels.reserve(indices.size());
  for (const std::int64_t index : indices) labels.push_back(dataset.label(index));
  return Tensor::from_vector<std::int64_t>({static_cast<std::int64_t>(labels.size())}, labels);
}

}  // namespace

std::vector<std::int64_t> epoch_order(std::int64_t count, std::uint64_t seed, std::int64_t epoch) {
  TKF_CHECK(count >= 0 && count < std::int64_t{1} << 32, "epoch_order: cannot shuffle ", count,
            " items");
  const PhiloxCounter key = philox_block(seed, static_cast<std::uint64_t>(epoch));
  Generator generator((std::uint64_t{key[0]} << 32) | key[1]);
  std::vector<std::int64_t> order(static_cast<std::size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  for (std::int64_t last = count - 1; last > 0; --last) {
    const auto chosen = uniform_below(generator, static_cast<std::uint32_t>(last + 1));
    std::swap(order[static_cast<std::size_t>(last)], order[chosen]);
  }
  return order;
}

BatchSampler::BatchSampler(std::int64_t dataset_size, const BatcherOptions& options)
    : dataset_size_(dataset_size), options_(options) {
  TKF_CHECK(dataset_size > 0, "BatchSampler: the dataset is empty");
  TKF_CHECK(options.batch_size > 0, "BatchSampler: batch_size must be positive, got ",
            options.batch_size);
  TKF_CHECK(!options.drop_last || options.batch_size <= dataset_size, "BatchSampler: batch_size ",
            options.batch_size, " with drop_last leaves no batch of ", dataset_size, " items");
}

std::vector<std::int64_t> BatchSampler::next() {
  if (order_epoch_ != state_.epoch) {
    if (options_.shuffle) {
      order_ = epoch_order(dataset_size_, options_.seed, state_.epoch);
    } else {
      order_.resize(static_cast<std::size_t>(dataset_size_));
      std::iota(order_.begin(), order_.end(), 0);
    }
    order_epoch_ = state_.epoch;
  }
  const std::int64_t end = std::min(state_.position + options_.batch_size, dataset_size_);
  std::vector<std::int64_t> indices(order_.begin() + state_.position, order_.begin() + end);
  state_.position = end;
  move_past_finished_epoch();
  return indices;
}

void BatchSampler::set_state(BatcherState state) {
  TKF_CHECK(state.epoch >= 0 && state.position >= 0 && state.position <= dataset_size_,
            "BatchSampler::set_state: epoch ", state.epoch, ", position ", state.position,
            " does not fit a dataset of ", dataset_size_, " items");
  state_ = state;
  move_past_finished_epoch();
}

std::int64_t BatchSampler::batches_per_epoch() const {
  const std::int64_t full = dataset_size_ / options_.batch_size;
  return options_.drop_last || dataset_size_ % options_.batch_size == 0 ? full : full + 1;
}

void BatchSampler::move_past_finished_epoch() {
  const std::int64_t remaining = dataset_size_ - state_.position;
  if (remaining == 0 || (options_.drop_last && remaining < options_.batch_size))
    state_ = {state_.epoch + 1, 0};
}

Batch collate(const ClassificationDataset& dataset, std::span<const std::int64_t> indices,
              std::int64_t fixed_length) {
  auto [tokens, lengths] = pad_sequences(
      indices, [&](std::int64_t index) { return dataset.tokens(index); }, dataset.pad_id(),
      fixed_length);
  return {tokens, lengths, gather_labels(dataset, indices)};
}

PairBatch collate(const PairDataset& dataset, std::span<const std::int64_t> indices,
                  std::int64_t fixed_length) {
  auto [tokens1, lengths1] = pad_sequences(
      indices, [&](std::int64_t index) { return dataset.tokens1(index); }, dataset.pad_id(),
      fixed_length);
  auto [tokens2, lengths2] = pad_sequences(
      indices, [&](std::int64_t index) { return dataset.tokens2(index); }, dataset.pad_id(),
      fixed_length);
  return {tokens1, lengths1, tokens2, lengths2, gather_labels(dataset, indices)};
}

}  // namespace topkformer::data
