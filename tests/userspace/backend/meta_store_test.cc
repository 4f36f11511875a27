#include "backend/meta_store.h"

#include <rocksdb/db.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace lanefs::backend {
namespace {

using proto::InodeAttr;

InodeAttr sample_inode(uint64_t ino, uint32_t fs_id = 7) {
  InodeAttr a;
  a.ino = ino;
  a.fs_id = fs_id;
  a.mode = S_IFREG | 0640;
  a.uid = 1001;
  a.gid = 1002;
  a.nlink = 3;
  a.rdev = 0x0801;
  a.size = (uint64_t{1} << 40) + 5;
  a.blocks = 12345;
  a.atime = {1700000000, 1};
  a.mtime = {1700000001, 999999999};
  a.ctime = {-5, 42};
  a.btime = {1600000000, 500};
  a.parent = 99;
  a.next_cookie = 77;
  return a;
}

std::unique_ptr<MetaStore> open_store(const std::string& path) {
  auto s = MetaStore::open(path);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().to_string());
  return s.ok() ? std::move(s).value() : nullptr;
}

// The largest WAL file of the store at `path` and its size (empty, 0: none).
std::pair<std::string, off_t> largest_wal(const std::string& path) {
  std::pair<std::string, off_t> best{"", 0};
  for (const auto& e : std::filesystem::directory_iterator(path)) {
    struct stat st {};
    if (e.path().extension() == ".log" && ::stat(e.path().c_str(), &st) == 0 && st.st_size > best.second)
      best = {e.path().string(), st.st_size};
  }
  return best;
}

class MetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = tmp_.path() + "/db";
    store_ = open_store(path_);
    ASSERT_NE(store_, nullptr);
  }
  void reopen() {
    store_.reset();
    store_ = open_store(path_);
    ASSERT_NE(store_, nullptr);
  }
  // Adds `name` -> ino in `parent` with the given cookie.
  void add_dirent(uint64_t parent, const std::string& name, uint64_t ino, uint64_t cookie) {
    MetaStore::Batch b;
    b.put_dirent(parent, name, {ino, S_IFREG, cookie});
    ASSERT_OK(store_->commit(b));
  }

  test::TempDir tmp_;
  std::string path_;
  std::unique_ptr<MetaStore> store_;
};

TEST_F(MetaStoreTest, InodeRoundTripKeepsEveryField) {
  InodeAttr a = sample_inode(0x0003000000000010ull);
  MetaStore::Batch b;
  b.put_inode(a);
  ASSERT_OK(store_->commit(b));
  auto got = store_->get_inode(a.ino);
  ASSERT_OK(got);
  EXPECT_EQ(*got, a);

  MetaStore::Batch del;
  del.delete_inode(a.ino);
  ASSERT_OK(store_->commit(del));
  EXPECT_EQ(store_->get_inode(a.ino).code(), Errc::kNotFound);
}

TEST_F(MetaStoreTest, MissingRecordsAreNotFound) {
  EXPECT_EQ(store_->get_inode(42).code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_symlink(42).code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_dirent(1, "x").code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_xattr(1, "user.x").code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_kv("nope").code(), Errc::kNotFound);
}

TEST_F(MetaStoreTest, OpenFailureIsIoWithPath) {
  std::string file = tmp_.path() + "/plainfile";
  FILE* f = std::fopen(file.c_str(), "w");  // a file where a directory is needed
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  auto r = MetaStore::open(file + "/db");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kIo);
  EXPECT_NE(r.error().message.find(file), std::string::npos) << r.error().message;
}

TEST_F(MetaStoreTest, DirentPutGetDelete) {
  MetaStore::Batch b;
  b.put_dirent(5, "hello", {100, S_IFDIR, 3});
  ASSERT_OK(store_->commit(b));
  auto d = store_->get_dirent(5, "hello");
  ASSERT_OK(d);
  EXPECT_EQ(d->ino, 100u);
  EXPECT_EQ(d->type, uint32_t{S_IFDIR});
  EXPECT_EQ(d->cookie, 3u);
  EXPECT_EQ(store_->get_dirent(6, "hello").code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_dirent(5, "hell").code(), Errc::kNotFound);

  MetaStore::Batch del;
  del.delete_dirent(5, "hello", 3);
  ASSERT_OK(store_->commit(del));
  EXPECT_EQ(store_->get_dirent(5, "hello").code(), Errc::kNotFound);
  bool eof = false;
  auto list = store_->list_dirents(5, 0, 10, &eof);
  ASSERT_OK(list);
  EXPECT_TRUE(list->empty());
  EXPECT_TRUE(eof);
}

