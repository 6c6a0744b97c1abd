// Errors thrown by the framework. Every check names the operation that failed so
// that a message read in a log is enough to find the cause.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace topkformer {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace topkformer

// TKF_CHECK(cond, "op: message ", value, ...) throws topkformer::Error with the
// concatenated message when cond is false.
#define TKF_CHECK(cond, ...)                                                           \
  do {                                                                                 \
    if (!(cond)) throw ::topkformer::Error(::topkformer::detail::concat(__VA_ARGS__)); \
  } while (0)
