// BackendCore: one lanefsd container — its stores, its RPC server (clients
// and peers call in), its peer client (it calls other backends), and the
// cluster map. The op families live in management_ops.cc, meta_ops.cc and
// data_ops.cc; BackendCore::handle (backend_core.cc) routes an opcode to
// its family; fast_path.cc serves plain reads/writes, getattr and local
// lookups on the receiving loop.
//
// Roles (shown as processes by `lanefs cluster processes`): MANAGEMENT
// (cluster map, membership, filesystems, sessions), COMPUTE (metadata and
// data service), DRIVES (the chunk store). They are threads of this one OS
// process.
//
// Threading: handlers run on the RPC server's worker threads concurrently.
// The map is guarded by map_mu_; metadata read-modify-writes take the
// MetaStore lock; management mutations serialize on mgmt_mu.
#pragma once

#include <atomic>
#include <condition_variable>
#include <optional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "backend/chunk_store.h"
#include "backend/disk_ring.h"
#include "backend/ino_fs_cache.h"
#include "backend/meta_store.h"
#include "backend/open_handles.h"
#include "common/net_addr.h"
#include "proto/messages.h"
#include "rpc/rpc.h"
#include "rpc/typed_call.h"
#include "transport/rdma_lane.h"

namespace lanefs::backend {

struct BackendOptions {
  std::string data_dir;
  NetAddr listen;
  std::string name;             // container name; default: host name
  uint32_t chunk_size = 1 << 20;
  uint32_t workers = 4;
  uint32_t loops = 0;  // datagram loops (UDP: one per CPU when 0; DPDK: one)
  transport::FaultConfig faults;
  uint64_t peer_timeout_ns = 10'000'000'000ull;
  uint64_t map_refresh_ns = 2'000'000'000ull;
  // How long a client's open handles outlive its last renewal
  // (`--handle-lease-secs`; OpenHandles).
  uint64_t handle_lease_ns = 60'000'000'000ull;
  // RDMA lane (large-IO data movement): kAuto uses it when an RDMA device
  // owns the listen address, kOn fails start() without one, kOff never.
  enum class Rdma : uint8_t { kAuto, kOn, kOff } rdma = Rdma::kAuto;
  // The DPDK lane (`lanefsd --net`): clients and peers are served through
  // this DPDK port at dpdk->ip (listen.ip must be that address). In
  // interrupt mode a driver without RX interrupts falls back to kernel UDP
  // on the same address (logged; network() says which).
  std::optional<transport::DpdkConfig> dpdk;
  // More DPDK ports (HA legs, `--net` repeated); extra_legs holds their
  // addresses and labels, in the same order.
  std::vector<transport::DpdkConfig> dpdk_extra;
  int cpu = -1;  // pin the datagram loop thread (`--core`); -1: not pinned
  // HA: the label of the listen address's NIC (its switch) and more data
  // addresses, one per NIC, each with its label (`--data-addr IP[/LABEL]`).
  // All are advertised in the cluster map; clients spread load over them
  // and fail over between them (UDP lane).
  std::string label;
  std::vector<proto::NetLeg> extra_legs;
  // Authentication (docs/security.md). A new data directory takes the
  // cluster secret from `secret_file` (made, 0600, when missing; "" = a
  // random secret of its own); the built-in admin's token is written to
  // <data_dir>/admin.token and to `admin_token_file` ("" = only there).
  std::string secret_file;
  std::string admin_token_file;
};

class BackendCore {
 public:
  // Opens (or creates) the data directory: metadata DB, chunk store,
  // identity, and the cluster map (a fresh backend is a one-node cluster).
  static Result<std::unique_ptr<BackendCore>> open(BackendOptions options);
  ~BackendCore();

  // Starts serving; returns once the server is bound.
  Status start();
  void stop();

  NetAddr listen_addr() const;
  // The datagram lane in use: "UDP" or "DPDK"; and the pinned core (-1).
  const std::string& network() const { return network_; }
  int core() const { return network_ == "DPDK" ? opts_.cpu : -1; }
  const BackendOptions& options() const { return opts_; }
  uint64_t uuid() const { return uuid_; }
  const std::string& hostname() const { return hostname_; }
  uint64_t start_ns() const { return start_ns_; }

