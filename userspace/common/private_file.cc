#include "common/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace lanefs {

Result<std::string> read_private_file(const std::string& path, std::string_view what, size_t max_bytes) {
  const std::string name = std::string(what) + " " + path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return make_error(Errc::kNotFound, name + " does not exist");
    if (err == EACCES) return make_error(Errc::kPermission, name + " is not readable by this user");
    return sys_error("open " + name, err);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return sys_error("fstat " + name, errno);
  if (!S_ISREG(st.st_mode)) return make_error(Errc::kInvalid, name + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(Errc::kPermission,
                      name + " has mode " + mode + ": it must not be accessible by group or others (chmod 600)");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    return make_error(Errc::kInvalid, name + " is larger than " + std::to_string(max_bytes) + " bytes");
  std::string out(max_bytes + 1, '\0');
  size_t n = 0;
  while (n < out.size()) {
    ssize_t r = ::read(fd, out.data() + n, out.size() - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys_error("read " + name, errno);
    }
    if (r == 0) break;
    n += static_cast<size_t>(r);
  }
  if (n > max_bytes) return make_error(Errc::kInvalid, name + " is larger than " + std::to_string(max_bytes) + " bytes");
  out.resize(n);
  return out;
}

Status write_private_file(const std::string& path, std::string_view what, std::string_view text,
                          bool only_if_absent, mode_t dir_mode) {
  const std::string name = std::string(what) + " " + path;
  if (path.empty()) return make_error(Errc::kInvalid, "no path for the " + std::string(what));
  for (size_t p = path.find('/', 1); p != std::string::npos; p = path.find('/', p + 1)) {
    std::string dir = path.substr(0, p);
    if (::mkdir(dir.c_str(), dir_mode) != 0 && errno != EEXIST) return sys_error("mkdir " + dir, errno);
  }
  std::string tmp = path + ".XXXXXX";  // mkstemp's template: O_EXCL, mode 0600
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return sys_error("create " + name, errno);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (ok) {
    // link() fails if the path exists; rename() replaces it.
    ok = (only_if_absent ? ::link(tmp.c_str(), path.c_str()) : ::rename(tmp.c_str(), path.c_str())) == 0;
    err = errno;
  }
  ::unlink(tmp.c_str());  // after link(): the second name; after rename(): gone already
  if (ok) return ok_status();
  if (only_if_absent && err == EEXIST) return make_error(Errc::kExists, name + " exists");
  return sys_error("write " + name, err);
}

}  // namespace lanefs