TEST_F(MetaStoreTest, ListDirentsInCookieOrderNotNameOrder) {
  // Names sort the opposite way to cookies, and cookies cross a byte
  // boundary, so only numeric cookie order gives this sequence.
  add_dirent(9, "z", 1000, 3);
  add_dirent(9, "y", 1001, 255);
  add_dirent(9, "x", 1002, 256);
  add_dirent(9, "w", 1003, 70000);
  add_dirent(8, "other", 2000, 4);  // neighbouring directories must not leak in
  add_dirent(10, "other", 2001, 4);
  bool eof = false;
  auto list = store_->list_dirents(9, 0, 100, &eof);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 4u);
  EXPECT_TRUE(eof);
  std::vector<std::string> names;
  for (const auto& e : *list) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"z", "y", "x", "w"}));
  EXPECT_EQ((*list)[1].ino, 1001u);
  EXPECT_EQ((*list)[1].cookie, 255u);
  EXPECT_EQ((*list)[1].type, uint32_t{S_IFREG});

  auto tail = store_->list_dirents(9, 255, 100, &eof);
  ASSERT_OK(tail);
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].name, "x");
  EXPECT_TRUE(eof);

  auto first = store_->list_dirents(9, 0, 1, &eof);
  ASSERT_OK(first);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_FALSE(eof);

  auto last = store_->list_dirents(9, 256, 1, &eof);
  ASSERT_OK(last);
  ASSERT_EQ(last->size(), 1u);
  EXPECT_TRUE(eof) << "no entry follows the last one";

  auto none = store_->list_dirents(9, 70000, 10, &eof);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
  EXPECT_TRUE(eof);
}

TEST_F(MetaStoreTest, PagedListingReturnsEveryEntryExactlyOnce) {
  constexpr int kEntries = 1000;
  MetaStore::Batch b;
  for (int i = 0; i < kEntries; ++i) {
    b.put_dirent(77, "f" + std::to_string(i),
                 {5000u + i, S_IFREG, 3 + static_cast<uint64_t>(i) * 7});
  }
  ASSERT_OK(store_->commit(b));

  std::set<std::string> seen;
  uint64_t cookie = 0;
  bool eof = false;
  int calls = 0;
  uint64_t prev = 0;
  while (!eof) {
    ASSERT_LT(++calls, 100);
    auto page = store_->list_dirents(77, cookie, 100, &eof);
    ASSERT_OK(page);
    ASSERT_LE(page->size(), 100u);
    for (const auto& e : *page) {
      EXPECT_GT(e.cookie, prev);
      prev = e.cookie;
      EXPECT_TRUE(seen.insert(e.name).second) << "listed twice: " << e.name;
    }
    if (!page->empty()) cookie = page->back().cookie;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kEntries));
  EXPECT_LE(calls, 11);
}

TEST_F(MetaStoreTest, StaleCookieIndexIsSkipped) {
  // Overwriting a name with a new cookie without deleting the old one leaves
  // a stale index entry; listing shows the name once, at its new cookie.
  add_dirent(3, "a", 10, 5);
  add_dirent(3, "a", 11, 9);
  bool eof = false;
  auto list = store_->list_dirents(3, 0, 10, &eof);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].cookie, 9u);
  EXPECT_EQ((*list)[0].ino, 11u);
}

TEST_F(MetaStoreTest, DirEmpty) {
  EXPECT_TRUE(store_->dir_empty(50));
  add_dirent(50, "child", 51, 3);
  add_dirent(49, "x", 52, 3);
  EXPECT_FALSE(store_->dir_empty(50));
  EXPECT_TRUE(store_->dir_empty(51));
  MetaStore::Batch b;
  b.delete_dirent(50, "child", 3);
  ASSERT_OK(store_->commit(b));
  EXPECT_TRUE(store_->dir_empty(50));
  EXPECT_FALSE(store_->dir_empty(49));
}

