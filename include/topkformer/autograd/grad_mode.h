// Whether differentiable ops record nodes on the tape (per thread).
#pragma once

namespace topkformer::autograd {

class GradMode {
 public:
  static bool enabled();
  static void set_enabled(bool enabled);
};

// Sets grad mode for its scope and restores the previous mode after.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(GradMode::enabled()) {
    GradMode::set_enabled(enabled);
  }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// Disables recording: evaluation, optimizer updates, and backward bodies.
struct NoGradGuard : GradModeGuard {
  NoGradGuard() : GradModeGuard(false) {}
};

// Enables recording, e.g. to re-run a recomputed function inside a backward pass.
struct EnableGradGuard : GradModeGuard {
  EnableGradGuard() : GradModeGuard(true) {}
};

}  // namespace topkformer::autograd
