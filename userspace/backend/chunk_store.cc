#include "backend/chunk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <cinttypes>
#include <cstdio>
#include <utility>

namespace lanefs::backend {
namespace {

// Owns one file descriptor; closed on destruction so no path leaks it.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

std::string parent_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string chunks_dir(const std::string& root) { return root + "/chunks"; }

std::string ino_dir(const std::string& root, uint64_t ino) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016" PRIx64, ino);
  return chunks_dir(root) + "/" + hex;
}

Status fsync_dir(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return sys_error("open " + path, errno);
  if (::fsync(fd.get()) != 0) return sys_error("fsync " + path, errno);
  return ok_status();
}

// Creates `path` if missing. A new directory entry is only durable once its
// parent directory is synced, so do that whenever we created one.
Status ensure_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return fsync_dir(parent_of(path));
  if (errno == EEXIST) return ok_status();
  return sys_error("mkdir " + path, errno);
}

Status mkdir_p(const std::string& path) {
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    LANEFS_TRY(ensure_dir(path.substr(0, pos)));
  }
  return ensure_dir(path);
}

Status pwrite_all(int fd, const uint8_t* p, size_t n, off_t off, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return sys_error("pwrite " + path, errno);
    }
    if (w == 0) return sys_error("pwrite " + path, EIO);
    p += w;
    n -= static_cast<size_t>(w);
    off += w;
  }
  return ok_status();
}

// Opens an existing chunk file for writing; missing (ENOENT) is not an error
// and yields an invalid Fd.
Result<Fd> open_existing(const std::string& path, int flags) {
  Fd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd.valid() && errno != ENOENT) return sys_error("open " + path, errno);
  return fd;
}

// Opens chunk file `path` for writing, creating it (and its inode directory
// `idir`) when missing; *created tells the caller to sync the directory
// after the data.
Result<Fd> open_for_write(const std::string& path, const std::string& idir, bool* created) {
  // A concurrent remove_from() may rmdir the inode directory between our
  // mkdir and open(O_CREAT); retrying recreates it.
  for (int attempt = 0; attempt < 3; ++attempt) {
    LANEFS_ASSIGN_OR_RETURN(Fd fd, open_existing(path, O_WRONLY));
    if (fd.valid()) return fd;
    *created = true;
    LANEFS_TRY(ensure_dir(idir));
    fd = Fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (fd.valid()) return fd;
    if (errno != ENOENT) return sys_error("open " + path, errno);
  }
  return sys_error("open " + path, ENOENT);
}

// Sum of st_blocks over the regular files directly inside `dir` (0 if the
// directory does not exist).
Result<uint64_t> sum_blocks(const std::string& dir) {
  DirPtr d(::opendir(dir.c_str()));
  if (!d) {
    if (errno == ENOENT) return uint64_t{0};
    return sys_error("opendir " + dir, errno);
  }
  uint64_t total = 0;
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    struct stat st;
    if (::fstatat(::dirfd(d.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while we looked
      return sys_error("fstatat " + dir + "/" + e->d_name, errno);
    }
    if (S_ISREG(st.st_mode)) total += static_cast<uint64_t>(st.st_blocks);
  }
  return total;
}

}  // namespace

Result<std::unique_ptr<ChunkStore>> ChunkStore::open(const std::string& dir, uint32_t chunk_size) {
  if (chunk_size == 0) return make_error(Errc::kInvalid, "chunk size 0");
  if (dir.empty()) return make_error(Errc::kInvalid, "empty chunk store directory");
  LANEFS_TRY(mkdir_p(chunks_dir(dir)));
  return std::unique_ptr<ChunkStore>(new ChunkStore(dir, chunk_size));
}

ChunkStore::ChunkStore(std::string dir, uint32_t chunk_size)
    : dir_(std::move(dir)), chunk_size_(chunk_size) {}

ChunkStore::~ChunkStore() = default;

std::string ChunkStore::path_of(uint64_t ino, uint64_t index) const {
  return ino_dir(dir_, ino) + "/" + std::to_string(index);
}

