// Learning-rate schedules, all with linear warm-up from 0.
#pragma once

#include <cstdint>
#include <string>

namespace topkformer::optim {

enum class ScheduleKind {
  constant,      // base after warm-up
  inverse_sqrt,  // fairseq: base * sqrt(warmup / step) after warm-up
  rsqrt_decay,   // LRA: base * linear_warmup * 1 / sqrt(max(step, warmup))
  cosine,        // base -> min over [warmup, total]
  linear,        // base -> min over [warmup, total]
};
ScheduleKind parse_schedule_kind(const std::string& name);

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
