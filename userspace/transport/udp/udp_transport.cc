#include "transport/udp/udp_transport.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lanefs::transport {
namespace {

constexpr uint32_t kDefaultSocketBuffer = 8u << 20;

class PlainRegion final : public MemRegion {
 public:
  PlainRegion(void* addr, size_t len) : MemRegion(addr, len) {}
};

sockaddr_in to_sockaddr(NetAddr a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(a.ip);
  sa.sin_port = htons(a.port);
  return sa;
}

NetAddr from_sockaddr(const sockaddr_in& sa) {
  return NetAddr{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}

// Errors that concern one destination or a momentarily full device queue:
// the datagram is lost, which the RPC layer recovers from, so count it and
// carry on with the rest of the burst. EINVAL is what Linux says for port 0.
bool per_datagram_send_error(int err) {
  switch (err) {
    case ENOBUFS:
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EPERM:
    case EACCES:
    case EMSGSIZE:
    case EADDRNOTAVAIL:
    case EINVAL:
      return true;
    default:
      return false;
  }
}

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
  sockaddr_in sa = to_sockaddr(config.bind);
  if (bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
    return sys_error("bind " + config.bind.to_string(), errno);
  socklen_t sl = sizeof sa;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &sl) != 0)
    return sys_error("getsockname", errno);
  local_ = from_sockaddr(sa);
  if (config.mtu == 0) {
    // Datagrams as large as the bound interface carries without IP
    // fragmentation (IPv4 20 + UDP 8 bytes of headers): 1472 on Ethernet,
    // 8972 with jumbo frames, ~64 KiB on loopback. Peers agree on the
    // smaller of their sizes when a session opens.
    uint32_t mtu = interface_mtu(local_.ip);
    if (mtu > 28) max_datagram_ = std::clamp<uint32_t>(mtu - 28, kDefaultDatagram, kMaxUdpPayload);
  }

  // Receive side: fixed buffers and headers wired once; rx_burst only resets
  // the fields the kernel overwrites.
  const size_t slot = size_t{max_datagram_} + 1;
  rx_buf_.resize(slot * kBatch);
  for (size_t i = 0; i < kBatch; ++i) {
    rx_iov_[i] = {rx_buf_.data() + i * slot, slot};
    msghdr& h = rx_msgs_[i].msg_hdr;
    h.msg_name = &rx_addr_[i];
    h.msg_iov = &rx_iov_[i];
    h.msg_iovlen = 1;
    tx_msgs_[i].msg_hdr.msg_name = &tx_addr_[i];
    tx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    tx_msgs_[i].msg_hdr.msg_iov = &tx_iov_[3 * i];
  }
  return ok_status();
}

UdpTransport::~UdpTransport() {
  if (fd_ >= 0) close(fd_);
}

Result<size_t> UdpTransport::tx_burst(std::span<const TxDatagram> pkts) {
  size_t done = 0;
  while (done < pkts.size()) {
    // Fill one batch; oversized datagrams never reach the kernel.
    size_t n = 0, scanned = 0;
    for (; done + scanned < pkts.size() && n < kBatch; ++scanned) {
      const TxDatagram& p = pkts[done + scanned];
      if (p.size() > max_datagram_) {
        if (n > 0) break;  // keep input order: send what precedes it first
        ++stats_.tx_dropped;
        continue;
      }
      tx_addr_[n] = to_sockaddr(p.dst);
      tx_iov_[3 * n] = {const_cast<uint8_t*>(p.head), p.head_len};
      tx_iov_[3 * n + 1] = {const_cast<uint8_t*>(p.body), p.body_len};
      tx_iov_[3 * n + 2] = {const_cast<uint8_t*>(p.body2), p.body2_len};
      tx_msgs_[n].msg_hdr.msg_iovlen = 3;
      ++n;
    }
    // Oversized datagrams are only dropped while nothing is queued (a later
    // one ends the batch), so the batch is pkts[done + skipped, done + scanned).
    const size_t skipped = scanned - n;
    size_t sent = 0;
    while (sent < n) {
      int r = sendmmsg(fd_, tx_msgs_.data() + sent, static_cast<unsigned>(n - sent), MSG_DONTWAIT);
      if (r > 0) {
        for (int i = 0; i < r; ++i) {
          ++stats_.tx_packets;
          const iovec* v = &tx_iov_[3 * (sent + i)];
          stats_.tx_bytes += v[0].iov_len + v[1].iov_len + v[2].iov_len;
        }
        sent += static_cast<size_t>(r);
        continue;
      }
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return done + skipped + sent;  // buffer full
      if (!per_datagram_send_error(err)) return sys_error("sendmmsg", err);
      // sendmmsg reports an error for the first unsent datagram only.
      ++stats_.tx_dropped;
      ++sent;
    }
    done += scanned;
  }
  return done;
}

Result<size_t> UdpTransport::rx_burst(std::span<RxDatagram> out) {
  const size_t want = std::min(out.size(), kBatch);
  size_t k = 0;
  // Loop only while a whole batch was discarded as oversized, so "0" keeps
  // meaning "nothing waits".
  while (k == 0 && want > 0) {
    for (size_t i = 0; i < want; ++i) {
      rx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      rx_msgs_[i].msg_hdr.msg_flags = 0;
    }
    int r = recvmmsg(fd_, rx_msgs_.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      // ECONNREFUSED: a queued ICMP error from an earlier send; loss only.
      if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNREFUSED) return size_t{0};
      return sys_error("recvmmsg", err);
    }
    if (r == 0) break;
    for (int i = 0; i < r; ++i) {
      const mmsghdr& m = rx_msgs_[i];
      if ((m.msg_hdr.msg_flags & MSG_TRUNC) || m.msg_len > max_datagram_) {
        ++stats_.rx_truncated;
        continue;
      }
      out[k++] = RxDatagram{from_sockaddr(rx_addr_[i]),
                            static_cast<const uint8_t*>(rx_iov_[i].iov_base), m.msg_len};
      ++stats_.rx_packets;
      stats_.rx_bytes += m.msg_len;
    }
    if (static_cast<size_t>(r) < want) break;  // queue drained
  }
  return k;
}

Result<std::unique_ptr<MemRegion>> UdpTransport::register_memory(void* addr, size_t len) {
  if (addr == nullptr && len > 0)
    return make_error(Errc::kInvalid, "register_memory: null address");
  return std::unique_ptr<MemRegion>(new PlainRegion(addr, len));
}

}  // namespace lanefs::transport
