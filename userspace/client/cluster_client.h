// ClusterClient: a client's view of a lanefs cluster. It fetches the cluster
// map from any of the given backends, then routes every operation to the
// backend that owns it (metadata: owner of the inode or parent directory;
// data: owner of the chunk). On kWrongOwner (the map changed) it refreshes
// the map and retries once.
//
// Used by the `lanefs` CLI, by tests, and as the base of the frontend's
// client core. Thread-safe: all methods may be called concurrently.
// Blocking: every method blocks until its RPCs finish or time out.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "client/lane_policy.h"
#include "client/rdma_path.h"
#include "common/net_addr.h"
#include "proto/messages.h"
#include "rpc/rpc.h"
#include "rpc/typed_call.h"

namespace lanefs::client {

// HA: one local data NIC (mount option net:ha=<dev>) with its address and
// the label naming its switch ("" = unlabeled).
struct HaLeg {
  std::string dev;
  uint32_t ip = 0;  // host order
  uint8_t prefix_bits = 32;
  std::string label;
};

// One row of path_stats(): a path from a local leg to a backend's address.
struct PathRow {
  NetAddr server;  // the backend (its map address)
  rpc::PathStats path;
};

struct ClusterClientOptions {
  std::vector<NetAddr> backends;                  // any members; the first that answers wins
  uint64_t connect_timeout_ns = 5'000'000'000ull;  // per backend, for the session handshake
  uint64_t op_timeout_ns = 30'000'000'000ull;      // per RPC (retransmissions included)
  std::string name = "lanefs";                    // shown by the backends as the client's name
  NetAddr bind{0, 0};                             // local UDP address (0.0.0.0:0 = any)
  transport::FaultConfig faults;                  // tests only
  // Open an RDMA lane on the device owning the bound address (frontends);
  // data calls may then move large IOs over RDMA (see read_data/write_data).
  bool rdma = false;
  // The DPDK lane (mount option net=<dev>/...): datagrams leave through a
  // DPDK port instead of a kernel UDP socket, one endpoint and loop thread
  // per frontend core (one config each; they may share the IP). In
  // interrupt mode a driver without RX interrupts falls back to kernel UDP
  // (logged; see lane()).
  std::vector<transport::DpdkConfig> dpdk;
  // More DPDK ports (HA legs, one shared IP each), used by every core; with
  // them ha_legs lists every port's address (primary first) for the paths.
  std::vector<transport::DpdkConfig> dpdk_extra;
  // CPU for each core's loop thread (core=; -1 or absent: not pinned).
  std::vector<int> cpus;
  // HA: the local legs, the first the primary (UDP: the sockets' addresses;
  // DPDK: the ports' addresses). With legs, every
  // (local leg, backend leg) pair on a shared subnet is a path (all pairs
  // when no subnet is shared: a routed network); same-label pairs are
  // preferred. Backends advertise their legs in the cluster map.
  std::vector<HaLeg> ha_legs;
  // The token sessions are set up with (proto/auth.h); unset: the first
  // found on proto::token_search_path(token_file). No token: connect()
  // fails with kPermission saying where it looked.
  std::optional<proto::Credentials> credentials;
  std::string token_file;
};

// How the pieces of one data call travelled (RDMA lane).
struct DataIoInfo {
  uint32_t rdma_pieces = 0;      // chunk pieces moved over RDMA
  uint32_t fallback_pieces = 0;  // RDMA failed; redone over UDP
  uint32_t in_place_pieces = 0;  // of rdma_pieces: straight into or out of RegisteredMem (zero copies)
};

// Memory the caller registered with an RDMA lane (the direct API's
// buffers, transport::RdmaLane::register_region): an IO whose data lies in
// it moves its RDMA pieces in place, the backend writing into it or reading
// from it, instead of through a leased buffer and a copy. Used only while
// `lane` is the client's current RDMA lane (otherwise as if absent).
struct RegisteredMem {
  std::shared_ptr<transport::RdmaLane> lane;
  std::shared_ptr<transport::MemRegion> region;
};

class ClusterClient {
 public:
  // Connects and fetches the map. kUnreachable if no backend answers within
  // the connect timeout (one line naming the addresses tried).
  static Result<std::unique_ptr<ClusterClient>> connect(ClusterClientOptions options);

  proto::ClusterMap map() const;
  // The current map, shared and immutable (a new epoch is a new map): what
  // every call routes with, never copied per call.
  std::shared_ptr<const proto::ClusterMap> map_ptr() const;
  Result<proto::ClusterMap> refresh_map();
  // The RPC client: a pool of endpoints, one per calling thread (on the
  // DPDK lane spread over the frontend cores' ports); calls run on the
  // calling thread.
  rpc::RpcClient& rpc() { return *rpc_; }
  // Frontend cores of the datagram lane: their addresses and pinned CPUs.
  struct CoreInfo {
    NetAddr addr;
    int cpu = -1;
  };
  std::vector<CoreInfo> cores() const;
  // HA: every path of every core's sessions (health, label, traffic).
  std::vector<PathRow> path_stats() const;
  const ClusterClientOptions& options() const { return opts_; }

