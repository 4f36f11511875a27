#include "proto/auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/private_file.h"

namespace lanefs::proto {
namespace {

constexpr std::string_view kTokenMagic = "lanefs-token";
constexpr std::string_view kEtcAdminToken = "/etc/lanefs/admin.token";

AuthKey hmac(std::span<const uint8_t> key, std::span<const uint8_t> msg) {
  AuthKey out{};
  unsigned len = 0;
  // HMAC-SHA256 of a short message cannot fail with valid arguments.
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(), out.data(), &len);
  return out;
}

void put(std::vector<uint8_t>* m, std::string_view s) {
  m->push_back(static_cast<uint8_t>(s.size()));  // length first: no ambiguous joins
  m->insert(m->end(), s.begin(), s.end());
}
void put(std::vector<uint8_t>* m, uint64_t v) {
  for (int i = 0; i < 8; ++i) m->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}


}  // namespace

const char* role_name(Role r) {
  switch (r) {
    case Role::kReadonly: return "readonly";
    case Role::kClient: return "client";
    case Role::kAdmin: return "admin";
    case Role::kClusterAdmin: return "clusteradmin";
    case Role::kBackend: return "backend";
    case Role::kJoining: return "joining";
  }
  return "?";
}

std::optional<Role> parse_user_role(std::string_view s) {
  for (Role r : {Role::kReadonly, Role::kClient, Role::kAdmin, Role::kClusterAdmin})
    if (s == role_name(r)) return r;
  return std::nullopt;
}

bool role_is_admin(Role r) { return r == Role::kAdmin || r == Role::kClusterAdmin || r == Role::kBackend; }

bool valid_user_name(std::string_view n) {
  if (n.empty() || n.size() > 64 || n[0] == '.' || n[0] == '-') return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

bool UserRecord::may_use_fs(std::string_view fs) const {
  if (role_is_admin(role) || filesystems.empty()) return true;
  return std::find(filesystems.begin(), filesystems.end(), fs) != filesystems.end();
}

void UserRecord::encode(Encoder& e) const {
  e.str(name);
  e.u8(static_cast<uint8_t>(role));
  e.u32(static_cast<uint32_t>(filesystems.size()));
  for (const auto& f : filesystems) e.str(f);
  e.u8(root_squash ? 1 : 0);
  e.u32(generation);
  e.i64(created_s);
}

bool UserRecord::decode(Decoder& d) {
  name = d.str(64);
  uint8_t r = d.u8();
  if (r < static_cast<uint8_t>(Role::kReadonly) || r > static_cast<uint8_t>(Role::kJoining)) return false;
  role = static_cast<Role>(r);
  uint32_t n = d.u32();
  if (n > 4096) return false;
  filesystems.clear();
  for (uint32_t i = 0; i < n && d.ok(); ++i) filesystems.push_back(d.str(64));
  root_squash = d.u8() != 0;
  generation = d.u32();
  created_s = d.i64();
  return d.ok();
}

void UserList::encode(Encoder& e) const {
  e.u32(static_cast<uint32_t>(users.size()));
  for (const auto& u : users) u.encode(e);
}

bool UserList::decode(Decoder& d) {
  uint32_t n = d.u32();
  if (!d.ok() || n > d.remaining()) return false;
  users.resize(n);
  for (auto& u : users)
    if (!u.decode(d)) return false;
  return d.ok();
}

void TokenResp::encode(Encoder& e) const {
  e.str(user);
  e.u32(generation);
  e.bytes(nonce);
  e.bytes(sealed);
}

bool TokenResp::decode(Decoder& d) {
  user = d.str(64);
  generation = d.u32();
  auto n = d.bytes(nonce.size());
  auto s = d.bytes(sealed.size());
  if (n.size() != nonce.size() || s.size() != sealed.size()) return false;
  std::copy(n.begin(), n.end(), nonce.begin());
  std::copy(s.begin(), s.end(), sealed.begin());
  return d.ok();
}

namespace {
struct CipherCtx {
  EVP_CIPHER_CTX* p = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(p); }
};
// The wrapping key and the authenticated data of a sealed token.
std::pair<AuthKey, std::vector<uint8_t>> token_wrap(const AuthKey& caller_key, std::string_view user,
                                                    uint32_t generation) {
  static constexpr std::string_view kLabel = "lanefs-token-wrap";
  std::vector<uint8_t> aad;
  put(&aad, "lanefs-token");
  put(&aad, user);
  put(&aad, uint64_t{generation});
  return {hmac(caller_key, {reinterpret_cast<const uint8_t*>(kLabel.data()), kLabel.size()}), std::move(aad)};
}
}  // namespace

