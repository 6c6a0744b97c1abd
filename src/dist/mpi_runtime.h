// The MPI library's process-wide state: initialised on first use, finalised
// at exit. Without MPI in the build, a job is always one process.
#pragma once

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

}  // namespace topkformer::dist
