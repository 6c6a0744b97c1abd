// Collectives between the processes of a data-parallel job. MPI starts the
// processes (`mpirun -np N topkformer train ...`) and moves CPU tensors; NCCL
// moves CUDA tensors; a single process needs neither.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "topkformer/core/names.h"

#include "topkformer/core/tensor.h"

namespace topkformer::dist {

enum class Backend { single, mpi, nccl, count };
inline constexpr auto backend_names = std::to_array<std::string_view>({"single", "mpi", "nccl"});
static_assert(names_match<Backend>(backend_names));
inline std::string backend_name(Backend backend) {
  return enum_name(backend_names, backend);
}

enum class ReduceOp { sum, average, max };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual Backend backend() const = 0;
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // The rank among the processes on this machine (which GPU a rank takes).
  int local_rank() const { return local_rank_; }

  // In place on every rank. Tensors must be contiguous, with the same shape
  // and dtype on every rank.
  virtual void all_reduce(const Tensor& tensor, ReduceOp op) = 0;
  virtual void broadcast(const Tensor& tensor, int root) = 0;
  // [world_size, ...tensor's shape]: every rank's tensor, in rank order.
  virtual Tensor all_gather(const Tensor& tensor) = 0;
  virtual void barrier() = 0;

 protected:
  int rank_ = 0, world_size_ = 1, local_rank_ = 0;
};

// One process: every collective is the identity.
std::unique_ptr<Communicator> make_single_communicator();
// Every process of the MPI job (MPI_COMM_WORLD); MPI is initialised on first
// use and finalised at exit. Throws in a build without MPI.
//
// collective_timeout (seconds; 0: none): a rank whose collective has not
// completed after that long asks the others whether they are alive, then
// ends the job (MPI_Abort) with a message naming the ranks that did not
// answer, so that a stopped or hung rank cannot hold the job forever
// (runtime.collective_timeout, docs/distributed.md). Without one, the
// collectives are MPI's blocking calls.
std::unique_ptr<Communicator> make_mpi_communicator(double collective_timeout = 0.0);

// Whether an MPI launcher (mpirun, srun with PMI/PMIx) started this process.
bool launched_by_mpi();

// runtime.distributed for runtime.device: the backend it names, or for auto
// (no backend) nccl for cuda and mpi for cpu when an MPI launcher started the
// process with more than one rank, else single.
Backend choose_backend(std::optional<Backend> setting, const std::string& device);
// collective_timeout as make_mpi_communicator takes it (single ignores it).
std::unique_ptr<Communicator> make_communicator(Backend backend, double collective_timeout = 0.0);

// Reports an error that ends this process: `error: message` on stderr, with
// `rank R: ` in front in a job of several ranks, whose every process it then
// stops (MPI_Abort), so that no rank waits forever in a collective its failed
// peer will never enter. Returns the exit status for a single process.
int report_failure(const std::string& message);

}  // namespace topkformer::dist
