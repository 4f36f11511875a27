// UdpTransport data path: tx_burst (sendmmsg, with UDP GSO runs inside it)
// and rx_burst (recvmmsg, with UDP GRO messages split again).
//
// The kernel's rules for a UDP_SEGMENT send (net/ipv4/udp.c, udp_send_skb,
// as of 6.x), which gso_run() keeps to so the kernel never has to say no:
//   - hlen (IP + UDP header) + min(payload, gso_size) must fit the route's
//     MTU (cork->fragsize), else EMSGSIZE: a segment is one datagram that
//     must not need IP fragmentation, so gso_size <= MTU - 28 (gso_max_seg_);
//   - payload <= gso_size * UDP_MAX_SEGMENTS (64; 128 since 6.9),
//     else EINVAL: at most kMaxGsoSegments segments;
//   - the whole payload is one IPv4 packet before segmentation: at most
//     65507 bytes (ip_append_data says EMSGSIZE past IP_MAX_MTU);
//   - sockets with SO_NO_CHECK get EINVAL; a route through IPsec (xfrm) or
//     UDP-Lite gets EIO; before 6.11 (commit 10154dbded6d) an egress device
//     without checksum offload got EIO too. These are the refusals the
//     fallback below handles: GSO off for good, datagrams resent plainly.
//   - only payload > gso_size makes a GSO packet; segments are gso_size
//     bytes each, the last one what is left (__udp_gso_segment cuts it).
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "transport/udp/udp_addr.h"
#include "transport/udp/udp_transport.h"

namespace lanefs::transport {
namespace {

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

// A GSO message refused for reasons of this socket or route, not of the
// datagrams: send them without GSO from now on.
bool gso_refusal(int err) {
  return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP;
}

size_t parts(const TxDatagram& d) {
  return (d.head_len != 0) + (d.body_len != 0) + (d.body2_len != 0);
}

// Bytes [kSteerOffset, kSteerOffset + 4) of the datagram (the lanefs
// session id), wherever the parts split them; false when it is shorter.
bool session_field(const TxDatagram& d, uint32_t* out) {
  constexpr uint32_t kEnd = kSteerOffset + 4;
  if (d.head_len >= kEnd) {
    std::memcpy(out, d.head + kSteerOffset, 4);
    return true;
  }
  if (d.size() < kEnd) return false;
  uint8_t b[4];
  const uint8_t* ptr[] = {d.head, d.body, d.body2};
  const uint32_t len[] = {d.head_len, d.body_len, d.body2_len};
  uint32_t pos = 0, got = 0;
  for (int p = 0; p < 3 && got < 4; ++p) {
    for (uint32_t i = 0; i < len[p] && got < 4; ++i, ++pos)
      if (pos >= kSteerOffset) b[got++] = ptr[p][i];
  }
  std::memcpy(out, b, 4);
  return true;
}

}  // namespace

size_t UdpTransport::gso_run(std::span<const TxDatagram> pkts, size_t i, size_t iov_left) const {
  const TxDatagram& first = pkts[i];
  const uint64_t seg = first.size();
  uint32_t key = 0;
  if (first.single || seg == 0 || seg > gso_max_seg_ || first.dst.port == 0 || !session_field(first, &key))
    return 1;
  uint64_t total = seg;
  size_t iov = parts(first), k = 1;
  while (i + k < pkts.size() && k < kMaxGsoSegments) {
    const TxDatagram& d = pkts[i + k];
    const uint64_t size = d.size();
    uint32_t other = 0;
    if (d.single || d.dst != first.dst || d.src != first.src || size == 0 || size > seg ||
        total + size > kMaxUdpPayload || iov + parts(d) > iov_left ||
        !session_field(d, &other) || other != key)
      break;
    total += size;
    iov += parts(d);
    ++k;
    if (size < seg) break;  // a shorter datagram can only be the last segment
  }
  return k;
}

void UdpTransport::add_message(const TxDatagram* d, size_t count, uint32_t first, size_t* iov) {
  const size_t n = tx_msgs_count_;
  msghdr& h = tx_msgs_[n].msg_hdr;
  h.msg_iov = &tx_iov_[*iov];
  const size_t start = *iov;
  uint64_t bytes = 0;
  for (size_t j = 0; j < count; ++j) {
    const TxDatagram& p = d[j];
    if (p.head_len) tx_iov_[(*iov)++] = {const_cast<uint8_t*>(p.head), p.head_len};
    if (p.body_len) tx_iov_[(*iov)++] = {const_cast<uint8_t*>(p.body), p.body_len};
    if (p.body2_len) tx_iov_[(*iov)++] = {const_cast<uint8_t*>(p.body2), p.body2_len};
    bytes += p.size();
  }
  h.msg_iovlen = *iov - start;
  tx_addr_[n] = to_sockaddr(d[0].dst);
  if (count > 1) {
    // gso_size: the first datagram's size; the kernel cuts the payload into
    // pieces of that size, the last one shorter if the last datagram is.
    const auto seg = static_cast<uint16_t>(d[0].size());
    Ctrl& c = tx_ctrl_[n];
    h.msg_control = c.buf;
    h.msg_controllen = CMSG_SPACE(sizeof seg);
    cmsghdr* cm = CMSG_FIRSTHDR(&h);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof seg);
    std::memcpy(CMSG_DATA(cm), &seg, sizeof seg);
  } else {
    h.msg_control = nullptr;
    h.msg_controllen = 0;
  }
  tx_info_[n] = TxMsg{first, static_cast<uint32_t>(count), bytes};
  ++tx_msgs_count_;
}

