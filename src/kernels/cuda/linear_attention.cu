// Causal linear attention (Performer) by prefix sums, and its backward pass,
// with the CPU's arithmetic: every sum in double, whatever the dtype.
// See Note [linear attention scans] and Note [linear attention mapping].
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/dispatch.h"
#include "kernels/linear_attention.h"

// Note [linear attention scans]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every pass is one "scan": walk a group's rows in order (or in reverse),
// add the outer product a_i b_i^T of two row vectors to a running state
// S [N, W], and after each row read y_i = x_i^T S (a reduction over N, one
// value per column of W). The passes (G groups, L rows, m features, dv
// values; gnum_i = d out_i / den_i and gden_i = -(out_i . d out_i) / den_i):
//
//   den   N = m   W = 1    a = phi_k  b = 1      x = phi_q  -> den_i
//   num   N = m   W = dv   a = phi_k  b = v      x = phi_q  -> out_i = y_i / den_i
//   d_q   N = dv  W = m    a = v      b = phi_k  x = gnum   -> + gden_i z_i
//   d_k   N = dv  W = m    a = gnum   b = phi_q  x = v      -> + r_i     (reverse)
//   d_v   N = m   W = dv   a = phi_q  b = gnum   x = phi_k             (reverse)
//
// d_q and d_k carry an extra state row e += alpha_i b_i (z = sum phi_k for
// d_q, r = sum gden phi_q for d_k) that the read adds as beta_i e. The
// forward pass is den then num; the backward pass runs both again (num into
// a double buffer), turns out_i into gnum_i and gden_i with one warp per row
// (the dot product spans all of dv), then d_q, d_k and d_v. Its temporaries
// are [G, L, dv + 2] doubles, as the CPU's per-group d_num.

// Note [linear attention mapping]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Mapping: a block handles one group, one segment of its rows and a tile of
// W; each warp holds the state of N' = 32 J entries of N (lane l holds
// l, l + 32, ...) by CW columns in registers, so the update needs no
// communication and the read is a fixed butterfly over the lanes that leaves
// each column's sum in some lanes (reduce_scatter). When N > 256, several
// warps ("slices") split it and their sums are added in slice order through
// shared memory. Rows are staged in shared memory as doubles, R at a time
// (converting f32 to f64 once, not in every thread), and results are written
// R rows at a time, coalesced.
//
// A group alone is too little parallelism (G = 12, dv = 64 is a dozen
// blocks), so its rows are split into P segments: a first launch sums each
// segment's a b^T (totals), a second turns them into exclusive prefix sums in
// segment order, and the scan starts each segment from its prefix. State
// memory is P G (N + 1) W doubles, O(m dv) per group, with P chosen for about
// 4 blocks per SM in all (35 MB for m = 256, dv = 64 on an H100, whatever G
// and L); nothing is [L, m, dv]. All sums have a fixed order: the results are the
// same bits run to run, and equal to the CPU's up to the rounding of sums of
// doubles in another order. A zero denominator gives 0, as on the CPU.

