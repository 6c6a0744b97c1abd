// The MPI backend: CPU tensors, MPI_COMM_WORLD; failing calls are Errors
// and a rank that never joins ends the job after the collective timeout.
// See Note [MPI communicator].
#include "build_config.h"
#include "mpi_runtime.h"
#include "topkformer/core/error.h"
#include "topkformer/dist/communicator.h"

#if TOPKFORMER_WITH_MPI
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "topkformer/kernels/backend.h"

// Note [MPI communicator]
// MPI's error handler is set to return, so a failing call becomes an Error
// naming the call instead of killing the process without a word. Collectives
// are nonblocking calls waited for by wait_for_collective, so that a rank
// that never joins (stopped, hung) ends the job after
// runtime.collective_timeout instead of holding it.

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
  // The "are you alive?" probes and their answers travel here, apart from
  // any message the program sends on MPI_COMM_WORLD.
  MPI_Comm liveness() const { return liveness_; }

 private:
  MpiRuntime() {
    // Open MPI's nonblocking all-reduce reduces an in-place buffer (as every
    // one of ours is) along a binomial tree unless told otherwise; the ring
    // is as fast as the blocking call (docs/distributed.md). A user's own
    // --mca choice reaches us in the same variable and is kept.
    ::setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
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
    TKF_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &liveness_));
  }
  MpiJob job_;
  int local_rank_ = 0;
  MPI_Comm liveness_ = MPI_COMM_NULL;
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

// A contiguous CPU tensor as MPI calls take a buffer.
struct Buffer {
  void* data;
  int count;
  MPI_Datatype type;
};

Buffer mpi_buffer(const Tensor& tensor, const char* operation) {
  TKF_CHECK(tensor.device().is_cpu(), operation, ": the mpi backend moves CPU tensors, got one on ",
            tensor.device().str());
  TKF_CHECK(tensor.is_contiguous(), operation, ": the tensor must be contiguous");
  return {tensor.raw_data(), int(tensor.numel()), mpi_type(tensor.dtype())};
}

using Clock = std::chrono::steady_clock;

// The liveness messages carry nothing: the tag and the source say it all.
constexpr int probe_tag = 1, answer_tag = 2;
// A waiting rank polls without pausing for this long, as a blocking MPI call
// would: the pending collective progresses only inside MPI calls, so pauses
// would slow a large transfer (a gradient bucket over a slow network) down.
constexpr auto spin_time = std::chrono::seconds(1);
// A longer wait is one for a late rank (rank 0 saving a checkpoint): the
// pauses between polls then double up to this, so it no longer keeps a core
// busy, at the cost of up to this much latency once the rank arrives.
constexpr auto longest_pause = std::chrono::microseconds(100);
// How long a rank whose collective timed out waits for answers. Ranks that
// have waited in a collective for spin_time answer within one pause; a rank
// that is stopped, hung or busy outside any collective does not.
constexpr auto answer_grace = std::chrono::seconds(2);
static_assert(answer_grace > spin_time + longest_pause);

// Answers every probe that has arrived. The answers are empty, so they leave
// without the prober's help and nothing needs to wait for them.
void answer_probes(MPI_Comm liveness) {
  for (;;) {
    int pending = 0;
    MPI_Status status;
    TKF_MPI(MPI_Iprobe(MPI_ANY_SOURCE, probe_tag, liveness, &pending, &status));
    if (!pending) return;
    TKF_MPI(
        MPI_Recv(nullptr, 0, MPI_BYTE, status.MPI_SOURCE, probe_tag, liveness, MPI_STATUS_IGNORE));
    MPI_Request answer = MPI_REQUEST_NULL;
    TKF_MPI(MPI_Isend(nullptr, 0, MPI_BYTE, status.MPI_SOURCE, answer_tag, liveness, &answer));
    TKF_MPI(MPI_Request_free(&answer));
  }
}

// "rank 1 is", "ranks 1, 3 are".
std::string ranks_are(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    text += (i > 0 ? ", " : "") + std::to_string(ranks[i]);
  }
  return text + (ranks.size() == 1 ? " is" : " are");
}