  MetaStore& meta() { return *meta_; }
  OpenHandles& handles() { return handles_; }
  ChunkStore& chunks() { return *chunks_; }
  rpc::RpcServer* server() { return server_.get(); }
  // The RDMA lane, nullptr when this backend has none (see BackendOptions).
  transport::RdmaLane* rdma() { return rdma_.get(); }

  proto::ClusterMap map() const;
  // The current map, shared and immutable (a new epoch is a new map): what
  // every request routes with, never copied per request.
  std::shared_ptr<const proto::ClusterMap> map_ptr() const;
  // Persists and installs `m` when it is newer (or `force`). Returns whether
  // it was installed.
  Result<bool> install_map(const proto::ClusterMap& m, bool force);
  bool is_self(const proto::Member& m) const { return m.uuid == uuid_; }
  // This backend's member entry in the current map (nullptr if not a member).
  std::optional<proto::Member> self_member() const;
  proto::BackendIdentity identity() const;

  // True when this backend holds inode `ino`'s metadata (current map).
  bool owns_inode(uint64_t ino) const;
  // A data write's effect on its inode (kCommitWrite's work): size grows to
  // `end`, blocks by `blocks_delta`, mtime = ctime = `mtime`. Applied under
  // the metadata lock, not yet durable: the caller makes the ticket durable
  // before it replies.
  Result<std::pair<proto::InodeAttr, MetaStore::Ticket>> apply_write_commit(uint64_t ino, uint64_t end,
                                                                           int64_t blocks_delta,
                                                                           proto::Timespec mtime);
  // The metadata DB lives on memory (tmpfs): its WAL syncs are no-ops and
  // cost nothing to wait for.
  bool meta_memory_backed() const { return meta_memory_backed_; }

  // Calls `op` on member `m`: in-thread when m is this backend, otherwise
  // over the peer RPC client.
  Result<rpc::Buffer> call_member_raw(const proto::Member& m, proto::Op op, rpc::Buffer req);
  template <class Resp, class Req>
  Result<Resp> call_member(const proto::Member& m, proto::Op op, const Req& req) {
    LANEFS_ASSIGN_OR_RETURN(rpc::Buffer raw, call_member_raw(m, op, proto::encode_msg(req)));
    LANEFS_ASSIGN_OR_RETURN(auto body, proto::parse_response(raw));
    return proto::decode_msg<Resp>(body);
  }
  // Calls an arbitrary address (cluster create: backends not yet members).
  template <class Resp, class Req>
  Result<Resp> call_addr(NetAddr a, proto::Op op, const Req& req) {
    return rpc::call_typed<Resp>(*peers_, a, op, req, opts_.peer_timeout_ns);
  }

  // Runs one request, blocking (worker threads, and in-thread peer calls).
  // `info`: the RPC request it came in (null for an in-thread peer call).
  rpc::Buffer handle(proto::Op op, std::span<const uint8_t> req, const rpc::RequestInfo* info = nullptr) noexcept;
  // The RPC server's handler, on the loop that received the request: reads,
  // getattr and local lookups are answered there (fast_path.cc); the rest
  // is deferred to the workers (handle()).
  void serve(rpc::ServerCall& call) noexcept;

  std::mutex mgmt_mu;  // serializes management mutations on the leader
  // Non-zero while a cluster create hands members the map: its peer
  // sessions may be unkeyed then (an empty member shares no secret yet).
  std::atomic<int> forming_cluster{0};

