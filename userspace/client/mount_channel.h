// MountChannel: how the kernel's requests reach one mount (FUSE on
// /dev/fuse, FUSE over io_uring, or lanefs.ko's /dev/lanefs rings).
// The frontend holds one per mount next to its MountFs and knows nothing
// else of it: it waits for the mount's end, detaches it, and shows the
// channel in `lanefs local ps` / `lanefs stats --json`.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lanefs::client {

struct ChannelInfo {
  std::string client;  // "kernel", "fuse-uring", "fuse" (ps column CLIENT, JSON "client")
  std::string name;    // "lanefs.ko", "uring", "classic" (ps column CHANNEL, JSON "channel")
  std::string reason;  // why this channel (JSON "channel_reason")
  // Requests served, per counter (JSON keys, e.g. "fuse_requests_uring").
  std::vector<std::pair<std::string, uint64_t>> counters;
};

class MountChannel {
 public:
  virtual ~MountChannel() = default;
  // Until the kernel ended the connection (unmount, abort) and every
  // channel thread stopped.
  virtual void wait() = 0;
  // Detaches the mount; the connection ends when the kernel lets go of it.
  virtual void unmount() = 0;
  virtual ChannelInfo info() const = 0;
};

}  // namespace lanefs::client
