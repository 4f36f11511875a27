// OpenHandles: which clients hold which inodes open, kept by the inode's
// metadata owner. POSIX keeps a file whose last name is removed alive until
// its last close, on every client: an unlink (or a rename over the file)
// that takes the link count to 0 while a handle is held leaves the inode
// as an orphan (record kept, data kept, MetaStore orphan record); the
// release of its last handle, or its holder's lease running out, removes
// it (meta_open.cc).
//
// A client is one mount of one frontend (a random id). It registers a
// handle when it first opens an inode and releases it at its last close
// (HandleReq), and renews its lease by listing everything it holds here
// (HandleRenewReq, every few seconds). A client silent for longer than the
// lease (its host died, its network is cut) loses its handles. Handles are
// kept in memory only: after a restart clients take theirs up again with
// their next renewal. The owner also writes each handle to its MetaStore
// (without a sync) and loads them at start, so a restarted backend process
// knows them at once; their leases start again then.
//
// Threading: every method is thread-safe (one mutex, taken after the
// MetaStore lock when both are held, never before). Not on the data path:
// opens, last closes, unlinks and renewals only.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lanefs::backend {

class OpenHandles {
 public:
  explicit OpenHandles(uint64_t lease_ns) : lease_ns_(lease_ns) {}

  uint64_t lease_ns() const { return lease_ns_; }
  // `client` holds `ino` open (idempotent), as of its request number `seq`.
  void open(uint64_t client, uint64_t ino, uint64_t seq, uint64_t now_ns);
  // `client` closed its last handle on `ino` (request `seq`): dropped
  // unless registered by a later request. Returns whether it was dropped.
  bool release(uint64_t client, uint64_t ino, uint64_t seq, uint64_t now_ns);
  // The client's complete list as of `seq`: renews its lease, takes up the
  // listed inodes it lacks and drops the handles it does not list that were
  // registered at or before `seq`.
  struct Renewal {
    std::vector<uint64_t> added, dropped;
  };
  Renewal renew(uint64_t client, uint64_t seq, std::span<const uint64_t> inos, uint64_t now_ns);
  // Drops every handle of the clients not heard from for longer than the
  // lease; returns them (client, ino).
  std::vector<std::pair<uint64_t, uint64_t>> expire(uint64_t now_ns);
  // Does any client hold `ino` open?
  bool held(uint64_t ino) const;
  size_t handles() const;  // (client, inode) pairs held

 private:
  struct Client {
    uint64_t last_ns = 0;
    std::unordered_map<uint64_t, uint64_t> seq_by_ino;  // its handles, with the seq that registered each
  };
  void drop_locked(uint64_t ino);

  const uint64_t lease_ns_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Client> clients_;
  std::unordered_map<uint64_t, uint32_t> holders_;  // ino -> clients holding it
};

}  // namespace lanefs::backend
