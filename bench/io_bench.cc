// Data-path latency without FUSE: a ClusterClient against a running lanefsd
// reads and writes one file with N calls of SIZE bytes from one thread
// (run to completion), and prints the median and p99 per call and the rate.
// Measures; asserts nothing.
//
//   io_bench --backend 127.0.0.1:14000 --fs NAME [--size 1048576] [--count 200] [--write]
#include <fmt/core.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <vector>

#include "client/cluster_client.h"
#include "common/clock.h"

using namespace lanefs;

int main(int argc, char** argv) {
  std::string backend = "127.0.0.1:14000", fs_name;
  uint32_t size = 1 << 20, count = 200;
  bool write = false;
  CLI::App app{"lanefs data-path latency (no FUSE)"};
  app.add_option("--backend", backend, "a backend IP:PORT");
  app.add_option("--fs", fs_name, "filesystem")->required();
  app.add_option("--size", size, "bytes per call")->check(CLI::Range(1u, 16u << 20));
  app.add_option("--count", count, "calls")->check(CLI::Range(1u, 1000000u));
  app.add_flag("--write", write, "time writes (default: reads)");
  CLI11_PARSE(app, argc, argv);
  auto addr = parse_net_addr(backend, 14000);
  if (!addr.ok()) return fmt::print(stderr, "{}\n", addr.error().to_string()), 2;
  client::ClusterClientOptions o;
  o.backends = {*addr};
  auto c = client::ClusterClient::connect(o);
  if (!c.ok()) return fmt::print(stderr, "{}\n", c.error().to_string()), 1;
  auto fs = (*c)->fs_get(fs_name);
  if (!fs.ok()) return fmt::print(stderr, "{}\n", fs.error().to_string()), 1;
  proto::CreateReq cr;
  cr.parent = fs->root_ino;
  cr.name = "io_bench.dat";
  cr.mode = S_IFREG | 0644;
  cr.exclusive = false;
  auto f = (*c)->create(cr);
  if (!f.ok()) return fmt::print(stderr, "{}\n", f.error().to_string()), 1;
  std::vector<uint8_t> buf(size, 0x5a);
  if (auto w = (*c)->write_data(f->ino, 0, buf, nullptr); !w.ok()) return fmt::print(stderr, "{}\n", w.error().to_string()), 1;
  std::vector<uint64_t> ns;
  uint64_t t0 = mono_ns();
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t s = mono_ns();
    Status st = write ? (*c)->write_data(f->ino, 0, buf, nullptr) : (*c)->read_into(f->ino, 0, buf);
    if (!st.ok()) return fmt::print(stderr, "{}\n", st.error().to_string()), 1;
    ns.push_back(mono_ns() - s);
  }
  double secs = static_cast<double>(mono_ns() - t0) / 1e9;
  std::sort(ns.begin(), ns.end());
  fmt::print("{} {} x {} B: p50 {:.1f} us, p99 {:.1f} us, {:.0f} calls/s, {:.1f} MB/s\n", write ? "write" : "read", count,
             size, ns[ns.size() / 2] / 1e3, ns[ns.size() * 99 / 100] / 1e3, count / secs, count * double(size) / secs / 1e6);
  return 0;
}
