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

}  // namespace lanefs
