#include "integration/backend_fixture.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/crc32c.h"

namespace lanefs::test {

std::string lanefsd_path() { return build_path("userspace/backend/lanefsd"); }
std::string lanefs_path() { return build_path("userspace/cli/lanefs"); }

BackendProcess::BackendProcess(std::string name) : name_(std::move(name)) {
  data_dir_ = dir_.path() + "/data";
  log_file_ = dir_.path() + "/lanefsd.log";
  out_file_ = dir_.path() + "/lanefsd.out";
  port_ = free_udp_port();
}

BackendProcess::~BackendProcess() { kill9(); }

Status BackendProcess::start(uint64_t ready_timeout_ns) {
  if (access(lanefsd_path().c_str(), X_OK) != 0)
    return make_error(Errc::kNotFound, "lanefsd binary not found at " + lanefsd_path());
  std::vector<std::string> argv = {lanefsd_path(), "--data-dir", data_dir_, "--listen", addr_string(),
                                   "--name", name_, "--log-file", log_file_, "--log-level", "info"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  child_ = Child(argv, out_file_);
  // Every client of the test (this process's, the CLI's, mount.lanefs's)
  // presents the admin token lanefsd writes into its data directory (all
  // of a host's backends share the secret: --secret-file's default).
  setenv("LANEFS_TOKEN_FILE", (data_dir_ + "/admin.token").c_str(), 1);
  uint64_t deadline = mono_ns() + ready_timeout_ns;
  std::string last;
  for (int attempt = 0; attempt < 200 && mono_ns() < deadline; ++attempt) {
    if (!child_.running())
      return make_error(Errc::kUnreachable, "lanefsd '" + name_ + "' exited during start; log: " + log_tail());
    auto c = connect_client({addr()}, 500'000'000ull);
    if (c.ok()) return ok_status();
    last = c.error().to_string();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return make_error(Errc::kTimeout, "lanefsd '" + name_ + "' on " + addr_string() + " never answered (" + last +
                                        "); log: " + log_tail());
}

void BackendProcess::kill9() { child_.kill_hard(); }

Status BackendProcess::restart(uint64_t ready_timeout_ns) {
  kill9();
  return start(ready_timeout_ns);
}

bool BackendProcess::running() { return child_.running(); }

std::string BackendProcess::log_tail(size_t max_bytes) const {
  std::string all;
  for (const auto& f : {log_file_, out_file_}) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    all += "[" + f + "]\n" + ss.str();
  }
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

Result<std::unique_ptr<client::ClusterClient>> connect_client(const std::vector<NetAddr>& backends,
                                                              uint64_t connect_timeout_ns) {
  client::ClusterClientOptions o;
  o.backends = backends;
  o.connect_timeout_ns = connect_timeout_ns;
  o.op_timeout_ns = 30 * kSecond;
  o.name = "integration-test";
  o.bind = NetAddr{0x7f000001u, 0};
  return client::ClusterClient::connect(o);
}

CliRun run_cli(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv;
  if (!env.empty()) {
    argv.push_back("/usr/bin/env");
    argv.insert(argv.end(), env.begin(), env.end());
  }
  argv.push_back(lanefs_path());
  argv.insert(argv.end(), args.begin(), args.end());
  CliRun r;
  uint64_t t0 = mono_ns();
  r.rc = run_command(argv, &r.out);
  r.seconds = static_cast<double>(mono_ns() - t0) / 1e9;
  return r;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x = rng();
    std::memcpy(v.data() + i, &x, 8);
  }
  for (; i < n; ++i) v[i] = static_cast<uint8_t>(rng());
  return v;
}

uint32_t checksum(std::span<const uint8_t> data) { return crc32c(data.data(), data.size()); }

bool all_zero(std::span<const uint8_t> data) {
  for (uint8_t b : data)
    if (b != 0) return false;
  return true;
}

}  // namespace lanefs::test
