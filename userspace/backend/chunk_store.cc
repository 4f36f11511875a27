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
#include "common/log.h"

namespace lanefs::backend {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

Status pwrite_all(int fd, const uint8_t* p, size_t n, off_t off, const std::string& path) {
  struct iovec v = {const_cast<uint8_t*>(p), n};
  return chunk_internal::pwritev_all(fd, &v, 1, static_cast<uint64_t>(off), n, path);
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

// Chunk files carry block CRCs since format 2; a store whose chunks have none
// would read as damaged everywhere, so it is refused by name instead.
Status check_format(const std::string& root) {
  const std::string marker = root + "/.format";
  constexpr std::string_view kFormat = "lanefs chunk store 2: crc32c per 4 KiB block\n";
  if (::access(marker.c_str(), F_OK) == 0) return ok_status();
  {
    DirPtr d(::opendir(root.c_str()));
    if (!d) return sys_error("opendir " + root, errno);
    while (dirent* e = ::readdir(d.get()))
      if (e->d_name[0] != '.')
        return make_error(Errc::kCorrupt, "chunk store " + root +
                                              " was written by a lanefsd without per-block checksums (no " +
                                              marker + "); copy its data out with that version");
  }
  int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return sys_error("open " + marker, errno);
  Status st = pwrite_all(fd, reinterpret_cast<const uint8_t*>(kFormat.data()), kFormat.size(), 0, marker);
  if (st.ok() && ::fsync(fd) != 0) st = sys_error("fsync " + marker, errno);
  ::close(fd);
  return st;
}

}  // namespace

Status chunk_internal::pwritev_all(int fd, const struct iovec* iov, unsigned iovcnt, uint64_t off, size_t total,
                                   const std::string& path) {
  struct iovec v[2] = {iov[0], iovcnt > 1 ? iov[1] : iovec{}};
  unsigned cnt = std::min(iovcnt, 2u);
  while (total > 0) {
    ssize_t n = ::pwritev(fd, v, static_cast<int>(cnt), static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("pwrite " + path, errno);
    }
    if (n == 0) return sys_error("pwrite " + path, EIO);
    total -= static_cast<size_t>(n);
    off += static_cast<uint64_t>(n);
    for (size_t k = static_cast<size_t>(n); k > 0;) {  // short write: drop what went out
      if (k >= v[0].iov_len) {
        k -= v[0].iov_len;
        v[0] = v[1];
        v[1] = {};
        --cnt;
      } else {
        v[0].iov_base = static_cast<uint8_t*>(v[0].iov_base) + k;
        v[0].iov_len -= k;
        k = 0;
      }
    }
  }
  return ok_status();
}

Status ChunkStore::Impl::check_read(ChunkStore& cs, ChunkFile& f, uint32_t off, uint32_t len, uint8_t* dst) {
  LANEFS_ASSIGN_OR_RETURN(int64_t bad, cs.crc_.check(f.fd, off, len, dst, f.path));
  return bad < 0 ? ok_status() : confirm_damage(cs, f, off, len, dst);
}

Status ChunkStore::Impl::read_checked(ChunkStore& cs, ChunkFile& f, uint32_t off, uint32_t len, uint8_t* dst) {
  LANEFS_ASSIGN_OR_RETURN(int64_t bad, cs.crc_.read_checked(f.fd, off, len, dst, f.path));
  return bad < 0 ? ok_status() : confirm_damage(cs, f, off, len, dst);
}

Status ChunkStore::Impl::confirm_damage(ChunkStore& cs, ChunkFile& f, uint32_t off, uint32_t len, uint8_t* dst) {
  int64_t bad = -1;
  {
    // A write may have come between the data and the slots we read: look
    // again with writers held off.
    std::lock_guard lk(f.crc_mu);
    std::memset(dst, 0, len);  // beyond the file's end: zeros
    LANEFS_TRY(pread_full(f.fd, dst, len, off, f.path));
    LANEFS_ASSIGN_OR_RETURN(bad, cs.crc_.check(f.fd, off, len, dst, f.path));
  }
  if (bad < 0) return ok_status();
  uint64_t n = cs.corrupt_blocks_.fetch_add(1, std::memory_order_relaxed);
  std::string what = "chunk " + f.path + " block " + std::to_string(bad) + " (byte " +
                     std::to_string(uint64_t(bad) * BlockCrc::kBlock) + " of the chunk) fails its CRC32C";
  // Every one counted; the log names the first 100 (a damaged block read in
  // a loop must not flood it).
  if (n < 100)
    LOG_ERROR("{}: reads of it get EIO, never its bytes ('lanefs fs scrub' lists every damaged block)", what);
  return make_error(Errc::kCorrupt, what);
}

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
  LANEFS_TRY(check_format(files->root()));
  std::unique_ptr<ChunkStore> cs(new ChunkStore(dir, chunk_size, std::move(files)));
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return sys_error("statfs " + dir, errno);
  cs->memory_backed_ = fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
  return cs;
}

