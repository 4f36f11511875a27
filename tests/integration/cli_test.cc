// The `lanefs` CLI binary against a real lanefsd: process listing (JSON and
// table), filesystem commands, error lines and exit codes, address handling.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "integration/backend_fixture.h"

namespace lanefs::test {
namespace {

using nlohmann::json;

uint64_t vm_rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "VmRSS:  123 kB"
  return 0;
}

std::string my_hostname() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = std::make_unique<BackendProcess>("clib");
    if (auto st = backend_->start(); !st.ok()) setup_error_ = st.error().to_string();
  }
  static void TearDownTestSuite() { backend_.reset(); }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--backend", backend_->addr_string()});
    return run_cli(args);
  }

  inline static std::unique_ptr<BackendProcess> backend_;
  inline static std::string setup_error_;
};

TEST_F(CliTest, ProcessesJson) {
  auto r = cli({"--json", "cluster", "processes"});
  ASSERT_EQ(r.rc, 0) << r.out;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.out;
  ASSERT_EQ(j.size(), 3u) << r.out;
  const std::set<std::string> keys = {"id",      "hostname", "container", "ips",          "status",
                                      "roles",   "network",  "core",      "memory_bytes", "uptime_s"};
  uint64_t rss = vm_rss_bytes(backend_->pid());
  ASSERT_GT(rss, 0u);
  std::set<std::string> roles;
  std::set<uint64_t> ids;
  std::map<uint64_t, uint64_t> uptime;
  for (const auto& p : j) {
    ASSERT_TRUE(p.is_object());
    std::set<std::string> got;
    for (auto it = p.begin(); it != p.end(); ++it) got.insert(it.key());
    EXPECT_EQ(got, keys) << p.dump();
    ASSERT_TRUE(p["id"].is_number_unsigned());
    ids.insert(p["id"].get<uint64_t>());
    EXPECT_EQ(p["hostname"], my_hostname());
    EXPECT_EQ(p["container"], "clib");
    EXPECT_EQ(p["ips"], json::array({"127.0.0.1"}));
    EXPECT_EQ(p["status"], "UP");
    ASSERT_TRUE(p["roles"].is_array());
    ASSERT_EQ(p["roles"].size(), 1u);
    roles.insert(p["roles"][0].get<std::string>());
    EXPECT_EQ(p["network"], "UDP");
    EXPECT_TRUE(p["core"].is_null() || p["core"].is_number_integer()) << p.dump();
    ASSERT_TRUE(p["memory_bytes"].is_number_unsigned());
    uint64_t mem = p["memory_bytes"].get<uint64_t>();
    EXPECT_GT(mem, 1'000'000u);
    EXPECT_LE(mem, rss * 2) << "VmRSS " << rss;
    EXPECT_GE(mem * 2, rss) << "VmRSS " << rss;
    ASSERT_TRUE(p["uptime_s"].is_number_unsigned());
    uptime[p["id"].get<uint64_t>()] = p["uptime_s"].get<uint64_t>();
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(roles, (std::set<std::string>{"MANAGEMENT", "COMPUTE", "DRIVES"}));

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto r2 = cli({"--json", "cluster", "processes"});
  ASSERT_EQ(r2.rc, 0) << r2.out;
  json j2 = json::parse(r2.out, nullptr, false);
  ASSERT_TRUE(j2.is_array() && j2.size() == 3u) << r2.out;
  for (const auto& p : j2) {
    uint64_t id = p["id"].get<uint64_t>();
    ASSERT_TRUE(uptime.count(id)) << "process ids changed: " << r2.out;
    EXPECT_GT(p["uptime_s"].get<uint64_t>(), uptime[id]) << "uptime did not grow";
  }
}

TEST_F(CliTest, ProcessesTable) {
  auto r = cli({"cluster", "processes"});
  ASSERT_EQ(r.rc, 0) << r.out;
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  const std::vector<std::string> cols = {"PROCESS ID", "HOSTNAME", "CONTAINER", "IPS",    "STATUS",
                                         "ROLES",      "NETWORK",  "CPU",       "MEMORY", "UPTIME"};
  size_t at = 0;
  for (const auto& col : cols) {
    size_t pos = lines[0].find(col, at);
    ASSERT_NE(pos, std::string::npos) << "column " << col << " missing or out of order: " << lines[0];
    at = pos + col.size();
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_NE(lines[i].find("UP"), std::string::npos) << lines[i];
    EXPECT_NE(lines[i].find("UDP"), std::string::npos) << lines[i];
    EXPECT_NE(lines[i].find("clib"), std::string::npos) << lines[i];
    EXPECT_NE(lines[i].find(my_hostname()), std::string::npos) << lines[i];
  }
}

TEST_F(CliTest, FsCreateListDelete) {
  auto c = cli({"fs", "create", "x"});
  ASSERT_EQ(c.rc, 0) << c.out;
  auto l = cli({"--json", "fs", "list"});
  ASSERT_EQ(l.rc, 0) << l.out;
  json j = json::parse(l.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << l.out;
  bool found = false;
  for (const auto& f : j) found |= f["name"] == "x";
  EXPECT_TRUE(found) << l.out;
  auto table = cli({"fs", "list"});
  ASSERT_EQ(table.rc, 0) << table.out;
  EXPECT_NE(table.out.find("x"), std::string::npos);

  auto again = cli({"fs", "create", "x"});
  EXPECT_NE(again.rc, 0) << again.out;
  auto lines = lines_of(again.out);
  ASSERT_EQ(lines.size(), 1u) << again.out;
  EXPECT_NE(lines[0].find("exists"), std::string::npos) << again.out;

  auto nope = cli({"fs", "delete", "nope"});
  EXPECT_NE(nope.rc, 0) << nope.out;
  EXPECT_EQ(lines_of(nope.out).size(), 1u) << nope.out;
  EXPECT_NE(nope.out.find("nope"), std::string::npos) << nope.out;

  auto del = cli({"fs", "delete", "x"});
  ASSERT_EQ(del.rc, 0) << del.out;
  l = cli({"--json", "fs", "list"});
  ASSERT_EQ(l.rc, 0) << l.out;
  j = json::parse(l.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << l.out;
  for (const auto& f : j) EXPECT_NE(f["name"], "x");
}

TEST_F(CliTest, UnreachableBackendFailsFastWithOneLine) {
  uint16_t dead = free_udp_port();
  std::string where = "127.0.0.1:" + std::to_string(dead);
  auto r = run_cli({"--backend", where, "--connect-timeout", "1", "fs", "list"});
  std::printf("unreachable backend: exit %d after %.2f s\n", r.rc, r.seconds);
  EXPECT_NE(r.rc, 0);
  EXPECT_LT(r.seconds, 10.0);
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_NE(lines[0].find(where), std::string::npos) << r.out;
}

// Several backends listed, the first one down: every address is tried
// within the connect deadline and the live one is enough (the dead first
// address used to take the whole deadline, and the command failed).
TEST_F(CliTest, FirstBackendDownSecondUpIsEnough) {
  std::string dead = "127.0.0.1:" + std::to_string(free_udp_port());
  auto r = run_cli({"--backend", dead + "," + backend_->addr_string(), "--connect-timeout", "3", "fs", "list"});
  std::printf("first backend down: exit %d after %.2f s\n", r.rc, r.seconds);
  EXPECT_EQ(r.rc, 0) << r.out;
}

TEST_F(CliTest, BackendFromEnvironment) {
  auto ok = run_cli({"--json", "cluster", "processes"}, {"LANEFS_BACKEND=" + backend_->addr_string()});
  ASSERT_EQ(ok.rc, 0) << ok.out;
  json j = json::parse(ok.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 3u) << ok.out;
  EXPECT_EQ(j[0]["container"], "clib");
  // A dead address in the environment is the one the CLI reports.
  std::string dead = "127.0.0.1:" + std::to_string(free_udp_port());
  auto bad = run_cli({"--connect-timeout", "1", "fs", "list"}, {"LANEFS_BACKEND=" + dead});
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.out.find(dead), std::string::npos) << bad.out;
  // --backend wins over the environment.
  auto both = run_cli({"--backend", backend_->addr_string(), "fs", "list"}, {"LANEFS_BACKEND=" + dead});
  EXPECT_EQ(both.rc, 0) << both.out;
}

TEST_F(CliTest, BadAddressIsUsageError) {
  auto r = run_cli({"--backend", "1.2.3", "fs", "list"});
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(lines_of(r.out).size(), 1u) << r.out;
  auto r2 = run_cli({"--backend", "127.0.0.1:99999", "fs", "list"});
  EXPECT_EQ(r2.rc, 2) << r2.out;
}

// Argument errors exit 2 (the documented code) with one line naming what
// was wrong; an unknown command word is named and the nearest suggested.
TEST(CliArgs, ArgumentErrorsExit2AndNameTheWord) {
  auto bogus = run_cli({"bogus"});
  EXPECT_EQ(bogus.rc, 2) << bogus.out;
  EXPECT_NE(bogus.out.find("unknown command 'bogus'"), std::string::npos) << bogus.out;
  EXPECT_EQ(lines_of(bogus.out).size(), 1u) << bogus.out;
  auto near = run_cli({"fs", "lst"});
  EXPECT_EQ(near.rc, 2) << near.out;
  EXPECT_NE(near.out.find("unknown command 'lst'"), std::string::npos) << near.out;
  EXPECT_NE(near.out.find("did you mean 'list'"), std::string::npos) << near.out;
  auto none = run_cli({});
  EXPECT_EQ(none.rc, 2) << none.out;
  auto bad_opt = run_cli({"fs", "list", "--no-such-option"});
  EXPECT_EQ(bad_opt.rc, 2) << bad_opt.out;
  EXPECT_NE(bad_opt.out.find("--no-such-option"), std::string::npos) << bad_opt.out;
  auto missing = run_cli({"fs", "create"});
  EXPECT_EQ(missing.rc, 2) << missing.out;
  auto negative = run_cli({"fs", "locate", "x", "/f", "--offset", "-5"});
  EXPECT_EQ(negative.rc, 2) << negative.out;
  EXPECT_NE(negative.out.find("0 or more"), std::string::npos) << negative.out;
  EXPECT_LT(negative.out.size(), 200u) << "not one clear line: " << negative.out;
  auto help = run_cli({"--help"});
  EXPECT_EQ(help.rc, 0) << help.out;
}

// fs locate and fs commands: one clear line and the right code for each.
TEST_F(CliTest, LocateAndNameErrorsAreClear) {
  ASSERT_EQ(cli({"fs", "create", "loc"}).rc, 0);
  auto nosuch = cli({"fs", "locate", "loc", "/nosuch"});
  EXPECT_EQ(nosuch.rc, 4) << nosuch.out;  // kNotFound
  EXPECT_NE(nosuch.out.find("/nosuch: no such file or directory"), std::string::npos) << nosuch.out;
  EXPECT_EQ(nosuch.out.find("dirent"), std::string::npos) << nosuch.out;
  std::string huge(2000, 'a');
  auto create = cli({"fs", "create", huge});
  EXPECT_EQ(create.rc, 2) << create.out;  // kInvalid, not "malformed message body"
  EXPECT_NE(create.out.find("must be 1-64 characters"), std::string::npos) << create.out;
  EXPECT_EQ(lines_of(create.out).size(), 1u);
  auto del = cli({"fs", "delete", huge});
  EXPECT_EQ(del.rc, 4) << del.out;
  EXPECT_NE(del.out.find("no filesystem named"), std::string::npos) << del.out;
  EXPECT_EQ(cli({"fs", "delete", "loc"}).rc, 0);
}

// lanefsd refuses a log file it cannot open and an unknown log level with
// one line and exit 2 (it used to abort, or to log nothing).
TEST(LanefsdArgs, BadLogFileAndLevelExit2) {
  std::string out;
  int rc = run_command({lanefsd_path(), "--data-dir", "/tmp/lanefs-never-made", "--log-file", "/proc/nope/log"}, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("/proc/nope/log"), std::string::npos) << out;
  rc = run_command({lanefsd_path(), "--data-dir", "/tmp/lanefs-never-made", "--log-level", "chatty"}, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("chatty"), std::string::npos) << out;
  rc = run_command({lanefsd_path(), "--bogus-flag"}, &out);
  EXPECT_EQ(rc, 2) << out;
}

TEST_F(CliTest, ClusterRdmaEnableDisable) {
  auto status = [] {
    auto r = cli({"--json", "cluster", "status"});
    EXPECT_EQ(r.rc, 0) << r.out;
    return json::parse(r.out, nullptr, false);
  };
  json s0 = status();
  ASSERT_TRUE(s0.is_object());
  EXPECT_TRUE(s0["rdma_enabled"].get<bool>());
  uint64_t epoch0 = s0["epoch"].get<uint64_t>();
  // This host has no RDMA device: the backend advertises none.
  EXPECT_EQ(s0["backends"][0]["rdma"], "none");
  // The data byte counters the fio bench compares with what fio moved.
  EXPECT_TRUE(s0["backends"][0]["data_read_bytes"].is_number_unsigned()) << s0.dump();
  EXPECT_TRUE(s0["backends"][0]["data_written_bytes"].is_number_unsigned()) << s0.dump();

  auto r = cli({"cluster", "rdma", "disable", "--client", "gpu-7"});
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("RDMA disabled for client gpu-7"), std::string::npos) << r.out;
  json s1 = status();
  EXPECT_TRUE(s1["rdma_enabled"].get<bool>());
  EXPECT_EQ(s1["rdma_disabled_clients"], json::array({"gpu-7"}));
  EXPECT_GT(s1["epoch"].get<uint64_t>(), epoch0);
  // Disabling twice changes nothing (same epoch).
  ASSERT_EQ(cli({"cluster", "rdma", "disable", "--client", "gpu-7"}).rc, 0);
  EXPECT_EQ(status()["epoch"], s1["epoch"]);

  ASSERT_EQ(cli({"cluster", "rdma", "disable"}).rc, 0);
  EXPECT_FALSE(status()["rdma_enabled"].get<bool>());
  auto table = cli({"cluster", "status"});
  EXPECT_NE(table.out.find("RDMA disabled, disabled for clients: gpu-7"), std::string::npos) << table.out;
  // Processes never claim RDMA without it.
  auto ps = json::parse(cli({"--json", "cluster", "processes"}).out, nullptr, false);
  for (const auto& p : ps) EXPECT_EQ(p["network"], "UDP") << p.dump();

  ASSERT_EQ(cli({"cluster", "rdma", "enable"}).rc, 0);
  ASSERT_EQ(cli({"cluster", "rdma", "enable", "--client", "gpu-7"}).rc, 0);
  json s2 = status();
  EXPECT_TRUE(s2["rdma_enabled"].get<bool>());
  EXPECT_TRUE(s2["rdma_disabled_clients"].empty());
  // The setting survives a backend restart (it is in the stored map).
  ASSERT_EQ(cli({"cluster", "rdma", "disable", "--client", "gpu-8"}).rc, 0);
  ASSERT_OK(backend_->restart());
  EXPECT_EQ(status()["rdma_disabled_clients"], json::array({"gpu-8"}));
  ASSERT_EQ(cli({"cluster", "rdma", "enable", "--client", "gpu-8"}).rc, 0);

  auto bad = cli({"cluster", "rdma", "maybe"});
  EXPECT_NE(bad.rc, 0);
}


// `lanefs local resources net add|remove|list`: host configuration only, no
// backend needed. LANEFS_RESOURCES points into a temporary directory.
TEST(CliResources, NetAddListRemove) {
  TempDir dir;
  const std::string file = dir.path() + "/etc/resources.json";
  const std::vector<std::string> env = {"LANEFS_RESOURCES=" + file};
  auto net = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"local", "resources", "net"});
    return run_cli(args, env);
  };
  auto listed = [&] {
    auto r = net({"list", "--json"});
    EXPECT_EQ(r.rc, 0) << r.out;
    return json::parse(r.out, nullptr, false);
  };
  EXPECT_EQ(listed(), json::array()) << "no file yet: an empty list";

  auto add = net({"add", "eth9", "--label", "A"});
  ASSERT_EQ(add.rc, 0) << add.out;
  EXPECT_TRUE(std::filesystem::exists(file)) << "the file (and its directory) was not written";
  auto lines = lines_of(add.out);  // the table after the change
  ASSERT_EQ(lines.size(), 2u) << add.out;
  EXPECT_NE(lines[0].find("DEV"), std::string::npos) << add.out;
  EXPECT_NE(lines[0].find("LABEL"), std::string::npos) << add.out;
  EXPECT_EQ(lines[1].rfind("eth9", 0), 0u) << add.out;
  EXPECT_NE(lines[1].find('A'), std::string::npos) << add.out;
  EXPECT_EQ(listed(), json::parse(R"([{"dev": "eth9", "label": "A"}])"));

  // Adding a listed NIC again changes its label; an unlabeled one shows "-".
  ASSERT_EQ(net({"add", "eth9", "--label", "B"}).rc, 0);
  ASSERT_EQ(net({"add", "eth8"}).rc, 0);
  EXPECT_EQ(listed(), json::parse(R"([{"dev": "eth9", "label": "B"}, {"dev": "eth8", "label": ""}])"));
  auto table = net({"list"});
  ASSERT_EQ(table.rc, 0) << table.out;
  auto rows = lines_of(table.out);
  ASSERT_EQ(rows.size(), 3u) << table.out;
  EXPECT_NE(rows[2].find("-"), std::string::npos) << table.out;

  auto rm = net({"remove", "eth9"});
  ASSERT_EQ(rm.rc, 0) << rm.out;
  EXPECT_EQ(listed(), json::parse(R"([{"dev": "eth8", "label": ""}])"));
  auto again = net({"remove", "eth9"});
  EXPECT_EQ(again.rc, 4) << again.out;  // not found
  ASSERT_EQ(lines_of(again.out).size(), 1u) << again.out;
  EXPECT_NE(again.out.find("eth9 is not in " + file), std::string::npos) << again.out;

  // Names that cannot be interfaces are usage errors and change nothing.
  for (const char* bad : {"a/b", "a=b", "abcdefghijklmnop"}) {
    auto r = net({"add", bad, "--label", "A"});
    EXPECT_EQ(r.rc, 2) << bad << ": " << r.out;
    EXPECT_NE(r.out.find("is not a network interface name"), std::string::npos) << r.out;
  }
  EXPECT_EQ(listed(), json::parse(R"([{"dev": "eth8", "label": ""}])"));

  // A damaged file is reported (exit 2, naming it), not overwritten.
  { std::ofstream(file, std::ios::trunc) << "{oops"; }
  auto broken = net({"add", "eth7"});
  EXPECT_EQ(broken.rc, 2) << broken.out;
  EXPECT_NE(broken.out.find(file), std::string::npos) << broken.out;
  std::ifstream in(file);
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, "{oops");
}

}  // namespace
}  // namespace lanefs::test
