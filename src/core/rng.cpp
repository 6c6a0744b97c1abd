#include "topkformer/core/rng.h"

namespace topkformer {

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

}  // namespace topkformer
