// The NCCL backend of dist::Communicator (builds with CUDA and MPI only).
// See Note [NCCL communicator].
#include <nccl.h>

#include <cstring>
#include <memory>
#include <string>

#include "cuda/check.h"
#include "cuda/device.h"
#include "dist/mpi_runtime.h"
#include "dist/nccl_communicator.h"
#include "topkformer/core/error.h"
#include "topkformer/kernels/backend.h"

// Note [NCCL communicator]
// - It wraps the MPI communicator (make_mpi_communicator()): MPI starts the
//   processes and gives rank, world size and local rank. Rank 0 calls
//   ncclGetUniqueId and broadcasts the id's bytes to the others as a u8 CPU
//   tensor through the MPI communicator; every rank then calls
//   ncclCommInitRank. No other rendezvous (no TCP store, no environment).
// - One GPU per rank: this rank's GPU is cuda:(local_rank % device count). The
//   trainer moves the model there (app/train_command.cpp rewrites
//   runtime.device: cuda to cuda:<that index>), so every CUDA tensor handed
//   to a collective must be on that GPU.
// - CUDA tensors go through NCCL on the GPU's stream, cuda::stream(index),
//   so collectives are ordered with the kernels and copies that produced
//   and that consume the tensor, without host synchronization: all_reduce
//   (ncclSum; ncclMax; average = sum, then a scale by 1/world on the same
//   stream), broadcast (ncclBroadcast, in place) and all_gather (ncclAllGather
//   into a new [world, ...] tensor on the GPU).
// - CPU tensors (the trainer's small state tensors, the gradient reducer's
//   "which parameters have a gradient" flags) go to the wrapped MPI
//   communicator unchanged.
// - barrier() waits for the GPU's stream, then for every rank (MPI_Barrier).
// - With a collective timeout (runtime.collective_timeout), the host waits
//   after every NCCL call until the stream has run it, polling
//   cudaStreamQuery in wait_for_collective like the MPI backend polls its
//   requests, and a timeout ends the job naming the ranks that do not answer
//   (over MPI). Without one, NCCL calls return at once, as they are queued.
//   The job ends with MPI_Abort, not ncclCommAbort: on a blocking
//   communicator ncclCommAbort may itself wait for the stuck kernel, while
//   ending the process frees the GPU context, kernels and all.
// - Dtypes: f32, f64, i32, i64, u8.
// An NCCL failure throws Error naming the call and NCCL's error string.

namespace topkformer::cuda::detail {

[[noreturn]] void throw_nccl_error(ncclResult_t status, const char* call, const char* file,
                                   int line) {
  std::string where = file;
  const std::size_t source_dir = where.rfind("/src/");
  if (source_dir != std::string::npos) where = where.substr(source_dir + 1);
  throw Error(topkformer::detail::concat(
      "NCCL error: ", call, " failed: ", ncclGetErrorString(status), " at ", where, ":", line));
}

inline void check_status(ncclResult_t status, const char* call, const char* file, int line) {
  if (status != ncclSuccess) throw_nccl_error(status, call, file, line);
}

}  // namespace topkformer::cuda::detail

