// POSIX metadata and data operations against one real lanefsd, through the
// typed ClusterClient. Every test works in its own directory of filesystem
// "t" so tests do not see each other's entries.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "integration/backend_fixture.h"

namespace lanefs::test {
namespace {

using proto::InodeAttr;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

class MetadataOpsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = std::make_unique<BackendProcess>("meta");
    if (auto st = backend_->start(); !st.ok()) {
      setup_error_ = st.error().to_string();
      return;
    }
    auto c = connect_client({backend_->addr()});
    if (!c.ok()) {
      setup_error_ = c.error().to_string();
      return;
    }
    client_ = std::move(*c);
    auto fs = client_->fs_create("t");
    if (!fs.ok()) {
      setup_error_ = "fs create t: " + fs.error().to_string();
      return;
    }
    fs_ = *fs;
  }
  static void TearDownTestSuite() {
    client_.reset();
    backend_.reset();
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    // Files are made as other users (uid 1000, 1234, ...): the backend
    // checks that they may write here, so anyone may.
    auto d = c().mkdir(fs_.root_ino, name, 0777);
    ASSERT_OK(d);
    dir_ = d->ino;
  }

  static client::ClusterClient& c() { return *client_; }

  Result<InodeAttr> mkfile(uint64_t parent, const std::string& name, uint32_t mode = S_IFREG | 0644,
                           proto::Cred cr = {1000, 1000}, bool exclusive = true) {
    proto::CreateReq r;
    r.parent = parent;
    r.name = name;
    r.mode = mode;
    r.cred = cr;
    r.exclusive = exclusive;
    return c().create(r);
  }

  // Pages through a directory with `page` entries per readdir, starting
  // after `cookie`; appends names. Bounded in pages.
  static void list_pages(uint64_t dir, uint64_t cookie, uint32_t page, std::vector<std::string>* names,
                         int* pages, uint64_t* last_cookie, int max_pages = 1000) {
    for (int i = 0; i < max_pages; ++i) {
      auto r = c().readdir(dir, cookie, page, false);
      ASSERT_OK(r);
      ASSERT_LE(r->entries.size(), page);
      ++*pages;
      for (const auto& e : r->entries) {
        names->push_back(e.name);
        cookie = e.cookie;
      }
      if (last_cookie) *last_cookie = cookie;
      if (r->eof) return;
      ASSERT_FALSE(r->entries.empty()) << "readdir returned an empty page without eof";
    }
    FAIL() << "readdir did not reach eof within " << max_pages << " pages";
  }

  inline static std::unique_ptr<BackendProcess> backend_;
  inline static std::unique_ptr<client::ClusterClient> client_;
  inline static std::string setup_error_;
  inline static proto::FsInfo fs_;
  uint64_t dir_ = 0;
};

TEST_F(MetadataOpsTest, CreateLookupGetattr) {
  int64_t now = proto::now_timespec().sec;
  auto f = mkfile(dir_, "f", S_IFREG | 0640, {1234, 5678});
  ASSERT_OK(f);
  EXPECT_EQ(f->mode, uint32_t{S_IFREG | 0640});
  EXPECT_EQ(f->uid, 1234u);
  EXPECT_EQ(f->gid, 5678u);
  EXPECT_EQ(f->nlink, 1u);
  EXPECT_EQ(f->size, 0u);
  EXPECT_EQ(f->fs_id, fs_.id);
  EXPECT_NE(f->ino, 0u);
  for (const auto& t : {f->atime, f->mtime, f->ctime, f->btime}) {
    EXPECT_GE(t.sec, now - 60);
    EXPECT_LE(t.sec, now + 60);
  }
  auto l = c().lookup(dir_, "f");
  ASSERT_OK(l);
  EXPECT_EQ(l->ino, f->ino);
  auto g = c().getattr(f->ino);
  ASSERT_OK(g);
  EXPECT_EQ(*g, *f);
  EXPECT_ERRC(c().lookup(dir_, "missing"), Errc::kNotFound);
  // A file is not a directory.
  EXPECT_ERRC(mkfile(f->ino, "x"), Errc::kNotDir);
}

