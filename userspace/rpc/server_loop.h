// Internal to rpc/: one server loop — a transport (UDP: one socket of the
// server's SO_REUSEPORT group), the sessions steered to it, their slots and
// reply caches, and the requests executing for them (ServerCall). Runs on
// its own thread; handlers run inline on it.
//
// Threading: everything is owned by the loop thread except the inbox of
// sessions opened for it by loop 0, the completion queue of deferred work,
// the fault switch and the sessions listing (each under its own mutex).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rpc/loop.h"
#include "rpc/rpc.h"

namespace lanefs::rpc {

enum class SlotState : uint8_t { kEmpty, kReceiving, kExecuting, kDone };

// One request slot of a session: the request being assembled or executed,
// then its complete response (the reply cache entry) until the client
// reuses the slot for a newer request id.
struct Slot {
  uint64_t req_id = 0;
  SlotState state = SlotState::kEmpty;
  uint16_t opcode = 0;
  uint16_t req_pkts = 0;
  uint32_t got_count = 0;
  uint16_t last_gen = 0;
  bool resent = false;     // a packet of it carried kFlagResent
  uint32_t reserved = 0;   // reassembly memory held (ServerLoop::reserve), while receiving
  uint32_t frag_len = 0;   // the length of every fragment but the last (0: none seen yet)
  uint32_t last_off = ~0u; // where the last fragment started (~0: not seen yet)
  MsgBuffer req;           // reassembly (capacity circulates with the calls)
  std::vector<bool> got;
  MsgBuffer resp;          // the reply cache entry
  uint16_t resp_pkts = 0;
};

struct Session {
  uint32_t id = 0;
  NetAddr peer;          // where the client's latest packet came from (HA: its path)
  NetAddr local;         // which of our addresses it went to (replies leave from there)
  NetAddr connect_from;  // the address its connect came from
  uint64_t nonce = 0;
  uint64_t client_id = 0;  // from the connect (RequestInfo::client_id)
  std::string name;
  std::vector<Slot> slots;
  // The loop thread stores it per packet; the connect path reads it to
  // pick a session to reclaim (RpcServer::Impl::admit).
  std::atomic<uint64_t> last_active_ns{0};
  uint64_t reassembly = 0;  // bytes its receiving slots reserved
  uint32_t per_packet = 0;  // response payload bytes per packet (agreed at connect)
  uint32_t push = 0;        // response packets sent at completion unasked
  bool single = false;      // the client reads raw frames: no coalesced datagrams to it
  uint32_t auth_epoch = 0;  // RpcServer::Impl::auth_epoch when it was set up
  std::shared_ptr<const proto::UserRecord> principal;  // what it runs as (null: no authentication)
  // Keyed (authenticated with a shared key): every packet either way
  // carries a MAC under it; ours are numbered by tx_seq, the client's
  // checked against rx_window.
  std::unique_ptr<proto::SessionMac> mac;
  uint64_t tx_seq = 0;
  proto::ReplayWindow rx_window;
};

class ServerLoop {
 public:
  ServerLoop(RpcServer::Impl& server, uint32_t index) : server_(server), index_(index) {}
  ~ServerLoop();
  Status open(const transport::TransportConfig& tc);
  Status start(int cpu);  // starts the thread (pinned to cpu, -1: not pinned)
  void stop();

  // ---- any thread
  void post_session(std::unique_ptr<Session> s);  // loop 0 opened it for this loop
  void post_reclaim(uint32_t sid);                // drop this idle session (admit())
  uint64_t reassembly_bytes() const { return reassembly_bytes_.load(std::memory_order_relaxed); }
  void post_completion(ServerCall* c);            // deferred work finished
  void set_faults(const transport::FaultConfig& f);
  std::vector<std::pair<std::string, NetAddr>> sessions() const;
  uint32_t session_count() const { return n_sessions_.load(std::memory_order_relaxed); }
  const RpcCounters& counters() const { return counters_; }
  NetAddr local_addr() const { return local_; }
  std::vector<NetAddr> local_addrs() const { return locals_; }
  uint32_t payload_per_packet() const { return per_packet_; }
  uint32_t max_datagram() const { return max_datagram_; }
  uint32_t index() const { return index_; }

