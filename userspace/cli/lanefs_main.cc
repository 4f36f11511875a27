// lanefs: the administration CLI.
//   lanefs [--backend IP:PORT[,IP:PORT...]] [--json] cluster create|status|processes
//   lanefs fs create|list|delete|locate ...
//   lanefs net check [--json] [--sysfs-root DIR]   (no backend needed)
#include <CLI/CLI.hpp>
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
#include "cli/net_check.h"
#include "common/cli_args.h"
#include "client/cluster_client.h"
#include "client/crypto.h"
#include "client/local_resources.h"
#include "common/log.h"
#include "common/proc_info.h"
#include "lanefs/config.h"
#include "transport/rdma_lane.h"

namespace lanefs::cli {
namespace {

using nlohmann::json;

json fs_json(const proto::FsInfo& f) {
  return {{"id", f.id}, {"name", f.name}, {"root_ino", f.root_ino}, {"created_s", f.created_s},
          {"encrypted", f.encrypted}};
}

json member_json(const proto::Member& m) {
  // Every data address (HA legs) with its switch label; one unlabeled leg
  // for a backend without HA.
  json legs = json::array();
  for (const auto& l : m.legs) legs.push_back({{"addr", l.addr.to_string()}, {"label", l.label}});
  if (m.legs.empty()) legs.push_back({{"addr", m.addr.to_string()}, {"label", ""}});
  return {{"shard", m.shard}, {"uuid", fmt::format("{:016x}", m.uuid)}, {"name", m.name},
          {"hostname", m.hostname}, {"addr", m.addr.to_string()},
          {"rdma", std::string(transport::link_layer_name(static_cast<transport::LinkLayer>(m.rdma_link)))},
          {"rdma_port", m.rdma_port}, {"legs", legs}};
}

std::string rdma_text(const proto::Member& m) {
  if (m.rdma_link == 0) return "-";
  return std::string(transport::link_layer_name(static_cast<transport::LinkLayer>(m.rdma_link))) + ":" +
         std::to_string(m.rdma_port);
}

int cmd_cluster_create(const Globals& g, const std::string& list) {
  auto addrs = parse_net_addr_list(list, 14000);
  if (!addrs.ok()) return fail(addrs.error());
  Globals g2 = g;
  // Talk to the first listed backend unless --backend says otherwise.
  if (g2.backend.empty() && !std::getenv("LANEFS_BACKEND")) g2.backend = (*addrs)[0].to_string();
  auto c = connect(g2);
  if (!c.ok()) return fail(c.error());
  auto m = (*c)->cluster_create(*addrs);
  if (!m.ok()) return fail(m.error());
  if (g.json) {
    json j = {{"cluster_id", fmt::format("{:016x}", m->cluster_id)}, {"epoch", m->epoch}, {"members", json::array()}};
    for (const auto& mem : m->members) j["members"].push_back(member_json(mem));
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("cluster %016llx created with %zu backend(s)\n", (unsigned long long)m->cluster_id, m->members.size());
  }
  auto path = save_admin_token(g, **c);
  if (!path.ok()) return fail(path.error());
  if (!g.json) std::printf("admin token: %s (mode 0600)\n", path->c_str());
  return 0;
}

int cmd_cluster_status(const Globals& g) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto m = (*c)->map();
  auto st = (*c)->status_all();
  for (auto& [mem, s] : st)
    if (s.code() == Errc::kPermission) return fail(s.error());  // the token's role, not the backend
  if (g.json) {
    json j = {{"cluster_id", fmt::format("{:016x}", m.cluster_id)}, {"epoch", m.epoch},
              {"chunk_size", m.chunk_size}, {"filesystems", m.filesystems.size()},
              {"rdma_enabled", m.rdma_enabled}, {"rdma_disabled_clients", m.rdma_disabled_clients},
              {"backends", json::array()}};
    for (auto& [mem, s] : st) {
      json b = member_json(mem);
      b["status"] = s.ok() ? "UP" : "DOWN";
      if (s.ok()) {
        b.update({{"pid", s->pid}, {"uptime_s", s->uptime_s}, {"memory_bytes", s->memory_bytes},
                  {"inodes", s->inodes}, {"chunk_bytes", s->chunk_bytes}, {"disk_total", s->disk_total},
                  {"disk_free", s->disk_free}, {"sessions", s->sessions}, {"requests", s->requests},
                  {"rx_invalid", s->rx_invalid}, {"rx_bad_mac", s->rx_bad_mac}, {"rx_replayed", s->rx_replayed},
                  {"corrupt_blocks", s->corrupt_blocks},
                  {"data_read_bytes", s->data_read_bytes},
                  {"data_written_bytes", s->data_written_bytes}});
      } else {
        b["error"] = s.error().to_string();
      }
      j["backends"].push_back(b);
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("cluster %016llx, map epoch %llu, %zu backend(s), %zu filesystem(s), chunk size %u KiB\n",
              (unsigned long long)m.cluster_id, (unsigned long long)m.epoch, m.members.size(),
              m.filesystems.size(), m.chunk_size / 1024);
  std::printf("RDMA %s%s%s\n", m.rdma_enabled ? "enabled" : "disabled",
              m.rdma_disabled_clients.empty() ? "" : ", disabled for clients: ",
              join(m.rdma_disabled_clients, ", ").c_str());
  std::vector<std::vector<std::string>> rows;
  for (auto& [mem, s] : st) {
    if (s.ok())
      rows.push_back({std::to_string(mem.shard), mem.name, mem.addr.to_string(), "UP", rdma_text(mem),
                      std::to_string(s->inodes), human_bytes(s->chunk_bytes),
                      human_bytes(s->disk_free) + " / " + human_bytes(s->disk_total),
                      human_bytes(s->data_read_bytes) + " / " + human_bytes(s->data_written_bytes),
                      std::to_string(s->sessions), human_duration(s->uptime_s)});
    else
      rows.push_back({std::to_string(mem.shard), mem.name, mem.addr.to_string(), "DOWN", rdma_text(mem), "-", "-",
                      "-", "-", "-", "-"});
  }
  std::cout << render_table({"SHARD", "CONTAINER", "ADDRESS", "STATUS", "RDMA", "INODES", "DATA", "DISK FREE",
                             "READ / WRITTEN", "SESSIONS", "UPTIME"},
                            rows);
  return 0;
}

int cmd_cluster_processes(const Globals& g) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto ps = (*c)->processes();
  if (!ps.ok()) return fail(ps.error());
  if (g.json) {
    json j = json::array();
    for (const auto& p : *ps)
      j.push_back({{"id", p.id}, {"hostname", p.hostname}, {"container", p.container}, {"ips", p.ips},
                   {"status", p.status}, {"roles", p.roles}, {"network", p.network},
                   {"core", p.core < 0 ? json(nullptr) : json(p.core)}, {"memory_bytes", p.memory_bytes},
                   {"uptime_s", p.uptime_s}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : *ps)
    rows.push_back({std::to_string(p.id), p.hostname, p.container, join(p.ips, ","), p.status, join(p.roles, ","),
                    p.network, p.core < 0 ? "" : std::to_string(p.core),
                    p.status == "UP" ? human_bytes(p.memory_bytes) : "", p.status == "UP" ? human_duration(p.uptime_s) : ""});
  std::cout << render_table({"PROCESS ID", "HOSTNAME", "CONTAINER", "IPS", "STATUS", "ROLES", "NETWORK", "CPU",
                             "MEMORY", "UPTIME"},
                            rows);
  return 0;
}

int cmd_fs_create(const Globals& g, const std::string& name, bool encrypted, const std::string& key_file) {
  proto::FsCreateReq req;
  req.name = name;
  if (encrypted != !key_file.empty())
    return fail(make_error(Errc::kInvalid, "--encrypted and --key-file PATH go together"));
  if (encrypted) {
    // The key stays on this host: only its check value goes to the cluster.
    auto key = client::crypto::load_key_file(key_file);
    if (!key.ok()) return fail(key.error());
    auto check = client::crypto::key_check(*key, name);
    if (!check.ok()) return fail(check.error());
    req.encrypted = true;
    req.key_check = *check;
  }
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto f = (*c)->fs_create(req);
  if (!f.ok()) return fail(f.error());
  if (g.json) std::cout << fs_json(*f).dump(2) << "\n";
  else std::printf("filesystem '%s' created (id %u)\n", f->name.c_str(), f->id);
  return 0;
}

int cmd_fs_list(const Globals& g) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto l = (*c)->fs_list();
  if (!l.ok()) return fail(l.error());
  if (g.json) {
    json j = json::array();
    for (const auto& f : *l) j.push_back(fs_json(f));
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : *l) {
    auto s = (*c)->statfs(f.id);
    rows.push_back({std::to_string(f.id), f.name, f.encrypted ? "yes" : "no",
                    s.ok() ? human_bytes(s->total_bytes - s->free_bytes) + " / " + human_bytes(s->total_bytes) : "-"});
  }
  std::cout << render_table({"ID", "NAME", "ENCRYPTED", "USED / CAPACITY"}, rows);
  return 0;
}

int cmd_fs_delete(const Globals& g, const std::string& name) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto st = (*c)->fs_delete(name);
  if (!st.ok()) return fail(st.error());
  if (!g.json) std::printf("filesystem '%s' deleted\n", name.c_str());
  else std::cout << json{{"deleted", name}}.dump() << "\n";
  return 0;
}

int cmd_fs_locate(const Globals& g, const std::string& name, const std::string& path, uint64_t offset) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto fs = (*c)->fs_get(name);
  if (!fs.ok()) return fail(fs.error());
  auto a = (*c)->resolve(fs->root_ino, path);
  if (!a.ok()) return fail(a.error());
  auto loc = (*c)->locate(a->ino, offset);
  if (!loc.ok()) return fail(loc.error());
  if (g.json) {
    std::cout << json{{"ino", a->ino}, {"offset", offset}, {"chunk_index", loc->chunk_index},
                      {"metadata_owner", member_json(loc->meta_owner)}, {"chunk_owner", member_json(loc->chunk_owner)}}
                     .dump(2)
              << "\n";
  } else {
    std::printf("inode %#llx: metadata on %s (%s); chunk %llu on %s (%s)\n", (unsigned long long)a->ino,
                loc->meta_owner.name.c_str(), loc->meta_owner.addr.to_string().c_str(),
                (unsigned long long)loc->chunk_index, loc->chunk_owner.name.c_str(),
                loc->chunk_owner.addr.to_string().c_str());
  }
  return 0;
}

// ---- lanefs cluster rdma enable|disable [--client NAME]
int cmd_cluster_rdma(const Globals& g, bool enable, const std::string& client) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto m = (*c)->rdma_config(enable, client);
  if (!m.ok()) return fail(m.error());
  std::string who = client.empty() ? "the cluster" : "client " + client;
  if (g.json)
    std::cout << json{{"rdma_enabled", m->rdma_enabled}, {"rdma_disabled_clients", m->rdma_disabled_clients},
                      {"epoch", m->epoch}}
                     .dump(2)
              << "\n";
  else
    std::printf("RDMA %s for %s (map epoch %llu)\n", enable ? "enabled" : "disabled", who.c_str(),
                (unsigned long long)m->epoch);
  return 0;
}