TEST_F(MetadataOpsTest, MkdirBumpsParentNlink) {
  auto before = c().getattr(dir_);
  ASSERT_OK(before);
  EXPECT_EQ(before->nlink, 2u);
  auto sub = c().mkdir(dir_, "sub", 0750, {7, 8});
  ASSERT_OK(sub);
  EXPECT_EQ(sub->mode, uint32_t{S_IFDIR | 0750});
  EXPECT_EQ(sub->nlink, 2u);
  EXPECT_EQ(sub->uid, 7u);
  EXPECT_EQ(sub->parent, dir_);
  auto after = c().getattr(dir_);
  ASSERT_OK(after);
  EXPECT_EQ(after->nlink, 3u);
  // A regular file does not change the parent's link count.
  ASSERT_OK(mkfile(dir_, "plain"));
  EXPECT_EQ(c().getattr(dir_)->nlink, 3u);
  auto up = c().lookup(sub->ino, "..");
  ASSERT_OK(up);
  EXPECT_EQ(up->ino, dir_);
  EXPECT_ERRC(c().mkdir(dir_, "sub", 0755), Errc::kExists);
}

TEST_F(MetadataOpsTest, MknodFifoAndSocket) {
  auto fifo = mkfile(dir_, "fifo", S_IFIFO | 0600);
  ASSERT_OK(fifo);
  EXPECT_TRUE(S_ISFIFO(fifo->mode));
  EXPECT_EQ(fifo->mode & 07777, 0600u);
  auto sock = mkfile(dir_, "sock", S_IFSOCK | 0644);
  ASSERT_OK(sock);
  EXPECT_TRUE(S_ISSOCK(sock->mode));
  auto l = c().lookup(dir_, "fifo");
  ASSERT_OK(l);
  EXPECT_TRUE(S_ISFIFO(l->mode));
}

TEST_F(MetadataOpsTest, SymlinkReadlink) {
  const std::string target = "../some/where/else";
  auto s = c().symlink(dir_, "ln", target, {3, 4});
  ASSERT_OK(s);
  EXPECT_TRUE(S_ISLNK(s->mode));
  EXPECT_EQ(s->size, target.size());
  EXPECT_EQ(s->uid, 3u);
  auto r = c().readlink(s->ino);
  ASSERT_OK(r);
  EXPECT_EQ(*r, target);
  auto f = mkfile(dir_, "f");
  ASSERT_OK(f);
  EXPECT_ERRC(c().readlink(f->ino), Errc::kInvalid);
  EXPECT_ERRC(c().symlink(dir_, "empty", ""), Errc::kInvalid);
}

TEST_F(MetadataOpsTest, HardLinksAndUnlink) {
  auto f = mkfile(dir_, "f");
  ASSERT_OK(f);
  auto l = c().link(f->ino, dir_, "g");
  ASSERT_OK(l);
  EXPECT_EQ(l->ino, f->ino);
  EXPECT_EQ(l->nlink, 2u);
  auto g = c().lookup(dir_, "g");
  ASSERT_OK(g);
  EXPECT_EQ(g->ino, f->ino);
  EXPECT_EQ(c().getattr(f->ino)->nlink, 2u);
  EXPECT_ERRC(c().link(f->ino, dir_, "g"), Errc::kExists);

  auto d = c().mkdir(dir_, "d", 0755);
  ASSERT_OK(d);
  EXPECT_ERRC(c().link(d->ino, dir_, "dlink"), Errc::kNotPermitted);

  ASSERT_OK(c().unlink(dir_, "f"));
  EXPECT_ERRC(c().lookup(dir_, "f"), Errc::kNotFound);
  auto a = c().getattr(f->ino);
  ASSERT_OK(a);
  EXPECT_EQ(a->nlink, 1u);
  ASSERT_OK(c().unlink(dir_, "g"));
  EXPECT_ERRC(c().getattr(f->ino), Errc::kNotFound);
  EXPECT_ERRC(c().unlink(dir_, "g"), Errc::kNotFound);
}

TEST_F(MetadataOpsTest, RmdirAndUnlinkTypeChecks) {
  auto e = c().mkdir(dir_, "empty", 0755);
  ASSERT_OK(e);
  EXPECT_EQ(c().getattr(dir_)->nlink, 3u);
  ASSERT_OK(c().rmdir(dir_, "empty"));
  EXPECT_ERRC(c().lookup(dir_, "empty"), Errc::kNotFound);
  EXPECT_ERRC(c().getattr(e->ino), Errc::kNotFound);
  EXPECT_EQ(c().getattr(dir_)->nlink, 2u);

  auto n = c().mkdir(dir_, "full", 0777);
  ASSERT_OK(n);
  ASSERT_OK(mkfile(n->ino, "child"));
  EXPECT_ERRC(c().rmdir(dir_, "full"), Errc::kNotEmpty);
  ASSERT_OK(c().lookup(dir_, "full"));

  ASSERT_OK(mkfile(dir_, "file"));
  EXPECT_ERRC(c().rmdir(dir_, "file"), Errc::kNotDir);
  EXPECT_ERRC(c().unlink(dir_, "full"), Errc::kIsDir);
  EXPECT_ERRC(c().rmdir(dir_, "nothing"), Errc::kNotFound);
  ASSERT_OK(c().lookup(dir_, "file"));
}

