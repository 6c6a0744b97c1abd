#include "topkformer/core/tensor.h"

#include <cmath>
#include <iomanip>
#include <numeric>
#include <ostream>
#include <sstream>

#include "build_config.h"
// The one exception to the layer order (docs/architecture.md): a tensor's
// methods fill and copy through the kernels, and requires_grad creates the
// autograd meta, whose definition lives in autograd. Only this file crosses;
// tensor.h sees autograd::AutogradMeta as an incomplete type.
#include "topkformer/autograd/tape.h"
#include "topkformer/kernels/backend.h"
#if TOPKFORMER_WITH_CUDA
#include "cuda/copy.h"
#endif

namespace topkformer {

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, Strides strides, std::int64_t offset,
               DType dtype)
    : impl_(std::make_shared<Impl>(Impl{std::move(storage), std::move(shape), std::move(strides),
                                        offset, dtype, nullptr})) {}

const Tensor::Impl& Tensor::impl() const {
  TKF_CHECK(impl_ != nullptr, "Tensor: use of an undefined tensor");
  return *impl_;
}

Tensor Tensor::make_view(Shape shape, Strides strides, std::int64_t offset) const {
  return Tensor(storage(), std::move(shape), std::move(strides), offset, dtype());
}

// ---- factories ----

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (std::int64_t extent : shape) {
    TKF_CHECK(extent >= 0, "Tensor::empty: negative extent in shape ", shape_str(shape));
  }
  const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(std::make_shared<Storage>(bytes, device), shape, contiguous_strides(shape), 0,
                dtype);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor result = empty(shape, dtype, device);
  result.fill_(value);
  return result;
}

Tensor Tensor::arange(double start, double end, double step, DType dtype, Device device) {
  TKF_CHECK(step != 0.0, "Tensor::arange: step must not be 0");
  const auto count = static_cast<std::int64_t>(std::max(0.0, std::ceil((end - start) / step)));
  Tensor result = empty({count}, dtype, device);
  kernels::backend(device).arange(result, start, step);
  return result;
}

namespace {
void check_floating(DType dtype, const char* op) {
  TKF_CHECK(is_floating(dtype), op, ": dtype must be f32 or f64, got ", dtype_name(dtype));
}
}  // namespace

Tensor Tensor::rand(const Shape& shape, Generator& generator, DType dtype, double low, double high,
                    Device device) {
  check_floating(dtype, "Tensor::rand");
  Tensor result = empty(shape, dtype, device);
  const std::uint64_t words = dtype == DType::f32 ? words_per_uniform_f32 : words_per_uniform_f64;
  kernels::backend(device).uniform(result, generator.reserve(words * result.numel()), low, high);
  return result;
}

Tensor Tensor::randn(const Shape& shape, Generator& generator, DType dtype, double mean, double std,
                     Device device) {
  check_floating(dtype, "Tensor::randn");
  Tensor result = empty(shape, dtype, device);
  kernels::backend(device).normal(result, generator.reserve(words_per_normal * result.numel()),
                                  mean, std);
  return result;
}

// ---- properties ----

std::int64_t Tensor::size(int dim) const {
  return shape()[normalize_dim(dim, this->dim(), "Tensor::size")];
}

std::int64_t Tensor::stride(int dim) const {
  return strides()[normalize_dim(dim, this->dim(), "Tensor::stride")];
}

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;  // the stride of an extent-1 dimension never matters
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  const auto& store = impl().storage;
  if (!store || store->data() == nullptr) return nullptr;
  return static_cast<char*>(store->data()) + offset() * static_cast<std::int64_t>(element_size());
}

void Tensor::check_dtype(DType expected, const char* op) const {
  TKF_CHECK(dtype() == expected, op, ": expected dtype ", dtype_name(expected), ", got ",
            dtype_name(dtype()), " (shape ", shape_str(shape()), ")");
}

// ---- views ----

