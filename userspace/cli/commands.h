// The lanefs CLI's shared pieces: global options, the exit-code mapping,
// connecting to the cluster, and the commands about this host
// (local_cmds.cc); the cluster and filesystem commands and main() are in
// lanefs_main.cc.
#pragma once

#include <memory>
#include <string>

#include "client/cluster_client.h"
#include "common/result.h"

namespace lanefs::cli {

struct Globals {
  std::string backend;
  bool json = false;
  double connect_timeout_s = 5;
  double timeout_s = 30;
  std::string token_file;  // --token-file (user login: where it writes)
};

// The CLI's one exit-code mapping.
int exit_code(Errc c);
// Prints "lanefs: <error>" and returns its exit code.
int fail(const Error& e);
Result<std::unique_ptr<client::ClusterClient>> connect(const Globals& g);

// lanefs stats [--paths]: the local frontend's counters.
int cmd_stats(const Globals& g, bool paths);
// lanefs local resources net ...: this host's NIC labels.
int cmd_resources_net(const Globals& g, const std::string& what, const std::string& dev, const std::string& label);
// lanefs local ps: this host's containers.
int cmd_local_ps(const Globals& g);
// lanefs user add|list|delete|login (user_cmds.cc).
int cmd_user_add(const Globals& g, const std::string& name, const std::string& role, const std::string& fs_list,
                 bool root_squash);
int cmd_user_list(const Globals& g);
int cmd_user_delete(const Globals& g, const std::string& name);
int cmd_user_login(const Globals& g, const std::string& name);
// The built-in admin's token, written after `cluster create` to
// --token-file, /etc/lanefs/admin.token (root) or ~/.config/lanefs/token.
Result<std::string> save_admin_token(const Globals& g, client::ClusterClient& c);
// lanefs fs scrub NAME [--repair] (scrub_cmd.cc): exit 0 when every block
// checks, exit_code(kCorrupt) when any is damaged.
int cmd_fs_scrub(const Globals& g, const std::string& name, bool repair);
// lanefs local setup fuse-uring on|off: the kernel's fuse.enable_uring.
int cmd_setup_fuse_uring(const Globals& g, const std::string& state);

}  // namespace lanefs::cli
