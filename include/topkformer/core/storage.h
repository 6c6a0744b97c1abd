// A block of device memory shared by a tensor and its views.
#pragma once

#include <cstddef>
#include <memory>

#include "topkformer/core/allocator.h"
#include "topkformer/core/device.h"

namespace topkformer {

class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
};

}  // namespace topkformer