namespace {
// Replaces a single -1 extent by the value that keeps numel.
Shape infer_shape(const Shape& requested, std::int64_t numel, const Shape& from, const char* op) {
  Shape shape = requested;
  std::int64_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TKF_CHECK(inferred < 0, op, ": only one extent may be -1 in ", shape_str(requested));
      inferred = static_cast<int>(i);
    } else {
      TKF_CHECK(shape[i] >= 0, op, ": negative extent in ", shape_str(requested));
      known *= shape[i];
    }
  }
  if (inferred >= 0) {
    TKF_CHECK(known != 0 && numel % known == 0, op, ": cannot view ", shape_str(from), " as ",
              shape_str(requested));
    shape[inferred] = numel / known;
  }
  TKF_CHECK(shape_numel(shape) == numel, op, ": cannot view ", shape_str(from), " (", numel,
            " elements) as ", shape_str(requested));
  return shape;
}
}  // namespace

Tensor Tensor::view(const Shape& shape) const {
  const Shape target = infer_shape(shape, numel(), this->shape(), "Tensor::view");
  TKF_CHECK(is_contiguous(), "Tensor::view: tensor of shape ", shape_str(this->shape()),
            " is not contiguous; use reshape() or contiguous()");
  return make_view(target, contiguous_strides(target), offset());
}

Tensor Tensor::reshape(const Shape& shape) const {
  return is_contiguous() ? view(shape) : contiguous().view(shape);
}

Tensor Tensor::narrow(int dim, std::int64_t start, std::int64_t length) const {
  return slice(dim, start, start + length);
}

Tensor Tensor::slice(int dim, std::int64_t start, std::int64_t end, std::int64_t step) const {
  const int d = normalize_dim(dim, this->dim(), "Tensor::slice");
  const std::int64_t extent = shape()[d];
  TKF_CHECK(step > 0, "Tensor::slice: step must be positive, got ", step);
  TKF_CHECK(0 <= start && start <= end && end <= extent, "Tensor::slice: range [", start, ", ", end,
            ") is out of bounds for dimension ", d, " of shape ", shape_str(shape()));
  Shape new_shape = shape();
  Strides new_strides = strides();
  new_shape[d] = (end - start + step - 1) / step;
  new_strides[d] = strides()[d] * step;
  return make_view(new_shape, new_strides, offset() + start * strides()[d]);
}

Tensor Tensor::select(int dim, std::int64_t index) const {
  const int d = normalize_dim(dim, this->dim(), "Tensor::select");
  TKF_CHECK(0 <= index && index < shape()[d], "Tensor::select: index ", index,
            " is out of bounds for dimension ", d, " of shape ", shape_str(shape()));
  Shape new_shape = shape();
  Strides new_strides = strides();
  new_shape.erase(new_shape.begin() + d);
  new_strides.erase(new_strides.begin() + d);
  return make_view(new_shape, new_strides, offset() + index * strides()[d]);
}

Tensor Tensor::transpose(int dim0, int dim1) const {
  std::vector<int> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_dim(dim0, dim(), "Tensor::transpose")],
            order[normalize_dim(dim1, dim(), "Tensor::transpose")]);
  return permute(order);
}

Tensor Tensor::permute(const std::vector<int>& dims) const {
  TKF_CHECK(static_cast<int>(dims.size()) == dim(), "Tensor::permute: ", dims.size(),
            " dimensions given for a tensor of shape ", shape_str(shape()));
  std::vector<bool> seen(dim(), false);
  Shape new_shape(dim());
  Strides new_strides(dim());
  for (int i = 0; i < dim(); ++i) {
    const int d = normalize_dim(dims[i], dim(), "Tensor::permute");
    TKF_CHECK(!seen[d], "Tensor::permute: dimension ", d, " appears twice");
    seen[d] = true;
    new_shape[i] = shape()[d];
    new_strides[i] = strides()[d];
  }
  return make_view(new_shape, new_strides, offset());
}