ChunkStore::ChunkStore(std::string dir, uint32_t chunk_size, std::unique_ptr<ChunkFiles> files)
    : dir_(std::move(dir)),
      chunk_size_(chunk_size),
      files_(std::move(files)),
      // The slots start on the page after the seal area.
      crc_(chunk_size, (max_chunk_bytes() + BlockCrc::kBlock - 1) / BlockCrc::kBlock * BlockCrc::kBlock) {}

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
  s.corrupt_blocks = corrupt_blocks_.load(std::memory_order_relaxed);
  return s;
}

Status ChunkStore::datasync(ChunkFile& f) {
  if (::fdatasync(f.fd) == 0) return ok_status();
  int err = errno;
  f.sync_errno.store(err, std::memory_order_relaxed);
  return sys_error("fdatasync " + f.path, err);
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
  struct iovec iov = {const_cast<uint8_t*>(data.data()), data.size()};
  LANEFS_TRY(Impl::write_data(*this, *f, offset, &iov, 1, data.size()));
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
  if (f) return Impl::read_checked(*this, *f, offset, len, dst);
  std::memset(dst, 0, len);  // never written: a hole
  return ok_status();
}

Status ChunkStore::truncate(uint64_t ino, uint64_t index, uint32_t len) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, len, 0));
  if (len == 0) return files_->unlink(ino, index);
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();  // nothing stored: already reads as zeros
  // The bytes from len on read as zeros after: deallocated in place, since
  // the block CRCs live past the data (the file keeps its size).
  LANEFS_TRY(Impl::update(*this, *f, len, chunk_size_ - len, nullptr, 0,
                          [&] { return punch_fd(f.fd(), len, chunk_size_ - len, f->path); }));
  return datasync(*f);
}

Status ChunkStore::punch(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, offset, len));
  if (len == 0) return ok_status();
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();
  LANEFS_TRY(Impl::update(*this, *f, offset, len, nullptr, 0, [&] { return punch_fd(f.fd(), offset, len, f->path); }));
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
  const std::string& path = f->path;
  // Data first, then seals, then one (shared) fdatasync for both: the write
  // is acknowledged only when ciphertext and seals are durable together.
  // The CRCs cover the ciphertext, so damage is found here as well as by the
  // client's seal check.
  off_t seal_off = static_cast<off_t>(chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes);
  struct iovec iov = {const_cast<uint8_t*>(data.data()), data.size()};
  LANEFS_TRY(Impl::update(*this, *f, offset, static_cast<uint32_t>(data.size()), &iov, 1, [&]() -> Status {
    LANEFS_TRY(pwrite_all(f.fd(), data.data(), data.size(), offset, path));
    return pwrite_all(f.fd(), seals.data(), seals.size(), seal_off, path);
  }));
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
  const std::string& path = f->path;
  LANEFS_TRY(Impl::read_checked(*this, *f, offset, len, out->data()));
  off_t seal_off = static_cast<off_t>(chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes);
  return pread_full(f.fd(), out->data() + len, seal_len, seal_off, path);
}

Status ChunkStore::punch_sealed(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len) {
  LANEFS_TRY(check_sealed(chunk_size_, offset, len));
  if (len == 0) return ok_status();
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();
  const std::string& path = f->path;
  // Seals first: once a seal is zero the block reads as a hole whatever
  // state its data is in.
  LANEFS_TRY(Impl::update(*this, *f, offset, len, nullptr, 0, [&]() -> Status {
    LANEFS_TRY(punch_fd(f.fd(), chunk_size_ + uint64_t{offset} / kSealBlock * kSealBytes,
                        uint64_t{len} / kSealBlock * kSealBytes, path));
    return punch_fd(f.fd(), offset, len, path);
  }));
  return datasync(*f);
}

Status ChunkStore::truncate_sealed(uint64_t ino, uint64_t index, uint32_t len) {
  LANEFS_TRY(chunk_internal::check_range(chunk_size_, len, 0));
  if (len == 0) return truncate(ino, index, 0);
  if (chunk_size_ % kSealBlock != 0) return check_sealed(chunk_size_, 0, kSealBlock - 1);
  uint64_t keep = (uint64_t{len} + kSealBlock - 1) / kSealBlock * kSealBlock;  // whole blocks kept
  LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
  if (!f) return ok_status();
  const std::string& path = f->path;
  uint64_t seal_keep = chunk_size_ + keep / kSealBlock * kSealBytes;
  uint64_t seal_end = max_chunk_bytes();
  // The removed blocks' data and seals are deallocated in place (the block
  // CRCs live past the seals: the file keeps its size).
  auto cut = static_cast<uint32_t>(chunk_size_ - keep);
  LANEFS_TRY(Impl::update(*this, *f, static_cast<uint32_t>(keep), cut, nullptr, 0, [&]() -> Status {
    LANEFS_TRY(punch_fd(f.fd(), seal_keep, seal_end - seal_keep, path));
    return punch_fd(f.fd(), keep, cut, path);
  }));
  return datasync(*f);
}

}  // namespace lanefs::backend