namespace topkformer::kernels {

namespace {

constexpr unsigned full_mask = 0xffffffffu;
// Blocks have at most this many warps (more only when N > 2048 needs more slices).
constexpr int block_warps = 8;
constexpr int max_block_warps = 16;
constexpr int max_rows_per_tile = 16;
constexpr std::int64_t shared_budget = 40 * 1024;
constexpr std::int64_t default_shared_limit = 48 * 1024;
// The most entries of N a scan holds: max_block_warps slices of 32 lanes x 8.
constexpr std::int64_t max_scan_entries = max_block_warps * 32 * 8;
// A segment shorter than this is not worth its share of totals and prefixes.
constexpr std::int64_t min_segment_rows = 64;

// State columns per warp: J x CW doubles of state, and CW each of b, the
// read and e, fit in the 128 registers a 512-thread block allows.
__host__ __device__ constexpr int columns_per_warp(int j) {
  return j == 8 ? 4 : 8;
}

// A row vector of an operand: entry n of row `row` is data[row * width + n]
// (T, or double when is_double) for n < width and 0 beyond; with data null,
// every entry below width is 1.
struct RowSource {
  const void* data;
  bool is_double;
  std::int64_t width;
};

// A scalar per row: values[row], or `constant` without values.
struct RowScalar {
  const double* values;
  double constant;
};

struct ScanParams {
  std::int64_t groups, length;
  std::int64_t n, width;  // N (summed over by the read) and W (one result each)
  bool reverse;
  RowSource a, b, x;
  bool has_extra;  // the state row e, added to by alpha b and read as beta e
  RowScalar alpha, beta;
  void* out;  // [G * L, W]: T, or double when out_is_double
  bool out_is_double;
  const double* divide_by;  // null, or [G * L]: out = y / divide_by (0 where it is 0)
  int segments;
  std::int64_t segment_length;
  double* states;  // [G, P, N + has_extra, W] when segments > 1
};

// How a scan is laid out on the GPU (plan_scan).
struct ScanPlan {
  int j;             // entries of N per lane: 1, 2, 4 or 8
  int slices;        // warps along N
  int column_warps;  // warps along W
  int tiles;         // blocks along W
  int rows_per_tile;
  std::int64_t shared_bytes;
  int segments;
  std::int64_t segment_length;
  int threads() const { return 32 * slices * column_warps; }
  std::int64_t blocks(std::int64_t groups) const { return groups * segments * tiles; }
};

// Doubles of shared memory per staged row: a and x (slices * 32 J each), b
// (the block's columns), alpha, beta, divide_by, and the slices' sums.
std::int64_t shared_doubles_per_row(int j, int slices, int column_warps) {
  const std::int64_t staged = std::int64_t{slices} * 32 * j;
  const std::int64_t columns = std::int64_t{column_warps} * columns_per_warp(j);
  return 2 * staged + columns + 3 + slices * columns;
}

ScanPlan plan_scan(std::int64_t n, std::int64_t width, std::int64_t groups, std::int64_t length,
                   std::int64_t target_blocks) {
  ScanPlan plan{};
  const std::int64_t lanes = std::max<std::int64_t>(1, (n + 31) / 32);
  plan.j = lanes <= 1 ? 1 : lanes <= 2 ? 2 : lanes <= 4 ? 4 : 8;
  const std::int64_t slices = std::max<std::int64_t>(1, (n + 32 * plan.j - 1) / (32 * plan.j));
  TKF_CHECK(slices <= max_block_warps, "causal_linear_attention (CUDA): ", n,
            " entries per row are more than the scan holds (", max_scan_entries, ")");
  plan.slices = static_cast<int>(slices);
  const int cw = columns_per_warp(plan.j);
  const std::int64_t warps_wanted = (width + cw - 1) / cw;
  plan.column_warps = static_cast<int>(std::clamp<std::int64_t>(
      block_warps / plan.slices, 1, std::max<std::int64_t>(warps_wanted, 1)));
  const std::int64_t tiles = (width + plan.column_warps * cw - 1) / (plan.column_warps * cw);
  const std::int64_t row_bytes = 8 * shared_doubles_per_row(plan.j, plan.slices, plan.column_warps);
  plan.rows_per_tile =
      static_cast<int>(std::clamp<std::int64_t>(shared_budget / row_bytes, 1, max_rows_per_tile));
  plan.shared_bytes = plan.rows_per_tile * row_bytes;
  // Enough segments for target_blocks blocks, none shorter than min_segment_rows.
  const std::int64_t per_segment = std::max<std::int64_t>(1, groups * tiles);
  const std::int64_t wanted = (target_blocks + per_segment - 1) / per_segment;
  const std::int64_t most = std::max<std::int64_t>(1, length / min_segment_rows);
  const std::int64_t segments = std::clamp<std::int64_t>(wanted, 1, most);
  plan.segment_length = std::max<std::int64_t>(1, (length + segments - 1) / segments);
  plan.segments = static_cast<int>(std::max<std::int64_t>(
      1, (length + plan.segment_length - 1) / plan.segment_length));  // none empty
  TKF_CHECK(groups * plan.segments * tiles <= 0x7fffffff,
            "causal_linear_attention (CUDA): ", groups, " groups of ", width,
            " results per row need too many blocks");
  plan.tiles = static_cast<int>(tiles);
  return plan;
}

template <typename T>
__device__ double load(const RowSource& source, std::int64_t row, std::int64_t index) {
  if (index >= source.width) return 0.0;
  if (source.data == nullptr) return 1.0;
  const std::int64_t at = row * source.width + index;
  return source.is_double ? static_cast<const double*>(source.data)[at]
                          : static_cast<double>(static_cast<const T*>(source.data)[at]);
}

__device__ double scalar(const RowScalar& s, std::int64_t row) {
  return s.values != nullptr ? s.values[row] : s.constant;
}

// Sums v[c] over the warp's 32 lanes for every c < CW in a fixed butterfly:
// at offset 16 a lane keeps one half of the vector (the upper half when its
// bit 16 is set) and adds its partner's copy of that half, at offset 8 half
// of the rest, and so on; once one value is left the remaining levels add it
// whole. The returned sum is column scattered_column<CW>(lane)'s.
template <int CW>
__device__ __forceinline__ double reduce_scatter(double (&v)[CW], int lane) {
  static_assert(CW >= 1 && CW <= 32 && (CW & (CW - 1)) == 0, "CW: a power of 2 up to 32");
#pragma unroll
  for (int level = 0; level < 5; ++level) {
    const int offset = 16 >> level;
    const int half = (CW >> level) / 2;
    if (half >= 1) {
      const bool upper = (lane & offset) != 0;
#pragma unroll
      for (int c = 0; c < half; ++c) {
        const double send = upper ? v[c] : v[c + half];
        const double keep = upper ? v[c + half] : v[c];
        v[c] = keep + __shfl_xor_sync(full_mask, send, offset);
      }
    } else {
      v[0] += __shfl_xor_sync(full_mask, v[0], offset);
    }
  }
  return v[0];
}

template <int CW>
__device__ __forceinline__ int scattered_column(int lane) {
  int column = 0;
#pragma unroll
  for (int level = 0; (CW >> level) > 1; ++level) {
    if (lane & (16 >> level)) column += (CW >> level) / 2;
  }
  return column;
}

// One block: tile blockIdx.x % tiles of the columns (fastest, so that the
// blocks staging the same rows run together and share them in L2), segment
// blockIdx.x / tiles % P, group blockIdx.x / (tiles P). Totals: sum the
// segment's a b^T into p.states (the last segment in scan order is nobody's
// prefix and is skipped). Otherwise: scan from the segment's prefix
// (p.states, or 0 with one segment) and write every row's results.
// See Note [linear attention scans] and Note [linear attention mapping].
template <typename T, int J, bool Totals>
__global__ void __launch_bounds__(max_block_warps * 32) scan_kernel(ScanParams p, ScanPlan plan) {
  constexpr int CW = columns_per_warp(J);
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int slices = plan.slices, column_warps = plan.column_warps;
  const int rows_per_tile = plan.rows_per_tile;
  const int slice = warp / column_warps;
  const int column_group = warp % column_warps;
  const int staged = slices * 32 * J;           // staged entries of N per row
  const int block_columns = column_warps * CW;  // staged entries of W per row
  const std::int64_t column_tile = blockIdx.x % plan.tiles;
  const std::int64_t group = blockIdx.x / plan.tiles / p.segments;
  const int segment = static_cast<int>(blockIdx.x / plan.tiles % p.segments);
  if (Totals && segment == (p.reverse ? 0 : p.segments - 1)) return;
  const std::int64_t begin = segment * p.segment_length;
  const std::int64_t end = std::min(p.length, begin + p.segment_length);
  const std::int64_t first_column = column_tile * block_columns;
  const std::int64_t warp_column = first_column + column_group * CW;
  const int lane_entry = slice * 32 * J + lane;  // this lane's entries: + 32 j
  const bool adds_extra = p.has_extra && slice == 0 && lane == 0;

  extern __shared__ double shared[];
  double* const staged_a = shared;
  double* const staged_x = staged_a + rows_per_tile * staged;
  double* const staged_b = staged_x + rows_per_tile * staged;
  double* const staged_alpha = staged_b + rows_per_tile * block_columns;
  double* const staged_beta = staged_alpha + rows_per_tile;
  double* const staged_divisor = staged_beta + rows_per_tile;
  double* const sums = staged_divisor + rows_per_tile;  // [rows][slices][block_columns]

  const std::int64_t state_rows = p.n + (p.has_extra ? 1 : 0);
  double* const segment_state =
      p.segments > 1 ? p.states + (group * p.segments + segment) * state_rows * p.width : nullptr;
  double s[J][CW];
  double e[CW];
#pragma unroll
  for (int c = 0; c < CW; ++c) {
    const std::int64_t column = warp_column + c;
    const bool starts = !Totals && segment_state != nullptr && column < p.width;
#pragma unroll
    for (int j = 0; j < J; ++j) {
      const std::int64_t entry = lane_entry + 32 * j;
      s[j][c] = starts && entry < p.n ? segment_state[entry * p.width + column] : 0.0;
    }
    e[c] = starts && p.has_extra ? segment_state[p.n * p.width + column] : 0.0;
  }

  const std::int64_t count = end - begin;
  const auto row_of = [&](std::int64_t k) {
    return group * p.length + (p.reverse ? end - 1 - k : begin + k);
  };
  for (std::int64_t first = 0; first < count; first += rows_per_tile) {
    const int rows = static_cast<int>(std::min<std::int64_t>(rows_per_tile, count - first));
    __syncthreads();  // the previous tile's staged rows and sums are used up
    for (int i = threadIdx.x; i < rows * staged; i += blockDim.x) {
      const int t = i / staged, entry = i % staged;
      staged_a[i] = load<T>(p.a, row_of(first + t), entry);
      if (!Totals) staged_x[i] = load<T>(p.x, row_of(first + t), entry);
    }
    for (int i = threadIdx.x; i < rows * block_columns; i += blockDim.x) {
      const int t = i / block_columns, c = i % block_columns;
      staged_b[i] = load<T>(p.b, row_of(first + t), first_column + c);
    }
    for (int t = threadIdx.x; t < rows; t += blockDim.x) {
      const std::int64_t row = row_of(first + t);
      staged_alpha[t] = p.has_extra ? scalar(p.alpha, row) : 0.0;
      staged_beta[t] = p.has_extra ? scalar(p.beta, row) : 0.0;
      staged_divisor[t] = p.divide_by != nullptr ? p.divide_by[row] : 1.0;
    }
    __syncthreads();

    // Rows depend on each other through s: unrolling would only add registers.
#pragma unroll 1
    for (int t = 0; t < rows; ++t) {
      const double* a = staged_a + t * staged + lane_entry;
      const double* x = staged_x + t * staged + lane_entry;
      double b[CW], y[CW];
#pragma unroll
      for (int c = 0; c < CW; ++c) {
        b[c] = staged_b[t * block_columns + column_group * CW + c];
        if (p.has_extra) e[c] += staged_alpha[t] * b[c];
        y[c] = adds_extra ? staged_beta[t] * e[c] : 0.0;
      }
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const double aj = a[32 * j];
        const double xj = Totals ? 0.0 : x[32 * j];
#pragma unroll
        for (int c = 0; c < CW; ++c) {
          s[j][c] += aj * b[c];
          if (!Totals) y[c] += xj * s[j][c];
        }
      }
      if (!Totals) {
        const double total = reduce_scatter<CW>(y, lane);
        if (lane % (32 / CW) == 0) {
          sums[(t * slices + slice) * block_columns + column_group * CW +
               scattered_column<CW>(lane)] = total;
        }
      }
    }

    if (!Totals) {
      __syncthreads();
      for (int i = threadIdx.x; i < rows * block_columns; i += blockDim.x) {
        const int t = i / block_columns, c = i % block_columns;
        const std::int64_t column = first_column + c;
        if (column >= p.width) continue;
        double value = 0.0;
        for (int k = 0; k < slices; ++k) value += sums[(t * slices + k) * block_columns + c];
        if (p.divide_by != nullptr) {
          const double divisor = staged_divisor[t];
          value = divisor != 0.0 ? value / divisor : 0.0;
        }
        const std::int64_t at = row_of(first + t) * p.width + column;
        if (p.out_is_double) {
          static_cast<double*>(p.out)[at] = value;
        } else {
          static_cast<T*>(p.out)[at] = static_cast<T>(value);
        }
      }
    }
  }

