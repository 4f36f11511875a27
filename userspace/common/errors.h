// Error codes used across lanefs. They are listed exactly once (here); their
// numeric values travel on the wire as response status, so never renumber.
// Mapping to errno lives in errors.cc (to_errno) and is the only such mapping.
#pragma once

#include <cstdint>
#include <string_view>

namespace lanefs {

#define LANEFS_ERRC_LIST(X)                                            \
  X(kOk, 0, "ok")                                                      \
  X(kNotFound, 1, "not found")                                         \
  X(kExists, 2, "already exists")                                      \
  X(kNotDir, 3, "not a directory")                                     \
  X(kIsDir, 4, "is a directory")                                       \
  X(kNotEmpty, 5, "directory not empty")                               \
  X(kInvalid, 6, "invalid argument")                                   \
  X(kNameTooLong, 7, "name too long")                                  \
  X(kNoSpace, 8, "no space left")                                      \
  X(kPermission, 9, "permission denied")                               \
  X(kIo, 10, "I/O error")                                              \
  X(kTimeout, 11, "timed out")                                         \
  X(kUnreachable, 12, "unreachable")                                   \
  X(kProtocol, 13, "protocol error")                                   \
  X(kVersion, 14, "unsupported protocol version")                      \
  X(kCorrupt, 15, "data corrupt")                                      \
  X(kBusy, 16, "busy")                                                 \
  X(kNoAttr, 17, "no such attribute")                                  \
  X(kRange, 18, "result too large")                                    \
  X(kNotSupported, 19, "not supported")                                \
  X(kCrossDevice, 20, "cross-device link")                             \
  X(kTooManyLinks, 21, "too many links")                               \
  X(kShutdown, 22, "shut down")                                        \
  X(kInternal, 23, "internal error")                                   \
  X(kWrongOwner, 24, "request sent to a backend that does not own it") \
  X(kNoSession, 25, "no session")                                      \
  X(kReadOnly, 26, "read-only filesystem")                             \
  X(kTooBig, 27, "file too large")                                     \
  X(kSystem, 28, "system call failed")                                \
  X(kNotPermitted, 29, "operation not permitted")                    \
  X(kRdmaFailed, 30, "RDMA transfer failed")                         \
  X(kStale, 31, "stale file handle")

enum class Errc : int32_t {
#define LANEFS_ERRC_ENUM(name, value, text) name = value,
  LANEFS_ERRC_LIST(LANEFS_ERRC_ENUM)
#undef LANEFS_ERRC_ENUM
};

// Human text for a code ("not found"). Unknown values give "unknown error".
std::string_view errc_text(Errc code) noexcept;
// Identifier for a code ("kNotFound" without the k: "NotFound").
std::string_view errc_name(Errc code) noexcept;
// True when `raw` is a value listed above (used when decoding wire status).
bool errc_valid(int32_t raw) noexcept;
// The one errno mapping (used by the FUSE reply helper and tools).
int to_errno(Errc code) noexcept;
// Inverse mapping for system-call failures (errno -> closest Errc).
Errc from_errno(int err) noexcept;

}  // namespace lanefs
