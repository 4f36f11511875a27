// Encrypted filesystems against a real lanefsd: data written through the
// client core (MountFs) reads back identical while the backend's chunk files
// hold only ciphertext; partial and unaligned writes, truncate + re-extend,
// holes, tampering (kCorrupt), mount-time key checks, lane counters, and the
// CLI's `fs create --encrypted --key-file`.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "client/mount_fs.h"
#include "integration/backend_fixture.h"

namespace lanefs::test {
namespace {

using client::MountFs;
constexpr uint64_t kMiB = 1 << 20;
const std::string kMarker = "LANEFS-PLAINTEXT-MARKER-0123456789";

std::string write_key(const std::string& dir, const std::string& name, char fill) {
  std::string p = dir + "/" + name;
  std::ofstream(p, std::ios::binary) << std::string(32, fill);
  ::chmod(p.c_str(), 0600);
  return p;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Every regular file under dir (recursive).
void walk(const std::string& dir, const std::function<void(const std::string&)>& f) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = dir + "/" + n;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) walk(p, f);
    else if (S_ISREG(st.st_mode)) f(p);
  }
  ::closedir(d);
}

std::vector<uint8_t> marker_data(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(kMarker[i % kMarker.size()]);
  return v;
}

class EncryptionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = std::make_unique<BackendProcess>("enc");
    keys_ = std::make_unique<TempDir>();
    if (auto st = backend_->start(); !st.ok()) {
      setup_error_ = st.error().to_string();
      return;
    }
    key_ = write_key(keys_->path(), "key", 'k');
    wrong_key_ = write_key(keys_->path(), "wrong", 'w');
    auto r = run_cli({"--backend", backend_->addr_string(), "fs", "create", "enc", "--encrypted", "--key-file", key_});
    if (r.rc != 0) {
      setup_error_ = "fs create --encrypted: " + r.out;
      return;
    }
    auto c = connect_client({backend_->addr()});
    if (!c.ok()) {
      setup_error_ = c.error().to_string();
      return;
    }
    client_ = std::move(*c);
    if (auto p = client_->fs_create("plain"); !p.ok()) setup_error_ = p.error().to_string();
  }
  static void TearDownTestSuite() {
    client_.reset();
    backend_.reset();
    keys_.reset();
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static std::shared_ptr<client::ClusterClient> shared() {
    return std::shared_ptr<client::ClusterClient>(client_.get(), [](client::ClusterClient*) {});
  }
  static Result<std::unique_ptr<MountFs>> mount(const std::string& fs, const std::string& opts) {
    LANEFS_ASSIGN_OR_RETURN(auto info, client_->fs_get(fs));
    LANEFS_ASSIGN_OR_RETURN(auto o, client::parse_mount_options(opts));
    return MountFs::open(shared(), info, o);
  }
  static std::string key_opt() { return "key_file=" + key_; }
  uint64_t mkfile(MountFs& m, const std::string& name) {
    auto a = m.create(client::kRootNodeId, name, S_IFREG | 0644, 0, {0, 0}, true);
    EXPECT_OK(a);
    return a.ok() ? a->ino : 0;
  }
  // Chunk files of ino on the (single) backend.
  static std::vector<std::string> chunk_files(uint64_t ino) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(ino));
    std::vector<std::string> out;
    walk(backend_->data_dir() + "/chunks/" + hex, [&](const std::string& p) { out.push_back(p); });
    std::sort(out.begin(), out.end());
    return out;
  }

  static inline std::unique_ptr<BackendProcess> backend_;
  static inline std::unique_ptr<TempDir> keys_;
  static inline std::unique_ptr<client::ClusterClient> client_;
  static inline std::string key_, wrong_key_, setup_error_;
};

TEST_F(EncryptionTest, CliListsEncrypted) {
  auto r = run_cli({"--backend", backend_->addr_string(), "--json", "fs", "list"});
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.out;
  bool seen = false;
  for (const auto& f : j)
    if (f["name"] == "enc") {
      EXPECT_EQ(f["encrypted"], true);
      seen = true;
    } else if (f["name"] == "plain") {
      EXPECT_EQ(f["encrypted"], false);
    }
  EXPECT_TRUE(seen) << r.out;
  // The key check value is stored, never the key.
  EXPECT_EQ(r.out.find(std::string(32, 'k')), std::string::npos);
}

