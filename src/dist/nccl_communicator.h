// The NCCL backend (src/cuda/nccl_communicator.cpp), built only when the
// build has both CUDA and MPI (TOPKFORMER_WITH_CUDA && TOPKFORMER_WITH_MPI).
#pragma once

#include <memory>

#include "topkformer/dist/communicator.h"

namespace topkformer::dist {

// Every process of the MPI job, CUDA tensors through NCCL on this rank's GPU
// (cuda:(local_rank % device count)), CPU tensors through MPI. Throws without
// a GPU.
std::unique_ptr<Communicator> make_nccl_communicator();

}  // namespace topkformer::dist
