// A lanefs mount served over FUSE (mount(2), INIT, the channel: io_uring
// or classic, fuse_channel=) or over lanefs.ko's /dev/lanefs rings, with
// the kernel-cache notifications, behind client::MountChannel. The
// frontend's one entry into fuse/.
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
  // The target is a lanefs.ko mount whose frontend died: take it over
  // (Session::attach_kernel) instead of mounting; fails rather than mounts.
  bool attach = false;
};

// Mounts `fs` at `target` and starts serving it, with the client
// `client=` asks for: lanefs.ko (kernel, when /dev/lanefs exists or
// `modprobe lanefs` makes it) or FUSE. client=kernel fails when the
// module cannot be had, fuse_channel=uring when the kernel cannot give
// FUSE over io_uring (Errc::kNotSupported, one-line reason); client=auto
// takes FUSE when the kernel client is missing or fails, and
// fuse_channel=auto with io_uring negotiated but its rings refused mounts
// again on the classic channel.
Result<std::unique_ptr<client::MountChannel>> mount_client(const MountArgs& a);

}  // namespace lanefs::fuse
