// MsgBuffer: a byte buffer for message bodies on the data path. Unlike
// std::vector<uint8_t>, growing it leaves the new bytes uninitialized (the
// caller is about to overwrite them: a read lands there), and clear() keeps
// the capacity, so a buffer reused for every request of a slot allocates
// only while it grows to the largest message it has carried.
//
// Not thread-safe. Contents are moved, never shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

namespace lanefs {

class MsgBuffer {
 public:
  MsgBuffer() = default;
  MsgBuffer(MsgBuffer&& o) noexcept
      : p_(std::move(o.p_)), size_(std::exchange(o.size_, 0)), cap_(std::exchange(o.cap_, 0)) {}
  MsgBuffer& operator=(MsgBuffer&& o) noexcept {
    p_ = std::move(o.p_);
    size_ = std::exchange(o.size_, 0);
    cap_ = std::exchange(o.cap_, 0);
    return *this;
  }
  MsgBuffer(const MsgBuffer&) = delete;
  MsgBuffer& operator=(const MsgBuffer&) = delete;

  uint8_t* data() noexcept { return p_.get(); }
  const uint8_t* data() const noexcept { return p_.get(); }
  size_t size() const noexcept { return size_; }
  size_t capacity() const noexcept { return cap_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<uint8_t> span() noexcept { return {p_.get(), size_}; }
  std::span<const uint8_t> span() const noexcept { return {p_.get(), size_}; }

  // Sets the size to n; bytes beyond the old size are uninitialized. Keeps
  // the contents up to min(old size, n).
  void resize_uninit(size_t n) {
    if (n > cap_) grow(n);
    size_ = n;
  }
  void clear() noexcept { size_ = 0; }
  // Frees the storage (a buffer that grew for a rare huge message).
  void release() noexcept {
    p_.reset();
    size_ = cap_ = 0;
  }
  void assign(std::span<const uint8_t> b) {
    resize_uninit(b.size());
    if (!b.empty()) std::memcpy(p_.get(), b.data(), b.size());
  }
  void append(const void* src, size_t n) {
    size_t at = size_;
    resize_uninit(at + n);
    if (n) std::memcpy(p_.get() + at, src, n);
  }

 private:
  void grow(size_t n) {
    size_t cap = cap_ ? cap_ : 256;
    while (cap < n) cap *= 2;
    std::unique_ptr<uint8_t[]> q(new uint8_t[cap]);  // default-initialized: no zero fill
    if (size_) std::memcpy(q.get(), p_.get(), size_);
    p_ = std::move(q);
    cap_ = cap;
  }
  std::unique_ptr<uint8_t[]> p_;
  size_t size_ = 0, cap_ = 0;
};

}  // namespace lanefs
