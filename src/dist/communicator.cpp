#include "topkformer/dist/communicator.h"

#include <cstdlib>
#include <iostream>

#include "build_config.h"
#include "mpi_runtime.h"
#include "nccl_communicator.h"
#include "topkformer/core/error.h"

namespace topkformer::dist {
namespace {

class SingleCommunicator final : public Communicator {
 public:
  Backend backend() const override { return Backend::single; }
  void all_reduce(const Tensor&, ReduceOp) override {}
  void broadcast(const Tensor&, int) override {}
  Tensor all_gather(const Tensor& tensor) override {
    Shape shape = tensor.shape();
    shape.insert(shape.begin(), 1);
    return tensor.contiguous().reshape(shape);
  }
  void barrier() override {}
};

bool environment_has(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0';
}

int environment_int(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? 0 : std::atoi(value);
}

}  // namespace

std::unique_ptr<Communicator> make_single_communicator() {
  return std::make_unique<SingleCommunicator>();
}

bool launched_by_mpi() {
  // Open MPI's mpirun, PMIx launchers (Slurm's srun --mpi=pmix) and PMI-1/2 ones.
  return environment_has("OMPI_COMM_WORLD_SIZE") || environment_has("PMIX_RANK") ||
         environment_has("PMI_SIZE");
}

Backend choose_backend(std::optional<Backend> setting, const std::string& device) {
  if (setting) return *setting;
  const int world = std::max({environment_int("OMPI_COMM_WORLD_SIZE"), environment_int("PMI_SIZE"),
                              environment_int("PMIX_SIZE")});
  if (!launched_by_mpi() || world == 1) return Backend::single;
  return device.rfind("cuda", 0) == 0 ? Backend::nccl : Backend::mpi;
}

std::unique_ptr<Communicator> make_communicator(Backend backend, double collective_timeout) {
  switch (backend) {
    case Backend::single:
      return make_single_communicator();
    case Backend::mpi:
      return make_mpi_communicator(collective_timeout);
    case Backend::nccl:
#if TOPKFORMER_WITH_CUDA && TOPKFORMER_WITH_MPI
      return make_nccl_communicator(collective_timeout);
#elif TOPKFORMER_WITH_CUDA
      throw Error(
          "runtime.distributed: nccl needs a build with MPI (it bootstraps NCCL over MPI; "
          "configure with -DTOPKFORMER_MPI=ON and an MPI implementation such as Debian's "
          "libopenmpi-dev), or use single");
#else
      throw Error(
          "runtime.distributed: nccl moves CUDA tensors, and this build has no CUDA backend"
#if !TOPKFORMER_WITH_MPI
          " (nor MPI, which nccl also needs)"
#endif
          "; use mpi (CPU tensors) or single");
#endif
    case Backend::count:
      break;
  }
  throw Error("make_communicator: unknown backend");
}

int report_failure(const std::string& message) {
  const MpiJob job = mpi_job();
  if (job.world_size > 1) {
    // One write: ranks failing together (a collective timeout) are killed
    // mid-line by the first one's MPI_Abort, and piecewise output interleaves.
    std::cerr << detail::concat("rank ", job.rank, ": error: ", message, '\n') << std::flush;
    abort_mpi_job(1);
  }
  std::cerr << "error: " << message << '\n';
  return 1;
}

}  // namespace topkformer::dist
