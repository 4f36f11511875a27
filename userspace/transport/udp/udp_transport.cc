// UdpTransport control path: socket setup, offload probes, reuseport groups.
// The data path (tx_burst, rx_burst) is in udp_transport_datapath.cc.
#include "transport/udp/udp_transport.h"

#include <ifaddrs.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "transport/udp/udp_addr.h"

namespace lanefs::transport {
namespace {

constexpr uint32_t kDefaultSocketBuffer = 8u << 20;
// recvmmsg takes at most UIO_MAXIOV messages per call.
constexpr uint32_t kMaxRxBatch = 1024;

class PlainRegion final : public MemRegion {
 public:
  PlainRegion(void* addr, size_t len) : MemRegion(addr, len) {}
};

// Sets a socket buffer size: the *FORCE variant ignores rmem_max/wmem_max but
// needs CAP_NET_ADMIN; without it the plain option is capped by the kernel.
Status set_buffer(int fd, int force_opt, int opt, const char* name, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return ok_status();
  if (setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes) == 0) return ok_status();
  return sys_error(std::string("setsockopt ") + name, errno);
}

// The MTU of the interface that owns `ip` (host order), 0 when unknown
// (for example a socket bound to 0.0.0.0).
uint32_t interface_mtu(uint32_t ip) {
  if (ip == 0) return 0;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  uint32_t mtu = 0;
  for (ifaddrs* i = list; i != nullptr && mtu == 0; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (ntohl(sin->sin_addr.s_addr) != ip) continue;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) break;
    ifreq req{};
    std::strncpy(req.ifr_name, i->ifa_name, IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFMTU, &req) == 0 && req.ifr_mtu > 0) mtu = static_cast<uint32_t>(req.ifr_mtu);
    close(s);
  }
  freeifaddrs(list);
  return mtu;
}

// A kernel without an offload refuses it on every socket: say so once per
// process, not once per socket.
std::atomic<bool> g_gso_probe_logged{false}, g_gro_probe_logged{false};

}  // namespace

Result<std::unique_ptr<UdpTransport>> UdpTransport::create(const TransportConfig& config) {
  std::unique_ptr<UdpTransport> t(new UdpTransport());
  LANEFS_TRY(t->open(config));
  return t;
}

Status UdpTransport::open(const TransportConfig& config) {
  max_datagram_ = config.mtu == 0 ? kDefaultDatagram : std::min(config.mtu, kMaxUdpPayload);
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return sys_error("socket", errno);

  int bytes = static_cast<int>(std::min<uint32_t>(
      config.socket_buffer ? config.socket_buffer : kDefaultSocketBuffer, 1u << 30));
  LANEFS_TRY(set_buffer(fd_, SO_RCVBUFFORCE, SO_RCVBUF, "SO_RCVBUF", bytes));
  LANEFS_TRY(set_buffer(fd_, SO_SNDBUFFORCE, SO_SNDBUF, "SO_SNDBUF", bytes));

  if (!config.bind_device.empty() &&
      setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, config.bind_device.c_str(),
                 static_cast<socklen_t>(config.bind_device.size())) != 0)
    return sys_error("setsockopt SO_BINDTODEVICE " + config.bind_device, errno);
  const bool group = config.reuseport_group > 1;
  if (group) {
    int one = 1;
    if (setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      return sys_error("setsockopt SO_REUSEPORT", errno);
  }
  sockaddr_in sa = to_sockaddr(config.bind);
  if (bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
    return sys_error("bind " + config.bind.to_string(), errno);
  socklen_t sl = sizeof sa;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &sl) != 0)
    return sys_error("getsockname", errno);
  local_ = from_sockaddr(sa);
  // Datagrams as large as the bound interface carries without IP
  // fragmentation (IPv4 20 + UDP 8 bytes of headers): 1472 on Ethernet,
  // 8972 with jumbo frames, ~64 KiB on loopback. Peers agree on the
  // smaller of their sizes when a session opens. GSO segments follow the
  // same rule whatever mtu says: a segment must fit the route's MTU.
  const uint32_t mtu = interface_mtu(local_.ip);
  if (config.mtu == 0 && mtu > 28)
    max_datagram_ = std::clamp<uint32_t>(mtu - 28, kDefaultDatagram, kMaxUdpPayload);
  gso_max_seg_ = mtu > 28 ? std::min(mtu - 28, kMaxUdpPayload) : kDefaultDatagram;
  if (group && config.reuseport_index == 0) LANEFS_TRY(attach_steering(config.reuseport_group));

  setup_offloads(config);
  setup_rx(config.rx_batch);
  return ok_status();
}