TEST_F(MetadataOpsTest, CreateExisting) {
  auto f = mkfile(dir_, "f");
  ASSERT_OK(f);
  EXPECT_ERRC(mkfile(dir_, "f"), Errc::kExists);
  auto again = mkfile(dir_, "f", S_IFREG | 0644, {1000, 1000}, /*exclusive=*/false);
  ASSERT_OK(again);
  EXPECT_EQ(again->ino, f->ino);
  ASSERT_OK(c().mkdir(dir_, "d", 0755));
  EXPECT_ERRC(mkfile(dir_, "d", S_IFREG | 0644, {0, 0}, false), Errc::kExists);
  // Only one entry named f exists.
  auto all = c().list_dir(dir_);
  ASSERT_OK(all);
  EXPECT_EQ(std::count_if(all->begin(), all->end(), [](const auto& e) { return e.name == "f"; }), 1);
}

TEST_F(MetadataOpsTest, BadNames) {
  for (const std::string& bad : {std::string(""), std::string("."), std::string("a/b")}) {
    SCOPED_TRACE("name '" + bad + "'");
    EXPECT_ERRC(mkfile(dir_, bad), Errc::kInvalid);
    EXPECT_ERRC(c().mkdir(dir_, bad, 0755), Errc::kInvalid);
  }
  EXPECT_ERRC(mkfile(dir_, std::string(256, 'n')), Errc::kNameTooLong);
  ASSERT_OK(mkfile(dir_, std::string(255, 'n')));
  auto f = mkfile(dir_, "ok");
  ASSERT_OK(f);
  EXPECT_ERRC(c().link(f->ino, dir_, "x/y"), Errc::kInvalid);
  EXPECT_ERRC(c().rename(dir_, "ok", dir_, ""), Errc::kInvalid);
  EXPECT_ERRC(c().rename(dir_, "ok", dir_, std::string(256, 'r')), Errc::kNameTooLong);
  // Nothing was created by the failed calls: "..", ".", 255 n's and "ok".
  auto all = c().list_dir(dir_);
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 4u);
}

TEST_F(MetadataOpsTest, RenameFiles) {
  auto a = mkfile(dir_, "a");
  ASSERT_OK(a);
  ASSERT_OK(c().rename(dir_, "a", dir_, "b"));
  EXPECT_ERRC(c().lookup(dir_, "a"), Errc::kNotFound);
  EXPECT_EQ(c().lookup(dir_, "b")->ino, a->ino);

  // Over an existing file: the victim inode is gone.
  auto victim = mkfile(dir_, "victim");
  ASSERT_OK(victim);
  ASSERT_OK(c().rename(dir_, "b", dir_, "victim"));
  EXPECT_EQ(c().lookup(dir_, "victim")->ino, a->ino);
  EXPECT_ERRC(c().lookup(dir_, "b"), Errc::kNotFound);
  EXPECT_ERRC(c().getattr(victim->ino), Errc::kNotFound);

  // NOREPLACE onto an existing name.
  auto x = mkfile(dir_, "x");
  auto y = mkfile(dir_, "y");
  ASSERT_OK(x);
  ASSERT_OK(y);
  EXPECT_ERRC(c().rename(dir_, "x", dir_, "y", proto::kRenameNoReplace), Errc::kExists);
  EXPECT_EQ(c().lookup(dir_, "x")->ino, x->ino);
  EXPECT_EQ(c().lookup(dir_, "y")->ino, y->ino);
  ASSERT_OK(c().rename(dir_, "x", dir_, "z", proto::kRenameNoReplace));
  EXPECT_EQ(c().lookup(dir_, "z")->ino, x->ino);

  // EXCHANGE swaps, across directories too (and a file with a directory).
  ASSERT_OK(c().rename(dir_, "z", dir_, "y", proto::kRenameExchange));
  EXPECT_EQ(c().lookup(dir_, "z")->ino, y->ino);
  EXPECT_EQ(c().lookup(dir_, "y")->ino, x->ino);
  auto other = c().mkdir(dir_, "other", 0755);
  ASSERT_OK(other);
  auto sub = c().mkdir(other->ino, "sub", 0755);
  ASSERT_OK(sub);
  ASSERT_OK(c().rename(dir_, "y", other->ino, "sub", proto::kRenameExchange));
  EXPECT_EQ(c().lookup(dir_, "y")->ino, sub->ino);
  EXPECT_EQ(c().lookup(other->ino, "sub")->ino, x->ino);
  EXPECT_EQ(c().lookup(sub->ino, "..")->ino, dir_);
  EXPECT_EQ(c().getattr(other->ino)->nlink, 2u);
  EXPECT_EQ(c().getattr(dir_)->nlink, 4u);  // other and (moved) sub
  EXPECT_ERRC(c().rename(dir_, "z", dir_, "missing", proto::kRenameExchange), Errc::kNotFound);
  EXPECT_ERRC(c().rename(dir_, "z", dir_, "y", proto::kRenameExchange | proto::kRenameNoReplace),
              Errc::kInvalid);
}