int cmd_container_net(const Globals& g, uint8_t action, const std::string& container, const proto::ContainerNic& nic) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  proto::ContainerNetReq req;
  req.action = action;
  req.nic = nic;
  auto r = (*c)->container_net(container, req);
  if (!r.ok()) return fail(r.error());
  if (g.json) {
    json staged = json::array(), active = json::array();
    for (const auto& n : r->staged)
      staged.push_back({{"dev", n.dev}, {"ips", n.ips}, {"netmask_bits", n.netmask_bits}, {"gateway", n.gateway},
                        {"label", n.label}});
    for (const auto& l : r->active) active.push_back({{"addr", l.addr.to_string()}, {"label", l.label}});
    std::cout << json{{"container", container}, {"staged", staged}, {"active", active}}.dump(2) << "\n";
    return 0;
  }
  if (action != proto::ContainerNetReq::kList)
    std::printf("%s: %s %s (applied when its lanefsd restarts)\n", container.c_str(),
                action == proto::ContainerNetReq::kAdd ? "staged" : "unstaged", nic.dev.c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& n : r->staged) {
    std::string ips;
    for (const auto& ip : n.ips) ips += (ips.empty() ? "" : ",") + ip;
    rows.push_back({n.dev, ips.empty() ? "(its address)" : ips, n.netmask_bits ? std::to_string(n.netmask_bits) : "-",
                    n.gateway.empty() ? "-" : n.gateway, n.label.empty() ? "-" : n.label});
  }
  std::printf("staged:\n");
  std::cout << render_table({"DEV", "IPS", "NETMASK", "GATEWAY", "LABEL"}, rows);
  rows.clear();
  for (const auto& l : r->active) rows.push_back({l.addr.to_string(), l.label.empty() ? "-" : l.label});
  std::printf("active:\n");
  std::cout << render_table({"ADDRESS", "LABEL"}, rows);
  return 0;
}


}  // namespace
}  // namespace lanefs::cli