  // ---- management (sent to the first reachable backend; mutations are
  // forwarded to the leader by the backend)
  Result<proto::ClusterMap> cluster_create(const std::vector<NetAddr>& addrs);
  Result<proto::FsInfo> fs_create(const std::string& name, bool encrypted = false);
  // Full request (an encrypted filesystem carries its key check value).
  Result<proto::FsInfo> fs_create(const proto::FsCreateReq& req);
  Result<std::vector<proto::FsInfo>> fs_list();
  Status fs_delete(const std::string& name);
  Result<proto::FsInfo> fs_get(const std::string& name);
  // Every member's processes; a member that does not answer is listed with
  // status DOWN.
  Result<std::vector<proto::ProcessInfo>> processes();
  // Status of every member (unreachable ones: error per member).
  std::vector<std::pair<proto::Member, Result<proto::BackendStatus>>> status_all();
  // kScrub on every member, one after the other; each answer may take as
  // long as reading that backend's chunks of the filesystem (timeout_ns).
  std::vector<std::pair<proto::Member, Result<proto::ScrubResp>>> scrub_all(uint32_t fs_id, bool repair,
                                                                          uint64_t timeout_ns);
  Result<proto::LocateResp> locate(uint64_t ino, uint64_t offset);
  Result<proto::StatFs> statfs(uint32_t fs_id);

  // ---- metadata
  // `cred`: who asks (the backend checks modes for it; default root). A
  // refusal of a cred with a pid and no groups is retried once with the
  // process's supplementary groups.
  Result<proto::InodeAttr> lookup(uint64_t parent, const std::string& name, const proto::Cred& cred = {});
  Result<proto::InodeAttr> getattr(uint64_t ino);
  Result<proto::InodeAttr> setattr(uint64_t ino, const proto::SetAttr& attr, const proto::Cred& cred = {});
  Result<proto::InodeAttr> create(const proto::CreateReq& req);
  // create/link with the directory's attributes as the change left them
  // (has_dir false from a backend that does not send them).
  Result<proto::EntryResp> create_entry(const proto::CreateReq& req);
  Result<proto::EntryResp> link_entry(uint64_t ino, uint64_t new_parent, const std::string& new_name,
                                      const proto::Cred& cred = {});
  Result<proto::InodeAttr> mkdir(uint64_t parent, const std::string& name, uint32_t mode,
                                 proto::Cred cred = {});
  Result<proto::InodeAttr> symlink(uint64_t parent, const std::string& name,
                                   const std::string& target, proto::Cred cred = {});
  Result<proto::InodeAttr> link(uint64_t ino, uint64_t new_parent, const std::string& new_name,
                                const proto::Cred& cred = {});
  // Open handles (backend/open_handles.h), on the inode's owner: register
  // or release one (an open answers the inode's attributes); renew a
  // client's lease with everything it holds (`held`), one request per
  // owner of a held or `released` inode (the latter drops what it lacks).
  Result<proto::InodeAttr> open_handle(const proto::HandleReq& req);
  Status renew_handles(uint64_t client, uint64_t seq, const std::vector<uint64_t>& held,
                       const std::vector<uint64_t>& released);
  // Do inodes a and b have their metadata on the same backend (current map)?
  bool same_meta_owner(uint64_t a, uint64_t b) const;
  Status unlink(uint64_t parent, const std::string& name, const proto::Cred& cred = {});
  Status rmdir(uint64_t parent, const std::string& name, const proto::Cred& cred = {});
  Status rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                const std::string& new_name, uint32_t flags = 0, const proto::Cred& cred = {});
  Result<std::string> readlink(uint64_t ino);
  Result<proto::ReaddirResp> readdir(uint64_t ino, uint64_t cookie, uint32_t max, bool plus,
                                     const proto::Cred& cred = {});
  // All entries of a directory (pages through readdir).
  Result<std::vector<proto::Dirent>> list_dir(uint64_t ino);
  Status setxattr(uint64_t ino, const std::string& name, const std::string& value, uint32_t flags = 0,
                  const proto::Cred& cred = {});
  Result<std::string> getxattr(uint64_t ino, const std::string& name, const proto::Cred& cred = {});
  Result<std::vector<std::string>> listxattr(uint64_t ino, const proto::Cred& cred = {});
  Status removexattr(uint64_t ino, const std::string& name, const proto::Cred& cred = {});
  // Resolves "/a/b/c" from a root inode.
  Result<proto::InodeAttr> resolve(uint64_t root, const std::string& path);

