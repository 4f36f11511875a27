#include "client/local_resources.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace lanefs::client {

std::string resources_path() {
  const char* env = std::getenv("LANEFS_RESOURCES");
  return env && *env ? env : "/etc/lanefs/resources.json";
}

Result<std::vector<NetResource>> load_net_resources(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::vector<NetResource>{};
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || (j.contains("net") && !j["net"].is_array()))
    return make_error(Errc::kInvalid, path + ": not a lanefs resources file (expected {\"net\": [...]})");
  std::vector<NetResource> out;
  for (const auto& n : j.value("net", nlohmann::json::array())) {
    if (!n.is_object() || !n.contains("dev") || !n["dev"].is_string())
      return make_error(Errc::kInvalid, path + ": a net entry without \"dev\"");
    // Checked, not value(): a non-string label would throw out of the CLI and the frontend.
    if (n.contains("label") && !n["label"].is_string())
      return make_error(Errc::kInvalid, path + ": the label of " + n["dev"].get<std::string>() + " is not a string");
    out.push_back({n["dev"].get<std::string>(), n.value("label", "")});
  }
  return out;
}

Status save_net_resources(const std::string& path, const std::vector<NetResource>& nics) {
  nlohmann::json j = {{"net", nlohmann::json::array()}};
  for (const auto& n : nics) j["net"].push_back({{"dev", n.dev}, {"label", n.label}});
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(Errc::kSystem, "creating " + dir.string() + ": " + ec.message());
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) return make_error(Errc::kSystem, "writing " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return sys_error("rename " + tmp + " to " + path, errno);
  return ok_status();
}

std::string label_of(const std::vector<NetResource>& nics, const std::string& dev) {
  for (const auto& n : nics)
    if (n.dev == dev) return n.label;
  return "";
}

}  // namespace lanefs::client
