// The MPI library's process-wide state: initialised on first use, finalised
// at exit. Without MPI in the build, a job is always one process.
#pragma once

#include <functional>

namespace topkformer::dist {

struct MpiJob {
  int rank = 0;
  int world_size = 1;
};

// The job as MPI sees it once this process has initialised MPI; otherwise
// (MPI unused or not built in) one process.
MpiJob mpi_job();

// Stops every process of the job (MPI_Abort); the caller must have found
// mpi_job().world_size > 1.
[[noreturn]] void abort_mpi_job(int code);

// Waits until `done()` returns true (it polls one pending collective: an MPI
// request, a GPU stream), answering the other ranks' "are you alive?" probes
// meanwhile. After `timeout` seconds (0: never) it probes every other rank,
// and ends the job (MPI_Abort) naming `operation` and the ranks that did not
// answer. It never returns after a timeout: unwinding would free buffers the
// pending collective still writes into. MPI builds only (mpi_communicator.cpp).
void wait_for_collective(const std::function<bool()>& done, const char* operation, double timeout);

}  // namespace topkformer::dist
