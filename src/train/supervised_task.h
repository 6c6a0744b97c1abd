// Classification (ListOps, IMDb text) and retrieval (AAN pairs): one label per
// example, cross-entropy loss, accuracy.
#pragma once

#include <memory>

#include "topkformer/data/tokenizer.h"
#include "topkformer/train/task.h"

namespace topkformer::train {

std::unique_ptr<Task> make_classification_task(const Config& config,
                                               std::unique_ptr<data::Tokenizer> tokenizer);
std::unique_ptr<Task> make_retrieval_task(const Config& config,
                                          std::unique_ptr<data::Tokenizer> tokenizer);

}  // namespace topkformer::train