TEST_F(MetaStoreTest, Xattrs) {
  MetaStore::Batch b;
  b.put_xattr(20, "user.b", "two");
  b.put_xattr(20, "user.a", std::string("o\0ne", 4));
  b.put_xattr(21, "user.other", "x");
  b.put_xattr(19, "user.other", "x");
  ASSERT_OK(store_->commit(b));

  auto a = store_->get_xattr(20, "user.a");
  ASSERT_OK(a);
  EXPECT_EQ(*a, std::string("o\0ne", 4));
  auto names = store_->list_xattrs(20);
  ASSERT_OK(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"user.a", "user.b"}));

  MetaStore::Batch del;
  del.delete_xattr(20, "user.a");
  ASSERT_OK(store_->commit(del));
  EXPECT_EQ(store_->get_xattr(20, "user.a").code(), Errc::kNotFound);
  names = store_->list_xattrs(20);
  ASSERT_OK(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"user.b"}));
  auto empty = store_->list_xattrs(22);
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->empty());
}

TEST_F(MetaStoreTest, KvAndSymlink) {
  MetaStore::Batch b;
  b.put_kv("cluster_map", "v1");
  b.put_symlink(33, "../some/target");
  ASSERT_OK(store_->commit(b));
  auto v = store_->get_kv("cluster_map");
  ASSERT_OK(v);
  EXPECT_EQ(*v, "v1");
  auto t = store_->get_symlink(33);
  ASSERT_OK(t);
  EXPECT_EQ(*t, "../some/target");

  MetaStore::Batch upd;
  upd.put_kv("cluster_map", "v2");
  upd.delete_symlink(33);
  ASSERT_OK(store_->commit(upd));
  v = store_->get_kv("cluster_map");
  ASSERT_OK(v);
  EXPECT_EQ(*v, "v2");
  EXPECT_EQ(store_->get_symlink(33).code(), Errc::kNotFound);

  MetaStore::Batch del;
  del.delete_kv("cluster_map");
  ASSERT_OK(store_->commit(del));
  EXPECT_EQ(store_->get_kv("cluster_map").code(), Errc::kNotFound);
}

TEST_F(MetaStoreTest, BatchIsInvisibleUntilCommitThenAllVisible) {
  MetaStore::Batch b;
  EXPECT_TRUE(b.empty());
  b.put_inode(sample_inode(100));
  b.put_inode(sample_inode(101));
  b.put_dirent(1, "f", {100, S_IFREG, 3});
  b.put_xattr(100, "user.k", "v");
  b.put_kv("k", "v");
  EXPECT_FALSE(b.empty());

  EXPECT_EQ(store_->get_inode(100).code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_inode(101).code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_dirent(1, "f").code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_xattr(100, "user.k").code(), Errc::kNotFound);
  EXPECT_EQ(store_->get_kv("k").code(), Errc::kNotFound);
  EXPECT_TRUE(store_->dir_empty(1));
  EXPECT_EQ(store_->inode_count(), 0u);

  ASSERT_OK(store_->commit(b));
  EXPECT_OK(store_->get_inode(100));
  EXPECT_OK(store_->get_inode(101));
  EXPECT_OK(store_->get_dirent(1, "f"));
  EXPECT_OK(store_->get_xattr(100, "user.k"));
  EXPECT_OK(store_->get_kv("k"));
  EXPECT_FALSE(store_->dir_empty(1));
  EXPECT_EQ(store_->inode_count(), 2u);

  MetaStore::Batch empty;
  EXPECT_OK(store_->commit(empty));
}

