// InlineFn<R(Args...), N>: a move-only callable with N bytes of inline
// storage and no heap allocation, for completions on the data path (a disk
// read finishing, an RPC reply arriving) where std::function would allocate
// for any capture larger than two pointers.
//
// A callable that does not fit is a compile error (static_assert), never a
// silent allocation. Not thread-safe; invoke from the thread that owns it.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace lanefs {

template <class Sig, size_t N = 48>
class InlineFn;

template <class R, class... Args, size_t N>
class InlineFn<R(Args...), N> {
 public:
  InlineFn() noexcept = default;
  InlineFn(std::nullptr_t) noexcept {}  // NOLINT: implicit like std::function

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, InlineFn> && std::is_invocable_r_v<R, D&, Args...>>>
  InlineFn(F&& f) noexcept(std::is_nothrow_constructible_v<D, F&&>) {  // NOLINT: implicit by design
    static_assert(sizeof(D) <= N, "capture too large for InlineFn: raise N or capture less");
    static_assert(alignof(D) <= alignof(std::max_align_t), "over-aligned capture");
    static_assert(std::is_nothrow_move_constructible_v<D>, "InlineFn needs a nothrow-movable callable");
    ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
    ops_ = &kOps<D>;
  }

  InlineFn(InlineFn&& o) noexcept { take(o); }
  InlineFn& operator=(InlineFn&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  InlineFn(const InlineFn&) = delete;
  InlineFn& operator=(const InlineFn&) = delete;
  ~InlineFn() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  R operator()(Args... args) { return ops_->call(buf_, std::forward<Args>(args)...); }

  void reset() noexcept {
    if (ops_) ops_->destroy(buf_);
    ops_ = nullptr;
  }

 private:
  struct Ops {
    R (*call)(void*, Args&&...);
    void (*move)(void* dst, void* src) noexcept;  // move-constructs dst from src, destroys src
    void (*destroy)(void*) noexcept;
  };
  template <class D>
  static constexpr Ops kOps = {
      [](void* p, Args&&... a) -> R { return (*static_cast<D*>(p))(std::forward<Args>(a)...); },
      [](void* dst, void* src) noexcept {
        ::new (dst) D(std::move(*static_cast<D*>(src)));
        static_cast<D*>(src)->~D();
      },
      [](void* p) noexcept { static_cast<D*>(p)->~D(); }};

  void take(InlineFn& o) noexcept {
    if (!o.ops_) return;
    o.ops_->move(buf_, o.buf_);
    ops_ = o.ops_;
    o.ops_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char buf_[N];
  const Ops* ops_ = nullptr;
};

}  // namespace lanefs
