// DpdkTransport: the DPDK lane behind the transport seam (transport.h).
//
// One DPDK port, one RX/TX queue pair, driven by the owning loop thread. It
// sends the same protocol datagrams as the kernel UDP lane inside its own
// Ethernet/IPv4/UDP headers (frames.h), so DPDK and kernel-UDP endpoints
// talk to each other, and keeps its own ARP table (never the kernel's):
// it answers requests for its address, resolves peers (or the gateway for
// off-subnet peers), sends a gratuitous ARP at start and follows MAC changes.
// Datagrams to a peer being resolved wait in a bounded queue (64 per peer;
// beyond that they are dropped and counted, as any lost datagram).
//
// Modes: polling (dedicated core: notify_fd() is always readable, the loop
// keeps calling rx_burst) and RX interrupts (notify_fd() is the queue's
// interrupt fd; arm_notify() enables the interrupt, the next rx_burst()
// disables it and polls — the l3fwd-power sequence). create() fails with
// kNotSupported when interrupts are asked and the driver has none.
//
// EAL: initialised once per process on first use (--no-huge, -m, --no-pci,
// --in-memory); each port is probed as a device afterwards (rte_dev_probe).
// Threading: one owning thread per transport (transport.h).
#pragma once

#include <memory>

#include "transport/transport.h"

namespace lanefs::transport::dpdk {

Result<std::unique_ptr<Transport>> create_dpdk_transport(const TransportConfig& config);

}  // namespace lanefs::transport::dpdk
