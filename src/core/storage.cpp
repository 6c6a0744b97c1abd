#include "topkformer/core/storage.h"

namespace topkformer {

Storage::Storage(std::size_t bytes, Device device)
    : bytes_(bytes), device_(device), allocator_(&allocator_for(device)) {
  data_ = allocator_->allocate(bytes);
}

Storage::~Storage() {
  allocator_->deallocate(data_, bytes_);
}

}  // namespace topkformer