TEST_F(EncryptionTest, CliRefusesBadKeyFiles) {
  auto missing = run_cli({"--backend", backend_->addr_string(), "fs", "create", "x1", "--encrypted", "--key-file",
                          keys_->path() + "/absent"});
  EXPECT_NE(missing.rc, 0);
  EXPECT_EQ(lines_of(missing.out).size(), 1u) << missing.out;
  EXPECT_NE(missing.out.find("absent"), std::string::npos) << missing.out;
  std::string wide = keys_->path() + "/wide";
  std::ofstream(wide) << std::string(64, 'a');
  ::chmod(wide.c_str(), 0644);
  auto w = run_cli({"--backend", backend_->addr_string(), "fs", "create", "x2", "--encrypted", "--key-file", wide});
  EXPECT_NE(w.rc, 0);
  EXPECT_EQ(lines_of(w.out).size(), 1u) << w.out;
  auto no_key = run_cli({"--backend", backend_->addr_string(), "fs", "create", "x3", "--encrypted"});
  EXPECT_NE(no_key.rc, 0);
  EXPECT_FALSE(client_->fs_get("x1").ok());
  EXPECT_FALSE(client_->fs_get("x2").ok());
  EXPECT_FALSE(client_->fs_get("x3").ok());
}

TEST_F(EncryptionTest, MountNeedsTheRightKey) {
  auto none = mount("enc", "writecache");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "filesystem 'enc' is encrypted: mount with -o key_file=PATH");
  auto wrong = mount("enc", "key_file=" + wrong_key_);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().message, "key in " + wrong_key_ + " does not match filesystem 'enc'");
  auto missing = mount("enc", "key_file=" + keys_->path() + "/absent");
  EXPECT_EQ(missing.code(), Errc::kNotFound);
  auto plain = mount("plain", key_opt());
  EXPECT_EQ(plain.code(), Errc::kInvalid);
  EXPECT_OK(mount("enc", key_opt()));
  // A MountFs built without the key refuses data operations.
  MountFs locked(shared(), *client_->fs_get("enc"), client::MountOptions{});
  auto a = locked.create(client::kRootNodeId, "locked", S_IFREG | 0644, 0, {0, 0}, true);
  ASSERT_OK(a);
  std::vector<uint8_t> d(10, 1);
  EXPECT_EQ(locked.write(a->ino, 0, d).code(), Errc::kPermission);
}

TEST_F(EncryptionTest, BackendStoresOnlyCiphertext) {
  auto m = mount("enc", key_opt());
  ASSERT_OK(m);
  uint64_t ino = mkfile(**m, "secret");
  // Unaligned, across a chunk boundary.
  auto data = marker_data(kMiB + 5000);
  uint64_t off = kMiB - 3000;
  ASSERT_OK((*m)->write(ino, off, data));
  auto back = (*m)->read(ino, off, static_cast<uint32_t>(data.size()));
  ASSERT_OK(back);
  EXPECT_EQ(*back, data);
  auto head = (*m)->read(ino, 0, static_cast<uint32_t>(off));
  ASSERT_OK(head);
  EXPECT_TRUE(all_zero(*head));
  auto files = chunk_files((*m)->to_ino(ino));
  ASSERT_EQ(files.size(), 3u);  // [1 MiB - 3000, 2 MiB + 2000)
  size_t scanned = 0;
  walk(backend_->data_dir(), [&](const std::string& p) {
    std::string s = slurp(p);
    scanned += s.size();
    EXPECT_EQ(s.find(kMarker.substr(0, 16)), std::string::npos) << p;
  });
  EXPECT_GT(scanned, data.size());
  // The same data in the unencrypted filesystem is visible on disk (so the
  // search above can find plaintext when it is there).
  auto p = mount("plain", "");
  ASSERT_OK(p);
  uint64_t pino = mkfile(**p, "open");
  ASSERT_OK((*p)->write(pino, 0, marker_data(8192)));
  bool found = false;
  for (const auto& f : chunk_files(pino)) found = found || slurp(f).find(kMarker) != std::string::npos;
  EXPECT_TRUE(found);
}

