// The name tables of the enumerated choices (core/names.h): every table
// round-trips, and an unknown name is an error listing the table.
#include "topkformer/core/names.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include "topkformer/attention/config.h"
#include "topkformer/core/device.h"
#include "topkformer/core/runtime.h"
#include "topkformer/dist/communicator.h"
#include "topkformer/nn/feed_forward.h"
#include "topkformer/nn/layers.h"
#include "topkformer/train/config.h"

namespace topkformer {
namespace {

enum class Colour { red, green, count };
static_assert(names_match<Colour>(std::to_array<std::string_view>({"red", "green"})));
static_assert(!names_match<Colour>(std::to_array<std::string_view>({"red"})));
static_assert(!names_match<Colour>(std::to_array<std::string_view>({"red", "green", "blue"})));
static_assert(!names_match<Colour>(std::to_array<std::string_view>({"red", "red"})));
static_assert(!names_match<Colour>(std::to_array<std::string_view>({"red", ""})));
static_assert(all_values<Colour>() == std::array{Colour::red, Colour::green});

// parse_enum(enum_name(v)) == v for every value, each name taken once, and
// an unknown name names `what` and every valid name.
template <typename Enum, std::size_t N>
void expect_table_round_trips(const NameTable<N>& names, const std::string& what) {
  SCOPED_TRACE(what);
  for (const Enum value : all_values<Enum>()) {
    EXPECT_EQ(parse_enum<Enum>(names, enum_name(names, value), what), value);
  }
  EXPECT_EQ(enum_name(names, Enum::count), "?");
  testing::expect_error_containing([&] { parse_enum<Enum>(names, "Bogus", what); },
                                   {what + ": expected one of " + join_names(names), "'Bogus'"});
}

TEST(Names, EveryTableRoundTrips) {
  expect_table_round_trips<attention::AttentionKind>(attention::attention_kind_names, "attention");
  expect_table_round_trips<nn::FeedForwardKind>(nn::feed_forward_kind_names, "feedforward");
  expect_table_round_trips<nn::Activation>(nn::activation_names, "activation");
  expect_table_round_trips<nn::PositionKind>(nn::position_kind_names, "positions");
  expect_table_round_trips<models::Pooling>(models::pooling_names, "pooling");
  expect_table_round_trips<optim::ScheduleKind>(optim::schedule_kind_names, "schedule");
  expect_table_round_trips<train::OptimizerKind>(train::optimizer_names, "optimizer");
  expect_table_round_trips<train::TaskKind>(train::task_names, "task");
  expect_table_round_trips<train::TokenizerKind>(train::tokenizer_names, "tokenizer");
  expect_table_round_trips<train::Metric>(train::metric_names, "metric");
  expect_table_round_trips<train::EvalSplit>(train::eval_split_names, "split");
  expect_table_round_trips<MatmulPrecision>(matmul_precision_names, "precision");
  expect_table_round_trips<DeviceType>(device_type_names, "device");
  expect_table_round_trips<dist::Backend>(dist::backend_names, "distributed");
}

// The named parse and name functions are the table's.
TEST(Names, ParseAndNameFunctionsReadTheTables) {
  for (const auto kind : all_values<attention::AttentionKind>()) {
    EXPECT_EQ(attention::parse_attention_kind(attention::attention_kind_name(kind)), kind);
  }
  for (const auto kind : all_values<nn::FeedForwardKind>()) {
    EXPECT_EQ(nn::parse_feed_forward_kind(nn::feed_forward_kind_name(kind)), kind);
  }
  EXPECT_EQ(train::task_name(train::TaskKind::retrieval), "retrieval");
  for (const auto precision : all_values<MatmulPrecision>()) {
    EXPECT_EQ(parse_matmul_precision(matmul_precision_name(precision)), precision);
  }
  for (const auto type : all_values<DeviceType>()) {
    EXPECT_EQ(Device::parse(enum_name(device_type_names, type)).type, type);
  }
  EXPECT_EQ(dist::backend_name(dist::Backend::nccl), "nccl");
  EXPECT_EQ(train::metric_name(train::Metric::perplexity), "perplexity");
  EXPECT_EQ(train::eval_split_name(train::EvalSplit::test), "test");
  testing::expect_error_containing([] { attention::parse_attention_kind("x"); },
                                   {"attention.kind: expected one of " +
                                    join_names(attention::attention_kind_names) + ", got 'x'"});
}

TEST(Names, JoinAndStrings) {
  constexpr auto names = std::to_array<std::string_view>({"a", "b", "c"});
  EXPECT_EQ(join_names(names), "a|b|c");
  EXPECT_EQ(join_names(names, ", "), "a, b, c");
  EXPECT_EQ(name_strings(names), (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace topkformer