TEST_F(MetadataOpsTest, RenameDirectories) {
  auto p = c().mkdir(dir_, "p", 0755);
  ASSERT_OK(p);
  auto q = c().mkdir(p->ino, "q", 0755);
  ASSERT_OK(q);
  EXPECT_ERRC(c().rename(dir_, "p", q->ino, "p2"), Errc::kInvalid);
  EXPECT_ERRC(c().rename(dir_, "p", p->ino, "self"), Errc::kInvalid);
  EXPECT_EQ(c().lookup(dir_, "p")->ino, p->ino);

  // Directory over a non-empty directory, over a file; file over a directory.
  auto full = c().mkdir(dir_, "full", 0777);
  ASSERT_OK(full);
  ASSERT_OK(mkfile(full->ino, "z"));
  EXPECT_ERRC(c().rename(dir_, "p", dir_, "full"), Errc::kNotEmpty);
  ASSERT_OK(mkfile(dir_, "file"));
  EXPECT_ERRC(c().rename(dir_, "p", dir_, "file"), Errc::kNotDir);
  EXPECT_ERRC(c().rename(dir_, "file", dir_, "p"), Errc::kIsDir);

  // Directory over an empty directory: the victim goes, the link count of
  // the parent drops by one.
  auto empty = c().mkdir(dir_, "empty", 0755);
  ASSERT_OK(empty);
  uint32_t nlink = c().getattr(dir_)->nlink;
  ASSERT_OK(c().rename(dir_, "p", dir_, "empty"));
  EXPECT_EQ(c().lookup(dir_, "empty")->ino, p->ino);
  EXPECT_ERRC(c().getattr(empty->ino), Errc::kNotFound);
  EXPECT_EQ(c().getattr(dir_)->nlink, nlink - 1);

  // Moving a directory to another parent updates ".." and both link counts.
  auto m1 = c().mkdir(dir_, "m1", 0755);
  auto m2 = c().mkdir(dir_, "m2", 0755);
  ASSERT_OK(m1);
  ASSERT_OK(m2);
  ASSERT_OK(c().mkdir(m1->ino, "moving", 0755));
  EXPECT_EQ(c().getattr(m1->ino)->nlink, 3u);
  ASSERT_OK(c().rename(m1->ino, "moving", m2->ino, "moved"));
  auto moved = c().lookup(m2->ino, "moved");
  ASSERT_OK(moved);
  EXPECT_EQ(c().lookup(moved->ino, "..")->ino, m2->ino);
  EXPECT_EQ(c().getattr(m1->ino)->nlink, 2u);
  EXPECT_EQ(c().getattr(m2->ino)->nlink, 3u);
}

TEST_F(MetadataOpsTest, ReaddirDotsFirst) {
  ASSERT_OK(mkfile(dir_, "one"));
  auto r = c().readdir(dir_, 0, 100, true);
  ASSERT_OK(r);
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_EQ(r->entries[0].name, ".");
  EXPECT_EQ(r->entries[0].ino, dir_);
  EXPECT_EQ(r->entries[1].name, "..");
  EXPECT_EQ(r->entries[1].ino, fs_.root_ino);
  EXPECT_EQ(r->entries[2].name, "one");
  EXPECT_TRUE(S_ISREG(r->entries[2].type));
  EXPECT_TRUE(r->eof);
  ASSERT_EQ(r->attrs.size(), 3u);
  EXPECT_EQ(r->attrs[2].ino, r->entries[2].ino);
  // The dots appear once, at the start only.
  auto second = c().readdir(dir_, r->entries[1].cookie, 100, false);
  ASSERT_OK(second);
  ASSERT_EQ(second->entries.size(), 1u);
  EXPECT_EQ(second->entries[0].name, "one");
}

