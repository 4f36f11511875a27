// Namespace changes resent after a backend restart (backend/meta_replay.cc):
// a create, mkdir, link, rename, unlink or rmdir commits, its reply never
// reaches the client (nftables drops the backend's packets to it), the
// backend is killed (-9) and restarted, the client reconnects and sends the
// request again. It must get the success its change had, not EEXIST or
// ENOENT from running it a second time, and the change must have happened
// exactly once. A request that never reached the backend before the
// restart runs normally when resent.
//
// In a network namespace of its own (loopback only) with nftables; needs
// root, skipped with the reason otherwise.
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <future>

#include "common/clock.h"
#include "integration/backend_fixture.h"

namespace lanefs::test {
namespace {

std::string g_skip;

int sh(const std::vector<std::string>& argv) { return run_command(argv); }

class NetnsEnv : public ::testing::Environment {
 public:
  void SetUp() override { g_skip = enter_netns_with_nft("lfresend"); }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new NetnsEnv);

constexpr uint32_t kClientIp = 0x7f000003u;  // 127.0.0.3: the client whose packets are dropped

// Drops the backend's packets to the client (replies lost) or the client's
// packets to the backend (requests lost).
void drop(uint16_t backend_port, bool replies) {
  std::vector<std::string> argv = {"nft", "add", "rule", "inet", "lfresend", "out"};
  if (replies) {
    for (const char* w : {"ip", "daddr", "127.0.0.3", "udp", "sport"}) argv.push_back(w);
  } else {
    for (const char* w : {"ip", "saddr", "127.0.0.3", "udp", "dport"}) argv.push_back(w);
  }
  argv.push_back(std::to_string(backend_port));
  argv.push_back("drop");
  ASSERT_EQ(sh(argv), 0);
}
void clear_drops() { ASSERT_EQ(sh({"nft", "flush", "chain", "inet", "lfresend", "out"}), 0); }

class Resend : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_skip.empty()) GTEST_SKIP() << g_skip;
    clear_drops();
    ASSERT_OK(b_.start());
    auto c = connect_client({b_.addr()});
    ASSERT_OK(c);
    check_ = std::move(*c);
    ASSERT_OK(check_->fs_create("fs1"));
    auto fs = check_->fs_get("fs1");
    ASSERT_OK(fs);
    root_ = fs->root_ino;
    client::ClusterClientOptions o;
    o.backends = {b_.addr()};
    o.connect_timeout_ns = 20 * kSecond;  // waits out the restart
    o.op_timeout_ns = 60 * kSecond;
    o.name = "resend-test";
    o.bind = NetAddr{kClientIp, 0};
    auto a = client::ClusterClient::connect(o);
    ASSERT_OK(a);
    client_ = std::move(*a);
  }
  void TearDown() override {
    if (g_skip.empty()) clear_drops();
  }

  // Runs `op` on the client while its replies (or requests) are dropped;
  // once `happened` (asked through the other client) holds — or, for lost
  // requests, after a moment — restarts the backend and lets packets
  // through. Returns what `op` returned.
  Status across_restart(std::function<Status(client::ClusterClient&)> op,
                        std::function<bool(client::ClusterClient&)> happened, bool lose_replies = true) {
    drop(b_.port(), lose_replies);
    auto done = std::async(std::launch::async, [&] { return op(*client_); });
    if (lose_replies) {
      const uint64_t give_up = mono_ns() + 20 * kSecond;
      while (!happened(*check_) && mono_ns() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      EXPECT_TRUE(happened(*check_)) << "the change never showed";
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the client resends into the old session
    b_.kill9();
    clear_drops();
    EXPECT_OK(b_.start());
    if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      ADD_FAILURE() << "the operation did not finish within 60 s of the restart";
      return make_error(Errc::kTimeout, "operation hung");
    }
    auto c = connect_client({b_.addr()});  // the old one's session is gone with the backend
    if (c.ok()) check_ = std::move(*c);
    return done.get();
  }

  bool exists(client::ClusterClient& c, uint64_t dir, const std::string& name) { return c.lookup(dir, name).ok(); }
  // "" when ok, else the error and the backend's log.
  std::string failure(const Status& s) { return s.ok() ? "" : s.error().to_string() + "\n" + b_.log_tail(); }

  BackendProcess b_{"resend"};
  std::unique_ptr<client::ClusterClient> check_, client_;
  uint64_t root_ = 0;
};

