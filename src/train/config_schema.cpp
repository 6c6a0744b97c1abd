// The schema table: every key of every section, the rules between keys, and
// the helpers that write values as YAML.
#include "config_schema.h"

#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <charconv>

#include "config_keys.h"
#include "topkformer/attention/config.h"

namespace topkformer::train::schema {
namespace {

// Binds a key to a Config member. The lambda is generic so the same binding
// reads through `Config&` and `const Config&`.
// clang-format off
#define TKF_MEMBER(member) [](auto& config) -> auto& { return config.member; }
// clang-format on

// The keys of one section, in file order.
void add(std::vector<Key>& table, const std::string& section, std::vector<Key> keys) {
  for (Key& key : keys) {
    key.section = section;
    table.push_back(std::move(key));
  }
}

std::vector<Key> build_keys() {
  std::vector<Key> table;
  add(table, "model",
      {
          integer("layers", TKF_MEMBER(model.transformer.layers), at_least(1),
                  "Transformer blocks"),
          integer("d_model", TKF_MEMBER(model.transformer.d_model), at_least(1),
                  "width of the token representations"),
          integer("heads", TKF_MEMBER(model.transformer.heads), at_least(1),
                  "attention heads; must divide d_model"),
          integer("d_ff", TKF_MEMBER(model.transformer.d_ff), at_least(1),
                  "hidden units of each feed-forward layer"),
          number("dropout", TKF_MEMBER(model.transformer.dropout), fraction(),
                 "dropout on the embeddings and on every sublayer output"),
          flag("pre_layer_norm", TKF_MEMBER(model.transformer.pre_layer_norm),
               "true: pre-LN blocks, x + f(LN(x)); false: post-LN, LN(x + f(x))"),
          choice("positions", TKF_MEMBER(model.positions), nn::position_kind_names,
                 "position encoding: a learned table or fixed sinusoids"),
          number("embedding_init_std", TKF_MEMBER(model.embedding_init_std), positive(),
                 "std of the token embeddings' normal initialisation; sinusoidal positions "
                 "need a token signal of comparable size (docs/models.md)"),
          flag("scale_embeddings", TKF_MEMBER(model.scale_embeddings),
               "multiply the token embeddings by sqrt(d_model) at the input (Vaswani et al.)"),
          choice("pooling", TKF_MEMBER(model.pooling), models::pooling_names,
                 "classifiers: the CLS position's state, or the mean over the text"),
          integer("head_hidden", TKF_MEMBER(model.head_hidden), at_least(0),
                  "classifiers: hidden width of the MLP head; 0: d_model"),
          flag("tie_embeddings", TKF_MEMBER(model.tie_embeddings),
               "lm: the output projection shares the token embedding matrix"),
          integer("max_length", TKF_MEMBER(model.max_length), at_least(0),
                  "longest input the positions cover; 0: data.max_length "
                  "(lm: eval.segment_length when longer)"),
      });
  add(table, "attention",
      {
          choice("kind", TKF_MEMBER(model.transformer.attention.kind),
                 attention::attention_kind_names,
                 "the attention variant of every layer (docs/attention.md)"),
          integer("k", TKF_MEMBER(model.transformer.attention.k), at_least(1),
                  "topk: keys kept per query (at most all keys)"),
          integer("chunk_size", TKF_MEMBER(model.transformer.attention.chunk_size), at_least(1),
                  "chunked, topk: queries per chunk"),
          integer("num_features", TKF_MEMBER(model.transformer.attention.num_features), at_least(1),
                  "performer: random features"),
          integer("feature_redraw_interval",
                  TKF_MEMBER(model.transformer.attention.feature_redraw_interval), at_least(0),
                  "performer: new random features every N training calls; 0: never"),
          number("dropout", TKF_MEMBER(model.transformer.attention.dropout), fraction(),
                 "dropout on the attention probabilities while training"),
      });
  add(table, "feedforward",
      {
          choice("kind", TKF_MEMBER(model.transformer.feed_forward.kind),
                 nn::feed_forward_kind_names,
                 "dense, chunked over tokens, or top-k over the hidden units"),
          integer("k", TKF_MEMBER(model.transformer.feed_forward.k), at_least(1),
                  "topk: hidden units kept per token (at most model.d_ff)"),
          integer("chunk_size", TKF_MEMBER(model.transformer.feed_forward.chunk_size), at_least(1),
                  "chunked, topk: tokens per chunk"),
          choice("activation", TKF_MEMBER(model.transformer.feed_forward.activation),
                 nn::activation_names, "activation between the two projections"),
      });
  add(table, "data",
      {
          choice("task", TKF_MEMBER(data.task), task_names,
                 "classifiers (listops, text: IMDb), AAN dual encoder (retrieval), "
                 "next-token language model (lm)"),
          text("dir", TKF_MEMBER(data.dir), {.required = true, .path = true},
               "folder of the split files"),
          text("train_file", TKF_MEMBER(data.train_file), {.required = true},
               "training split, in dir"),
          text("valid_file", TKF_MEMBER(data.valid_file), {.required = true},
               "validation split, in dir"),
          text("test_file", TKF_MEMBER(data.test_file), {.required = true}, "test split, in dir"),
          choice("tokenizer", TKF_MEMBER(data.tokenizer), tokenizer_names,
                 "how text becomes token ids"),
          text("vocab", TKF_MEMBER(data.vocab), {.path = true},
               "word: vocabulary file (empty: built from the training split); "
               "sentencepiece: the .model file (required)"),
          integer("vocab_min_count", TKF_MEMBER(data.vocab_min_count), at_least(1),
                  "word: words seen fewer times in the training split become `<unk>`"),
          integer("max_length", TKF_MEMBER(data.max_length), at_least(1),
                  "classifiers: most tokens per text, CLS included; lm: tokens per training block"),
          flag("skip_bad_lines", TKF_MEMBER(data.skip_bad_lines),
               "skip (and count) malformed lines instead of failing"),
          integer("max_train_examples", TKF_MEMBER(data.max_train_examples), at_least(0),
                  "use only N training examples (spread evenly through the file; lm: the first N "
                  "blocks); 0: all"),
          integer("max_eval_examples", TKF_MEMBER(data.max_eval_examples), at_least(0),
                  "the same for validation and test (lm: the first N segments); 0: all"),
          text("cache_dir", TKF_MEMBER(data.cache_dir), {.path = true},
               "folder of the token caches of the splits; empty: $TOPKFORMER_CACHE, else "
               "~/.cache/topkformer"),
      });
  add(table, "optimizer",
      {
          choice("kind", TKF_MEMBER(optimizer.kind), optimizer_names,
                 "AdamW (decoupled weight decay) or SGD with momentum"),
          number("learning_rate", TKF_MEMBER(optimizer.learning_rate), positive(),
                 "base learning rate, which the schedule scales"),
          number("beta1", TKF_MEMBER(optimizer.beta1), fraction(),
                 "adamw: decay rate of the gradient average"),
          number("beta2", TKF_MEMBER(optimizer.beta2), fraction(),
                 "adamw: decay rate of the squared-gradient average"),
          number("eps", TKF_MEMBER(optimizer.eps), positive(),
                 "adamw: added to the root of the squared-gradient average"),
          number("momentum", TKF_MEMBER(optimizer.momentum), fraction(), "sgd: momentum"),
          number("weight_decay", TKF_MEMBER(optimizer.weight_decay), at_least(0),
                 "weight decay per unit learning rate; 0: none"),
          string_list("no_decay", TKF_MEMBER(optimizer.no_decay),
                      "parameter name patterns (shell-style) that get no weight decay"),
          number("clip_norm", TKF_MEMBER(optimizer.clip_norm), at_least(0),
                 "clip the global gradient norm to this; 0: no clipping (still logged)"),
      });
  add(table, "schedule",
      {
          choice("kind", TKF_MEMBER(schedule.kind), optim::schedule_kind_names,
                 "the learning-rate curve after the warm-up"),
          integer("warmup_steps", TKF_MEMBER(schedule.warmup_steps), at_least(0),
                  "updates of linear warm-up from 0"),
          integer("total_steps", TKF_MEMBER(schedule.total_steps), at_least(0),
                  "cosine, linear: the update where the decay ends; 0: train.steps"),
          number("min_learning_rate", TKF_MEMBER(schedule.min_learning_rate), at_least(0),
                 "cosine, linear: the rate at the end of the decay"),
      });
  add(table, "train",
      {
          integer("steps", TKF_MEMBER(train.steps), at_least(1), "optimizer updates"),
          integer("batch_size", TKF_MEMBER(train.batch_size), at_least(1),
                  "examples (lm: blocks) per optimizer update"),
          integer("accumulation", TKF_MEMBER(train.accumulation), at_least(1),
                  "micro-batches each update is split into; must divide batch_size"),
          integer("log_every", TKF_MEMBER(train.log_every), at_least(1),
                  "log the training loss every N updates"),
          integer("eval_every", TKF_MEMBER(train.eval_every), at_least(0),
                  "evaluate eval.split every N updates; 0: only at the end"),
          integer("save_every", TKF_MEMBER(train.save_every), at_least(0),
                  "write a checkpoint every N updates; 0: only at the end (and by time)"),
          number("save_every_minutes", TKF_MEMBER(train.save_every_minutes), at_least(0),
                 "also write one when this many minutes of training passed since the last "
                 "save, so a crash or a full disk loses at most that much; 0: never"),
          integer("keep_last", TKF_MEMBER(train.keep_last), at_least(1),
                  "step checkpoints kept (the best one is kept besides)"),
          number("label_smoothing", TKF_MEMBER(train.label_smoothing), fraction(),
                 "label smoothing of the training loss"),
          choice("best_metric", TKF_MEMBER(train.best_metric), metric_names,
                 "what picks the best checkpoint; auto: accuracy (classifiers) or "
                 "perplexity (lm)"),
          integer("early_stopping", TKF_MEMBER(train.early_stopping), at_least(0),
                  "stop after N evaluations without improvement; 0: never"),
          integer("max_bad_steps", TKF_MEMBER(train.max_bad_steps), at_least(0),
                  "consecutive NaN/Inf updates skipped before the run stops"),
          flag("recompute_layers", TKF_MEMBER(model.transformer.recompute_layers),
               "recompute each Transformer block in the backward pass, keeping only its input: "
               "less memory for about one more forward pass; the same gradients (old name: "
               "`checkpoint_layers`, still read)"),
      });
  add(table, "eval",
      {
          integer("batch_size", TKF_MEMBER(eval.batch_size), at_least(1),
                  "examples (lm: segments) per evaluation batch"),
          integer("segment_length", TKF_MEMBER(eval.segment_length), at_least(1),
                  "lm: tokens per non-overlapping evaluation segment"),
          integer("max_batches", TKF_MEMBER(eval.max_batches), at_least(0),
                  "evaluations during training stop after N batches; 0: all"),
          choice("split", TKF_MEMBER(eval.split), eval_split_names,
                 "the split evaluated during training"),
      });
  add(table, "runtime",
      {
          device_key("device", TKF_MEMBER(runtime.device),
                     "where tensors live; cuda needs a build with the CUDA backend and a GPU"),
          integer("threads", TKF_MEMBER(runtime.threads), at_least(0),
                  "CPU threads; 0: all cores; more than 4 per core are cut to that"),
          integer("seed", TKF_MEMBER(runtime.seed), at_least(0),
                  "seed of the initialisation, dropout and data order"),
          choice("precision", TKF_MEMBER(runtime.precision), matmul_precision_names,
                 "matrix products on a GPU: fp32, or on tensor cores with inputs rounded to tf32 "
                 "or bf16 (fp32 accumulation, weights and everything else in fp32)"),
          choice("distributed", TKF_MEMBER(runtime.distributed), dist::backend_names,
                 "data-parallel backend: auto (mpi or nccl when started by an MPI launcher with "
                 "several ranks, else single), single, mpi (CPU), nccl (device cuda)"),
          number("collective_timeout", TKF_MEMBER(runtime.collective_timeout), at_least(0),
                 "seconds a rank waits in a collective for the other ranks before it ends the "
                 "job naming those that do not respond (stopped, hung); 0: forever, with MPI's "
                 "blocking calls"),
      });
  return table;
}

#undef TKF_MEMBER

std::string show(std::int64_t value) {
  return std::to_string(value);
}

std::vector<Rule> build_rules() {
  return {
      {{"model.heads", "model.d_model"},
       "`model.heads` divides `model.d_model`",
       [](const Config& c) -> std::string {
         const auto& t = c.model.transformer;
         if (t.d_model % t.heads == 0) return "";
         return "must divide model.d_model (" + show(t.d_model) + "), got " + show(t.heads);
       }},
      {{"model.max_length", "data.max_length", "eval.segment_length", "data.task"},
       "`model.max_length` is 0 or at least `data.max_length` (lm: and `eval.segment_length`)",
       [](const Config& c) -> std::string {
         // Mirrors how the trainer resolves 0: the positions must cover every input.
         std::int64_t needed = c.data.max_length;
         std::string from = "data.max_length";
         if (c.data.task == TaskKind::lm && c.eval.segment_length > needed) {
           needed = c.eval.segment_length;
           from = "eval.segment_length";
         }
         if (c.model.max_length == 0 || c.model.max_length >= needed) return "";
         return "must be 0 or cover " + from + " (" + show(needed) + "), got " +
                show(c.model.max_length);
       }},
      {{"data.tokenizer", "data.vocab"},
       "`data.tokenizer: sentencepiece` needs `data.vocab`",
       [](const Config& c) -> std::string {
         if (c.data.tokenizer != TokenizerKind::sentencepiece || !c.data.vocab.empty()) return "";
         return "sentencepiece needs data.vocab (the .model file), which is empty";
       }},
      {{"schedule.min_learning_rate", "optimizer.learning_rate", "schedule.kind"},
       "cosine and linear schedules: `schedule.min_learning_rate` <= `optimizer.learning_rate`",
       [](const Config& c) -> std::string {
         const bool decays = c.schedule.kind == optim::ScheduleKind::cosine ||
                             c.schedule.kind == optim::ScheduleKind::linear;
         if (!decays || c.schedule.min_learning_rate <= c.optimizer.learning_rate) return "";
         return "must be <= optimizer.learning_rate (" + format_number(c.optimizer.learning_rate) +
                ") for a decaying schedule, got " + format_number(c.schedule.min_learning_rate);
       }},
      {{"train.accumulation", "train.batch_size"},
       "`train.accumulation` divides `train.batch_size`",
       [](const Config& c) -> std::string {
         if (c.train.batch_size % c.train.accumulation == 0) return "";
         return "must divide train.batch_size (" + show(c.train.batch_size) + "), got " +
                show(c.train.accumulation);
       }},
      {{"train.best_metric", "data.task"},
       "`train.best_metric: perplexity` needs task lm; `accuracy` needs a classification task",
       [](const Config& c) -> std::string {
         const bool lm = c.data.task == TaskKind::lm;
         if (c.train.best_metric == Metric::perplexity && !lm) {
           return "perplexity needs data.task lm, got " + task_name(c.data.task);
         }
         if (c.train.best_metric == Metric::accuracy && lm) {
           return "accuracy needs a classification task, got data.task lm";
         }
         return "";
       }},
      {{"runtime.precision", "runtime.device"},
       "`runtime.precision: tf32` or `bf16` needs a `cuda` device",
       [](const Config& c) -> std::string {
         if (c.runtime.precision == MatmulPrecision::fp32 || c.runtime.device.starts_with("cuda")) {
           return "";
         }
         return matmul_precision_name(c.runtime.precision) + " needs a cuda device, got " +
                c.runtime.device;
       }},
      {{"runtime.distributed", "runtime.device"},
       "`runtime.distributed: nccl` needs a `cuda` device",
       [](const Config& c) -> std::string {
         if (c.runtime.distributed != dist::Backend::nccl || c.runtime.device.starts_with("cuda")) {
           return "";
         }
         return "nccl needs a cuda device, got " + c.runtime.device;
       }},
  };
}

bool is_plain_safe(const std::string& text) {
  if (text.empty()) return false;
  const auto letter = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '/';
  };
  const auto inner = [&](char c) {
    return letter(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
  };
  if (!letter(text.front())) return false;  // digits, '.', '-' could start a number
  for (char c : text) {
    if (!inner(c)) return false;
  }
  // Words YAML 1.1 or 1.2 readers resolve to booleans or null.
  static const std::vector<std::string> special = {"true", "false", "yes", "no",  "on",
                                                   "off",  "y",     "n",   "null"};
  std::string lower = text;
  for (char& c : lower) c = char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  for (const std::string& word : special) {
    if (lower == word) return false;
  }
  return true;
}

}  // namespace

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string yaml_error_text(const YAML::Exception& error) {
  // yaml-cpp stops recursing at a fixed depth (so deep input cannot overflow
  // the stack) but reports it as "bad file", which reads as an I/O error.
  if (const auto* deep = dynamic_cast<const YAML::DeepRecursion*>(&error)) {
    return "lists and maps nested " + std::to_string(deep->depth()) +
           " levels deep, deeper than the YAML parser accepts";
  }
  return error.msg;
}

const std::vector<Section>& sections() {
  static const std::vector<Section> table = {
      {"model",
       "The Transformer and the task's head. The vocabulary size comes from the tokenizer, "
       "the number of classes from the task and the initialisation seed is runtime.seed."},
      {"attention", "The attention variant of every layer and its knobs (docs/attention.md)."},
      {"feedforward", "The feed-forward variant of every layer (paper §2.1)."},
      {"data", "What is learned from which files (docs/data.md, docs/datasets.md)."},
      {"optimizer", "The optimizer and gradient clipping."},
      {"schedule", "The learning rate of each update: linear warm-up from 0, then the curve."},
      {"train", "The training loop: updates, batches, logging, evaluation and checkpoints."},
      {"eval", "Evaluation, during training and by `topkformer eval`."},
      {"runtime", "Where and how the run executes."},
  };
  return table;
}

const std::vector<Key>& keys() {
  static const std::vector<Key> table = build_keys();
  return table;
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> table = build_rules();
  return table;
}

const std::vector<std::pair<std::string, std::string>>& renamed_keys() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"train.checkpoint_layers", "train.recompute_layers"},
  };
  return table;
}

