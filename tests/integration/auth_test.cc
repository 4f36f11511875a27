// Tokens and roles against a real lanefsd (docs/security.md): every admin
// command of the CLI without a token, with a wrong one, with a client token
// of another filesystem and with a readonly token is refused with exit 13;
// with an admin token it works. A client without the key gets no session,
// whatever it asks; a session's role bounds what it may call; a deleted
// user's session ends. A session with a token is keyed: a packet sealed
// under its key is answered, the same datagram again and forged ones
// (CRC instead of a MAC, another key, a changed byte) are dropped and show
// in the backend's status (rx_bad_mac, rx_replayed).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "integration/backend_fixture.h"
#include "proto/auth.h"
#include "proto/messages.h"
#include "rpc/rpc.h"
#include "support/raw_session.h"

namespace lanefs::test {
namespace {

using proto::Op;

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = std::make_unique<BackendProcess>("authb");
    if (auto st = backend_->start(); !st.ok()) {
      setup_error_ = st.error().to_string();
      return;
    }
    dir_ = std::make_unique<TempDir>();
    admin_token_ = backend_->data_dir() + "/admin.token";
    auto admin = [&](std::vector<std::string> args) {
      args.insert(args.begin(), {"--backend", backend_->addr_string()});
      auto r = run_cli(args, {"LANEFS_TOKEN_FILE=" + admin_token_});
      if (r.rc != 0) setup_error_ += "lanefs " + args[2] + ": " + r.out;
    };
    admin({"fs", "create", "fs1"});
    admin({"fs", "create", "fs2"});
    admin({"user", "add", "c1", "--role", "client", "--fs", "fs1"});
    admin({"user", "add", "ro", "--role", "readonly"});
    admin({"user", "add", "adm", "--role", "admin"});
    for (const char* u : {"c1", "ro", "adm"})
      admin({"user", "login", u, "--token-file", token(u)});
    // A token of the right form for an existing user, with a wrong key.
    proto::Credentials wrong{"c1", 1, proto::random_key()};
    if (!proto::save_token_file(token("wrong"), wrong).ok()) setup_error_ += "wrong token not written";
  }
  static void TearDownTestSuite() {
    backend_.reset();
    dir_.reset();
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static std::string token(const std::string& who) { return dir_->path() + "/" + who + ".token"; }
  // The CLI with `token_file` as LANEFS_TOKEN_FILE ("" : a file that does not exist).
  static CliRun cli_as(const std::string& token_file, std::vector<std::string> args) {
    args.insert(args.begin(), {"--backend", backend_->addr_string()});
    return run_cli(args, {"LANEFS_TOKEN_FILE=" + (token_file.empty() ? dir_->path() + "/none.token" : token_file),
                          "HOME=" + dir_->path()});
  }
  static Result<proto::Credentials> creds(const std::string& who) { return proto::load_token_file(token(who)); }
  // A raw RPC client presenting `c` (nullopt: no token).
  static std::unique_ptr<rpc::RpcClient> raw_client(std::optional<proto::Credentials> c) {
    rpc::ClientOptions o;
    o.transport.kind = transport::TransportKind::kUdp;
    o.transport.bind = NetAddr{0x7f000001u, 0};
    o.connect_timeout_ns = 2 * kSecond;
    o.credentials = [c] { return c; };
    auto r = rpc::RpcClient::create(o);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? std::move(*r) : nullptr;
  }
  // The status code of one call (its transport error, or the response's).
  static Errc call_code(rpc::RpcClient& c, Op op, const rpc::Buffer& body) {
    auto r = c.call(backend_->addr(), static_cast<uint16_t>(op), body, 5 * kSecond);
    if (!r.ok()) return r.code();
    auto p = proto::parse_response(*r);
    return p.ok() ? Errc::kOk : p.code();
  }
  static uint64_t root_of(const std::string& fs) {
    auto c = connect_client({backend_->addr()});
    if (!c.ok()) return 0;
    auto f = (*c)->fs_get(fs);
    return f.ok() ? f->root_ino : 0;
  }

  static inline std::unique_ptr<BackendProcess> backend_;
  static inline std::unique_ptr<TempDir> dir_;
  static inline std::string admin_token_, setup_error_;
};

TEST_F(AuthTest, AdminCommandsRefuseEveryTokenButAnAdmins) {
  const std::vector<std::vector<std::string>> commands = {
      {"fs", "create", "fsx"},           {"fs", "delete", "fs2"},
      {"cluster", "status"},             {"cluster", "processes"},
      {"cluster", "rdma", "disable"},    {"cluster", "create", "127.0.0.1:1"},
      {"user", "add", "z", "--role", "client"}, {"user", "list"},
      {"user", "delete", "c1"},
  };
  for (const auto& cmd : commands) {
    for (const std::string who : {"", "wrong", "c1", "ro"}) {
      auto r = cli_as(who.empty() ? "" : token(who), cmd);
      EXPECT_EQ(r.rc, 13) << "token '" << who << "': lanefs " << cmd[0] << " " << cmd[1] << ": " << r.out;
      EXPECT_NE(r.out.find("permission denied"), std::string::npos) << r.out;
      EXPECT_EQ(lines_of(r.out).size(), 1u) << "one line: " << r.out;
    }
  }
  // The admin's token works, and an admin user's too.
  EXPECT_EQ(cli_as(admin_token_, {"cluster", "status"}).rc, 0);
  EXPECT_EQ(cli_as(token("adm"), {"user", "list"}).rc, 0);
  auto made = cli_as(token("adm"), {"fs", "create", "fsx"});
  EXPECT_EQ(made.rc, 0) << made.out;
  EXPECT_EQ(cli_as(token("adm"), {"fs", "delete", "fsx"}).rc, 0);
  // An admin cannot make or remove a clusteradmin, nor the built-in admin.
  EXPECT_EQ(cli_as(token("adm"), {"user", "add", "boss", "--role", "clusteradmin"}).rc, 13);
  EXPECT_NE(cli_as(token("adm"), {"user", "delete", "admin"}).rc, 0);
}

TEST_F(AuthTest, RefusalsAreLoggedWithThePeersAddress) {
  (void)cli_as(token("wrong"), {"fs", "list"});
  (void)cli_as(token("c1"), {"fs", "create", "nope"});
  std::ifstream in(backend_->data_dir() + "/../lanefsd.log");
  std::string log((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(log.find("refused 127.0.0.1:"), std::string::npos) << backend_->log_tail();
  EXPECT_NE(log.find("wrong token for user 'c1'"), std::string::npos) << backend_->log_tail();
  EXPECT_NE(log.find("may not fs_create"), std::string::npos) << backend_->log_tail();
}

TEST_F(AuthTest, AClientTokenSeesOnlyItsFilesystems) {
  auto c1 = creds("c1");
  ASSERT_TRUE(c1.ok()) << c1.error().to_string();
  client::ClusterClientOptions o;
  o.backends = {backend_->addr()};
  o.credentials = *c1;
  auto c = client::ClusterClient::connect(o);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  auto who = (*c)->whoami();
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->name, "c1");
  EXPECT_EQ(who->role, proto::Role::kClient);
  auto l = (*c)->fs_list();
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].name, "fs1");
  EXPECT_TRUE((*c)->map().users.empty()) << "a client's map carries no users";
  EXPECT_EQ((*c)->map().find_fs("fs2"), nullptr) << "nor the filesystems its token does not name";
  auto admin = connect_client({backend_->addr()});
  ASSERT_TRUE(admin.ok());
  auto fs2 = (*admin)->fs_get("fs2");
  ASSERT_TRUE(fs2.ok());
  EXPECT_ERRC((*c)->statfs(fs2->id), Errc::kPermission);
  EXPECT_TRUE((*c)->statfs((*c)->map().find_fs("fs1")->id).ok());
}

