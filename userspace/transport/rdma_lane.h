// The RDMA seam: one-sided data movement for large IOs, and the RDMA
// datagram transport used by make_transport(kRdma).
//
// lanefs moves the *data* of large IOs with one-sided RDMA while the request
// and the response stay on the UDP (or DPDK) lane:
//   - large read:  the client leases a registered buffer, names it in the
//     request (RemoteBuffer); the backend RDMA-WRITEs the data into it, then
//     answers on the UDP lane.
//   - large write: the client copies the data into a leased registered buffer
//     and names it; the backend RDMA-READs it, persists, then answers.
// The backend knows the client's RDMA connection by the 64-bit token the
// client presented when it connected (RdmaLane::connect() returns it; the
// client puts it in every RDMA-carrying request).
//
// Implemented in rdma/ on rdma-core (librdmacm for connection setup, RC queue
// pairs, one completion channel per lane drained by the lane's own thread:
// get event -> re-arm -> drain -> ack). When lanefs is built without
// rdma-core, every factory here answers kNotSupported (stub), so callers carry
// no #ifdef.
//
// Threading: an RdmaLane is thread-safe: any thread may connect, lease,
// read_remote/write_remote concurrently; one-sided calls block the calling
// thread until the work completion arrives (or the timeout passes).
// Errors: every failed verbs/rdmacm call names the call. A connection whose
// QP went to the error state (flush errors, device removal, peer gone) is
// dropped; later calls on its token fail with kUnreachable. Callers treat
// any error from this seam as "redo the IO on the UDP lane" and count it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/net_addr.h"
#include "common/result.h"
#include "transport/transport.h"

namespace lanefs::transport {

// Link layer of an RDMA port; the lane policy refuses mixed fabrics.
enum class LinkLayer : uint8_t { kNone = 0, kInfiniBand = 1, kEthernet = 2 };
// "none", "infiniband", "ethernet"
inline std::string_view link_layer_name(LinkLayer l) noexcept {
  switch (l) {
    case LinkLayer::kInfiniBand: return "infiniband";
    case LinkLayer::kEthernet: return "ethernet";
    case LinkLayer::kNone: break;
  }
  return "none";
}

// One RDMA device port as seen by this host.
struct RdmaDeviceInfo {
  std::string device;   // "rxe0", "mlx5_0"
  uint8_t port = 1;
  std::string netdev;   // "va", "ens1f0" ("" for InfiniBand without IPoIB)
  LinkLayer link = LinkLayer::kNone;
  bool active = false;  // port state ACTIVE
};

// Every RDMA device port on this host (empty without devices or without
// rdma-core support). Never fails hard: errors reading one device skip it.
std::vector<RdmaDeviceInfo> list_rdma_devices();

// The RDMA device port that owns local IPv4 address `ip` (host order), found
// the way rdma_cm would (bind to the address, read the resolved device).
// kNotFound when no RDMA device serves that address, kNotSupported without
// rdma-core.
Result<RdmaDeviceInfo> rdma_device_for_ip(uint32_t ip);

// Client memory a backend may access: address, remote key and length.
// Carried in requests (proto::RdmaDesc); meaningless outside the connection
// whose token travels with it.
struct RemoteBuffer {
  uint64_t addr = 0;
  uint32_t rkey = 0;
  uint32_t len = 0;
};

// A registered buffer leased from a lane's pool. Returned to the pool on
// destruction. data() is valid for size() bytes (>= the length asked).
class RdmaBuffer {
 public:
  virtual ~RdmaBuffer() = default;
  virtual uint8_t* data() noexcept = 0;
  virtual size_t size() const noexcept = 0;
  // The descriptor for the first `len` bytes (len <= size()).
  virtual RemoteBuffer remote(uint32_t len) const noexcept = 0;
};

// Counters of one lane (monotonic, readable from any thread).
struct RdmaLaneStats {
  uint64_t connections = 0;        // connections established (both directions)
  uint64_t connection_errors = 0;  // connect failures, disconnects, QP errors
  uint64_t reads = 0, read_bytes = 0;    // one-sided READs completed OK
  uint64_t writes = 0, write_bytes = 0;  // one-sided WRITEs completed OK
  uint64_t op_errors = 0;          // work completions with an error status, timeouts
  uint64_t mr_registrations = 0, mr_cache_hits = 0;
};

struct RdmaLaneConfig {
  // Server: the address rdma_cm listens on (port 0: any; see local_addr()).
  // Client: the local (source) address connections bind to (port ignored);
  // ip 0 lets rdma_cm pick by route.
  NetAddr bind;
  bool listen = false;
  // Registered buffer pool: buffers of buffer_bytes each, at most
  // max_buffers leased at once (lease() waits up to the op timeout, then
  // fails with kBusy).
  uint32_t buffer_bytes = 1u << 20;
  uint32_t max_buffers = 64;
  // One-sided operation and connection-setup timeout.
  uint32_t timeout_ms = 10000;
  // RC retransmission timeout exponent (4.096 us * 2^n) and retry count put
  // on the QPs; soft-RoCE under load needs a long one (perftest -u 18).
  uint8_t qp_timeout = 18;
  uint8_t qp_retry_count = 7;
};

class RdmaLane {
 public:
  virtual ~RdmaLane() = default;

