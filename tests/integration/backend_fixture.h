// Helpers for integration tests that run real lanefsd and lanefs processes on
// 127.0.0.1: a backend child with its own data directory, log and port; a
// bounded wait until it answers; kill -9 and restart on the same directory
// and port; a runner for the CLI binary; and data helpers.
//
// Threading: none of these objects are thread-safe; one test thread drives
// them. Every wait is bounded in time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "client/cluster_client.h"
#include "common/net_addr.h"
#include "common/result.h"
#include "support/test_support.h"

// Expects a Result/Status to have failed with `want` (prints code names).
#define EXPECT_ERRC(expr, want)                                                              \
  do {                                                                                      \
    const auto& lanefs_e_ = (expr);                                                         \
    EXPECT_EQ(::lanefs::errc_name(lanefs_e_.code()), ::lanefs::errc_name(want)) << #expr;    \
  } while (0)
#define ASSERT_ERRC(expr, want)                                                              \
  do {                                                                                      \
    const auto& lanefs_e_ = (expr);                                                         \
    ASSERT_EQ(::lanefs::errc_name(lanefs_e_.code()), ::lanefs::errc_name(want)) << #expr;    \
  } while (0)

namespace lanefs::test {

inline constexpr uint64_t kSecond = 1'000'000'000ull;

std::string lanefsd_path();  // build_path("userspace/backend/lanefsd")
std::string lanefs_path();   // build_path("userspace/cli/lanefs")

// One lanefsd child process. The data directory and the logs live in a
// TempDir owned by this object (removed on destruction, after the child is
// killed). The port is chosen once and kept across restarts.
class BackendProcess {
 public:
  explicit BackendProcess(std::string name = "b1");
  ~BackendProcess();
  BackendProcess(const BackendProcess&) = delete;
  BackendProcess& operator=(const BackendProcess&) = delete;

  // Starts lanefsd and waits (at most `ready_timeout_ns`) until it answers a
  // ClusterClient::connect. Fails with the log tail if the process exits or
  // never answers.
  Status start(uint64_t ready_timeout_ns = 20 * kSecond);
  // More lanefsd arguments, used from the next start()/restart() on.
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }
  // SIGKILL and reap (no-op when not running).
  void kill9();
  // kill9() if running, then start() on the same data directory and port.
  Status restart(uint64_t ready_timeout_ns = 20 * kSecond);
  bool running();

  pid_t pid() const { return child_.pid(); }
  NetAddr addr() const { return NetAddr{0x7f000001u, port_}; }
  std::string addr_string() const { return addr().to_string(); }
  uint16_t port() const { return port_; }
  const std::string& name() const { return name_; }
  const std::string& data_dir() const { return data_dir_; }
  // Last `max_bytes` of the daemon's log and captured stdout/stderr.
  std::string log_tail(size_t max_bytes = 4000) const;

 private:
  std::string name_;
  TempDir dir_;
  std::string data_dir_, log_file_, out_file_;
  std::vector<std::string> extra_args_;
  uint16_t port_ = 0;
  Child child_;
};

// A ClusterClient for `backends` (bounded connect).
Result<std::unique_ptr<client::ClusterClient>> connect_client(const std::vector<NetAddr>& backends,
                                                              uint64_t connect_timeout_ns = 5 * kSecond);

// Runs the lanefs CLI to completion. `env` entries ("K=V") are added to the
// environment (through /usr/bin/env). Output is stdout and stderr together.
struct CliRun {
  int rc = -1;
  std::string out;
  double seconds = 0;
};
CliRun run_cli(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// Non-empty lines of `s`.
std::vector<std::string> lines_of(const std::string& s);

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n);
uint32_t checksum(std::span<const uint8_t> data);  // CRC32C
bool all_zero(std::span<const uint8_t> data);

// A Cred for tests.
inline proto::Cred cred(uint32_t uid, uint32_t gid) { return proto::Cred{uid, gid}; }

}  // namespace lanefs::test
