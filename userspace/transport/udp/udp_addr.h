// NetAddr <-> sockaddr_in, shared by the UDP lane's control and data paths.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/net_addr.h"

namespace lanefs::transport {

inline sockaddr_in to_sockaddr(NetAddr a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(a.ip);
  sa.sin_port = htons(a.port);
  return sa;
}

inline NetAddr from_sockaddr(const sockaddr_in& sa) {
  return NetAddr{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}

}  // namespace lanefs::transport
