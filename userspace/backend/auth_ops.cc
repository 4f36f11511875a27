// Who may do what on this backend (docs/security.md): the cluster secret,
// the admin token files, session authentication (proto/auth.h), the role
// table per opcode, and the user operations (kUserAdd/List/Delete/Token,
// kWhoAmI; mutations on the leader).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "backend/backend_core.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/private_file.h"

namespace lanefs::backend {
namespace {

using proto::Op;
using proto::Role;

constexpr std::string_view kSecretKey = "cluster_secret";

std::string hex(std::span<const uint8_t> b) {
  std::string s;
  for (uint8_t c : b) s += fmt::format("{:02x}", c);
  return s;
}

// The host's secret file: 64 hex characters. Made (0600) when missing,
// complete before it appears (written aside, then linked): a lanefsd
// racing on the same host reads the winner's.
Result<proto::AuthKey> read_secret(const std::string& path) {
  LANEFS_ASSIGN_OR_RETURN(std::string text, read_private_file(path, "secret file", 256));
  auto c = proto::parse_token("lanefs-token 1 x 0 " + text.substr(0, 64), path);
  if (text.size() < 64 || !c.ok())
    return make_error(Errc::kInvalid, "secret file " + path + ": not 64 hexadecimal characters");
  return c->key;
}

Result<proto::AuthKey> seed_secret(const std::string& path) {
  auto have = read_secret(path);
  if (have.ok() || have.code() != Errc::kNotFound) return have;
  proto::AuthKey k = proto::random_key();
  Status st = write_private_file(path, "secret file", hex(k) + "\n", /*only_if_absent=*/true, 0755);
  if (st.ok()) return k;
  if (st.code() == Errc::kExists) return read_secret(path);  // another lanefsd made it first
  return st.error();
}

// The table: which roles may call which opcodes (handlers check more:
// an admin may not touch clusteradmins; readers only their filesystems).
bool role_allows(Role r, Op op) {
  auto raw = static_cast<uint16_t>(op);
  if (r == Role::kBackend) return true;
  if (r == Role::kJoining)
    return op == Op::kIdentify || op == Op::kWhoAmI || op == Op::kGetMap || op == Op::kSetMap;
  // Between backends only.
  if (op == Op::kSetMap || op == Op::kFsPurge || op == Op::kUserForward || (raw >= 60 && raw < 80)) return false;
  switch (op) {
    case Op::kClusterCreate:
    case Op::kRdmaConfig:
    case Op::kContainerNet:
      return r == Role::kClusterAdmin;
    case Op::kFsCreate:
    case Op::kFsDelete:
    case Op::kProcesses:
    case Op::kStatus:
    case Op::kScrub:
    case Op::kUserAdd:
    case Op::kUserList:
    case Op::kUserDelete:
      return proto::role_is_admin(r);
    case Op::kSetattr:
    case Op::kCreate:
    case Op::kLink:
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kRename:
    case Op::kSetxattr:
    case Op::kRemovexattr:
    case Op::kCommitWrite:
    case Op::kWrite:
    case Op::kChunkTruncate:
    case Op::kPunch:
      return r != Role::kReadonly;
    default:
      return true;  // reads, lookups, the map, heartbeats, whoami, own token
  }
}

Result<proto::UserRecord> decode_user(std::span<const uint8_t> raw) { return proto::decode_msg<proto::UserRecord>(raw); }

// Forwards a user mutation to the leader, naming the caller: the leader
// checks it again against its own map (this backend's may be behind).
std::optional<rpc::Buffer> to_leader(BackendCore& b, Op op, std::span<const uint8_t> req,
                                     const proto::UserRecord& caller) {
  auto m = b.map_ptr();
  const proto::Member* leader = m->member_by_shard(0);
  if (leader == nullptr || b.is_self(*leader)) return std::nullopt;
  rpc::Buffer fwd;
  Encoder e(&fwd);
  e.str(caller.name);
  e.u16(static_cast<uint16_t>(op));
  e.bytes(req);
  auto r = b.call_member_raw(*leader, Op::kUserForward, std::move(fwd));
  if (!r.ok()) return reply_error(r.error());
  return std::move(*r);
}

Error denied(const proto::UserRecord& who, const std::string& what) {
  return make_error(Errc::kPermission, "permission denied: user '" + who.name + "' (role " +
                                           proto::role_name(who.role) + ") may not " + what);
}

rpc::Buffer publish(BackendCore& b, proto::ClusterMap m) {
  ++m.epoch;
  auto inst = b.install_map(m, true);
  if (!inst.ok()) return reply_error(inst.error());
  for (const auto& mem : m.members) {
    if (b.is_self(mem)) continue;
    auto r = b.call_member<rpc::Empty>(mem, Op::kSetMap, proto::SetMapReq{m, false, {}});
    if (!r.ok()) LOG_WARN("users not pushed to {}: {}", mem.addr.to_string(), r.error().to_string());
  }
  return reply_empty();
}

// u's token, sealed for `caller` (who holds the key of its own token).
proto::TokenResp token_for(BackendCore& b, const proto::UserRecord& u, const proto::UserRecord& caller) {
  const proto::AuthKey s = b.secret();
  proto::Credentials c{u.name, u.generation, proto::user_key(s, u.name, u.generation)};
  return proto::seal_token(proto::user_key(s, caller.name, caller.generation), c);
}

rpc::Buffer user_add(BackendCore& b, std::span<const uint8_t> raw, const proto::UserRecord& caller) {
  auto req = decode_user(raw);
  if (!req.ok()) return reply_error(req.error());
  if (!proto::valid_user_name(req->name))
    return reply_error(make_error(Errc::kInvalid, "user name '" + req->name +
                                                      "': 1-64 of letters, digits, '.', '_', '-', not starting with '.' or '-'"));
  if (req->role > Role::kClusterAdmin) return reply_error(make_error(Errc::kInvalid, "no such role"));
  std::lock_guard lk(b.mgmt_mu);
  proto::ClusterMap m = b.map();
  if (m.find_user(req->name)) return reply_error(make_error(Errc::kExists, "user '" + req->name + "' already exists"));
  for (const auto& f : req->filesystems)
    if (!m.find_fs(f)) return reply_error(make_error(Errc::kNotFound, "filesystem '" + f + "' does not exist"));
  proto::UserRecord u = *req;
  u.generation = m.next_user_generation++;
  u.created_s = static_cast<int64_t>(wall_secs());
  m.users.push_back(u);
  auto r = publish(b, std::move(m));
  if (proto::parse_response(r).ok()) {
    LOG_INFO("user '{}' added (role {})", u.name, proto::role_name(u.role));
    return reply(token_for(b, u, caller));
  }
  return r;
}

rpc::Buffer user_delete(BackendCore& b, const std::string& name) {
  std::lock_guard lk(b.mgmt_mu);
  proto::ClusterMap m = b.map();
  auto it = std::find_if(m.users.begin(), m.users.end(), [&](const auto& u) { return u.name == name; });
  if (it == m.users.end()) return reply_error(make_error(Errc::kNotFound, "user '" + name + "' does not exist"));
  m.users.erase(it);
  LOG_INFO("user '{}' deleted", name);
  return publish(b, std::move(m));
}

}  // namespace

Status authorize(const proto::UserRecord& who, Op op) {
  if (role_allows(who.role, op)) return ok_status();
  return denied(who, proto::op_name(op));
}

proto::AuthKey BackendCore::secret() const {
  std::lock_guard lk(secret_mu_);
  return secret_;
}

Status BackendCore::load_secret() {
  auto stored = meta_->get_kv(kSecretKey);
  if (stored.ok() && stored->size() != proto::kAuthKeyBytes)
    return make_error(Errc::kCorrupt, "the cluster secret stored in " + opts_.data_dir + "/meta is " +
                                          std::to_string(stored->size()) + " bytes, not " +
                                          std::to_string(proto::kAuthKeyBytes));
  if (stored.ok()) {
    std::memcpy(secret_.data(), stored->data(), proto::kAuthKeyBytes);
  } else {
    if (auto m = meta_->get_kv("cluster_map"); m.ok())
      LOG_WARN("{} predates authentication: its secret comes from {}; every member of its cluster needs the "
               "same one (copy that file to their hosts before they start)",
               opts_.data_dir, opts_.secret_file.empty() ? std::string("nowhere (random)") : opts_.secret_file);
    if (opts_.secret_file.empty()) {
      secret_ = proto::random_key();
    } else {
      auto seeded = seed_secret(opts_.secret_file);
      if (seeded.ok()) {
        secret_ = *seeded;
      } else if (seeded.code() == Errc::kPermission || seeded.code() == Errc::kInvalid) {
        return seeded.error();
      } else {
        LOG_WARN("{}: this backend keeps a secret of its own", seeded.error().to_string());
        secret_ = proto::random_key();
      }
    }
    MetaStore::Batch batch;
    batch.put_kv(kSecretKey, std::string_view(reinterpret_cast<const char*>(secret_.data()), secret_.size()));
    LANEFS_TRY(meta_->commit(batch));
  }
  write_admin_tokens();
  return ok_status();
}

void BackendCore::write_admin_tokens() {
  proto::Credentials c{std::string(proto::kAdminUser), 0, proto::user_key(secret(), proto::kAdminUser, 0)};
  for (const std::string& path : {opts_.data_dir + "/admin.token", opts_.admin_token_file}) {
    if (path.empty()) continue;
    if (auto st = proto::save_token_file(path, c); !st.ok())
      LOG_WARN("admin token not written: {}", st.error().to_string());
    else
      LOG_INFO("admin token in {}", path);
  }
}

Status BackendCore::set_secret(const proto::AuthKey& s) {
  {
    std::lock_guard lk(secret_mu_);
    if (proto::equal_secret(s, secret_)) return ok_status();
  }
  MetaStore::Batch batch;
  batch.put_kv(kSecretKey, std::string_view(reinterpret_cast<const char*>(s.data()), s.size()));
  LANEFS_TRY(meta_->commit(batch));
  {
    std::lock_guard lk(secret_mu_);
    secret_ = s;
  }
  LOG_INFO("joined a cluster: its secret replaces this backend's");
  write_admin_tokens();
  if (server_) server_->reset_sessions();
  return ok_status();
}

bool BackendCore::joinable() const {
  auto m = map_ptr();
  return m->members.size() <= 1 && m->filesystems.empty() && m->users.empty();
}

void BackendCore::log_refusal(NetAddr peer, std::string_view what) {
  uint64_t sec = mono_ns() / 1'000'000'000ull;
  if (refusal_window_.exchange(sec, std::memory_order_relaxed) != sec) refusals_logged_.store(0, std::memory_order_relaxed);
  if (refusals_logged_.fetch_add(1, std::memory_order_relaxed) < 20)
    LOG_WARN("refused {}: {}", peer.to_string(), what);
}

Status BackendCore::check_scope(const proto::UserRecord& who, Op op, std::span<const uint8_t> req, bool may_wait,
                                bool* wait_needed) {
  if (proto::role_is_admin(who.role) || who.filesystems.empty()) return ok_status();
  const auto raw = static_cast<uint16_t>(op);
  // The inodes a request names: its first field for every metadata and data
  // op (InoReq, NameAtReq, SetattrReq, CreateReq, LinkReq, RenameReq,
  // ReaddirReq, the xattr ops, CommitWriteReq, ReadReq, WriteReq, ...),
  // the second for HandleReq; LinkReq and RenameReq also name a new parent.
  uint64_t inos[2] = {0, 0};
  Decoder d(req);
  if (op == Op::kOpenHandle) {
    (void)d.u64();
    inos[0] = d.u64();
  } else if (op == Op::kRename) {
    auto r = proto::decode_msg<proto::RenameReq>(req);
    if (r.ok()) inos[0] = r->parent, inos[1] = r->new_parent;
  } else if ((raw >= 20 && raw <= 36 && op != Op::kHandleRenew) || (raw >= 40 && raw <= 44)) {
    inos[0] = d.u64();
    if (op == Op::kLink) inos[1] = d.u64();
  }
  if (!d.ok()) return ok_status();  // malformed: the op itself says so
  auto m = map_ptr();
  for (uint64_t ino : inos) {
    if (ino == 0) continue;
    const proto::Member* owner = proto::meta_owner(*m, ino);
    if (owner == nullptr) continue;  // the op answers
    uint32_t fs_id = 0;
    if (is_self(*owner)) {
      auto a = meta_->get_inode(ino);
      // A data op naming no inode: refused (its chunks could otherwise be
      // planted under a number another filesystem gives out later).
      if (!a.ok() && a.code() == Errc::kNotFound && raw >= 40 && raw <= 44)
        return make_error(Errc::kNotFound, "inode " + std::to_string(ino) + " does not exist");
      if (!a.ok()) continue;  // the op answers ENOENT itself
      fs_id = a->fs_id;
    } else if (auto known = ino_fs_.find(ino)) {
      fs_id = *known;
    } else if (!may_wait) {
      *wait_needed = true;
      return ok_status();
    } else {
      auto a = call_member<proto::InodeAttr>(*owner, Op::kGetattr, proto::InoReq{ino});
      if (!a.ok() && a.code() == Errc::kNotFound)
        return make_error(Errc::kNotFound, "inode " + std::to_string(ino) + " does not exist");
      if (!a.ok()) return make_error(a.code(), "the filesystem of inode " + std::to_string(ino) + ": " + a.error().message);
      fs_id = a->fs_id;
      ino_fs_.put(ino, fs_id);
    }
    const proto::FsInfo* fs = m->find_fs(fs_id);
    if (fs != nullptr && who.may_use_fs(fs->name)) continue;
    return make_error(Errc::kPermission, "permission denied: user '" + who.name + "' may not use filesystem '" +
                                             (fs ? fs->name : std::to_string(fs_id)) + "' (inode " +
                                             std::to_string(ino) + ")");
  }
  return ok_status();
}

Result<rpc::Admission> BackendCore::authenticate(const rpc::ConnectAuth& a) {
  auto refuse = [&](const std::string& why) -> Error {
    log_refusal(a.peer, "a session (user '" + std::string(a.user) + "'): " + why);
    return make_error(Errc::kPermission, "permission denied: " + why);
  };
  if (a.user.empty()) return refuse("no token presented");
  const proto::AuthKey s = secret();
  if (a.user == proto::kBackendUser) {
    const proto::AuthKey bk = proto::backend_key(s);
    auto want = proto::connect_proof(bk, a.user, a.nonce, a.cookie);
    if (proto::equal_secret(a.proof, want)) {
      static const auto backend = std::make_shared<const proto::UserRecord>(
          proto::UserRecord{std::string(proto::kBackendUser), Role::kBackend, {}, false, 0, 0});
      return rpc::Admission{backend, bk};
    }
    if (joinable()) {
      // No secret in common yet: this session cannot be keyed (the joiner
      // may only hand us its cluster; docs/security.md).
      static const auto joining = std::make_shared<const proto::UserRecord>(
          proto::UserRecord{std::string(proto::kBackendUser), Role::kJoining, {}, false, 0, 0});
      return rpc::Admission{joining, std::nullopt};
    }
    return refuse("a backend of another cluster");
  }
  auto m = map_ptr();
  auto u = m->find_user(a.user);
  if (!u) return refuse("unknown user '" + std::string(a.user) + "'");
  const proto::AuthKey uk = proto::user_key(s, u->name, u->generation);
  auto want = proto::connect_proof(uk, a.user, a.nonce, a.cookie);
  if (!proto::equal_secret(a.proof, want))
    return refuse("wrong token for user '" + u->name + "' (deleted and added again since, or of another cluster)");
  return rpc::Admission{std::make_shared<const proto::UserRecord>(std::move(*u)), uk};
}

rpc::Buffer handle_users(BackendCore& b, Op op, std::span<const uint8_t> raw, const proto::UserRecord* who) {
  const proto::UserRecord admin = proto::builtin_admin();
  const proto::UserRecord& caller = who ? *who : admin;
  switch (op) {
    case Op::kWhoAmI:
      return reply(caller);
    case Op::kUserList: {
      proto::UserList l;
      l.users.push_back(admin);
      auto m = b.map_ptr();
      l.users.insert(l.users.end(), m->users.begin(), m->users.end());
      return reply(l);
    }
    case Op::kUserAdd: {
      auto req = decode_user(raw);
      if (!req.ok()) return reply_error(req.error());
      if (req->role == Role::kClusterAdmin && caller.role == Role::kAdmin)
        return reply_error(denied(caller, "add a clusteradmin"));
      if (auto fwd = to_leader(b, op, raw, caller)) return std::move(*fwd);
      return user_add(b, raw, caller);
    }
    case Op::kUserDelete:
    case Op::kUserToken: {
      auto req = proto::decode_msg<proto::NameReq>(raw);
      if (!req.ok()) return reply_error(req.error());
      auto target = b.map_ptr()->find_user(req->name);
      if (!target) return reply_error(make_error(Errc::kNotFound, "user '" + req->name + "' does not exist"));
      bool self = caller.name == target->name;
      if (op == Op::kUserDelete && target->name == proto::kAdminUser)
        return reply_error(make_error(Errc::kInvalid, "the built-in user 'admin' cannot be deleted"));
      if (!self && !proto::role_is_admin(caller.role))
        return reply_error(denied(caller, "get another user's token"));
      if (target->role == Role::kClusterAdmin && caller.role == Role::kAdmin && !self)
        return reply_error(denied(caller, std::string(op == Op::kUserDelete ? "delete" : "get the token of") +
                                              " a clusteradmin"));
      if (op == Op::kUserToken) return reply(token_for(b, *target, caller));
      if (auto fwd = to_leader(b, op, raw, caller)) return std::move(*fwd);
      return user_delete(b, req->name);
    }
    case Op::kUserForward: {
      // From a member (role_allows: backends only): the caller it names
      // is looked up here, as it is now.
      Decoder d(raw);
      std::string name = d.str(64);
      auto inner = static_cast<Op>(d.u16());
      auto body = d.bytes();
      if (!d.ok() || (inner != Op::kUserAdd && inner != Op::kUserDelete))
        return reply_error(make_error(Errc::kProtocol, "malformed forwarded user operation"));
      auto who_now = b.map_ptr()->find_user(name);
      if (!who_now) return reply_error(make_error(Errc::kPermission, "permission denied: user '" + name + "' no longer exists"));
      return handle_users(b, inner, body, &*who_now);
    }
    default:
      return reply_error(make_error(Errc::kNotSupported, "not a user operation"));
  }
}

}  // namespace lanefs::backend
