// DirectServer: lanefs-frontend's door for liblanefs-direct
// (include/lanefs/direct.h). It listens on <run dir>/direct.sock (any
// local user: a file is reached only through a descriptor the kernel
// opened for that user), keeps one session per application connection
// (its buffers, files and rings, direct_wire.h), and serves each ring on a
// RingServer thread. When the connection closes (the application exited
// or was killed), the session's rings finish their IOs in flight and stop,
// and its buffers and files are let go: nothing outlives the process.
//
// Threading: one control thread accepts and answers requests (each blocks
// it briefly: mmap, fstat, a ring's start or its drain); clients() may be
// called from any thread. The mount lookup is called on the control thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/mount_fs.h"
#include "common/result.h"
#include "direct/direct_wire.h"
#include "direct/registry.h"
#include "direct/ring_server.h"

namespace lanefs::direct {

struct MountRef {
  std::shared_ptr<client::MountFs> fs;
  std::string target;
  dev_t dev = 0;
};
// The frontend's mounts: by resolved mount point (dev 0), or by device.
using FindMount = std::function<std::optional<MountRef>(const std::string& target, dev_t dev)>;

// One attached application, as `lanefs local ps` shows it.
struct ClientInfo {
  pid_t pid = 0;
  uid_t uid = 0;
  std::string command;
  std::vector<std::string> mounts;  // of its rings
  size_t rings = 0, buffers = 0, files = 0;
  uint64_t buffer_bytes = 0, ios = 0;
};

std::string direct_socket_path(const std::string& run_dir);
// Whether a statfs f_type is a lanefs mount's (FUSE or lanefs.ko).
bool lanefs_fs_type(unsigned long f_type);

class DirectServer {
 public:
  static Result<std::unique_ptr<DirectServer>> start(const std::string& run_dir, FindMount find);
  // Stops accepting, ends every session (rings drain), removes the socket.
  ~DirectServer();
  std::vector<ClientInfo> clients() const;
  // The mount whose client core is `fs` is going away: its rings finish
  // the IOs in flight now, before the channel (and its hook into the
  // kernel's cache) is destroyed, and answer later ones -ENOTCONN. Blocks
  // while they drain.
  void mount_gone(const client::MountFs* fs);

 private:
  struct Session;
  DirectServer() = default;
  void loop();
  void accept_one();
  // false: the session ended (hang-up or a protocol error).
  bool serve_one(Session& s);
  Reply handle(Session& s, const Request& q, std::vector<int>& fds);
  Reply buf_create(Session& s, const Request& q, std::vector<int>& fds);
  Reply buf_import(Session& s, const Request& q, std::vector<int>& fds);
  Reply ring_create(Session& s, const Request& q, std::vector<int>& fds);
  Reply file_register(Session& s, std::vector<int>& fds);
  Reply add_buffer(Session& s, std::shared_ptr<Buffer> b);  // its id, or EMFILE
  // After a buffer or file was removed: every ring of the session dropped
  // its references (bounded wait), so a forgotten file is closed now.
  void let_go(Session& s);

  std::string path_;
  FindMount find_;
  int listen_fd_ = -1, stop_fd_ = -1;
  std::thread thread_;
  mutable std::mutex mu_;  // sessions_ (the list; each session is changed on the control thread only)
  std::vector<std::unique_ptr<Session>> sessions_;
};

}  // namespace lanefs::direct