int main(int argc, char** argv) {
  using namespace lanefs::cli;
  spdlog::set_level(spdlog::level::warn);
  CLI::App app{"lanefs: manage a lanefs cluster"};
  app.require_subcommand(1);
  Globals g;
  app.add_option("--backend", g.backend, "backend(s) to contact, IP[:PORT][,...] (env LANEFS_BACKEND; default 127.0.0.1:14000)");
  app.add_flag("--json", g.json, "JSON output");
  app.add_option("--connect-timeout", g.connect_timeout_s, "seconds to wait for a backend to answer")->capture_default_str();
  app.add_option("--timeout", g.timeout_s, "seconds per request")->capture_default_str();
  app.add_option("--token-file", g.token_file,
                 "the token to present (env LANEFS_TOKEN_FILE; default ~/.config/lanefs/token, then "
                 "/etc/lanefs/admin.token); for user login, where the token is written");
  app.set_version_flag("--version", LANEFS_VERSION);

  // Global options are accepted after the subcommand too (subcommands
  // inherit this setting when created).
  app.fallthrough();
  int rc = 0;
  auto* cluster = app.add_subcommand("cluster", "cluster membership and processes");
  cluster->require_subcommand(1);
  std::string create_list;
  auto* cc = cluster->add_subcommand("create", "form a cluster from running backends");
  cc->add_option("addresses", create_list, "ADDR[,ADDR...] of the backends")->required();
  cc->callback([&] { rc = cmd_cluster_create(g, create_list); });
  cluster->add_subcommand("status", "cluster map and per-backend state")->callback([&] { rc = cmd_cluster_status(g); });
  cluster->add_subcommand("processes", "every process of the cluster (WEKA columns)")->callback([&] { rc = cmd_cluster_processes(g); });
  auto* rdma = cluster->add_subcommand("rdma", "RDMA lane for large IOs, for the cluster or one client");
  rdma->require_subcommand(1);
  std::string rdma_client;
  for (bool enable : {true, false}) {
    auto* sc = rdma->add_subcommand(enable ? "enable" : "disable",
                                    enable ? "allow RDMA (the default)" : "never use RDMA");
    sc->add_option("--client", rdma_client, "only for this client (its host name)");
    sc->callback([&, enable] { rc = cmd_cluster_rdma(g, enable, rdma_client); });
  }

  auto* user = app.add_subcommand("user", "users and their tokens");
  user->require_subcommand(1);
  std::string user_name, user_role = "client", user_fs;
  bool root_squash = false;
  auto* ua = user->add_subcommand("add", "add a user (admin roles)");
  ua->add_option("name", user_name, "user name")->required();
  ua->add_option("--role", user_role, "readonly|client|admin|clusteradmin")->capture_default_str();
  ua->add_option("--fs", user_fs, "FS[,FS...]: the only filesystems a client/readonly user may use (default: all)");
  ua->add_flag("--root-squash", root_squash, "requests as uid 0 run as nobody");
  ua->callback([&] { rc = cmd_user_add(g, user_name, user_role, user_fs, root_squash); });
  user->add_subcommand("list", "every user")->callback([&] { rc = cmd_user_list(g); });
  auto* ud = user->add_subcommand("delete", "delete a user: its tokens stop working");
  ud->add_option("name", user_name, "user name")->required();
  ud->callback([&] { rc = cmd_user_delete(g, user_name); });
  auto* ul = user->add_subcommand("login", "write a user's token to --token-file, LANEFS_TOKEN_FILE or ~/.config/lanefs/token");
  ul->add_option("name", user_name, "user name")->required();
  ul->callback([&] { rc = cmd_user_login(g, user_name); });

  auto* ctr = cluster->add_subcommand("container", "backend containers");
  ctr->require_subcommand(1);
  auto* cnet = ctr->add_subcommand("net", "a container's data NICs (HA legs), applied when its lanefsd restarts");
  cnet->require_subcommand(1);
  std::string cn_container, cn_ips, cn_gateway;
  lanefs::proto::ContainerNic cn;
  auto* cadd = cnet->add_subcommand("add", "stage a data NIC on a container");
  cadd->add_option("container", cn_container, "container name (--name of its lanefsd)")->required();
  cadd->add_option("dev", cn.dev, "network interface on the container's host")->required();
  cadd->add_option("--ips", cn_ips, "its data IPs, comma-separated (default: the interface's address)");
  cadd->add_option("--netmask", cn.netmask_bits, "prefix length of the IPs")->check(CLI::Range(0u, 32u));
  cadd->add_option("--gateway", cn.gateway, "gateway for peers outside the subnet");
  cadd->add_option("--label", cn.label, "the switch the NIC is on (same-label paths are preferred)");
  cadd->callback([&] {
    for (size_t at = 0; !cn_ips.empty() && at <= cn_ips.size();) {
      size_t comma = cn_ips.find(',', at);
      cn.ips.push_back(cn_ips.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
    rc = cmd_container_net(g, lanefs::proto::ContainerNetReq::kAdd, cn_container, cn);
  });
  auto* crm = cnet->add_subcommand("remove", "unstage a data NIC");
  crm->add_option("container", cn_container, "container name")->required();
  crm->add_option("dev", cn.dev, "network interface")->required();
  crm->callback([&] { rc = cmd_container_net(g, lanefs::proto::ContainerNetReq::kRemove, cn_container, cn); });
  auto* cls = cnet->add_subcommand("list", "staged and active data NICs of a container");
  cls->add_option("container", cn_container, "container name")->required();
  cls->callback([&] { rc = cmd_container_net(g, lanefs::proto::ContainerNetReq::kList, cn_container, cn); });

  auto* fs = app.add_subcommand("fs", "filesystems");
  fs->require_subcommand(1);
  std::string fs_name, fs_path = "/";
  uint64_t fs_offset = 0;
  auto* fc = fs->add_subcommand("create", "create a filesystem");
  fc->add_option("name", fs_name)->required();
  bool fs_encrypted = false;
  std::string fs_key_file;
  fc->add_flag("--encrypted", fs_encrypted, "encrypt file data on the clients (needs --key-file)");
  fc->add_option("--key-file", fs_key_file, "file with the 256-bit key: 32 raw bytes or 64 hex characters, mode 0600");
  fc->callback([&] { rc = cmd_fs_create(g, fs_name, fs_encrypted, fs_key_file); });
  fs->add_subcommand("list", "list filesystems")->callback([&] { rc = cmd_fs_list(g); });
  auto* fd = fs->add_subcommand("delete", "delete a filesystem and all its data");
  fd->add_option("name", fs_name)->required();
  fd->callback([&] { rc = cmd_fs_delete(g, fs_name); });
  bool scrub_repair = false;
  auto* fsc = fs->add_subcommand("scrub", "check every block of a filesystem's data against its CRC32C, on every backend");
  fsc->add_option("name", fs_name)->required();
  fsc->add_flag("--repair", scrub_repair, "rebuild damaged blocks from another copy (none exists yet: reported)");
  fsc->callback([&] { rc = cmd_fs_scrub(g, fs_name, scrub_repair); });
  auto* fl = fs->add_subcommand("locate", "where a path's metadata and data live");
  fl->add_option("name", fs_name)->required();
  fl->add_option("path", fs_path)->required();
  // CLI11's NonNegativeNumber names its range as "0.000000 to 1.8e308" in
  // full digits: say it in words instead.
  fl->add_option("--offset", fs_offset, "byte offset whose chunk to locate")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return !v.empty() && v[0] != '-' ? std::string{} : "a byte offset is 0 or more, not " + v;
          },
          "BYTES"));
  fl->callback([&] { rc = cmd_fs_locate(g, fs_name, fs_path, fs_offset); });

  bool stats_paths = false;
  auto* st = app.add_subcommand("stats", "IOs and bytes per lane of this host's mounts, fallbacks, and why IO did not use RDMA");
  st->add_flag("--paths", stats_paths, "per network path (HA legs): state, health, label, bytes, failovers");
  st->callback([&] { rc = cmd_stats(g, stats_paths); });

  auto* local = app.add_subcommand("local", "this host's lanefs containers");
  local->require_subcommand(1);
  local->add_subcommand("ps", "client and backend containers on this host")->callback([&] { rc = cmd_local_ps(g); });
  auto* setup = local->add_subcommand("setup", "host settings lanefs uses");
  setup->require_subcommand(1);
  std::string uring_state;
  auto* furing = setup->add_subcommand(
      "fuse-uring", "turn FUSE over io_uring on or off in the kernel (fuse.enable_uring; root; for mounts made afterwards)");
  furing->add_option("state", uring_state, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
  furing->callback([&] { rc = cmd_setup_fuse_uring(g, uring_state); });
  auto* res = local->add_subcommand("resources", "this host's lanefs resources (LANEFS_RESOURCES or /etc/lanefs/resources.json)");
  res->require_subcommand(1);
  auto* rnet = res->add_subcommand("net", "data NICs and their switch labels (used by mounts with net:ha=)");
  rnet->require_subcommand(1);
  std::string res_dev, res_label;
  auto* radd = rnet->add_subcommand("add", "add a NIC (or change its label)");
  radd->add_option("dev", res_dev, "network interface")->required();
  radd->add_option("--label", res_label, "the switch it is on (same-label paths are preferred)");
  radd->callback([&] { rc = cmd_resources_net(g, "add", res_dev, res_label); });
  auto* rrm = rnet->add_subcommand("remove", "remove a NIC");
  rrm->add_option("dev", res_dev, "network interface")->required();
  rrm->callback([&] { rc = cmd_resources_net(g, "remove", res_dev, ""); });
  rnet->add_subcommand("list", "list the NICs")->callback([&] { rc = cmd_resources_net(g, "list", "", ""); });

  auto* net = app.add_subcommand("net", "this host's network devices");
  net->require_subcommand(1);
  NetCheckOptions nc;
  std::string sysfs_root = "/sys", nc_mode = "full";
  auto* ncheck = net->add_subcommand("check", "per NIC: the lane (DPDK polling, DPDK rx-interrupt, UDP), RDMA, and why");
  ncheck->add_option("--sysfs-root", sysfs_root, "sysfs tree to inspect")->capture_default_str();
  ncheck->add_option("--cores", nc.cores, "dedicated frontend cores (num_cores)")->check(CLI::Range(1u, 1024u))->capture_default_str();
  ncheck->add_option("--dedicated-mode", nc_mode, "full (polling) or none (RX interrupts)")->check(CLI::IsMember({"full", "none"}))->capture_default_str();
  ncheck->add_option("--memory-mb", nc.dpdk_memory_mb, "DPDK memory that must come from hugepages")->capture_default_str();
  ncheck->callback([&] {
    nc.dedicated_full = nc_mode == "full";
    auto r = inspect_host(sysfs_root, nc);
    if (!r.ok()) rc = fail(r.error());
    else std::cout << (g.json ? to_json(*r).dump(2) + "\n" : format_text(*r));
  });

  // Commands run as callbacks inside the parse.
  if (int code = lanefs::parse_args(app, argc, argv, "lanefs"); code >= 0) return code;
  return rc;
}
