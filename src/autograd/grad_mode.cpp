#include "topkformer/autograd/grad_mode.h"

namespace topkformer::autograd {

namespace {
thread_local bool grad_enabled = true;
}

bool GradMode::enabled() {
  return grad_enabled;
}
void GradMode::set_enabled(bool enabled) {
  grad_enabled = enabled;
}

}  // namespace topkformer::autograd