TEST_F(MetadataOpsTest, ReaddirHonoursMaxEntries) {
  for (const char* n : {"a", "b", "c"}) ASSERT_OK(mkfile(dir_, n));
  // One entry per call, dots included: each name exactly once, in order.
  std::vector<std::string> names;
  int pages = 0;
  list_pages(dir_, 0, 1, &names, &pages, nullptr, 20);
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "a", "b", "c"}));
  for (uint32_t max : {1u, 2u, 3u}) {
    auto r = c().readdir(dir_, 0, max, false);
    ASSERT_OK(r);
    EXPECT_EQ(r->entries.size(), max) << "max_entries " << max;
  }
}

TEST_F(MetadataOpsTest, ReaddirPagesAndResume) {
  constexpr int kFiles = 1000;
  std::set<std::string> all;
  for (int i = 0; i < kFiles; ++i) {
    std::string n = "e" + std::to_string(i);
    ASSERT_OK(mkfile(dir_, n));
    all.insert(n);
  }
  std::vector<std::string> names;
  int pages = 0;
  list_pages(dir_, 0, 100, &names, &pages, nullptr);
  ASSERT_GE(names.size(), 2u);
  EXPECT_EQ(names[0], ".");
  EXPECT_EQ(names[1], "..");
  EXPECT_GE(pages, 10);
  std::map<std::string, int> seen;
  for (size_t i = 2; i < names.size(); ++i) ++seen[names[i]];
  EXPECT_EQ(seen.size(), all.size());
  for (const auto& n : all) EXPECT_EQ(seen[n], 1) << n;

  // Resume after deleting entries on both sides of the cookie.
  std::vector<std::string> first;
  int p2 = 0;
  uint64_t cookie = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = c().readdir(dir_, cookie, 100, false);
    ASSERT_OK(r);
    ASSERT_FALSE(r->eof);
    for (const auto& e : r->entries) {
      first.push_back(e.name);
      cookie = e.cookie;
    }
  }
  std::set<std::string> listed(first.begin(), first.end());
  std::vector<std::string> unlisted;
  for (const auto& n : all)
    if (!listed.count(n)) unlisted.push_back(n);
  ASSERT_GT(unlisted.size(), 300u);
  std::set<std::string> deleted;
  int del_listed = 0;
  for (const auto& n : first) {
    if (n == "." || n == ".." || del_listed == 100) continue;
    ASSERT_OK(c().unlink(dir_, n));
    deleted.insert(n);
    ++del_listed;
  }
  for (size_t i = 0; i < unlisted.size(); i += 3) {
    ASSERT_OK(c().unlink(dir_, unlisted[i]));
    deleted.insert(unlisted[i]);
  }
  std::vector<std::string> rest;
  list_pages(dir_, cookie, 100, &rest, &p2, nullptr);
  std::map<std::string, int> rest_seen;
  for (const auto& n : rest) ++rest_seen[n];
  for (const auto& n : unlisted) {
    if (deleted.count(n)) EXPECT_EQ(rest_seen.count(n), 0u) << "deleted entry listed: " << n;
    else EXPECT_EQ(rest_seen[n], 1) << "entry not listed exactly once after resume: " << n;
  }
  for (const auto& n : listed) EXPECT_EQ(rest_seen.count(n), 0u) << "entry listed again: " << n;
  EXPECT_EQ(rest.size(), unlisted.size() - (deleted.size() - del_listed));
}

