// lanefsd: one backend container (MANAGEMENT, COMPUTE and DRIVES roles).
//   lanefsd --data-dir DIR --listen IP:PORT [--name NAME] [--rdma auto|on|off]
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "backend/backend_core.h"
#include "backend/container_net.h"
#include "common/cli_args.h"
#include "common/log.h"
#include "common/signals.h"
#include "lanefs/config.h"
#include "transport/net_spec.h"


int main(int argc, char** argv) {
  using namespace lanefs;
  CLI::App app{"lanefsd: lanefs backend container"};
  std::string data_dir, listen = "127.0.0.1:14000", name, fault, log_file, log_level = "info";
  std::string rdma = "auto";
  uint32_t chunk_kib = 1024, workers = 4, handle_lease_secs = 60;
  app.add_option("--data-dir", data_dir, "data directory (metadata DB and chunks)")->required();
  app.add_option("--listen", listen, "IP:PORT to serve on")->capture_default_str();
  app.add_option("--name", name, "container name (default: host name)");
  app.add_option("--chunk-kib", chunk_kib, "chunk size in KiB for a new cluster")->capture_default_str();
  app.add_option("--workers", workers, "worker threads")->capture_default_str();
  app.add_option("--handle-lease-secs", handle_lease_secs,
                 "a client silent this long loses its open handles (files unlinked while open then go)")
      ->check(CLI::Range(10u, 86400u))
      ->capture_default_str();
  uint32_t loops = 0;
  app.add_option("--loops", loops, "datagram loop threads (UDP: 0 = one per CPU, at most 8)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--fault", fault, "fault injection on sent datagrams, e.g. drop=10,dup=5,reorder=2,corrupt=1,delay=5");
  app.add_option("--rdma", rdma,
                 "RDMA lane for large IOs: auto (when an RDMA device owns the --listen address), "
                 "on (fail without one), off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  std::vector<std::string> nets;
  std::string dedicated_mode = "full";
  int core_cpu = -1;
  app.add_option("--net", nets,
                 "data lane: udp (kernel UDP, default) or a DPDK device <dev>/<ip>/<bits>[/<gw>] "
                 "(dev: PCI address, netdev, MAC, tap:IFACE, afpacket:IFACE, memif:SOCKET[:server]); "
                 "--listen defaults to the first one's <ip>:14000. Repeated: one DPDK port per NIC (HA legs)");
  app.add_option("--dedicated-mode", dedicated_mode,
                 "DPDK lane: full (poll on a dedicated core) or none (sleep on RX interrupts; kernel UDP "
                 "when the driver has none)")
      ->check(CLI::IsMember({"full", "none"}))
      ->capture_default_str();
  std::vector<std::string> data_addrs, labels;
  app.add_option("--data-addr", data_addrs,
                 "HA: another data address IP[:PORT][/LABEL] on another NIC (repeatable); clients spread load "
                 "over all and fail over between them. Port: --listen's");
  app.add_option("--label", labels,
                 "HA: the switch label of the --listen address's NIC; repeated, the labels of the further "
                 "--net NICs in order");
  app.add_option("--core", core_cpu, "pin the datagram loop to this CPU (shown in cluster processes)");
  std::string secret_file = "/etc/lanefs/cluster.secret", admin_token_file = "/etc/lanefs/admin.token";
  app.add_option("--secret-file", secret_file,
                 "a new data directory takes the cluster secret from this file (made, mode 0600, when missing; "
                 "'' = a secret of its own), so backends on one host share it")
      ->capture_default_str();
  app.add_option("--admin-token-file", admin_token_file,
                 "also write the built-in admin's token here (always to <data-dir>/admin.token; '' = only there)")
      ->capture_default_str();
  app.add_option("--log-file", log_file, "log to this file instead of stderr");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.set_version_flag("--version", LANEFS_VERSION);
  if (int rc = lanefs::parse_args(app, argc, argv, "lanefsd"); rc >= 0) return rc;

  if (auto st = init_logging("lanefsd", log_file, log_level); !st.ok()) {
    std::fprintf(stderr, "lanefsd: %s\n", st.error().message.c_str());
    return 2;
  }
  backend::BackendOptions o;
  o.data_dir = data_dir;
  o.secret_file = secret_file;
  o.admin_token_file = admin_token_file;
  o.name = name;
  o.chunk_size = chunk_kib * 1024;
  o.workers = workers;
  o.handle_lease_ns = uint64_t{handle_lease_secs} * 1'000'000'000ull;
  o.loops = loops;
  o.rdma = rdma == "on"    ? backend::BackendOptions::Rdma::kOn
           : rdma == "off" ? backend::BackendOptions::Rdma::kOff
                           : backend::BackendOptions::Rdma::kAuto;
  auto addr = parse_net_addr(listen, 14000);
  if (!addr.ok()) {
    std::fprintf(stderr, "lanefsd: --listen: %s\n", addr.error().to_string().c_str());
    return 2;
  }
  o.listen = *addr;
  o.cpu = core_cpu;
  o.label = labels.empty() ? "" : labels[0];
  std::string net = nets.empty() ? "" : nets[0];
  if (labels.size() > std::max<size_t>(1, nets.size())) {
    std::fprintf(stderr, "lanefsd: more --label than NICs (--label labels --listen's NIC and each further --net)\n");
    return 2;
  }
  for (const auto& d : data_addrs) {
    auto slash = d.find('/');
    auto a = parse_net_addr(d.substr(0, slash), o.listen.port);
    if (!a.ok() || a->ip == 0) {
      std::fprintf(stderr, "lanefsd: --data-addr %s: expected IP[:PORT][/LABEL]\n", d.c_str());
      return 2;
    }
    o.extra_legs.push_back({*a, slash == std::string::npos ? "" : d.substr(slash + 1)});
  }
  // NICs staged with `lanefs cluster container net add` take effect now.
  auto staged = backend::load_container_nics(data_dir);
  if (!staged.ok()) {
    std::fprintf(stderr, "lanefsd: %s\n", staged.error().to_string().c_str());
    return 1;
  }
  auto legs = backend::staged_legs(*staged, o.listen.port);
  if (!legs.ok()) {
    std::fprintf(stderr, "lanefsd: %s\n", legs.error().to_string().c_str());
    return 1;
  }
  for (const auto& l : *legs) {
    bool dup = l.addr.ip == o.listen.ip;
    for (const auto& e : o.extra_legs) dup |= e.addr.ip == l.addr.ip;
    if (!dup) o.extra_legs.push_back(l);
  }
  if (!o.extra_legs.empty() && !net.empty() && net != "udp") {
    std::fprintf(stderr, "lanefsd: --data-addr or staged NICs with --net: on the DPDK lane give each NIC its own "
                         "--net\n");
    return 2;
  }
  for (size_t i = 0; i < nets.size() && !net.empty() && net != "udp"; ++i) {
    auto spec = transport::parse_net_spec(nets[i], "/sys", "--net ");
    if (!spec.ok()) {
      std::fprintf(stderr, "lanefsd: %s\n", spec.error().to_string().c_str());
      return 2;
    }
    if (spec->ips.size() != 1) {
      std::fprintf(stderr, "lanefsd: --net %s: a backend takes one address per NIC\n", nets[i].c_str());
      return 2;
    }
    auto d = spec->dpdk_config(spec->ip(), dedicated_mode == "none");
    d.no_huge = !transport::hugepages_cover(d.memory_mb);
    if (i == 0) {
      o.dpdk = d;
      if (app.count("--listen") == 0) o.listen = NetAddr{spec->ip(), 14000};
    } else {
      // A further NIC: an HA leg on its own DPDK port, same UDP port.
      o.dpdk_extra.push_back(d);
      o.extra_legs.push_back({NetAddr{spec->ip(), o.listen.port}, i < labels.size() ? labels[i] : ""});
    }
  }
  if (nets.size() > 1 && (net.empty() || net == "udp")) {
    std::fprintf(stderr, "lanefsd: --net udp cannot be combined with other --net\n");
    return 2;
  }
  if (!fault.empty()) {
    auto f = transport::parse_fault_config(fault);
    if (!f.ok()) {
      std::fprintf(stderr, "lanefsd: --fault: %s\n", f.error().to_string().c_str());
      return 2;
    }
    o.faults = *f;
  }
  // Signals are taken synchronously by the main thread; block them before
  // any thread starts so workers never receive them.
  sigset_t set = lanefs::block_stop_signals();

  auto core = backend::BackendCore::open(o);
  if (!core.ok()) {
    std::fprintf(stderr, "lanefsd: %s\n", core.error().to_string().c_str());
    return 1;
  }
  if (auto st = (*core)->start(); !st.ok()) {
    std::fprintf(stderr, "lanefsd: %s\n", st.error().to_string().c_str());
    return 1;
  }
  {
    std::ofstream pid(data_dir + "/lanefsd.pid", std::ios::trunc);
    pid << getpid() << "\n";
  }
  int sig = 0;
  sigwait(&set, &sig);
  LOG_INFO("signal {}: shutting down", sig);
  (*core)->stop();
  unlink((data_dir + "/lanefsd.pid").c_str());
  return 0;
}
