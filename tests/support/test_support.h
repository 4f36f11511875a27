// Shared test helpers: ASSERT_OK/EXPECT_OK for Result/Status, a temporary
// directory that cleans itself up, and a child-process runner for tests that
// start real lanefsd binaries.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

#define ASSERT_OK(expr)                                                   \
  do {                                                                    \
    const auto& lanefs_t_ = (expr);                                       \
    ASSERT_TRUE(lanefs_t_.ok()) << #expr << ": " << lanefs_t_.error().to_string(); \
  } while (0)
#define EXPECT_OK(expr)                                                   \
  do {                                                                    \
    const auto& lanefs_t_ = (expr);                                       \
    EXPECT_TRUE(lanefs_t_.ok()) << #expr << ": " << lanefs_t_.error().to_string(); \
  } while (0)

namespace lanefs::test {

// mkdtemp under $TMPDIR (or /tmp); removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Path of a built binary (LANEFS_BUILD_DIR/userspace/...); ctest sets the env.
std::string build_path(const std::string& rel);

// A child process started with fork/exec; killed (SIGKILL) on destruction.
class Child {
 public:
  Child() = default;
  explicit Child(std::vector<std::string> argv, const std::string& log_file = {});
  ~Child();
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  pid_t pid() const { return pid_; }
  void kill_hard();              // SIGKILL + reap
  int stop(int sig = 15);        // signal + wait, returns exit status or -signal
  bool running();

 private:
  pid_t pid_ = -1;
};

// Runs a command to completion; returns its exit status, output in *out.
int run_command(const std::vector<std::string>& argv, std::string* out = nullptr);

// Moves this process into a network namespace of its own (loopback up,
// gone with the process) with nftables table `table` (inet) and its output
// chain "out" for drop rules. Returns "" on success, else why the test must
// be skipped (not root, no unshare, no nft).
std::string enter_netns_with_nft(const std::string& table);

// A free UDP port on 127.0.0.1 (bound and released; racy but fine for tests).
uint16_t free_udp_port();

}  // namespace lanefs::test
