// Brief busy-polling, rationed per process.
//
// A thread that waits for a datagram may poll for a few microseconds before
// it sleeps: on an idle core that saves the wake-up (~5-20 µs here). On a
// machine whose cores are all busy, a spinning thread only steals the CPU
// the awaited work needs, so at most `slots` threads of a process spin at
// once (ClientOptions/ServerOptions::spin_slots; default a quarter of the
// usable CPUs, which is none on a 2-core machine).
#pragma once

#include <atomic>
#include <cstdint>

namespace lanefs::rpc {

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

// Resolves the "auto" (-1) slot count to usable_cpus() / 4.
uint32_t spin_slots_for(int configured);

class SpinSlots {
 public:
  explicit SpinSlots(uint32_t slots) : slots_(slots) {}
  // True if the caller may spin now; it must give() the slot back before
  // it sleeps (a holder keeps its slot across consecutive polls).
  bool take() {
    uint32_t n = used_.load(std::memory_order_relaxed);
    while (n < slots_)
      if (used_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    return false;
  }
  void give() { used_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  const uint32_t slots_;
  std::atomic<uint32_t> used_{0};
};

// One waiter's hold on a slot: spin() says whether to poll once more.
class SpinHold {
 public:
  explicit SpinHold(SpinSlots* slots) : slots_(slots) {}
  ~SpinHold() { release(); }
  SpinHold(const SpinHold&) = delete;
  SpinHold& operator=(const SpinHold&) = delete;
  bool spin() {
    if (!held_ && slots_) held_ = slots_->take();
    if (held_) cpu_relax();
    return held_;
  }
  void release() {
    if (held_) slots_->give();
    held_ = false;
  }

 private:
  SpinSlots* slots_;
  bool held_ = false;
};

}  // namespace lanefs::rpc