TEST_F(AuthTest, WithoutTheKeyNothingIsAnswered) {
  // Each opcode family, with no token, a wrong key for a real user, and a
  // made-up backend: the session is never set up.
  const uint64_t root = root_of("fs1");
  ASSERT_NE(root, 0u);
  const std::vector<std::pair<Op, rpc::Buffer>> calls = {
      {Op::kGetMap, {}},
      {Op::kFsList, {}},
      {Op::kFsDelete, proto::encode_msg(proto::NameReq{"fs1"})},
      {Op::kGetattr, proto::encode_msg(proto::InoReq{root})},
      {Op::kReaddir, proto::encode_msg(proto::ReaddirReq{root, 0, 16, false, {}})},
      {Op::kLookup, proto::encode_msg(proto::NameAtReq{root, "x", {}})},
      {Op::kUnlink, proto::encode_msg(proto::NameAtReq{root, "x", {}})},
      {Op::kRead, proto::encode_msg(proto::ReadReq{root, 0, 4096})},
      {Op::kUserAdd, proto::encode_msg(proto::UserRecord{"evil", proto::Role::kClusterAdmin, {}, false, 0, 0})},
      {Op::kInodePut, {}},
  };
  std::vector<std::optional<proto::Credentials>> who = {
      std::nullopt,
      proto::Credentials{"c1", 1, proto::random_key()},
      proto::Credentials{"admin", 0, proto::random_key()},
      proto::Credentials{std::string(proto::kBackendUser), 0, proto::random_key()},
  };
  for (size_t w = 0; w < who.size(); ++w) {
    auto c = raw_client(who[w]);
    ASSERT_TRUE(c);
    for (const auto& [op, body] : calls)
      EXPECT_EQ(errc_name(call_code(*c, op, body)), errc_name(Errc::kPermission))
          << "credentials #" << w << ", " << proto::op_name(op);
  }
  // Nothing changed.
  auto a = connect_client({backend_->addr()});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE((*a)->fs_get("fs1").ok());
  auto users = (*a)->user_list();
  ASSERT_TRUE(users.ok());
  for (const auto& u : *users) EXPECT_NE(u.name, "evil");
}