TokenResp seal_token(const AuthKey& caller_key, const Credentials& c) {
  TokenResp t;
  t.user = c.user;
  t.generation = c.generation;
  AuthKey n = random_key();
  std::copy_n(n.begin(), t.nonce.size(), t.nonce.begin());
  auto [key, aad] = token_wrap(caller_key, c.user, c.generation);
  CipherCtx ctx;
  int len = 0;
  // AES-256-GCM on 32 bytes with a valid key and nonce does not fail; a
  // context that could not be made leaves `sealed` zero, which no caller
  // opens.
  if (ctx.p && EVP_EncryptInit_ex(ctx.p, EVP_aes_256_gcm(), nullptr, key.data(), t.nonce.data()) == 1 &&
      EVP_EncryptUpdate(ctx.p, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(ctx.p, t.sealed.data(), &len, c.key.data(), static_cast<int>(c.key.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.p, t.sealed.data() + kAuthKeyBytes, &len) == 1)
    EVP_CIPHER_CTX_ctrl(ctx.p, EVP_CTRL_GCM_GET_TAG, 16, t.sealed.data() + kAuthKeyBytes);
  return t;
}

Result<Credentials> open_token(const AuthKey& caller_key, const TokenResp& t) {
  auto [key, aad] = token_wrap(caller_key, t.user, t.generation);
  Credentials c;
  c.user = t.user;
  c.generation = t.generation;
  CipherCtx ctx;
  int len = 0;
  std::array<uint8_t, 16> tag;
  std::copy_n(t.sealed.begin() + kAuthKeyBytes, tag.size(), tag.begin());
  if (ctx.p && EVP_DecryptInit_ex(ctx.p, EVP_aes_256_gcm(), nullptr, key.data(), t.nonce.data()) == 1 &&
      EVP_DecryptUpdate(ctx.p, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx.p, c.key.data(), &len, t.sealed.data(), kAuthKeyBytes) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.p, EVP_CTRL_GCM_SET_TAG, 16, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.p, c.key.data() + kAuthKeyBytes, &len) == 1)
    return c;
  return make_error(Errc::kPermission, "the token for user '" + t.user +
                                           "' in the reply was not sealed for this caller's key (or was changed on "
                                           "the way)");
}

UserRecord builtin_admin() {
  UserRecord u;
  u.name = std::string(kAdminUser);
  u.role = Role::kClusterAdmin;
  return u;
}

std::string format_token(const Credentials& c) {
  std::string hex;
  static const char* kDigits = "0123456789abcdef";
  for (uint8_t b : c.key) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 15]);
  }
  return std::string(kTokenMagic) + " 1 " + c.user + " " + std::to_string(c.generation) + " " + hex + "\n";
}

