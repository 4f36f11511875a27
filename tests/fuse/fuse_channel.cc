#include "fuse/fuse_channel.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "integration/backend_fixture.h"

namespace lanefs::test {
namespace {

constexpr const char* kParam = "/sys/module/fuse/parameters/enable_uring";

struct Restore {
  std::string before;
  ~Restore() {
    if (before.empty()) return;
    std::ofstream out(kParam);
    out << before;
  }
};

}  // namespace

const std::string& test_fuse_channel() {
  static const std::string ch = [] {
    const char* v = std::getenv("LANEFS_TEST_FUSE_CHANNEL");
    return std::string(v ? v : "");
  }();
  return ch;
}

std::string with_test_channel(const std::string& opts) {
  if (test_fuse_channel() == "kernel") {
    if (opts.find("client=") != std::string::npos) return opts;
    return opts + (opts.empty() ? "" : ",") + "client=kernel";
  }
  if (test_fuse_channel().empty() || opts.find("fuse_channel=") != std::string::npos) return opts;
  return opts + (opts.empty() ? "" : ",") + "fuse_channel=" + test_fuse_channel();
}

Status prepare_test_channel() {
  if (test_fuse_channel().empty()) return ok_status();
  if (test_fuse_channel() == "kernel") {
    if (access("/dev/lanefs", F_OK) == 0) return ok_status();
    return Status(make_error(Errc::kNotSupported, "LANEFS_TEST_FUSE_CHANNEL=kernel: /dev/lanefs is missing "
                                                  "(load lanefs.ko first)"));
  }
  static Restore restore;
  static Status done = [] {
    // uring runs need the parameter on; classic runs turn it off, so that
    // mounts made without fuse_channel= (mount(8) with fstab lines) are
    // classic too.
    const bool uring = test_fuse_channel() == "uring";
    std::ifstream in(kParam);
    std::string v;
    if (!in || !std::getline(in, v)) {
      if (!uring) return ok_status();
      return Status(make_error(Errc::kNotSupported, std::string("LANEFS_TEST_FUSE_CHANNEL=uring: ") + kParam +
                                                        " is missing (no FUSE over io_uring in this kernel)"));
    }
    if (v == (uring ? "Y" : "N")) return ok_status();
    std::ofstream out(kParam);
    out << (uring ? "Y" : "N");
    out.close();
    if (!out) return Status(make_error(Errc::kPermission, std::string("cannot turn on ") + kParam));
    restore.before = v;
    return ok_status();
  }();
  return done;
}

std::string check_test_channel(const std::string& run_dir, const std::string& dir) {
  if (test_fuse_channel().empty()) return "";
  CliRun r = run_cli({"--json", "stats"}, {"LANEFS_RUN_DIR=" + run_dir});
  if (r.rc != 0) return "";  // no frontend (a test killed it): nothing to check
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_array()) return "";
  for (const auto& m : j) {
    if (m.value("target", "") != dir) continue;
    if (test_fuse_channel() == "kernel") {
      if (m.value("client", "") != "kernel" || m.value("kernel_requests", 0ull) == 0)
        return "mount " + dir + " was to use the kernel client but uses '" + m.value("client", "") + "' (" +
               m.value("channel_reason", "") + ")";
      return "";
    }
    const std::string channel = m.value("channel", "");
    const uint64_t classic = m.value("fuse_requests_classic", 0ull), uring = m.value("fuse_requests_uring", 0ull);
    const uint64_t other = test_fuse_channel() == "uring" ? classic : uring;
    if (channel != test_fuse_channel() || other != 0)
      return "mount " + dir + " was to use the " + test_fuse_channel() + " FUSE channel but uses '" + channel +
             "' (" + m.value("channel_reason", "") + "); requests: classic " + std::to_string(classic) +
             ", uring " + std::to_string(uring);
    return "";
  }
  return "";
}

}  // namespace lanefs::test