  if (Totals) {
#pragma unroll
    for (int c = 0; c < CW; ++c) {
      const std::int64_t column = warp_column + c;
      if (column >= p.width) continue;
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const std::int64_t entry = lane_entry + 32 * j;
        if (entry < p.n) segment_state[entry * p.width + column] = s[j][c];
      }
      if (adds_extra) segment_state[p.n * p.width + column] = e[c];
    }
  }
}

// Segment totals [G, P, per_segment] to exclusive prefix sums in scan order
// (the last segment in that order holds no total and is only written).
__global__ void prefix_kernel(double* states, std::int64_t groups, int segments,
                              std::int64_t per_segment, bool reverse) {
  const std::int64_t count = groups * per_segment;
  const std::int64_t step = std::int64_t{gridDim.x} * blockDim.x;
  for (std::int64_t i = std::int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count; i += step) {
    double* entry = states + (i / per_segment) * segments * per_segment + i % per_segment;
    double running = 0.0;
    for (int k = 0; k < segments; ++k) {
      double* at = entry + (reverse ? segments - 1 - k : k) * per_segment;
      const double total = k + 1 < segments ? *at : 0.0;
      *at = running;
      running += total;
    }
  }
}

// One warp per row: out_i (in grad_num) becomes gnum_i = d out_i / den_i, and
// grad_den_i = -(out_i . d out_i) / den_i; both 0 where den_i is 0.
template <typename T>
__global__ void gradient_rows_kernel(double* grad_num, double* grad_den, const double* den,
                                     const T* d_out, std::int64_t rows, std::int64_t width) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const std::int64_t warps = std::int64_t{blockDim.x} / 32;
  for (std::int64_t row = blockIdx.x * warps + threadIdx.x / 32; row < rows;
       row += std::int64_t{gridDim.x} * warps) {
    const double divisor = den[row];
    double* out = grad_num + row * width;
    const T* grad = d_out + row * width;
    double dot = 0.0;
    for (std::int64_t c = lane; c < width; c += 32) dot += out[c] * static_cast<double>(grad[c]);
#pragma unroll
    for (int offset = 16; offset >= 1; offset /= 2) dot += __shfl_xor_sync(full_mask, dot, offset);
    for (std::int64_t c = lane; c < width; c += 32) {
      out[c] = divisor != 0.0 ? static_cast<double>(grad[c]) / divisor : 0.0;
    }
    if (lane == 0) grad_den[row] = divisor != 0.0 ? -dot / divisor : 0.0;
  }
}

