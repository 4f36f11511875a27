// Faults and the client container's life: a stopped backend (EIO after
// response_timeout_secs, recovery on SIGCONT), a killed frontend (ENOTCONN,
// remount works), mount option errors, process listings, and the frontend
// leaving after the last unmount. Tests run in declaration order and each
// unmounts what it mounted.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "common/proc_info.h"
#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

using nlohmann::json;

// Runs `body` in a child process (IO that may block on the mount) and waits
// at most `seconds`. The child's return value is an errno (0 = success).
struct ChildIo {
  bool finished = false;
  int err = -1;
  double seconds = 0;
};
ChildIo run_io(double seconds, const std::function<int()>& body) {
  ChildIo r;
  uint64_t t0 = mono_ns();
  pid_t pid = fork();
  if (pid == 0) _exit(body() & 0xff);
  int st = 0;
  uint64_t deadline = t0 + static_cast<uint64_t>(seconds * 1e9);
  pid_t w = 0;
  while ((w = waitpid(pid, &st, WNOHANG)) == 0 && mono_ns() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  r.seconds = static_cast<double>(mono_ns() - t0) / 1e9;
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return r;
  }
  r.finished = true;
  r.err = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
  return r;
}

int read_all_errno(const std::string& p, size_t expect_size) {
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  std::vector<uint8_t> buf(expect_size + 1);
  ssize_t n = read_upto(fd, buf.data(), buf.size(), 0);
  int e = n < 0 ? errno : (static_cast<size_t>(n) == expect_size ? 0 : ENODATA);
  close(fd);
  return e;
}

