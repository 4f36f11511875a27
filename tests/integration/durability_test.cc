// kill -9 durability: every write the client saw acknowledged (data and
// metadata) must be there, byte for byte, after lanefsd is SIGKILLed right
// after the last acknowledgement and restarted on the same data directory.
#include <sys/stat.h>

#include <map>
#include <set>

#include "integration/backend_fixture.h"

namespace lanefs::test {
namespace {

constexpr uint64_t kMiB = 1 << 20;

struct Expected {
  std::vector<uint8_t> data;  // whole file content
  uint32_t crc = 0;
};

void apply(std::vector<uint8_t>* file, uint64_t off, const std::vector<uint8_t>& d) {
  if (file->size() < off + d.size()) file->resize(off + d.size(), 0);
  std::copy(d.begin(), d.end(), file->begin() + static_cast<std::ptrdiff_t>(off));
}

TEST(DurabilityTest, AcknowledgedWritesSurviveKill9) {
  BackendProcess b("durable");
  ASSERT_OK(b.start());
  // path relative to the fs root ("r0/f3") -> content
  std::map<std::string, Expected> files;
  std::map<std::string, std::set<std::string>> dirs;  // round dir -> names
  constexpr int kRounds = 4;
  constexpr int kFilesPerRound = 10;
  uint64_t total_written = 0;

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::mt19937_64 rng(1000 + round);
    auto c = connect_client({b.addr()});
    ASSERT_OK(c);
    auto& cl = **c;
    if (round == 0) ASSERT_OK(cl.fs_create("d"));
    auto fs = cl.fs_get("d");
    ASSERT_OK(fs);
    std::string rd = "r" + std::to_string(round);
    auto dir = cl.mkdir(fs->root_ino, rd, 0755);
    ASSERT_OK(dir);
    dirs[rd];

    for (int i = 0; i < kFilesPerRound; ++i) {
      std::string name = "f" + std::to_string(i);
      proto::CreateReq cr;
      cr.parent = dir->ino;
      cr.name = name;
      cr.mode = S_IFREG | 0644;
      auto f = cl.create(cr);
      ASSERT_OK(f);
      auto& exp = files[rd + "/" + name];
      dirs[rd].insert(name);
      // 1-4 writes at random offsets, some crossing chunk boundaries and
      // overlapping each other.
      int writes = 1 + static_cast<int>(rng() % 4);
      for (int w = 0; w < writes; ++w) {
        uint64_t off = rng() % (3 * kMiB);
        size_t len = 1 + rng() % (kMiB + kMiB / 2);
        auto d = random_bytes(rng, len);
        auto a = cl.write(f->ino, off, d);
        ASSERT_OK(a);
        apply(&exp.data, off, d);
        ASSERT_EQ(a->size, exp.data.size());
        total_written += len;
      }
    }
    // Change files of earlier rounds too: overwrite a block, remove one,
    // rename one.
    if (round > 0) {
      std::string prev = "r" + std::to_string(round - 1);
      auto pdir = cl.resolve(fs->root_ino, prev);
      ASSERT_OK(pdir);
      auto f0 = cl.lookup(pdir->ino, "f0");
      ASSERT_OK(f0);
      auto d = random_bytes(rng, 70000);
      ASSERT_OK(cl.write(f0->ino, kMiB - 5000, d));
      apply(&files[prev + "/f0"].data, kMiB - 5000, d);

      ASSERT_OK(cl.unlink(pdir->ino, "f1"));
      files.erase(prev + "/f1");
      dirs[prev].erase("f1");

      ASSERT_OK(cl.rename(pdir->ino, "f2", pdir->ino, "renamed"));
      files[prev + "/renamed"] = std::move(files[prev + "/f2"]);
      files.erase(prev + "/f2");
      dirs[prev].erase("f2");
      dirs[prev].insert("renamed");
    }
    // The last acknowledged operation is a data write; kill right after it.
    auto last = cl.lookup(dir->ino, "f" + std::to_string(kFilesPerRound - 1));
    ASSERT_OK(last);
    auto tail = random_bytes(rng, 4096 + rng() % 100000);
    uint64_t tail_off = files[rd + "/f" + std::to_string(kFilesPerRound - 1)].data.size();
    ASSERT_OK(cl.write(last->ino, tail_off, tail));
    b.kill9();
    apply(&files[rd + "/f" + std::to_string(kFilesPerRound - 1)].data, tail_off, tail);

    ASSERT_OK(b.restart());
    // A client that lived through the restart reconnects (session reset)
    // and keeps working.
    auto survived = cl.lookup(dir->ino, "f0");
    ASSERT_OK(survived);
    EXPECT_EQ(survived->size, files[rd + "/f0"].data.size());
    c->reset();
    auto c2 = connect_client({b.addr()});
    ASSERT_OK(c2);
    auto& v = **c2;
    auto fs2 = v.fs_get("d");
    ASSERT_OK(fs2);
    EXPECT_EQ(fs2->root_ino, fs->root_ino);
    for (auto& [path, exp] : files) exp.crc = checksum(exp.data);
    for (const auto& [rdir, names] : dirs) {
      auto dattr = v.resolve(fs2->root_ino, rdir);
      ASSERT_OK(dattr);
      auto ents = v.list_dir(dattr->ino);
      ASSERT_OK(ents);
      std::set<std::string> got;
      for (const auto& e : *ents)
        if (e.name != "." && e.name != "..") got.insert(e.name);
      EXPECT_EQ(got, names) << "entries of " << rdir;
    }
    for (const auto& [path, exp] : files) {
      auto a = v.resolve(fs2->root_ino, path);
      ASSERT_OK(a);
      EXPECT_EQ(a->size, exp.data.size()) << path;
      auto data = v.read(a->ino, 0, static_cast<uint32_t>(exp.data.size()));
      ASSERT_OK(data);
      EXPECT_EQ(checksum(*data), exp.crc) << path;
      EXPECT_TRUE(*data == exp.data) << path << ": content differs after kill -9";
    }
  }
  std::printf("durability: %zu files, %llu bytes written over %d kill -9 rounds\n", files.size(),
              static_cast<unsigned long long>(total_written), kRounds);
}

}  // namespace
}  // namespace lanefs::test
