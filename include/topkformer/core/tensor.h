// Tensor: a strided view of shared device storage.
// See Note [tensor handles].
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "topkformer/core/device.h"
#include "topkformer/core/dtype.h"
#include "topkformer/core/error.h"
#include "topkformer/core/rng.h"
#include "topkformer/core/shape.h"
#include "topkformer/core/storage.h"

// Note [tensor handles]
// A Tensor is a handle: copies share the same tensor. Views (reshape of
// contiguous data, narrow, slice, transpose, permute, expand) share storage
// with their base and copy nothing. The methods here do not record autograd
// nodes; the differentiable versions live in topkformer/ops.

namespace topkformer {

namespace autograd {
struct AutogradMeta;
}

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // Factories. Contents of empty() are unspecified.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  // [start, start + step, ...) up to but excluding end.
  static Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::i64,
                       Device device = Device::cpu());
  // Uniform in [low, high) and normal(mean, std), drawn from `generator`.
  static Tensor rand(const Shape& shape, Generator& generator, DType dtype = DType::f32,
                     double low = 0.0, double high = 1.0, Device device = Device::cpu());
  static Tensor randn(const Shape& shape, Generator& generator, DType dtype = DType::f32,
                      double mean = 0.0, double std = 1.0, Device device = Device::cpu());
  // Copies host values into a new tensor (mainly for tests and data loading).
  template <typename T>
  static Tensor from_vector(const Shape& shape, const std::vector<T>& values,
                            Device device = Device::cpu());

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Strides& strides() const { return impl().strides; }
  std::int64_t size(int dim) const;
  std::int64_t stride(int dim) const;
  int dim() const { return static_cast<int>(shape().size()); }
  std::int64_t numel() const { return shape_numel(shape()); }
  std::int64_t offset() const { return impl().offset; }  // in elements
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage ? impl().storage->device() : Device::cpu(); }
  std::size_t element_size() const { return dtype_size(dtype()); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * element_size(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  bool shares_storage_with(const Tensor& other) const { return storage() == other.storage(); }

  // Pointer to the first element (storage + offset).
  void* raw_data() const;
  template <typename T>
  T* data() const {
    check_dtype(dtype_of<T>(), "Tensor::data");
    return static_cast<T*>(raw_data());
  }

  // Views: share storage, copy nothing.
  Tensor view(const Shape& shape) const;     // contiguous data only; one extent may be -1
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a contiguous copy
  Tensor narrow(int dim, std::int64_t start, std::int64_t length) const;
  Tensor slice(int dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Tensor select(int dim, std::int64_t index) const;  // removes `dim`
  Tensor transpose(int dim0, int dim1) const;
  Tensor permute(const std::vector<int>& dims) const;
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;
  Tensor expand(const Shape& shape) const;  // broadcast view: stride 0 on expanded extents
  Tensor detach() const;                    // same data, no autograd history

  // Copies.
  Tensor contiguous() const;  // *this when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;    // a contiguous copy on `device` (*this when already there)
  void copy_(const Tensor& source);  // same shape; dtype converted; across devices too
  // Moves this tensor's data to `device` in place (contiguous there): every
  // handle to it sees the move, its gradient (if any) moves too; views taken
  // earlier keep the old storage. How modules move their parameters.
  void move_to_(Device device);
  void fill_(double value);
  void zero_() { fill_(0.0); }

  // Element access on CPU tensors, for tests and small host-side logic.
  template <typename T>
  T& at(std::initializer_list<std::int64_t> index) const;
  double value_at(std::initializer_list<std::int64_t> index) const;  // any dtype, as double
  double item() const;                                               // one-element tensor
  template <typename T>
  std::vector<T> to_vector() const;  // logical order, any layout

  // Autograd (see topkformer/autograd/tape.h).
  bool requires_grad() const;
  // Makes this tensor a leaf whose gradient backward() accumulates into grad().
  Tensor& set_requires_grad(bool requires_grad);
  bool is_leaf() const;
  Tensor grad() const;
  void zero_grad();
  const std::shared_ptr<autograd::AutogradMeta>& autograd_meta() const;
  void set_autograd_meta(std::shared_ptr<autograd::AutogradMeta> meta);

  std::string str(int max_per_dim = 6) const;  // dtype, shape and (abbreviated) values
  bool same_tensor(const Tensor& other) const { return impl_ == other.impl_; }
  // True when this handle is the only reference to the tensor and no other
  // tensor (view) shares its storage: it may be adopted and modified freely.
  bool is_sole_owner() const {
    return impl_ && impl_.use_count() == 1 && (!impl_->storage || impl_->storage.use_count() == 1);
  }

  // Throws Error naming `op` unless the dtype matches.
  void check_dtype(DType expected, const char* op) const;

 private:
  struct Impl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Strides strides;
    std::int64_t offset = 0;
    DType dtype = DType::f32;
    std::shared_ptr<autograd::AutogradMeta> autograd;
  };
  Tensor(std::shared_ptr<Storage> storage, Shape shape, Strides strides, std::int64_t offset,
         DType dtype);
  Tensor make_view(Shape shape, Strides strides, std::int64_t offset) const;
  const Impl& impl() const;
  std::int64_t element_offset(std::initializer_list<std::int64_t> index, const char* op) const;

  std::shared_ptr<Impl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

// Throws Error naming `op` and both shapes unless they are equal.
void check_same_shape(const Tensor& a, const Tensor& b, const char* op);
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);

// ---- template definitions ----

template <typename T>
Tensor Tensor::from_vector(const Shape& shape, const std::vector<T>& values, Device device) {
  TKF_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape),
            "Tensor::from_vector: ", values.size(), " values for shape ", shape_str(shape));
  Tensor host = empty(shape, dtype_of<T>(), Device::cpu());
  std::copy(values.begin(), values.end(), host.data<T>());
  return device.is_cpu() ? host : host.to(device);
}

template <typename T>
T& Tensor::at(std::initializer_list<std::int64_t> index) const {
  check_dtype(dtype_of<T>(), "Tensor::at");
  const std::int64_t position = element_offset(index, "Tensor::at");
  return static_cast<T*>(storage()->data())[position];
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  const Tensor host = to(Device::cpu()).contiguous();
  const T* values = host.data<T>();
  return std::vector<T>(values, values + host.numel());
}

}  // namespace topkformer
