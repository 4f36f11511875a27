// mount.lanefs: the mount(8) helper for `mount -t lanefs SOURCE DIR -o OPTS`.
//   mount.lanefs SOURCE DIR [-sfnvh] [-o OPTIONS]
// Validates options (exit 32 with one line naming a bad option), starts
// lanefs-frontend if this host has none, and asks it to mount.
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "client/mount_options.h"
#include "common/clock.h"
#include "frontend/frontend.h"

namespace {

constexpr int kMountFailure = 32;  // mount(8): "mount failure"
constexpr int kUsage = 1;

int fail(const std::string& msg, int code = kMountFailure) {
  std::fprintf(stderr, "mount.lanefs: %s\n", msg.c_str());
  return code;
}

int connect_control(const std::string& path) {
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return s;
  close(s);
  return -1;
}

std::string frontend_binary() {
  if (const char* e = std::getenv("LANEFS_FRONTEND"); e && *e) return e;
  char self[PATH_MAX] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    std::string cand = dir + "/lanefs-frontend";
    if (access(cand.c_str(), X_OK) == 0) return cand;
  }
  return "lanefs-frontend";  // from PATH
}

}  // namespace

int main(int argc, char** argv) {
  std::string source, target, options;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-o") {
      if (i + 1 >= argc) return fail("-o needs an argument", kUsage);
      if (!options.empty()) options += ",";
      options += argv[++i];
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2) {
      if (!options.empty()) options += ",";
      options += a.substr(2);
    } else if (a == "-v") {
      verbose = true;
    } else if (a == "-s" || a == "-f" || a == "-n") {
      // sloppy / fake / no-mtab: nothing to do for a FUSE mount
    } else if (a == "-t") {
      ++i;  // type given by some callers; we are lanefs either way
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: mount.lanefs HOST[:PORT][,HOST[:PORT]...]/FSNAME DIR [-o OPTIONS]\n");
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return fail("unknown flag '" + a + "'", kUsage);
    } else if (source.empty()) {
      source = a;
    } else if (target.empty()) {
      target = a;
    } else {
      return fail("unexpected argument '" + a + "'", kUsage);
    }
  }
  if (source.empty() || target.empty())
    return fail("usage: mount.lanefs HOST[:PORT][,...]/FSNAME DIR [-o OPTIONS]", kUsage);
  auto src = lanefs::client::parse_mount_source(source);
  if (!src.ok()) return fail(src.error().to_string());
  auto opts = lanefs::client::parse_mount_options(options);
  if (!opts.ok()) return fail(opts.error().to_string());
  if (geteuid() != 0) return fail("must be run as root");
  if (opts->auth_token_path.empty()) {
    // The token this mount presents: the environment's, else the host's
    // client token (docs/security.md). The frontend reads it.
    const char* env = std::getenv("LANEFS_TOKEN_FILE");
    std::string path = env && *env ? env : "/etc/lanefs/client.token";
    if (path[0] != '/') {
      char cwd[PATH_MAX];
      if (getcwd(cwd, sizeof cwd) != nullptr) path = std::string(cwd) + "/" + path;
    }
    options += std::string(options.empty() ? "" : ",") + "auth_token_path=" + path;
  }

  const char* rd = std::getenv("LANEFS_RUN_DIR");
  std::string run_dir = rd && *rd ? rd : "/run/lanefs";
  std::string sock = lanefs::frontend::control_socket_path(run_dir);
  std::string log_file = run_dir == "/run/lanefs" ? "/var/log/lanefs/frontend.log" : run_dir + "/frontend.log";
  std::string req = nlohmann::json{{"op", "mount"}, {"source", source}, {"target", target},
                                   {"options", options}}.dump() + "\n";
  // A frontend that is exiting after its last unmount answers "retry" (or
  // closes the connection unanswered): wait for it to go and start a new one.
  uint64_t retry_until = lanefs::mono_ns() + 20'000'000'000ull;
  bool retrying = false;
  std::string client;  // what served the mount, from the frontend's answer
  bool attached = false;  // it took over the mount a dead frontend left
  for (int attempt = 0;; ++attempt) {
    if (retrying) {
      if (attempt > 100 || lanefs::mono_ns() > retry_until)
        return fail("lanefs-frontend kept exiting while asked to mount (see " + log_file + ")");
      usleep(200'000);
    }
    int fd = connect_control(sock);
    if (fd < 0) {
      // First lanefs mount on this host: start the client container.
      std::string bin = frontend_binary();
      if (verbose) std::fprintf(stderr, "mount.lanefs: starting %s\n", bin.c_str());
      pid_t pid = fork();
      if (pid == 0) {
        execlp(bin.c_str(), bin.c_str(), "--daemon", "--run-dir", run_dir.c_str(), "--log-file",
               log_file.c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      int st = 0;
      waitpid(pid, &st, 0);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (retrying) continue;  // the exiting frontend may still hold the socket
        return fail("could not start " + bin + " (exit " + std::to_string(WEXITSTATUS(st)) + ")");
      }
      uint64_t deadline = lanefs::mono_ns() + 10'000'000'000ull;
      while ((fd = connect_control(sock)) < 0 && lanefs::mono_ns() < deadline) usleep(50'000);
      if (fd < 0) return fail("lanefs-frontend did not come up (see " + log_file + ")");
    }
    if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
      close(fd);
      retrying = true;
      continue;
    }
    // The frontend answers within its connect timeout plus a margin.
    int wait_ms = static_cast<int>((opts->connect_timeout_secs + 30) * 1000);
    std::string reply;
    char buf[4096];
    while (reply.find('\n') == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, wait_ms) <= 0) {
        close(fd);
        return fail("no answer from lanefs-frontend");
      }
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    if (reply.empty()) {  // closed unanswered: the frontend went away
      retrying = true;
      continue;
    }
    auto j = nlohmann::json::parse(reply, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail("malformed answer from lanefs-frontend");
    if (j.value("retry", false)) {
      retrying = true;
      continue;
    }
    if (!j.value("ok", false))
      return fail(j.value("error", std::string("mount failed")),
                  j.value("code", std::string()) == lanefs::errc_name(lanefs::Errc::kPermission) ? 13 : kMountFailure);
    client = j.value("client", std::string());
    attached = j.value("attached", false);
    break;
  }
  // Which client serves the mount (client=auto picks one): kernel, fuse-uring, fuse.
  if (!client.empty())
    std::printf("mount.lanefs: %s on %s: %s client%s\n", source.c_str(), target.c_str(), client.c_str(),
                attached ? " (re-attached: its frontend had died; open files and working directories carry on)" : "");
  if (verbose) std::fprintf(stderr, "mount.lanefs: %s mounted on %s\n", source.c_str(), target.c_str());
  return 0;
}
