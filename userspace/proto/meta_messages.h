// Message bodies of the metadata ops (proto/messages.h lists the ops;
// their encode and decode live in messages.cc with the others).
//
// Credentials: every request whose answer depends on who asks carries the
// caller's Cred last (docs/security.md, "Permissions"). The backend checks
// the inode's mode, owner and group against it, after the token's root
// squashing (backend/access.cc); a request without one runs as root.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/codec.h"
#include "proto/types.h"

namespace lanefs::proto {

// Who asks: the caller's uid, gid and supplementary groups as its kernel
// gave them. `groups` may be empty (not looked up: the first try of a
// request goes without them, and the frontend resends once with them when
// the backend answers kPermission; client/cluster_client.cc). At most
// kMaxGroups are sent.
inline constexpr size_t kMaxGroups = 64;
// Access a request needs (the values of R_OK, W_OK and X_OK).
inline constexpr uint8_t kMayRead = 4, kMayWrite = 2, kMayExec = 1;
struct Cred {
  Cred() = default;
  Cred(uint32_t u, uint32_t g, std::vector<uint32_t> gs = {}, uint32_t p = 0)
      : uid(u), gid(g), groups(std::move(gs)), pid(p) {}
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;
  // The calling process, where the frontend reads `groups` from (never
  // sent; 0: not known, no retry).
  uint32_t pid = 0;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct InoReq {
  uint64_t ino = 0;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct NameAtReq {
  uint64_t parent = 0;
  std::string name;
  Cred cred;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct SetattrReq {
  uint64_t ino = 0;
  SetAttr attr;
  Cred cred;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct CreateReq {
  uint64_t parent = 0;
  std::string name;
  uint32_t mode = 0;      // includes S_IFMT: S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, ...
  uint32_t rdev = 0;
  Cred cred;
  bool exclusive = true;  // false: an existing regular file is returned (O_CREAT without O_EXCL)
  std::string symlink_target;
  // Non-zero: the creating client holds the regular file open from now
  // (HandleReq's client); the backend keeps it alive past an unlink.
  uint64_t open_by = 0;
  uint64_t open_seq = 0;  // HandleReq's seq for that handle
  // With open_by, not exclusive: the open's access (kMayRead | kMayWrite),
  // checked against an existing file it finds (the kernel does not check
  // an O_CREAT open it sent as a create).
  uint8_t access = 0;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// Open handles (backend/open_handles.h). `client` names one mount of one
// frontend (random per mount); `seq` orders a client's requests so that a
// renewal never drops a handle opened after the renewal's list was made.
struct HandleReq {
  uint64_t client = 0;
  uint64_t ino = 0;
  bool open = true;  // false: released (the client's last handle on ino closed)
  uint64_t seq = 0;
  // An open: what it opens the file for (kMayRead | kMayWrite), checked
  // against the mode for cred.
  uint8_t access = 0;
  Cred cred;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
// Every inode `client` holds open whose metadata this backend owns, as of
// `seq`: renews the client's lease; handles it lacks (registered at or
// before seq) are released, listed ones missing here (a restarted backend)
// are taken up again.
struct HandleRenewReq {
  uint64_t client = 0;
  uint64_t seq = 0;
  std::vector<uint64_t> inos;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct LinkReq {
  uint64_t ino = 0;
  uint64_t new_parent = 0;
  std::string new_name;
  Cred cred;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct RenameReq {
  uint64_t parent = 0;
  std::string name;
  uint64_t new_parent = 0;
  std::string new_name;
  uint32_t flags = 0;  // kRenameNoReplace | kRenameExchange
  Cred cred;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct ReaddirReq {
  uint64_t ino = 0;
  uint64_t cookie = 0;  // 0 = from the start
  uint32_t max_entries = 1024;
  bool plus = false;    // include attributes (InodeAttr per entry, ino 0 if not local)
  Cred cred;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
struct ReaddirResp {
  std::vector<Dirent> entries;
  std::vector<InodeAttr> attrs;  // parallel to entries when plus
  bool eof = false;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct XattrReq {
  uint64_t ino = 0;
  std::string name;
  Cred cred;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
inline constexpr uint32_t kXattrCreate = 1, kXattrReplace = 2;
struct XattrSetReq {
  uint64_t ino = 0;
  std::string name;
  std::string value;
  uint32_t flags = 0;
  Cred cred;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct StringList {
  std::vector<std::string> items;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct CommitWriteReq {
  uint64_t ino = 0;
  uint64_t end_offset = 0;   // size becomes max(size, end_offset)
  int64_t blocks_delta = 0;  // allocated 512-byte blocks added by the writes
  Timespec mtime;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

}  // namespace lanefs::proto
