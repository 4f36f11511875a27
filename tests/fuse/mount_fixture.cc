#include "fuse/mount_fixture.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "fuse/fuse_channel.h"

extern char** environ;

namespace lanefs::test {
namespace {

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::string read_file_str(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail(const std::string& s, size_t n) { return s.size() > n ? s.substr(s.size() - n) : s; }

// Mount points (from /proc/self/mountinfo) at or under `base`, deepest first.
std::vector<std::string> mounts_under(const std::string& base) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mp;
    ls >> id >> parent >> dev >> root >> mp;
    if (mp == base || mp.rfind(base + "/", 0) == 0) out.push_back(mp);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

pid_t read_pid_file(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

// The watchdog: reads lines until EOF. "done" means the test tore down by
// itself. On EOF without "done", cleans up what the dead test left.
[[noreturn]] void watchdog_main(int fd, const std::string& base, const std::string& run_dir) {
  std::set<pid_t> pids;
  std::set<std::string> links;
  bool done = false;
  std::string buf;
  char tmp[512];
  for (;;) {
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(tmp, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string l = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (l == "done") done = true;
      else if (l.rfind("pid ", 0) == 0) pids.insert(static_cast<pid_t>(std::atol(l.c_str() + 4)));
      else if (l.rfind("unpid ", 0) == 0) pids.erase(static_cast<pid_t>(std::atol(l.c_str() + 6)));
      else if (l.rfind("link ", 0) == 0) links.insert(l.substr(5));
      else if (l.rfind("unlink ", 0) == 0) links.erase(l.substr(7));
    }
  }
  if (done) _exit(0);
  for (const auto& mp : mounts_under(base)) umount2(mp.c_str(), MNT_DETACH);
  if (pid_t fe = read_pid_file(run_dir + "/frontend.pid"); fe > 0) kill(fe, SIGKILL);
  for (pid_t p : pids) kill(p, SIGKILL);
  for (const auto& l : links) {
    struct stat st {};
    if (lstat(l.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) unlink(l.c_str());
  }
  sleep(1);
  if (mounts_under(base).empty()) {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  }
  _exit(0);
}

}  // namespace

std::string fuse_unavailable_reason() {
  if (geteuid() != 0) return "needs root (running as uid " + std::to_string(geteuid()) + ")";
  // The kernel-client runs (LANEFS_TEST_FUSE_CHANNEL=kernel) need lanefs.ko's device instead.
  const char* dev = test_fuse_channel() == "kernel" ? "/dev/lanefs" : "/dev/fuse";
  int fd = open(dev, O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::string(dev) + " is not usable: " + std::strerror(errno);
  close(fd);
  return {};
}

std::string CmdResult::describe() const {
  std::ostringstream o;
  o << "rc=" << rc << (timed_out ? " (TIMED OUT)" : "") << " after " << seconds << " s; stdout: [" << out
    << "] stderr: [" << err << "]";
  return o.str();
}

CmdResult run_bounded(const std::vector<std::string>& argv, double timeout_s,
                      const std::vector<std::string>& extra_env) {
  CmdResult r;
  char out_t[] = "/tmp/lanefs-fuse-out-XXXXXX";
  char err_t[] = "/tmp/lanefs-fuse-err-XXXXXX";
  int ofd = mkostemp(out_t, O_CLOEXEC);
  int efd = mkostemp(err_t, O_CLOEXEC);
  if (ofd < 0 || efd < 0) {
    r.err = "mkstemp failed";
    return r;
  }
  unlink(out_t);
  unlink(err_t);
  // Everything exec needs is built before fork (the test may have threads).
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool overridden = false;
    for (const auto& x : extra_env)
      if (kv.substr(0, kv.find('=') + 1) == x.substr(0, x.find('=') + 1)) overridden = true;
    if (!overridden) env_s.push_back(kv);
  }
  env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp, args;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_s = argv;
  for (auto& a : argv_s) args.push_back(a.data());
  args.push_back(nullptr);

  uint64_t t0 = mono_ns();
  pid_t pid = fork();
  if (pid < 0) {
    r.err = std::string("fork: ") + std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(ofd, 1);
    dup2(efd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  uint64_t deadline = t0 + static_cast<uint64_t>(timeout_s * 1e9);
  int st = 0;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (mono_ns() > deadline) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    sleep_ms(5);
  }
  r.seconds = static_cast<double>(mono_ns() - t0) / 1e9;
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  for (auto [fd, dst] : {std::pair{ofd, &r.out}, std::pair{efd, &r.err}}) {
    lseek(fd, 0, SEEK_SET);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) dst->append(buf, static_cast<size_t>(n));
    close(fd);
  }
  return r;
}

std::string mount_helper_path() { return build_path("userspace/frontend/mount.lanefs"); }
std::string frontend_path() { return build_path("userspace/frontend/lanefs-frontend"); }

bool is_lanefs_mount(const std::string& path) {
  char real[PATH_MAX];
  std::string want = realpath(path.c_str(), real) ? real : path;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mp;
    ls >> id >> parent >> dev >> root >> mp;
    if (mp != want) continue;
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream rest(line.substr(sep + 3));
    std::string fstype;
    rest >> fstype;
    found = fstype == "fuse.lanefs" || fstype == "lanefs";  // the last entry for a path is the visible one
  }
  return found;
}

bool process_alive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  // A killed process whose leader is a zombie may still have threads
  // exiting (holding /dev/fuse): alive until every thread is gone.
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::string stat = read_file_str(t.path().string() + "/stat");
    auto rp = stat.rfind(')');
    if (rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] != 'Z' && stat[rp + 2] != 'X') return true;
  }
  return false;
}

