// Language modelling (WikiText-103): next-token cross-entropy over training
// blocks, perplexity over non-overlapping evaluation segments.
#pragma once

#include <memory>

#include "topkformer/data/tokenizer.h"
#include "topkformer/train/task.h"

namespace topkformer::train {

std::unique_ptr<Task> make_language_model_task(const Config& config,
                                               std::unique_ptr<data::Tokenizer> tokenizer);

}  // namespace topkformer::train
