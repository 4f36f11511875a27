// Join: waits for a known number of asynchronous completions (chunk RPCs
// issued in parallel) and keeps the first error. Thread-safe: done() may be
// called from any thread (RPC loop callbacks); wait() blocks the caller.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "common/result.h"

namespace lanefs::client {

// Waits for a set of asynchronous chunk RPCs; keeps the first error.
class Join {
 public:
  explicit Join(size_t n) : left_(n) {}
  void done(Status s) {
    std::lock_guard lk(mu_);
    if (!s.ok() && first_.ok()) first_ = std::move(s);
    if (--left_ == 0) cv_.notify_all();
  }
  Status wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return left_ == 0; });
    return first_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t left_;
  Status first_;
};

}  // namespace lanefs::client
