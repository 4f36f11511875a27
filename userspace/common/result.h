// Result<T>: a value or an Error (code + one-line message). gcc 12 has no
// std::expected in C++20, so this is the project's small replacement.
// No exceptions on the data path: functions that can fail return Result.
#pragma once

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/errors.h"

namespace lanefs {

struct Error {
  Errc code = Errc::kInternal;
  std::string message;  // one line, names the failing call or object

  // "message: text of code" unless the message already says it all.
  std::string to_string() const;
};

// Builds an Error; the message is free text ("open /x: permission denied").
inline Error make_error(Errc code, std::string message = {}) {
  return Error{code, std::move(message)};
}
// Error from errno after a failed system call: "what: strerror(err)".
Error sys_error(std::string_view what, int err);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}            // NOLINT
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }
  Errc code() const noexcept { return ok() ? Errc::kOk : std::get<1>(v_).code; }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { assert(!ok_); return err_; }
  Error&& error() && { assert(!ok_); return std::move(err_); }
  Errc code() const noexcept { return ok_ ? Errc::kOk : err_.code; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;
inline Status ok_status() { return Status(); }

}  // namespace lanefs

// Propagate an error from an expression returning Result/Status.
#define LANEFS_TRY(expr)                                   \
  do {                                                     \
    auto&& lanefs_try_r_ = (expr);                         \
    if (!lanefs_try_r_.ok()) return std::move(lanefs_try_r_).error(); \
  } while (0)

#define LANEFS_CONCAT_INNER(a, b) a##b
#define LANEFS_CONCAT(a, b) LANEFS_CONCAT_INNER(a, b)
// LANEFS_ASSIGN_OR_RETURN(auto x, f()); declares x from f()'s value.
#define LANEFS_ASSIGN_OR_RETURN(decl, expr)                                  \
  auto LANEFS_CONCAT(lanefs_r_, __LINE__) = (expr);                          \
  if (!LANEFS_CONCAT(lanefs_r_, __LINE__).ok())                              \
    return std::move(LANEFS_CONCAT(lanefs_r_, __LINE__)).error();            \
  decl = std::move(LANEFS_CONCAT(lanefs_r_, __LINE__)).value()
