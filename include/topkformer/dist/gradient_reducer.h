// Averages the parameters' gradients across the ranks of a data-parallel job.
// See Note [gradient buckets].
#pragma once

#include <cstdint>
#include <vector>

#include "topkformer/dist/communicator.h"

// Note [gradient buckets]
// Gradients are packed into a few large buckets (one collective per bucket
// instead of one per parameter: the per-call latency is paid a few times,
// not hundreds of times per step).

namespace topkformer::dist {

class GradientReducer {
 public:
  // Buckets hold parameters of one dtype, in order, up to bucket_bytes each
  // (a parameter larger than that gets a bucket of its own).
  GradientReducer(Communicator& communicator, std::vector<Tensor> parameters,
                  std::int64_t bucket_bytes = std::int64_t{25} << 20);

  // After backward: every parameter that has a gradient on any rank gets
  // the mean of the ranks' gradients (a rank without one counts zeros).
  void average();

  std::size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Bucket {
    DType dtype;
    std::vector<std::size_t> members;  // indices into parameters_
    std::int64_t elements = 0;
  };

  Communicator& communicator_;
  std::vector<Tensor> parameters_;
  std::vector<Bucket> buckets_;
};

}  // namespace topkformer::dist
