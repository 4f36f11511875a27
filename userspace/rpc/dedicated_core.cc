// The DPDK lane's dedicated cores and the mailboxes their callers wait on
// (dedicated_core.h).
#include "rpc/dedicated_core.h"

#include <sched.h>

#include <unistd.h>

#include <cstring>

#include "common/clock.h"
#include "rpc/loop.h"

namespace lanefs::rpc {

uint32_t Mailbox::add(CallDone done) {
  uint32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
    dones_[id] = std::move(done);
  } else {
    id = static_cast<uint32_t>(dones_.size());
    dones_.push_back(std::move(done));
  }
  ++outstanding_;
  return id;
}

void Mailbox::deliver(uint32_t id, Result<Response> r) {
  Completion c;
  c.id = id;
  if (r.ok()) {
    c.ok = true;
    c.resp = *r;
    if (!r->in_sink) {
      // The endpoint reuses its spill buffer once this returns: a reply
      // that did not go to a sink (metadata, small) is copied for the caller.
      c.copy.reserve(r->size());
      c.copy.insert(c.copy.end(), r->head.begin(), r->head.end());
      c.copy.insert(c.copy.end(), r->body.begin(), r->body.end());
      c.resp.head = c.copy;
      c.resp.body = {};
    }
  } else {
    c.error = std::move(r).error();
  }
  {
    std::lock_guard lk(mu_);
    ready_.push_back(std::move(c));
    // Bumped under the lock: once the caller can see the completion it
    // may return the mailbox, and notify_one below only passes the
    // address to the kernel.
    seq_.fetch_add(1, std::memory_order_release);
    if (notify_fd_ >= 0) {  // under the lock too: the fd lives as long as the caller may wait
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t w = write(notify_fd_, &one, sizeof one);
    }
  }
  seq_.notify_one();
}

size_t Mailbox::run_completions() {
  {
    std::lock_guard lk(mu_);
    if (ready_.empty()) return 0;
    taking_.swap(ready_);
  }
  for (Completion& c : taking_) {
    CallDone d = std::move(dones_[c.id]);
    free_ids_.push_back(c.id);
    --outstanding_;
    if (c.ok) d(Result<Response>(c.resp));
    else d(Result<Response>(std::move(c.error)));
  }
  size_t n = taking_.size();
  taking_.clear();
  return n;
}

void Mailbox::wait(bool until_any, SpinSlots* spin, uint64_t busy_poll_ns) {
  SpinHold hold(spin);
  uint64_t idle_since = 0;
  while (outstanding_ > 0) {
    uint32_t seen = seq_.load(std::memory_order_acquire);
    if (run_completions() > 0) {
      if (until_any) return;
      idle_since = 0;
      continue;
    }
    if (busy_poll_ns > 0) {
      uint64_t now = mono_ns();
      if (idle_since == 0) idle_since = now;
      if (now - idle_since < busy_poll_ns && hold.spin()) continue;
    }
    hold.release();
    seq_.wait(seen, std::memory_order_acquire);  // futex until the next delivery
    idle_since = 0;
  }
}

namespace {
struct MailboxCache {
  std::vector<std::unique_ptr<Mailbox>> free;
};
thread_local MailboxCache t_mailboxes;
}  // namespace

Mailbox* take_mailbox() {
  if (t_mailboxes.free.empty()) return new Mailbox;  // once per thread (and nesting depth)
  Mailbox* m = t_mailboxes.free.back().release();
  t_mailboxes.free.pop_back();
  return m;
}

void return_mailbox(Mailbox* mb) { t_mailboxes.free.emplace_back(mb); }

DedicatedCore::DedicatedCore(ClientEndpoint* ep, Prepare prepare) : ep_(ep), prepare_(std::move(prepare)) {}

DedicatedCore::~DedicatedCore() { stop(); }

Status DedicatedCore::start(int cpu) {
  ep_->try_lease();  // the core's for good: the pool's housekeeping never touches it
  thread_ = std::thread([this] { run(); });
  return pin_thread(thread_, cpu);
}

void DedicatedCore::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_relaxed);
  thread_.join();
  // The core is gone: what was submitted but never started fails here, and
  // the calls still out fail when the pool destroys the endpoint.
  std::lock_guard lk(mu_);
  for (Submitted& s : subs_) s.mb->deliver(s.id, make_error(Errc::kShutdown, "RPC client stopped"));
  subs_.clear();
  ep_->release();
}

void DedicatedCore::submit(const CallArgs& args, Mailbox* mb, uint32_t id) {
  std::lock_guard lk(mu_);  // shared with the core's take (a few ns, never held across IO)
  subs_.push_back(Submitted{args, mb, id});
  pending_.store(true, std::memory_order_release);
}

void DedicatedCore::run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    prepare_(*ep_);
    if (pending_.load(std::memory_order_acquire)) {
      {
        std::lock_guard lk(mu_);
        taking_.swap(subs_);
        pending_.store(false, std::memory_order_relaxed);
      }
      for (Submitted& s : taking_) {
        Mailbox* mb = s.mb;
        uint32_t id = s.id;
        ep_->start(s.args, [mb, id](Result<Response> r) { mb->deliver(id, std::move(r)); });
      }
      taking_.clear();
    }
    // Polling is this core's job (dedicated_mode=full): an idle turn only
    // yields the CPU.
    if (!ep_->step()) sched_yield();
  }
}

}  // namespace lanefs::rpc
