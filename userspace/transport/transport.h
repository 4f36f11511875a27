// The transport seam: how protocol datagrams leave and enter this process.
//
// One interface for every lane (kernel UDP, in-process loopback, later DPDK
// and RDMA). A transport moves whole datagrams (one protocol packet each, at
// most max_datagram() bytes); it adds no reliability, ordering or framing:
// the RPC layer (userspace/rpc) does that. Implementations are chosen at run
// time by make_transport(); callers never downcast.
//
// Threading: a Transport is owned and driven by exactly one event-loop
// thread. None of its methods are thread-safe unless stated; the loopback
// hub (LoopbackHub) is the only shared object and is thread-safe.
//
// Blocking: no method blocks. Waiting happens outside, on notify_fd().
//
// Errors: methods return Result; a failed tx/rx burst reports a system error
// (naming the failing call). Packets a transport cannot deliver (no route,
// buffer full) are dropped and counted, never reported per packet: loss is
// the RPC layer's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/net_addr.h"
#include "common/result.h"

namespace lanefs::transport {

enum class TransportKind : uint8_t { kUdp, kLoopback, kDpdk, kRdma };
std::string_view transport_kind_name(TransportKind kind) noexcept;  // "udp", ...

// One datagram to send, as a gather of up to three parts sent back to back:
// head, then body, then body2 (for example the protocol header, an encoded
// op header, and the caller's data), so the RPC layer never copies a payload
// just to prepend headers. Any part may be empty (its pointer may then be
// null); the datagram is head_len + body_len + body2_len bytes, and that sum
// is what max_datagram() limits. Every transport sends exactly these bytes
// in this order (the kernel lane gathers them with iovecs, the others copy
// them into one buffer). The pointers only need to stay valid for the
// duration of tx_burst(); a transport that keeps a datagram longer (fault
// delay, DPDK waiting for ARP, RDMA waiting for its connection) keeps its
// own copy of every part.
struct TxDatagram {
  NetAddr dst;
  const uint8_t* head = nullptr;
  uint32_t head_len = 0;
  const uint8_t* body = nullptr;
  uint32_t body_len = 0;
  // The local address to send from (a multi-homed transport's leg); 0: the
  // transport's primary address (local_addr()).
  NetAddr src{};
  // The third part, sent after body (last in the struct so that the
  // positional initialisers of two-part datagrams stay valid).
  const uint8_t* body2 = nullptr;
  uint32_t body2_len = 0;
  // The receiver reads raw frames (a DPDK peer): never coalesce this
  // datagram with others (UDP GSO would hand it a frame larger than the MTU
  // on a link that does not segment, such as a veth).
  bool single = false;

  // head_len + body_len + body2_len, without overflow.
  uint64_t size() const { return uint64_t{head_len} + body_len + body2_len; }
};

// Copies the datagram's parts back to back into `out` (at least d.size()
// bytes); returns the number of bytes written.
inline size_t copy_datagram(const TxDatagram& d, uint8_t* out) {
  size_t off = 0;
  if (d.head_len) std::memcpy(out, d.head, d.head_len);
  off += d.head_len;
  if (d.body_len) std::memcpy(out + off, d.body, d.body_len);
  off += d.body_len;
  if (d.body2_len) std::memcpy(out + off, d.body2, d.body2_len);
  return off + d.body2_len;
}

// One received datagram. `data` points into the transport's own receive
// buffers and stays valid until the next rx_burst() call on the same
// transport (or its destruction). Copy what must outlive that.
struct RxDatagram {
  NetAddr src;
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  // The local address it arrived on (a multi-homed transport's leg); 0
  // from transports with one address.
  NetAddr dst{};
};

// Opaque registered memory. For UDP and loopback it records the range only;
// RDMA keeps its memory region and keys behind it, DPDK its external-buffer
// registration. Callers use it as a token and never look inside.
class MemRegion {
 public:
  virtual ~MemRegion() = default;
  void* addr() const { return addr_; }
  size_t length() const { return len_; }

 protected:
  MemRegion(void* addr, size_t len) : addr_(addr), len_(len) {}

