#include "backend/ino_cipher.h"

#include <openssl/evp.h>

#include <memory>

namespace lanefs::backend {
namespace {

constexpr int kRounds = 10;  // as NIST FF1 (4 would do against guessing, 10 costs ~1 us a create)
constexpr uint32_t kHalfMask = (1u << 24) - 1;
// Cycle walking leaves [0, 2^47) after ~2 passes on average; a walk this
// long has probability ~2^-1000: a sign of a broken cipher, not bad luck.
constexpr int kMaxWalk = 1000;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

// Round function: 24 bits of AES-128(key, round | half | 0...).
bool round_value(EVP_CIPHER_CTX* c, int round, uint32_t half, uint32_t* out) {
  uint8_t in[16] = {static_cast<uint8_t>(round), static_cast<uint8_t>(half), static_cast<uint8_t>(half >> 8),
                    static_cast<uint8_t>(half >> 16)};
  uint8_t block[32];
  int n = 0;
  if (EVP_EncryptUpdate(c, block, &n, in, sizeof in) != 1 || n != 16) return false;
  *out = (uint32_t{block[0]} | uint32_t{block[1]} << 8 | uint32_t{block[2]} << 16) & kHalfMask;
  return true;
}

}  // namespace

Result<uint64_t> InoCipher::feistel(uint64_t v, bool inverse) const {
  const auto failed = [] { return make_error(Errc::kInternal, "inode number cipher: AES-128 failed"); };
  Ctx c(EVP_CIPHER_CTX_new());
  if (!c || EVP_EncryptInit_ex(c.get(), EVP_aes_128_ecb(), nullptr, key_.data(), nullptr) != 1) return failed();
  EVP_CIPHER_CTX_set_padding(c.get(), 0);
  // Cycle walking: apply the 48-bit permutation (or its inverse) until the
  // value falls in [0, kDomain); the values passed over lie outside it.
  for (int walk = 0; walk < kMaxWalk; ++walk) {
    uint32_t l = static_cast<uint32_t>(v >> 24) & kHalfMask, r = static_cast<uint32_t>(v) & kHalfMask;
    for (int i = 0; i < kRounds; ++i) {
      uint32_t f = 0;
      if (!inverse) {  // (l, r) -> (r, l ^ F_i(r))
        if (!round_value(c.get(), i, r, &f)) return failed();
        const uint32_t next_r = l ^ f;
        l = r;
        r = next_r;
      } else {  // undo round k = kRounds-1-i: (l, r) came from (r ^ F_k(l), l)
        if (!round_value(c.get(), kRounds - 1 - i, l, &f)) return failed();
        const uint32_t prev_l = r ^ f;
        r = l;
        l = prev_l;
      }
    }
    v = uint64_t{l} << 24 | r;
    if (v < kDomain) return v;
  }
  return make_error(Errc::kInternal, "inode number cipher: no value in range");
}

Result<uint64_t> InoCipher::number(uint64_t seq) const {
  if (seq >= kDomain) return make_error(Errc::kNoSpace, "inode numbers of this shard are used up");
  LANEFS_ASSIGN_OR_RETURN(uint64_t p, feistel(seq, false));
  return kPermutedBit | p;
}

Result<uint64_t> InoCipher::counter(uint64_t low48) const {
  if (low48 < kPermutedBit) return low48;
  return feistel(low48 - kPermutedBit, true);
}

}  // namespace lanefs::backend