// Probes every other rank, waits for the answers, and ends the job naming
// the silent ones. Failures of MPI calls are ignored here: the job ends
// whatever they say, and the message matters more than their details.
[[noreturn]] void end_job_after_timeout(const char* operation, double timeout) {
  const MpiRuntime& runtime = MpiRuntime::instance();
  const int rank = runtime.job().rank, world = runtime.job().world_size;
  std::vector<MPI_Request> answers(std::size_t(world), MPI_REQUEST_NULL);
  for (int peer = 0; peer < world; ++peer) {
    if (peer == rank) continue;
    MPI_Request probe = MPI_REQUEST_NULL;
    MPI_Isend(nullptr, 0, MPI_BYTE, peer, probe_tag, runtime.liveness(), &probe);
    MPI_Request_free(&probe);
    MPI_Irecv(nullptr, 0, MPI_BYTE, peer, answer_tag, runtime.liveness(),
              &answers[std::size_t(peer)]);
  }
  const Clock::time_point deadline = Clock::now() + answer_grace;
  std::vector<int> silent;
  for (bool waiting = true; waiting;) {
    // The others time out too, and probe this rank. An error must not
    // unwind from here (the pending collective still owns its buffers).
    try {
      answer_probes(runtime.liveness());
    } catch (const Error&) {
    }
    const bool last = Clock::now() >= deadline;
    silent.clear();
    for (int peer = 0; peer < world; ++peer) {
      int answered = 0;
      if (peer != rank) MPI_Test(&answers[std::size_t(peer)], &answered, MPI_STATUS_IGNORE);
      if (peer != rank && !answered) silent.push_back(peer);
    }
    waiting = !silent.empty() && !last;
    if (waiting) std::this_thread::sleep_for(longest_pause);
  }
  const std::string who =
      silent.empty()
          ? "every other rank answers, so the ranks wait in different collectives (a bug) or "
            "the network fails"
          : ranks_are(silent) + " not responding (stopped or hung)";
  report_failure(detail::concat(operation, " did not complete within ", timeout, " s: ", who,
                                "; ending the job (runtime.collective_timeout)"));
  abort_mpi_job(1);  // report_failure has done so already: there are several ranks
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double collective_timeout) : timeout_(collective_timeout) {
    TKF_CHECK(collective_timeout >= 0, "mpi: the collective timeout must be >= 0 seconds, got ",
              collective_timeout);
    const MpiRuntime& runtime = MpiRuntime::instance();
    rank_ = runtime.job().rank;
    world_size_ = runtime.job().world_size;
    local_rank_ = runtime.local_rank();
  }

  Backend backend() const override { return Backend::mpi; }

  // Without a timeout, the blocking calls: Open MPI's blocking collectives
  // (coll/tuned) choose faster algorithms than its nonblocking ones
  // (coll/libnbc) for large in-place buffers (docs/distributed.md).
  void all_reduce(const Tensor& tensor, ReduceOp op) override {
    const auto [data, count, type] = mpi_buffer(tensor, "all_reduce");
    const MPI_Op sum_or_max = op == ReduceOp::max ? MPI_MAX : MPI_SUM;
    if (timeout_ == 0) {
      TKF_MPI(MPI_Allreduce(MPI_IN_PLACE, data, count, type, sum_or_max, MPI_COMM_WORLD));
    } else {
      MPI_Request request = MPI_REQUEST_NULL;
      TKF_MPI(
          MPI_Iallreduce(MPI_IN_PLACE, data, count, type, sum_or_max, MPI_COMM_WORLD, &request));
      wait(request, "all_reduce");
    }
    if (op == ReduceOp::average) {
      kernels::backend(tensor.device()).affine(tensor, 1.0 / world_size_, 0.0, tensor);
    }
  }

  void broadcast(const Tensor& tensor, int root) override {
    const auto [data, count, type] = mpi_buffer(tensor, "broadcast");
    if (timeout_ == 0) {
      TKF_MPI(MPI_Bcast(data, count, type, root, MPI_COMM_WORLD));
    } else {
      MPI_Request request = MPI_REQUEST_NULL;
      TKF_MPI(MPI_Ibcast(data, count, type, root, MPI_COMM_WORLD, &request));
      wait(request, "broadcast");
    }
  }

  Tensor all_gather(const Tensor& tensor) override {
    const auto [data, count, type] = mpi_buffer(tensor, "all_gather");
    Shape shape = tensor.shape();
    shape.insert(shape.begin(), world_size_);
    Tensor gathered = Tensor::empty(shape, tensor.dtype());
    if (timeout_ == 0) {
      TKF_MPI(MPI_Allgather(data, count, type, gathered.raw_data(), count, type, MPI_COMM_WORLD));
    } else {
      MPI_Request request = MPI_REQUEST_NULL;
      TKF_MPI(MPI_Iallgather(data, count, type, gathered.raw_data(), count, type, MPI_COMM_WORLD,
                             &request));
      wait(request, "all_gather");
    }
    return gathered;
  }

  void barrier() override {
    if (timeout_ == 0) {
      TKF_MPI(MPI_Barrier(MPI_COMM_WORLD));
    } else {
      MPI_Request request = MPI_REQUEST_NULL;
      TKF_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &request));
      wait(request, "barrier");
    }
  }

 private:
  void wait(MPI_Request& request, const char* operation) const {
    wait_for_collective(
        [&request] {
          int complete = 0;
          TKF_MPI(MPI_Test(&request, &complete, MPI_STATUS_IGNORE));
          return complete != 0;
        },
        operation, timeout_);
  }

  double timeout_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(double collective_timeout) {
  return std::make_unique<MpiCommunicator>(collective_timeout);
}

void wait_for_collective(const std::function<bool()>& done, const char* operation, double timeout) {
  const Clock::time_point start = Clock::now();
  std::chrono::nanoseconds pause(1000);
  while (!done()) {
    const Clock::duration waited = Clock::now() - start;
    if (timeout > 0 && waited >= std::chrono::duration<double>(timeout)) {
      end_job_after_timeout(operation, timeout);
    }
    if (waited < spin_time) continue;
    answer_probes(MpiRuntime::instance().liveness());
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::nanoseconds>(pause * 2, longest_pause);
  }
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

std::unique_ptr<Communicator> make_mpi_communicator(double) {
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