 private:
  void* addr_;
  size_t len_;
};

// Counters every transport keeps (monotonic; read from the owning thread).
struct TransportStats {
  uint64_t tx_packets = 0, tx_bytes = 0, tx_dropped = 0;
  uint64_t rx_packets = 0, rx_bytes = 0, rx_truncated = 0;
  // DPDK: datagrams that arrived on a queue other than the endpoint's own
  // (handed over in software by whoever polled it).
  uint64_t rx_off_queue = 0;
  // DPDK (not counters): the endpoint's home RX/TX queue pair and how many
  // pairs its port has.
  uint32_t queue = 0, queues = 1;
  // Filled by the fault-injection layer when it is on.
  uint64_t fault_dropped = 0, fault_duplicated = 0, fault_delayed = 0;
  uint64_t fault_reordered = 0, fault_corrupted = 0;
  // Kernel UDP lane batching (TransportConfig::gso / gro):
  //   tx_gso_sends     sendmsgs that carried more than one datagram as UDP
  //                    GSO segments (one skb the kernel or NIC cuts up);
  //   tx_gso_segments  the datagrams those carried;
  //   rx_gro_messages  received messages holding more than one datagram
  //                    coalesced by the kernel (UDP_GRO), split again here;
  //   rx_gro_segments  the datagrams those held;
  //   gso_fallbacks    times the kernel refused GSO or GRO and the socket
  //                    turned it off for good (each is logged once).
  // tx_packets / rx_packets count datagrams whichever way they went.
  uint64_t tx_gso_sends = 0, tx_gso_segments = 0;
  uint64_t rx_gro_messages = 0, rx_gro_segments = 0;
  uint64_t gso_fallbacks = 0;
  // Not counters: whether the socket sends with GSO / receives with GRO
  // now (multi-homed: on every leg).
  bool gso_active = false, gro_active = false;
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual TransportKind kind() const noexcept = 0;
  // The address peers send to (after binding: the real port if 0 was asked).
  virtual NetAddr local_addr() const noexcept = 0;
  // Every local address (legs of a multi-homed transport; the first is
  // local_addr()).
  virtual std::vector<NetAddr> local_addrs() const { return {local_addr()}; }
  // Largest datagram (header + payload) this transport carries.
  virtual uint32_t max_datagram() const noexcept = 0;

  // Sends up to pkts.size() datagrams; returns how many were taken (sent or
  // dropped-and-counted). Fewer than asked means "ring full, try again".
  virtual Result<size_t> tx_burst(std::span<const TxDatagram> pkts) = 0;
  // Receives up to out.size() datagrams without blocking; 0 when none wait.
  // Invalidates the datagrams returned by the previous call.
  virtual Result<size_t> rx_burst(std::span<RxDatagram> out) = 0;

  // A file descriptor that becomes readable (EPOLLIN) when rx_burst() may
  // return data. Valid for the transport's lifetime; never closed by callers.
  virtual int notify_fd() const noexcept = 0;
  // Must be called before sleeping on notify_fd(): re-enables the wake-up
  // (RX interrupt, CQ event). After it returns, poll rx_burst() once more
  // before sleeping so a datagram that raced the arm is not missed.
  virtual Status arm_notify() = 0;
  // True when the transport holds work that needs another call soon even
  // without a wake-up (delayed fault-injection packets): sleep briefly.
  virtual bool has_pending() const noexcept { return false; }
  // True for a lane driven by busy polling (DPDK, dedicated_mode=full): the
  // owner never sleeps on notify_fd(); an idle turn of its loop only yields
  // the CPU to the other threads sharing it.
  virtual bool busy_polls() const noexcept { return false; }

  // Registers memory for zero-copy use by this transport.
  virtual Result<std::unique_ptr<MemRegion>> register_memory(void* addr, size_t len) = 0;

  virtual const TransportStats& stats() const noexcept = 0;
};

class LoopbackHub;  // loopback/loopback_transport.h

// Fault injection, per endpoint, applied to the datagrams it sends.
// Percentages 0..100. Used by tests and by
// `lanefsd --fault`. Delay holds a datagram for delay_us before it leaves.
struct FaultConfig {
  double drop_pct = 0, duplicate_pct = 0, reorder_pct = 0, corrupt_pct = 0, delay_pct = 0;
  uint32_t delay_us = 1000;
  uint64_t seed = 1;
  bool any() const { return drop_pct > 0 || duplicate_pct > 0 || reorder_pct > 0 ||
                            corrupt_pct > 0 || delay_pct > 0; }
};
// Parses "drop=10,dup=5,reorder=2,corrupt=1,delay=5,delay_us=2000,seed=7".
Result<FaultConfig> parse_fault_config(std::string_view text);

// The DPDK lane (transport/dpdk/): one port driven from user space with its
// own Ethernet/IPv4/UDP and ARP. Address fields are host order.
struct DpdkConfig {
  // A DPDK device: a virtual device spec ("net_tap0,iface=dtap0",
  // "net_memif0,role=server,socket=/run/x.sock", "net_af_packet0,iface=eth1")
  // or a PCI address.
  std::string port;
  uint32_t ip = 0;           // this endpoint's address on the port
  uint8_t prefix_bits = 24;  // its subnet
  uint32_t gateway = 0;      // next hop for peers outside the subnet (0: none)
  // Sleep on RX interrupts (dedicated_mode=none) instead of busy polling
  // (dedicated_mode=full). kNotSupported when the driver has none.
  bool interrupt_mode = false;
  bool no_huge = true;       // EAL --no-huge (anonymous memory)
  uint32_t memory_mb = 256;  // EAL -m
  // RX/TX queue pairs to open the port with (a frontend: one per core);
  // the port's first endpoint decides, the driver's maximum caps it, and
  // net_memif always has one (its ring count is a contract with the peer).
  uint16_t queues = 1;
};

// UDP lane offloads: kAuto uses one when the kernel has it (probed when the
// socket is created; a later refusal turns it off for that socket, see
// TransportStats::gso_fallbacks); kOff never uses it.
enum class UdpOffload : uint8_t { kAuto, kOff };

struct TransportConfig {
  TransportKind kind = TransportKind::kUdp;
  // Address to bind (UDP: ip and port, port 0 = any free port).
  NetAddr bind;
  // More local addresses, one leg each (HA: one per NIC; UDP): the
  // transport receives on all of them and sends from the one a datagram's
  // `src` names. A leg's port 0 takes bind's (real) port when free.
  std::vector<NetAddr> extra_binds;
  // UDP: the interface to bind the socket to (SO_BINDTODEVICE), so its
  // datagrams leave by that NIC whatever the routes say; "" = routing
  // decides. make_transport sets it for every leg of a multi-homed one.
  std::string bind_device;
  // Datagram size limit; 0 = the transport's default. UDP: the MTU of the
  // interface owning the bound address minus 28 header bytes (65507 on
  // loopback, 8972 with jumbo frames), 1472 when bound to 0.0.0.0.
  uint32_t mtu = 0;
  // Loopback only: the in-process network to attach to (required).
  std::shared_ptr<LoopbackHub> hub;
  // Optional fault injection wrapped around the transport.
  FaultConfig faults;
  // Socket buffer size hint in bytes for kernel transports (0 = 8 MiB).
  uint32_t socket_buffer = 0;
  // kDpdk only (bind.port is the UDP port; bind.ip must equal dpdk.ip or be 0).
  DpdkConfig dpdk;
  // kDpdk: more ports, one HA leg each (an endpoint at that port's ip), as
  // extra_binds is for UDP.
  std::vector<DpdkConfig> extra_dpdk;