namespace {
Status check_range(uint32_t chunk_size, uint64_t offset, uint64_t len) {
  if (offset + len > chunk_size) {
    return make_error(Errc::kInvalid, "range " + std::to_string(offset) + "+" +
                                          std::to_string(len) + " exceeds chunk size " +
                                          std::to_string(chunk_size));
  }
  return ok_status();
}
}  // namespace

Status ChunkStore::write(uint64_t ino, uint64_t index, uint32_t offset,
                         std::span<const uint8_t> data) {
  LANEFS_TRY(check_range(chunk_size_, offset, data.size()));
  std::string path = path_of(ino, index);
  std::string idir = ino_dir(dir_, ino);
  bool created = false;
  LANEFS_ASSIGN_OR_RETURN(Fd fd, open_for_write(path, idir, &created));

  LANEFS_TRY(pwrite_all(fd.get(), data.data(), data.size(), offset, path));
  // fdatasync covers the data and the file size; the new name needs the
  // directory synced too.
  if (::fdatasync(fd.get()) != 0) return sys_error("fdatasync " + path, errno);
  if (created) LANEFS_TRY(fsync_dir(idir));
  return ok_status();
}

Status ChunkStore::read(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                        std::vector<uint8_t>* out) {
  LANEFS_TRY(check_range(chunk_size_, offset, len));
  out->resize(len);
  return read_into(ino, index, offset, len, out->data());
}

Status ChunkStore::read_into(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                             uint8_t* dst) {
  LANEFS_TRY(check_range(chunk_size_, offset, len));
  std::string path = path_of(ino, index);
  LANEFS_ASSIGN_OR_RETURN(Fd fd, open_existing(path, O_RDONLY));
  size_t done = 0;
  while (fd.valid() && done < len) {
    ssize_t r = ::pread(fd.get(), dst + done, len - done, offset + done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys_error("pread " + path, errno);
    }
    if (r == 0) break;  // EOF
    done += static_cast<size_t>(r);
  }
  // Never written (a hole) or beyond the chunk file's end: zeros.
  std::memset(dst + done, 0, len - done);
  return ok_status();
}

Status ChunkStore::truncate(uint64_t ino, uint64_t index, uint32_t len) {
  LANEFS_TRY(check_range(chunk_size_, len, 0));
  std::string path = path_of(ino, index);
  if (len == 0) {
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return ok_status();
      return sys_error("unlink " + path, errno);
    }
    return fsync_dir(ino_dir(dir_, ino));
  }
  LANEFS_ASSIGN_OR_RETURN(Fd fd, open_existing(path, O_WRONLY));
  if (!fd.valid()) return ok_status();  // nothing stored: already reads as zeros
  if (::ftruncate(fd.get(), len) != 0) return sys_error("ftruncate " + path, errno);
  if (::fdatasync(fd.get()) != 0) return sys_error("fdatasync " + path, errno);
  return ok_status();
}

Status ChunkStore::punch(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len) {
  LANEFS_TRY(check_range(chunk_size_, offset, len));
  if (len == 0) return ok_status();
  std::string path = path_of(ino, index);
  LANEFS_ASSIGN_OR_RETURN(Fd fd, open_existing(path, O_WRONLY));
  if (!fd.valid()) return ok_status();
  if (::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) != 0) {
    if (errno != EOPNOTSUPP) return sys_error("fallocate " + path, errno);
    // No hole punching on this filesystem: write zeros, but never past EOF
    // (KEEP_SIZE semantics).
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return sys_error("fstat " + path, errno);
    uint64_t end = std::min<uint64_t>(uint64_t{offset} + len, static_cast<uint64_t>(st.st_size));
    if (end > offset) {
      std::vector<uint8_t> zeros(end - offset, 0);
      LANEFS_TRY(pwrite_all(fd.get(), zeros.data(), zeros.size(), offset, path));
    }
  }
  if (::fdatasync(fd.get()) != 0) return sys_error("fdatasync " + path, errno);
  return ok_status();
}

