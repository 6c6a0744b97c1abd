// A two-rank job whose rank 1 fails before a collective that rank 0 has
// entered: the job must end with rank 1's message instead of hanging
// (ctest runs it under mpirun with a timeout and looks for the message).
#include <exception>

#include "topkformer/core/error.h"
#include "topkformer/dist/communicator.h"

int main() {
  using namespace topkformer;
  try {
    const auto communicator = dist::make_mpi_communicator();
    if (communicator->rank() == 1) throw Error("deliberate failure on rank 1");
    const Tensor value = Tensor::ones({4});
    communicator->all_reduce(value, dist::ReduceOp::sum);  // rank 1 never joins
    return 0;
  } catch (const std::exception& error) {
    return dist::report_failure(error.what());
  }
}
