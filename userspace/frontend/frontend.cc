// Frontend lifecycle (frontend.h): the control socket and its requests,
// reaping finished mounts, and the run loop that decides when to exit.
#include "frontend/frontend.h"

#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/clock.h"
#include "common/log.h"

namespace lanefs::frontend {

using nlohmann::json;

std::string control_socket_path(const std::string& run_dir) { return run_dir + "/frontend.sock"; }
std::string pid_file_path(const std::string& run_dir) { return run_dir + "/frontend.pid"; }

Frontend::Frontend(FrontendOptions opts) : opts_(std::move(opts)) {
  while (uuid_ == 0) getrandom(&uuid_, sizeof uuid_, 0);
  start_ns_ = mono_ns();
}

Frontend::~Frontend() {
  stop_.store(true);
  if (control_.joinable()) control_.join();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

Status Frontend::start() {
  if (mkdir(opts_.run_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return sys_error("mkdir " + opts_.run_dir, errno);
  std::string path = control_socket_path(opts_.run_dir);
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return sys_error("socket", errno);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return make_error(Errc::kInvalid, "run directory path too long");
  std::strcpy(a.sun_path, path.c_str());
  // A socket file whose owner died is stale; a live one means another frontend.
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    close(probe);
    return make_error(Errc::kBusy, "another lanefs-frontend serves " + path);
  }
  close(probe);
  unlink(path.c_str());
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return sys_error("bind " + path, errno);
  chmod(path.c_str(), 0600);
  if (listen(listen_fd_, 16) != 0) return sys_error("listen", errno);
  std::ofstream(pid_file_path(opts_.run_dir), std::ios::trunc) << getpid() << "\n";
  auto d = direct::DirectServer::start(opts_.run_dir, [this](const std::string& t, dev_t dev) {
    return find_mount(t, dev);
  });
  if (!d.ok()) return d.error();
  direct_ = std::move(*d);
  control_ = std::thread([this] { control_loop(); });
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
  LOG_INFO("lanefs-frontend (pid {}) serving {}", getpid(), path);
  return ok_status();
}

void Frontend::request_stop() { stop_.store(true); }

void Frontend::control_loop() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    // One request line per connection, bounded in size and time.
    timeval tv{30, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char buf[4096];
    while (line.find('\n') == std::string::npos && line.size() < 65536) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    std::string reply = handle_line(line.substr(0, line.find('\n'))) + "\n";
    size_t off = 0;
    while (off < reply.size()) {
      ssize_t n = write(c, reply.data() + off, reply.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(c);
  }
}

std::string Frontend::handle_line(const std::string& line) {
  json req = json::parse(line, nullptr, false);
  if (req.is_discarded() || !req.is_object() || !req.contains("op") || !req["op"].is_string())
    return json{{"ok", false}, {"error", "malformed control request"}}.dump();
  std::string op = req["op"];
  if (op == "ps") return do_ps();
  if (op == "mount") {
    // json's value() throws on a wrong type: a bad request is answered, never an abort.
    for (const char* key : {"source", "target", "options"})
      if (req.contains(key) && !req[key].is_string())
        return json{{"ok", false}, {"error", std::string("malformed control request: '") + key + "' must be a string"}}
            .dump();
    {
      std::lock_guard lk(mu_);
      if (exiting_) return json{{"ok", false}, {"error", "lanefs-frontend is exiting"}, {"retry", true}}.dump();
      ++pending_mounts_;  // run() must not exit while this mount is being made
    }
    auto r = do_mount(req.value("source", ""), req.value("target", ""), req.value("options", ""));
    {
      std::lock_guard lk(mu_);
      --pending_mounts_;
    }
    if (!r.ok()) {
      LOG_WARN("mount {} on {} failed: {}", req.value("source", ""), req.value("target", ""), r.error().to_string());
      {
        std::lock_guard lk(mu_);
        if (!ever_mounted_ && mounts_.empty()) first_failed_ = true;
      }
      return json{{"ok", false}, {"error", r.error().to_string()}, {"code", std::string(errc_name(r.code()))}}.dump();
    }
    std::string client;
    bool attached = false;
    {
      std::lock_guard lk(mu_);
      for (const auto& m : mounts_)
        if (m->target == *r && !m->finished.load()) {
          client = m->channel->info().client;
          attached = m->attached;
        }
    }
    return json{{"ok", true}, {"target", *r}, {"client", client}, {"attached", attached}}.dump();
  }
  return json{{"ok", false}, {"error", "unknown control op '" + op + "'"}}.dump();
}

std::optional<direct::MountRef> Frontend::find_mount(const std::string& target, dev_t dev) {
  struct Candidate {
    Mount* m;
    direct::MountRef ref;
  };
  std::vector<Candidate> live;
  {
    std::lock_guard lk(mu_);
    for (auto& m : mounts_)
      if (!m->finished.load()) live.push_back({m.get(), {m->fs, m->target, m->dev}});
  }
  for (auto& c : live) {
    if (c.ref.dev == 0) {
      // Outside mu_: stat of the mount's root is a request to this frontend.
      // Only a lanefs mount there (not what a lazy unmount left visible).
      struct stat st {};
      struct statfs sf {};
      if (::statfs(c.ref.target.c_str(), &sf) != 0 || !direct::lanefs_fs_type(static_cast<unsigned long>(sf.f_type)) ||
          ::stat(c.ref.target.c_str(), &st) != 0)
        continue;
      c.ref.dev = st.st_dev;
      std::lock_guard lk(mu_);
      for (auto& m : mounts_)
        if (m.get() == c.m) m->dev = st.st_dev;
    }
    if (dev != 0 ? c.ref.dev == dev : c.ref.target == target) return c.ref;
  }
  return std::nullopt;
}

void Frontend::reap_finished() {
  std::vector<std::unique_ptr<Mount>> done;
  {
    std::lock_guard lk(mu_);
    for (auto it = mounts_.begin(); it != mounts_.end();) {
      if ((*it)->finished.load()) {
        done.push_back(std::move(*it));
        it = mounts_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& m : done) {
    if (direct_) direct_->mount_gone(m->fs.get());  // its rings stop before the channel goes
    m->loop.join();
    m->channel->unmount();
    LOG_INFO("unmounted {} from {}", m->source, m->target);
  }
}

int Frontend::run() {
  while (!stop_.load()) {
    usleep(100'000);
    reap_finished();
    std::lock_guard lk(mu_);
    if (pending_mounts_ > 0) continue;
    if (((ever_mounted_ || first_failed_) && mounts_.empty()) ||
        (!ever_mounted_ && mono_ns() - start_ns_ > opts_.idle_exit_ns)) {
      if (!ever_mounted_ && first_failed_) LOG_INFO("the mount that started this frontend failed; exiting");
      exiting_ = true;  // from now on mount requests are told to retry
      break;
    }
  }
  {
    std::lock_guard lk(mu_);
    exiting_ = true;
  }
  if (stop_.load()) {
    // Asked to stop: detach every mount (applications then see ENOTCONN
    // once the kernel drops the connection).
    std::vector<Mount*> live;
    {
      std::lock_guard lk(mu_);
      for (auto& m : mounts_) live.push_back(m.get());
    }
    for (auto* m : live) m->channel->unmount();
    for (int i = 0; i < 50; ++i) {
      reap_finished();
      std::lock_guard lk(mu_);
      if (mounts_.empty()) break;
      usleep(100'000);
    }
  }
  // Stop serving the control socket before leaving the cluster, so a mount
  // started now finds no frontend (or a new one) instead of this exiting
  // one, and no heartbeat re-registers us after the leave.
  stop_.store(true);
  hb_cv_.notify_all();
  if (control_.joinable()) control_.join();
  if (heartbeat_.joinable()) heartbeat_.join();
  direct_.reset();  // direct-API sessions end: their rings drain
  unlink(control_socket_path(opts_.run_dir).c_str());
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
  leave_all();
  unlink(pid_file_path(opts_.run_dir).c_str());
  LOG_INFO("lanefs-frontend exiting");
  return 0;
}

}  // namespace lanefs::frontend
