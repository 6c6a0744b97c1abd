// Wall-clock measurement for benchmarks: warm-up runs, then repeated timed
// runs summarised by their median (robust to a stray slow run), minimum and
// maximum.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "topkformer/core/device_timer.h"

namespace topkformer::app {

struct Timing {
  double median_seconds = 0.0;
  double min_seconds = 0.0;
  double max_seconds = 0.0;
  int repeats = 0;
};

inline Timing measure(const std::function<void()>& run, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    seconds.push_back(seconds_since(start));
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds[seconds.size() / 2], seconds.front(), seconds.back(), repeats};
}

}  // namespace topkformer::app
