// Where the RDMA tests may run: LANEFS_TEST_RDMA_IPS="A,B" names two local
// IPv4 addresses served by (different) RDMA devices; the qemu guest rig sets
// it (tests/vm/guest/rdma_conformance.sh). Without it, or without any RDMA
// device, the tests skip with the reason.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "common/net_addr.h"

namespace lanefs::test {

inline std::vector<uint32_t> rdma_test_ips() {
  const char* env = std::getenv("LANEFS_TEST_RDMA_IPS");
  if (env == nullptr) return {};
  auto list = parse_net_addr_list(env, 1);
  if (!list.ok()) return {};
  std::vector<uint32_t> ips;
  for (const auto& a : *list) ips.push_back(a.ip);
  return ips;
}

}  // namespace lanefs::test

// Skips the current test unless two RDMA test addresses are configured.
#define LANEFS_REQUIRE_RDMA_IPS(ips)                                                    \
  do {                                                                                 \
    ips = ::lanefs::test::rdma_test_ips();                                              \
    if (ips.size() < 2)                                                                \
      GTEST_SKIP() << "needs an RDMA device pair: set LANEFS_TEST_RDMA_IPS=\"A,B\" "    \
                      "(two local IPv4 addresses on RDMA devices; the vm rig does)";   \
  } while (0)
