// CUDA device memory: device selection, the caching allocator's statistics,
// copies between the host and a GPU (any dtype, any strides). Tests that need
// a GPU skip, saying why, when none is visible or the build has no CUDA
// backend; the device-selection errors are checked in every build.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "test_util.h"
#include "topkformer/core/allocator.h"
#include "topkformer/core/device.h"
#include "topkformer/core/tensor.h"

namespace topkformer {
namespace {

using testing::expect_error_containing;

constexpr std::int64_t mib = std::int64_t{1} << 20;

using testing::gpu;

Allocator& gpu_allocator() {
  return allocator_for(gpu);
}

// Values that use each type's range: negative numbers, large 64-bit
// integers, fractions, every byte value.
template <typename T>
std::vector<T> sample_values(std::int64_t count) {
  std::vector<T> values(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      values[i] = static_cast<T>((i % 1999) * 0.37 - 250.125);
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
      values[i] = (i - count / 2) * std::int64_t{6700417} * 1000003;
    } else if constexpr (std::is_same_v<T, std::int32_t>) {
      values[i] = static_cast<std::int32_t>((i - count / 2) * 7919);
    } else {
      values[i] = static_cast<T>(i * 37 % 256);
    }
  }
  return values;
}

template <typename T>
void check_round_trip(const Shape& shape) {
  const std::vector<T> values = sample_values<T>(shape_numel(shape));
  const Tensor host = Tensor::from_vector(shape, values);
  const Tensor device = host.to(gpu);
  EXPECT_EQ(device.device(), gpu);
  EXPECT_EQ(device.shape(), shape);
  EXPECT_EQ(device.dtype(), host.dtype());
  EXPECT_TRUE(device.is_contiguous());
  EXPECT_FALSE(device.shares_storage_with(host));
  const Tensor back = device.to(Device::cpu());
  EXPECT_TRUE(back.device().is_cpu());
  EXPECT_EQ(back.shape(), shape);
  EXPECT_EQ(back.to_vector<T>(), values) << dtype_name(dtype_of<T>()) << " " << shape_str(shape);
  // from_vector with a device and to_vector from one go the same way.
  EXPECT_EQ(Tensor::from_vector(shape, values, gpu).template to_vector<T>(), values);
}

TEST(CudaDevice, EveryVisibleGpuHasAnAllocatorAndSynchronizes) {
  SKIP_WITHOUT_GPU();
  EXPECT_TRUE(cuda_unavailable_reason().empty());
  for (int index = 0; index < cuda_device_count(); ++index) {
    const Device device = Device::cuda(index);
    EXPECT_NO_THROW(check_device(device));
    EXPECT_EQ(allocator_for(device).device(), device);
    EXPECT_EQ(&allocator_for(device), &allocator_for(device));
    const Tensor t = Tensor::ones({3}).to(device);
    EXPECT_NO_THROW(synchronize(device));
    EXPECT_EQ(t.to_vector<float>(), std::vector<float>({1, 1, 1}));
  }
}

// ---- copies ----

TEST(CudaMemory, RoundTripKeepsEveryDTypeExactly) {
  SKIP_WITHOUT_GPU();
  // One element, odd sizes, a 0-d tensor, and sizes past 1 MiB (large blocks).
  for (const Shape& shape : {Shape{1}, Shape{}, Shape{1001}, Shape{7, 13, 3}, Shape{mib / 4 + 3},
                             Shape{3, mib / 2 + 1}}) {
    check_round_trip<float>(shape);
    check_round_trip<double>(shape);
    check_round_trip<std::int32_t>(shape);
    check_round_trip<std::int64_t>(shape);
    check_round_trip<std::uint8_t>(shape);
  }
}

TEST(CudaMemory, EmptyTensorsMoveWithoutMemory) {
  SKIP_WITHOUT_GPU();
  const Tensor empty = Tensor::empty({0, 5}, DType::f32).to(gpu);
  EXPECT_EQ(empty.device(), gpu);
  EXPECT_EQ(empty.shape(), Shape({0, 5}));
  EXPECT_EQ(empty.raw_data(), nullptr);
  EXPECT_EQ(empty.to(Device::cpu()).numel(), 0);
}

// Views of a [2, 3, 4, 5] tensor that are not contiguous, made on either device.
std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> strided_views() {
  return {
      {"transpose", [](const Tensor& t) { return t.transpose(1, 3); }},
      {"slice with step", [](const Tensor& t) { return t.slice(2, 1, 4, 2); }},
      {"select", [](const Tensor& t) { return t.select(1, 2); }},
      {"permute",
       [](const Tensor& t) {
         return t.permute({3, 1, 0, 2});
       }},
      {"narrow last", [](const Tensor& t) { return t.narrow(3, 1, 3); }},
      {"expand (stride 0)",
       [](const Tensor& t) {
         return t.unsqueeze(1).expand({2, 6, 3, 4, 5});
       }},
      {"narrow then transpose",
       [](const Tensor& t) { return t.narrow(0, 1, 1).narrow(2, 1, 2).transpose(0, 3); }},
  };
}

TEST(CudaMemory, NonContiguousSourcesCopyInLogicalOrder) {
  SKIP_WITHOUT_GPU();
  const Tensor base = Tensor::arange(0, 120, 1, DType::f32).view({2, 3, 4, 5});
  const Tensor base_gpu = base.to(gpu);
  for (const auto& [name, make] : strided_views()) {
    const Tensor on_cpu = make(base);
    const std::vector<float> expected = on_cpu.to_vector<float>();
    // Host view -> device (gathered on the host first).
    const Tensor uploaded = on_cpu.to(gpu);
    EXPECT_TRUE(uploaded.is_contiguous()) << name;
    EXPECT_EQ(uploaded.to_vector<float>(), expected) << name;
    // Device view -> host (gathered by the strided copy kernel).
    const Tensor on_gpu = make(base_gpu);
    EXPECT_TRUE(on_gpu.shares_storage_with(base_gpu)) << name;
    EXPECT_EQ(on_gpu.to(Device::cpu()).to_vector<float>(), expected) << name;
    // Within the device: contiguous(), clone() and dtype conversions.
    const Tensor dense = on_gpu.contiguous();
    EXPECT_EQ(dense.device(), gpu) << name;
    EXPECT_TRUE(dense.is_contiguous()) << name;
    EXPECT_EQ(dense.to_vector<float>(), expected) << name;
    EXPECT_EQ(on_gpu.clone().to_vector<float>(), expected) << name;
    EXPECT_EQ(on_gpu.to(DType::f64).to_vector<double>(), on_cpu.to(DType::f64).to_vector<double>())
        << name;
    EXPECT_EQ(on_gpu.to(DType::i64).to_vector<std::int64_t>(),
              on_cpu.to(DType::i64).to_vector<std::int64_t>())
        << name;
    EXPECT_EQ(on_gpu.to(DType::u8).to_vector<std::uint8_t>(),
              on_cpu.to(DType::u8).to_vector<std::uint8_t>())
        << name;
  }
}

TEST(CudaMemory, ConversionsOnTheDeviceMatchTheHost) {
  SKIP_WITHOUT_GPU();
  const std::vector<DType> dtypes = {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8};
  // Values every dtype holds exactly.
  const Tensor values = Tensor::arange(0, 250, 1, DType::f64).view({10, 25});
  for (const DType from : dtypes) {
    const Tensor host = values.to(from);
    const Tensor device = host.to(gpu);
    for (const DType to : dtypes) {
      const Tensor converted = device.to(to);
      EXPECT_EQ(converted.device(), gpu);
      EXPECT_EQ(converted.dtype(), to);
      EXPECT_EQ(converted.to(DType::f64).to_vector<double>(), values.to_vector<double>())
          << dtype_name(from) << " -> " << dtype_name(to);
      // Converting while gathering a strided view.
      EXPECT_EQ(device.transpose(0, 1).to(to).to(DType::f64).to_vector<double>(),
                values.transpose(0, 1).to_vector<double>())
          << dtype_name(from) << " -> " << dtype_name(to) << " (transposed)";
    }
  }
}

TEST(CudaMemory, CopiesIntoStridedDestinations) {
  SKIP_WITHOUT_GPU();
  const Tensor source = Tensor::arange(0, 12, 1, DType::f32).view({3, 4});
  // Host -> a transposed device view.
  Tensor device = Tensor::zeros({4, 3}).to(gpu);
  device.transpose(0, 1).copy_(source);
  EXPECT_EQ(device.to_vector<float>(), source.transpose(0, 1).contiguous().to_vector<float>());
  // Device -> a strided device view (every other column), with conversion.
  Tensor wide = Tensor::zeros({3, 8}, DType::f64).to(gpu);
  wide.slice(1, 0, 8, 2).copy_(source.to(gpu));
  Tensor expected = Tensor::zeros({3, 8}, DType::f64);
  expected.slice(1, 0, 8, 2).copy_(source);
  EXPECT_EQ(wide.to_vector<double>(), expected.to_vector<double>());
  // Device view -> a strided host view.
  Tensor host = Tensor::zeros({4, 3}, DType::i32);
  host.transpose(0, 1).copy_(source.to(gpu));
  EXPECT_EQ(host.to(DType::f32).to_vector<float>(),
            source.transpose(0, 1).contiguous().to_vector<float>());
  // A broadcast source.
  Tensor filled = Tensor::zeros({3, 4}).to(gpu);
  filled.copy_(Tensor::arange(0, 4, 1, DType::f32).to(gpu).unsqueeze(0).expand({3, 4}));
  EXPECT_EQ(filled.to_vector<float>(), std::vector<float>({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}));
}

// 18 dimensions of extent 2, reversed: none merge, so the copy exceeds what
// one kernel launch takes and is split into slices.
TEST(CudaMemory, ViewsOfManyDimensionsCopy) {
  SKIP_WITHOUT_GPU();
  const int rank = 18;
  const Shape shape(rank, 2);
  std::vector<int> reversed(rank);
  for (int d = 0; d < rank; ++d) reversed[d] = rank - 1 - d;
  const Tensor base = Tensor::arange(0, double(shape_numel(shape)), 1, DType::i32).view(shape);
  const Tensor on_gpu = base.to(gpu).permute(reversed);
  EXPECT_FALSE(on_gpu.is_contiguous());
  EXPECT_EQ(on_gpu.to_vector<std::int32_t>(), base.permute(reversed).to_vector<std::int32_t>());
  EXPECT_EQ(on_gpu.to(DType::f32).to_vector<float>(),
            base.permute(reversed).to(DType::f32).to_vector<float>());
}

// A view whose offsets pass 2^31 elements takes the kernel's 64-bit path.
TEST(CudaMemory, ViewsSpanningMoreThan2GiBUse64BitOffsets) {
  SKIP_WITHOUT_GPU();
  const std::int64_t step = std::int64_t{1} << 30;
  {
    const Tensor big = Tensor::empty({2 * step + 64}, DType::u8, gpu);  // 2 GiB
    const Tensor sparse = big.slice(0, 0, 2 * step + 1, step);          // offsets 0, 2^30, 2^31
    ASSERT_EQ(sparse.shape(), Shape({3}));
    Tensor(sparse).copy_(Tensor::from_vector<std::uint8_t>({3}, {7, 8, 9}));
    EXPECT_EQ(sparse.to_vector<std::uint8_t>(), std::vector<std::uint8_t>({7, 8, 9}));
    EXPECT_EQ(sparse.to(DType::i64).to_vector<std::int64_t>(),
              std::vector<std::int64_t>({7, 8, 9}));
  }
  gpu_allocator().empty_cache();
}

TEST(CudaMemory, CopiesBetweenTwoGpus) {
  if (cuda_device_count() < 2) {
    GTEST_SKIP() << "needs two GPUs, this process sees " << cuda_device_count()
                 << (cuda_device_count() == 0 ? " (" + cuda_unavailable_reason() + ")" : "");
  }
  const Device other = Device::cuda(1);
  const Tensor base = Tensor::arange(0, 60, 1, DType::f32).view({3, 4, 5});
  const Tensor on_first = base.to(gpu);
  const Tensor on_second = on_first.to(other);
  EXPECT_EQ(on_second.device(), other);
  EXPECT_EQ(on_second.to_vector<float>(), base.to_vector<float>());
  // A strided view, with conversion, into a strided destination.
  Tensor target = Tensor::zeros({5, 4, 3}, DType::f64).to(other);
  target.permute({2, 1, 0}).copy_(on_first);
  EXPECT_EQ(target.to_vector<double>(), base.permute({2, 1, 0}).to(DType::f64).to_vector<double>());
  EXPECT_EQ(on_first.transpose(0, 2).to(other).to_vector<float>(),
            base.transpose(0, 2).to_vector<float>());
}

// ---- the caching allocator ----

TEST(CudaAllocator, CurrentAndPeakBytesCountRequestedBytes) {
  SKIP_WITHOUT_GPU();
  Allocator& allocator = gpu_allocator();
  EXPECT_EQ(allocator.device(), gpu);
  const std::int64_t base = allocator.current_bytes();
  const std::int64_t count = allocator.allocation_count();
  allocator.reset_peak();
  EXPECT_EQ(allocator.peak_bytes(), base);
  {
    const Tensor a = Tensor::empty({1000}, DType::f32, gpu);  // 4000 bytes
    EXPECT_EQ(allocator.current_bytes() - base, 4000);
    {
      const Tensor b = Tensor::empty({250}, DType::f64, gpu);  // 2000 bytes
      EXPECT_EQ(allocator.current_bytes() - base, 6000);
      EXPECT_EQ(allocator.peak_bytes() - base, 6000);
    }
    EXPECT_EQ(allocator.current_bytes() - base, 4000);
    EXPECT_EQ(allocator.peak_bytes() - base, 6000);
    EXPECT_GE(allocator.reserved_bytes(), allocator.current_bytes());
    EXPECT_GE(allocator.peak_reserved_bytes(), allocator.reserved_bytes());
    const MemoryStats stats = allocator.stats();
    EXPECT_EQ(stats.current_bytes, allocator.current_bytes());
    EXPECT_EQ(stats.peak_bytes, allocator.peak_bytes());
    EXPECT_EQ(stats.reserved_bytes, allocator.reserved_bytes());
    EXPECT_EQ(stats.peak_reserved_bytes, allocator.peak_reserved_bytes());
  }
  EXPECT_EQ(allocator.current_bytes(), base);
  EXPECT_EQ(allocator.allocation_count() - count, 2);
  // Views allocate nothing.
  const Tensor views = Tensor::empty({4, 4}, DType::f32, gpu);
  const std::int64_t after = allocator.allocation_count();
  const Tensor view = views.transpose(0, 1).narrow(0, 1, 2);
  EXPECT_EQ(allocator.allocation_count(), after);
}

TEST(CudaAllocator, FreedBlocksAreReusedWithoutNewDeviceMemory) {
  SKIP_WITHOUT_GPU();
  auto& allocator = dynamic_cast<CachingAllocator&>(gpu_allocator());
  allocator.empty_cache();
  const std::int64_t reserved = allocator.reserved_bytes();
  const auto segment = static_cast<std::int64_t>(allocator.segment_bytes(3 * mib + 20));
  EXPECT_EQ(segment, 4 * mib);  // cudaMalloc's granularity: 2 MiB
  const void* first = nullptr;
  {
    const Tensor t = Tensor::empty({3 * mib + 20}, DType::u8, gpu);
    first = t.raw_data();
    EXPECT_EQ(allocator.reserved_bytes() - reserved, segment);
  }
  EXPECT_EQ(allocator.reserved_bytes() - reserved, segment) << "a freed block stays cached";
  {
    const Tensor again = Tensor::empty({3 * mib + 20}, DType::u8, gpu);
    EXPECT_EQ(again.raw_data(), first) << "the cached block should be handed out again";
    EXPECT_EQ(allocator.reserved_bytes() - reserved, segment);
  }
  {
    // A smaller request is served from the same block, split; while it is
    // live, a second full-size one needs device memory of its own.
    const Tensor smaller = Tensor::empty({mib / 2}, DType::f32, gpu);  // 2 MiB
    EXPECT_EQ(smaller.raw_data(), first);
    EXPECT_EQ(allocator.reserved_bytes() - reserved, segment);
    const Tensor second = Tensor::empty({3 * mib + 20}, DType::u8, gpu);
    EXPECT_NE(second.raw_data(), first);
    EXPECT_EQ(allocator.reserved_bytes() - reserved, 2 * segment);
  }
  {
    // Small requests share 2 MiB segments: a new one, or one that tensors of
    // other tests still use.
    const Tensor small = Tensor::empty({100}, DType::u8, gpu);
    const std::int64_t added = allocator.reserved_bytes() - reserved - 2 * segment;
    EXPECT_TRUE(added == 0 || added == 2 * mib) << added;
  }
  allocator.empty_cache();
  EXPECT_EQ(allocator.reserved_bytes(), reserved);
}

TEST(CudaAllocator, EmptyCacheReturnsOnlyCachedBlocks) {
  SKIP_WITHOUT_GPU();
  auto& allocator = dynamic_cast<CachingAllocator&>(gpu_allocator());
  allocator.empty_cache();
  const std::int64_t reserved = allocator.reserved_bytes();
  const std::int64_t current = allocator.current_bytes();
  {
    const Tensor kept = Tensor::empty({mib / 4}, DType::f32, gpu);   // 1 MiB, in a 2 MiB segment
    { const Tensor freed = Tensor::empty({mib}, DType::f32, gpu); }  // 4 MiB, cached
    EXPECT_EQ(allocator.reserved_bytes() - reserved, 6 * mib);
    allocator.empty_cache();
    EXPECT_EQ(allocator.reserved_bytes() - reserved, 2 * mib);
    EXPECT_EQ(allocator.current_bytes() - current, mib);
    // The live tensor is untouched.
    Tensor(kept).copy_(Tensor::full({mib / 4}, 2.5));
    EXPECT_EQ(kept.to(Device::cpu()).value_at({mib / 4 - 1}), 2.5);
  }
  EXPECT_EQ(allocator.reserved_bytes() - reserved, 2 * mib);
  allocator.empty_cache();
  EXPECT_EQ(allocator.reserved_bytes(), reserved);
  EXPECT_EQ(allocator.current_bytes(), current);
}

TEST(CudaAllocator, PeakReservedBytesFollowTheDeviceMemoryHeld) {
  SKIP_WITHOUT_GPU();
  Allocator& allocator = gpu_allocator();
  allocator.empty_cache();
  allocator.reset_peak();
  const std::int64_t reserved = allocator.reserved_bytes();
  EXPECT_EQ(allocator.peak_reserved_bytes(), reserved);
  { const Tensor big = Tensor::empty({4 * mib}, DType::f32, gpu); }  // 16 MiB
  EXPECT_EQ(allocator.reserved_bytes() - reserved, 16 * mib);        // cached
  EXPECT_EQ(allocator.peak_reserved_bytes() - reserved, 16 * mib);
  allocator.empty_cache();
  EXPECT_EQ(allocator.reserved_bytes(), reserved);
  EXPECT_EQ(allocator.peak_reserved_bytes() - reserved, 16 * mib);  // the peak stays
  allocator.reset_peak();
  EXPECT_EQ(allocator.peak_reserved_bytes(), reserved);
}

TEST(CudaAllocator, OutOfMemoryIsAClearErrorAndTheAllocatorStaysUsable) {
  SKIP_WITHOUT_GPU();
  Allocator& allocator = gpu_allocator();
  const std::int64_t current = allocator.current_bytes();
  const std::int64_t count = allocator.allocation_count();
  { const Tensor cached = Tensor::empty({mib}, DType::u8, gpu); }
  const std::int64_t reserved_with_cached_block = allocator.reserved_bytes();
  const std::int64_t pebibyte = std::int64_t{1} << 50;
  expect_error_containing(
      [&] { Tensor::empty({pebibyte / 4}, DType::f32, gpu); },
      {"CUDA out of memory", "cuda:0", "1125899906842624 bytes (1.00 PiB)", "cache emptied"});
  EXPECT_EQ(allocator.current_bytes(), current);
  EXPECT_EQ(allocator.allocation_count() - count, 1);  // the failed request counts nothing
  EXPECT_LE(allocator.reserved_bytes(), reserved_with_cached_block - mib)
      << "the retry should have emptied the cache";
  // The allocator, and the device, go on working.
  const std::vector<float> values = {1.5f, -2.0f, 3.25f};
  EXPECT_EQ(Tensor::from_vector({3}, values, gpu).to_vector<float>(), values);
  EXPECT_NO_THROW(synchronize(gpu));
}

}  // namespace
}  // namespace topkformer
