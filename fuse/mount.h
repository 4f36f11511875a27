// A lanefs mount served over FUSE: mount(2), INIT, the channel (io_uring or
// classic, fuse_channel=) and the kernel-cache notifications, behind
// client::MountChannel. The frontend's one entry into fuse/.
#pragma once

#include <memory>
#include <string>

#include "client/mount_channel.h"
#include "client/mount_fs.h"
#include "common/result.h"

namespace lanefs::fuse {

struct MountArgs {
  std::string target;  // mount point (absolute, resolved)
  std::string source;  // shown in /proc/mounts (backend/fs)
  client::MountFs* fs = nullptr;  // outlives the channel
};

// Mounts `fs` at `target` and starts serving it. fuse_channel=uring fails
// when the kernel cannot give it (Errc::kNotSupported, one-line reason);
// fuse_channel=auto with io_uring negotiated but its rings refused mounts
// again on the classic channel.
Result<std::unique_ptr<client::MountChannel>> mount_fuse(const MountArgs& a);

}  // namespace lanefs::fuse