Result<Credentials> parse_token(std::string_view text, const std::string& path) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::kInvalid, "token file " + path + ": " + why);
  };
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  std::vector<std::string_view> f;
  size_t pos = 0;
  while (pos <= text.size() && f.size() < 6) {
    size_t sp = text.find(' ', pos);
    if (sp == std::string_view::npos) sp = text.size();
    f.push_back(text.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (f.size() != 5 || f[0] != kTokenMagic) return bad("not a lanefs token (expected 'lanefs-token 1 USER GEN KEY')");
  if (f[1] != "1") return bad("token format " + std::string(f[1]) + " is not known to this lanefs");
  Credentials c;
  c.user = std::string(f[2]);
  if (!valid_user_name(c.user) && c.user != kBackendUser) return bad("bad user name '" + c.user + "'");
  std::string gen(f[3]);
  char* end = nullptr;
  unsigned long g = std::strtoul(gen.c_str(), &end, 10);
  if (gen.empty() || *end != '\0' || g > UINT32_MAX) return bad("bad generation '" + gen + "'");
  c.generation = static_cast<uint32_t>(g);
  if (f[4].size() != 2 * kAuthKeyBytes) return bad("the key is not 64 hexadecimal characters");
  for (size_t i = 0; i < kAuthKeyBytes; ++i) {
    int hi = hex_digit(f[4][2 * i]), lo = hex_digit(f[4][2 * i + 1]);
    if (hi < 0 || lo < 0) return bad("the key is not 64 hexadecimal characters");
    c.key[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return c;
}

Result<Credentials> load_token_file(const std::string& path) {
  LANEFS_ASSIGN_OR_RETURN(std::string text, read_private_file(path, "token file", 512));
  auto c = parse_token(text, path);
  OPENSSL_cleanse(text.data(), text.size());
  return c;
}

Status save_token_file(const std::string& path, const Credentials& c) {
  // Parent directories 0700, as ssh keeps ~/.ssh.
  std::string text = format_token(c);
  Status st = write_private_file(path, "token file", text, /*only_if_absent=*/false, 0700);
  OPENSSL_cleanse(text.data(), text.size());
  return st;
}

std::string default_user_token_path() {
  const char* home = std::getenv("HOME");
  std::string h = home && *home ? home : "";
  if (h.empty()) {
    if (const passwd* pw = ::getpwuid(::geteuid())) h = pw->pw_dir;
  }
  return (h.empty() ? std::string("/root") : h) + "/.config/lanefs/token";
}

std::vector<std::string> token_search_path(const std::string& explicit_path) {
  if (!explicit_path.empty()) return {explicit_path};
  if (const char* env = std::getenv("LANEFS_TOKEN_FILE"); env && *env) return {env};
  return {default_user_token_path(), std::string(kEtcAdminToken)};
}

Result<Credentials> find_token(const std::string& explicit_path) {
  auto paths = token_search_path(explicit_path);
  std::string looked;
  for (const auto& p : paths) {
    auto c = load_token_file(p);
    if (c.code() == Errc::kPermission) return make_error(Errc::kPermission, "permission denied: " + c.error().message);
    if (c.ok() || c.code() != Errc::kNotFound) return c;
    looked += (looked.empty() ? "" : ", ") + p;
  }
  return make_error(Errc::kPermission, "permission denied: no token (looked in " + looked +
                                           "; give --token-file FILE or set LANEFS_TOKEN_FILE)");
}

AuthKey user_key(const AuthKey& secret, std::string_view user, uint32_t generation) {
  std::vector<uint8_t> m;
  put(&m, "lanefs-user");
  put(&m, user);
  put(&m, uint64_t{generation});
  return hmac(secret, m);
}

AuthKey backend_key(const AuthKey& secret) {
  std::vector<uint8_t> m;
  put(&m, "lanefs-backend");
  return hmac(secret, m);
}

AuthKey connect_proof(const AuthKey& key, std::string_view user, uint64_t nonce, std::span<const uint8_t> cookie) {
  std::vector<uint8_t> m;
  put(&m, "lanefs-connect");
  put(&m, user);
  put(&m, nonce);
  m.insert(m.end(), cookie.begin(), cookie.end());
  return hmac(key, m);
}

void cookie_mac(const AuthKey& key, std::span<const uint8_t> data, std::span<uint8_t> out) {
  AuthKey full = hmac(key, data);
  std::memcpy(out.data(), full.data(), std::min(out.size(), full.size()));
}

bool equal_secret(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

AuthKey random_key() {
  AuthKey k{};
  if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) std::abort();  // no entropy: nothing is safe
  return k;
}

}  // namespace lanefs::proto
