// Soak (label soak): several processes on two mounts (writecache and
// readcache) create, write, overwrite, rename, unlink and verify files,
// and read files they unlinked while open, for LANEFS_SOAK_SECONDS
// (default 60; `make test` runs the default) while the backend is killed
// (-9) and restarted in the middle. Each worker keeps the bytes every
// acknowledged write left (fsync, then close, returned 0) and checks files
// by CRC32C through both mounts. Zero lost acknowledged writes, zero wrong
// bytes, zero failed operations: every operation waits out the restart
// (response_timeout_secs).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/crc32c.h"
#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

double soak_seconds() {
  const char* s = std::getenv("LANEFS_SOAK_SECONDS");
  double v = s ? std::atof(s) : 60;
  return v > 5 ? v : 5;
}

struct Report {
  uint64_t ops = 0, verified = 0, bytes_written = 0;
  std::vector<std::string> problems;  // each one a lost write, a wrong byte or a failed operation
};

// One worker: its own directory, visible through mount `mine` and `other`.
class Worker {
 public:
  Worker(int id, std::string mine, std::string other, uint64_t seed, uint64_t t0)
      : id_(id), mine_(std::move(mine)), other_(std::move(other)), rng_(seed), t0_(t0) {}

  void run(uint64_t deadline_ns) {
    while (mono_ns() < deadline_ns && r_.problems.size() < 20) {
      int pick = static_cast<int>(rng_() % 100);
      if (files_.size() < 3 || pick < 25) create();
      else if (pick < 45) overwrite();
      else if (pick < 55) rename_one();
      else if (pick < 65) unlink_one();
      else if (pick < 72) read_unlinked();
      else verify(any(), rng_() % 2 == 0);
      ++r_.ops;
    }
    // Everything the worker believes in, through both mounts, and the listing.
    for (const auto& [name, bytes] : files_) {
      verify(name, true);
      verify(name, false);
    }
    check_listing();
  }
  const Report& report() const { return r_; }

 private:
  std::string path(const std::string& name, bool through_mine) const {
    return (through_mine ? mine_ : other_) + "/" + name;
  }
  std::string any() {
    auto it = files_.begin();
    std::advance(it, static_cast<long>(rng_() % files_.size()));
    return it->first;
  }
  // A problem names the time (s since the start) and the file's last
  // operations (which mount, which sizes), so one failure is enough to
  // tell what happened.
  void problem(const std::string& what, const std::string& name = "") {
    char at[32];
    std::snprintf(at, sizeof at, "%.1f s: ", double(mono_ns() - t0_) / 1e9);
    std::string p = "worker " + std::to_string(id_) + " at " + at + what;
    auto h = history_.find(name);
    if (h != history_.end()) p += " [history: " + h->second + "]";
    r_.problems.push_back(p);
  }
  // The last operations on a name, oldest first (bounded).
  void note(const std::string& name, const std::string& what) {
    char at[32];
    std::snprintf(at, sizeof at, "%.1f ", double(mono_ns() - t0_) / 1e9);
    std::string& h = history_[name];
    h += std::string(h.empty() ? "" : "; ") + at + what;
    if (h.size() > 600) h.erase(0, h.size() - 600);
  }
  // Which mount, by its name: A (writecache) or B (readcache).
  std::string via(bool through_mine) const {
    const std::string& p = through_mine ? mine_ : other_;
    return p.find("/soakA") != std::string::npos ? "A" : "B";
  }
  bool failed(const std::string& op, const std::string& name) {
    problem(op + " " + name + ": " + errno_str(errno), name);
    files_.erase(name);  // its state is unknown now: no longer checked
    return false;
  }