TEST_F(Resend, CreateThatCommittedAnswersItsInode) {
  proto::CreateReq cr;
  cr.parent = root_;
  cr.name = "f";
  cr.mode = S_IFREG | 0644;
  cr.exclusive = true;
  Result<proto::InodeAttr> made = make_error(Errc::kInternal, "not run");
  Status st = across_restart([&](auto& c) -> Status {
    made = c.create(cr);
    return made.ok() ? ok_status() : Status(made.error());
  }, [&](auto& c) { return exists(c, root_, "f"); });
  ASSERT_EQ(failure(st), "");
  auto seen = check_->lookup(root_, "f");
  ASSERT_OK(seen);
  EXPECT_EQ(made->ino, seen->ino) << "the answer names the inode the first run made";
  auto list = check_->list_dir(root_);
  ASSERT_OK(list);
  size_t named = 0;
  for (const auto& e : *list) named += e.name != "." && e.name != "..";
  EXPECT_EQ(named, 1u) << "created exactly once";
}

TEST_F(Resend, MkdirLinkRenameUnlinkRmdirThatCommittedSucceed) {
  auto d = check_->mkdir(root_, "d0", 0755);
  ASSERT_OK(d);
  proto::CreateReq cr;
  cr.parent = root_;
  cr.name = "a";
  cr.mode = S_IFREG | 0644;
  auto a = check_->create(cr);
  ASSERT_OK(a);

  Result<proto::InodeAttr> dir = make_error(Errc::kInternal, "not run");
  EXPECT_EQ(failure(across_restart(
                [&](auto& c) -> Status {
                  dir = c.mkdir(root_, "d", 0755);
                  return dir.ok() ? ok_status() : Status(dir.error());
                },
                [&](auto& c) { return exists(c, root_, "d"); })),
            "");
  if (dir.ok()) {
    EXPECT_EQ(dir->ino, check_->lookup(root_, "d")->ino);
  }

  EXPECT_EQ(failure(across_restart([&](auto& c) -> Status {
                             auto l = c.link(a->ino, root_, "b");
                             return l.ok() ? ok_status() : Status(l.error());
                           },
                           [&](auto& c) { return exists(c, root_, "b"); })), "");
  auto linked = check_->getattr(a->ino);
  ASSERT_OK(linked);
  EXPECT_EQ(linked->nlink, 2u) << "linked exactly once";

  EXPECT_EQ(failure(across_restart([&](auto& c) -> Status { return c.rename(root_, "b", root_, "c"); },
                           [&](auto& c) { return exists(c, root_, "c"); })), "");
  EXPECT_EQ(failure(across_restart([&](auto& c) -> Status { return c.unlink(root_, "c"); },
                           [&](auto& c) { return !exists(c, root_, "c"); })), "");
  auto after = check_->getattr(a->ino);
  ASSERT_OK(after);
  EXPECT_EQ(after->nlink, 1u) << "unlinked exactly once";
  EXPECT_EQ(failure(across_restart([&](auto& c) -> Status { return c.rmdir(root_, "d0"); },
                           [&](auto& c) { return !exists(c, root_, "d0"); })), "");
}

TEST_F(Resend, RequestLostBeforeTheRestartRunsWhenResent) {
  proto::CreateReq cr;
  cr.parent = root_;
  cr.name = "late";
  cr.mode = S_IFREG | 0644;
  cr.exclusive = true;
  EXPECT_EQ(failure(across_restart([&](auto& c) -> Status {
                             auto f = c.create(cr);
                             return f.ok() ? ok_status() : Status(f.error());
                           },
                           [&](auto&) -> bool { return false; }, /*lose_replies=*/false)), "");
  EXPECT_TRUE(exists(*check_, root_, "late"));
  // And a genuine conflict is still one: the same name again, a new request.
  auto again = client_->create(cr);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kExists);
}

}  // namespace
}  // namespace lanefs::test
