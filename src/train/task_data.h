// What the tasks share about their data: the tokenizer a config names and
// the subset of examples a size limit keeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "topkformer/core/device_timer.h"
#include "topkformer/data/batcher.h"
#include "topkformer/data/tokenizer.h"
#include "topkformer/train/config.h"

namespace topkformer::train {

std::unique_ptr<data::Tokenizer> make_tokenizer(const DataConfig& data);

// The end-of-line id the language-model corpus appends to every line.
std::int32_t end_of_line_id(const data::Tokenizer& tokenizer);

// Where the token caches go: data.cache_dir, else $TOPKFORMER_CACHE, else
// ~/.cache/topkformer (the data folder may be read-only).
std::filesystem::path token_cache_dir(const DataConfig& data);

// The order training batches are drawn in: shuffled by runtime.seed, and
// only full batches, so that every update splits into equal micro-batches.
data::BatcherOptions training_sampler_options(const Config& config);

// The indices of at most `limit` of `count` items (all when limit is 0),
// spread evenly rather than the first ones, since files are often sorted by
// label (IMDb holds all positive reviews first).
std::vector<std::int64_t> spread_indices(std::int64_t count, std::int64_t limit);

// The memory planner's synthetic token ids (Task::draw_synthetic_batch): i64
// [rows, length], cycling through the vocabulary. Memory does not depend on
// the values, so they are fixed rather than drawn (no generator is touched).
Tensor synthetic_ids(std::int64_t rows, std::int64_t length, std::int64_t vocab_size);

}  // namespace topkformer::train
