// Little-endian binary encoder/decoder for message bodies. The decoder never
// reads past its input: every getter fails (returns false / sets !ok()) on a
// short or malformed buffer, so hostile input cannot crash a reader.
// Not thread-safe; one per message.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lanefs {

// Appends to a std::vector, or writes into a fixed span (no allocation: a
// data-path request's fixed fields); writing past a span's end sets !ok()
// and writes nothing more.
class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>* out) : out_(out) {}
  explicit Encoder(std::span<uint8_t> fixed) : fixed_(fixed) {}
  void u8(uint8_t v) { put(&v, 1); }
  void u16(uint16_t v) { put(&v, 2); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void i32(int32_t v) { put(&v, 4); }
  void i64(int64_t v) { put(&v, 8); }
  // Length-prefixed (u32) byte string.
  void bytes(std::span<const uint8_t> b) {
    u32(static_cast<uint32_t>(b.size()));
    put(b.data(), b.size());
  }
  void str(std::string_view s) { bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
  void raw(const void* p, size_t n) { put(p, n); }
  // Bytes written so far (fixed mode), and whether everything fit.
  size_t size() const { return out_ ? out_->size() : used_; }
  bool ok() const { return ok_; }

 private:
  void put(const void* p, size_t n) {
    if (out_) {
      size_t at = out_->size();
      out_->resize(at + n);
      if (n) std::memcpy(out_->data() + at, p, n);
      return;
    }
    if (!ok_ || fixed_.size() - used_ < n) {
      ok_ = false;
      return;
    }
    if (n) std::memcpy(fixed_.data() + used_, p, n);
    used_ += n;
  }
  std::vector<uint8_t>* out_ = nullptr;
  std::span<uint8_t> fixed_;
  size_t used_ = 0;
  bool ok_ = true;
};

class Decoder {
 public:
  explicit Decoder(std::span<const uint8_t> in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  uint8_t u8() { uint8_t v = 0; get(&v, 1); return v; }
  uint16_t u16() { uint16_t v = 0; get(&v, 2); return v; }
  uint32_t u32() { uint32_t v = 0; get(&v, 4); return v; }
  uint64_t u64() { uint64_t v = 0; get(&v, 8); return v; }
  int32_t i32() { int32_t v = 0; get(&v, 4); return v; }
  int64_t i64() { int64_t v = 0; get(&v, 8); return v; }
  // Length-prefixed bytes as a view into the input (valid while input lives).
  std::span<const uint8_t> bytes(size_t max_len = SIZE_MAX) {
    uint32_t n = u32();
    if (!ok_ || n > remaining() || n > max_len) { ok_ = false; return {}; }
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::string str(size_t max_len = 1 << 20) {
    auto b = bytes(max_len);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::span<const uint8_t> rest() { auto s = in_.subspan(pos_); pos_ = in_.size(); return s; }

 private:
  void get(void* p, size_t n) {
    if (!ok_ || remaining() < n) { ok_ = false; std::memset(p, 0, n); return; }
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace lanefs
