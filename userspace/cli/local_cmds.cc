// lanefs CLI: the shared pieces (commands.h) and the commands about this
// host: stats, local resources net, local ps.
#include <nlohmann/json.hpp>

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/format.h"
#include "client/local_resources.h"
#include "common/proc_info.h"

namespace lanefs::cli {

using nlohmann::json;

int exit_code(Errc c) {
  switch (c) {
    case Errc::kOk: return 0;
    case Errc::kInvalid: return 2;
    case Errc::kUnreachable:
    case Errc::kTimeout: return 3;
    case Errc::kNotFound: return 4;
    case Errc::kExists: return 5;
    case Errc::kBusy: return 6;
    case Errc::kPermission: return 13;  // as EACCES
    default: return 1;
  }
}

int fail(const Error& e) {
  std::fprintf(stderr, "lanefs: %s\n", e.to_string().c_str());
  return exit_code(e.code);
}



Result<std::unique_ptr<client::ClusterClient>> connect(const Globals& g) {
  std::string spec = g.backend;
  if (spec.empty()) {
    const char* env = std::getenv("LANEFS_BACKEND");
    spec = env && *env ? env : "127.0.0.1:14000";
  }
  LANEFS_ASSIGN_OR_RETURN(auto addrs, parse_net_addr_list(spec, 14000));
  client::ClusterClientOptions o;
  o.backends = addrs;
  o.connect_timeout_ns = static_cast<uint64_t>(g.connect_timeout_s * 1e9);
  o.op_timeout_ns = static_cast<uint64_t>(g.timeout_s * 1e9);
  o.name = "lanefs-cli";
  o.token_file = g.token_file;
  return client::ClusterClient::connect(o);
}

namespace {

// ---- lanefs local ps: this host's containers

// Asks the local frontend for its state over its control socket.
Result<json> frontend_state(const std::string& run_dir) {
  std::string path = run_dir + "/frontend.sock";
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(s);
    return make_error(Errc::kNotFound, "no lanefs-frontend on " + path);
  }
  std::string req = "{\"op\":\"ps\"}\n";
  if (write(s, req.data(), req.size()) < 0) {
    close(s);
    return sys_error("write " + path, errno);
  }
  std::string reply;
  char buf[4096];
  while (reply.find('\n') == std::string::npos) {
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) break;
    ssize_t n = read(s, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(s);
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.value("ok", false)) return make_error(Errc::kProtocol, "bad answer from " + path);
  return j;
}

// lanefsd processes on this host, from /proc.
std::vector<json> local_backends() {
  std::vector<json> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream comm("/proc/" + std::string(e->d_name) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name != "lanefsd") continue;
    std::ifstream cl("/proc/" + std::string(e->d_name) + "/cmdline");
    std::string all((std::istreambuf_iterator<char>(cl)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    for (size_t at = 0; at < all.size();) {
      size_t z = all.find('\0', at);
      args.push_back(all.substr(at, z - at));
      at = z == std::string::npos ? all.size() : z + 1;
    }
    std::string cname = host_name(), listen = "127.0.0.1:14000";
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--name") cname = args[i + 1];
      if (args[i] == "--listen") listen = args[i + 1];
    }
    // Uptime from the process start time (field 22, clock ticks after boot).
    std::ifstream st("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    std::getline(st, line);
    uint64_t up = 0;
    if (auto rp = line.rfind(')'); rp != std::string::npos) {
      std::istringstream rest(line.substr(rp + 2));
      std::string f;
      uint64_t start = 0;
      for (int i = 3; i <= 22 && rest >> f; ++i)
        if (i == 22) start = std::stoull(f);
      timespec boot;
      clock_gettime(CLOCK_BOOTTIME, &boot);
      double since = boot.tv_sec + boot.tv_nsec / 1e9 - double(start) / double(sysconf(_SC_CLK_TCK));
      up = since > 0 ? static_cast<uint64_t>(since) : 0;
    }
    out.push_back({{"container", cname}, {"type", "backend"}, {"state", "running"}, {"pid", pid},
                   {"uptime_s", up}, {"memory_bytes", process_rss_bytes(pid)}, {"listen", listen},
                   {"mounts", json::array()}});
  }
  closedir(d);
  return out;
}

std::string run_dir() {
  const char* rd = std::getenv("LANEFS_RUN_DIR");
  return rd && *rd ? rd : "/run/lanefs";
}

// ---- lanefs stats: per-mount lane counters of this host's frontend

}  // namespace

int cmd_stats(const Globals& g, bool paths) {
  auto fe = frontend_state(run_dir());
  if (!fe.ok()) return fail(fe.error());
  json out = json::array();
  for (const auto& m : (*fe)["mounts"]) {
    json l = m.value("lanes", json::object());
    l["source"] = m.value("source", "");
    l["target"] = m.value("target", "");
    l["errors"] = m.value("errors", 0);
    l["corrupt_reads"] = m.value("corrupt_reads", 0);
    l["rpcs"] = m.value("rpcs", json::object());
    l["rpc_health"] = m.value("rpc_health", json::object());
    // Which client and channel serve the mount, why, and the requests each took.
    l["client"] = m.value("client", "");
    l["channel"] = m.value("channel", "");
    l["channel_reason"] = m.value("channel_reason", "");
    l["fuse_requests_classic"] = m.value("fuse_requests_classic", 0ull);
    l["fuse_requests_uring"] = m.value("fuse_requests_uring", 0ull);
    l["fuse_uring_peak_per_thread"] = m.value("fuse_uring_peak_per_thread", 0ull);
    l["kernel_requests"] = m.value("kernel_requests", 0ull);
    // The direct API (include/lanefs/direct.h) and GPUDirect selection.
    for (const char* k :
         {"direct_ios", "direct_bytes", "direct_errors", "rdma_zero_copy_ios", "gpudirect_ios", "gpudirect_bounced"})
      l[k] = m.value(k, 0ull);
    l["gpudirect_bounce_reasons"] = m.value("gpudirect_bounce_reasons", json::object());
    if (!paths) l.erase("paths");
    out.push_back(l);
  }
  if (g.json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (out.empty()) std::printf("no lanefs mounts on this host\n");
  if (paths) {
    // HA: one row per path (local leg -> backend address).
    for (const auto& m : out) {
      std::printf("%s on %s\n", m["source"].get<std::string>().c_str(), m["target"].get<std::string>().c_str());
      std::vector<std::vector<std::string>> rows;
      for (const auto& p : m.value("paths", json::array()))
        rows.push_back({p.value("backend", ""), p.value("local", ""), p.value("remote", ""),
                        p.value("label", "").empty() ? "-" : p.value("label", ""),
                        p.value("preferred", true) ? "yes" : "no", p.value("state", ""),
                        std::to_string(p.value("health", 0)), human_bytes(p.value("tx_bytes", 0ull)),
                        std::to_string(p.value("timeouts", 0ull)), std::to_string(p.value("failovers", 0ull)),
                        std::to_string(p.value("failbacks", 0ull))});
      std::cout << render_table({"BACKEND", "LOCAL", "REMOTE", "LABEL", "PREFERRED", "STATE", "HEALTH", "SENT",
                                 "TIMEOUTS", "FAILOVERS", "FAILBACKS"},
                                rows);
    }
    return 0;
  }
  for (const auto& m : out) {
    std::printf("%s on %s%s\n", m["source"].get<std::string>().c_str(), m["target"].get<std::string>().c_str(),
                m.value("encrypted", false) ? " (encrypted)" : "");
    std::printf("  RDMA device: %s; large IO on RDMA now: %s (thresholds: reads >= %llu KiB, writes >= %llu KiB)\n",
                m.value("rdma_device", "none").c_str(), m.value("rdma_now", "?").c_str(),
                (unsigned long long)m.value("rdma_read_min", 0ull) / 1024,
                (unsigned long long)m.value("rdma_write_min", 0ull) / 1024);
    std::vector<std::vector<std::string>> rows;
    for (const auto& [lane, v] : m["per_lane"].items())
      rows.push_back({lane, std::to_string(v.value("ios", 0ull)), human_bytes(v.value("bytes", 0ull))});
    std::cout << render_table({"LANE", "IOS", "BYTES"}, rows);
    std::printf("  fallbacks to UDP: %llu, IO errors: %llu (damaged data: %llu)\n",
                (unsigned long long)m.value("fallbacks", 0ull), (unsigned long long)m.value("errors", 0ull),
                (unsigned long long)m.value("corrupt_reads", 0ull));
    for (const auto& [why, n] : m["not_rdma"].items())
      std::printf("  not on RDMA (%s): %llu\n", why.c_str(), (unsigned long long)n.get<uint64_t>());
    if (m.value("direct_ios", 0ull) > 0) {
      std::string why;
      for (const auto& [k, n] : m["gpudirect_bounce_reasons"].items())
        why += (why.empty() ? "" : ", ") + k + " " + std::to_string(n.get<uint64_t>());
      std::printf("  direct API: %llu IOs (%s, %llu errors); device memory: %llu GPUDirect, %llu bounced%s\n",
                  (unsigned long long)m.value("direct_ios", 0ull), human_bytes(m.value("direct_bytes", 0ull)).c_str(),
                  (unsigned long long)m.value("direct_errors", 0ull), (unsigned long long)m.value("gpudirect_ios", 0ull),
                  (unsigned long long)m.value("gpudirect_bounced", 0ull), why.empty() ? "" : (" (" + why + ")").c_str());
    }
    std::string rpcs;
    for (const auto& [op, n] : m["rpcs"].items())
      rpcs += (rpcs.empty() ? "" : ", ") + op + " " + std::to_string(n.get<uint64_t>());
    if (!rpcs.empty()) std::printf("  RPCs sent (this cluster connection): %s\n", rpcs.c_str());
    if (const json& h = m["rpc_health"]; !h.empty())
      std::printf("  loss recovery: %llu packets resent (%llu timeouts of a request's RTO), %llu calls timed out, "
                  "%llu session resets\n",
                  (unsigned long long)h.value("retransmits", 0ull), (unsigned long long)h.value("rto_events", 0ull),
                  (unsigned long long)h.value("timeouts", 0ull), (unsigned long long)h.value("session_resets", 0ull));
  }
  return 0;
}

int cmd_resources_net(const Globals& g, const std::string& what, const std::string& dev, const std::string& label) {
  std::string path = client::resources_path();
  auto nics = client::load_net_resources(path);
  if (!nics.ok()) return fail(nics.error());
  if (what == "add" || what == "remove") {
    if (dev.empty() || dev.size() > 15 || dev.find_first_of("/ ,=") != std::string::npos)
      return fail(make_error(Errc::kInvalid, "'" + dev + "' is not a network interface name"));
    auto it = std::find_if(nics->begin(), nics->end(), [&](const auto& n) { return n.dev == dev; });
    if (what == "remove") {
      if (it == nics->end()) return fail(make_error(Errc::kNotFound, dev + " is not in " + path));
      nics->erase(it);
    } else if (it != nics->end()) {
      it->label = label;
    } else {
      nics->push_back({dev, label});
    }
    if (auto st = client::save_net_resources(path, *nics); !st.ok()) return fail(st.error());
  }
  if (g.json) {
    json out = json::array();
    for (const auto& n : *nics) out.push_back({{"dev", n.dev}, {"label", n.label}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& n : *nics) rows.push_back({n.dev, n.label.empty() ? "-" : n.label});
  std::cout << render_table({"DEV", "LABEL"}, rows);
  return 0;
}

int cmd_setup_fuse_uring(const Globals& g, const std::string& state) {
  const char* param = "/sys/module/fuse/parameters/enable_uring";
  std::string before;
  {
    std::ifstream in(param);
    if (!in || !std::getline(in, before))
      return fail(make_error(Errc::kNotSupported, std::string("this kernel has no FUSE over io_uring (") + param +
                                                      " is missing: Linux 6.14+ built with CONFIG_FUSE_IO_URING)"));
  }
  const bool was_on = !before.empty() && (before[0] == 'Y' || before[0] == '1');
  const bool want_on = state == "on";
  if (was_on != want_on) {
    std::ofstream out(param);
    out << (want_on ? "Y" : "N");
    out.close();
    if (!out)
      return fail(make_error(geteuid() == 0 ? Errc::kSystem : Errc::kPermission,
                             std::string("writing ") + param + ": " + std::strerror(errno) +
                                 (geteuid() == 0 ? "" : " (run as root)")));
  }
  if (g.json) {
    std::cout << json{{"enable_uring", want_on}, {"changed", was_on != want_on}}.dump(2) << "\n";
    return 0;
  }
  if (was_on == want_on)
    std::printf("FUSE over io_uring was already %s (%s); nothing changed\n", want_on ? "on" : "off", param);
  else
    std::printf("FUSE over io_uring turned %s (%s: %s -> %s); it applies to mounts made from now on\n",
                want_on ? "on" : "off", param, was_on ? "Y" : "N", want_on ? "Y" : "N");
  return 0;
}

int cmd_local_ps(const Globals& g) {
  std::string run_dir = lanefs::cli::run_dir();
  std::vector<json> rows;
  auto fe = frontend_state(run_dir);
  if (fe.ok()) {
    rows.push_back({{"container", (*fe)["hostname"]}, {"type", "client"}, {"state", "running"},
                    {"pid", (*fe)["pid"]}, {"uptime_s", (*fe)["uptime_s"]}, {"memory_bytes", (*fe)["memory_bytes"]},
                    {"mounts", (*fe)["mounts"]}, {"direct_clients", fe->value("direct_clients", json::array())}});
  } else {
    rows.push_back({{"container", host_name()}, {"type", "client"}, {"state", "stopped"}, {"pid", nullptr},
                    {"uptime_s", nullptr}, {"memory_bytes", nullptr}, {"mounts", json::array()}});
  }
  for (auto& b : local_backends()) rows.push_back(std::move(b));
  if (g.json) {
    std::cout << json(rows).dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> table;
  for (const auto& r : rows) {
    std::vector<std::string> mounts, clients, channels;
    for (const auto& m : r["mounts"]) {
      mounts.push_back(m.value("source", "") + " on " + m.value("target", ""));
      clients.push_back(m.value("client", "-"));
      channels.push_back(m.value("channel", "-"));
    }
    bool up = r["state"] == "running";
    table.push_back({r["container"].get<std::string>(), r["type"].get<std::string>(), r["state"].get<std::string>(),
                     up ? std::to_string(r["pid"].get<int64_t>()) : "-",
                     up ? human_duration(r["uptime_s"].get<uint64_t>()) : "-",
                     clients.empty() ? "-" : join(clients, "; "), channels.empty() ? "-" : join(channels, "; "),
                     r["type"] == "backend" ? r.value("listen", "") : (mounts.empty() ? "-" : join(mounts, "; "))});
  }
  // CLIENT (kernel, fuse-uring, fuse) and CHANNEL (lanefs.ko, uring,
  // classic) of each mount, in the order of MOUNTS.
  std::cout << render_table({"CONTAINER", "TYPE", "STATE", "PID", "UPTIME", "CLIENT", "CHANNEL", "MOUNTS / LISTEN"},
                            table);
  // Applications attached to the frontend through liblanefs-direct.
  std::vector<std::vector<std::string>> direct;
  for (const auto& c : rows.front().value("direct_clients", json::array()))
    direct.push_back({std::to_string(c.value("pid", 0)), c.value("command", ""), std::to_string(c.value("uid", 0)),
                      std::to_string(c.value("rings", 0)), std::to_string(c.value("buffers", 0)) + " (" +
                      human_bytes(c.value("buffer_bytes", 0ull)) + ")", std::to_string(c.value("files", 0)),
                      std::to_string(c.value("ios", 0ull)),
                      c.value("mounts", json::array()).empty() ? "-" : join(c["mounts"].get<std::vector<std::string>>(), "; ")});
  if (!direct.empty()) {
    std::printf("\ndirect-API clients:\n");
    std::cout << render_table({"PID", "COMMAND", "UID", "RINGS", "BUFFERS", "FILES", "IOS", "MOUNTS"}, direct);
  }
  return 0;
}

}  // namespace lanefs::cli
