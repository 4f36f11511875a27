// Backends check modes, owners and groups for each request's credentials,
// and apply a token's root squashing (docs/security.md, "Permissions"),
// against a real lanefsd through the typed ClusterClient. The setup makes,
// as root with the admin token, a tree of files owned by other users; each
// test then asks as those users, through a client token with and without
// --root-squash.
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <set>
#include <string>

#include "integration/backend_fixture.h"
#include "proto/auth.h"

namespace lanefs::test {
namespace {

using proto::Cred;
using proto::InodeAttr;
using proto::kMayRead;
using proto::kMayWrite;

class PermissionsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = std::make_unique<BackendProcess>("perms");
    if (auto st = backend_->start(); !st.ok()) return fail(st.error().to_string());
    dir_ = std::make_unique<TempDir>();
    const std::string admin_token = backend_->data_dir() + "/admin.token";
    auto admin = [&](std::vector<std::string> args) {
      args.insert(args.begin(), {"--backend", backend_->addr_string()});
      auto r = run_cli(args, {"LANEFS_TOKEN_FILE=" + admin_token});
      if (r.rc != 0) fail("lanefs " + args[2] + " " + args[3] + ": " + r.out);
    };
    admin({"fs", "create", "p1"});
    admin({"user", "add", "plain", "--role", "client", "--fs", "p1"});
    admin({"user", "add", "squashed", "--role", "client", "--fs", "p1", "--root-squash"});
    for (const char* u : {"plain", "squashed"}) admin({"user", "login", u, "--token-file", token(u)});
    if (!setup_error_.empty()) return;
    plain_ = client_as("plain");
    squashed_ = client_as("squashed");
    if (!plain_ || !squashed_) return;
    auto fs = plain_->fs_get("p1");
    if (!fs.ok()) return fail(fs.error().to_string());
    root_ = fs->root_ino;
  }
  static void TearDownTestSuite() {
    plain_.reset();
    squashed_.reset();
    backend_.reset();
    dir_.reset();
  }
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    // Each test in a directory of its own, anyone may write (as /tmp
    // without the sticky bit).
    auto d = plain_->mkdir(root_, ::testing::UnitTest::GetInstance()->current_test_info()->name(), 0777);
    ASSERT_OK(d);
    dir_ino_ = d->ino;
  }

  static void fail(const std::string& why) { setup_error_ += why + "; "; }
  static std::string token(const std::string& who) { return dir_->path() + "/" + who + ".token"; }
  static std::unique_ptr<client::ClusterClient> client_as(const std::string& who) {
    auto creds = proto::load_token_file(token(who));
    if (!creds.ok()) return fail(creds.error().to_string()), nullptr;
    client::ClusterClientOptions o;
    o.backends = {backend_->addr()};
    o.connect_timeout_ns = 5 * kSecond;
    o.bind = NetAddr{0x7f000001u, 0};
    o.credentials = *creds;
    auto c = client::ClusterClient::connect(o);
    if (!c.ok()) return fail(who + ": " + c.error().to_string()), nullptr;
    return std::move(*c);
  }

  // A node made by `as` (mode includes the type).
  static Result<InodeAttr> make(client::ClusterClient& c, uint64_t parent, const std::string& name, uint32_t mode,
                                Cred as) {
    proto::CreateReq r;
    r.parent = parent;
    r.name = name;
    r.mode = mode;
    r.cred = std::move(as);
    return c.create(r);
  }
  static Result<InodeAttr> open_as(client::ClusterClient& c, uint64_t ino, uint8_t access, Cred as) {
    static uint64_t seq = 0;
    return c.open_handle({0x5eed, ino, true, ++seq, access, std::move(as)});
  }

  static inline std::unique_ptr<BackendProcess> backend_;
  static inline std::unique_ptr<TempDir> dir_;
  static inline std::unique_ptr<client::ClusterClient> plain_, squashed_;
  static inline std::string setup_error_;
  static inline uint64_t root_ = 0;
  uint64_t dir_ino_ = 0;
};

const Cred kRoot{0, 0}, kAlice{1000, 1000}, kBob{1001, 1001}, kCarol{1002, 1002};

