#include "backend/block_crc.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "backend/chunk_store_internal.h"
#include "common/crc32c.h"

namespace lanefs::backend {
namespace {

constexpr uint32_t kBlock = BlockCrc::kBlock;
alignas(64) const uint8_t kZeros[kBlock] = {};

// The whole block at `off`; bytes beyond the file's end are zeros.
Status pread_zero(int fd, uint8_t* p, size_t n, uint64_t off, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, p + got, n - got, static_cast<off_t>(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys_error("pread " + path, errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  std::memset(p + got, 0, n - got);
  return ok_status();
}

Status pwrite_all(int fd, const std::vector<uint32_t>& v, uint64_t off, const std::string& path) {
  struct iovec io = {const_cast<uint32_t*>(v.data()), v.size() * 4};
  return chunk_internal::pwritev_all(fd, &io, 1, off, io.iov_len, path);
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i += kBlock) {
    size_t k = std::min<size_t>(kBlock, n - i);
    if (std::memcmp(p + i, kZeros, k) != 0) return false;
  }
  return true;
}

// One block's worth of scratch per thread: a partial block's old bytes.
uint8_t* scratch() {
  alignas(64) thread_local uint8_t buf[kBlock];
  return buf;
}

// Walks the bytes a write brings (or zeros), feeding them to a CRC.
class Source {
 public:
  Source(const struct iovec* iov, unsigned cnt) : iov_(iov), cnt_(cnt) {}
  uint32_t extend(uint32_t crc, size_t n) {
    if (iov_ == nullptr) {
      for (size_t k; n > 0; n -= k) crc = crc32c_extend(crc, kZeros, k = std::min<size_t>(n, kBlock));
      return crc;
    }
    while (n > 0 && i_ < cnt_) {
      size_t k = std::min(n, iov_[i_].iov_len - pos_);
      crc = crc32c_extend(crc, static_cast<const uint8_t*>(iov_[i_].iov_base) + pos_, k);
      n -= k;
      pos_ += k;
      if (pos_ == iov_[i_].iov_len) ++i_, pos_ = 0;
    }
    return crc;
  }

 private:
  const struct iovec* iov_;
  unsigned cnt_;
  unsigned i_ = 0;
  size_t pos_ = 0;
};

}  // namespace

uint32_t BlockCrc::block_len(uint32_t b) const {
  return std::min<uint32_t>(kBlock, chunk_size_ - b * kBlock);
}

Status BlockCrc::compute(int fd, uint32_t off, uint32_t len, const struct iovec* data, unsigned iovcnt,
                         Update* u, const std::string& path) const {
  u->crcs.clear();
  u->first = off / kBlock;
  if (len == 0) return ok_status();
  const uint32_t last = (off + len - 1) / kBlock;
  Source src(data, iovcnt);
  uint8_t* old = scratch();
  for (uint32_t b = u->first; b <= last; ++b) {
    const uint64_t start = uint64_t{b} * kBlock;
    const uint32_t blen = block_len(b);
    const auto s = static_cast<uint32_t>(std::max<uint64_t>(off, start) - start);
    const auto e = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{off} + len, start + blen) - start);
    // A partial block keeps the bytes around the new ones: read them.
    if (s > 0 || e < blen) LANEFS_TRY(pread_zero(fd, old, blen, start, path));
    uint32_t crc = crc32c_extend(0, old, s);
    crc = src.extend(crc, e - s);
    crc = crc32c_extend(crc, old + e, blen - e);
    u->crcs.push_back(crc);
  }
  return ok_status();
}

Status BlockCrc::resync(int fd, uint32_t off, uint32_t len, Update* u, const std::string& path) const {
  u->crcs.clear();
  u->first = off / kBlock;
  if (len == 0) return ok_status();
  uint8_t* now = scratch();
  for (uint32_t b = u->first; b <= (off + len - 1) / kBlock; ++b) {
    LANEFS_TRY(pread_zero(fd, now, block_len(b), uint64_t{b} * kBlock, path));
    u->crcs.push_back(crc32c(now, block_len(b)));
  }
  return ok_status();
}

