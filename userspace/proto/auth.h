// Who may do what: the roles of the cluster's users, the user records the
// cluster map keeps, tokens (a user's key, in a 0600 file), and the keys and
// proofs of the connect handshake (docs/security.md, docs/protocol.md).
//
// Keys: each backend keeps the cluster secret (32 random bytes). A user's
// key is HMAC-SHA256(secret, "lanefs-user" | name | generation): backends
// derive it when a session is set up and store no per-user secret; deleting
// a user or adding it again (a new generation) makes its old tokens useless.
// Backends talk to each other as "@backend" with HMAC(secret,
// "lanefs-backend"). The connect proof is HMAC(key, "lanefs-connect" | user |
// client nonce | server cookie): the key never crosses the wire, and the
// cookie (fresh, bound to the client's address) makes a recorded proof
// useless later.
//
// Threading: everything here is a pure function or a value type. Errors:
// one line naming the file for token files (kNotFound, kPermission for a
// file group/others can read, kInvalid for a malformed one).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/codec.h"
#include "common/result.h"

namespace lanefs::proto {

// What a session may do (backend/authz.cc has the table per opcode).
enum class Role : uint8_t {
  kReadonly = 1,      // mount read-only, list filesystems
  kClient = 2,        // mount read-write the filesystems it names
  kAdmin = 3,         // + filesystems and users (not clusteradmins)
  kClusterAdmin = 4,  // + cluster membership, RDMA, containers, every user
  kBackend = 5,       // another backend of the cluster (never a user's)
  kJoining = 6,       // a backend forming a cluster with this empty one
};
const char* role_name(Role r);
// The roles a user can be given (`lanefs user add --role`).
std::optional<Role> parse_user_role(std::string_view s);
bool role_is_admin(Role r);  // kAdmin, kClusterAdmin, kBackend

inline constexpr size_t kAuthKeyBytes = 32;
using AuthKey = std::array<uint8_t, kAuthKeyBytes>;

// The user every cluster has from its start (role clusteradmin); its token
// is written on the backends' hosts (lanefsd --admin-token-file).
inline constexpr std::string_view kAdminUser = "admin";
inline constexpr std::string_view kBackendUser = "@backend";
// Names: 1–64 of [A-Za-z0-9._-], not starting with '.' or '-'.
bool valid_user_name(std::string_view n);

// A user of the cluster (kept in the cluster map; no secret in it), and
// what a session runs as.
struct UserRecord {
  std::string name;
  Role role = Role::kClient;
  // Filesystems a client/readonly user may use; empty: every filesystem.
  std::vector<std::string> filesystems;
  bool root_squash = false;  // requests with uid 0 run as nobody (65534)
  uint32_t generation = 0;
  int64_t created_s = 0;
  bool may_use_fs(std::string_view fs) const;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
// The built-in admin's record.
UserRecord builtin_admin();

// A token: a user's name, generation and key.
struct Credentials {
  std::string user;
  uint32_t generation = 0;
  AuthKey key{};
};

// Message bodies of the user operations (proto/messages.h, kUserList,
// kUserAdd, kUserToken).
struct UserList {
  std::vector<UserRecord> users;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// A token (kUserAdd, kUserToken): the user's name, generation and key.
// The answer to kUserAdd and kUserToken: a user's token whose key is sealed
// for the caller (AES-256-GCM under a key derived from the caller's own user
// key, with the name and generation authenticated alongside), so someone
// who only sees the reply on the wire does not learn the token.
struct TokenResp {
  std::string user;
  uint32_t generation = 0;
  std::array<uint8_t, 12> nonce{};
  std::array<uint8_t, kAuthKeyBytes + 16> sealed{};  // the key, then the GCM tag
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
// Seals c for the holder of caller_key (a random nonce per call).
TokenResp seal_token(const AuthKey& caller_key, const Credentials& c);
// The token, or kPermission when it was not sealed for caller_key (or was
// changed on the way).
Result<Credentials> open_token(const AuthKey& caller_key, const TokenResp& t);

// "lanefs-token 1 USER GENERATION HEX64\n"
std::string format_token(const Credentials& c);
Result<Credentials> parse_token(std::string_view text, const std::string& path);
Result<Credentials> load_token_file(const std::string& path);
// Writes with mode 0600 (parent directories made 0700), atomically.
Status save_token_file(const std::string& path, const Credentials& c);
// Where a token is looked for, in order: `explicit_path` if given, else
// $LANEFS_TOKEN_FILE, ~/.config/lanefs/token, /etc/lanefs/admin.token.
std::vector<std::string> token_search_path(const std::string& explicit_path);
// The first token found on that path; kPermission ("no token: ...") naming
// where it looked when there is none.
Result<Credentials> find_token(const std::string& explicit_path);
std::string default_user_token_path();  // ~/.config/lanefs/token

AuthKey user_key(const AuthKey& secret, std::string_view user, uint32_t generation);
AuthKey backend_key(const AuthKey& secret);
AuthKey connect_proof(const AuthKey& key, std::string_view user, uint64_t nonce,
                      std::span<const uint8_t> cookie);
// Keyed MAC for the server's connect cookies: the first out.size() bytes of
// HMAC-SHA256(key, data).
void cookie_mac(const AuthKey& key, std::span<const uint8_t> data, std::span<uint8_t> out);
bool equal_secret(std::span<const uint8_t> a, std::span<const uint8_t> b);  // constant time
AuthKey random_key();

}  // namespace lanefs::proto