TEST_F(PermissionsTest, ModeBitsDecideReadWriteAndSearch) {
  auto priv = make(*plain_, dir_ino_, "private", S_IFDIR | 0700, kAlice);
  ASSERT_OK(priv);
  auto inner = make(*plain_, priv->ino, "inner", S_IFREG | 0644, kAlice);
  ASSERT_OK(inner);
  // Search, list and add names in alice's 0700 directory: alice only.
  EXPECT_OK(plain_->lookup(priv->ino, "inner", kAlice));
  EXPECT_ERRC(plain_->lookup(priv->ino, "inner", kBob), Errc::kPermission);
  EXPECT_OK(plain_->readdir(priv->ino, 0, 16, false, kAlice));
  EXPECT_ERRC(plain_->readdir(priv->ino, 0, 16, false, kBob), Errc::kPermission);
  EXPECT_ERRC(make(*plain_, priv->ino, "bobs", S_IFREG | 0644, kBob), Errc::kPermission);
  EXPECT_ERRC(plain_->unlink(priv->ino, "inner", kBob), Errc::kPermission);
  EXPECT_ERRC(plain_->rename(priv->ino, "inner", dir_ino_, "stolen", 0, kBob), Errc::kPermission);
  // Directories trading places across parents: write on each.
  auto a1 = make(*plain_, dir_ino_, "a1", S_IFDIR | 0777, kBob);
  auto b1 = make(*plain_, dir_ino_, "b1", S_IFDIR | 0777, kBob);
  ASSERT_OK(a1);
  ASSERT_OK(b1);
  ASSERT_OK(make(*plain_, a1->ino, "x", S_IFDIR | 0755, kBob));
  ASSERT_OK(make(*plain_, b1->ino, "y", S_IFDIR | 0755, kAlice));
  EXPECT_ERRC(plain_->rename(a1->ino, "x", b1->ino, "y", proto::kRenameExchange, kBob), Errc::kPermission);
  EXPECT_OK(plain_->rename(a1->ino, "x", b1->ino, "y", proto::kRenameExchange, kRoot));
  EXPECT_ERRC(plain_->link(inner->ino, priv->ino, "second", kBob), Errc::kPermission);
  // A 0644 file: everyone reads, only its owner writes.
  EXPECT_OK(open_as(*plain_, inner->ino, kMayRead, kBob));
  EXPECT_ERRC(open_as(*plain_, inner->ino, kMayWrite, kBob), Errc::kPermission);
  EXPECT_ERRC(open_as(*plain_, inner->ino, kMayRead | kMayWrite, kBob), Errc::kPermission);
  EXPECT_OK(open_as(*plain_, inner->ino, kMayRead | kMayWrite, kAlice));
  // O_CREAT without O_EXCL that finds the file opens it: its access is
  // checked (the kernel does not check an open it sent as a create).
  proto::CreateReq reopen;
  reopen.parent = priv->ino;
  reopen.name = "inner";
  reopen.mode = S_IFREG | 0644;
  reopen.exclusive = false;
  reopen.open_by = 0x5eed;
  reopen.open_seq = 1;
  reopen.access = kMayWrite;
  reopen.cred = kAlice;
  EXPECT_OK(plain_->create(reopen));
  reopen.parent = dir_ino_;
  ASSERT_OK(plain_->link(inner->ino, dir_ino_, "inner", kAlice));
  reopen.cred = kBob;
  EXPECT_ERRC(plain_->create(reopen), Errc::kPermission);
  reopen.access = kMayRead;
  EXPECT_OK(plain_->create(reopen));
  proto::SetAttr trunc;
  trunc.mask = proto::kSetSize;
  EXPECT_ERRC(plain_->setattr(inner->ino, trunc, kBob), Errc::kPermission);
  EXPECT_OK(plain_->setattr(inner->ino, trunc, kAlice));
  // Through an open file the opener's access was checked at open.
  auto ro = make(*plain_, dir_ino_, "readonly", S_IFREG | 0444, kAlice);
  ASSERT_OK(ro);
  EXPECT_ERRC(plain_->setattr(ro->ino, trunc, kAlice), Errc::kPermission);
  trunc.mask |= proto::kSetByHandle;
  EXPECT_OK(plain_->setattr(ro->ino, trunc, kAlice));
  // user.* attributes follow read and write; trusted.* are root's.
  EXPECT_ERRC(plain_->setxattr(inner->ino, "user.tag", "x", 0, kBob), Errc::kPermission);
  EXPECT_OK(plain_->setxattr(inner->ino, "user.tag", "x", 0, kAlice));
  EXPECT_OK(plain_->getxattr(inner->ino, "user.tag", kBob));
  EXPECT_ERRC(plain_->setxattr(inner->ino, "trusted.tag", "x", 0, kAlice), Errc::kNotPermitted);
  EXPECT_ERRC(plain_->setxattr(inner->ino, "security.tag", "x", 0, kAlice), Errc::kNotPermitted);
  // A writer may drop file capabilities (the kernel does before a write):
  // alice passes the check (there are none), bob may not write.
  EXPECT_ERRC(plain_->removexattr(inner->ino, "security.capability", kAlice), Errc::kNoAttr);
  EXPECT_ERRC(plain_->removexattr(inner->ino, "security.capability", kBob), Errc::kPermission);
  EXPECT_OK(plain_->setxattr(inner->ino, "trusted.tag", "x", 0, kRoot));
  // Root (not squashed) passes every mode.
  EXPECT_OK(plain_->lookup(priv->ino, "inner", kRoot));
  EXPECT_OK(open_as(*plain_, ro->ino, kMayRead | kMayWrite, kRoot));
  // Nothing bob was refused happened.
  EXPECT_OK(plain_->lookup(priv->ino, "inner", kAlice));
  EXPECT_ERRC(plain_->lookup(dir_ino_, "stolen", kAlice), Errc::kNotFound);
}

