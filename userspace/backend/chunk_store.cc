// The blocking half of ChunkStore (worker threads); the io_uring half is
// chunk_store_async.cc, the fd cache chunk_files.cc.
#include "backend/chunk_store.h"

#include <linux/magic.h>
#include <sys/vfs.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "backend/chunk_files.h"
#include "backend/chunk_store_internal.h"

namespace lanefs::backend {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

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

Status pread_full(int fd, uint8_t* p, size_t n, off_t off, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, off + static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys_error("pread " + path, errno);
    }
    if (r == 0) break;  // EOF: the caller decides what the rest is
    done += static_cast<size_t>(r);
  }
  return ok_status();
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
  LANEFS_TRY(chunk_internal::check_range(chunk_size, offset, len));
  if (chunk_size % ChunkStore::kSealBlock != 0 || offset % ChunkStore::kSealBlock != 0 ||
      len % ChunkStore::kSealBlock != 0)
    return make_error(Errc::kInvalid, "sealed range " + std::to_string(offset) + "+" +
                                          std::to_string(len) +
                                          " is not aligned to 4 KiB blocks (chunk size " +
                                          std::to_string(chunk_size) + ")");
  return ok_status();
}

}  // namespace

Status chunk_internal::check_range(uint32_t chunk_size, uint64_t offset, uint64_t len) {
  if (offset + len > chunk_size) {
    return make_error(Errc::kInvalid, "range " + std::to_string(offset) + "+" +
                                          std::to_string(len) + " exceeds chunk size " +
                                          std::to_string(chunk_size));
  }
  return ok_status();
}

Result<std::unique_ptr<ChunkStore>> ChunkStore::open(const std::string& dir, uint32_t chunk_size,
                                                     size_t max_open_files) {
  if (chunk_size == 0) return make_error(Errc::kInvalid, "chunk size 0");
  if (dir.empty()) return make_error(Errc::kInvalid, "empty chunk store directory");
  LANEFS_ASSIGN_OR_RETURN(auto files, ChunkFiles::open(dir, max_open_files));
  std::unique_ptr<ChunkStore> cs(new ChunkStore(dir, chunk_size, std::move(files)));
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return sys_error("statfs " + dir, errno);
  cs->memory_backed_ = fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
  return cs;
}

ChunkStore::ChunkStore(std::string dir, uint32_t chunk_size, std::unique_ptr<ChunkFiles> files)
    : dir_(std::move(dir)), chunk_size_(chunk_size), files_(std::move(files)) {}

ChunkStore::~ChunkStore() = default;

std::string ChunkStore::path_of(uint64_t ino, uint64_t index) const {
  return files_->path_of(ino, index);
}

ChunkStore::Stats ChunkStore::stats() const {
  Stats s;
  s.writes = writes_.load(std::memory_order_relaxed);
  s.syncs = syncs_.load(std::memory_order_relaxed);
  s.dir_syncs = dir_syncs_.load(std::memory_order_relaxed);
  s.open_files = files_->cached();
  return s;
}

Status ChunkStore::datasync(ChunkFile& f) {
  if (::fdatasync(f.fd) == 0) return ok_status();
  int err = errno;
  f.sync_errno.store(err, std::memory_order_relaxed);
  return sys_error("fdatasync " + path_of(f.ino, f.index), err);
}

// Makes the writes this thread just made through `f` durable: a shared
// fdatasync, then the directory entry when the file is new.
Status ChunkStore::Impl::sync_blocking(ChunkStore& cs, ChunkFile& f) {
  bool synced = false;
  LANEFS_TRY(cs.files_->sync_written(f, &synced));
  if (synced) cs.syncs_.fetch_add(1, std::memory_order_relaxed);
  if (cs.files_->dir_durable(f)) return ok_status();
  cs.dir_syncs_.fetch_add(1, std::memory_order_relaxed);
  return cs.files_->sync_dir(f);
}

Status ChunkStore::write(uint64_t ino, uint64_t index, uint32_t offset,
                         std::span<const uint8_t> data) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, offset, data.size()));
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/true));
  LANEFS_TRY(pwrite_all(f.fd(), data.data(), data.size(), offset, path_of(ino, index)));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return Impl::sync_blocking(*this, *f);
}

Status ChunkStore::read(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                        std::vector<uint8_t>* out) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, offset, len));
  out->resize(len);
  return read_into(ino, index, offset, len, out->data());
}