MountEnv::MountEnv() {
  const char* t = std::getenv("TMPDIR");
  std::string tmpl = std::string(t && *t ? t : "/tmp") + "/lanefs-fuse-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) std::abort();
  char real[PATH_MAX];
  base_ = realpath(tmpl.c_str(), real) ? real : tmpl;
  // Mount points must be reachable by the unprivileged users of permission tests.
  chmod(base_.c_str(), 0755);
  run_dir_ = base_ + "/run";
  mkdir(run_dir_.c_str(), 0755);
}

MountEnv::~MountEnv() { teardown(); }

void MountEnv::tell_watchdog(const std::string& line) {
  if (watchdog_fd_ < 0) return;
  std::string l = line + "\n";
  if (write(watchdog_fd_, l.data(), l.size()) < 0) { /* watchdog gone: nothing to do */ }
}

Status MountEnv::start(const std::string& fs_name) {
  fs_name_ = fs_name;
  // Children (mount.lanefs, lanefs, the frontend) inherit these.
  setenv("LANEFS_RUN_DIR", run_dir_.c_str(), 1);
  setenv("LANEFS_FRONTEND", frontend_path().c_str(), 1);
  for (const auto& bin : {mount_helper_path(), frontend_path(), lanefs_path(), lanefsd_path()})
    if (access(bin.c_str(), X_OK) != 0) return make_error(Errc::kNotFound, "binary not built: " + bin);

  // Watchdog: double fork so it is re-parented away from the test process.
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return sys_error("pipe2", errno);
  pid_t mid = fork();
  if (mid < 0) return sys_error("fork", errno);
  if (mid == 0) {
    setsid();
    if (fork() == 0) {
      close(p[1]);
      signal(SIGINT, SIG_IGN);
      signal(SIGTERM, SIG_IGN);
      signal(SIGHUP, SIG_IGN);
      watchdog_main(p[0], base_, run_dir_);
    }
    _exit(0);
  }
  waitpid(mid, nullptr, 0);
  close(p[0]);
  watchdog_fd_ = p[1];

  backend_ = std::make_unique<BackendProcess>("b1");
  Status st = backend_->start();
  if (backend_->pid() > 0) tell_watchdog("pid " + std::to_string(backend_->pid()));
  if (!st.ok()) return st;
  auto r = cli({"fs", "create", fs_name_});
  if (r.rc != 0) return make_error(Errc::kInternal, "lanefs fs create " + fs_name_ + ": " + r.describe());
  return ok_status();
}

std::string MountEnv::source() const { return backend_->addr_string() + "/" + fs_name_; }