size_t UdpTransport::plan_batch(std::span<const TxDatagram> pkts, size_t from,
                                size_t plain_until, size_t* scanned) {
  tx_msgs_count_ = 0;
  size_t iov = 0, i = from;
  while (i < pkts.size() && tx_msgs_count_ < kBatch && iov + 3 <= kTxIov) {
    const TxDatagram& p = pkts[i];
    if (p.size() > max_datagram_) {
      // Dropped only while nothing is queued, so the messages cover one
      // contiguous stretch of the input (a later one ends the batch).
      if (tx_msgs_count_ > 0) break;
      ++stats_.tx_dropped;
      ++i;
      continue;
    }
    const size_t run = gso_ && i >= plain_until ? gso_run(pkts, i, kTxIov - iov) : 1;
    add_message(&pkts[i], run, static_cast<uint32_t>(i), &iov);
    i += run;
  }
  *scanned = i - from;
  return tx_msgs_count_;
}

void UdpTransport::disable_gso(const char* why, int err) {
  gso_ = false;
  stats_.gso_active = false;
  ++stats_.gso_fallbacks;
  LOG_WARN("udp transport {}: {}: {}; sending without GSO from now on", local_.to_string(), why,
           std::strerror(err));
}

Result<size_t> UdpTransport::tx_burst(std::span<const TxDatagram> pkts) {
  size_t done = 0;
  // Datagrams below this index go without GSO (resent after a refusal).
  size_t plain_until = 0;
  while (done < pkts.size()) {
    size_t scanned = 0;
    const size_t n = plan_batch(pkts, done, plain_until, &scanned);
    size_t sent = 0;
    bool replan = false;
    while (sent < n) {
      int r = sendmmsg(fd_, tx_msgs_.data() + sent, static_cast<unsigned>(n - sent), MSG_DONTWAIT);
      if (r > 0) {
        for (size_t m = sent; m < sent + static_cast<size_t>(r); ++m) {
          const TxMsg& t = tx_info_[m];
          stats_.tx_packets += t.count;
          stats_.tx_bytes += t.bytes;
          if (t.count > 1) {
            ++stats_.tx_gso_sends;
            stats_.tx_gso_segments += t.count;
          }
        }
        sent += static_cast<size_t>(r);
        continue;
      }
      const int err = errno;
      if (err == EINTR) continue;
      // Buffer full: everything before this message was taken.
      if (err == EAGAIN || err == EWOULDBLOCK) return size_t{tx_info_[sent].first};
      // sendmmsg reports an error for the first unsent message only.
      const TxMsg& t = tx_info_[sent];
      if (t.count > 1 && (gso_refusal(err) || err == EMSGSIZE)) {
        if (err == EMSGSIZE) {
          // A route with a smaller MTU than this segment size: segments this
          // big go plainly (the kernel may fragment those), smaller keep GSO.
          gso_max_seg_ = static_cast<uint32_t>(pkts[t.first].size()) - 1;
          if (!gso_size_warned_)
            LOG_WARN("udp transport {}: sendmsg UDP_SEGMENT to {}: {}; GSO only for segments "
                     "up to {} bytes from now on",
                     local_.to_string(), pkts[t.first].dst.to_string(), std::strerror(err),
                     gso_max_seg_);
          gso_size_warned_ = true;
        } else {
          disable_gso("sendmsg UDP_SEGMENT", err);
        }
        // Resend this message's datagrams (and plan the rest) again.
        done = t.first;
        plain_until = t.first + t.count;
        replan = true;
        break;
      }
      if (!per_datagram_send_error(err)) return sys_error("sendmmsg", err);
      stats_.tx_dropped += t.count;
      ++sent;
    }
    if (!replan) done += scanned;
  }
  return done;
}

