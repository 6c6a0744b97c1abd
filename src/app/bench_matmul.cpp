// `topkformer bench matmul`: the framework's matrix product against OpenBLAS
// called directly on the same buffers, to show the op adds no copies.
#include <cblas.h>

#include <cstdio>
#include <iostream>

#include "app/commands.h"
#include "app/timing.h"
#include "topkformer/autograd/grad_mode.h"
#include "topkformer/kernels/backend.h"
#include "topkformer/ops.h"

namespace topkformer::app {

namespace {

struct MatmulOptions {
  std::int64_t m = 1024, n = 1024, k = 1024;
  int warmup = 3, repeats = 10;
};

void print_row(const char* what, const Timing& timing, double flops) {
  std::printf("  %-34s %10.3f ms  %8.1f GFLOP/s\n", what, timing.median_seconds * 1e3,
              flops / timing.median_seconds * 1e-9);
}

void run_matmul_bench(const MatmulOptions& options) {
  autograd::NoGradGuard no_grad;
  Generator generator(1);
  const Tensor a = Tensor::randn({options.m, options.k}, generator);
  const Tensor b = Tensor::randn({options.k, options.n}, generator);
  const Tensor c = Tensor::empty({options.m, options.n});
  const double flops = 2.0 * double(options.m) * double(options.n) * double(options.k);
  std::printf("matmul f32 [%ld x %ld] x [%ld x %ld], %d threads, median of %d runs\n",
              long(options.m), long(options.k), long(options.k), long(options.n),
              openblas_get_num_threads(), options.repeats);

  const Timing blas = measure(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(options.m), int(options.n),
                    int(options.k), 1.0f, a.data<float>(), int(options.k), b.data<float>(),
                    int(options.n), 0.0f, c.data<float>(), int(options.n));
      },
      options.warmup, options.repeats);
  const Timing kernel =
      measure([&] { kernels::backend(a.device()).gemm(a, false, b, false, c, 1.0, 0.0); },
              options.warmup, options.repeats);
  const Timing op = measure([&] { ops::matmul(a, b); }, options.warmup, options.repeats);
  // B^T as a transposed view: the op hands BLAS the view, no copy.
  const Tensor b_transposed_storage = b.transpose(0, 1).contiguous();
  const Timing op_view = measure([&] { ops::matmul(a, b_transposed_storage.transpose(0, 1)); },
                                 options.warmup, options.repeats);

  print_row("cblas_sgemm (OpenBLAS directly)", blas, flops);
  print_row("kernels::gemm (preallocated out)", kernel, flops);
  print_row("ops::matmul (allocates out)", op, flops);
  print_row("ops::matmul (transposed view of B)", op_view, flops);
}

}  // namespace

void add_bench_matmul_command(CLI::App& bench) {
  auto options = std::make_shared<MatmulOptions>();
  CLI::App* matmul = bench.add_subcommand(
      "matmul", "Matrix product through the framework vs OpenBLAS called directly");
  matmul->add_option("-m", options->m, "Rows of A and C")->check(CLI::PositiveNumber);
  matmul->add_option("-n", options->n, "Columns of B and C")->check(CLI::PositiveNumber);
  matmul->add_option("-k", options->k, "Columns of A, rows of B")->check(CLI::PositiveNumber);
  matmul->add_option("--warmup", options->warmup, "Untimed runs first")
      ->check(CLI::NonNegativeNumber);
  matmul->add_option("--repeats", options->repeats, "Timed runs")->check(CLI::PositiveNumber);
  matmul->callback([options] { run_matmul_bench(*options); });
}

}  // namespace topkformer::app
