#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "support/test_support.h"

namespace lanefs::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/lanefs-test-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  if (p == nullptr) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string build_path(const std::string& rel) {
  const char* b = std::getenv("LANEFS_BUILD_DIR");
  return std::string(b ? b : ".") + "/" + rel;
}

}  // namespace lanefs::test
