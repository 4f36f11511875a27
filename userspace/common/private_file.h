// Reading a small secret from a file that only its owner may read (key
// files, token files, the cluster secret): refused, like ssh refuses a
// private key, when group or others can access it.
//
// Errors name the file as "<what> PATH": kNotFound (missing), kPermission
// (not readable by this user, or mode & 077 != 0: "chmod 600"), kInvalid
// (not a regular file, larger than max_bytes), or the system error.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lanefs {

// The file's contents. The caller wipes them when they are a secret.
Result<std::string> read_private_file(const std::string& path, std::string_view what, size_t max_bytes);

// Writes `text` (mode 0600) to a fresh name beside `path` that nobody else
// can have opened (mkstemp), syncs it, and moves it into place complete:
// replacing what is there, or with `only_if_absent` never (kExists when
// `path` exists: another writer was first). Missing parent directories are
// made with `dir_mode`.
Status write_private_file(const std::string& path, std::string_view what, std::string_view text,
                          bool only_if_absent, mode_t dir_mode);

}  // namespace lanefs