Status ChunkStore::read_into(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                             uint8_t* dst) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, offset, len));
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  size_t done = 0;
  while (f && done < len) {
    ssize_t r = ::pread(f.fd(), dst + done, len - done, offset + done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys_error("pread " + path_of(ino, index), errno);
    }
    if (r == 0) break;  // EOF
    done += static_cast<size_t>(r);
  }
  // Never written (a hole) or beyond the chunk file's end: zeros.
  std::memset(dst + done, 0, len - done);
  return ok_status();
}

Status ChunkStore::truncate(uint64_t ino, uint64_t index, uint32_t len) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, len, 0));
  if (len == 0) return files_->unlink(ino, index);
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();  // nothing stored: already reads as zeros
  if (::ftruncate(f.fd(), len) != 0) return sys_error("ftruncate " + path_of(ino, index), errno);
  return datasync(*f);
}

Status ChunkStore::punch(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, offset, len));
  if (len == 0) return ok_status();
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();
  LANEFS_TRY(punch_fd(f.fd(), offset, len, path_of(ino, index)));
  return datasync(*f);
}

Status ChunkStore::remove_from(uint64_t ino, uint64_t first_index) {
  return files_->remove_from(ino, first_index);
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
  return sum_blocks(files_->ino_dir(ino));
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
  const std::string& root = files_->root();
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
Status ChunkStore::write_sealed(uint64_t ino, uint64_t index, uint32_t offset, std::span<const uint8_t> data,
                                std::span<const uint8_t> seals) {
  LANEFS_TRY(check_sealed(chunk_size_, offset, data.size()));
  if (seals.size() != data.size() / kSealBlock * kSealBytes)
    return make_error(Errc::kInvalid, "sealed write: " + std::to_string(seals.size()) + " seal bytes for " +
                                          std::to_string(data.size()) + " data bytes");
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/true));
  std::string path = path_of(ino, index);
  // Data first, then seals, then one (shared) fdatasync for both: the write
  // is acknowledged only when ciphertext and seals are durable together.
  LANEFS_TRY(pwrite_all(f.fd(), data.data(), data.size(), offset, path));
  off_t seal_off = static_cast<off_t>(chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes);
  LANEFS_TRY(pwrite_all(f.fd(), seals.data(), seals.size(), seal_off, path));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return Impl::sync_blocking(*this, *f);
}

Status ChunkStore::read_sealed(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                               std::vector<uint8_t>* out) {
  LANEFS_TRY(check_sealed(chunk_size_, offset, len));
  size_t seal_len = size_t{len} / kSealBlock * kSealBytes;
  out->assign(size_t{len} + seal_len, 0);
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();  // never written: holes, zero seals
  std::string path = path_of(ino, index);
  LANEFS_TRY(pread_full(f.fd(), out->data(), len, offset, path));
  off_t seal_off = static_cast<off_t>(chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes);
  return pread_full(f.fd(), out->data() + len, seal_len, seal_off, path);
}

Status ChunkStore::punch_sealed(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len) {
  LANEFS_TRY(check_sealed(chunk_size_, offset, len));
  if (len == 0) return ok_status();
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();
  std::string path = path_of(ino, index);
  // Seals first: once a seal is zero the block reads as a hole whatever
  // state its data is in.
  LANEFS_TRY(punch_fd(f.fd(), chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes,
                      uint64_t{len} / kSealBlock * kSealBytes, path));
  LANEFS_TRY(punch_fd(f.fd(), offset, len, path));
  return datasync(*f);
}

Status ChunkStore::truncate_sealed(uint64_t ino, uint64_t index, uint32_t len) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, len, 0));
  if (len == 0) return truncate(ino, index, 0);
  if (chunk_size_ % kSealBlock != 0) return check_sealed(chunk_size_, 0, kSealBlock - 1);
  uint64_t keep = (uint64_t{len} + kSealBlock - 1) / kSealBlock * kSealBlock;  // whole blocks kept
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();
  std::string path = path_of(ino, index);
  uint64_t seal_keep = chunk_size_ + keep / kSealBlock * kSealBytes;
  // The seal area ends the file: cutting the file there drops the seals of
  // the removed blocks; their data is deallocated in place.
  if (::ftruncate(f.fd(), static_cast<off_t>(seal_keep)) != 0)
    return sys_error("ftruncate " + path, errno);
  LANEFS_TRY(punch_fd(f.fd(), keep, chunk_size_ - keep, path));
  return datasync(*f);
}

}  // namespace lanefs::backend