template <typename T, int J>
void launch_scan(const ScanParams& params, const ScanPlan& plan, cudaStream_t stream) {
  const auto grid = static_cast<unsigned>(plan.blocks(params.groups));
  const auto bytes = static_cast<std::size_t>(plan.shared_bytes);
  if (plan.segments > 1) {
    if (plan.shared_bytes > default_shared_limit) {
      TKF_CUDA_CHECK(cudaFuncSetAttribute(scan_kernel<T, J, true>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(bytes)));
    }
    scan_kernel<T, J, true><<<grid, plan.threads(), bytes, stream>>>(params, plan);
    TKF_CUDA_CHECK_LAUNCH();
    const std::int64_t per_segment = (params.n + (params.has_extra ? 1 : 0)) * params.width;
    prefix_kernel<<<cuda::grid_for(params.groups * per_segment), cuda::threads_per_block, 0,
                    stream>>>(params.states, params.groups, plan.segments, per_segment,
                              params.reverse);
    TKF_CUDA_CHECK_LAUNCH();
  }
  if (plan.shared_bytes > default_shared_limit) {
    TKF_CUDA_CHECK(cudaFuncSetAttribute(scan_kernel<T, J, false>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  }
  scan_kernel<T, J, false><<<grid, plan.threads(), bytes, stream>>>(params, plan);
  TKF_CUDA_CHECK_LAUNCH();
}

// Plans and runs one scan (nothing when it has no results), with its segment
// states in a temporary buffer on `device`.
template <typename T>
void run_scan(ScanParams params, const cuda::Launch& launch, Device device) {
  if (params.groups == 0 || params.length == 0 || params.width == 0) return;
  int processors = 0;
  TKF_CUDA_CHECK(
      cudaDeviceGetAttribute(&processors, cudaDevAttrMultiProcessorCount, launch.device_index()));
  const ScanPlan plan =
      plan_scan(params.n, params.width, params.groups, params.length, 4 * std::int64_t{processors});
  params.segments = plan.segments;
  params.segment_length = plan.segment_length;
  Tensor states;  // freed on return: later users of its memory queue behind these kernels
  if (plan.segments > 1) {
    const std::int64_t state_rows = params.n + (params.has_extra ? 1 : 0);
    states = Tensor::empty({params.groups * plan.segments * state_rows * params.width}, DType::f64,
                           device);
    params.states = typed_mut<double>(states);
  }
  switch (plan.j) {
    case 1:
      return launch_scan<T, 1>(params, plan, launch.stream());
    case 2:
      return launch_scan<T, 2>(params, plan, launch.stream());
    case 4:
      return launch_scan<T, 4>(params, plan, launch.stream());
    default:
      return launch_scan<T, 8>(params, plan, launch.stream());
  }
}

// The scan of the denominators den_i = phi_q_i . z_i into den [G * L].
template <typename T>
ScanParams denominator_scan(const LinearAttentionShape& shape, const T* q, const T* k,
                            double* den) {
  ScanParams p{};
  p.groups = shape.groups;
  p.length = shape.length;
  p.n = shape.features;
  p.width = 1;
  p.a = {k, false, shape.features};
  p.b = {nullptr, false, 1};
  p.x = {q, false, shape.features};
  p.out = den;
  p.out_is_double = true;
  return p;
}

// The scan of out_i = phi_q_i^T S_i / den_i into out (T, or double).
template <typename T>
ScanParams output_scan(const LinearAttentionShape& shape, const T* q, const T* k, const T* v,
                       const double* den, void* out, bool out_is_double) {
  ScanParams p{};
  p.groups = shape.groups;
  p.length = shape.length;
  p.n = shape.features;
  p.width = shape.width;
  p.a = {k, false, shape.features};
  p.b = {v, false, shape.width};
  p.x = {q, false, shape.features};
  p.out = out;
  p.out_is_double = out_is_double;
  p.divide_by = den;
  return p;
}

// The scans hold m (and in the backward pass dv) entries of N in registers.
void check_scan_size(std::int64_t entries, const char* what, const char* op) {
  TKF_CHECK(entries <= max_scan_entries, op, " (CUDA): ", what, " = ", entries,
            " is more than the kernel holds (", max_scan_entries, ")");
}

void check_output(const Tensor& out, const Tensor& like, const Shape& shape, const char* name,
                  const char* op) {
  TKF_CHECK(out.shape() == shape && out.is_contiguous(), op, ": ", name, " must be contiguous ",
            shape_str(shape), ", got ", shape_str(out.shape()));
  check_same_dtype(like, out, op);
}

}  // namespace

void CudaBackend::causal_linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                                          const Tensor& out) {
  constexpr const char* op = "causal_linear_attention";
  const LinearAttentionShape shape = check_linear_attention(phi_q, phi_k, v, op);
  check_output(out, v, v.shape(), "out", op);
  check_scan_size(shape.features, "m", op);
  const cuda::Launch launch(out, {&phi_q, &phi_k, &v}, op);
  if (shape.groups * shape.length * shape.width == 0) return;
  dispatch_floating(v.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T *q = typed<T>(phi_q), *k = typed<T>(phi_k);
    const Tensor den = Tensor::empty({shape.groups * shape.length}, DType::f64, out.device());
    run_scan<T>(denominator_scan(shape, q, k, typed_mut<double>(den)), launch, out.device());
    run_scan<T>(output_scan(shape, q, k, typed<T>(v), typed<double>(den), typed_mut<T>(out), false),
                launch, out.device());
  });
}

