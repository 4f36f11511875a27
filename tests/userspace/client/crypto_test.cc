// Block sealing (AES-256-GCM), key files, key check values, the key_file
// mount option and the lane policy's encrypted rule.
#include "client/crypto.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "client/lane_policy.h"
#include "client/mount_options.h"
#include "support/test_support.h"

namespace lanefs::client::crypto {
namespace {

FsKey key_of(uint8_t fill) {
  std::array<uint8_t, kKeyBytes> k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(fill + i);
  return FsKey(std::span<const uint8_t, kKeyBytes>(k));
}

std::vector<uint8_t> pattern(uint32_t seed) {
  std::vector<uint8_t> v(kBlockBytes);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

struct Sealed {
  std::vector<uint8_t> cipher = std::vector<uint8_t>(kBlockBytes);
  std::vector<uint8_t> seal = std::vector<uint8_t>(kSealBytes);
};

Sealed seal_of(const FsKey& k, const BlockId& id, const std::vector<uint8_t>& plain) {
  Sealed s;
  EXPECT_OK(seal_block(k, id, plain, s.cipher, s.seal));
  return s;
}

Errc open_code(const FsKey& k, const BlockId& id, const Sealed& s, std::vector<uint8_t>* out = nullptr) {
  std::vector<uint8_t> plain(kBlockBytes);
  auto st = open_block(k, id, s.cipher, s.seal, plain);
  if (out) *out = plain;
  return st.code();
}

TEST(CryptoTest, SealOpenRoundTrip) {
  auto k = key_of(1);
  BlockId id{7, 0x1000000000002a, 3};
  auto plain = pattern(1);
  auto s = seal_of(k, id, plain);
  EXPECT_NE(s.cipher, plain);
  EXPECT_FALSE(seal_is_hole(s.seal));
  std::vector<uint8_t> out;
  ASSERT_EQ(open_code(k, id, s, &out), Errc::kOk);
  EXPECT_EQ(out, plain);
}

TEST(CryptoTest, FreshNonceEverySeal) {
  auto k = key_of(1);
  BlockId id{1, 2, 3};
  auto plain = pattern(2);
  auto a = seal_of(k, id, plain), b = seal_of(k, id, plain);
  EXPECT_NE(a.seal, b.seal);
  EXPECT_NE(a.cipher, b.cipher);
}

TEST(CryptoTest, EveryFlippedBitIsDetected) {
  auto k = key_of(1);
  BlockId id{1, 2, 3};
  auto s = seal_of(k, id, pattern(3));
  // Ciphertext: a sample of bits across the block.
  for (size_t bit = 0; bit < kBlockBytes * 8; bit += 97) {
    Sealed t = s;
    t.cipher[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(open_code(k, id, t), Errc::kCorrupt) << "cipher bit " << bit;
  }
  // Every bit of nonce, tag and padding.
  for (size_t bit = 0; bit < kSealBytes * 8; ++bit) {
    Sealed t = s;
    t.seal[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(open_code(k, id, t), Errc::kCorrupt) << "seal bit " << bit;
  }
}

TEST(CryptoTest, PositionIsAuthenticated) {
  auto k = key_of(1);
  BlockId id{1, 2, 3};
  auto s = seal_of(k, id, pattern(4));
  EXPECT_EQ(open_code(k, BlockId{2, 2, 3}, s), Errc::kCorrupt);  // other filesystem
  EXPECT_EQ(open_code(k, BlockId{1, 3, 3}, s), Errc::kCorrupt);  // other file
  EXPECT_EQ(open_code(k, BlockId{1, 2, 4}, s), Errc::kCorrupt);  // other block
  EXPECT_EQ(open_code(k, id, s), Errc::kOk);
}

TEST(CryptoTest, WrongKeyFails) {
  BlockId id{1, 2, 3};
  auto s = seal_of(key_of(1), id, pattern(5));
  EXPECT_EQ(open_code(key_of(2), id, s), Errc::kCorrupt);
}

TEST(CryptoTest, ZeroSealIsAHole) {
  Sealed s;
  s.cipher.assign(kBlockBytes, 0xab);  // whatever the data area holds
  std::vector<uint8_t> out;
  ASSERT_EQ(open_code(key_of(1), BlockId{1, 2, 3}, s, &out), Errc::kOk);
  EXPECT_EQ(out, std::vector<uint8_t>(kBlockBytes, 0));
}

TEST(CryptoTest, KeyCheckDependsOnKeyAndName) {
  auto a = key_check(key_of(1), "fs");
  ASSERT_OK(a);
  EXPECT_EQ(a->size(), kKeyCheckBytes);
  EXPECT_EQ(*a, *key_check(key_of(1), "fs"));
  EXPECT_NE(*a, *key_check(key_of(2), "fs"));
  EXPECT_NE(*a, *key_check(key_of(1), "fs2"));
}

class KeyFileTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& contents, mode_t mode = 0600) {
    std::string p = dir_.path() + "/" + name;
    std::ofstream(p, std::ios::binary) << contents;
    ::chmod(p.c_str(), mode);
    return p;
  }
  test::TempDir dir_;
};

TEST_F(KeyFileTest, RawAndHexKeysAgree) {
  std::string raw(32, '\0');
  std::string hex;
  for (int i = 0; i < 32; ++i) {
    raw[i] = static_cast<char>(0xa0 + i);
    char h[3];
    std::snprintf(h, sizeof h, "%02x", 0xa0 + i);
    hex += h;
  }
  auto a = load_key_file(write("raw", raw));
  auto b = load_key_file(write("hex", hex + "\n"));
  auto c = load_key_file(write("HEX", [&] { std::string u = hex; for (auto& ch : u) ch = static_cast<char>(std::toupper(ch)); return u; }()));
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  EXPECT_EQ(*key_check(*a, "x"), *key_check(*b, "x"));
  EXPECT_EQ(*key_check(*a, "x"), *key_check(*c, "x"));
}

TEST_F(KeyFileTest, ErrorsAreOneLineAndNameThePath) {
  auto missing = load_key_file(dir_.path() + "/nope");
  EXPECT_EQ(missing.code(), Errc::kNotFound);
  EXPECT_NE(missing.error().message.find("/nope"), std::string::npos);
  auto short_key = load_key_file(write("short", std::string(31, 'k')));
  EXPECT_EQ(short_key.code(), Errc::kInvalid);
  EXPECT_NE(short_key.error().message.find("31 bytes"), std::string::npos);
  auto not_hex = load_key_file(write("nothex", std::string(64, 'g')));
  EXPECT_EQ(not_hex.code(), Errc::kInvalid);
  auto open_mode = load_key_file(write("wide", std::string(32, 'k'), 0644));
  EXPECT_EQ(open_mode.code(), Errc::kPermission);
  EXPECT_NE(open_mode.error().message.find("0644"), std::string::npos);
  for (const auto* r : {&missing, &short_key, &not_hex, &open_mode})
    EXPECT_EQ(r->error().message.find('\n'), std::string::npos);
  auto dir = load_key_file(dir_.path());
  EXPECT_FALSE(dir.ok());
}

TEST(KeyFileOptionTest, MountOptionNeedsAbsolutePath) {
  auto o = parse_mount_options("forcedirect,key_file=/etc/lanefs/k");
  ASSERT_OK(o);
  EXPECT_EQ(o->key_file, "/etc/lanefs/k");
  EXPECT_NE(o->to_string().find("key_file=/etc/lanefs/k"), std::string::npos);
  EXPECT_EQ(parse_mount_options("key_file=rel/k").code(), Errc::kInvalid);
  EXPECT_EQ(parse_mount_options("key_file").code(), Errc::kInvalid);
  EXPECT_TRUE(parse_mount_options("readcache")->key_file.empty());
}

}  // namespace
}  // namespace lanefs::client::crypto
