// Batches of dataset items as tensors, in an order that depends only on
// (seed, epoch), from a position {epoch, position} that can be saved with a
// checkpoint and restored exactly.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"
#include "topkformer/data/dataset.h"

namespace topkformer::data {

// The order of `count` items in `epoch`: a Fisher-Yates shuffle driven by the
// Philox stream whose key is derived from (seed, epoch).
std::vector<std::int64_t> epoch_order(std::int64_t count, std::uint64_t seed, std::int64_t epoch);

struct BatcherOptions {
  std::int64_t batch_size = 32;
  bool shuffle = true;  // false: dataset order in every epoch (evaluation)
  std::uint64_t seed = 0;
  bool drop_last = false;         // leave out an epoch's final, smaller batch
  std::int64_t fixed_length = 0;  // pad every batch to this length; 0: to its longest item
};

// The next batch starts at `position` (items already taken) of `epoch`'s order.
struct BatcherState {
  std::int64_t epoch = 0;
  std::int64_t position = 0;
  bool operator==(const BatcherState&) const = default;
};

// Which items form each batch. Batches run on across epochs: when an epoch
// has no batch left, the state moves to {epoch + 1, 0} and the order is
// reshuffled.
class BatchSampler {
 public:
  BatchSampler(std::int64_t dataset_size, const BatcherOptions& options);
  std::vector<std::int64_t> next();
  BatcherState state() const { return state_; }
  void set_state(BatcherState state);
  std::int64_t batches_per_epoch() const;
  std::int64_t dataset_size() const { return dataset_size_; }

 private:
  void move_past_finished_epoch();

  std::int64_t dataset_size_;
  BatcherOptions options_;
  BatcherState state_;
  std::vector<std::int64_t> order_;  // of epoch order_epoch_
  std::int64_t order_epoch_ = -1;
};

// tokens [B, L] i64 (padded with the dataset's pad id), lengths [B] i64 (the
// real tokens per row: the key-padding lengths for attention), labels [B] i64.
struct Batch {
  Tensor tokens, lengths, labels;
};
// The same for both texts of a pair; each side is padded on its own.
struct PairBatch {
  Tensor tokens1, lengths1, tokens2, lengths2, labels;
};

Batch collate(const ClassificationDataset& dataset, std::span<const std::int64_t> indices,
              std::int64_t fixed_length = 0);
PairBatch collate(const PairDataset& dataset, std::span<const std::int64_t> indices,
                  std::int64_t fixed_length = 0);

// Batches of a ClassificationDataset (Batch) or a PairDataset (PairBatch).
// The dataset must outlive the batcher.
template <typename Dataset>
class Batcher {
 public:
  Batcher(const Dataset& dataset, const BatcherOptions& options)
      : dataset_(&dataset),
        sampler_(dataset.size(), options),
        fixed_length_(options.fixed_length) {}

  auto next() { return collate(*dataset_, sampler_.next(), fixed_length_); }
  BatcherState state() const { return sampler_.state(); }
  void set_state(BatcherState state) { sampler_.set_state(state); }
  std::int64_t batches_per_epoch() const { return sampler_.batches_per_epoch(); }

 private:
  const Dataset* dataset_;
  BatchSampler sampler_;
  std::int64_t fixed_length_;
};

}  // namespace topkformer::data