TEST_F(EncryptionTest, PartialWritesTruncateAndHoles) {
  auto m = mount("enc", key_opt());
  ASSERT_OK(m);
  auto& fs = **m;
  uint64_t ino = mkfile(fs, "model");
  std::vector<uint8_t> model;
  std::mt19937_64 rng(42);
  auto apply = [&](uint64_t off, size_t n) {
    auto d = random_bytes(rng, n);
    ASSERT_OK(fs.write(ino, off, d));
    if (model.size() < off + n) model.resize(off + n, 0);
    std::copy(d.begin(), d.end(), model.begin() + static_cast<ptrdiff_t>(off));
  };
  auto check = [&](const char* what) {
    auto r = fs.read(ino, 0, static_cast<uint32_t>(model.size() + 100));
    ASSERT_OK(r);
    ASSERT_EQ(r->size(), model.size()) << what;
    EXPECT_TRUE(*r == model) << what;
  };
  apply(0, 10000);
  apply(5, 3);          // inside one block
  apply(4090, 12);      // across a block boundary
  apply(8192, 4096);    // aligned
  apply(20000, 100);    // beyond EOF, leaves a hole
  check("writes");
  // Truncate to an unaligned size, then extend: zeros beyond the cut.
  proto::SetAttr sa;
  sa.mask = proto::kSetSize;
  sa.size = 6001;
  ASSERT_OK(fs.setattr(ino, sa));
  model.resize(6001);
  check("truncate down");
  sa.size = 30000;
  ASSERT_OK(fs.setattr(ino, sa));
  model.resize(30000, 0);
  check("truncate up");
  apply(29990, 20);
  check("write after extend");
  // Punch: partial edges and whole blocks.
  ASSERT_OK(fs.fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 9000));
  std::fill(model.begin() + 100, model.begin() + 9100, 0);
  check("punch");
  ASSERT_OK(fs.fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 29000, 5000));  // to EOF
  std::fill(model.begin() + 29000, model.end(), 0);
  check("punch to eof");
  apply(4096, 4096);  // rewrite a punched block
  check("rewrite hole");
}

TEST_F(EncryptionTest, TamperingIsDetected) {
  auto m = mount("enc", key_opt());
  ASSERT_OK(m);
  uint64_t ino = mkfile(**m, "tamper");
  ASSERT_OK((*m)->write(ino, 0, marker_data(16384)));
  auto files = chunk_files(ino);
  ASSERT_EQ(files.size(), 1u);
  auto flip = [&](off_t at) {
    int fd = ::open(files[0].c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    uint8_t b = 0;
    ASSERT_EQ(::pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    ASSERT_EQ(::pwrite(fd, &b, 1, at), 1);
    ::close(fd);
  };
  flip(4096 + 17);  // data of block 1
  auto r = (*m)->read(ino, 4096, 100);
  EXPECT_EQ(r.code(), Errc::kCorrupt);
  EXPECT_OK((*m)->read(ino, 0, 4096));  // other blocks still read
  flip(static_cast<off_t>(kMiB + 2 * 32 + 13));  // tag of block 2
  EXPECT_EQ((*m)->read(ino, 8192, 10).code(), Errc::kCorrupt);
  // A partial write into a corrupt block fails too (it must not re-seal it).
  std::vector<uint8_t> d(5, 1);
  EXPECT_EQ((*m)->write(ino, 4100, d).code(), Errc::kCorrupt);
  EXPECT_GT((*m)->io_stats().errors.load(), 0u);
}

TEST_F(EncryptionTest, EncryptedIoNeverRdmaInEveryCacheMode) {
  for (const char* mode : {"writecache", "readcache", "forcedirect"}) {
    auto m = mount("enc", std::string(mode) + "," + key_opt());
    ASSERT_OK(m);
    uint64_t ino = mkfile(**m, std::string("lanes_") + mode);
    ASSERT_OK((*m)->write(ino, 0, marker_data(300 * 1024)));
    ASSERT_OK((*m)->read(ino, 0, 64 * 1024));
    const auto& c = (*m)->lane_counters();
    EXPECT_EQ(c.lanes[0].ios.load(), 2u) << mode;
    EXPECT_EQ(c.lanes[0].bytes.load(), 364u * 1024) << mode;
    EXPECT_EQ(c.not_rdma[static_cast<size_t>(client::NotRdmaReason::kEncrypted)].load(), 2u) << mode;
    EXPECT_EQ(c.not_rdma[static_cast<size_t>(client::NotRdmaReason::kNone)].load(), 0u) << mode;
  }
  auto p = mount("plain", "");
  ASSERT_OK(p);
  uint64_t ino = mkfile(**p, "lanes");
  ASSERT_OK((*p)->write(ino, 0, marker_data(1000)));
  // No RDMA here (no device): the IO went over UDP for a reason that is
  // not encryption.
  const auto& pc = (*p)->lane_counters();
  EXPECT_EQ(pc.lanes[static_cast<size_t>(client::Lane::kUdp)].ios.load(), 1u);
  EXPECT_EQ(pc.lanes[static_cast<size_t>(client::Lane::kRdma)].ios.load(), 0u);
  EXPECT_EQ(pc.not_rdma[static_cast<size_t>(client::NotRdmaReason::kEncrypted)].load(), 0u);
}

}  // namespace
}  // namespace lanefs::test