// Inode numbers are unique (never handed out twice, across reopens), in
// the shard asked for, and in the permuted range (ino_cipher.h): not the
// small consecutive values of the counter behind them.
TEST_F(MetaStoreTest, InodeNumbersAreUniqueAcrossReopensAndNotConsecutive) {
  std::set<uint64_t> seen;
  auto take = [&](int n) {
    auto lk = store_->lock();
    MetaStore::Batch b;
    for (int i = 0; i < n; ++i) {
      auto ino = store_->next_ino(3, b);
      ASSERT_OK(ino);
      EXPECT_EQ(proto::ino_shard(*ino), 3u);
      EXPECT_NE(*ino & InoCipher::kPermutedBit, 0u) << std::hex << *ino;
      EXPECT_TRUE(seen.insert(*ino).second) << "inode number handed out twice: " << std::hex << *ino;
    }
    ASSERT_OK(store_->commit(b));
  };
  take(2000);
  int consecutive = 0;
  for (auto it = seen.begin(); std::next(it) != seen.end(); ++it) consecutive += *std::next(it) - *it == 1;
  EXPECT_LE(consecutive, 1) << "numbers follow one another: a neighbour is guessable";
  reopen();
  take(50);
  reopen();
  take(50);
}

TEST_F(MetaStoreTest, DataSurvivesReopen) {
  InodeAttr a = sample_inode(500);
  MetaStore::Batch b;
  b.put_inode(a);
  b.put_dirent(1, "keep", {500, S_IFREG, 3});
  b.put_xattr(500, "user.x", "y");
  b.put_symlink(500, "t");
  b.put_kv("k", "v");
  ASSERT_OK(store_->commit(b));
  reopen();
  auto got = store_->get_inode(500);
  ASSERT_OK(got);
  EXPECT_EQ(*got, a);
  auto d = store_->get_dirent(1, "keep");
  ASSERT_OK(d);
  EXPECT_EQ(d->ino, 500u);
  bool eof = false;
  auto list = store_->list_dirents(1, 0, 10, &eof);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "keep");
  EXPECT_OK(store_->get_xattr(500, "user.x"));
  EXPECT_OK(store_->get_symlink(500));
  EXPECT_OK(store_->get_kv("k"));
  EXPECT_EQ(store_->inode_count(), 1u);
}

TEST_F(MetaStoreTest, InodesOfFsFiltersByFs) {
  MetaStore::Batch b;
  b.put_inode(sample_inode(1, 1));
  b.put_inode(sample_inode(2, 2));
  b.put_inode(sample_inode(3, 1));
  b.put_inode(sample_inode(uint64_t{5} << 48 | 4, 1));
  b.put_kv("not-an-inode", "x");
  ASSERT_OK(store_->commit(b));
  auto one = store_->inodes_of_fs(1);
  ASSERT_OK(one);
  std::vector<uint64_t> got = *one;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<uint64_t>{1, 3, uint64_t{5} << 48 | 4}));
  auto two = store_->inodes_of_fs(2);
  ASSERT_OK(two);
  EXPECT_EQ(*two, (std::vector<uint64_t>{2}));
  auto none = store_->inodes_of_fs(9);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(store_->inode_count(), 4u);
}

TEST_F(MetaStoreTest, ApplyIsVisibleAtOnceAndTicketsGrow) {
  MetaStore::Batch b1, b2, empty;
  b1.put_kv("a", "1");
  b2.put_kv("b", "2");
  auto t1 = store_->apply(b1);
  ASSERT_OK(t1);
  EXPECT_OK(store_->get_kv("a"));  // an applied batch is visible before it is durable
  auto t2 = store_->apply(b2);
  ASSERT_OK(t2);
  EXPECT_GT(t2->seq, t1->seq);
  auto t0 = store_->apply(empty);
  ASSERT_OK(t0);
  EXPECT_EQ(t0->seq, 0u) << "an empty batch needs no sync";
  EXPECT_OK(store_->make_durable(*t0));
  auto before = store_->stats();
  ASSERT_OK(store_->make_durable(*t2));
  auto after = store_->stats();
  EXPECT_EQ(after.wal_syncs, before.wal_syncs + 1);
  // t1 was applied before the sync that covered t2: no second sync.
  ASSERT_OK(store_->make_durable(*t1));
  EXPECT_EQ(store_->stats().wal_syncs, after.wal_syncs);
  EXPECT_EQ(after.commits, 2u);
}