  // ---- data
  // Writes data at offset: chunk pieces go to their owners in parallel;
  // durable when this returns. *blocks_delta gets the allocation change.
  // With use_rdma (the lane policy chose RDMA) each piece's data is pulled
  // by its backend over RDMA; a piece whose RDMA transfer fails is redone
  // over UDP (counted in *info), so the caller sees no error from RDMA.
  // With `committed` (a one-piece write): the backend also commits the
  // inode's size/blocks/mtime when it holds the inode (one round trip);
  // *committed then gets the attributes, else its ino stays 0 and the
  // caller commits.
  Status write_data(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                    int64_t* blocks_delta, bool use_rdma = false, DataIoInfo* info = nullptr,
                    proto::InodeAttr* committed = nullptr, const RegisteredMem* mem = nullptr);
  // write_data + commit of size/mtime/blocks on the inode's owner: one
  // request when the write is one chunk piece whose backend holds the inode
  // too (the common case of a small write), two otherwise.
  Result<proto::InodeAttr> write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                                 bool use_rdma = false, DataIoInfo* info = nullptr,
                                 const RegisteredMem* mem = nullptr);
  // Reads [offset, offset+out.size()) into `out` (holes as zeros): chunk
  // pieces in parallel, each reply reassembled straight into its part of
  // `out` (one copy, from the packets). Does not clamp to the file size;
  // callers do. use_rdma/info as write_data (backends RDMA-WRITE into
  // registered buffers).
  Status read_into(uint64_t ino, uint64_t offset, std::span<uint8_t> out, bool use_rdma = false,
                   DataIoInfo* info = nullptr, const RegisteredMem* mem = nullptr);
  // The same into a new vector (tools and tests).
  Result<std::vector<uint8_t>> read_data(uint64_t ino, uint64_t offset, uint32_t len,
                                         bool use_rdma = false, DataIoInfo* info = nullptr);
  // Reads up to len bytes, clamped to the file's size.
  Result<std::vector<uint8_t>> read(uint64_t ino, uint64_t offset, uint32_t len);

  // ---- RDMA lane (frontends: options.rdma)
  // Rules (a)-(d) of the lane policy for this cluster and this client
  // (named `client`, its host name): kNone when RDMA may be used.
  NotRdmaReason rdma_availability(const std::string& client) const;
  RdmaPath* rdma_path() const { return rdma_.get(); }
  // The datagram lane in use: "UDP" or "DPDK" (and why DPDK was not used
  // when it was asked for: dpdk_fallback_reason()).
  const std::string& lane() const { return lane_; }
  Lane datagram_lane() const { return datagram_lane_; }
  const std::string& dpdk_fallback_reason() const { return dpdk_fallback_; }
  Result<proto::ClusterMap> rdma_config(bool enable, const std::string& client);
  // Users (admin roles; user_token also for one's own name).
  Result<proto::UserRecord> whoami();
  Result<proto::Credentials> user_add(const proto::UserRecord& u);
  Result<std::vector<proto::UserRecord>> user_list();
  Status user_delete(const std::string& name);
  Result<proto::Credentials> user_token(const std::string& name);
  // The token in a kUserAdd/kUserToken reply, sealed for this caller's key.
  Result<proto::Credentials> open_sealed_token(const proto::TokenResp& t) const;
  const proto::Credentials& credentials() const { return *opts_.credentials; }
  // A backend container's staged data NICs (sent to the member named
  // `container`; kNotFound when the map has none by that name).
  Result<proto::ContainerNetResp> container_net(const std::string& container, const proto::ContainerNetReq& req);

 private:
  explicit ClusterClient(ClusterClientOptions o) : opts_(std::move(o)) {}
  template <class Resp, class Req>
  Result<Resp> meta_call(uint64_t route_ino, proto::Op op, const Req& req);
  template <class Resp, class Req>
  Result<Resp> meta_call_once(uint64_t route_ino, proto::Op op, const Req& req);
  template <class Resp, class Req>
  Result<Resp> mgmt_call(proto::Op op, const Req& req);
  NetAddr mgmt_addr() const;

 public:
  struct RdmaPiece;  // one chunk piece of a data call (cluster_io.cc)

 private:
  // `at`: the piece's bytes in the caller's memory, used in place when they
  // lie in `mem` (registered with the current lane).
  bool prepare_rdma(RdmaPiece& p, const RegisteredMem* mem, const uint8_t* at);
  // HA: gives every RPC client the paths to every member of map_.
  void update_paths(const proto::ClusterMap& m);

  std::unique_ptr<RdmaPath> rdma_;
  std::string lane_ = "UDP", dpdk_fallback_;
  Lane datagram_lane_ = Lane::kUdp;

  ClusterClientOptions opts_;
  std::unique_ptr<rpc::RpcClient> rpc_;  // set once connected
  mutable std::mutex mu_;
  std::shared_ptr<const proto::ClusterMap> map_ = std::make_shared<const proto::ClusterMap>();
  NetAddr contact_;  // the backend that answered first
};

}  // namespace lanefs::client