  // The device port this lane uses and its link layer.
  virtual const RdmaDeviceInfo& device() const noexcept = 0;
  // Server: the listening address (real port). Client: the bound source.
  virtual NetAddr local_addr() const noexcept = 0;

  // Client: connects to a listening lane at `peer` (or reuses the live
  // connection) and returns the token the peer knows this connection by.
  // Blocks up to timeout_ms. Thread-safe; concurrent callers for the same
  // peer share one connection.
  virtual Result<uint64_t> connect(NetAddr peer) = 0;
  // Client: forgets the connection to `peer` (next connect() makes a new one).
  virtual void disconnect(NetAddr peer) = 0;

  // Leases a registered buffer of at least `len` bytes (<= buffer_bytes).
  virtual Result<std::unique_ptr<RdmaBuffer>> lease(size_t len) = 0;
  // The same without waiting: kBusy at once when every buffer is leased
  // (a caller whose thread also runs the calls that would free one).
  virtual Result<std::unique_ptr<RdmaBuffer>> try_lease(size_t len) = 0;

  // Server: RDMA-WRITE `local` (inside a leased buffer) to `dst` over the
  // connection `token`; returns once the completion arrived.
  virtual Status write_remote(uint64_t token, const RdmaBuffer& local, uint32_t len,
                              const RemoteBuffer& dst) = 0;
  // Server: RDMA-READ `src` into the leased buffer `local`; returns once the
  // completion arrived (the data is then in local.data()).
  virtual Status read_remote(uint64_t token, RdmaBuffer& local, uint32_t len,
                             const RemoteBuffer& src) = 0;

  // Registers arbitrary memory through the lane's registration cache (a
  // range already covered by a cached registration is a hit). The region
  // stays valid until the lane is destroyed or the cache evicts it after
  // the returned handle is gone.
  virtual Result<std::shared_ptr<MemRegion>> register_cached(void* addr, size_t len) = 0;

  // Client: registers memory a backend then reads or writes in place (the
  // direct API's buffers: zero copies), outside the cache: deregistered
  // when the last handle goes, after which the caller may unmap it.
  // dmabuf_fd >= 0: the `len` bytes at `dmabuf_offset` of that dma-buf
  // (device memory, ibv_reg_dmabuf_mr), which the caller has mapped at
  // `addr` (backends address it there). kNotSupported when the device or
  // rdma-core cannot register dma-bufs; other errors name the verbs call.
  virtual Result<std::shared_ptr<MemRegion>> register_region(void* addr, size_t len, int dmabuf_fd,
                                                             uint64_t dmabuf_offset) = 0;
  // The descriptor of `len` bytes at `addr`, inside `region` (one this lane
  // registered); backends use it as they use a leased buffer's.
  virtual RemoteBuffer remote_of(const MemRegion& region, const void* addr, uint32_t len) const = 0;

  virtual RdmaLaneStats stats() const = 0;

  // False once the lane's device was removed (RDMA_CM_EVENT_DEVICE_REMOVAL):
  // every call then fails. Destroy the lane soon: that releases the device
  // (a soft-RoCE or hot-unplugged device cannot finish going away while a
  // process holds it open); make a new lane when the device is back.
  virtual bool alive() const noexcept = 0;
};

// Creates a lane on the RDMA device that owns config.bind.ip (or the route's
// device when ip is 0). kNotSupported without rdma-core, kNotFound without a
// device for that address.
Result<std::unique_ptr<RdmaLane>> make_rdma_lane(const RdmaLaneConfig& config);

// make_transport(kRdma): datagrams over RC queue pairs (SEND/RECV), one
// connection per peer made on first send; the same contract as every other
// Transport (transport.h). config.bind names the listening address.
Result<std::unique_ptr<Transport>> make_rdma_transport(const TransportConfig& config);

}  // namespace lanefs::transport