// The steering program, classic BPF:  A = payload[kSteerOffset]; A %= group;
// return A. The offset is into the UDP payload because the kernel moves the
// packet's data pointer past the UDP header before running it: UDP's lookup
// calls reuseport_select_sock(sk, hash, skb, sizeof(struct udphdr))
// (net/ipv4/udp.c, lookup_reuseport), and run_bpf_filter() in
// net/core/sock_reuseport.c does pskb_pull(skb, hdr_len) ("temporarily
// advance data past protocol header") before bpf_prog_run_save_cb() and
// pushes it back after. A returned index >= the number of sockets in the
// group makes the kernel fall back to its hash; a load past the end of a
// short datagram ends the program with 0 (member 0).
Status UdpTransport::attach_steering(uint32_t group) {
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, kSteerOffset),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, group),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
  if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0) {
    const int err = errno;
    return make_error(Errc::kNotSupported,
                      "setsockopt SO_ATTACH_REUSEPORT_CBPF (session steering for a reuseport "
                      "group of " + std::to_string(group) + " on " + local_.to_string() +
                          "): " + std::strerror(err));
  }
  return ok_status();
}

// Probes the kernel's UDP offloads on this socket. UDP_SEGMENT is set per
// message (a control message in sendmmsg), so the probe sets the socket-wide
// size to 0 (off): a kernel without GSO says ENOPROTOOPT here, whereas it
// would silently ignore the control message and send one huge datagram.
void UdpTransport::setup_offloads(const TransportConfig& config) {
  if (config.gso == UdpOffload::kAuto) {
    int zero = 0;
    if (setsockopt(fd_, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0) {
      gso_ = true;
    } else {
      const int err = errno;
      ++stats_.gso_fallbacks;
      if (!g_gso_probe_logged.exchange(true))
        LOG_WARN("udp transport: setsockopt UDP_SEGMENT: {}; sending without GSO",
                 std::strerror(err));
    }
  }
  // A reuseport group steers each message by its first datagram, and GRO
  // coalesces one sender's datagrams whatever their session: off in a group.
  if (config.gro == UdpOffload::kAuto && config.reuseport_group <= 1) {
    int one = 1;
    if (setsockopt(fd_, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) {
      gro_ = true;
    } else {
      const int err = errno;
      ++stats_.gso_fallbacks;
      if (!g_gro_probe_logged.exchange(true))
        LOG_WARN("udp transport: setsockopt UDP_GRO: {}; receiving without GRO",
                 std::strerror(err));
    }
  }
  stats_.gso_active = gso_;
  stats_.gro_active = gro_;
}

// Receive side: fixed buffers and headers wired once; rx_burst only resets
// the fields the kernel overwrites.
void UdpTransport::setup_rx(uint32_t rx_batch) {
  rx_batch_ = std::min(rx_batch == 0 ? uint32_t{kBatch} : rx_batch, kMaxRxBatch);
  rx_slot_ = gro_ ? kGroSlot : size_t{max_datagram_} + 1;
  rx_buf_.reset(new uint8_t[rx_batch_ * rx_slot_]);
  rx_msgs_.assign(rx_batch_, mmsghdr{});
  rx_iov_.resize(rx_batch_);
  rx_addr_.resize(rx_batch_);
  rx_ctrl_.resize(gro_ ? rx_batch_ : 0);
  rx_seg_.assign(rx_batch_, 0);
  for (size_t i = 0; i < rx_batch_; ++i) {
    rx_iov_[i] = {rx_buf_.get() + i * rx_slot_, rx_slot_};
    msghdr& h = rx_msgs_[i].msg_hdr;
    h.msg_name = &rx_addr_[i];
    h.msg_iov = &rx_iov_[i];
    h.msg_iovlen = 1;
    if (gro_) h.msg_control = &rx_ctrl_[i];
  }
  for (size_t i = 0; i < kBatch; ++i) {
    tx_msgs_[i].msg_hdr.msg_name = &tx_addr_[i];
    tx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
  }
}

UdpTransport::~UdpTransport() {
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<MemRegion>> UdpTransport::register_memory(void* addr, size_t len) {
  if (addr == nullptr && len > 0)
    return make_error(Errc::kInvalid, "register_memory: null address");
  return std::unique_ptr<MemRegion>(new PlainRegion(addr, len));
}

}  // namespace lanefs::transport