TEST_F(PermissionsTest, OwnershipDecidesModeOwnerAndGroupChanges) {
  auto f = make(*plain_, dir_ino_, "f", S_IFREG | 0666, Cred{1000, 1000, {2000}});
  ASSERT_OK(f);
  proto::SetAttr chmod;
  chmod.mask = proto::kSetMode;
  chmod.mode = 0600;
  EXPECT_ERRC(plain_->setattr(f->ino, chmod, kBob), Errc::kNotPermitted);
  proto::SetAttr chown;
  chown.mask = proto::kSetUid;
  chown.uid = 1001;
  EXPECT_ERRC(plain_->setattr(f->ino, chown, kAlice), Errc::kNotPermitted);
  proto::SetAttr chgrp;
  chgrp.mask = proto::kSetGid;
  chgrp.gid = 2000;
  EXPECT_ERRC(plain_->setattr(f->ino, chgrp, kAlice), Errc::kNotPermitted);  // not in group 2000
  EXPECT_OK(plain_->setattr(f->ino, chgrp, Cred{1000, 1000, {2000}}));
  // Times: the owner, or anyone who may write the file (0666 here).
  proto::SetAttr touch;
  touch.mask = proto::kSetMtimeNow | proto::kSetAtimeNow;
  EXPECT_OK(plain_->setattr(f->ino, touch, kBob));
  EXPECT_OK(plain_->setattr(f->ino, chmod, kAlice));
  EXPECT_ERRC(plain_->setattr(f->ino, touch, kBob), Errc::kPermission);  // 0600 now
  EXPECT_OK(plain_->setattr(f->ino, chown, kRoot));
  auto a = plain_->getattr(f->ino);
  ASSERT_OK(a);
  EXPECT_EQ(a->uid, 1001u);
  EXPECT_EQ(a->gid, 2000u);
  EXPECT_EQ(a->mode & 07777, 0600u);
}

TEST_F(PermissionsTest, AStickyDirectoryKeepsOthersNames) {
  auto tmp = make(*plain_, dir_ino_, "tmp", S_IFDIR | 01777, kRoot);
  ASSERT_OK(tmp);
  ASSERT_OK(make(*plain_, tmp->ino, "bobs", S_IFREG | 0644, kBob));
  ASSERT_OK(make(*plain_, tmp->ino, "bobs2", S_IFREG | 0644, kBob));
  EXPECT_ERRC(plain_->unlink(tmp->ino, "bobs", kCarol), Errc::kNotPermitted);
  EXPECT_ERRC(plain_->rename(tmp->ino, "bobs", tmp->ino, "carols", 0, kCarol), Errc::kNotPermitted);
  // Renaming over someone else's name is removing it.
  ASSERT_OK(make(*plain_, tmp->ino, "carols", S_IFREG | 0644, kCarol));
  EXPECT_ERRC(plain_->rename(tmp->ino, "carols", tmp->ino, "bobs", 0, kCarol), Errc::kNotPermitted);
  EXPECT_OK(plain_->unlink(tmp->ino, "bobs", kBob));
  EXPECT_OK(plain_->unlink(tmp->ino, "bobs2", kRoot));
}

