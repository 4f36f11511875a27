// Checksums at rest, as a user meets them (issue 16, item 5): 14 garbage
// bytes written into a chunk file behind the backend's back give the
// application EIO (never the garbage), a log line naming the chunk, a count
// in `lanefs stats` and `lanefs cluster status`, and `lanefs fs scrub` lists
// the damaged block and exits non-zero; rewriting the block heals it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

using nlohmann::json;

TEST(Integrity, DamagedBlockGivesEioLogCountAndScrubFindsIt) {
  LANEFS_MOUNT_ENV(env);
  auto m = env.mount("forcedirect", "integrity");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/victim";
  auto data = pattern(31, 0, 64 * 1024);
  ASSERT_TRUE(spit(f, data));

  // Where its first chunk lives on the (only) backend.
  CmdResult loc = env.cli({"--json", "fs", "locate", env.fs_name(), "/victim"});
  ASSERT_EQ(loc.rc, 0) << loc.describe();
  json l = json::parse(loc.out, nullptr, false);
  ASSERT_TRUE(l.contains("ino")) << loc.out;
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(l["ino"].get<uint64_t>()));
  const std::string chunk = env.backend().data_dir() + "/chunks/" + hex + "/0";
  {
    int fd = ::open(chunk.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << chunk << ": " << errno_str(errno);
    const char junk[] = "GARBAGE-BYTES!";  // 14 bytes into block 2
    ASSERT_EQ(::pwrite(fd, junk, 14, 2 * 4096 + 100), 14);
    ::close(fd);
  }

  // The damaged block: EIO, never the garbage; the blocks around it read.
  int fd = ::open(f.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> buf(4096);
  errno = 0;
  EXPECT_EQ(::pread(fd, buf.data(), 4096, 2 * 4096), -1);
  EXPECT_EQ(errno, EIO) << errno_str(errno);
  errno = 0;
  EXPECT_EQ(::pread(fd, buf.data(), 4096, 2 * 4096 + 4096 - 50), -1) << "a read that only touches the block";
  EXPECT_EQ(errno, EIO) << errno_str(errno);
  ASSERT_EQ(::pread(fd, buf.data(), 4096, 0), 4096);
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), data.begin()));
  ASSERT_EQ(::pread(fd, buf.data(), 4096, 3 * 4096), 4096);
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), data.begin() + 3 * 4096));
  ::close(fd);

  // Logged with the chunk's name, counted on both sides.
  EXPECT_NE(env.backend().log_tail(20000).find(chunk + " block 2"), std::string::npos)
      << env.backend().log_tail();
  CmdResult st = env.cli({"--json", "stats"});
  ASSERT_EQ(st.rc, 0) << st.describe();
  json stats = json::parse(st.out, nullptr, false);
  uint64_t corrupt_reads = 0;
  for (const auto& mnt : stats)
    if (mnt.value("target", "") == *m) corrupt_reads = mnt.value("corrupt_reads", 0ull);
  EXPECT_GE(corrupt_reads, 2u) << st.out;
  CmdResult cs = env.cli({"--json", "cluster", "status"});
  ASSERT_EQ(cs.rc, 0) << cs.describe();
  json cj = json::parse(cs.out, nullptr, false);
  ASSERT_TRUE(cj.contains("backends")) << cs.out;
  EXPECT_GE(cj["backends"][0].value("corrupt_blocks", 0ull), 2u) << cs.out;

  // The scrub names it and fails; --repair says why it cannot rebuild it.
  CmdResult sc = env.cli({"fs", "scrub", env.fs_name()});
  EXPECT_EQ(sc.rc, 1) << sc.describe();
  EXPECT_NE(sc.out.find(chunk), std::string::npos) << sc.out;
  EXPECT_NE(sc.out.find("1 damaged"), std::string::npos) << sc.out;
  CmdResult sj = env.cli({"--json", "fs", "scrub", env.fs_name(), "--repair"});
  EXPECT_EQ(sj.rc, 1) << sj.describe();
  json sr = json::parse(sj.out, nullptr, false);
  ASSERT_TRUE(sr.is_object()) << sj.out;
  EXPECT_EQ(sr.value("damaged", 0ull), 1u) << sj.out;
  EXPECT_GE(sr.value("blocks", 0ull), 16u) << sj.out;
  ASSERT_EQ(sr["backends"][0]["damaged_blocks"].size(), 1u) << sj.out;
  EXPECT_EQ(sr["backends"][0]["damaged_blocks"][0].value("file_offset", 0ull), 2u * 4096) << sj.out;
  EXPECT_NE(sr["backends"][0].value("repair", "").find("no other copy"), std::string::npos) << sj.out;

  // Writing the block again heals it.
  fd = ::open(f.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data.data() + 2 * 4096, 4096, 2 * 4096), 4096);
  ::close(fd);
  bool ok = false;
  EXPECT_TRUE(slurp(f, &ok) == data && ok);
  CmdResult clean = env.cli({"fs", "scrub", env.fs_name()});
  EXPECT_EQ(clean.rc, 0) << clean.describe();
  EXPECT_NE(clean.out.find(" 0 damaged"), std::string::npos) << clean.out;
  EXPECT_OK(env.unmount(*m));
}

}  // namespace
}  // namespace lanefs::test