// Slots are stored in the CPU's byte order (little-endian on every CPU lanefs
// builds for).
Status BlockCrc::stage(int fd, const Update& u, const std::string& path) const {
  if (u.crcs.empty()) return ok_status();
  return pwrite_all(fd, u.crcs, base_ + uint64_t{blocks()} * 4 + uint64_t{u.first} * 4, path);
}

Status BlockCrc::settle(int fd, const Update& u, const std::string& path) const {
  if (u.crcs.empty()) return ok_status();
  return pwrite_all(fd, u.crcs, base_ + uint64_t{u.first} * 4, path);
}

Status BlockCrc::read_slots(int fd, uint32_t off, uint32_t len, Slots* s, const std::string& path) const {
  s->first = off / kBlock;
  const uint32_t count = (off + len - 1) / kBlock - s->first + 1;
  s->a.resize(count);
  s->b.resize(count);
  LANEFS_TRY(pread_zero(fd, reinterpret_cast<uint8_t*>(s->a.data()), size_t{count} * 4,
                        base_ + uint64_t{s->first} * 4, path));
  return pread_zero(fd, reinterpret_cast<uint8_t*>(s->b.data()), size_t{count} * 4,
                    base_ + uint64_t{blocks()} * 4 + uint64_t{s->first} * 4, path);
}

Result<int64_t> BlockCrc::check_blocks(int fd, uint32_t off, uint32_t len, uint8_t* data, const Slots& slots,
                                       const std::string& path) const {
  const uint32_t first = off / kBlock, last = (off + len - 1) / kBlock;
  uint8_t* whole = scratch();
  for (uint32_t b = first; b <= last; ++b) {
    const uint64_t start = uint64_t{b} * kBlock;
    const uint32_t blen = block_len(b);
    const auto s = static_cast<uint32_t>(std::max<uint64_t>(off, start) - start);
    const auto e = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{off} + len, start + blen) - start);
    const bool partial = s > 0 || e < blen;
    if (partial) LANEFS_TRY(pread_zero(fd, whole, blen, start, path));
    const uint8_t* p = partial ? whole : data + (start - off);
    const uint32_t crc = crc32c(p, blen), a = slots.a[b - slots.first], bb = slots.b[b - slots.first];
    // A zero slot is "no CRC yet": a block that was a hole (A still 0, maybe
    // with a new CRC staged in B) may still be one.
    if (crc != a && crc != bb && !((a == 0 || bb == 0) && all_zero(p, blen))) return int64_t{b};
    if (partial) std::memcpy(data + (start + s - off), whole + s, e - s);
  }
  return int64_t{-1};
}

Result<int64_t> BlockCrc::check(int fd, uint32_t off, uint32_t len, uint8_t* data, const std::string& path) const {
  if (len == 0) return int64_t{-1};
  thread_local Slots slots;  // per thread, kept between calls: no allocation once warm
  LANEFS_TRY(read_slots(fd, off, len, &slots, path));
  return check_blocks(fd, off, len, data, slots, path);
}

Result<int64_t> BlockCrc::read_checked(int fd, uint32_t off, uint32_t len, uint8_t* data,
                                       const std::string& path) const {
  if (len == 0) return int64_t{-1};
  thread_local Slots slots;
  LANEFS_TRY(read_slots(fd, off, len, &slots, path));
  // 64 KiB slices (block aligned), each checked right after it was read,
  // while it is still in the CPU's cache: a 1 MiB read checked after the
  // whole pread runs its CRC pass over bytes already evicted.
  constexpr uint32_t kSlice = 16 * kBlock;
  for (uint32_t pos = off; pos < off + len;) {
    const uint32_t end = std::min<uint32_t>(off + len, (pos / kSlice + 1) * kSlice);
    LANEFS_TRY(pread_zero(fd, data + (pos - off), end - pos, pos, path));
    LANEFS_ASSIGN_OR_RETURN(int64_t bad, check_blocks(fd, pos, end - pos, data + (pos - off), slots, path));
    if (bad >= 0) return bad;
    pos = end;
  }
  return int64_t{-1};
}

}  // namespace lanefs::backend