TEST_F(PermissionsTest, SupplementaryGroupsAreFetchedAfterARefusal) {
  auto shared = make(*plain_, dir_ino_, "shared", S_IFDIR | 0770, Cred{0, 500});
  ASSERT_OK(shared);
  ASSERT_OK(make(*plain_, shared->ino, "doc", S_IFREG | 0640, Cred{0, 500}));
  EXPECT_ERRC(plain_->lookup(shared->ino, "doc", kAlice), Errc::kPermission);
  EXPECT_OK(plain_->lookup(shared->ino, "doc", Cred{1000, 1000, {7, 500}}));
  // Without groups but with a process in group 500: the refusal makes the
  // client read that process's groups and ask once more.
  if (geteuid() != 0) GTEST_SKIP() << "setgroups() needs root: the lookup of groups from a pid is left untested";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const gid_t groups[] = {500};
    char ok = setgroups(1, groups) == 0 ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    sleep(30);
    _exit(0);
  }
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  close(ready[1]);
  EXPECT_EQ(ok, 'y');
  EXPECT_OK(plain_->lookup(shared->ino, "doc", Cred{1000, 1000, {}, static_cast<uint32_t>(child)}));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

TEST_F(PermissionsTest, DataOpsNamingNoInodeAreRefused) {
  // A number no inode has yet: its data cannot be planted ahead of the
  // inode (another filesystem may give the number out later).
  const uint64_t guess = proto::make_ino(proto::ino_shard(root_), (uint64_t{1} << 40) + 99);
  EXPECT_ERRC(plain_->read_data(guess, 0, 4096), Errc::kNotFound);
  const std::vector<uint8_t> bytes(4096, 7);
  int64_t delta = 0;
  EXPECT_ERRC(plain_->write_data(guess, 0, bytes, &delta), Errc::kNotFound);
}

TEST_F(PermissionsTest, ASetgidDirectoryGivesItsGroup) {
  auto sg = make(*plain_, dir_ino_, "sg", S_IFDIR | 02777, Cred{0, 600});
  ASSERT_OK(sg);
  auto f = make(*plain_, sg->ino, "f", S_IFREG | 0644, kAlice);
  ASSERT_OK(f);
  EXPECT_EQ(f->gid, 600u);
  EXPECT_EQ(f->mode & S_ISGID, 0u);
  auto d = make(*plain_, sg->ino, "d", S_IFDIR | 0755, kAlice);
  ASSERT_OK(d);
  EXPECT_EQ(d->gid, 600u);
  EXPECT_NE(d->mode & S_ISGID, 0u);
  // A set-group-ID program of group 600: kept for a member, dropped for
  // anyone else but root.
  auto member = make(*plain_, sg->ino, "member", S_IFREG | 02755, Cred{1000, 1000, {600}});
  ASSERT_OK(member);
  EXPECT_NE(member->mode & S_ISGID, 0u);
  auto outsider = make(*plain_, sg->ino, "outsider", S_IFREG | 02755, kAlice);
  ASSERT_OK(outsider);
  EXPECT_EQ(outsider->mode & S_ISGID, 0u);
  auto by_root = make(*plain_, sg->ino, "by-root", S_IFREG | 02755, kRoot);
  ASSERT_OK(by_root);
  EXPECT_NE(by_root->mode & S_ISGID, 0u);
}

