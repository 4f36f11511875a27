// This host's network resources for lanefs (`lanefs local resources net`):
// the data NICs and the label naming each one's switch, in a small JSON
// file (default /etc/lanefs/resources.json; LANEFS_RESOURCES overrides it).
// It is host configuration, not data: the client stays stateless. The
// frontend reads it when it mounts with net:ha=<dev> to label its legs.
//
// Plain functions; thread-safe (each call reads or writes the whole file).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace lanefs::client {

struct NetResource {
  std::string dev;
  std::string label;  // "" = unlabeled
};

std::string resources_path();
// A missing file is an empty list; a malformed one is kInvalid naming it.
Result<std::vector<NetResource>> load_net_resources(const std::string& path);
// Writes atomically (temporary file + rename), creating the directory.
Status save_net_resources(const std::string& path, const std::vector<NetResource>& nics);
// The label of dev ("" when it is not listed).
std::string label_of(const std::vector<NetResource>& nics, const std::string& dev);

}  // namespace lanefs::client