Status ChunkStore::remove_from(uint64_t ino, uint64_t first_index) {
  std::string idir = ino_dir(dir_, ino);
  std::vector<std::string> doomed;
  size_t kept = 0;
  {
    DirPtr d(::opendir(idir.c_str()));
    if (!d) {
      if (errno == ENOENT) return ok_status();
      return sys_error("opendir " + idir, errno);
    }
    while (dirent* e = ::readdir(d.get())) {
      std::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      uint64_t index = 0;
      auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
      if (ec != std::errc() || end != name.data() + name.size() || index < first_index) {
        ++kept;  // foreign names are left alone (and keep the directory)
        continue;
      }
      doomed.emplace_back(name);
    }
  }
  for (const std::string& name : doomed) {
    std::string path = idir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_error("unlink " + path, errno);
  }
  if (kept > 0) return doomed.empty() ? ok_status() : fsync_dir(idir);
  if (::rmdir(idir.c_str()) != 0) {
    // A concurrent write() may have created a chunk meanwhile; it keeps the
    // directory, and the unlinks above still need to be durable.
    if (errno == ENOTEMPTY || errno == EEXIST) return fsync_dir(idir);
    if (errno == ENOENT) return ok_status();
    return sys_error("rmdir " + idir, errno);
  }
  return fsync_dir(chunks_dir(dir_));
}

Result<uint64_t> ChunkStore::chunk_blocks(uint64_t ino, uint64_t index) {
  std::string path = path_of(ino, index);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return uint64_t{0};
    return sys_error("stat " + path, errno);
  }
  return static_cast<uint64_t>(st.st_blocks);
}

Result<uint64_t> ChunkStore::allocated_blocks(uint64_t ino) {
  return sum_blocks(ino_dir(dir_, ino));
}

Status ChunkStore::space(uint64_t* total_bytes, uint64_t* free_bytes, uint64_t* avail_bytes) {
  struct statvfs vfs;
  if (::statvfs(dir_.c_str(), &vfs) != 0) return sys_error("statvfs " + dir_, errno);
  uint64_t frsize = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
  *total_bytes = uint64_t{vfs.f_blocks} * frsize;
  *free_bytes = uint64_t{vfs.f_bfree} * frsize;
  *avail_bytes = uint64_t{vfs.f_bavail} * frsize;
  return ok_status();
}

uint64_t ChunkStore::stored_bytes() {
  // Status only: walk the tree and skip whatever cannot be read.
  std::string root = chunks_dir(dir_);
  DirPtr d(::opendir(root.c_str()));
  if (!d) return 0;
  uint64_t blocks = 0;
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    if (auto b = sum_blocks(root + "/" + e->d_name); b.ok()) blocks += *b;
  }
  return blocks * 512;
}

// ------------------------------------------------------------ sealed chunks
namespace {

Status pread_full(int fd, uint8_t* p, size_t n, off_t off, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, off + static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys_error("pread " + path, errno);
    }
    if (r == 0) break;  // EOF: the rest stays zero
    done += static_cast<size_t>(r);
  }
  return ok_status();
}

// Deallocates [off, off+len) without changing the size; where the
// filesystem cannot punch holes, writes zeros up to EOF instead.
Status punch_fd(int fd, uint64_t off, uint64_t len, const std::string& path) {
  if (len == 0) return ok_status();
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                  static_cast<off_t>(len)) == 0)
    return ok_status();
  if (errno != EOPNOTSUPP) return sys_error("fallocate " + path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) return sys_error("fstat " + path, errno);
  uint64_t end = std::min<uint64_t>(off + len, static_cast<uint64_t>(st.st_size));
  if (end <= off) return ok_status();
  std::vector<uint8_t> zeros(end - off, 0);
  return pwrite_all(fd, zeros.data(), zeros.size(), static_cast<off_t>(off), path);
}

Status check_sealed(uint32_t chunk_size, uint64_t offset, uint64_t len) {
  LANEFS_TRY(check_range(chunk_size, offset, len));
  if (chunk_size % ChunkStore::kSealBlock != 0 || offset % ChunkStore::kSealBlock != 0 ||
      len % ChunkStore::kSealBlock != 0)
    return make_error(Errc::kInvalid, "sealed range " + std::to_string(offset) + "+" + std::to_string(len) +
                                          " is not aligned to 4 KiB blocks (chunk size " +
                                          std::to_string(chunk_size) + ")");
  return ok_status();
}

}  // namespace