TEST_F(PermissionsTest, RootSquashingRunsRootAsNobody) {
  auto secret = make(*plain_, dir_ino_, "secret", S_IFREG | 0600, kRoot);
  ASSERT_OK(secret);
  auto vault = make(*plain_, dir_ino_, "vault", S_IFDIR | 0700, kRoot);
  ASSERT_OK(vault);
  ASSERT_OK(make(*plain_, vault->ino, "x", S_IFREG | 0644, kRoot));
  // Without squashing, root reads root's files; squashed, it is nobody.
  EXPECT_OK(open_as(*plain_, secret->ino, kMayRead, kRoot));
  EXPECT_ERRC(open_as(*squashed_, secret->ino, kMayRead, kRoot), Errc::kPermission);
  EXPECT_ERRC(squashed_->lookup(vault->ino, "x", kRoot), Errc::kPermission);
  EXPECT_ERRC(squashed_->readdir(vault->ino, 0, 16, false, kRoot), Errc::kPermission);
  EXPECT_ERRC(squashed_->unlink(vault->ino, "x", kRoot), Errc::kPermission);
  proto::SetAttr chown;
  chown.mask = proto::kSetUid;
  chown.uid = 0;
  auto mine = make(*plain_, dir_ino_, "alices", S_IFREG | 0644, kAlice);
  ASSERT_OK(mine);
  EXPECT_ERRC(squashed_->setattr(mine->ino, chown, kRoot), Errc::kNotPermitted);
  // What a squashed root makes belongs to nobody.
  auto made = make(*squashed_, dir_ino_, "made", S_IFREG | 0644, kRoot);
  ASSERT_OK(made);
  EXPECT_EQ(made->uid, 65534u);
  EXPECT_EQ(made->gid, 65534u);
  // Other users are not changed by it, but group 0 is root's too.
  EXPECT_OK(open_as(*squashed_, mine->ino, kMayRead | kMayWrite, kAlice));
  auto wheel = make(*plain_, dir_ino_, "wheel", S_IFREG | 0640, Cred{0, 0});
  ASSERT_OK(wheel);
  EXPECT_OK(open_as(*plain_, wheel->ino, kMayRead, Cred{1000, 0}));
  EXPECT_ERRC(open_as(*squashed_, wheel->ino, kMayRead, Cred{1000, 0}), Errc::kPermission);
  EXPECT_ERRC(open_as(*squashed_, wheel->ino, kMayRead, Cred{1000, 1000, {0}}), Errc::kPermission);
}

TEST_F(PermissionsTest, NumbersNearAHiddenFilesNumberNameNoInode) {
  // A squashed root cannot search a 0700 directory of root's, and cannot
  // count its way to what is inside either: the numbers of the files made
  // before and after, and their neighbours, lead to nothing.
  auto vault = make(*plain_, dir_ino_, "vault2", S_IFDIR | 0700, kRoot);
  ASSERT_OK(vault);
  auto before = make(*squashed_, dir_ino_, "before", S_IFREG | 0644, kRoot);
  ASSERT_OK(before);
  auto hidden = make(*plain_, vault->ino, "x", S_IFREG | 0644, kRoot);
  ASSERT_OK(hidden);
  auto after = make(*squashed_, dir_ino_, "after", S_IFREG | 0644, kRoot);
  ASSERT_OK(after);
  EXPECT_EQ(proto::ino_shard(before->ino), proto::ino_shard(hidden->ino));
  for (uint64_t seen : {before->ino, after->ino}) {
    for (int64_t d = -8; d <= 8; ++d) {
      const uint64_t guess = seen + static_cast<uint64_t>(d);
      if (d == 0) continue;
      ASSERT_NE(guess, hidden->ino) << "the hidden file's number is next to one its guesser was given";
      EXPECT_ERRC(squashed_->getattr(guess), Errc::kNotFound);
      EXPECT_ERRC(squashed_->read_data(guess, 0, 4096), Errc::kNotFound);
    }
  }
  EXPECT_ERRC(squashed_->lookup(vault->ino, "x", kRoot), Errc::kPermission);
}

TEST_F(PermissionsTest, TrustedAttributeNamesAreListedToRootOnly) {
  auto f = make(*plain_, dir_ino_, "attrs", S_IFREG | 0644, kAlice);
  ASSERT_OK(f);
  ASSERT_OK(plain_->setxattr(f->ino, "trusted.t", "1", 0, kRoot));
  ASSERT_OK(plain_->setxattr(f->ino, "user.u", "2", 0, kAlice));
  auto names = [&](client::ClusterClient& c, const Cred& cred) {
    auto l = c.listxattr(f->ino, cred);
    return l.ok() ? std::set<std::string>(l->begin(), l->end()) : std::set<std::string>{"error"};
  };
  EXPECT_EQ(names(*plain_, kRoot), (std::set<std::string>{"trusted.t", "user.u"}));
  EXPECT_EQ(names(*plain_, kAlice), (std::set<std::string>{"user.u"}));
  EXPECT_EQ(names(*squashed_, kRoot), (std::set<std::string>{"user.u"}));
}

}  // namespace
}  // namespace lanefs::test