  // ---- a worker thread: runs a deferred call's work and hands it back to its loop
  static void run_deferred(ServerCall& c);
  static bool priority_of(const ServerCall& c) { return c.priority_; }

  // ---- loop thread
  void finish(ServerCall& c);
  void defer(ServerCall& c);

 private:
  void run();
  void on_packet(NetAddr src, const proto::PacketHeader& h, std::span<const uint8_t> payload, bool bad_version);
  // server_connect.cc: the cookie challenge, authentication, a new session.
  void on_connect(NetAddr src, const proto::PacketHeader& h, std::span<const uint8_t> payload);
  void challenge(NetAddr src, const proto::PacketHeader& h);
  void reject(NetAddr src, const proto::PacketHeader& h, Errc code, std::string_view why);
  void on_request(Session& s, const proto::PacketHeader& h, std::span<const uint8_t> payload);
  void on_rfr(Session& s, const proto::PacketHeader& h);
  void execute(Session& s, uint32_t slot_index);
  // `keyed`: a packet of that session (a MAC under its key when it has one).
  void send_simple(NetAddr dst, proto::PktType type, uint32_t sid, uint64_t rid, uint16_t pkt_num,
                   uint16_t pkt_count, uint16_t gen, std::span<const uint8_t> body = {}, bool single = false,
                   Session* keyed = nullptr);
  void send_response_pkt(Session& s, Slot& sl, uint16_t j, uint16_t gen);
  void reset_slot(Slot& sl, const proto::PacketHeader& h);
  void erase_session(std::unordered_map<uint32_t, std::unique_ptr<Session>>::iterator it);
  Session* find_session(uint32_t sid);
  bool drain_inbox();
  void drop_reclaimed();
  // Reassembly memory for a request of `h.msg_len` bytes in `sl`, under
  // the session's and this loop's limits; false: over one, nothing taken.
  bool reserve(Session& s, Slot& sl, const proto::PacketHeader& h);
  void unreserve(Session& s, Slot& sl);
  size_t drain_completions();
  void gc_sessions(uint64_t now);
  ServerCall* take_call();
  void recycle(ServerCall* c);

  RpcServer::Impl& server_;
  const uint32_t index_;
  RpcCounters counters_;
  std::unique_ptr<LoopCore> core_;
  std::unique_ptr<LoopAttachment> attach_;
  NetAddr local_;
  std::vector<NetAddr> locals_;
  uint32_t per_packet_ = 0, max_datagram_ = 0;
  NetAddr reply_from_;  // the local address of the packet being handled
  std::thread thread_;
  std::atomic<bool> stop_{false};

  std::unordered_map<uint32_t, std::unique_ptr<Session>> sessions_;  // loop thread; writes under sess_mu_
  mutable std::mutex sess_mu_;
  std::atomic<uint32_t> n_sessions_{0};
  uint64_t last_gc_ns_ = 0;
  std::atomic<uint64_t> reassembly_bytes_{0};  // reserved by this loop's sessions (written by the loop thread)

  std::mutex inbox_mu_;
  std::vector<std::unique_ptr<Session>> inbox_;
  std::vector<uint32_t> reclaims_;  // sessions to drop (post_reclaim)
  std::vector<uint32_t> drop_;      // taken from reclaims_, dropped by the loop (loop thread)
  std::atomic<bool> inbox_flag_{false};

  std::mutex cq_mu_;
  std::vector<ServerCall*> completions_, completing_;
  std::atomic<bool> cq_flag_{false};

  std::vector<std::unique_ptr<ServerCall>> calls_;  // every call object this loop made
  std::vector<ServerCall*> free_calls_;

  std::mutex fault_mu_;
  transport::FaultConfig pending_faults_;
  std::atomic<bool> faults_changed_{false};
};

}  // namespace lanefs::rpc
