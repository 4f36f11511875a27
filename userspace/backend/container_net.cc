#include "backend/container_net.h"

#include <arpa/inet.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace lanefs::backend {

namespace {
std::string file_of(const std::string& dir) { return dir + "/net.json"; }
// A plain dotted IPv4 address (no port); 0 when it is not one.
uint32_t ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1 ? ntohl(a.s_addr) : 0;
}
}  // namespace

Result<std::vector<proto::ContainerNic>> load_container_nics(const std::string& data_dir) {
  std::string path = file_of(data_dir);
  std::ifstream in(path);
  if (!in) return std::vector<proto::ContainerNic>{};
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.value("nics", nlohmann::json::array()).is_array())
    return make_error(Errc::kInvalid, path + ": not a lanefs container net file");
  std::vector<proto::ContainerNic> out;
  try {  // json value() throws on a wrong type: a damaged file is an error, not an abort
    for (const auto& n : j.value("nics", nlohmann::json::array())) {
      proto::ContainerNic c;
      c.dev = n.value("dev", "");
      c.ips = n.value("ips", std::vector<std::string>{});
      c.netmask_bits = n.value("netmask_bits", 0u);
      c.gateway = n.value("gateway", "");
      c.label = n.value("label", "");
      if (auto st = check_container_nic(c); !st.ok()) return make_error(Errc::kInvalid, path + ": " + st.error().message);
      out.push_back(std::move(c));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::kInvalid, path + ": " + e.what());
  }
  return out;
}

Status save_container_nics(const std::string& data_dir, const std::vector<proto::ContainerNic>& nics) {
  nlohmann::json j = {{"nics", nlohmann::json::array()}};
  for (const auto& n : nics)
    j["nics"].push_back({{"dev", n.dev}, {"ips", n.ips}, {"netmask_bits", n.netmask_bits},
                         {"gateway", n.gateway}, {"label", n.label}});
  std::string path = file_of(data_dir), tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) return make_error(Errc::kSystem, "writing " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return sys_error("rename " + tmp, errno);
  return ok_status();
}

Status check_container_nic(const proto::ContainerNic& nic) {
  if (nic.dev.empty() || nic.dev.size() > 15 || nic.dev.find_first_of("/ ,=") != std::string::npos)
    return make_error(Errc::kInvalid, "'" + nic.dev + "' is not a network interface name");
  for (const auto& ip : nic.ips)
    if (ipv4(ip) == 0) return make_error(Errc::kInvalid, "'" + ip + "' is not an IPv4 address (for " + nic.dev + ")");
  if (nic.netmask_bits > 32) return make_error(Errc::kInvalid, "netmask /" + std::to_string(nic.netmask_bits) + " is not 0..32");
  if (!nic.gateway.empty() && ipv4(nic.gateway) == 0)
    return make_error(Errc::kInvalid, "gateway '" + nic.gateway + "' is not an IPv4 address");
  if (nic.label.size() > 64) return make_error(Errc::kInvalid, "label longer than 64 characters");
  return ok_status();
}

Result<std::vector<proto::NetLeg>> staged_legs(const std::vector<proto::ContainerNic>& nics, uint16_t port) {
  std::vector<proto::NetLeg> out;
  for (const auto& n : nics) {
    if (n.ips.empty()) {
      auto a = interface_ipv4(n.dev);
      if (!a.ok()) return make_error(Errc::kNotFound, "staged NIC " + n.dev + ": " + a.error().message);
      out.push_back({NetAddr{a->ip, port}, n.label});
      continue;
    }
    for (const auto& ip : n.ips) out.push_back({NetAddr{ipv4(ip), port}, n.label});
  }
  return out;
}

}  // namespace lanefs::backend
