// `topkformer data ...`: prepare datasets. `data listops` writes LRA's ListOps
// splits with the seeded generator; `data vocab` and `data sentencepiece`
// make the tokenizers a config's `data.vocab` names.
#include <iostream>
#include <memory>
#include <string>

#include "app/commands.h"
#include "topkformer/data/listops.h"
#include "topkformer/data/sentencepiece_tokenizer.h"
#include "topkformer/data/word_vocabulary.h"

namespace topkformer::app {

namespace {

struct ListOpsCommandOptions {
  std::string directory;
  std::uint64_t seed = 0;
  data::ListOpsSplitSizes sizes;
  data::ListOpsOptions generator;
};

void add_data_listops_command(CLI::App& data_command) {
  auto options = std::make_shared<ListOpsCommandOptions>();
  CLI::App* listops = data_command.add_subcommand(
      "listops", "Generate LRA ListOps: DIR/basic_{train,val,test}.tsv (Source<TAB>Target)");
  listops->add_option("--out", options->directory, "Directory to write the three files into")
      ->required();
  listops->add_option("--seed", options->seed, "Seed; each split gets its own seed derived from it")
      ->capture_default_str();
  listops->add_option("--train", options->sizes.train, "Training examples")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  listops->add_option("--val", options->sizes.val, "Validation examples")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  listops->add_option("--test", options->sizes.test, "Test examples")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  listops
      ->add_option("--min-length", options->generator.min_length,
                   "Keep expressions longer than this many tokens")
      ->capture_default_str();
  listops
      ->add_option("--max-length", options->generator.max_length,
                   "Keep expressions shorter than this many tokens")
      ->capture_default_str();
  listops->add_option("--max-depth", options->generator.max_depth, "Deepest node (the root is 1)")
      ->capture_default_str();
  listops->add_option("--max-args", options->generator.max_args, "Most arguments per operator")
      ->capture_default_str();
  listops->callback([options] {
    const auto written = data::write_listops_splits(options->directory, options->seed,
                                                    options->sizes, options->generator);
    const std::int64_t counts[] = {options->sizes.train, options->sizes.val, options->sizes.test};
    for (std::size_t split = 0; split < written.size(); ++split)
      std::cout << "wrote " << counts[split] << " examples to " << written[split].string() << '\n';
  });
}

struct VocabularyCommandOptions {
  std::string input, output;
  std::int64_t min_count = 1;
};

void add_data_vocab_command(CLI::App& data_command) {
  auto options = std::make_shared<VocabularyCommandOptions>();
  CLI::App* vocab = data_command.add_subcommand(
      "vocab", "Build a word vocabulary (data.tokenizer: word) from a training text");
  vocab->add_option("--input", options->input, "Training text, whitespace-tokenized")
      ->required()
      ->check(CLI::ExistingFile);
  vocab->add_option("--out", options->output, "Vocabulary file to write (token<TAB>count)")
      ->required();
  vocab->add_option("--min-count", options->min_count, "Rarer words become <unk>")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  vocab->callback([options] {
    const auto vocabulary = data::WordVocabulary::build(options->input, options->min_count);
    vocabulary.save(options->output);
    std::cout << "wrote " << vocabulary.vocab_size() << " entries to " << options->output << '\n';
  });
}

struct SentencePieceCommandOptions {
  std::string input, prefix, model_type = "unigram";
  std::int64_t vocab_size = 16384;
  double character_coverage = 1.0;
};

void add_data_sentencepiece_command(CLI::App& data_command) {
  auto options = std::make_shared<SentencePieceCommandOptions>();
  CLI::App* command = data_command.add_subcommand(
      "sentencepiece", "Train a SentencePiece model (data.tokenizer: sentencepiece)");
  command
      ->add_option("--input", options->input, "Training text, one sentence or paragraph per line")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--prefix", options->prefix, "Writes PREFIX.model and PREFIX.vocab")
      ->required();
  command->add_option("--vocab-size", options->vocab_size, "Pieces in the model")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--model-type", options->model_type, "Segmentation algorithm")
      ->check(CLI::IsMember({"unigram", "bpe", "char", "word"}))
      ->capture_default_str();
  command
      ->add_option("--character-coverage", options->character_coverage,
                   "Share of the characters the pieces cover (0.9995 for large alphabets)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  command->callback([options] {
    data::SentencePieceTrainOptions train_options;
    train_options.model_type = options->model_type;
    train_options.character_coverage = options->character_coverage;
    const auto model = data::SentencePieceTokenizer::train(options->input, options->prefix,
                                                           options->vocab_size, train_options);
    std::cout << "wrote " << model.string() << '\n';
  });
}

}  // namespace

void add_data_command(CLI::App& app) {
  CLI::App* data_command = app.add_subcommand("data", "Prepare datasets");
  data_command->require_subcommand(1);
  add_data_listops_command(*data_command);
  add_data_vocab_command(*data_command);
  add_data_sentencepiece_command(*data_command);
}

}  // namespace topkformer::app