std::string MountEnv::new_dir(const std::string& hint) {
  std::string d = base_ + "/" + hint + "-" + std::to_string(++dir_seq_);
  mkdir(d.c_str(), 0755);
  return d;
}

CmdResult MountEnv::mount_helper(const std::string& source, const std::string& dir, const std::string& opts,
                                 double timeout_s) {
  std::vector<std::string> argv = {mount_helper_path(), source, dir};
  // Every mount of the run on its FUSE channel (fuse_channel.h).
  if (Status st = prepare_test_channel(); !st.ok()) ADD_FAILURE() << st.error().to_string();
  if (const std::string o = with_test_channel(opts); !o.empty()) {
    argv.push_back("-o");
    argv.push_back(o);
  }
  return run_bounded(argv, timeout_s);
}

Result<std::string> MountEnv::mount(const std::string& opts0, const std::string& hint) {
  std::string dir = new_dir(hint);
  LANEFS_TRY(prepare_test_channel());
  const std::string opts = with_test_channel(opts0);  // as mount_helper() adds it (for messages)
  CmdResult r = mount_helper(source(), dir, opts);
  if (r.rc != 0 || r.timed_out)
    return make_error(Errc::kInternal, "mount.lanefs " + source() + " " + dir + " -o " + opts + ": " +
                                           r.describe() + "\n" + diagnostics());
  track_mount(dir);
  if (!is_lanefs_mount(dir))
    return make_error(Errc::kInternal, "mount.lanefs succeeded but " + dir + " is no lanefs mount\n" +
                                           diagnostics());
  return dir;
}

void MountEnv::track_mount(const std::string& dir) {
  if (std::find(mounts_.begin(), mounts_.end(), dir) == mounts_.end()) mounts_.push_back(dir);
}

Status MountEnv::unmount(const std::string& dir, bool lazy) {
  // The run's FUSE channel served this mount (fuse_channel.h).
  if (std::string bad = check_test_channel(run_dir_, dir); !bad.empty()) ADD_FAILURE() << bad;
  std::vector<std::string> argv = {"umount"};
  if (lazy) argv.push_back("-l");
  argv.push_back(dir);
  CmdResult r = run_bounded(argv, 30);
  // Lazy unmounts of a dead frontend's mount may need the syscall directly.
  if ((r.rc != 0 || is_lanefs_mount(dir)) && lazy) umount2(dir.c_str(), MNT_DETACH);
  if (is_lanefs_mount(dir)) return make_error(Errc::kBusy, "umount " + dir + ": " + r.describe());
  mounts_.erase(std::remove(mounts_.begin(), mounts_.end(), dir), mounts_.end());
  return ok_status();
}

pid_t MountEnv::frontend_pid() const {
  pid_t pid = read_pid_file(run_dir_ + "/frontend.pid");
  return process_alive(pid) ? pid : 0;
}

bool MountEnv::wait_frontend_gone(double timeout_s) const {
  uint64_t deadline = mono_ns() + static_cast<uint64_t>(timeout_s * 1e9);
  for (int i = 0; i < 100000; ++i) {
    if (frontend_pid() == 0) return true;
    if (mono_ns() > deadline) return false;
    sleep_ms(50);
  }
  return false;
}

