#include "replicas.h"

#include <algorithm>
#include <bit>
#include <string>

#include "config_schema.h"
#include "file_io.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"

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

namespace {

// One thing the ranks must agree on: "'encoder.w'" and "f32 [32, 64]", or
// "model.d_model" and "32".
struct Entry {
  std::string label, value;
};

// The entries of one kind ("model", "config", "data"), in a fixed order.
struct Fingerprint {
  std::string kind;
  std::vector<Entry> entries;
};

// Config keys that may differ between ranks: a rank's own GPU (train rewrites
// cuda to cuda:<local rank>), its cores, and paths, which differ between
// machines (the data fingerprint compares what the files hold).
bool per_rank(const std::string& key) {
  return key == "runtime.device" || key == "runtime.threads" || key == "data.dir" ||
         key == "data.vocab" || key == "data.cache_dir";
}

Fingerprint model_fingerprint(const nn::NamedTensors& model, const nn::NamedTensors& optimizer) {
  Fingerprint fingerprint{"model", {}};
  const auto add = [&](const std::string& prefix, const nn::NamedTensors& tensors) {
    for (const auto& [name, tensor] : tensors) {
      fingerprint.entries.push_back(
          {prefix + "'" + name + "'",
           std::string(dtype_name(tensor.dtype())) + " " + shape_str(tensor.shape())});
    }
  };
  add("", model);
  add("optimizer state ", optimizer);
  return fingerprint;
}

Fingerprint config_fingerprint(const Config& config) {
  Fingerprint fingerprint{"config", {{"topkformer version", version()}}};
  for (const schema::Key& key : schema::keys()) {
    if (!per_rank(key.path())) fingerprint.entries.push_back({key.path(), key.write(config)});
  }
  return fingerprint;
}

Fingerprint data_fingerprint(Task& task) {
  Fingerprint fingerprint{"data", {}};
  for (auto& [label, value] : task.data_identity()) {
    fingerprint.entries.push_back({std::move(label), std::move(value)});
  }
  return fingerprint;
}

std::int64_t hash_of(const Entry& entry) {
  detail::Fnv1a64 hash;
  hash.update(entry.label.data(), entry.label.size() + 1);  // with the NUL, as a separator
  hash.update(entry.value.data(), entry.value.size());
  return std::bit_cast<std::int64_t>(hash.value());
}

// Every rank's `values` (as many on every rank), row r holding rank r's.
std::vector<std::vector<std::int64_t>> gather(dist::Communicator& communicator,
                                              const std::vector<std::int64_t>& values) {
  const auto count = std::int64_t(values.size());
  const std::vector<std::int64_t> all =
      communicator.all_gather(Tensor::from_vector<std::int64_t>({count}, values))
          .to_vector<std::int64_t>();
  std::vector<std::vector<std::int64_t>> rows;
  for (auto row = all.begin(); row != all.end(); row += count) rows.emplace_back(row, row + count);
  return rows;
}

// The label and value of entry `index` on every rank, each cut to a fixed
// size for the gather; an empty label: the rank has no such entry.
constexpr std::size_t text_bytes = 256;
std::vector<Entry> gather_entry(dist::Communicator& communicator, const std::vector<Entry>& entries,
                                std::int64_t index) {
  std::vector<std::uint8_t> bytes(2 * text_bytes, 0);
  if (index < std::int64_t(entries.size())) {
    const Entry& entry = entries[std::size_t(index)];
    std::copy_n(entry.label.begin(), std::min(entry.label.size(), text_bytes - 1), bytes.begin());
    std::copy_n(entry.value.begin(), std::min(entry.value.size(), text_bytes - 1),
                bytes.begin() + text_bytes);
  }
  const std::vector<std::uint8_t> all =
      communicator
          .all_gather(Tensor::from_vector<std::uint8_t>({std::int64_t(bytes.size())}, bytes))
          .to_vector<std::uint8_t>();
  std::vector<Entry> result;
  for (std::size_t row = 0; row < all.size(); row += bytes.size()) {
    const auto text = [&](std::size_t offset) {
      return std::string(reinterpret_cast<const char*>(&all[row + offset]));
    };
    result.push_back({text(0), text(text_bytes)});
  }
  return result;
}

// What differs between rank 0's and rank `rank`'s entries of `fingerprint`,
// found with collectives of the same size on every rank: `counts` (every
// rank's, as gathered) decides how many hashes each rank sends.
std::string first_difference(dist::Communicator& communicator, const Fingerprint& fingerprint,
                             const std::vector<std::int64_t>& counts, int rank) {
  const std::int64_t common = *std::min_element(counts.begin(), counts.end());
  std::int64_t index = common;
  if (common > 0) {
    std::vector<std::int64_t> hashes;
    for (std::int64_t i = 0; i < common; ++i) {
      hashes.push_back(hash_of(fingerprint.entries[std::size_t(i)]));
    }
    const auto rows = gather(communicator, hashes);
    const auto differs =
        std::mismatch(rows[0].begin(), rows[0].end(), rows[std::size_t(rank)].begin());
    index = differs.first - rows[0].begin();
  }
  const std::vector<Entry> entries = gather_entry(communicator, fingerprint.entries, index);
  const Entry& ours = entries[0];
  const Entry& theirs = entries[std::size_t(rank)];
  const std::string r = std::to_string(rank);
  if (!ours.label.empty() && ours.label == theirs.label) {
    return ours.label + " is " + theirs.value + " on rank " + r + " and " + ours.value +
           " on rank 0";
  }
  if (!ours.label.empty() && !theirs.label.empty()) {
    return "entry " + std::to_string(index + 1) + " is " + theirs.label + " " + theirs.value +
           " on rank " + r + " and " + ours.label + " " + ours.value + " on rank 0";
  }
  if (ours.label.empty() && theirs.label.empty()) {
    return "entries whose hashes differ";  // only a hash collision leads here
  }
  const bool rank0_has_more = theirs.label.empty();
  const Entry& extra = rank0_has_more ? ours : theirs;
  return "rank 0 has " + std::to_string(counts[0]) + " entries and rank " + r + " " +
         std::to_string(counts[std::size_t(rank)]) + "; the first extra one, on rank " +
         (rank0_has_more ? std::string("0") : r) + ": " + extra.label + " " + extra.value;
}

}  // namespace

