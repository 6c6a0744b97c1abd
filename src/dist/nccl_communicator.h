// The NCCL backend (src/cuda/nccl_communicator.cpp), built only when the
// build has both CUDA and MPI (TOPKFORMER_WITH_CUDA && TOPKFORMER_WITH_MPI).
#pragma once

#include <memory>

#include "topkformer/dist/communicator.h"

namespace topkformer::dist {

// Every process of the MPI job, CUDA tensors through NCCL on this rank's GPU
// (cuda:(local_rank % device count)), CPU tensors through MPI. Throws without
// a GPU. collective_timeout as make_mpi_communicator takes it: with one, every
// NCCL collective is waited for (the stream polled) until it completes.
std::unique_ptr<Communicator> make_nccl_communicator(double collective_timeout);

}  // namespace topkformer::dist