TEST_F(AuthTest, ForgedAndReplayedPacketsAreDroppedAndCounted) {
  auto c1 = creds("c1");
  ASSERT_TRUE(c1.ok());
  RawSession raw(backend_->addr(), *c1);
  ASSERT_NE(raw.open_keyed(), 0u) << "the backend did not key a token's session";
  auto status = [&]() -> proto::BackendStatus {
    auto a = raw_client(*proto::load_token_file(admin_token_));
    auto r = a->call(backend_->addr(), static_cast<uint16_t>(Op::kStatus), {}, 5 * kSecond);
    if (!r.ok()) return {};
    auto body = proto::parse_response(*r);
    if (!body.ok()) return {};
    auto st = proto::decode_msg<proto::BackendStatus>(*body);
    return st.ok() ? *st : proto::BackendStatus{};
  };
  const proto::BackendStatus before = status();
  const uint16_t who = static_cast<uint16_t>(Op::kWhoAmI);
  const auto good = raw.request(who, 1, 1, {}, &raw.key());
  raw.send_raw(good);
  auto r = raw.response(1, 3000);
  ASSERT_TRUE(r) << "a sealed kWhoAmI was not answered";
  auto me = proto::parse_response(*r);
  ASSERT_TRUE(me.ok());
  auto rec = proto::decode_msg<proto::UserRecord>(*me);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->name, "c1");

  raw.send_raw(good);                                      // a replay
  raw.send_raw(raw.request(who, 2, 2, {}, nullptr));       // a CRC, not a MAC
  proto::SessionKey other = raw.key();
  other.bytes[0] ^= 1;
  raw.send_raw(raw.request(who, 3, 3, {}, &other));        // another key
  auto changed = raw.request(who, 4, 4, {}, &raw.key());
  changed[26] ^= 1;                                        // another opcode than was sealed
  raw.send_raw(changed);
  for (uint64_t req : {1, 2, 3, 4})
    EXPECT_FALSE(raw.response(req, 100)) << "request " << req << " was answered";
  proto::BackendStatus after;
  for (int i = 0; i < 50; ++i) {
    after = status();
    if (after.rx_bad_mac >= before.rx_bad_mac + 3 && after.rx_replayed >= before.rx_replayed + 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(after.rx_bad_mac - before.rx_bad_mac, 3u);
  EXPECT_EQ(after.rx_replayed - before.rx_replayed, 1u);
  // The CLI shows them.
  auto st = cli_as(admin_token_, {"--json", "cluster", "status"});
  EXPECT_EQ(st.rc, 0) << st.out;
  EXPECT_NE(st.out.find("\"rx_bad_mac\""), std::string::npos) << st.out;
}

TEST_F(AuthTest, ARoleBoundsWhatASessionMayCall) {
  const uint64_t root = root_of("fs1");
  ASSERT_NE(root, 0u);
  auto ro = raw_client(*creds("ro"));
  ASSERT_TRUE(ro);
  EXPECT_EQ(call_code(*ro, Op::kGetattr, proto::encode_msg(proto::InoReq{root})), Errc::kOk);
  proto::CreateReq cr;
  cr.parent = root;
  cr.name = "ro-made";
  cr.mode = 0100644;
  for (const auto& [op, body] : std::vector<std::pair<Op, rpc::Buffer>>{
           {Op::kCreate, proto::encode_msg(cr)},
           {Op::kUnlink, proto::encode_msg(proto::NameAtReq{root, "x", {}})},
           {Op::kWrite, {}},
           {Op::kSetattr, {}},
           {Op::kFsCreate, proto::encode_msg(proto::FsCreateReq{"rofs", false})}})
    EXPECT_EQ(errc_name(call_code(*ro, op, body)), errc_name(Errc::kPermission)) << proto::op_name(op);
  // A client may change its files, never call what only backends call.
  auto c1 = raw_client(*creds("c1"));
  ASSERT_TRUE(c1);
  for (Op op : {Op::kInodePut, Op::kSetMap, Op::kFsPurge, Op::kChunkRemoveAll, Op::kUserAdd})
    EXPECT_EQ(errc_name(call_code(*c1, op, {})), errc_name(Errc::kPermission)) << proto::op_name(op);
}

TEST_F(AuthTest, AClientSessionTouchesOnlyItsFilesystemsInodes) {
  // c1's token names fs1: fs2's inodes are refused by number, in every
  // family that names one (on a one-node cluster every record is local).
  const uint64_t root1 = root_of("fs1"), root2 = root_of("fs2");
  ASSERT_NE(root1, 0u);
  ASSERT_NE(root2, 0u);
  auto c1 = raw_client(*creds("c1"));
  ASSERT_TRUE(c1);
  proto::CreateReq cr;
  cr.name = "scoped";
  cr.mode = 0100644;
  for (uint64_t root : {root1, root2}) {
    cr.parent = root;
    const Errc want = root == root1 ? Errc::kOk : Errc::kPermission;
    EXPECT_EQ(errc_name(call_code(*c1, Op::kGetattr, proto::encode_msg(proto::InoReq{root}))), errc_name(want));
    EXPECT_EQ(errc_name(call_code(*c1, Op::kReaddir, proto::encode_msg(proto::ReaddirReq{root, 0, 16, false, {}}))),
              errc_name(want));
    EXPECT_EQ(errc_name(call_code(*c1, Op::kCreate, proto::encode_msg(cr))), errc_name(want));
    EXPECT_EQ(errc_name(call_code(*c1, Op::kSetxattr, proto::encode_msg(proto::XattrSetReq{root, "user.x", "1", 0, {}}))),
              errc_name(want));
  }
  proto::ReadReq rd;
  rd.ino = root2;
  rd.len = 4096;
  EXPECT_EQ(errc_name(call_code(*c1, Op::kRead, proto::encode_msg(rd))), errc_name(Errc::kPermission));
  // Nothing was made in fs2.
  auto admin = connect_client({backend_->addr()});
  ASSERT_TRUE(admin.ok());
  EXPECT_ERRC((*admin)->lookup(root2, "scoped"), Errc::kNotFound);
}

TEST_F(AuthTest, ADeletedUsersSessionEnds) {
  auto admin = cli_as(admin_token_, {"user", "add", "temp", "--role", "client"});
  ASSERT_EQ(admin.rc, 0) << admin.out;
  ASSERT_EQ(cli_as(admin_token_, {"user", "login", "temp", "--token-file", token("temp")}).rc, 0);
  auto c = raw_client(*creds("temp"));
  ASSERT_TRUE(c);
  EXPECT_EQ(call_code(*c, Op::kFsList, {}), Errc::kOk);
  ASSERT_EQ(cli_as(admin_token_, {"user", "delete", "temp"}).rc, 0);
  EXPECT_EQ(errc_name(call_code(*c, Op::kFsList, {})), errc_name(Errc::kPermission));
  // Added again: a new generation, so the old token stays useless.
  ASSERT_EQ(cli_as(admin_token_, {"user", "add", "temp", "--role", "client"}).rc, 0);
  auto again = raw_client(*creds("temp"));
  EXPECT_EQ(errc_name(call_code(*again, Op::kFsList, {})), errc_name(Errc::kPermission));
}

TEST_F(AuthTest, TokenFilesMustBePrivate) {
  ASSERT_EQ(chmod(token("adm").c_str(), 0644), 0);
  auto r = cli_as(token("adm"), {"fs", "list"});
  EXPECT_EQ(r.rc, 13) << r.out;
  EXPECT_NE(r.out.find("chmod 600"), std::string::npos) << r.out;
  ASSERT_EQ(chmod(token("adm").c_str(), 0600), 0);
  EXPECT_EQ(cli_as(token("adm"), {"fs", "list"}).rc, 0);
}

}  // namespace
}  // namespace lanefs::test

