// A backend container's staged data NICs (`lanefs cluster container net
// add|remove`): kept in DATA_DIR/net.json, applied by lanefsd at start
// (each IP an HA leg on the listen port; a NIC without IPs contributes its
// own IPv4 address). Plain functions; callers serialise writes (the
// management mutex).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "proto/messages.h"

namespace lanefs::backend {

// A missing file is an empty list; a malformed one is kInvalid naming it.
Result<std::vector<proto::ContainerNic>> load_container_nics(const std::string& data_dir);
Status save_container_nics(const std::string& data_dir, const std::vector<proto::ContainerNic>& nics);
// Validates one NIC to stage (device name, IPs, netmask, gateway); kInvalid
// with the reason.
Status check_container_nic(const proto::ContainerNic& nic);
// The legs the staged NICs give a backend listening on `port`. A NIC
// without IPs takes its interface's address; kNotFound naming the NIC when
// it has none.
Result<std::vector<proto::NetLeg>> staged_legs(const std::vector<proto::ContainerNic>& nics, uint16_t port);

}  // namespace lanefs::backend
