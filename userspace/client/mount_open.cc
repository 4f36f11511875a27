// Open files and their handles on the backends (backend/open_handles.h).
// POSIX keeps a file whose last name is removed alive until its last close.
// The backend that owns the inode can only do that for the clients it
// knows hold the file open, so this mount registers a handle at its first
// open of a file (riding on the create request for O_CREAT), releases it
// at its last close and renews its lease every few seconds by listing what
// it holds. The seq (one counter per mount, under mu_) orders them: the
// backend drops a handle only for a release or renewal newer than the
// handle's registration, so requests that overtake each other on the wire
// never drop a handle that is in use.
//
// Cost: one RPC at the first open of a file that is not yet open here (in
// writecache it replaces the close-to-open getattr), none for a create or
// a close: releases ride on the next renewal (the frontend calls
// renew_handles every 100 ms; it sends when releases wait, or every
// kRenewNs while files are open), one request per backend.
#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "client/mount_fs.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/permission.h"

namespace lanefs::client {
namespace {

// Renewal period; the backend's lease (--handle-lease-secs, default 60,
// at least 10) is several periods long.
constexpr uint64_t kRenewNs = 3'000'000'000ull;

}  // namespace

uint64_t MountFs::begin_registration() {
  const uint64_t seq = ++handle_seq_;
  registering_.push_back(seq);
  return seq;
}

void MountFs::end_registration(uint64_t seq) {
  auto it = std::find(registering_.begin(), registering_.end(), seq);
  if (it != registering_.end()) registering_.erase(it);
}

Status MountFs::open_file(uint64_t nodeid, bool writable, bool check_view, uint8_t access,
                          const proto::Cred& cred) {
  const uint64_t ino = to_ino(nodeid);
  uint64_t seq = 0;
  {
    std::lock_guard lk(mu_);
    Node& n = nodes_[ino];
    if (n.open_count + n.opening == 0) {
      seq = begin_registration();
      held_.insert(ino);
    }
    ++n.opening;
  }
  Status st = ok_status();
  if (seq != 0) {
    auto a = cluster_->open_handle({handle_client_, ino, true, seq, access, cred});
    if (a.ok()) {
      remember(*a, Learned::kFetched);
      if (check_view) st = check_kernel_view(*a, true);
    } else {
      st = a.error();
    }
  } else {
    // Open here already, so the backend is not asked: a root the token
    // squashes is checked here, as nobody, against fresh attributes.
    if (root_squash_ && cred.uid == 0 && access != 0) {
      auto a = cluster_->getattr(ino);
      st = a.ok() ? proto::may_access(*a, proto::Cred(proto::kNobody, proto::kNobody), access) : Status(a.error());
    }
    if (st.ok() && check_view) st = open_check(nodeid);
  }
  {
    std::lock_guard lk(mu_);
    if (seq != 0) end_registration(seq);
    Node& n = nodes_[ino];
    --n.opening;
    if (st.ok()) {
      ++n.open_count;
      n.write_opens += writable;
    } else if (n.open_count + n.opening == 0) {
      held_.erase(ino);
      if (seq != 0) {
        n.released_seq = ++handle_seq_;
        releases_.push_back(ino);
      }
    }
  }
  return st;
}

Result<proto::InodeAttr> MountFs::create_open(uint64_t parent, const std::string& name, uint32_t mode,
                                              proto::Cred cred, bool exclusive, bool writable, uint8_t access) {
  LANEFS_TRY(this->writable());
  proto::CreateReq r = create_req(parent, name, mode, 0, cred, exclusive);
  r.open_by = handle_client_;
  r.access = access;
  {
    std::lock_guard lk(mu_);
    r.open_seq = begin_registration();
  }
  auto made = create_node(r);
  bool reregister = false;
  {
    std::lock_guard lk(mu_);
    end_registration(r.open_seq);
    if (made.ok()) {
      Node& n = nodes_[to_ino(made->ino)];
      // The backend took the handle with the create unless the file (an
      // existing one, O_CREAT without O_EXCL) lives on another backend, or
      // this mount's release of it overtook the create.
      reregister = n.open_count + n.opening == 0 &&
                   (n.released_seq > r.open_seq || !cluster_->same_meta_owner(r.parent, to_ino(made->ino)));
      if (n.open_count + n.opening == 0) held_.insert(to_ino(made->ino));
      ++n.opening;
    }
  }
  if (!made.ok()) return made;
  // A failed O_TRUNC or re-registration still leaves the file open
  // (counted) so the caller's release balances it.
  Status st = ok_status();
  if (reregister) {
    uint64_t seq;
    {
      std::lock_guard lk(mu_);
      seq = begin_registration();
    }
    // Its creator's open: no access check (O_CREAT may make a file mode
    // 0444 and still write it through this descriptor).
    auto a = cluster_->open_handle({handle_client_, to_ino(made->ino), true, seq, 0, {}});
    if (!a.ok()) st = a.error();
    std::lock_guard lk(mu_);
    end_registration(seq);
  }
  {
    std::lock_guard lk(mu_);
    Node& n = nodes_[to_ino(made->ino)];
    --n.opening;
    ++n.open_count;
    n.write_opens += writable;
  }
  if (!st.ok()) {
    (void)released(made->ino, writable);
    return st.error();
  }
  return made;
}

Status MountFs::released(uint64_t nodeid, bool writable) {
  const uint64_t ino = to_ino(nodeid);
  bool diverged = false;
  {
    std::lock_guard lk(mu_);
    auto it = nodes_.find(ino);
    if (it == nodes_.end() || it->second.open_count == 0) return ok_status();
    Node& n = it->second;
    --n.open_count;
    if (writable && n.write_opens > 0) --n.write_opens;
    diverged = n.open_count == 0 && n.seen_valid && (n.seen_size == kDiverged || n.stale_size);
    if (n.open_count + n.opening == 0) {
      held_.erase(ino);
      // Told to the backend by the next renewal (within 100 ms), not by
      // a round trip per close. The list's allocation is amortized.
      n.released_seq = ++handle_seq_;
      releases_.push_back(ino);
    }
  }
  // A write of this mount failed (no space, ...), or another client shrank
  // the file while it was open here: the kernel's size (and pages) are
  // ahead of the backend. Its attributes are dropped so that the next stat
  // asks, finds out and gets a fresh inode (ESTALE).
  if (diverged && kernel_cache_) kernel_cache_->attrs_changed(nodeid);
  return ok_status();
}

void MountFs::renew_handles(bool releases_only) {
  const uint64_t now = mono_ns();
  std::vector<uint64_t> held, released;
  uint64_t seq = 0;
  {
    std::lock_guard lk(mu_);
    if (releases_.empty() && (releases_only || now - renewed_ns_ < kRenewNs)) return;
    renewed_ns_ = now;
    // Registrations still in flight are newer than this list.
    seq = handle_seq_;
    for (uint64_t r : registering_) seq = std::min(seq, r - 1);
    held.assign(held_.begin(), held_.end());
    // Releases this renewal covers; a newer one waits for the next.
    for (auto it = releases_.begin(); it != releases_.end();) {
      auto n = nodes_.find(*it);
      if (n == nodes_.end() || n->second.released_seq <= seq) {
        released.push_back(*it);
        it = releases_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (held.empty() && released.empty()) return;  // nothing held: leftovers expire with the lease
  Status s = cluster_->renew_handles(handle_client_, seq, held, released);
  std::lock_guard lk(mu_);
  if (s.ok()) {
    if (std::exchange(renew_failing_, false)) LOG_INFO("open handles renewed again ({} held)", held.size());
    return;
  }
  // Logged once per outage; tried again at the next call.
  if (!std::exchange(renew_failing_, true))
    LOG_WARN("renewing {} open handles: {} (retrying)", held.size(), s.error().to_string());
  releases_.insert(releases_.end(), released.begin(), released.end());  // told next time
}

}  // namespace lanefs::client
