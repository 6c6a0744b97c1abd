#include "topkformer/data/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "topkformer/core/error.h"

namespace topkformer::data {
std::filesystem::path SentencePieceTokenizer::train(const std::filesystem::path& corpus,
                                                    const std::filesystem::path& model_prefix,
                                                    std::int64_t vocab_size,
                                                    const SentencePieceTrainOptions& options) {
  TKF_CHECK(vocab_size > 0, "sentencepiece: vocab_size must be positive, got ", vocab_size);
  std::ostringstream coverage;
  coverage << options.character_coverage;
  std::unordered_map<std::string, std::string> arguments{
      {"input", corpus.string()},
      {"model_prefix", model_prefix.string()},
      {"vocab_size", std::to_string(vocab_size)},
      {"model_type", options.model_type},
      {"character_coverage", coverage.str()},
      {"pad_id", "3"},
      {"control_symbols", std::string(cls_piece)},
      // The trainer reports every step at INFO; warnings and errors still show.
      {"minloglevel", "1"},
  };
  for (const auto& [name, value] : options.trainer_arguments) arguments[name] = value;

  const auto status = sentencepiece::SentencePieceTrainer::Train(arguments);
  TKF_CHECK(status.ok(), "sentencepiece: training on '", corpus.string(), "' for '",
            model_prefix.string(), "' failed: ", status.ToString());
  return model_prefix.string() + ".model";
}

SentencePieceTokenizer SentencePieceTokenizer::load(const std::filesystem::path& model_path) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = processor->Load(model_path.string());
  TKF_CHECK(status.ok(), "sentencepiece: cannot load model '", model_path.string(),
            "': ", status.ToString());
  return SentencePieceTokenizer(std::move(processor), model_path);
}

SentencePieceTokenizer::SentencePieceTokenizer(
    std::unique_ptr<sentencepiece::SentencePieceProcessor> processor,
    std::filesystem::path model_path)
    : processor_(std::move(processor)), model_path_(std::move(model_path)) {
  piece_count_ = processor_->GetPieceSize();
  vocab_size_ = piece_count_;
  const auto model_or_reserved = [this](int model_id) {
    return model_id >= 0 ? model_id : static_cast<std::int32_t>(vocab_size_++);
  };
  // PieceToId answers unk_id() for a piece the model lacks.
  const int model_cls = processor_->PieceToId(cls_piece);
  pad_ = model_or_reserved(processor_->pad_id());
  cls_ = model_or_reserved(processor_->IsUnknown(model_cls) ? -1 : model_cls);
  eos_ = model_or_reserved(processor_->eos_id());
  fingerprint_ = "sentencepiece:" + std::to_string(vocab_size_) + ":" +
                 std::to_string(std::hash<std::string>{}(processor_->serialized_model_proto()));
}

SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer& SentencePieceTokenizer::operator=(SentencePieceTokenizer&&) noexcept =
    default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

TokenIds SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = processor_->Encode(text, &ids);
  TKF_CHECK(status.ok(), "sentencepiece: encoding with '", model_path_.string(),
            "' failed: ", status.ToString());
  return TokenIds(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode(const TokenIds& ids) const {
  std::vector<int> pieces;
  pieces.reserve(ids.size());
  for (std::size_t position = 0; position < ids.size(); ++position) {
    const std::int32_t id = ids[position];
    TKF_CHECK(id >= 0 && id < vocab_size_, "sentencepiece: id ", id, " at position ", position,
              " is outside the vocabulary [0, ", vocab_size_, ") of '", model_path_.string(), "'");
    if (id == pad_ || id == cls_ || id == eos_ || id >= piece_count_) continue;
    pieces.push_back(id);
  }
  std::string text;
  const auto status = processor_->Decode(pieces, &text);
  TKF_CHECK(status.ok(), "sentencepiece: decoding with '", model_path_.string(),
            "' failed: ", status.ToString());
  return text;
}

}  // namespace topkformer::data
