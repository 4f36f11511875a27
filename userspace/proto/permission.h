// The mode-bit rule shared by the backends' permission checks
// (backend/access.h) and the frontend's check of a squashed root opening a
// file already open on its mount (client/mount_open.cc): whether an
// inode's mode, owner and group grant credentials an access.
#pragma once

#include <cstdint>

#include "common/result.h"
#include "proto/meta_messages.h"
#include "proto/types.h"

namespace lanefs::proto {

inline constexpr uint32_t kNobody = 65534;  // what a squashed root runs as (uid and gid)

// Is gid c's group or one of its supplementary groups?
bool in_group(const Cred& c, uint32_t gid);

// Whether the mode bits of `a` grant `c` every access in `mask` (kMayRead,
// kMayWrite, kMayExec): kPermission (EACCES) naming the inode if not. Root
// gets read and write on anything, and search/execute when the inode is a
// directory or has any execute bit.
Status may_access(const InodeAttr& a, const Cred& c, uint8_t mask);

}  // namespace lanefs::proto
