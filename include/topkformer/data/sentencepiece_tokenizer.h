// Subword tokenizer backed by the SentencePiece library: train() writes a
// model from a text corpus, load() reads one (ours or anyone's).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "topkformer/data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace topkformer::data {

struct SentencePieceTrainOptions {
  std::string model_type = "unigram";  // unigram | bpe | char | word
  // Share of the corpus' characters the pieces must cover; the rest become
  // <unk>. 1.0 suits alphabets as small as English; SentencePiece suggests
  // 0.9995 for large ones such as Chinese or Japanese.
  double character_coverage = 1.0;
  // Any other trainer flag by its SentencePiece name (e.g. input_sentence_size,
  // max_sentencepiece_length); these override the values train() sets.
  std::map<std::string, std::string> trainer_arguments;
};

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // The piece train() adds as the model's control symbol for CLS pooling.
  static constexpr std::string_view cls_piece = "<cls>";

  // Trains a model of `vocab_size` pieces on `corpus` (one sentence or
  // paragraph per line), writes <model_prefix>.model and <model_prefix>.vocab,
  // and returns the path of the .model file. The model holds <unk> (0), <s> (1),
  // </s> (2), <pad> (3) and the control symbol <cls> (4).
  static std::filesystem::path train(const std::filesystem::path& corpus,
                                     const std::filesystem::path& model_prefix,
                                     std::int64_t vocab_size,
                                     const SentencePieceTrainOptions& options = {});
  // Pad, cls and eos are the model's own pieces (<pad>, <cls>, </s>) when it
  // has them; each one it lacks gets an id past the model's pieces, in the
  // order pad, cls, eos, and vocab_size() counts them.
  static SentencePieceTokenizer load(const std::filesystem::path& model_path);

  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer& operator=(SentencePieceTokenizer&&) noexcept;
  ~SentencePieceTokenizer() override;

  // The model's pieces for `text`; no <s> or </s> is added.
  TokenIds encode(std::string_view text) const override;
  // The text of the pieces; pad, cls, eos and <s> are skipped; an id outside
  // the vocabulary throws.
  std::string decode(const TokenIds& ids) const override;
  std::int64_t vocab_size() const override { return vocab_size_; }
  std::int32_t pad_id() const override { return pad_; }
  std::int32_t cls_id() const override { return cls_; }
  std::int32_t eos_id() const { return eos_; }
  // Pieces in the model file; ids from here to vocab_size() are the reserved ones.
  std::int64_t piece_count() const { return piece_count_; }
  // "sentencepiece:<vocab size>:<hash of the serialized model>".
  std::string fingerprint() const override { return fingerprint_; }

 private:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor,
                         std::filesystem::path model_path);

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::filesystem::path model_path_;
  std::int64_t piece_count_ = 0;
  std::int64_t vocab_size_ = 0;
  std::int32_t pad_ = -1;
  std::int32_t cls_ = -1;
  std::int32_t eos_ = -1;
  std::string fingerprint_;
};

}  // namespace topkformer::data