Tensor Tensor::unsqueeze(int dim) const {
  const int d = normalize_dim(dim, this->dim() + 1, "Tensor::unsqueeze");
  Shape new_shape = shape();
  Strides new_strides = strides();
  const std::int64_t stride = d < this->dim() ? strides()[d] * shape()[d] : 1;
  new_shape.insert(new_shape.begin() + d, 1);
  new_strides.insert(new_strides.begin() + d, stride);
  return make_view(new_shape, new_strides, offset());
}

Tensor Tensor::squeeze(int dim) const {
  const int d = normalize_dim(dim, this->dim(), "Tensor::squeeze");
  TKF_CHECK(shape()[d] == 1, "Tensor::squeeze: dimension ", d, " of shape ", shape_str(shape()),
            " has extent ", shape()[d], ", not 1");
  return select(d, 0);
}

Tensor Tensor::expand(const Shape& shape) const {
  TKF_CHECK(shape.size() >= this->shape().size(), "Tensor::expand: cannot expand ",
            shape_str(this->shape()), " to ", shape_str(shape));
  const std::size_t lead = shape.size() - this->shape().size();
  Strides new_strides(shape.size(), 0);
  for (std::size_t i = 0; i < this->shape().size(); ++i) {
    const std::int64_t from = this->shape()[i];
    TKF_CHECK(from == shape[lead + i] || from == 1, "Tensor::expand: cannot expand ",
              shape_str(this->shape()), " to ", shape_str(shape));
    new_strides[lead + i] = from == shape[lead + i] ? strides()[i] : 0;
  }
  return make_view(shape, new_strides, offset());
}

Tensor Tensor::detach() const {
  return make_view(shape(), strides(), offset());
}

// ---- copies ----