  // UDP: segmentation offload on send (UDP_SEGMENT). Within one tx_burst(),
  // a run of consecutive datagrams with the same dst, the same src, the same
  // session field (bytes 8..11, see reuseport_steer: the kernel steers a GSO
  // packet as a whole, by its first datagram) and equal sizes (the last may
  // be smaller) leaves as one sendmsg of up to 64 segments and 65507 bytes;
  // the receiver sees the same datagrams either way. Put a destination's
  // datagrams next to each other to benefit.
  UdpOffload gso = UdpOffload::kAuto;
  // UDP: receive offload (UDP_GRO): the kernel may hand over several
  // datagrams of one sender as one message; rx_burst() splits it again, so
  // callers see the same datagrams either way. kAuto is off in a reuseport
  // group (reuseport_group > 1): a coalesced message is steered by its first
  // datagram, which would mix sessions of one client flow across sockets.
  UdpOffload gro = UdpOffload::kAuto;
  // UDP: messages one receive call takes (recvmmsg slots); 0 = 64. Memory:
  // each slot holds a whole message, max_datagram() + 1 bytes, or 64 KiB
  // when GRO is on, so a socket reserves rx_batch x 64 KiB at most (4 MiB
  // at the default). A server loop wants the default; a socket per calling
  // thread that expects a handful of replies wants 4..16 (fewer datagrams
  // per system call, far less memory). The memory is reserved, not touched:
  // pages are used as messages fill them.
  uint32_t rx_batch = 0;
  // UDP: several sockets on one address, one per server loop (SO_REUSEPORT),
  // with each datagram steered by its session id: socket
  // reuseport_steer(session_id, reuseport_group) gets it, whatever the
  // sender's address (HA paths change it). 0 or 1: no group. Other lanes
  // refuse a group > 1 with kNotSupported.
  // Order: member 0 is created first (bind.port 0 picks a port) and attaches
  // the steering program; members 1..group-1 are created after it, bound to
  // its real addresses (reuseport_member_config() builds their configs).
  // Until every member exists, datagrams for a missing one go to any member
  // (the kernel's hash). Closing a member renumbers the group (the kernel
  // moves its last socket into the hole): close and rebuild the whole group.
  // With extra_binds, every leg is a group of its own, with the same index
  // on every leg. Creating member 0 fails with kNotSupported, naming the
  // call, if the kernel refuses the steering program.
  uint32_t reuseport_group = 0;
  uint32_t reuseport_index = 0;
};

// The byte of a datagram that reuseport steering reads: UDP payload offset
// 8, the low byte of the lanefs packet header's little-endian session_id
// (proto/wire.h). Datagrams shorter than 9 bytes go to member 0.
inline constexpr uint32_t kSteerOffset = 8;
// The group member a datagram of `session_id` reaches: (session_id & 0xff)
// % group (0 for group 0 or 1). Session id 0 (connect requests) lands on
// member 0. A server picks session ids for a loop with it.
constexpr uint32_t reuseport_steer(uint32_t session_id, uint32_t group) noexcept {
  return group <= 1 ? 0 : (session_id & 0xffu) % group;
}
// The config of group member `index` (1..reuseport_group-1): `first` (member
// 0's config) bound to the real addresses of `member0`, the transport made
// from it, on every leg.
TransportConfig reuseport_member_config(const TransportConfig& first, const Transport& member0,
                                        uint32_t index);

// Creates a transport. Lanes not built in (or not yet implemented) fail with
// kNotSupported and a message naming the lane.
Result<std::unique_ptr<Transport>> make_transport(const TransportConfig& config);

}  // namespace lanefs::transport
