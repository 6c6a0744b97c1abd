// `topkformer bench ff`: time and peak memory of one feed-forward layer per
// variant and hidden width d_ff (the paper's feed-forward figure).
#include "app/bench_report.h"
#include "app/commands.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/nn/feed_forward.h"

namespace topkformer::app {

namespace {

struct FeedForwardBenchOptions : LayerBenchOptions {
  std::vector<std::int64_t> d_ff{2048, 4096, 8192, 16384};
};

void run_feed_forward_bench(const FeedForwardBenchOptions& options) {
  const Device device = Device::parse(options.device);
  const DType dtype = precision_dtype(options.precision);
  set_bench_precision(options.precision, device);
  BenchReport report({"variant", "length", "batch", "d_model", "d_ff", "k", "chunk_size",
                      "backward", "precision"});
  for (const std::string& variant : options.variants) {
    nn::FeedForwardConfig config;
    config.kind = nn::parse_feed_forward_kind(variant);
    config.k = options.k;
    config.chunk_size = options.chunk_size;
    for (std::int64_t hidden : options.d_ff) {
      Generator init(1);
      nn::FeedForward layer(options.d_model, hidden, config, init, dtype);
      layer.to(device);
      for (std::int64_t length : options.lengths) {
        Tensor x = Tensor::randn({options.batch, length, options.d_model}, init, dtype).to(device);
        x.set_requires_grad(options.backward);
        const auto run = [&] {
          if (!options.backward) {
            autograd::NoGradGuard no_grad;
            layer.forward(x);
            return;
          }
          const Tensor out = layer.forward(x);
          autograd::backward({out}, {Tensor::ones(out.shape(), out.dtype(), out.device())});
          x.zero_grad();
          for (Tensor parameter : layer.parameters()) parameter.zero_grad();
        };
        report.add(
            {variant, std::to_string(length), std::to_string(options.batch),
             std::to_string(options.d_model), std::to_string(hidden), std::to_string(options.k),
             std::to_string(options.chunk_size), options.backward ? "1" : "0", options.precision},
            measure_workload(options.device, run, options.warmup, options.repeats));
      }
    }
  }
  if (!options.csv.empty()) report.write_csv(options.csv);
}

}  // namespace

void add_bench_feed_forward_command(CLI::App& bench) {
  auto options = std::make_shared<FeedForwardBenchOptions>();
  options->variants = name_strings(nn::feed_forward_kind_names);
  options->lengths = {512};
  CLI::App* command =
      bench.add_subcommand("ff", "One feed-forward layer per variant and hidden width d_ff");
  command->add_option("--variants", options->variants, join_names(nn::feed_forward_kind_names, ","))
      ->delimiter(',');
  command->add_option("--d-ff", options->d_ff, "Hidden widths")->delimiter(',');
  add_layer_bench_options(*command, *options);
  command->callback([options] { run_feed_forward_bench(*options); });
}

}  // namespace topkformer::app