TEST_F(MetadataOpsTest, Setattr) {
  auto f = mkfile(dir_, "f", S_IFREG | 0644, {1, 2});
  ASSERT_OK(f);
  proto::SetAttr sa;
  sa.mask = proto::kSetMode | proto::kSetUid | proto::kSetGid | proto::kSetAtime | proto::kSetMtime;
  sa.mode = 0600;
  sa.uid = 4242;
  sa.gid = 4343;
  sa.atime = {1'000'000'000, 123};
  sa.mtime = {1'100'000'000, 456789};
  auto r = c().setattr(f->ino, sa);
  ASSERT_OK(r);
  auto g = c().getattr(f->ino);
  ASSERT_OK(g);
  EXPECT_EQ(g->mode, uint32_t{S_IFREG | 0600});
  EXPECT_EQ(g->uid, 4242u);
  EXPECT_EQ(g->gid, 4343u);
  EXPECT_EQ(g->atime, sa.atime);
  EXPECT_EQ(g->mtime, sa.mtime);
  EXPECT_GE(g->ctime.sec, f->ctime.sec);
  EXPECT_EQ(*g, *r);
  // The type bits cannot be changed through the mode.
  proto::SetAttr m2;
  m2.mask = proto::kSetMode;
  m2.mode = S_IFDIR | 0711;
  ASSERT_OK(c().setattr(f->ino, m2));
  EXPECT_EQ(c().getattr(f->ino)->mode, uint32_t{S_IFREG | 0711});
  // Truncating a directory is refused.
  proto::SetAttr sz;
  sz.mask = proto::kSetSize;
  EXPECT_ERRC(c().setattr(dir_, sz), Errc::kIsDir);
}

TEST_F(MetadataOpsTest, TruncateShrinkAndGrow) {
  std::mt19937_64 rng(7);
  auto f = mkfile(dir_, "f");
  ASSERT_OK(f);
  auto data = random_bytes(rng, 3 * kMiB);
  for (auto& b : data) b |= 1;  // no zero bytes, so zeros can only come from the cut
  ASSERT_OK(c().write(f->ino, 0, data));
  auto full = c().getattr(f->ino);
  ASSERT_OK(full);
  EXPECT_EQ(full->size, 3 * kMiB);

  const uint64_t cut = kMiB + kMiB / 2;  // middle of chunk 1
  proto::SetAttr sa;
  sa.mask = proto::kSetSize;
  sa.size = cut;
  auto shrunk = c().setattr(f->ino, sa);
  ASSERT_OK(shrunk);
  EXPECT_EQ(shrunk->size, cut);
  EXPECT_LT(shrunk->blocks, full->blocks);
  auto head = c().read(f->ino, 0, 4 * kMiB);
  ASSERT_OK(head);
  ASSERT_EQ(head->size(), cut);
  EXPECT_TRUE(std::equal(head->begin(), head->end(), data.begin()));

  // Growing again: the cut range reads as zeros, not as the old data.
  sa.size = 4 * kMiB;
  auto grown = c().setattr(f->ino, sa);
  ASSERT_OK(grown);
  EXPECT_EQ(grown->size, 4 * kMiB);
  auto all = c().read(f->ino, 0, 4 * kMiB);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 4 * kMiB);
  EXPECT_TRUE(std::equal(all->begin(), all->begin() + cut, data.begin()));
  EXPECT_TRUE(all_zero(std::span(*all).subspan(cut)));
  // Truncate to zero drops every block.
  sa.size = 0;
  auto zero = c().setattr(f->ino, sa);
  ASSERT_OK(zero);
  EXPECT_EQ(zero->size, 0u);
  EXPECT_EQ(zero->blocks, 0u);
}

TEST_F(MetadataOpsTest, WritesInsideAndAcrossChunks) {
  std::mt19937_64 rng(11);
  ASSERT_EQ(c().map().chunk_size, kMiB);
  auto f = mkfile(dir_, "f");
  ASSERT_OK(f);
  auto a = random_bytes(rng, 1000);
  auto w1 = c().write(f->ino, 12345, a);
  ASSERT_OK(w1);
  EXPECT_EQ(w1->size, 12345u + 1000);
  auto r1 = c().read(f->ino, 0, 1 << 20);
  ASSERT_OK(r1);
  ASSERT_EQ(r1->size(), 13345u);
  EXPECT_TRUE(all_zero(std::span(*r1).first(12345)));
  EXPECT_TRUE(std::equal(a.begin(), a.end(), r1->begin() + 12345));

  // Overwrite part of it in the middle.
  auto b = random_bytes(rng, 100);
  ASSERT_OK(c().write(f->ino, 12400, b));
  auto r2 = c().read(f->ino, 12345, 1000);
  ASSERT_OK(r2);
  std::vector<uint8_t> want = a;
  std::copy(b.begin(), b.end(), want.begin() + (12400 - 12345));
  EXPECT_EQ(*r2, want);

  // Across the boundary of chunks 0 and 1.
  auto x = random_bytes(rng, 10000);
  const uint64_t off = kMiB - 3000;
  auto w3 = c().write(f->ino, off, x);
  ASSERT_OK(w3);
  EXPECT_EQ(w3->size, off + x.size());
  auto r3 = c().read(f->ino, off, 10000);
  ASSERT_OK(r3);
  EXPECT_EQ(*r3, x);
  // Each side read separately (one chunk each).
  auto left = c().read_data(f->ino, off, 3000);
  auto right = c().read_data(f->ino, kMiB, 7000);
  ASSERT_OK(left);
  ASSERT_OK(right);
  EXPECT_TRUE(std::equal(left->begin(), left->end(), x.begin()));
  EXPECT_TRUE(std::equal(right->begin(), right->end(), x.begin() + 3000));
  // The gap between the two writes is a hole.
  auto gap = c().read(f->ino, 13345, static_cast<uint32_t>(off - 13345));
  ASSERT_OK(gap);
  EXPECT_TRUE(all_zero(*gap));
}

TEST_F(MetadataOpsTest, EmptyWriteDoesNotExtend) {
  auto f = mkfile(dir_, "f");
  ASSERT_OK(f);
  auto w = c().write(f->ino, 1000, std::span<const uint8_t>());
  ASSERT_OK(w);
  EXPECT_EQ(w->size, 0u);
  EXPECT_EQ(c().getattr(f->ino)->size, 0u);
  const std::vector<uint8_t> one = {42};
  ASSERT_OK(c().write(f->ino, 10, one));
  auto w2 = c().write(f->ino, 5000, std::span<const uint8_t>());
  ASSERT_OK(w2);
  EXPECT_EQ(w2->size, 11u);
}

TEST_F(MetadataOpsTest, SparseWriteAt5GiB) {
  std::mt19937_64 rng(13);
  auto f = mkfile(dir_, "sparse");
  ASSERT_OK(f);
  auto d = random_bytes(rng, 5000);
  const uint64_t off = 5 * kGiB;
  auto w = c().write(f->ino, off, d);
  ASSERT_OK(w);
  EXPECT_EQ(w->size, off + d.size());
  auto g = c().getattr(f->ino);
  ASSERT_OK(g);
  EXPECT_EQ(g->size, off + d.size());
  EXPECT_GT(g->blocks, 0u);
  EXPECT_LT(g->blocks * 512, 4 * kMiB) << "st_blocks should count stored data, not the size";
  auto back = c().read(f->ino, off, 10000);
  ASSERT_OK(back);
  EXPECT_EQ(*back, d);
  for (uint64_t hole : {uint64_t{0}, 2 * kGiB + 12345, off - 65536}) {
    auto z = c().read(f->ino, hole, 65536);
    ASSERT_OK(z);
    ASSERT_EQ(z->size(), 65536u);
    EXPECT_TRUE(all_zero(*z)) << "hole at " << hole;
  }
}

TEST_F(MetadataOpsTest, BlocksGrowWithData) {
  std::mt19937_64 rng(17);
  auto f = mkfile(dir_, "f");
  ASSERT_OK(f);
  EXPECT_EQ(f->blocks, 0u);
  auto w1 = c().write(f->ino, 0, random_bytes(rng, 4096));
  ASSERT_OK(w1);
  EXPECT_GT(w1->blocks, 0u);
  auto w2 = c().write(f->ino, 4096, random_bytes(rng, 2 * kMiB));
  ASSERT_OK(w2);
  EXPECT_GT(w2->blocks, w1->blocks);
  EXPECT_GE(w2->blocks * 512, 2 * kMiB);
  EXPECT_EQ(c().getattr(f->ino)->blocks, w2->blocks);
  // Overwriting allocated data does not allocate more.
  auto w3 = c().write(f->ino, 0, random_bytes(rng, 4096));
  ASSERT_OK(w3);
  EXPECT_EQ(w3->blocks, w2->blocks);
}

TEST_F(MetadataOpsTest, Xattrs) {
  auto f = mkfile(dir_, "f");
  ASSERT_OK(f);
  const std::string bin("v\0with\0nul", 10);
  ASSERT_OK(c().setxattr(f->ino, "user.a", "v1"));
  ASSERT_OK(c().setxattr(f->ino, "user.b", bin));
  EXPECT_EQ(*c().getxattr(f->ino, "user.a"), "v1");
  EXPECT_EQ(*c().getxattr(f->ino, "user.b"), bin);
  auto names = c().listxattr(f->ino);
  ASSERT_OK(names);
  std::set<std::string> ns(names->begin(), names->end());
  EXPECT_EQ(ns, (std::set<std::string>{"user.a", "user.b"}));
  EXPECT_EQ(names->size(), 2u);

  EXPECT_ERRC(c().setxattr(f->ino, "user.a", "x", proto::kXattrCreate), Errc::kExists);
  EXPECT_ERRC(c().setxattr(f->ino, "user.none", "x", proto::kXattrReplace), Errc::kNoAttr);
  EXPECT_ERRC(c().getxattr(f->ino, "user.none"), Errc::kNoAttr);
  EXPECT_EQ(*c().getxattr(f->ino, "user.a"), "v1");
  ASSERT_OK(c().setxattr(f->ino, "user.a", "v2", proto::kXattrReplace));
  EXPECT_EQ(*c().getxattr(f->ino, "user.a"), "v2");
  ASSERT_OK(c().setxattr(f->ino, "user.c", "new", proto::kXattrCreate));

  ASSERT_OK(c().removexattr(f->ino, "user.a"));
  EXPECT_ERRC(c().getxattr(f->ino, "user.a"), Errc::kNoAttr);
  EXPECT_ERRC(c().removexattr(f->ino, "user.a"), Errc::kNoAttr);
  names = c().listxattr(f->ino);
  ASSERT_OK(names);
  ns = std::set<std::string>(names->begin(), names->end());
  EXPECT_EQ(ns, (std::set<std::string>{"user.b", "user.c"}));
  // Directories carry xattrs too.
  ASSERT_OK(c().setxattr(dir_, "user.d", "dir"));
  EXPECT_EQ(*c().getxattr(dir_, "user.d"), "dir");
}

TEST_F(MetadataOpsTest, Statfs) {
  auto s = c().statfs(fs_.id);
  ASSERT_OK(s);
  EXPECT_GT(s->total_bytes, 0u);
  EXPECT_LE(s->free_bytes, s->total_bytes);
  EXPECT_LE(s->avail_bytes, s->total_bytes);
  EXPECT_GT(s->total_inodes, 0u);
  EXPECT_LE(s->free_inodes, s->total_inodes);
  EXPECT_GT(s->block_size, 0u);
  EXPECT_ERRC(c().statfs(fs_.id + 1000), Errc::kNotFound);
}

TEST_F(MetadataOpsTest, FsListAndDelete) {
  auto t2 = c().fs_create("t2");
  ASSERT_OK(t2);
  EXPECT_NE(t2->id, fs_.id);
  EXPECT_ERRC(c().fs_create("t2"), Errc::kExists);
  auto l = c().fs_list();
  ASSERT_OK(l);
  std::set<std::string> names;
  for (const auto& f : *l) names.insert(f.name);
  EXPECT_TRUE(names.count("t") && names.count("t2"));

  std::mt19937_64 rng(19);
  proto::CreateReq cr;
  cr.parent = t2->root_ino;
  cr.name = "data";
  cr.mode = S_IFREG | 0644;
  auto f = c().create(cr);
  ASSERT_OK(f);
  ASSERT_OK(c().write(f->ino, 0, random_bytes(rng, 2 * kMiB)));
  auto st0 = c().status_all();
  ASSERT_EQ(st0.size(), 1u);
  ASSERT_OK(st0[0].second);

  ASSERT_OK(c().fs_delete("t2"));
  l = c().fs_list();
  ASSERT_OK(l);
  for (const auto& fs : *l) EXPECT_NE(fs.name, "t2");
  EXPECT_ERRC(c().fs_get("t2"), Errc::kNotFound);
  EXPECT_ERRC(c().getattr(t2->root_ino), Errc::kNotFound);
  EXPECT_ERRC(c().getattr(f->ino), Errc::kNotFound);
  auto st1 = c().status_all();
  ASSERT_OK(st1[0].second);
  EXPECT_LE(st1[0].second->chunk_bytes + 2 * kMiB, st0[0].second->chunk_bytes)
      << "the deleted filesystem's data is still stored";
  EXPECT_ERRC(c().fs_delete("t2"), Errc::kNotFound);
  // The other filesystem is untouched.
  ASSERT_OK(c().getattr(fs_.root_ino));
  ASSERT_OK(c().getattr(dir_));
}

}  // namespace
}  // namespace lanefs::test