  // ---- authentication and authorization (auth_ops.cc)
  proto::AuthKey secret() const;
  // Adopts the cluster's secret (cluster create): persisted, admin tokens
  // rewritten, every session set up again.
  Status set_secret(const proto::AuthKey& s);
  // ServerOptions::authenticate: who a connecting session runs as.
  Result<rpc::Admission> authenticate(const rpc::ConnectAuth& a);
  // No filesystems, users or other members: a backend forming a cluster
  // may make this one join (trust on first use, docs/security.md).
  bool joinable() const;
  // A session whose token names filesystems touches only their inodes: the
  // inodes a request names are checked against the inode records held
  // here (one metadata read per request of such a session; admins and
  // tokens for every filesystem skip it). An inode whose record lives on
  // another backend (a data op on a chunk owner) is checked against its
  // filesystem as its metadata owner says, remembered (InoFsCache). Not
  // remembered yet and !may_wait (a server loop): *wait_needed is set and
  // the check is to be done again on a worker, with may_wait. kNotFound
  // when that owner has no such inode.
  Status check_scope(const proto::UserRecord& who, proto::Op op, std::span<const uint8_t> req, bool may_wait,
                     bool* wait_needed);
  // A refusal, logged with the peer's address (at most ~20 lines a second).
  void log_refusal(NetAddr peer, std::string_view what);

  // File data bytes served by kRead / stored by kWrite (BackendStatus);
  // relaxed: statistics only, never used to order anything.
  std::atomic<uint64_t> data_read_bytes{0};
  std::atomic<uint64_t> data_written_bytes{0};

  // Client containers registered with this backend (meaningful on the
  // leader). Not persisted: clients are stateless and re-register.
  struct ClientEntry {
    proto::ClientInfo info;
    uint64_t process_id = 0;
    uint64_t last_seen_ns = 0;
  };
  void client_heartbeat(const proto::ClientInfo& info);
  void client_leave(uint64_t uuid);
  std::vector<ClientEntry> live_clients();

 private:
  explicit BackendCore(BackendOptions o) : opts_(std::move(o)), handles_(opts_.handle_lease_ns) {}
  // Inline answers (fast_path.cc); false: defer the call to a worker.
  bool serve_read(rpc::ServerCall& c);
  bool serve_write(rpc::ServerCall& c);
  void finish_write_commit(rpc::ServerCall& c, uint64_t ino, uint64_t end, int64_t delta, proto::Timespec mtime);
  bool serve_getattr(rpc::ServerCall& c);
  bool serve_lookup(rpc::ServerCall& c);
  bool serve_open_handle(rpc::ServerCall& c);
  void refresh_loop();
  Status start_rdma();
  // Puts this backend's current RDMA capability and data addresses (HA legs)
  // into its map entry (one-node clusters and the leader; other members are
  // updated by the leader from their identity).
  void advertise_identity();