namespace lanefs::test {
namespace {

std::string slurp_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Backends with secrets of their own: `cluster create` gives the members
// the leader's secret (they are empty: trust on first use), after which one
// admin token works on all of them; a backend that holds a filesystem and
// another secret is never taken over.
TEST(AuthJoin, ClusterCreateGivesEmptyMembersTheLeadersSecret) {
  const char* old_env = std::getenv("LANEFS_TOKEN_FILE");
  const std::string restore = old_env ? old_env : "";
  std::vector<std::unique_ptr<BackendProcess>> b;
  for (const char* n : {"j1", "j2", "j3"}) {
    b.push_back(std::make_unique<BackendProcess>(n));
    b.back()->set_extra_args({"--secret-file", "", "--admin-token-file", ""});
    ASSERT_OK(b.back()->start());
  }
  auto token = [&](int i) { return b[i]->data_dir() + "/admin.token"; };
  auto cli = [&](int i, const std::string& tok, std::vector<std::string> args) {
    args.insert(args.begin(), {"--backend", b[i]->addr_string(), "--token-file", tok});
    return run_cli(args);
  };
  // Different secrets: j1's admin token is refused by j2.
  EXPECT_EQ(cli(1, token(0), {"fs", "list"}).rc, 13);
  // j3 holds a filesystem: it is nobody's to take.
  ASSERT_EQ(cli(2, token(2), {"fs", "create", "mine"}).rc, 0);
  auto refused = cli(0, token(0), {"cluster", "create", b[0]->addr_string() + "," + b[2]->addr_string()});
  EXPECT_NE(refused.rc, 0) << refused.out;
  EXPECT_EQ(cli(2, token(2), {"fs", "list"}).rc, 0) << "j3 kept its own secret";
  // j1 + j2 (empty) form a cluster; j2 takes j1's secret.
  auto made = cli(0, token(0), {"cluster", "create", b[0]->addr_string() + "," + b[1]->addr_string()});
  ASSERT_EQ(made.rc, 0) << made.out;
  EXPECT_NE(made.out.find("admin token: " + token(0)), std::string::npos) << made.out;
  auto st = cli(1, token(0), {"cluster", "status"});
  EXPECT_EQ(st.rc, 0) << st.out;
  EXPECT_EQ(slurp_file(token(1)), slurp_file(token(0))) << "j2 rewrote its admin token";
  ASSERT_EQ(cli(1, token(0), {"fs", "create", "shared"}).rc, 0);
  EXPECT_EQ(cli(0, token(0), {"fs", "delete", "shared"}).rc, 0);
  // User changes through the follower run on the leader, which checks the
  // caller again: an admin still may not make a clusteradmin.
  ASSERT_EQ(cli(1, token(0), {"user", "add", "boss2", "--role", "admin"}).rc, 0);
  const std::string boss2 = b[0]->data_dir() + "/../boss2.token";
  auto login = run_cli({"--backend", b[1]->addr_string(), "user", "login", "boss2", "--token-file", boss2},
                       {"LANEFS_TOKEN_FILE=" + token(0)});
  ASSERT_EQ(login.rc, 0) << login.out;
  auto made2 = cli(1, boss2, {"user", "add", "viaj2", "--role", "client"});
  EXPECT_EQ(made2.rc, 0) << made2.out;
  EXPECT_NE(cli(0, token(0), {"user", "list"}).out.find("viaj2"), std::string::npos);
  EXPECT_EQ(cli(1, boss2, {"user", "add", "top", "--role", "clusteradmin"}).rc, 13);
  // A restart keeps the adopted secret.
  ASSERT_OK(b[1]->restart());
  EXPECT_EQ(cli(1, token(0), {"fs", "list"}).rc, 0);
  b.clear();
  setenv("LANEFS_TOKEN_FILE", restore.c_str(), 1);
}

}  // namespace
}  // namespace lanefs::test
