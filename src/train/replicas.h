// Keeping the ranks of a data-parallel run in agreement: what rank 0 decides
// or loads is broadcast, and what each rank measures on its shard is added up.
#pragma once

#include "topkformer/dist/communicator.h"
#include "topkformer/nn/module.h"
#include "topkformer/train/checkpoint.h"
#include "topkformer/train/task.h"

namespace topkformer::train {

// Checks, before anything is broadcast, that every rank built the same
// replica: the same names, dtypes and shapes of parameters, buffers and
// optimizer state; the same config (but for the keys that may differ between
// machines: runtime.device, runtime.threads and the paths data.dir,
// data.vocab, data.cache_dir) and program version; the same data (tokenizer
// and vocabulary, training split size). Otherwise throws on every rank an
// Error naming, for each kind that differs, the first rank that differs from
// rank 0 and the first difference. Until every rank knows the others' counts
// only fixed-size buffers travel, so the check is safe whatever the ranks
// built. Reads the training split.
void check_replicas_agree(dist::Communicator& communicator, const Config& config, Task& task,
                          const nn::NamedTensors& model, const nn::NamedTensors& optimizer);

// Every rank's tensors become rank 0's.
void broadcast_tensors(dist::Communicator& communicator, const nn::NamedTensors& tensors);

// The numbers of rank 0's state (its strings stay where they are: only rank 0 saves).
void broadcast_state(dist::Communicator& communicator, TrainingState& state);

// The evaluation of the whole split from the shards' sums, completed unless
// a stop request interrupted it on any rank (then marked interrupted).
void combine_shards(dist::Communicator& communicator, EvalResult& result);

// Element-wise sums over the ranks.
std::vector<double> sum_over_ranks(dist::Communicator& communicator, std::vector<double> values);

}  // namespace topkformer::train
