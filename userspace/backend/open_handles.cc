#include "backend/open_handles.h"

#include <algorithm>

namespace lanefs::backend {

void OpenHandles::open(uint64_t client, uint64_t ino, uint64_t seq, uint64_t now_ns) {
  std::lock_guard lk(mu_);
  Client& c = clients_[client];
  c.last_ns = now_ns;
  auto [it, fresh] = c.seq_by_ino.try_emplace(ino, seq);
  if (fresh) ++holders_[ino];
  else it->second = std::max(it->second, seq);
}

void OpenHandles::drop_locked(uint64_t ino) {
  auto h = holders_.find(ino);
  if (h != holders_.end() && --h->second == 0) holders_.erase(h);
}

bool OpenHandles::release(uint64_t client, uint64_t ino, uint64_t seq, uint64_t now_ns) {
  std::lock_guard lk(mu_);
  auto c = clients_.find(client);
  if (c == clients_.end()) return false;
  c->second.last_ns = now_ns;
  auto h = c->second.seq_by_ino.find(ino);
  if (h == c->second.seq_by_ino.end() || h->second > seq) return false;  // a later open registered it again
  c->second.seq_by_ino.erase(h);
  drop_locked(ino);
  if (c->second.seq_by_ino.empty()) clients_.erase(c);
  return true;
}

OpenHandles::Renewal OpenHandles::renew(uint64_t client, uint64_t seq, std::span<const uint64_t> inos,
                                        uint64_t now_ns) {
  Renewal out;
  std::lock_guard lk(mu_);
  Client& c = clients_[client];
  c.last_ns = now_ns;
  std::vector<uint64_t> listed(inos.begin(), inos.end());
  std::sort(listed.begin(), listed.end());
  for (auto it = c.seq_by_ino.begin(); it != c.seq_by_ino.end();) {
    if (it->second <= seq && !std::binary_search(listed.begin(), listed.end(), it->first)) {
      out.dropped.push_back(it->first);
      drop_locked(it->first);
      it = c.seq_by_ino.erase(it);
    } else {
      ++it;
    }
  }
  for (uint64_t ino : listed)
    if (c.seq_by_ino.try_emplace(ino, seq).second) {
      ++holders_[ino];
      out.added.push_back(ino);
    }
  if (c.seq_by_ino.empty()) clients_.erase(client);
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> OpenHandles::expire(uint64_t now_ns) {
  std::vector<std::pair<uint64_t, uint64_t>> dropped;
  std::lock_guard lk(mu_);
  for (auto c = clients_.begin(); c != clients_.end();) {
    if (now_ns - c->second.last_ns <= lease_ns_) {
      ++c;
      continue;
    }
    for (const auto& [ino, seq] : c->second.seq_by_ino) {
      dropped.emplace_back(c->first, ino);
      drop_locked(ino);
    }
    c = clients_.erase(c);
  }
  return dropped;
}

bool OpenHandles::held(uint64_t ino) const {
  std::lock_guard lk(mu_);
  return holders_.count(ino) != 0;
}

size_t OpenHandles::handles() const {
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (const auto& [id, c] : clients_) n += c.seq_by_ino.size();
  return n;
}

}  // namespace lanefs::backend