namespace topkformer::dist {
namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return ncclFloat32;
    case DType::f64:
      return ncclFloat64;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
    case DType::u8:
      return ncclUint8;
  }
  throw Error("nccl: unsupported dtype");
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(double collective_timeout) : timeout_(collective_timeout) {
    const int devices = cuda::device_count();
    TKF_CHECK(devices > 0, "runtime.distributed: nccl needs a GPU, and none is available: ",
              cuda::unavailable_reason());
    mpi_ = make_mpi_communicator(collective_timeout);
    rank_ = mpi_->rank();
    world_size_ = mpi_->world_size();
    local_rank_ = mpi_->local_rank();
    device_ = local_rank_ % devices;

    ncclUniqueId id{};
    if (rank_ == 0) TKF_CUDA_CHECK(ncclGetUniqueId(&id));
    const Tensor bytes = Tensor::empty({std::int64_t(sizeof id)}, DType::u8);
    std::memcpy(bytes.raw_data(), &id, sizeof id);
    mpi_->broadcast(bytes, 0);
    std::memcpy(&id, bytes.raw_data(), sizeof id);

    const cuda::DeviceGuard guard(device_);
    TKF_CUDA_CHECK(ncclCommInitRank(&comm_, world_size_, id, rank_));
  }

  ~NcclCommunicator() override {
    const cuda::DeviceGuard guard(device_);
    static_cast<void>(cudaStreamSynchronize(cuda::stream(device_)));
    static_cast<void>(ncclCommDestroy(comm_));
  }

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  Backend backend() const override { return Backend::nccl; }

  void all_reduce(const Tensor& tensor, ReduceOp op) override {
    if (tensor.device().is_cpu()) return mpi_->all_reduce(tensor, op);
    check_buffer(tensor, "all_reduce");
    {
      const cuda::DeviceGuard guard(device_);
      TKF_CUDA_CHECK(ncclAllReduce(tensor.raw_data(), tensor.raw_data(),
                                   std::size_t(tensor.numel()), nccl_type(tensor.dtype()),
                                   op == ReduceOp::max ? ncclMax : ncclSum, comm_,
                                   cuda::stream(device_)));
      wait("all_reduce");
    }
    if (op == ReduceOp::average) {
      kernels::backend(tensor.device()).affine(tensor, 1.0 / world_size_, 0.0, tensor);
    }
  }

  void broadcast(const Tensor& tensor, int root) override {
    if (tensor.device().is_cpu()) return mpi_->broadcast(tensor, root);
    check_buffer(tensor, "broadcast");
    const cuda::DeviceGuard guard(device_);
    TKF_CUDA_CHECK(ncclBroadcast(tensor.raw_data(), tensor.raw_data(), std::size_t(tensor.numel()),
                                 nccl_type(tensor.dtype()), root, comm_, cuda::stream(device_)));
    wait("broadcast");
  }

  Tensor all_gather(const Tensor& tensor) override {
    if (tensor.device().is_cpu()) return mpi_->all_gather(tensor);
    check_buffer(tensor, "all_gather");
    Shape shape = tensor.shape();
    shape.insert(shape.begin(), world_size_);
    Tensor gathered = Tensor::empty(shape, tensor.dtype(), tensor.device());
    const cuda::DeviceGuard guard(device_);
    TKF_CUDA_CHECK(ncclAllGather(tensor.raw_data(), gathered.raw_data(),
                                 std::size_t(tensor.numel()), nccl_type(tensor.dtype()), comm_,
                                 cuda::stream(device_)));
    wait("all_gather");
    return gathered;
  }

  void barrier() override {
    cuda::synchronize_stream(device_);
    mpi_->barrier();
  }

 private:
  // With a timeout, until this rank's stream has run the collective just
  // queued (and the kernels before it); the caller holds a DeviceGuard.
  void wait(const char* operation) const {
    if (timeout_ <= 0) return;
    const cudaStream_t stream = cuda::stream(device_);
    wait_for_collective(
        [stream] {
          const cudaError_t status = cudaStreamQuery(stream);
          if (status == cudaErrorNotReady) return false;
          TKF_CUDA_CHECK(status);
          return true;
        },
        operation, timeout_);
  }

  void check_buffer(const Tensor& tensor, const char* operation) const {
    TKF_CHECK(tensor.device() == Device::cuda(device_), operation,
              ": the nccl backend of this rank moves tensors on cuda:", device_,
              " (or the CPU), got one on ", tensor.device().str());
    TKF_CHECK(tensor.is_contiguous(), operation, ": the tensor must be contiguous");
  }

  double timeout_;
  std::unique_ptr<Communicator> mpi_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(double collective_timeout) {
  return std::make_unique<NcclCommunicator>(collective_timeout);
}

}  // namespace topkformer::dist
