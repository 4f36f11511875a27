#include "client/crypto.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>

#include "common/private_file.h"

namespace lanefs::client::crypto {
namespace {

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

Error evp_error(const char* call) { return make_error(Errc::kInternal, std::string(call) + " failed"); }

Result<CipherCtx> new_ctx() {
  CipherCtx c(EVP_CIPHER_CTX_new());
  if (!c) return evp_error("EVP_CIPHER_CTX_new");
  return c;
}

// AAD: fs id, inode, block number, little-endian (fixed 20 bytes).
std::array<uint8_t, 20> aad_of(const BlockId& id) {
  std::array<uint8_t, 20> a{};
  for (int i = 0; i < 4; ++i) a[i] = static_cast<uint8_t>(id.fs_id >> (8 * i));
  for (int i = 0; i < 8; ++i) a[4 + i] = static_cast<uint8_t>(id.ino >> (8 * i));
  for (int i = 0; i < 8; ++i) a[12 + i] = static_cast<uint8_t>(id.block >> (8 * i));
  return a;
}

int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status check_sizes(std::span<const uint8_t> a, std::span<const uint8_t> b, std::span<const uint8_t> seal) {
  if (a.size() != kBlockBytes || b.size() != kBlockBytes || seal.size() != kSealBytes)
    return make_error(Errc::kInvalid, "block cipher: wrong buffer size");
  return ok_status();
}

}  // namespace

FsKey::FsKey(std::span<const uint8_t, kKeyBytes> bytes) { std::copy(bytes.begin(), bytes.end(), bytes_.begin()); }
FsKey::~FsKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }
FsKey::FsKey(const FsKey& o) : bytes_(o.bytes_) {}
FsKey& FsKey::operator=(const FsKey& o) {
  bytes_ = o.bytes_;
  return *this;
}

Result<FsKey> parse_key(std::span<const uint8_t> c, const std::string& path) {
  if (c.size() == kKeyBytes) return FsKey(c.first<kKeyBytes>());
  std::span<const uint8_t> hex = c;
  if (!hex.empty() && hex.back() == '\n') hex = hex.first(hex.size() - 1);
  if (!hex.empty() && hex.back() == '\r') hex = hex.first(hex.size() - 1);
  if (hex.size() == 2 * kKeyBytes) {
    std::array<uint8_t, kKeyBytes> raw{};
    bool ok = true;
    for (size_t i = 0; i < kKeyBytes && ok; ++i) {
      int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      raw[i] = static_cast<uint8_t>((hi << 4) | (lo & 0xf));
    }
    if (ok) {
      FsKey k{std::span<const uint8_t, kKeyBytes>(raw)};
      OPENSSL_cleanse(raw.data(), raw.size());
      return k;
    }
    OPENSSL_cleanse(raw.data(), raw.size());
    return make_error(Errc::kInvalid, "key file " + path + ": 64 characters but not all hexadecimal");
  }
  return make_error(Errc::kInvalid, "key file " + path + ": expected 32 raw bytes or 64 hex characters, found " +
                                        std::to_string(c.size()) + " bytes");
}

Result<FsKey> load_key_file(const std::string& path) {
  LANEFS_ASSIGN_OR_RETURN(std::string text, read_private_file(path, "key file", 1024));
  auto key = parse_key(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()), path);
  OPENSSL_cleanse(text.data(), text.size());
  return key;
}

Result<std::string> key_check(const FsKey& key, std::string_view fs_name) {
  std::string msg = "lanefs-key-check";
  msg.append(fs_name);
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(kKeyBytes), reinterpret_cast<const uint8_t*>(msg.data()),
           msg.size(), mac, &mac_len) == nullptr || mac_len < kKeyCheckBytes)
    return evp_error("HMAC(SHA-256)");
  return std::string(reinterpret_cast<const char*>(mac), kKeyCheckBytes);
}

