#include "task_data.h"

#include <cstdlib>

#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/data/byte_tokenizer.h"
#include "topkformer/data/listops_tokenizer.h"
#include "topkformer/data/sentencepiece_tokenizer.h"
#include "topkformer/data/word_vocabulary.h"

namespace topkformer::train {

std::unique_ptr<data::Tokenizer> make_tokenizer(const DataConfig& data) {
  switch (data.tokenizer) {
    case TokenizerKind::listops:
      return std::make_unique<data::ListOpsTokenizer>();
    case TokenizerKind::byte:
      return std::make_unique<data::ByteTokenizer>();
    case TokenizerKind::word:
      // Built from the train split when no vocabulary file is given: the
      // build is deterministic, so training and evaluation agree on the ids.
      if (data.vocab.empty()) {
        auto vocabulary = std::make_unique<data::WordVocabulary>(
            data::WordVocabulary::build(data.train_path(), data.vocab_min_count));
        release_free_host_memory();  // the count of every word, freed
        return vocabulary;
      }
      return std::make_unique<data::WordVocabulary>(
          data::WordVocabulary::load(expand_path(data.vocab)));
    case TokenizerKind::sentencepiece:
      return std::make_unique<data::SentencePieceTokenizer>(
          data::SentencePieceTokenizer::load(expand_path(data.vocab)));
    case TokenizerKind::count:
      break;
  }
  throw Error("make_tokenizer: unknown tokenizer kind");
}

std::int32_t end_of_line_id(const data::Tokenizer& tokenizer) {
  if (const auto* words = dynamic_cast<const data::WordVocabulary*>(&tokenizer)) {
    return words->eos_id();
  }
  if (const auto* pieces = dynamic_cast<const data::SentencePieceTokenizer*>(&tokenizer)) {
    return pieces->eos_id();
  }
  if (const auto* bytes = dynamic_cast<const data::ByteTokenizer*>(&tokenizer)) {
    return bytes->eos_id();
  }
  throw Error(
      "data.tokenizer: the lm task needs a tokenizer with an end-of-line token "
      "(word, sentencepiece or byte)");
}

data::BatcherOptions training_sampler_options(const Config& config) {
  data::BatcherOptions options;
  options.batch_size = config.train.batch_size;
  options.seed = config.runtime.seed;
  options.drop_last = true;
  return options;
}

std::vector<std::int64_t> spread_indices(std::int64_t count, std::int64_t limit) {
  const std::int64_t kept = limit <= 0 || limit >= count ? count : limit;
  std::vector<std::int64_t> indices(static_cast<std::size_t>(kept));
  for (std::int64_t i = 0; i < kept; ++i) indices[std::size_t(i)] = i * count / kept;
  return indices;
}

std::filesystem::path token_cache_dir(const DataConfig& data) {
  if (!data.cache_dir.empty()) return expand_path(data.cache_dir);
  if (const char* cache = std::getenv("TOPKFORMER_CACHE"); cache != nullptr && *cache != '\0') {
    return cache;
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / ".cache" / "topkformer";
  }
  return std::filesystem::temp_directory_path() / "topkformer-cache";
}

Tensor synthetic_ids(std::int64_t rows, std::int64_t length, std::int64_t vocab_size) {
  std::vector<std::int64_t> ids(std::size_t(rows * length));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int64_t(i) % vocab_size;
  return Tensor::from_vector<std::int64_t>({rows, length}, ids);
}

}  // namespace topkformer::train