TEST_F(MetaStoreTest, CommitWithTheLockReleasesItBeforeTheSync) {
  auto lk = store_->lock();
  MetaStore::Batch b;
  b.put_kv("k", "v");
  ASSERT_OK(store_->commit(b, lk));
  EXPECT_FALSE(lk.owns_lock());
  // Released: another thread can take it at once.
  std::thread other([&] { auto l2 = store_->lock(); });
  other.join();
  EXPECT_OK(store_->get_kv("k"));
}

// Eight threads each commit read-modify-write batches under lock(): their
// WAL syncs are shared (fewer syncs than commits) and every record is there
// after a reopen.
TEST_F(MetaStoreTest, ConcurrentCommitsShareWalSyncs) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 60;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto lk = store_->lock();
        MetaStore::Batch b;
        // A read-modify-write of a shared counter plus a record of its own.
        uint64_t n = 0;
        if (auto c = store_->get_kv("count"); c.ok()) n = std::stoull(*c);
        b.put_kv("count", std::to_string(n + 1));
        b.put_kv("t" + std::to_string(t) + "-" + std::to_string(i), std::to_string(n));
        if (!store_->commit(b, lk).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  auto st = store_->stats();
  EXPECT_EQ(st.commits, uint64_t{kThreads * kPerThread});
  EXPECT_GE(st.wal_syncs, 1u);
  EXPECT_LT(st.wal_syncs, st.commits) << "no two commits shared a WAL sync";
  std::printf("%llu commits, %llu WAL syncs\n", static_cast<unsigned long long>(st.commits),
              static_cast<unsigned long long>(st.wal_syncs));
  reopen();
  auto count = store_->get_kv("count");
  ASSERT_OK(count);
  EXPECT_EQ(*count, std::to_string(kThreads * kPerThread));
  std::set<std::string> seen_values;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kPerThread; ++i) {
      auto v = store_->get_kv("t" + std::to_string(t) + "-" + std::to_string(i));
      ASSERT_OK(v);
      seen_values.insert(*v);
    }
  EXPECT_EQ(seen_values.size(), size_t{kThreads * kPerThread}) << "lost update under the lock";
}

TEST_F(MetaStoreTest, InodeNumberHandedOutWithoutItsBatchIsNotReusedAfterReopen) {
  uint64_t first;
  {
    auto lk = store_->lock();
    MetaStore::Batch b;
    auto ino = store_->next_ino(0, b);
    ASSERT_OK(ino);
    first = *ino;
    // The number is reserved durably on its own, without its batch.
  }
  reopen();
  auto lk = store_->lock();
  MetaStore::Batch b;
  for (int i = 0; i < 1100; ++i) {  // past one reserved range
    auto ino = store_->next_ino(0, b);
    ASSERT_OK(ino);
    ASSERT_NE(*ino, first) << "an inode number handed out (maybe seen) is never reused";
  }
}

// The store's API cannot write a malformed record, so this test closes it and
// writes garbage under an inode key ('I' + big-endian ino) with RocksDB itself.
TEST_F(MetaStoreTest, CorruptInodeRecordIsReportedAsCorrupt) {
  MetaStore::Batch b;
  b.put_inode(sample_inode(7));
  ASSERT_OK(store_->commit(b));
  store_.reset();
  {
    rocksdb::Options opts;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(opts, path_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string key("I\0\0\0\0\0\0\0\x08", 9);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, "garbage").ok());
  }
  store_ = open_store(path_);
  ASSERT_NE(store_, nullptr);
  EXPECT_OK(store_->get_inode(7));
  EXPECT_EQ(store_->get_inode(8).code(), Errc::kCorrupt);
  EXPECT_EQ(store_->inodes_of_fs(7).code(), Errc::kCorrupt);
}

