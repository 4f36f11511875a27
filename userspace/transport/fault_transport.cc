#include "transport/fault_transport.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/clock.h"

namespace lanefs::transport {
namespace {

// How often flush() retries an inner transport that takes nothing (ring
// full) before it gives up on the rest of the batch.
constexpr int kMaxIdleRetries = 16;

}  // namespace

FaultTransport::FaultTransport(std::unique_ptr<Transport> inner, const FaultConfig& faults)
    : inner_(std::move(inner)) {
  set_faults(faults);
}

void FaultTransport::set_faults(const FaultConfig& faults) {
  faults_ = faults;
  rng_ = faults.seed;
}

// splitmix64: tiny, fast, and good enough to make fault decisions look
// independent; the same seed replays the same decisions.
uint64_t FaultTransport::next_random() {
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool FaultTransport::roll(double pct) {
  if (pct <= 0) return false;
  if (pct >= 100) return true;
  return double(next_random() >> 11) * 0x1.0p-53 * 100.0 < pct;
}

std::vector<uint8_t> FaultTransport::take_buffer() {
  if (spare_.empty()) return {};
  std::vector<uint8_t> b = std::move(spare_.back());
  spare_.pop_back();
  return b;
}

std::vector<uint8_t> FaultTransport::copy_of(const TxDatagram& d) {
  std::vector<uint8_t> b = take_buffer();
  b.resize(d.size());
  copy_datagram(d, b.data());
  return b;
}

void FaultTransport::release_held(uint64_t now_ns, bool after_next) {
  size_t keep = 0;
  for (size_t i = 0; i < held_.size(); ++i) {
    Held& h = held_[i];
    if (h.due_ns <= now_ns || (after_next && h.after_next)) {
      // Moving the vector keeps its heap buffer, so the pointer stays valid.
      out_.push_back(
          TxDatagram{h.dst, h.data.data(), static_cast<uint32_t>(h.data.size()), nullptr, 0, h.src});
      in_flight_.push_back(std::move(h.data));
      continue;
    }
    if (keep != i) held_[keep] = std::move(h);
    ++keep;
  }
  held_.resize(keep);
}

Status FaultTransport::flush() {
  size_t off = 0;
  int idle = 0;
  Status st;
  while (off < out_.size()) {
    auto r = inner_->tx_burst(std::span<const TxDatagram>(out_).subspan(off));
    if (!r.ok()) {
      st = std::move(r).error();
      break;
    }
    if (*r == 0 && ++idle > kMaxIdleRetries) break;
    off += *r;
  }
  refused_ += out_.size() - off;
  out_.clear();
  for (auto& b : in_flight_) spare_.push_back(std::move(b));
  in_flight_.clear();
  return st;
}

Result<size_t> FaultTransport::tx_burst(std::span<const TxDatagram> pkts) {
  // Pass-through keeps the inner transport's exact "ring full" semantics.
  if (!faults_.any() && held_.empty()) return inner_->tx_burst(pkts);

  const uint64_t now = mono_ns();
  const uint64_t delay_ns = uint64_t{faults_.delay_us} * 1000;
  release_held(now, false);
  for (const TxDatagram& p : pkts) {
    if (roll(faults_.drop_pct)) {
      ++faults_stats_.fault_dropped;
      continue;
    }
    TxDatagram d = p;
    const uint64_t len = p.size();
    if (len > 0 && roll(faults_.corrupt_pct)) {
      std::vector<uint8_t> b = copy_of(p);
      b[next_random() % len] ^= static_cast<uint8_t>(1 + next_random() % 255);
      d = TxDatagram{p.dst, b.data(), static_cast<uint32_t>(b.size()), nullptr, 0, p.src};
      in_flight_.push_back(std::move(b));
      ++faults_stats_.fault_corrupted;
    }
    int copies = 1;
    if (roll(faults_.duplicate_pct)) {
      copies = 2;
      ++faults_stats_.fault_duplicated;
    }
    if (roll(faults_.delay_pct)) {
      for (int c = 0; c < copies; ++c)
        held_.push_back(Held{d.dst, now + delay_ns, false, copy_of(d), d.src});
      ++faults_stats_.fault_delayed;
      continue;
    }
    const bool holding =
        std::any_of(held_.begin(), held_.end(), [](const Held& h) { return h.after_next; });
    if (!holding && roll(faults_.reorder_pct)) {
      for (int c = 0; c < copies; ++c)
        held_.push_back(Held{d.dst, now + delay_ns, true, copy_of(d), d.src});
      ++faults_stats_.fault_reordered;
      continue;
    }
    for (int c = 0; c < copies; ++c) out_.push_back(d);
    release_held(now, true);  // a reorder-held datagram goes right after this one
  }
  LANEFS_TRY(flush());
  return pkts.size();
}

Result<size_t> FaultTransport::rx_burst(std::span<RxDatagram> out) {
  if (!held_.empty()) {
    release_held(mono_ns(), false);
    if (!out_.empty()) LANEFS_TRY(flush());
  }
  return inner_->rx_burst(out);
}

const TransportStats& FaultTransport::stats() const noexcept {
  merged_ = inner_->stats();
  merged_.tx_dropped += refused_;
  merged_.fault_dropped = faults_stats_.fault_dropped;
  merged_.fault_duplicated = faults_stats_.fault_duplicated;
  merged_.fault_delayed = faults_stats_.fault_delayed;
  merged_.fault_reordered = faults_stats_.fault_reordered;
  merged_.fault_corrupted = faults_stats_.fault_corrupted;
  return merged_;
}

}  // namespace lanefs::transport