const std::vector<std::string>& evaluation_keys() {
  // Variants and their knobs (the paper's plug-and-play swap), the
  // evaluation, the data's location and size, and the runtime. Not
  // feedforward.activation: it changes what the trained weights compute.
  static const std::vector<std::string> table = {"attention",
                                                 "feedforward.kind",
                                                 "feedforward.k",
                                                 "feedforward.chunk_size",
                                                 "eval",
                                                 "data.dir",
                                                 "data.train_file",
                                                 "data.valid_file",
                                                 "data.test_file",
                                                 "data.vocab",
                                                 "data.max_length",
                                                 "data.skip_bad_lines",
                                                 "data.max_train_examples",
                                                 "data.max_eval_examples",
                                                 "data.cache_dir",
                                                 "runtime"};
  return table;
}

bool may_change_at_evaluation(const Key& key) {
  const std::vector<std::string>& allowed = evaluation_keys();
  return std::find(allowed.begin(), allowed.end(), key.section) != allowed.end() ||
         std::find(allowed.begin(), allowed.end(), key.path()) != allowed.end();
}

std::string quote(const std::string& text) {
  if (is_plain_safe(text)) return text;
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char digits[] = "0123456789abcdef";
          out += "\\x";
          out += digits[c >> 4];
          out += digits[c & 15];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string format_number(double value) {
  char buffer[64];
  std::string text(buffer, std::to_chars(buffer, buffer + sizeof buffer, value).ptr);
  if (text.find_first_of(".ni") != std::string::npos) return text;  // has '.', or inf/nan
  // Shortest form lacks a '.': 1 -> 1.0, 1e-08 -> 1.0e-08, 1e+20 -> 1.0e+20.
  const std::size_t exponent = text.find('e');
  return exponent == std::string::npos ? text + ".0" : text.insert(exponent, ".0");
}

}  // namespace topkformer::train::schema