bool seal_is_hole(std::span<const uint8_t> seal) {
  return std::all_of(seal.begin(), seal.end(), [](uint8_t b) { return b == 0; });
}

Status seal_block(const FsKey& key, const BlockId& id, std::span<const uint8_t> plain, std::span<uint8_t> cipher,
                  std::span<uint8_t> seal) {
  LANEFS_TRY(check_sizes(plain, cipher, seal));
  std::fill(seal.begin(), seal.end(), 0);
  uint8_t* nonce = seal.data();
  uint8_t* tag = seal.data() + kNonceBytes;
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) return evp_error("RAND_bytes");
  // A random nonce of all zeros would make the seal look like a hole; the
  // chance is 2^-96 per block, but never store one.
  if (seal_is_hole(seal.first(kNonceBytes))) nonce[0] = 1;
  LANEFS_ASSIGN_OR_RETURN(CipherCtx ctx, new_ctx());
  auto aad = aad_of(id);
  int len = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1)
    return evp_error("EVP_EncryptInit_ex(aes-256-gcm)");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) != 1)
    return evp_error("EVP_CIPHER_CTX_ctrl(GCM_SET_IVLEN)");
  if (EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce) != 1)
    return evp_error("EVP_EncryptInit_ex(key, nonce)");
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
    return evp_error("EVP_EncryptUpdate(aad)");
  if (EVP_EncryptUpdate(ctx.get(), cipher.data(), &len, plain.data(), static_cast<int>(plain.size())) != 1 ||
      len != static_cast<int>(kBlockBytes))
    return evp_error("EVP_EncryptUpdate");
  if (EVP_EncryptFinal_ex(ctx.get(), cipher.data() + len, &len) != 1 || len != 0)
    return evp_error("EVP_EncryptFinal_ex");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), tag) != 1)
    return evp_error("EVP_CIPHER_CTX_ctrl(GCM_GET_TAG)");
  return ok_status();
}

Status open_block(const FsKey& key, const BlockId& id, std::span<const uint8_t> cipher,
                  std::span<const uint8_t> seal, std::span<uint8_t> plain) {
  LANEFS_TRY(check_sizes(cipher, plain, seal));
  if (seal_is_hole(seal)) {
    std::fill(plain.begin(), plain.end(), 0);
    return ok_status();
  }
  auto corrupt = [&] {
    std::fill(plain.begin(), plain.end(), 0);
    return make_error(Errc::kCorrupt, "inode " + std::to_string(id.ino) + " offset " +
                                          std::to_string(id.block * kBlockBytes) +
                                          ": encrypted block failed authentication");
  };
  // The padding is not authenticated by GCM; it must stay zero.
  if (!seal_is_hole(seal.subspan(kNonceBytes + kTagBytes))) return corrupt();
  LANEFS_ASSIGN_OR_RETURN(CipherCtx ctx, new_ctx());
  auto aad = aad_of(id);
  uint8_t tag[kTagBytes];
  std::copy_n(seal.data() + kNonceBytes, kTagBytes, tag);
  int len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1)
    return evp_error("EVP_DecryptInit_ex(aes-256-gcm)");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) != 1)
    return evp_error("EVP_CIPHER_CTX_ctrl(GCM_SET_IVLEN)");
  if (EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), seal.data()) != 1)
    return evp_error("EVP_DecryptInit_ex(key, nonce)");
  if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
    return evp_error("EVP_DecryptUpdate(aad)");
  if (EVP_DecryptUpdate(ctx.get(), plain.data(), &len, cipher.data(), static_cast<int>(cipher.size())) != 1 ||
      len != static_cast<int>(kBlockBytes))
    return evp_error("EVP_DecryptUpdate");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes), tag) != 1)
    return evp_error("EVP_CIPHER_CTX_ctrl(GCM_SET_TAG)");
  // Final fails exactly when the tag does not match: the data was altered.
  if (EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &len) != 1) return corrupt();
  return ok_status();
}

}  // namespace lanefs::client::crypto
