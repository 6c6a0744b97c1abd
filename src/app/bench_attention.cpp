// `topkformer bench attention`: time and peak memory of one multi-head
// attention layer per variant and length (the paper's Figure 1).
#include "app/bench_report.h"
#include "app/commands.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/nn/multi_head_attention.h"

namespace topkformer::app {

namespace {

struct AttentionBenchOptions : LayerBenchOptions {
  std::int64_t heads = 4, num_features = 256;
  bool causal = false;
};

void run_attention_bench(const AttentionBenchOptions& options) {
  const Device device = Device::parse(options.device);
  const DType dtype = precision_dtype(options.precision);
  set_bench_precision(options.precision, device);
  BenchReport report({"variant", "length", "batch", "d_model", "heads", "k", "chunk_size", "causal",
                      "backward", "precision"});
  for (const std::string& variant : options.variants) {
    attention::AttentionConfig config;
    config.kind = attention::parse_attention_kind(variant);
    config.k = options.k;
    config.chunk_size = options.chunk_size;
    config.num_features = options.num_features;
    Generator init(1);
    nn::MultiHeadAttention layer(options.d_model, options.heads, config, init, dtype);
    layer.to(device);
    for (std::int64_t length : options.lengths) {
      Tensor x = Tensor::randn({options.batch, length, options.d_model}, init, dtype).to(device);
      x.set_requires_grad(options.backward);
      const nn::AttentionMask mask{options.causal, {}};
      const auto run = [&] {
        if (!options.backward) {
          autograd::NoGradGuard no_grad;
          layer.forward(x, {}, mask);
          return;
        }
        const Tensor out = layer.forward(x, {}, mask);
        autograd::backward({out}, {Tensor::ones(out.shape(), out.dtype(), out.device())});
        x.zero_grad();
        for (Tensor parameter : layer.parameters()) parameter.zero_grad();
      };
      report.add({variant, std::to_string(length), std::to_string(options.batch),
                  std::to_string(options.d_model), std::to_string(options.heads),
                  std::to_string(options.k), std::to_string(options.chunk_size),
                  options.causal ? "1" : "0", options.backward ? "1" : "0", options.precision},
                 measure_workload(options.device, run, options.warmup, options.repeats));
    }
  }
  if (!options.csv.empty()) report.write_csv(options.csv);
}

}  // namespace

void add_bench_attention_command(CLI::App& bench) {
  auto options = std::make_shared<AttentionBenchOptions>();
  options->variants = name_strings(attention::attention_kind_names);
  CLI::App* command = bench.add_subcommand(
      "attention", "One multi-head self-attention layer per variant and sequence length");
  command
      ->add_option("--variants", options->variants,
                   join_names(attention::attention_kind_names, ","))
      ->delimiter(',');
  command->add_option("--heads", options->heads, "Attention heads")->check(CLI::PositiveNumber);
  command->add_option("--num-features", options->num_features, "performer: random features")
      ->check(CLI::PositiveNumber);
  command->add_flag("--causal", options->causal, "Causal mask");
  add_layer_bench_options(*command, *options);
  command->callback([options] { run_attention_bench(*options); });
}

}  // namespace topkformer::app