CmdResult MountEnv::cli(const std::vector<std::string>& args, double timeout_s) {
  std::vector<std::string> argv = {lanefs_path(), "--backend", backend_->addr_string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_bounded(argv, timeout_s);
}

std::string MountEnv::diagnostics(size_t max_bytes) const {
  std::string s = "--- frontend log (" + run_dir_ + "/frontend.log) ---\n" +
                  tail(read_file_str(run_dir_ + "/frontend.log"), max_bytes);
  if (backend_) s += "\n--- backend ---\n" + backend_->log_tail(max_bytes);
  return s;
}

void MountEnv::watch_link(const std::string& path) { tell_watchdog("link " + path); }
void MountEnv::forget_link(const std::string& path) { tell_watchdog("unlink " + path); }

void MountEnv::teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  // A stopped backend would make unmounting wait on its timeouts.
  if (backend_ && backend_->pid() > 0) kill(backend_->pid(), SIGCONT);
  for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) {
    if (!is_lanefs_mount(*it)) continue;
    if (std::string bad = check_test_channel(run_dir_, *it); !bad.empty()) ADD_FAILURE() << bad;
    CmdResult r = run_bounded({"umount", "-l", *it}, 20);
    if (r.rc != 0 && is_lanefs_mount(*it)) umount2(it->c_str(), MNT_DETACH);
  }
  mounts_.clear();
  for (const auto& mp : mounts_under(base_)) umount2(mp.c_str(), MNT_DETACH);
  // The frontend exits after its last unmount; make sure of it.
  if (!wait_frontend_gone(10)) {
    if (pid_t fe = frontend_pid(); fe > 0) kill(fe, SIGTERM);
    if (!wait_frontend_gone(5))
      if (pid_t fe = frontend_pid(); fe > 0) kill(fe, SIGKILL);
    wait_frontend_gone(5);
  }
  if (backend_) {
    pid_t bp = backend_->pid();
    backend_->kill9();
    if (bp > 0) tell_watchdog("unpid " + std::to_string(bp));
    backend_.reset();
  }
  if (mounts_under(base_).empty()) {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
  tell_watchdog("done");
  if (watchdog_fd_ >= 0) close(watchdog_fd_);
  watchdog_fd_ = -1;
}

namespace {

std::unique_ptr<MountEnv>& env_slot() {
  static std::unique_ptr<MountEnv> e;
  return e;
}
Status& env_status() {
  static Status s = make_error(Errc::kInternal, "not started");
  return s;
}

class TeardownEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (env_slot()) env_slot()->teardown();
  }
};

[[maybe_unused]] ::testing::Environment* const kTeardown =
    ::testing::AddGlobalTestEnvironment(new TeardownEnvironment);

}  // namespace

MountEnv& shared_mount_env() {
  if (!env_slot()) {
    env_slot() = std::make_unique<MountEnv>();
    env_status() = env_slot()->start();
  }
  return *env_slot();
}

const Status& shared_mount_env_status() { return env_status(); }

Result<std::string> shared_mount(const std::string& opts) {
  static std::map<std::string, std::string> mounts;
  MountEnv& env = shared_mount_env();
  if (!env_status().ok()) return env_status().error();
  auto it = mounts.find(opts);
  if (it != mounts.end() && is_lanefs_mount(it->second)) return it->second;
  std::string hint = opts.empty() ? "default" : opts.substr(0, opts.find(','));
  LANEFS_ASSIGN_OR_RETURN(std::string dir, env.mount(opts, hint));
  mounts[opts] = dir;
  return dir;
}

std::vector<uint8_t> pattern(uint64_t seed, uint64_t offset, size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n;) {
    uint64_t p = offset + i;
    uint64_t z = (seed * 0x9E3779B97F4A7C15ull) ^ (p >> 3);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (uint64_t b = p & 7; b < 8 && i < n; ++b, ++i) v[i] = static_cast<uint8_t>(z >> (8 * b));
  }
  return v;
}

bool write_full(int fd, const void* data, size_t n, uint64_t offset) {
  const char* p = static_cast<const char*>(data);
  for (size_t done = 0; done < n;) {
    ssize_t w = pwrite(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  return true;
}

ssize_t read_upto(int fd, void* data, size_t n, uint64_t offset) {
  char* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

bool read_full(int fd, void* data, size_t n, uint64_t offset) {
  ssize_t r = read_upto(fd, data, n, offset);
  if (r >= 0 && static_cast<size_t>(r) != n) errno = ENODATA;
  return r >= 0 && static_cast<size_t>(r) == n;
}

std::vector<uint8_t> slurp(const std::string& path, bool* ok) {
  std::vector<uint8_t> out;
  if (ok) *ok = false;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return out;
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  close(fd);
  if (ok) *ok = true;
  return out;
}

bool spit(const std::string& path, const std::vector<uint8_t>& data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  bool ok = write_full(fd, data.data(), data.size(), 0);
  int e = errno;
  if (close(fd) != 0) ok = false;
  else errno = e;
  return ok;
}

std::string errno_str(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name ? name : "E?") + " (" + std::strerror(err) + ")";
}

}  // namespace lanefs::test
