// lanefs-frontend: the client container, one per host, serving every lanefs
// mount there. mount.lanefs asks it (over a unix socket in the run
// directory) to mount; it connects to the cluster, opens the filesystem
// (client::MountFs) and has a kernel channel serve it (client::MountChannel:
// FUSE, fuse/mount.h). It registers with each cluster's leader (a FRONTEND
// process in `lanefs cluster processes`) and heartbeats; when the last
// mount goes away it leaves and exits. It knows nothing of FUSE beyond
// fuse/mount.h: a channel is just a channel.
//
// Files: frontend.cc (lifecycle, control socket), frontend_mount.cc
// (making a mount), frontend_checks.cc (checks at mount time),
// frontend_cluster.cc (heartbeats, handle renewals, leaving),
// frontend_stats.cc (ps/stats JSON).
//
// Control protocol: one JSON object per line, one reply line per request:
//   {"op":"mount","source":S,"target":T,"options":O}
//       -> {"ok":true,"target":..,"client":..,"attached":bool} | {"ok":false,"error":E}
//   {"op":"ps"} -> {"ok":true,"pid":..,"uptime_s":..,"mounts":[...]}
// Threading: the control thread, one heartbeat thread, and per mount a
// thread waiting for its channel to end (the channel runs its own
// threads); the direct API's control thread and one thread per ring
// (direct/direct_server.h). State is under mu_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/cluster_client.h"
#include "client/local_resources.h"
#include "client/mount_channel.h"
#include "client/mount_fs.h"
#include "client/mount_options.h"
#include "common/result.h"
#include "direct/direct_server.h"

namespace lanefs::frontend {

struct FrontendOptions {
  std::string run_dir = "/run/lanefs";  // control socket and pid file
  uint64_t idle_exit_ns = 60'000'000'000ull;  // exit if no mount arrives this long after start
};

// Paths inside a run directory.
std::string control_socket_path(const std::string& run_dir);
std::string pid_file_path(const std::string& run_dir);

// "ro (mounted: rw), forcedirect (mounted: writecache)": where the options
// asked for differ from those of the mount there (frontend_checks.cc).
std::string options_differ(const client::MountOptions& had, const client::MountOptions& want);

class Frontend {
 public:
  explicit Frontend(FrontendOptions opts);
  ~Frontend();
  // Binds the control socket; kBusy if another frontend is serving it.
  Status start();
  // Serves until the last mount is gone (or none ever came). Returns the
  // process exit status.
  int run();
  void request_stop();

 private:
  struct Mount {
    std::string source, target;
    client::MountOptions opts;
    // Shared with the heartbeat thread while it renews the mount's open
    // handles (which never calls into the channel's kernel cache).
    std::shared_ptr<client::MountFs> fs;
    std::unique_ptr<client::MountChannel> channel;  // declared after fs: destroyed before it
    std::thread loop;
    std::atomic<bool> finished{false};
    uint64_t mounted_ns = 0;
    bool attached = false;  // took over the mount a dead frontend left
    dev_t dev = 0;          // the mount's device (0: not looked up yet), for the direct API
  };
  struct Cluster {
    std::shared_ptr<client::ClusterClient> client;
    uint64_t last_contact_ns = 0;
    bool registered = false;
  };

  std::string handle_line(const std::string& line);
  Result<std::string> do_mount(const std::string& source, const std::string& target, const std::string& options);
  // What answers ENOTCONN at a mount point: the mount on top there, from
  // /proc/self/mountinfo (frontend_checks.cc).
  struct DeadMount {
    std::string path;    // absolute
    std::string fstype;  // "lanefs" (lanefs.ko), "fuse.lanefs", or another's
    std::string source;
    bool read_only = false;
  };
  // `target` answers ENOTCONN: what is mounted there; an error that says
  // what to run when it is not a lanefs mount.
  static Result<DeadMount> dead_mount(const std::string& target);
  // Whether a new frontend can take over `d` for this mount request
  // (lanefs.ko, same source, same ro/rw, client= not fuse); `why` when not.
  static bool attachable(const DeadMount& d, const std::string& source, const client::MountOptions& o,
                         std::string* why);
  static Status detach_dead_mount(const DeadMount& d);
  std::string do_ps();
  // The direct API's view of the mounts (direct::FindMount).
  std::optional<direct::MountRef> find_mount(const std::string& target, dev_t dev);
  Result<std::shared_ptr<client::ClusterClient>> cluster_for(const client::MountSource& src,
                                                             const client::MountOptions& o);
  void control_loop();
  void heartbeat_loop();
  void beat_clusters();  // one heartbeat to each cluster with mounts
  void reap_finished();
  void leave_all();
  proto::ClientInfo self_info(uint32_t remove_after_secs);

  FrontendOptions opts_;
  int listen_fd_ = -1;
  uint64_t uuid_ = 0;
  uint64_t start_ns_ = 0;
  std::atomic<bool> stop_{false};
  std::thread control_, heartbeat_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Mount>> mounts_;
  std::map<std::string, Cluster> clusters_;  // by backend list
  bool ever_mounted_ = false;
  // DPDK's memory (memory_mb + dpdk_base_memory_mb) is fixed by the first
  // DPDK lane this process starts (EAL starts once per process); 0 before.
  uint32_t dpdk_memory_mb_ = 0;
  // Mount requests being served, and whether run() decided to exit; a mount
  // request arriving after that is told to retry with a new frontend.
  int pending_mounts_ = 0;
  bool exiting_ = false;
  // The mount that started this frontend failed and none succeeded since:
  // it exits as after the last unmount.
  bool first_failed_ = false;
  std::condition_variable hb_cv_;
  // liblanefs-direct's door (<run dir>/direct.sock); declared last: its
  // sessions end before the mounts and clusters they use.
  std::unique_ptr<direct::DirectServer> direct_;
  bool hb_kick_ = false;
};

}  // namespace lanefs::frontend
