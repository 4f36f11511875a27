#include "common/errors.h"

#include <cerrno>

namespace lanefs {

std::string_view errc_text(Errc code) noexcept {
  switch (code) {
#define LANEFS_ERRC_TEXT(name, value, text) \
  case Errc::name:                          \
    return text;
    LANEFS_ERRC_LIST(LANEFS_ERRC_TEXT)
#undef LANEFS_ERRC_TEXT
  }
  return "unknown error";
}

std::string_view errc_name(Errc code) noexcept {
  switch (code) {
#define LANEFS_ERRC_NAME(name, value, text) \
  case Errc::name:                          \
    return std::string_view(#name).substr(1);
    LANEFS_ERRC_LIST(LANEFS_ERRC_NAME)
#undef LANEFS_ERRC_NAME
  }
  return "Unknown";
}

bool errc_valid(int32_t raw) noexcept {
  switch (static_cast<Errc>(raw)) {
#define LANEFS_ERRC_VALID(name, value, text) case Errc::name:
    LANEFS_ERRC_LIST(LANEFS_ERRC_VALID)
#undef LANEFS_ERRC_VALID
    return true;
  }
  return false;
}

int to_errno(Errc code) noexcept {
  switch (code) {
    case Errc::kOk: return 0;
    case Errc::kNotFound: return ENOENT;
    case Errc::kStale: return ESTALE;
    case Errc::kExists: return EEXIST;
    case Errc::kNotDir: return ENOTDIR;
    case Errc::kIsDir: return EISDIR;
    case Errc::kNotEmpty: return ENOTEMPTY;
    case Errc::kInvalid: return EINVAL;
    case Errc::kNameTooLong: return ENAMETOOLONG;
    case Errc::kNoSpace: return ENOSPC;
    case Errc::kPermission: return EACCES;
    case Errc::kBusy: return EBUSY;
    case Errc::kNoAttr: return ENODATA;
    case Errc::kRange: return ERANGE;
    case Errc::kNotSupported: return EOPNOTSUPP;
    case Errc::kCrossDevice: return EXDEV;
    case Errc::kTooManyLinks: return EMLINK;
    case Errc::kNoSession: return ENOTCONN;
    case Errc::kReadOnly: return EROFS;
    case Errc::kTooBig: return EFBIG;
    case Errc::kNotPermitted: return EPERM;
    // A backend that stopped answering is an I/O error to applications,
    // as a failing local disk would be.
    case Errc::kTimeout:
    case Errc::kUnreachable:
    case Errc::kShutdown:
    case Errc::kIo:
    case Errc::kProtocol:
    case Errc::kVersion:
    case Errc::kCorrupt:
    case Errc::kInternal:
    case Errc::kWrongOwner:
    case Errc::kSystem:
    case Errc::kRdmaFailed:
      return EIO;
  }
  return EIO;
}

Errc from_errno(int err) noexcept {
  switch (err) {
    case 0: return Errc::kOk;
    case ENOENT: return Errc::kNotFound;
    case ESTALE: return Errc::kStale;
    case EEXIST: return Errc::kExists;
    case ENOTDIR: return Errc::kNotDir;
    case EISDIR: return Errc::kIsDir;
    case ENOTEMPTY: return Errc::kNotEmpty;
    case EINVAL: return Errc::kInvalid;
    case ENAMETOOLONG: return Errc::kNameTooLong;
    case ENOSPC: return Errc::kNoSpace;
    case EACCES: return Errc::kPermission;
    case EPERM: return Errc::kNotPermitted;
    case ETIMEDOUT: return Errc::kTimeout;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ECONNREFUSED: return Errc::kUnreachable;
    case EBUSY:
    case EAGAIN: return Errc::kBusy;
    case ENODATA: return Errc::kNoAttr;
    case ERANGE: return Errc::kRange;
    case EOPNOTSUPP: return Errc::kNotSupported;
    case EXDEV: return Errc::kCrossDevice;
    case EMLINK: return Errc::kTooManyLinks;
    case EROFS: return Errc::kReadOnly;
    case EFBIG: return Errc::kTooBig;
    case ESHUTDOWN: return Errc::kShutdown;
    case ENOTCONN: return Errc::kNoSession;
    default: return Errc::kSystem;
  }
}

}  // namespace lanefs