void CudaBackend::causal_linear_attention_backward(const Tensor& phi_q, const Tensor& phi_k,
                                                   const Tensor& v, const Tensor& d_out,
                                                   const Tensor& d_phi_q, const Tensor& d_phi_k,
                                                   const Tensor& d_v) {
  constexpr const char* op = "causal_linear_attention_backward";
  const LinearAttentionShape shape = check_linear_attention_backward(phi_q, phi_k, v, d_out);
  check_output(d_phi_q, v, phi_q.shape(), "d_phi_q", op);
  check_output(d_phi_k, v, phi_k.shape(), "d_phi_k", op);
  check_output(d_v, v, v.shape(), "d_v", op);
  check_scan_size(shape.features, "m", op);
  check_scan_size(shape.width, "dv", op);
  const cuda::Launch launch(d_v, {&phi_q, &phi_k, &v, &d_out, &d_phi_q, &d_phi_k}, op);
  const std::int64_t rows = shape.groups * shape.length;
  if (rows == 0) return;
  const Device device = d_v.device();
  dispatch_floating(v.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T *q = typed<T>(phi_q), *k = typed<T>(phi_k), *values = typed<T>(v);
    // den, then out (double) in grad_num, which becomes d num = d out / den
    // next to grad_den = d den: all the reverse scans need of the output.
    const Tensor den = Tensor::empty({rows}, DType::f64, device);
    const Tensor grad_den = Tensor::empty({rows}, DType::f64, device);
    const Tensor grad_num = Tensor::empty({rows * shape.width}, DType::f64, device);
    double* gnum = typed_mut<double>(grad_num);
    const double* gden = typed<double>(grad_den);
    run_scan<T>(denominator_scan(shape, q, k, typed_mut<double>(den)), launch, device);
    run_scan<T>(output_scan(shape, q, k, values, typed<double>(den), gnum, true), launch, device);
    constexpr int warps_per_block = cuda::threads_per_block / 32;
    gradient_rows_kernel<T>
        <<<cuda::grid_for(rows, warps_per_block), cuda::threads_per_block, 0, launch.stream()>>>(
            gnum, typed_mut<double>(grad_den), typed<double>(den), typed<T>(d_out), rows,
            shape.width);
    TKF_CUDA_CHECK_LAUNCH();

    ScanParams p{};
    p.groups = shape.groups;
    p.length = shape.length;
    p.has_extra = true;
    // d phi_q_i = S_i gnum_i + gden_i z_i, forward.
    p.n = shape.width;
    p.width = shape.features;
    p.a = {values, false, shape.width};
    p.b = {k, false, shape.features};
    p.x = {gnum, true, shape.width};
    p.alpha = {nullptr, 1.0};
    p.beta = {gden, 0.0};
    p.out = typed_mut<T>(d_phi_q);
    run_scan<T>(p, launch, device);
    // d phi_k_j = R_j v_j + r_j, R_j = sum_{i>=j} phi_q_i gnum_i^T, r_j = sum_{i>=j} gden_i
    // phi_q_i.
    p.reverse = true;
    p.a = {gnum, true, shape.width};
    p.b = {q, false, shape.features};
    p.x = {values, false, shape.width};
    p.alpha = {gden, 0.0};
    p.beta = {nullptr, 1.0};
    p.out = typed_mut<T>(d_phi_k);
    run_scan<T>(p, launch, device);
    // d v_j = R_j^T phi_k_j, reverse.
    p.has_extra = false;
    p.n = shape.features;
    p.width = shape.width;
    p.a = {q, false, shape.features};
    p.b = {gnum, true, shape.width};
    p.x = {k, false, shape.features};
    p.alpha = {nullptr, 0.0};
    p.beta = {nullptr, 0.0};
    p.out = typed_mut<T>(d_v);
    run_scan<T>(p, launch, device);
  });
}

}  // namespace topkformer::kernels
