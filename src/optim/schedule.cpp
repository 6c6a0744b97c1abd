#include "topkformer/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "topkformer/core/error.h"

namespace topkformer::optim {

double learning_rate(const ScheduleOptions& options, std::int64_t step) {
  TKF_CHECK(step >= 1, "learning_rate: steps count from 1, got ", step);
  const auto s = double(step), warmup = double(options.warmup_steps);
  const double base = options.base_learning_rate;
  const double warm = options.warmup_steps > 0 ? std::min(1.0, s / warmup) : 1.0;
  // Progress through the decay phase, for cosine and linear.
  const auto decay_progress = [&] {
    const double span = double(options.total_steps - options.warmup_steps);
    return span > 0 ? std::clamp((s - warmup) / span, 0.0, 1.0) : 1.0;
  };
  switch (options.kind) {
    case ScheduleKind::constant:
      return base * warm;
    case ScheduleKind::inverse_sqrt:
      // Without warm-up it decays from step 1 (warm-up of one step).
      return s <= warmup ? base * warm : base * std::sqrt(std::max(warmup, 1.0) / s);
    case ScheduleKind::rsqrt_decay:
      // LRA's "constant * linear_warmup * rsqrt_decay": base is the constant.
      return base * warm / std::sqrt(std::max(s, warmup));
    case ScheduleKind::cosine: {
      if (s <= warmup) return base * warm;
      const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * decay_progress()));
      return options.min_learning_rate + (base - options.min_learning_rate) * cosine;
    }
    case ScheduleKind::linear:
      if (s <= warmup) return base * warm;
      return base + (options.min_learning_rate - base) * decay_progress();
    case ScheduleKind::count:
      break;
  }
  return base;
}

}  // namespace topkformer::optim