Tensor Tensor::contiguous() const {
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::clone() const {
  Tensor result = empty(shape(), dtype(), device());
  result.copy_(*this);
  return result;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor result = empty(shape(), dtype, device());
  result.copy_(*this);
  return result;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor result = empty(shape(), dtype(), device);
  result.copy_(*this);
  return result;
}

void Tensor::move_to_(Device device) {
  if (device == this->device()) return;
  const Tensor moved = to(device);
  impl_->storage = moved.storage();
  impl_->strides = moved.strides();
  impl_->offset = 0;
  if (impl_->autograd != nullptr) {
    Tensor gradient = grad();
    if (gradient.defined()) gradient.move_to_(device);
  }
}

void Tensor::copy_(const Tensor& source) {
  check_same_shape(*this, source, "Tensor::copy_");
  if (numel() == 0) return;
#if TOPKFORMER_WITH_CUDA
  // Host <-> device, within a device and between devices; any strides, any dtypes.
  if (device().is_cuda() || source.device().is_cuda()) {
    cuda::copy(source, *this);
    return;
  }
#endif
  // A copy between devices runs on the backend of the device that is not the CPU.
  const Device runner = device().is_cpu() ? source.device() : device();
  kernels::backend(runner).copy(source, *this);
}

void Tensor::fill_(double value) {
  if (numel() > 0) kernels::backend(device()).fill(*this, value);
}

// ---- element access ----

std::int64_t Tensor::element_offset(std::initializer_list<std::int64_t> index,
                                    const char* op) const {
  TKF_CHECK(device().is_cpu(), op, ": element access needs a CPU tensor, this one is on ",
            device().str());
  TKF_CHECK(static_cast<int>(index.size()) == dim(), op, ": ", index.size(),
            " indices for a tensor of shape ", shape_str(shape()));
  std::int64_t position = offset();
  int d = 0;
  for (std::int64_t i : index) {
    TKF_CHECK(0 <= i && i < shape()[d], op, ": index ", i, " is out of bounds for dimension ", d,
              " of shape ", shape_str(shape()));
    position += i * strides()[d++];
  }
  return position;
}

namespace {
double load_as_double(const void* base, std::int64_t position, DType dtype) {
  switch (dtype) {
    case DType::f32:
      return static_cast<const float*>(base)[position];
    case DType::f64:
      return static_cast<const double*>(base)[position];
    case DType::i32:
      return static_cast<const std::int32_t*>(base)[position];
    case DType::i64:
      return static_cast<double>(static_cast<const std::int64_t*>(base)[position]);
    case DType::u8:
      return static_cast<const std::uint8_t*>(base)[position];
  }
  return 0.0;
}
}  // namespace

double Tensor::value_at(std::initializer_list<std::int64_t> index) const {
  return load_as_double(storage()->data(), element_offset(index, "Tensor::value_at"), dtype());
}

double Tensor::item() const {
  TKF_CHECK(numel() == 1, "Tensor::item: tensor of shape ", shape_str(shape()), " has ", numel(),
            " elements, not 1");
  const Tensor host = to(Device::cpu()).contiguous();
  return load_as_double(host.raw_data(), 0, dtype());
}

// ---- autograd ----

bool Tensor::requires_grad() const {
  return impl().autograd != nullptr;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  if (!requires_grad) {
    impl_->autograd = nullptr;
  } else if (!impl().autograd) {
    TKF_CHECK(is_floating(dtype()),
              "Tensor::set_requires_grad: only f32/f64 tensors can require "
              "gradients, this one is ",
              dtype_name(dtype()));
    impl_->autograd = std::make_shared<autograd::AutogradMeta>();
    impl_->autograd->is_leaf = true;
  }
  return *this;
}

bool Tensor::is_leaf() const {
  return !impl().autograd || impl().autograd->is_leaf;
}

Tensor Tensor::grad() const {
  return impl().autograd ? impl().autograd->grad : Tensor();
}

void Tensor::zero_grad() {
  if (impl().autograd) impl_->autograd->grad = Tensor();
}

const std::shared_ptr<autograd::AutogradMeta>& Tensor::autograd_meta() const {
  return impl().autograd;
}

void Tensor::set_autograd_meta(std::shared_ptr<autograd::AutogradMeta> meta) {
  impl();
  impl_->autograd = std::move(meta);
}

// ---- printing ----

namespace {
void print_values(std::ostream& out, const Tensor& host, int dim, std::int64_t position,
                  int max_per_dim) {
  const std::int64_t extent = host.shape()[dim];
  out << '[';
  for (std::int64_t i = 0; i < extent; ++i) {
    if (extent > max_per_dim && i == max_per_dim / 2) {
      out << "..., ";
      i = extent - max_per_dim / 2;
    }
    const std::int64_t at = position + i * host.strides()[dim];
    if (dim + 1 == host.dim()) {
      out << load_as_double(host.storage()->data(), at, host.dtype());
    } else {
      print_values(out, host, dim + 1, at, max_per_dim);
    }
    if (i + 1 < extent) out << ", ";
  }
  out << ']';
}
}  // namespace

std::string Tensor::str(int max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream out;
  out << "Tensor(" << dtype_name(dtype()) << ", " << shape_str(shape()) << ", " << device().str()
      << ") " << std::setprecision(6);
  const Tensor host = to(Device::cpu());
  if (dim() == 0) {
    out << host.item();
  } else if (numel() > 0) {
    print_values(out, host, 0, host.offset(), max_per_dim);
  } else {
    out << "[]";
  }
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) {
  return out << tensor.str();
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  TKF_CHECK(a.shape() == b.shape(), op, ": shape mismatch, ", shape_str(a.shape()), " vs ",
            shape_str(b.shape()));
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  TKF_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", dtype_name(a.dtype()), " ",
            shape_str(a.shape()), " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  TKF_CHECK(a.device() == b.device(), op, ": device mismatch, ", a.device().str(), " vs ",
            b.device().str());
}

}  // namespace topkformer
