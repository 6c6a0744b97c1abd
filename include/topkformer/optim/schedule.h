// Learning-rate schedules, all with linear warm-up from 0.
#pragma once

#include <cstdint>
#include <string>

#include "topkformer/core/names.h"

namespace topkformer::optim {

enum class ScheduleKind {
  constant,      // base after warm-up
  inverse_sqrt,  // fairseq: base * sqrt(warmup / step) after warm-up
  rsqrt_decay,   // LRA: base * linear_warmup * 1 / sqrt(max(step, warmup))
  cosine,        // base -> min over [warmup, total]
  linear,        // base -> min over [warmup, total]
  count
};
inline constexpr auto schedule_kind_names = std::to_array<std::string_view>(
    {"constant", "inverse_sqrt", "rsqrt_decay", "cosine", "linear"});
static_assert(names_match<ScheduleKind>(schedule_kind_names));

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::constant;
  double base_learning_rate = 1e-3;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 0;  // cosine and linear decay end here
  double min_learning_rate = 0.0;
};

// The learning rate for `step` (1-based: the first update is step 1).
double learning_rate(const ScheduleOptions& options, std::int64_t step);

}  // namespace topkformer::optim