Status ChunkStore::write_sealed(uint64_t ino, uint64_t index, uint32_t offset, std::span<const uint8_t> data,
                                std::span<const uint8_t> seals) {
  LANEFS_TRY(check_sealed(chunk_size_, offset, data.size()));
  if (seals.size() != data.size() / kSealBlock * kSealBytes)
    return make_error(Errc::kInvalid, "sealed write: " + std::to_string(seals.size()) + " seal bytes for " +
                                          std::to_string(data.size()) + " data bytes");
  std::string path = path_of(ino, index);
  std::string idir = ino_dir(dir_, ino);
  bool created = false;
  LANEFS_ASSIGN_OR_RETURN(Fd fd, open_for_write(path, idir, &created));
  // Data first, then seals, then one fdatasync for both: the write is
  // acknowledged only when ciphertext and seals are durable together.
  LANEFS_TRY(pwrite_all(fd.get(), data.data(), data.size(), offset, path));
  off_t seal_off = static_cast<off_t>(chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes);
  LANEFS_TRY(pwrite_all(fd.get(), seals.data(), seals.size(), seal_off, path));
  if (::fdatasync(fd.get()) != 0) return sys_error("fdatasync " + path, errno);
  if (created) LANEFS_TRY(fsync_dir(idir));
  return ok_status();
}

Status ChunkStore::read_sealed(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                               std::vector<uint8_t>* out) {
  LANEFS_TRY(check_sealed(chunk_size_, offset, len));
  size_t seal_len = size_t{len} / kSealBlock * kSealBytes;
  out->assign(size_t{len} + seal_len, 0);
  std::string path = path_of(ino, index);
  LANEFS_ASSIGN_OR_RETURN(Fd fd, open_existing(path, O_RDONLY));
  if (!fd.valid()) return ok_status();  // never written: holes, zero seals
  LANEFS_TRY(pread_full(fd.get(), out->data(), len, offset, path));
  off_t seal_off = static_cast<off_t>(chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes);
  return pread_full(fd.get(), out->data() + len, seal_len, seal_off, path);
}

Status ChunkStore::punch_sealed(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len) {
  LANEFS_TRY(check_sealed(chunk_size_, offset, len));
  if (len == 0) return ok_status();
  std::string path = path_of(ino, index);
  LANEFS_ASSIGN_OR_RETURN(Fd fd, open_existing(path, O_WRONLY));
  if (!fd.valid()) return ok_status();
  // Seals first: once a seal is zero the block reads as a hole whatever
  // state its data is in.
  LANEFS_TRY(punch_fd(fd.get(), chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes,
                      uint64_t{len} / kSealBlock * kSealBytes, path));
  LANEFS_TRY(punch_fd(fd.get(), offset, len, path));
  if (::fdatasync(fd.get()) != 0) return sys_error("fdatasync " + path, errno);
  return ok_status();
}

Status ChunkStore::truncate_sealed(uint64_t ino, uint64_t index, uint32_t len) {
  LANEFS_TRY(check_range(chunk_size_, len, 0));
  if (len == 0) return truncate(ino, index, 0);
  if (chunk_size_ % kSealBlock != 0) return check_sealed(chunk_size_, 0, kSealBlock - 1);
  uint64_t keep = (uint64_t{len} + kSealBlock - 1) / kSealBlock * kSealBlock;  // whole blocks kept
  std::string path = path_of(ino, index);
  LANEFS_ASSIGN_OR_RETURN(Fd fd, open_existing(path, O_WRONLY));
  if (!fd.valid()) return ok_status();
  uint64_t seal_keep = chunk_size_ + keep / kSealBlock * kSealBytes;
  // The seal area ends the file: cutting the file there drops the seals of
  // the removed blocks; their data is deallocated in place.
  if (::ftruncate(fd.get(), static_cast<off_t>(seal_keep)) != 0) return sys_error("ftruncate " + path, errno);
  LANEFS_TRY(punch_fd(fd.get(), keep, chunk_size_ - keep, path));
  if (::fdatasync(fd.get()) != 0) return sys_error("fdatasync " + path, errno);
  return ok_status();
}

}  // namespace lanefs::backend
