#include "proto/permission.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace lanefs::proto {

bool in_group(const Cred& c, uint32_t gid) {
  return c.gid == gid || std::find(c.groups.begin(), c.groups.end(), gid) != c.groups.end();
}

Status may_access(const InodeAttr& a, const Cred& c, uint8_t mask) {
  uint32_t granted;
  if (c.uid == 0) {
    granted = kMayRead | kMayWrite | ((S_ISDIR(a.mode) || (a.mode & 0111)) ? kMayExec : 0);
  } else if (c.uid == a.uid) {
    granted = (a.mode >> 6) & 7;
  } else if (in_group(c, a.gid)) {
    granted = (a.mode >> 3) & 7;
  } else {
    granted = a.mode & 7;
  }
  if ((granted & mask) == mask) return ok_status();
  std::string need;
  if (mask & kMayRead) need += "read";
  if (mask & kMayWrite) need += need.empty() ? "write" : "/write";
  if (mask & kMayExec) need += need.empty() ? "search" : "/search";
  char mode[16];
  std::snprintf(mode, sizeof mode, "0%o", a.mode & 07777);
  return make_error(Errc::kPermission, "permission denied: uid " + std::to_string(c.uid) + " lacks " + need +
                                           " permission on " + (S_ISDIR(a.mode) ? "directory " : "inode ") +
                                           std::to_string(a.ino) + " (mode " + mode + ", owner " +
                                           std::to_string(a.uid) + ":" + std::to_string(a.gid) + ")");
}

}  // namespace lanefs::proto