void check_replicas_agree(dist::Communicator& communicator, const Config& config, Task& task,
                          const nn::NamedTensors& model, const nn::NamedTensors& optimizer) {
  if (communicator.world_size() == 1) return;
  const std::vector<Fingerprint> fingerprints = {
      model_fingerprint(model, optimizer), config_fingerprint(config), data_fingerprint(task)};
  // First what every rank can send whatever it built: each kind's count and hash.
  std::vector<std::int64_t> summary;
  for (const Fingerprint& fingerprint : fingerprints) {
    detail::Fnv1a64 hash;
    for (const Entry& entry : fingerprint.entries) {
      const std::int64_t entry_hash = hash_of(entry);
      hash.update(&entry_hash, sizeof entry_hash);
    }
    summary.push_back(std::int64_t(fingerprint.entries.size()));
    summary.push_back(std::bit_cast<std::int64_t>(hash.value()));
  }
  const auto rows = gather(communicator, summary);
  std::vector<std::string> problems;
  for (std::size_t kind = 0; kind < fingerprints.size(); ++kind) {
    std::vector<int> differing;
    std::vector<std::int64_t> counts;
    for (std::size_t rank = 0; rank < rows.size(); ++rank) {
      counts.push_back(rows[rank][2 * kind]);
      if (rows[rank][2 * kind] != rows[0][2 * kind] ||
          rows[rank][2 * kind + 1] != rows[0][2 * kind + 1]) {
        differing.push_back(int(rank));
      }
    }
    if (differing.empty()) continue;
    const std::string& kind_name = fingerprints[kind].kind;
    std::string problem =
        "rank " + std::to_string(differing[0]) + "'s " + kind_name + " differs from rank 0's";
    if (differing.size() > 1) {
      problem += " (as do " + std::to_string(differing.size() - 1) + " other ranks')";
    }
    problems.push_back(problem + ": " +
                       first_difference(communicator, fingerprints[kind], counts, differing[0]));
  }
  if (problems.empty()) return;
  std::string message =
      "the ranks of this job would train different models, and the first broadcast would "
      "corrupt their memory: ";
  for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  throw Error(message +
              ". Every rank must run the same config on the same data (docs/distributed.md)");
}

}  // namespace topkformer::train