// The inode number key ('K' "ino_key"), removed or cut short with RocksDB
// itself: a store that gave permuted numbers refuses to start rather than
// make a new key (which could repeat them); one that never did starts.
TEST_F(MetaStoreTest, ALostOrDamagedInodeNumberKeyStopsTheStore) {
  auto edit_key = [&](const std::optional<std::string>& value) {
    store_.reset();
    rocksdb::Options opts;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(opts, path_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    if (value) ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "Kino_key", *value).ok());
    else ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), "Kino_key").ok());
  };
  edit_key(std::nullopt);  // nothing numbered yet: a new key is made
  store_ = open_store(path_);
  ASSERT_NE(store_, nullptr);
  {
    auto lk = store_->lock();
    MetaStore::Batch b;
    auto ino = store_->next_ino(0, b);
    ASSERT_OK(ino);
    InodeAttr a = sample_inode(*ino);
    b.put_inode(a);
    ASSERT_OK(store_->commit(b, lk));
  }
  edit_key(std::string("short"));
  auto damaged = MetaStore::open(path_);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.code(), Errc::kCorrupt);
  EXPECT_NE(damaged.error().message.find("inode number key is damaged"), std::string::npos) << damaged.error().message;
  edit_key(std::nullopt);
  auto missing = MetaStore::open(path_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), Errc::kCorrupt);
  EXPECT_NE(missing.error().message.find("inode number key is missing"), std::string::npos) << missing.error().message;
}

TEST_F(MetaStoreTest, CorruptDirentValueIsReportedAsCorrupt) {
  // A dirent value of the wrong length, written with RocksDB directly as above.
  add_dirent(4, "ok", 40, 3);
  store_.reset();
  {
    rocksdb::Options opts;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(opts, path_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string key("D\0\0\0\0\0\0\0\x04ok", 11);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, "xyz").ok());
  }
  store_ = open_store(path_);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->get_dirent(4, "ok").code(), Errc::kCorrupt);
  bool eof = false;
  EXPECT_EQ(store_->list_dirents(4, 0, 10, &eof).code(), Errc::kCorrupt);
}

// A WAL damaged in its middle (not a record torn by a crash at its tail)
// stops the store from opening, with one line naming the file: replaying
// up to the damage and dropping the rest would lose acknowledged metadata
// without a word.
TEST_F(MetaStoreTest, DamagedWalRefusesToOpenNamingTheFile) {
  for (uint64_t i = 1; i <= 300; ++i) {
    MetaStore::Batch b;
    b.put_inode(sample_inode(1000 + i));
    ASSERT_OK(store_->commit(b));
  }
  store_.reset();
  const auto [wal, wal_size] = largest_wal(path_);
  ASSERT_GT(wal_size, 4096) << "the records should still be in a WAL file of " << path_;
  {
    FILE* f = std::fopen(wal.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fseek(f, wal_size / 3, SEEK_SET), 0);
    int c = std::fgetc(f);
    ASSERT_NE(c, EOF);
    ASSERT_EQ(std::fseek(f, wal_size / 3, SEEK_SET), 0);
    std::fputc(c ^ 0x5a, f);
    std::fclose(f);
  }
  auto r = MetaStore::open(path_);
  ASSERT_FALSE(r.ok()) << "a store with a damaged WAL opened (acknowledged records after the damage would be lost)";
  EXPECT_EQ(r.code(), Errc::kCorrupt) << r.error().to_string();
  const std::string wal_name = std::filesystem::path(wal).filename().string();
  EXPECT_NE(r.error().message.find(wal_name), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
  std::printf("%s\n", r.error().to_string().c_str());  // what lanefsd prints
}

// A crash while the last batch was being written leaves it torn at the
// WAL's tail; it was never acknowledged (acknowledged batches are synced),
// so the store opens with every batch before it.
TEST_F(MetaStoreTest, TornWalTailOpensWithEveryEarlierBatch) {
  for (uint64_t i = 1; i <= 50; ++i) {
    MetaStore::Batch b;
    b.put_inode(sample_inode(2000 + i));
    ASSERT_OK(store_->commit(b));
  }
  store_.reset();
  const auto [wal, wal_size] = largest_wal(path_);
  ASSERT_GT(wal_size, 100);
  ASSERT_EQ(::truncate(wal.c_str(), wal_size - 10), 0);  // the last record cut short
  auto r = MetaStore::open(path_);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  for (uint64_t i = 1; i < 50; ++i) EXPECT_TRUE((*r)->get_inode(2000 + i).ok()) << "inode " << 2000 + i;
}

}  // namespace
}  // namespace lanefs::backend
