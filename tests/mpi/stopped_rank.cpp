// A three-rank job whose rank 1 stops itself (SIGSTOP) before an all-reduce
// that ranks 0 and 2 enter, with a 2 s collective timeout: the job must end
// naming rank 1, and rank 1 alone, as not responding instead of waiting
// forever (ctest runs it under mpirun with a timeout and looks for the message).
#include <csignal>
#include <exception>

#include "topkformer/core/error.h"
#include "topkformer/dist/communicator.h"

int main() {
  using namespace topkformer;
  try {
    const auto communicator = dist::make_mpi_communicator(/*collective_timeout=*/2.0);
    communicator->barrier();  // every rank has started
    if (communicator->rank() == 1) std::raise(SIGSTOP);
    const Tensor value = Tensor::ones({4});
    communicator->all_reduce(value, dist::ReduceOp::sum);  // rank 1 never joins
    return 0;
  } catch (const std::exception& error) {
    return dist::report_failure(error.what());
  }
}
