#include "topkformer/data/data_root.h"

#include <cstdlib>
#include <sstream>

namespace topkformer::data {
namespace {

bool is_project_root(const std::filesystem::path& directory) {
  std::error_code ignored;
  return std::filesystem::is_regular_file(directory / "CMakeLists.txt", ignored) &&
         std::filesystem::is_directory(directory / "include" / "topkformer", ignored);
}

}  // namespace

std::filesystem::path project_root() {
  const std::filesystem::path working_directory = std::filesystem::current_path();
  for (std::filesystem::path directory = working_directory;; directory = directory.parent_path()) {
    if (is_project_root(directory)) return directory;
    if (directory == directory.parent_path()) return working_directory;
  }
}

std::filesystem::path data_root() {
  const char* configured = std::getenv("TOPKFORMER_DATA");
  if (configured != nullptr && *configured != '\0') return configured;
  return (project_root() / ".." / "shared" / "data").lexically_normal();
}

std::filesystem::path data_file(const std::filesystem::path& relative_path) {
  return data_root() / relative_path;
}

std::string missing_data_message(const std::filesystem::path& file) {
  std::ostringstream message;
  message << file << " does not exist; set TOPKFORMER_DATA to the folder that holds the shared "
          << "data (default ../shared/data beside the project root)";
  return message.str();
}

}  // namespace topkformer::data
