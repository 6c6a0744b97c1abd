#include "topkformer/core/rng.h"

#include "topkformer/core/error.h"

namespace topkformer {

std::uint32_t uniform_below(Generator& generator, std::uint32_t bound) {
  TKF_CHECK(bound > 0, "uniform_below: bound must be positive");
  const auto next_word = [&generator] {
    const PhiloxState word = generator.reserve(1);
    return philox_word(word.seed, word.offset);
  };
  std::uint64_t product = std::uint64_t{next_word()} * bound;
  // The low word falls below 2^32 mod bound for exactly the draws that would
  // make some results more likely than others; those are drawn again.
  if (static_cast<std::uint32_t>(product) < bound) {
    const std::uint32_t threshold = static_cast<std::uint32_t>(-bound) % bound;
    while (static_cast<std::uint32_t>(product) < threshold) {
      product = std::uint64_t{next_word()} * bound;
    }
  }
  return static_cast<std::uint32_t>(product >> 32);
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

}  // namespace topkformer
