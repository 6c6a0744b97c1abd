// Philox4x32-10 known answers, the (seed, offset) addressing of words, the
// word-to-number conversions, and Generator's disjoint reservations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"

namespace topkformer {
namespace {

// Known-answer vectors of Random123 (kat_vectors, philox4x32 with 10 rounds).
TEST(Philox, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(
      philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
      (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// Word n of stream `seed` is lane n % 4 of the block with counter n / 4 (low
// and high halves) and key seed (low and high halves). Large values check
// that the upper 32 bits of both reach the generator.
TEST(Philox, WordNIsLaneOfBlockNOver4) {
  const std::uint64_t seeds[] = {0, 1, 0x0123456789abcdefULL};
  const std::uint64_t words[] = {0, 3, 4, 4 * 0x1'0000'0000ULL + 6, 0xffff'ffff'ffff'fff0ULL};
  for (const std::uint64_t seed : seeds) {
    for (const std::uint64_t n : words) {
      const std::uint64_t block = n / 4;
      const PhiloxCounter expected =
          philox4x32_10({std::uint32_t(block), std::uint32_t(block >> 32), 0, 0},
                        {std::uint32_t(seed), std::uint32_t(seed >> 32)});
      EXPECT_EQ(philox_block(seed, block), expected) << seed << " " << n;
      EXPECT_EQ(philox_word(seed, n), expected[n % 4]) << seed << " " << n;
    }
  }
  // The high halves matter: these differ only there.
  EXPECT_NE(philox_block(1, 0), philox_block(1 + (std::uint64_t{1} << 32), 0));
  EXPECT_NE(philox_block(1, 0), philox_block(1, std::uint64_t{1} << 32));
}

TEST(Philox, WordConversionsStayInTheirRanges) {
  EXPECT_EQ(uniform_f32(0), 0.0f);
  EXPECT_EQ(uniform_f32(0xffffffff), 1.0f - 0x1p-24f);  // largest value, below 1
  EXPECT_EQ(uniform_f32(0x80000000), 0.5f);
  EXPECT_EQ(uniform_f64(0, 0), 0.0);
  EXPECT_EQ(uniform_f64(0xffffffff, 0xffffffff), 1.0 - 0x1p-53);
  // u1 lies in (0, 1], so the extreme words give finite normals.
  EXPECT_TRUE(std::isfinite(normal_from_words(0, 0)));
  EXPECT_EQ(normal_from_words(0xffffffff, 0), 0.0);  // u1 = 1: radius 0
}

TEST(Generator, ReserveHandsOutConsecutiveOffsets) {
  Generator generator(42);
  EXPECT_EQ(generator.state().offset, 0u);
  const PhiloxState first = generator.reserve(10);
  const PhiloxState second = generator.reserve(3);
  EXPECT_EQ(first.seed, 42u);
  EXPECT_EQ(first.offset, 0u);
  EXPECT_EQ(second.offset, 10u);
  EXPECT_EQ(generator.state().offset, 13u);
  generator.manual_seed(7);
  EXPECT_EQ(generator.state().seed, 7u);
  EXPECT_EQ(generator.state().offset, 0u);
  generator.set_state({9, 100});
  EXPECT_EQ(generator.reserve(1).offset, 100u);
}

// The values of a contiguous f32 or f64 tensor, read directly.
std::vector<double> values_of(const Tensor& t) {
  if (t.dtype() == DType::f32) return {t.data<float>(), t.data<float>() + t.numel()};
  return {t.data<double>(), t.data<double>() + t.numel()};
}

TEST(Generator, SameSeedGivesTheSameTensor) {
  for (const DType dtype : {DType::f32, DType::f64}) {
    Generator a(123), b(123), other(124);
    EXPECT_EQ(values_of(Tensor::rand({5, 7}, a, dtype)), values_of(Tensor::rand({5, 7}, b, dtype)));
    EXPECT_EQ(values_of(Tensor::randn({33}, a, dtype)), values_of(Tensor::randn({33}, b, dtype)));
    EXPECT_NE(values_of(Tensor::rand({5, 7}, a, dtype)),
              values_of(Tensor::rand({5, 7}, other, dtype)));
  }
}

// Consecutive draws take disjoint word ranges, so they share no values.
TEST(Generator, DisjointReservationsGiveDifferentNumbers) {
  Generator generator(5);
  const std::vector<double> first = values_of(Tensor::rand({64}, generator));
  EXPECT_EQ(generator.state().offset, 64 * words_per_uniform_f32);
  const std::vector<double> second = values_of(Tensor::rand({64}, generator));
  EXPECT_EQ(generator.state().offset, 128 * words_per_uniform_f32);
  for (const double v : first) {
    EXPECT_EQ(std::count(second.begin(), second.end(), v), 0) << v;
  }
}

// Element e of a draw depends only on (seed, offset, e), not on the size.
TEST(Generator, DrawOfNIsPrefixOfDrawOf2N) {
  const std::int64_t n = 17;
  for (const DType dtype : {DType::f32, DType::f64}) {
    Generator short_draw(77), long_draw(77);
    const std::vector<double> prefix = values_of(Tensor::rand({n}, short_draw, dtype));
    const std::vector<double> whole = values_of(Tensor::rand({2 * n}, long_draw, dtype));
    EXPECT_EQ(prefix, std::vector<double>(whole.begin(), whole.begin() + n));
    short_draw.manual_seed(78);
    long_draw.manual_seed(78);
    const std::vector<double> normal_prefix = values_of(Tensor::randn({n}, short_draw, dtype));
    const std::vector<double> normal_whole = values_of(Tensor::randn({2 * n}, long_draw, dtype));
    EXPECT_EQ(normal_prefix, std::vector<double>(normal_whole.begin(), normal_whole.begin() + n));
  }
}

}  // namespace
}  // namespace topkformer