  // write at offset, fsync and close: acknowledged only when all succeed.
  bool write_ack(const std::string& name, bool create, const std::vector<uint8_t>& data, uint64_t off) {
    int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    const bool through_mine = rng_() % 4 != 0;
    note(name, std::string(create ? "create" : "write") + " via " + via(through_mine) + " at " +
                   std::to_string(off) + " +" + std::to_string(data.size()));
    int fd = open(path(name, through_mine).c_str(), flags, 0644);
    if (fd < 0) return failed(create ? "create" : "open for write", name);
    bool ok = data.empty() || write_full(fd, data.data(), data.size(), off);
    ok = (fsync(fd) == 0) && ok;
    ok = (close(fd) == 0) && ok;
    if (!ok) return failed("write", name);
    r_.bytes_written += data.size();
    return true;
  }

  void create() {
    std::string name = "f" + std::to_string(next_++);
    auto data = pattern(rng_(), 0, rng_() % 300'000);
    if (write_ack(name, true, data, 0)) files_[name] = data;
  }

  void overwrite() {
    std::string name = any();
    auto& cur = files_[name];
    uint64_t off = cur.empty() ? 0 : rng_() % (cur.size() + 1);
    auto data = pattern(rng_(), off, 1 + rng_() % 100'000);
    if (!write_ack(name, false, data, off)) return;
    if (cur.size() < off + data.size()) cur.resize(off + data.size());
    std::copy(data.begin(), data.end(), cur.begin() + static_cast<long>(off));
  }

  void rename_one() {
    std::string from = any(), to = "r" + std::to_string(next_++);
    if (rng_() % 3 == 0 && files_.size() > 1) {
      to = any();  // over another file of ours
      if (to == from) return;
    }
    const bool through_mine = rng_() % 2;  // both names through one mount (across mounts is EXDEV)
    if (::rename(path(from, through_mine).c_str(), path(to, through_mine).c_str()) != 0) {
      failed("rename", from);
      files_.erase(to);
      return;
    }
    files_[to] = std::move(files_[from]);
    files_.erase(from);
    note(to, "renamed from " + from + " via " + via(through_mine) + " (" + history_[from] + ")");
  }

  void unlink_one() {
    std::string name = any();
    if (::unlink(path(name, rng_() % 2).c_str()) != 0) {
      failed("unlink", name);
      return;
    }
    files_.erase(name);
  }

  // Open through one mount, unlink through the other, read all of it.
  void read_unlinked() {
    std::string name = any();
    bool through_mine = rng_() % 2;
    note(name, "open via " + via(through_mine) + ", unlink via " + via(!through_mine));
    int fd = open(path(name, through_mine).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      failed("open", name);
      return;
    }
    auto want = std::move(files_[name]);
    files_.erase(name);
    if (::unlink(path(name, !through_mine).c_str()) != 0)
      problem("unlink of open " + name + ": " + errno_str(errno), name);
    compare(fd, name, " (unlinked, open)", want);
    close(fd);
  }

  void compare(int fd, const std::string& name, const std::string& how, const std::vector<uint8_t>& want) {
    const std::string what = name + how;
    std::vector<uint8_t> got(want.size() + 4096);
    ssize_t n = read_upto(fd, got.data(), got.size(), 0);
    if (n < 0) {
      problem("read " + what + ": " + errno_str(errno), name);
      return;
    }
    got.resize(static_cast<size_t>(n));
    ++r_.verified;
    if (got.size() != want.size()) {
      struct stat st {};
      const long long fsize = fstat(fd, &st) == 0 ? static_cast<long long>(st.st_size) : -1;
      problem(what + ": " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size()) +
                  " (fstat says " + std::to_string(fsize) + ")",
              name);
    } else if (crc32c(got.data(), got.size()) != crc32c(want.data(), want.size())) {
      size_t i = 0;
      while (i < got.size() && got[i] == want[i]) ++i;
      problem(what + ": wrong bytes from offset " + std::to_string(i), name);
    }
  }

  void verify(const std::string& name, bool through_mine) {
    int fd = open(path(name, through_mine).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      failed(std::string("open (via ") + (through_mine ? "own" : "other") + " mount)", name);
      return;
    }
    compare(fd, name, through_mine ? "" : " via the other mount", files_[name]);
    close(fd);
  }

  void check_listing() {
    std::set<std::string> seen;
    if (DIR* d = opendir(mine_.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') seen.insert(e->d_name);
      closedir(d);
    }
    std::set<std::string> want;
    for (const auto& [name, bytes] : files_) want.insert(name);
    if (seen != want)
      problem("listing has " + std::to_string(seen.size()) + " names, want " + std::to_string(want.size()));
  }

  int id_;
  std::string mine_, other_;
  std::mt19937_64 rng_;
  uint64_t t0_;
  std::map<std::string, std::vector<uint8_t>> files_;
  std::map<std::string, std::string> history_;
  uint64_t next_ = 0;
  Report r_;
};

TEST(Soak, TwoMountsWorkersAndABackendRestart) {
  LANEFS_MOUNT_ENV(env);
  auto a = env.mount("writecache", "soakA");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  auto b = env.mount("readcache", "soakB");
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  const double seconds = soak_seconds();
  constexpr int kWorkers = 4;
  const uint64_t seed0 = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  std::printf("[ soak ] %d workers for %.0f s (LANEFS_SOAK_SECONDS), seed %llu\n", kWorkers, seconds,
              static_cast<unsigned long long>(seed0));
  const std::string reports = env.new_dir("soak-reports");
  const uint64_t t0 = mono_ns(), deadline = t0 + static_cast<uint64_t>(seconds * 1e9);

  std::vector<pid_t> kids;
  for (int i = 0; i < kWorkers; ++i) {
    const std::string sub = "/soak" + std::to_string(i);
    ASSERT_EQ(mkdir((*a + sub).c_str(), 0755), 0) << errno_str(errno);
    const bool on_a = i % 2 == 0;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Worker w(i, (on_a ? *a : *b) + sub, (on_a ? *b : *a) + sub, seed0 + static_cast<uint64_t>(i), t0);
      w.run(deadline);
      std::ofstream out(reports + "/" + std::to_string(i));
      out << w.report().ops << " " << w.report().verified << " " << w.report().bytes_written << "\n";
      for (const auto& p : w.report().problems) out << p << "\n";
      out.close();
      _exit(0);
    }
    kids.push_back(pid);
  }

  // The backend dies (kill -9) and comes back in the middle.
  while (mono_ns() < t0 + (deadline - t0) / 2) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_OK(env.backend().restart());
  std::printf("[ soak ] backend restarted after %.1f s\n", double(mono_ns() - t0) / 1e9);

  // Workers finish by the deadline plus their final checks (bounded).
  const uint64_t give_up = deadline + 240ull * 1'000'000'000ull;
  for (pid_t pid : kids) {
    int st = 0;
    pid_t w = 0;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && mono_ns() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (w == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      ADD_FAILURE() << "worker " << pid << " hung; killed\n" << env.diagnostics();
    } else {
      EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "worker " << pid << " crashed";
    }
  }
  uint64_t ops = 0, verified = 0, bytes = 0;
  std::vector<std::string> problems;
  for (int i = 0; i < kWorkers; ++i) {
    std::ifstream in(reports + "/" + std::to_string(i));
    uint64_t o = 0, v = 0, by = 0;
    if (!(in >> o >> v >> by)) {
      problems.push_back("worker " + std::to_string(i) + " left no report");
      continue;
    }
    ops += o, verified += v, bytes += by;
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) problems.push_back(line);
  }
  std::printf("[ soak ] %llu operations, %llu files verified, %.1f MB written, %zu problems\n",
              static_cast<unsigned long long>(ops), static_cast<unsigned long long>(verified), double(bytes) / 1e6,
              problems.size());
  EXPECT_GT(verified, 0u);
  std::string all;
  for (const auto& p : problems) all += "  " + p + "\n";
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems:\n" << all << env.diagnostics();
  EXPECT_OK(env.unmount(*a));
  EXPECT_OK(env.unmount(*b));
}

}  // namespace
}  // namespace lanefs::test