size_t UdpTransport::drain_rx(std::span<RxDatagram> out) {
  size_t k = 0;
  while (k < out.size() && rx_next_ < rx_count_) {
    const mmsghdr& m = rx_msgs_[rx_next_];
    const uint8_t* base = static_cast<const uint8_t*>(rx_iov_[rx_next_].iov_base);
    const NetAddr src = from_sockaddr(rx_addr_[rx_next_]);
    const uint32_t len = m.msg_len, seg = rx_seg_[rx_next_];
    if (m.msg_hdr.msg_flags & MSG_TRUNC) {
      ++stats_.rx_truncated;
      ++rx_next_;
      continue;
    }
    if (seg == 0 || seg >= len) {  // one datagram
      if (len > max_datagram_) {
        ++stats_.rx_truncated;
      } else {
        out[k++] = RxDatagram{src, base, len};
        ++stats_.rx_packets;
        stats_.rx_bytes += len;
      }
      ++rx_next_;
      continue;
    }
    // A GRO message: segments of seg bytes, the last one what is left.
    if (rx_off_ == 0) {
      ++stats_.rx_gro_messages;
      stats_.rx_gro_segments += (len + seg - 1) / seg;
    }
    const uint32_t n = std::min(seg, len - rx_off_);
    if (n > max_datagram_) {
      ++stats_.rx_truncated;
    } else {
      out[k++] = RxDatagram{src, base + rx_off_, n};
      ++stats_.rx_packets;
      stats_.rx_bytes += n;
    }
    rx_off_ += n;
    if (rx_off_ >= len) {
      rx_off_ = 0;
      ++rx_next_;
    }
  }
  return k;
}

Result<size_t> UdpTransport::rx_burst(std::span<RxDatagram> out) {
  if (out.empty()) return size_t{0};
  // What the last recvmmsg brought is handed out first; the buffers are
  // reused only in a call that returns none of it.
  size_t k = drain_rx(out);
  if (k > 0) return k;
  const size_t want = std::min(out.size(), rx_batch_);
  // Loop only while a whole batch was discarded as oversized, so "0" keeps
  // meaning "nothing waits".
  for (;;) {
    for (size_t i = 0; i < want; ++i) {
      msghdr& h = rx_msgs_[i].msg_hdr;
      h.msg_namelen = sizeof(sockaddr_in);
      h.msg_flags = 0;
      if (gro_) h.msg_controllen = sizeof(Ctrl);
    }
    int r = recvmmsg(fd_, rx_msgs_.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      // ECONNREFUSED: a queued ICMP error from an earlier send; loss only.
      if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNREFUSED) return size_t{0};
      return sys_error("recvmmsg", err);
    }
    if (r == 0) return size_t{0};
    rx_count_ = static_cast<size_t>(r);
    rx_next_ = 0;
    rx_off_ = 0;
    for (size_t i = 0; i < rx_count_; ++i) {
      rx_seg_[i] = 0;
      if (!gro_) continue;
      msghdr& h = rx_msgs_[i].msg_hdr;
      for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm != nullptr; cm = CMSG_NXTHDR(&h, cm)) {
        if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO) continue;
        int seg = 0;
        std::memcpy(&seg, CMSG_DATA(cm), sizeof seg);
        if (seg > 0) rx_seg_[i] = static_cast<uint32_t>(seg);
      }
    }
    k = drain_rx(out);
    if (k > 0 || static_cast<size_t>(r) < want) return k;  // data, or the queue is drained
  }
}

}  // namespace lanefs::transport
