// Philox4x32-10 counter-based random numbers (Salmon et al., SC'11).
// See Note [Philox streams].
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

// Note [Philox streams]
// A stream is addressed by (seed, offset): word n of stream `seed` is lane n%4
// of Philox(counter = n/4, key = seed). Nothing but those two integers is
// state, so a stream is replayable (dropout inside a recomputed chunk), is
// checkpointed as two integers, and the CUDA backend produces the same words.

namespace topkformer {

using PhiloxCounter = std::array<std::uint32_t, 4>;
using PhiloxKey = std::array<std::uint32_t, 2>;

constexpr PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
  constexpr std::uint32_t multiplier0 = 0xD2511F53u, multiplier1 = 0xCD9E8D57u;
  constexpr std::uint32_t weyl0 = 0x9E3779B9u, weyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t product0 = std::uint64_t{multiplier0} * counter[0];
    const std::uint64_t product1 = std::uint64_t{multiplier1} * counter[2];
    counter = {static_cast<std::uint32_t>(product1 >> 32) ^ counter[1] ^ key[0],
               static_cast<std::uint32_t>(product1),
               static_cast<std::uint32_t>(product0 >> 32) ^ counter[3] ^ key[1],
               static_cast<std::uint32_t>(product0)};
    key = {key[0] + weyl0, key[1] + weyl1};
  }
  return counter;
}

// The four words starting at word 4*block of stream `seed`.
constexpr PhiloxCounter philox_block(std::uint64_t seed, std::uint64_t block) {
  return philox4x32_10(
      {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), 0u, 0u},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

constexpr std::uint32_t philox_word(std::uint64_t seed, std::uint64_t n) {
  return philox_block(seed, n / 4)[n % 4];
}

// Uniform in [0, 1) from the top 24 bits of a word (exactly representable in f32).
constexpr float uniform_f32(std::uint32_t word) {
  return float(word >> 8) * 0x1p-24f;
}
// Uniform in [0, 1) with 53 random bits from two words.
constexpr double uniform_f64(std::uint32_t high, std::uint32_t low) {
  return double((std::uint64_t{high} << 21) ^ (low >> 11)) * 0x1p-53;
}
// A standard normal from two words (Box-Muller, cosine branch), with 24-bit
// uniforms as on the GPU. u1 lies in (0, 1] so that log(u1) is finite.
inline double normal_from_words(std::uint32_t first, std::uint32_t second) {
  const double u1 = double((first >> 8) + 1) * 0x1p-24;
  const double u2 = double(second >> 8) * 0x1p-24;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// How many words each distribution takes per element: fixed, so that element
// e of a draw always reads the same words whatever the tensor's size.
constexpr std::uint64_t words_per_uniform_f32 = 1;
constexpr std::uint64_t words_per_uniform_f64 = 2;
constexpr std::uint64_t words_per_normal = 2;
constexpr std::uint64_t words_per_bernoulli = 1;

struct PhiloxState {
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;  // in words
  bool operator==(const PhiloxState&) const = default;
};

// Hands out disjoint ranges of one stream. Not thread-safe: one per thread or
// guarded by the caller.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : state_{seed, 0} {}
  // Reserves `words` words and returns the state that addresses the first one.
  PhiloxState reserve(std::uint64_t words) {
    const PhiloxState start = state_;
    state_.offset += words;
    return start;
  }
  PhiloxState state() const { return state_; }
  void set_state(PhiloxState state) { state_ = state; }
  void manual_seed(std::uint64_t seed) { state_ = {seed, 0}; }

 private:
  PhiloxState state_;
};

// A uniform integer in [0, bound) from the words of `generator` (Lemire's
// multiply-and-reject: exact, and the same on every machine, unlike the
// standard library's distributions).
std::uint32_t uniform_below(Generator& generator, std::uint32_t bound);

// The framework's generator (used when an op is not given one).
Generator& default_generator();

}  // namespace topkformer