template <class F>
bool within(double seconds, F pred) {
  uint64_t deadline = mono_ns() + static_cast<uint64_t>(seconds * 1e9);
  for (int i = 0; i < 2000; ++i) {
    if (pred()) return true;
    if (mono_ns() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::vector<std::string> nonempty_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    size_t nl = s.find('\n', at);
    if (nl == std::string::npos) nl = s.size();
    if (nl > at) out.push_back(s.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

TEST(Faults, ProcessListingsAndLastUnmountStopsFrontend) {
  LANEFS_MOUNT_ENV(env);
  ASSERT_EQ(env.frontend_pid(), 0) << "no frontend expected before the first mount";
  auto m = env.mount("writecache,remove_after_secs=30");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  pid_t fe = env.frontend_pid();
  ASSERT_GT(fe, 0) << "no live frontend pid in " << env.run_dir();

  CmdResult ps = env.cli({"--json", "local", "ps"});
  ASSERT_EQ(ps.rc, 0) << ps.describe();
  json rows = json::parse(ps.out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << ps.out;
  bool client_seen = false;
  for (const auto& r : rows) {
    if (r.value("type", "") != "client") continue;
    client_seen = true;
    EXPECT_EQ(r.value("state", ""), "running");
    EXPECT_EQ(r.value("pid", 0), fe);
    bool listed = false;
    for (const auto& mt : r["mounts"])
      if (mt.value("target", "") == *m && mt.value("source", "") == env.source()) listed = true;
    EXPECT_TRUE(listed) << "mount not listed: " << r.dump();
  }
  EXPECT_TRUE(client_seen) << ps.out;

  // The frontend heartbeats to the leader; poll the listing (bounded).
  json frontend_row;
  bool found = within(15, [&] {
    CmdResult cp = env.cli({"--json", "cluster", "processes"});
    if (cp.rc != 0) return false;
    json j = json::parse(cp.out, nullptr, false);
    const json* list = j.is_array() ? &j : (j.is_object() && j.contains("processes") ? &j["processes"] : nullptr);
    if (!list) return false;
    for (const auto& p : *list) {
      const json& roles = p.contains("roles") ? p["roles"] : json();
      bool is_fe = roles.is_string() ? roles.get<std::string>() == "FRONTEND"
                                     : roles.is_array() && std::find(roles.begin(), roles.end(), "FRONTEND") != roles.end();
      if (is_fe) {
        frontend_row = p;
        return true;
      }
    }
    return false;
  });
  ASSERT_TRUE(found) << "no FRONTEND row in `lanefs cluster processes --json`: "
                     << env.cli({"--json", "cluster", "processes"}).out;
  EXPECT_EQ(frontend_row.value("network", ""), "UDP") << frontend_row.dump();
  EXPECT_EQ(frontend_row.value("container", ""), host_name()) << frontend_row.dump();
  EXPECT_EQ(frontend_row.value("status", ""), "UP") << frontend_row.dump();

  // `lanefs stats`: this host has no RDMA device, so a large IO goes over
  // UDP and the counters say why.
  {
    std::string path = *m + "/stats_probe";
    std::vector<char> buf(1 << 20, 'x');
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, buf.data(), buf.size()), ssize_t(buf.size()));
    ASSERT_EQ(::fsync(fd), 0);
    ::close(fd);
  }
  CmdResult st = env.cli({"--json", "stats"});
  ASSERT_EQ(st.rc, 0) << st.describe();
  json stats = json::parse(st.out, nullptr, false);
  ASSERT_TRUE(stats.is_array() && stats.size() == 1) << st.out;
  const json& s0 = stats[0];
  EXPECT_EQ(s0.value("target", ""), *m);
  EXPECT_GE(s0["per_lane"]["udp"].value("ios", 0), 1) << s0.dump();
  EXPECT_EQ(s0["per_lane"]["rdma"].value("ios", -1), 0) << s0.dump();
  EXPECT_EQ(s0.value("errors", -1), 0);
  EXPECT_TRUE(s0["not_rdma"].contains("no_local_device") || s0["not_rdma"].contains("not_built") ||
              s0["not_rdma"].contains("backend_no_rdma"))
      << s0.dump();
  EXPECT_EQ(s0.value("rdma_now", "").rfind("no: ", 0), 0u) << s0.dump();
  CmdResult st_table = env.cli({"stats"});
  EXPECT_NE(st_table.out.find("LANE"), std::string::npos) << st_table.out;

  // Last unmount: the frontend goes away and `local ps` says stopped.
  ASSERT_OK(env.unmount(*m));
  EXPECT_TRUE(within(10, [&] { return !process_alive(fe); })) << "frontend " << fe << " still alive after the last unmount";
  ps = env.cli({"--json", "local", "ps"});
  ASSERT_EQ(ps.rc, 0) << ps.describe();
  rows = json::parse(ps.out, nullptr, false);
  ASSERT_TRUE(rows.is_array());
  for (const auto& r : rows) {
    if (r.value("type", "") == "client") {
      EXPECT_EQ(r.value("state", ""), "stopped") << r.dump();
    }
  }
}

TEST(Faults, StoppedBackendGivesEioThenRecovers) {
  LANEFS_MOUNT_ENV(env);
  auto m = env.mount("forcedirect,response_timeout_secs=3");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  std::string f = *m + "/cold";
  auto data = pattern(21, 0, 1'500'000);
  ASSERT_TRUE(spit(f, data));
  pid_t bp = env.backend().pid();
  ASSERT_GT(bp, 0);

  ASSERT_EQ(kill(bp, SIGSTOP), 0);
  ChildIo io = run_io(40, [&] { return read_all_errno(f, data.size()); });
  kill(bp, SIGCONT);
  ASSERT_TRUE(io.finished) << "read on a stopped backend hung for " << io.seconds << " s\n" << env.diagnostics();
  EXPECT_EQ(io.err, EIO) << "got " << errno_str(io.err) << " after " << io.seconds << " s";
  EXPECT_GE(io.seconds, 2.0) << "failed before response_timeout_secs";
  EXPECT_LE(io.seconds, 15.0) << "took far longer than response_timeout_secs=3";

  // The backend answers again: new IO on the same mount works.
  ChildIo again = run_io(60, [&] {
    bool ok = false;
    if (slurp(f, &ok) != data || !ok) return ok ? ENODATA : errno;
    return spit(*m + "/after-stop", pattern(22, 0, 200'000)) ? 0 : errno;
  });
  ASSERT_TRUE(again.finished) << "IO after SIGCONT hung\n" << env.diagnostics();
  EXPECT_EQ(again.err, 0) << errno_str(again.err) << "\n" << env.diagnostics();
  bool ok = false;
  EXPECT_TRUE(slurp(*m + "/after-stop", &ok) == pattern(22, 0, 200'000));
  EXPECT_OK(env.unmount(*m));
}

TEST(Faults, KilledFrontendGivesEnotconnAndRemountWorks) {
  LANEFS_MOUNT_ENV(env);
  auto m = env.mount("writecache");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  auto data = pattern(31, 0, 400'000);
  ASSERT_TRUE(spit(*m + "/kept", data));
  {
    int fd = open((*m + "/kept").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fsync(fd), 0);
    close(fd);
  }
  pid_t fe = env.frontend_pid();
  ASSERT_GT(fe, 0);
  ASSERT_EQ(kill(fe, SIGKILL), 0);
  ASSERT_TRUE(within(10, [&] { return !process_alive(fe); }));

  ChildIo io;
  auto stat_io = [&] {
    return run_io(20, [&] {
      struct stat st {};
      if (stat((*m + "/kept").c_str(), &st) == 0) return 0;
      return errno;
    });
  };
  // The kernel drops the connection once the last frontend thread is gone.
  EXPECT_TRUE(within(10, [&] {
    io = stat_io();
    return !io.finished || io.err != 0;
  }));
  ASSERT_TRUE(io.finished) << "stat on a dead frontend's mount hung";
  // A call the kernel had queued to an io_uring queue whose ring was being
  // torn down (the dead process's rings exit asynchronously) ends with
  // ECONNABORTED; once the connection is gone every call ends with ENOTCONN.
  if (io.err == ECONNABORTED) {
    EXPECT_TRUE(within(10, [&] {
      io = stat_io();
      return io.finished && io.err == ENOTCONN;
    })) << "the mount never settled on ENOTCONN: " << errno_str(io.err);
  }
  EXPECT_EQ(io.err, ENOTCONN) << errno_str(io.err);
  io = stat_io();
  EXPECT_EQ(io.err, ENOTCONN) << errno_str(io.err);
  io = run_io(20, [&] {
    int fd = open((*m + "/newfile").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    return fd < 0 ? errno : 0;
  });
  ASSERT_TRUE(io.finished);
  EXPECT_EQ(io.err, ENOTCONN) << errno_str(io.err);

  ASSERT_OK(env.unmount(*m, /*lazy=*/true));
  EXPECT_FALSE(is_lanefs_mount(*m));
  // Mount again (same directory): a new frontend starts; the data is there.
  CmdResult r = env.mount_helper(env.source(), *m, "writecache");
  ASSERT_EQ(r.rc, 0) << r.describe() << "\n" << env.diagnostics();
  env.track_mount(*m);
  ASSERT_TRUE(is_lanefs_mount(*m));
  pid_t fe2 = env.frontend_pid();
  EXPECT_GT(fe2, 0);
  EXPECT_NE(fe2, fe);
  bool ok = false;
  EXPECT_TRUE(slurp(*m + "/kept", &ok) == data) << errno_str(errno);
  ASSERT_TRUE(spit(*m + "/after-restart", {1, 2, 3}));
  EXPECT_OK(env.unmount(*m));
}

// kill -9 of the frontend, then mount again at the same path without an
// umount first: the dead lanefs mount still attached there is detached and
// the new mount works (it used to fail: "mount point ... is not a
// directory").
TEST(Faults, KilledFrontendThenMountAgainWithoutUmount) {
  LANEFS_MOUNT_ENV(env);
  auto m = env.mount("writecache");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  auto data = pattern(32, 0, 100'000);
  ASSERT_TRUE(spit(*m + "/kept2", data));
  pid_t fe = env.frontend_pid();
  ASSERT_GT(fe, 0);
  ASSERT_EQ(kill(fe, SIGKILL), 0);
  ASSERT_TRUE(within(10, [&] { return !process_alive(fe); }));
  ASSERT_TRUE(is_lanefs_mount(*m)) << "the dead mount should still be attached";
  CmdResult r = env.mount_helper(env.source(), *m, "writecache");
  ASSERT_EQ(r.rc, 0) << r.describe() << "\n" << env.diagnostics();
  env.track_mount(*m);
  ASSERT_TRUE(is_lanefs_mount(*m));
  bool ok = false;
  EXPECT_TRUE(slurp(*m + "/kept2", &ok) == data) << errno_str(errno);
  EXPECT_OK(env.unmount(*m));
}

// The control socket answers every malformed request with an error line;
// none of them takes the frontend (and its mounts) down.
TEST(Faults, MalformedControlRequestsAreAnsweredNotFatal) {
  LANEFS_MOUNT_ENV(env);
  auto m = env.mount("writecache");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  ASSERT_TRUE(spit(*m + "/alive", {7}));
  pid_t fe = env.frontend_pid();
  ASSERT_GT(fe, 0);
  const std::string sock = env.run_dir() + "/frontend.sock";
  auto ask = [&](const std::string& line) -> std::string {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "socket: " + errno_str(errno);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", sock.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return "connect: " + errno_str(errno);
    }
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      close(fd);
      return "write: " + errno_str(errno);
    }
    std::string reply;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<size_t>(n));
    close(fd);
    return reply;
  };
  for (const std::string bad : {"not json\n", "[1,2]\n", "{\"op\":7}\n", "{\"op\":\"nope\"}\n",
                                "{\"op\":\"mount\",\"source\":5,\"target\":\"/x\"}\n",
                                "{\"op\":\"mount\",\"source\":\"a/b\",\"target\":[],\"options\":\"\"}\n",
                                "{\"op\":\"mount\",\"source\":\"a/b\",\"target\":\"/x\",\"options\":{}}\n",
                                "{\"op\":\"mount\"}\n", "\n"}) {
    std::string reply = ask(bad);
    json j = json::parse(reply, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "request " << bad << " got '" << reply << "'";
    EXPECT_FALSE(j.value("ok", true)) << bad << " -> " << reply;
    EXPECT_FALSE(j.value("error", std::string()).empty()) << bad << " -> " << reply;
    ASSERT_TRUE(process_alive(fe)) << "the frontend died of " << bad;
  }
  bool ok = false;
  EXPECT_EQ(slurp(*m + "/alive", &ok), (std::vector<uint8_t>{7})) << "the mount after the bad requests";
  EXPECT_OK(env.unmount(*m));
}

// A first mount that fails stops the frontend it started, as the last
// unmount does (it used to stay up with no mount).
TEST(Faults, FailedFirstMountStopsTheFrontend) {
  LANEFS_MOUNT_ENV(env);
  ASSERT_TRUE(env.wait_frontend_gone(20)) << "a frontend from an earlier test is still running";
  std::string dir = env.new_dir("first-fails");
  std::string src = "127.0.0.1:" + std::to_string(free_udp_port()) + "/" + env.fs_name();
  CmdResult r = env.mount_helper(src, dir, "connect_timeout_secs=1", 40);
  EXPECT_EQ(r.rc, 32) << r.describe();
  EXPECT_FALSE(is_lanefs_mount(dir));
  EXPECT_TRUE(env.wait_frontend_gone(15)) << "the frontend stayed up after its only mount failed\n"
                                          << env.diagnostics();
  // The next mount starts a new one and works.
  auto m = env.mount("writecache");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_OK(env.unmount(*m));
}

// Exit 32 with exactly one stderr line mentioning `needle`; nothing mounted.
void expect_option_error(MountEnv& env, const std::string& opts, const std::string& needle) {
  std::string dir = env.new_dir("bad");
  CmdResult r = env.mount_helper(env.source(), dir, opts, 30);
  EXPECT_EQ(r.rc, 32) << "-o " << opts << ": " << r.describe();
  auto lines = nonempty_lines(r.err);
  EXPECT_EQ(lines.size(), 1u) << "-o " << opts << ": " << r.describe();
  EXPECT_NE(r.err.find(needle), std::string::npos) << "-o " << opts << ": stderr lacks '" << needle << "': " << r.err;
  EXPECT_LT(r.seconds, 10) << "-o " << opts << ": option errors should fail at once";
  EXPECT_FALSE(is_lanefs_mount(dir));
}

TEST(Faults, MountOptionErrors) {
  LANEFS_MOUNT_ENV(env);
  expect_option_error(env, "bogus=1", "bogus");
  expect_option_error(env, "readahead_kb=abc", "readahead_kb");
  expect_option_error(env, "readcache,forcedirect", "forcedirect");
  expect_option_error(env, "net=eth0", "net");
  expect_option_error(env, "writecache,connect_timeout_secs=", "connect_timeout_secs");
  // Generic mount(8) options are accepted (and the mount works).
  auto ok = env.mount("defaults,_netdev,noatime,nofail,x-systemd.automount,rw");
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_OK(env.unmount(*ok));

  // Nothing listens on the port: fails (not hangs) after connect_timeout_secs.
  std::string dir = env.new_dir("nolisten");
  std::string src = "127.0.0.1:" + std::to_string(free_udp_port()) + "/" + env.fs_name();
  CmdResult r = env.mount_helper(src, dir, "connect_timeout_secs=2", 40);
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_LT(r.seconds, 15) << r.describe();
  EXPECT_FALSE(r.err.empty()) << "no message on stderr";
  EXPECT_FALSE(is_lanefs_mount(dir));

  // A filesystem that does not exist.
  dir = env.new_dir("nofs");
  r = env.mount_helper(env.backend().addr_string() + "/no-such-fs", dir, "", 40);
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_NE(r.err.find("no filesystem"), std::string::npos) << r.describe();
  EXPECT_FALSE(is_lanefs_mount(dir));
  // Malformed sources.
  for (const std::string& bad : {std::string("no-slash"), std::string("127.0.0.1:99999/fs"),
                                 env.backend().addr_string() + "/"}) {
    r = env.mount_helper(bad, env.new_dir("badsrc"), "", 30);
    EXPECT_EQ(r.rc, 32) << bad << ": " << r.describe();
  }
}

// Issue 13 item 9: the same source mounted again with other options. At
// another path the options apply to the new mount (ro there, rw here); at
// the same path the same options succeed (mount -a twice) and other options
// fail with exit 32 naming them, leaving the mount as it was.
TEST(Faults, SameSourceAgainWithOtherOptions) {
  LANEFS_MOUNT_ENV(env);
  auto rw = env.mount("writecache", "optrw");
  ASSERT_TRUE(rw.ok()) << rw.error().to_string();
  auto ro = env.mount("ro,forcedirect", "optro");
  ASSERT_TRUE(ro.ok()) << ro.error().to_string();
  EXPECT_TRUE(spit(*rw + "/opts-file", {'r', 'w'})) << errno_str(errno);
  errno = 0;
  EXPECT_FALSE(spit(*ro + "/opts-other", {'r', 'o'}));
  EXPECT_EQ(errno, EROFS) << errno_str(errno);
  bool ok = false;
  EXPECT_EQ(slurp(*ro + "/opts-file", &ok).size(), 2u) << "the ro mount reads";

  CmdResult same = env.mount_helper(env.source(), *rw, "writecache", 30);
  EXPECT_EQ(same.rc, 0) << "the same options again: " << same.describe();
  CmdResult other = env.mount_helper(env.source(), *rw, "ro", 30);
  EXPECT_EQ(other.rc, 32) << other.describe();
  EXPECT_NE(other.err.find("ro (mounted: rw)"), std::string::npos) << other.describe();
  EXPECT_NE(other.err.find("unmount it first"), std::string::npos) << other.describe();
  other = env.mount_helper(env.source(), *rw, "sync_on_close,readahead_kb=128", 30);
  EXPECT_EQ(other.rc, 32) << other.describe();
  EXPECT_NE(other.err.find("sync_on_close (mounted: not set)"), std::string::npos) << other.describe();
  EXPECT_NE(other.err.find("readahead_kb=128 (mounted: readahead_kb="), std::string::npos) << other.describe();
  // Still the read-write mount it was.
  EXPECT_TRUE(spit(*rw + "/opts-file", {'r', 'w', '2'})) << errno_str(errno);
  EXPECT_EQ(unlink((*rw + "/opts-file").c_str()), 0);
  EXPECT_OK(env.unmount(*ro));
  EXPECT_OK(env.unmount(*rw));
}

// Issue 13 item 2, across frontends (two clients, as on two hosts): a file
// unlinked on A while B holds it open stays readable through B's
// descriptor, also across a backend restart (handles are recorded); when
// B's frontend dies, its handles expire with the lease and the file's data
// goes.
TEST(Faults, OpenHandleSurvivesABackendRestartAndExpiresWithItsClient) {
  LANEFS_MOUNT_ENV(env);
  env.backend().set_extra_args({"--handle-lease-secs", "10"});
  ASSERT_OK(env.backend().restart());
  auto a = env.mount("forcedirect", "hA");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  // B: another frontend (its own run directory), as on another host.
  const std::string run_b = env.new_dir("run-b"), dir_b = env.new_dir("hB");
  CmdResult mb = run_bounded({mount_helper_path(), env.source(), dir_b, "-o", "forcedirect"}, 60,
                             {"LANEFS_RUN_DIR=" + run_b});
  ASSERT_EQ(mb.rc, 0) << mb.describe();
  env.track_mount(dir_b);
  auto pid_of = [](const std::string& run) {
    std::ifstream in(run + "/frontend.pid");
    long pid = 0;
    in >> pid;
    return static_cast<pid_t>(pid);
  };
  const pid_t fe_b = pid_of(run_b);
  ASSERT_GT(fe_b, 0);
  ASSERT_NE(fe_b, env.frontend_pid()) << "B must have a frontend of its own";

  auto v = pattern(110, 0, 600'000);
  ASSERT_TRUE(spit(*a + "/held", v));
  int fd = open((dir_b + "/held").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << errno_str(errno);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(st.st_ino));
  const std::string chunks = env.backend().data_dir() + "/chunks/" + hex;
  ASSERT_EQ(access(chunks.c_str(), F_OK), 0) << chunks;

  // The backend restarts, then A unlinks at once (before any renewal of
  // B's could arrive): the recorded handle keeps the file.
  ASSERT_OK(env.backend().restart());
  ASSERT_EQ(unlink((*a + "/held").c_str()), 0) << errno_str(errno);
  std::vector<uint8_t> got(v.size());
  EXPECT_TRUE(read_full(fd, got.data(), got.size(), 0)) << "B's read after restart + unlink: " << errno_str(errno);
  EXPECT_TRUE(got == v) << "B read wrong bytes";
  EXPECT_EQ(access(chunks.c_str(), F_OK), 0) << "data gone while B holds the file";

  // B's host dies: after the lease (10 s) the backend drops its handle and
  // the orphan's data.
  ASSERT_EQ(kill(fe_b, SIGKILL), 0);
  ASSERT_TRUE(within(10, [&] { return !process_alive(fe_b); }));
  close(fd);
  EXPECT_OK(env.unmount(dir_b, /*lazy=*/true));
  EXPECT_EQ(access(chunks.c_str(), F_OK), 0) << "data gone before B's lease ran out";
  EXPECT_TRUE(within(30, [&] { return access(chunks.c_str(), F_OK) != 0; }))
      << "the orphan's data stayed after its only holder's lease ran out\n" << env.backend().log_tail();
  EXPECT_OK(env.unmount(*a));
}

}  // namespace
}  // namespace lanefs::test
