// Fixture for tests that need real lanefs FUSE mounts.
//
// One MountEnv per test binary (shared_mount_env()): a private
// LANEFS_RUN_DIR (so the binary gets its own lanefs-frontend and never
// touches /run/lanefs), one lanefsd on a free UDP port with a temporary data
// directory, one filesystem, and any number of mounts in temporary
// directories made with mount.lanefs. Teardown (global gtest environment)
// always lazily unmounts every mount, stops the frontend and the backend.
// A watchdog process (re-parented away from the test, so ctest's timeout
// kill does not take it along) does the same if the test process dies
// without tearing down (crash, SIGKILL).
//
// Every wait is bounded. Not thread-safe: one test thread drives it (tests
// may fork children that do IO through the mounts).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "integration/backend_fixture.h"
#include "support/test_support.h"

namespace lanefs::test {

// Empty when FUSE mount tests can run here (root and /dev/fuse usable),
// otherwise the reason to skip.
std::string fuse_unavailable_reason();

// Skips the current test with a clear reason when FUSE tests cannot run.
#define LANEFS_REQUIRE_FUSE()                                                       \
  do {                                                                             \
    std::string lanefs_why_ = ::lanefs::test::fuse_unavailable_reason();            \
    if (!lanefs_why_.empty()) GTEST_SKIP() << "FUSE tests skipped: " << lanefs_why_; \
  } while (0)

// Result of a command run with a deadline. stdout and stderr are captured
// separately. rc is the exit status, 128+signal when killed, -1 if it could
// not run; timed_out is set when it had to be killed at the deadline.
struct CmdResult {
  int rc = -1;
  std::string out, err;
  double seconds = 0;
  bool timed_out = false;
  std::string describe() const;  // "rc=.. (Ns) stdout=.. stderr=.."
};
CmdResult run_bounded(const std::vector<std::string>& argv, double timeout_s,
                      const std::vector<std::string>& extra_env = {});

// Paths of the built binaries.
std::string mount_helper_path();    // userspace/frontend/mount.lanefs
std::string frontend_path();        // userspace/frontend/lanefs-frontend

// Cache modes by mount option name, for parameterized tests.
inline const std::vector<std::string>& all_cache_modes() {
  static const std::vector<std::string> k = {"writecache", "readcache", "forcedirect"};
  return k;
}

// true if `path` is currently a mount point of type fuse.lanefs.
bool is_lanefs_mount(const std::string& path);

// true if process `pid` exists and is not a zombie.
bool process_alive(pid_t pid);

class MountEnv {
 public:
  MountEnv();
  ~MountEnv();  // teardown()
  MountEnv(const MountEnv&) = delete;
  MountEnv& operator=(const MountEnv&) = delete;

  // Sets LANEFS_RUN_DIR/LANEFS_FRONTEND in this process's environment,
  // starts the watchdog, the backend, and creates filesystem `fs_name`.
  Status start(const std::string& fs_name = "fs1");
  // Unmounts everything (umount -l), stops the frontend (SIGTERM, then
  // SIGKILL after a bounded wait) and the backend. Idempotent.
  void teardown();

  const std::string& base_dir() const { return base_; }
  const std::string& run_dir() const { return run_dir_; }
  const std::string& fs_name() const { return fs_name_; }
  BackendProcess& backend() { return *backend_; }
  std::string source() const;  // 127.0.0.1:PORT/fs_name

  // A new empty directory under the base directory.
  std::string new_dir(const std::string& hint);

  // mount.lanefs SOURCE DIR -o OPTS (no -o when opts is empty), bounded.
  CmdResult mount_helper(const std::string& source, const std::string& dir, const std::string& opts,
                         double timeout_s = 60);
  // Mounts source() on a new directory with `opts` and checks that it is a
  // fuse.lanefs mount; returns the mount point (remembered for teardown).
  Result<std::string> mount(const std::string& opts, const std::string& hint = "mnt");
  // umount (lazy with -l); the mount point is forgotten when it is gone.
  Status unmount(const std::string& dir, bool lazy = false);
  // Remember a mount point made some other way (e.g. mount(8)) for teardown.
  void track_mount(const std::string& dir);

  // Pid of the live frontend per the pid file in the run dir, 0 if none.
  pid_t frontend_pid() const;
  // Waits (bounded) until no frontend process serves the run dir.
  bool wait_frontend_gone(double timeout_s) const;

  // Runs the lanefs CLI against this backend (bounded).
  CmdResult cli(const std::vector<std::string>& args, double timeout_s = 30);

  // The last bytes of the frontend and backend logs, for failure messages.
  std::string diagnostics(size_t max_bytes = 3000) const;

  // Asks the watchdog to remove `path` (a symlink the test created) if the
  // test process dies before removing it itself; forget_link() cancels.
  void watch_link(const std::string& path);
  void forget_link(const std::string& path);

 private:
  void tell_watchdog(const std::string& line);

  std::string base_, run_dir_, fs_name_;
  std::unique_ptr<BackendProcess> backend_;
  std::vector<std::string> mounts_;
  int watchdog_fd_ = -1;
  pid_t watchdog_pid_ = -1;
  int dir_seq_ = 0;
  bool torn_down_ = false;
};

// ---- IO helpers for tests

// Deterministic bytes that depend on (seed, absolute file position), so any
// range of a file can be checked without keeping a copy.
std::vector<uint8_t> pattern(uint64_t seed, uint64_t offset, size_t n);
// pwrite/pread until done; false (errno set) on error or short read at EOF
// for read_full. read_upto returns the bytes read (< n only at EOF), -1 on error.
bool write_full(int fd, const void* data, size_t n, uint64_t offset);
bool read_full(int fd, void* data, size_t n, uint64_t offset);
ssize_t read_upto(int fd, void* data, size_t n, uint64_t offset);
// Whole file contents by path (empty + *ok=false on error).
std::vector<uint8_t> slurp(const std::string& path, bool* ok = nullptr);
// Writes `data` to `path` (O_CREAT|O_TRUNC), closing it; false on error.
bool spit(const std::string& path, const std::vector<uint8_t>& data, mode_t mode = 0644);
// "ENOENT (No such file or directory)"
std::string errno_str(int err);

// The binary's shared environment: started on first call (the result of the
// start is remembered, so a failed start fails every test with its reason),
// torn down by a global gtest environment after the last test.
MountEnv& shared_mount_env();
const Status& shared_mount_env_status();
// A mount of the shared env with exactly `opts`, made on first request and
// kept until teardown.
Result<std::string> shared_mount(const std::string& opts);

// In a test body: skip without FUSE, then get the started shared env or
// fail the test with why it could not start.
#define LANEFS_MOUNT_ENV(var)                                                        \
  LANEFS_REQUIRE_FUSE();                                                             \
  ::lanefs::test::MountEnv& var = ::lanefs::test::shared_mount_env();                \
  (void)var;                                                                         \
  ASSERT_TRUE(::lanefs::test::shared_mount_env_status().ok())                        \
      << "mount environment: " << ::lanefs::test::shared_mount_env_status().error().to_string()

}  // namespace lanefs::test
