// The MPI backend: CPU tensors, MPI_COMM_WORLD. MPI's error handler is set to
// return, so a failing call becomes an Error naming the call instead of
// killing the process without a word.
#include "build_config.h"
#include "mpi_runtime.h"
#include "topkformer/core/error.h"
#include "topkformer/dist/communicator.h"

#if TOPKFORMER_WITH_MPI
#include <mpi.h>

#include <cstdlib>

#include "topkformer/kernels/backend.h"

namespace topkformer::dist {
namespace {

void check(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw Error(detail::concat(call, " failed: ", std::string(text, std::size_t(length))));
}
#define TKF_MPI(call) check(call, #call)

// Initialises MPI once (threads: only the main thread calls MPI, OpenMP
// threads never do) and finalises it when the process exits normally.
class MpiRuntime {
 public:
  static MpiRuntime& instance() {
    static MpiRuntime runtime;
    return runtime;
  }
  ~MpiRuntime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  MpiJob job() const { return job_; }
  int local_rank() const { return local_rank_; }

 private:
  MpiRuntime() {
    int provided = 0;
    TKF_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    TKF_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    TKF_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &job_.rank));
    TKF_MPI(MPI_Comm_size(MPI_COMM_WORLD, &job_.world_size));
    MPI_Comm node = MPI_COMM_NULL;
    TKF_MPI(
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, job_.rank, MPI_INFO_NULL, &node));
    TKF_MPI(MPI_Comm_rank(node, &local_rank_));
    MPI_Comm_free(&node);
  }
  MpiJob job_;
  int local_rank_ = 0;
};

bool initialised() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
    case DType::u8:
      return MPI_UINT8_T;
  }
  throw Error("mpi: unsupported dtype");
}

void check_buffer(const Tensor& tensor, const char* operation) {
  TKF_CHECK(tensor.device().is_cpu(), operation, ": the mpi backend moves CPU tensors, got one on ",
            tensor.device().str());
  TKF_CHECK(tensor.is_contiguous(), operation, ": the tensor must be contiguous");
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    const MpiRuntime& runtime = MpiRuntime::instance();
    rank_ = runtime.job().rank;
    world_size_ = runtime.job().world_size;
    local_rank_ = runtime.local_rank();
  }

  Backend backend() const override { return Backend::mpi; }

  void all_reduce(const Tensor& tensor, ReduceOp op) override {
    check_buffer(tensor, "all_reduce");
    TKF_MPI(MPI_Allreduce(MPI_IN_PLACE, tensor.raw_data(), int(tensor.numel()),
                          mpi_type(tensor.dtype()), op == ReduceOp::max ? MPI_MAX : MPI_SUM,
                          MPI_COMM_WORLD));
    if (op == ReduceOp::average) {
      kernels::backend(tensor.device()).affine(tensor, 1.0 / world_size_, 0.0, tensor);
    }
  }

  void broadcast(const Tensor& tensor, int root) override {
    check_buffer(tensor, "broadcast");
    TKF_MPI(MPI_Bcast(tensor.raw_data(), int(tensor.numel()), mpi_type(tensor.dtype()), root,
                      MPI_COMM_WORLD));
  }

  Tensor all_gather(const Tensor& tensor) override {
    check_buffer(tensor, "all_gather");
    Shape shape = tensor.shape();
    shape.insert(shape.begin(), world_size_);
    Tensor gathered = Tensor::empty(shape, tensor.dtype());
    TKF_MPI(MPI_Allgather(tensor.raw_data(), int(tensor.numel()), mpi_type(tensor.dtype()),
                          gathered.raw_data(), int(tensor.numel()), mpi_type(tensor.dtype()),
                          MPI_COMM_WORLD));
    return gathered;
  }

  void barrier() override { TKF_MPI(MPI_Barrier(MPI_COMM_WORLD)); }
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

MpiJob mpi_job() {
  return initialised() ? MpiRuntime::instance().job() : MpiJob{};
}

void abort_mpi_job(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this says so to the compiler
}

}  // namespace topkformer::dist

#else  // without MPI

namespace topkformer::dist {

std::unique_ptr<Communicator> make_mpi_communicator() {
  throw Error(
      "runtime.distributed: mpi needs a build with MPI (configure with -DTOPKFORMER_MPI=ON and "
      "an MPI implementation such as Debian's libopenmpi-dev)");
}

MpiJob mpi_job() {
  return {};
}

void abort_mpi_job(int code) {
  std::exit(code);
}

}  // namespace topkformer::dist

#endif