  BackendOptions opts_;
  std::unique_ptr<MetaStore> meta_;
  OpenHandles handles_;
  InoFsCache ino_fs_;  // check_scope: filesystems of inodes recorded elsewhere
  std::unique_ptr<ChunkStore> chunks_;
  std::unique_ptr<rpc::RpcServer> server_;
  // One io_uring per server loop (made on the loop's thread; rings_[i] is
  // only used by loop i).
  std::vector<DiskRing*> rings_;
  std::unique_ptr<rpc::RpcClient> peers_;
  std::unique_ptr<transport::RdmaLane> rdma_;
  uint64_t uuid_ = 0;
  std::string network_ = "UDP";
  bool meta_memory_backed_ = false;
  std::string hostname_;
  uint64_t start_ns_ = 0;
  Status load_secret();         // open(): from the DB, or seeded (secret_file)
  void write_admin_tokens();    // <data_dir>/admin.token, admin_token_file
  mutable std::mutex secret_mu_;
  proto::AuthKey secret_{};
  std::atomic<uint64_t> refusal_window_{0}, refusals_logged_{0};
  mutable std::mutex map_mu_;
  std::shared_ptr<const proto::ClusterMap> map_ = std::make_shared<const proto::ClusterMap>();
  std::thread refresher_;
  std::mutex clients_mu_;
  std::map<uint64_t, ClientEntry> clients_;
  static constexpr uint64_t kMaxFrontendCores = 16;  // mount option num_cores at most
  uint64_t next_client_pid_ = 1000;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
};

// Ops whose deferred work runs on the priority pool: peer primitives and
// data ops never wait on other backends, so composite metadata ops waiting
// on peers can never starve them.
bool is_priority_op(uint16_t opcode);

// Op families (each returns a complete response: status + body).
// `who`: what the request's session runs as (null: this backend itself, or
// a server that authenticates nobody).
rpc::Buffer handle_management(BackendCore& b, proto::Op op, std::span<const uint8_t> req,
                              const proto::UserRecord* who);
rpc::Buffer handle_users(BackendCore& b, proto::Op op, std::span<const uint8_t> req, const proto::UserRecord* who);
// kPermission naming the user, role and op when `who` may not call `op`.
Status authorize(const proto::UserRecord& who, proto::Op op);
rpc::Buffer handle_metadata(BackendCore& b, proto::Op op, std::span<const uint8_t> req,
                            const rpc::RequestInfo* info);
// Namespace changes resent after a restart (meta_replay.cc). A request
// that creates, links, unlinks or renames carries a tag (client, request)
// and records it in the batch of its change; a resend of it (the backend
// restarted before the reply got out) is answered from that record
// instead of running again (which would fail: EEXIST, ENOENT).
struct RequestTag {
  uint64_t client = 0, request = 0;  // client 0: untagged
};
RequestTag replay_tag(proto::Op op, const rpc::RequestInfo* info);
std::optional<rpc::Buffer> answer_resent(BackendCore& b, proto::Op op, std::span<const uint8_t> req,
                                         RequestTag tag);
void prune_request_records(BackendCore& b);  // records older than the resend window (refresh loop)
uint64_t wall_secs();
rpc::Buffer handle_data(BackendCore& b, proto::Op op, std::span<const uint8_t> req);
// kScrub (scrub_ops.cc): blocking, reads every chunk of the filesystem here.
rpc::Buffer handle_scrub(BackendCore& b, std::span<const uint8_t> req);
// kWrongOwner unless this backend holds inode `ino`'s metadata (the client
// refreshes its map and asks the owner).
inline Status require_inode_owner(const BackendCore& b, uint64_t ino) {
  if (b.owns_inode(ino)) return ok_status();
  return make_error(Errc::kWrongOwner, "inode " + std::to_string(ino) + " is not on this backend");
}
// Open handles and orphans (meta_open.cc): kOpenHandle, kHandleRenew; the
// periodic sweep (expired leases, orphans nobody holds); removing an
// inode's data from every member.
rpc::Buffer handle_open_files(BackendCore& b, proto::Op op, std::span<const uint8_t> req);
// meta_xattr.cc; info: the caller's session (listing hides trusted.* from
// all but root, after root squashing).
rpc::Buffer handle_xattr(BackendCore& b, proto::Op op, std::span<const uint8_t> req, const rpc::RequestInfo* info);
// readlink, kCommitWrite and the single-inode peer primitives (meta_records.cc).
rpc::Buffer handle_inode_records(BackendCore& b, proto::Op op, std::span<const uint8_t> req);
void sweep_open_handles(BackendCore& b);
// kOpenHandle with open set, on this backend's inode: no waiting (fast path).
Result<proto::InodeAttr> register_open_handle(BackendCore& b, const proto::HandleReq& r);
Status load_open_handles(BackendCore& b);  // at start: the handles recorded before a restart
void drop_inode_data(BackendCore& b, uint64_t ino);

// Response helpers for the op families.
template <class T>
rpc::Buffer reply(const T& body) {
  return proto::ok_response(proto::encode_msg(body));
}
inline rpc::Buffer reply_empty() { return proto::ok_response(); }
inline rpc::Buffer reply_error(Error e) { return proto::error_response(e); }
template <class T>
rpc::Buffer reply_result(const Result<T>& r) {
  return r.ok() ? reply(*r) : reply_error(r.error());
}
// Decodes the request body as Req and runs f on it (a decode failure is
// answered with the error).
template <class Req, class F>
rpc::Buffer with(std::span<const uint8_t> raw, F&& f) {
  auto req = proto::decode_msg<Req>(raw);
  if (!req.ok()) return reply_error(req.error());
  return f(*req);
}

}  // namespace lanefs::backend
