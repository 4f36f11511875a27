// The io_uring FUSE channel (fuse/channel_uring.h).
#include "fuse/channel_uring.h"

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "fuse/session.h"
#include "kmod/uapi/lanefs.h"
#include "rpc/call_driver.h"

namespace lanefs::fuse {

// One entry: its buffers and the fiber that serves its requests, owned by
// its queue's thread (the kernel copies requests in that thread's context,
// so the buffers live as long as the thread).
struct RingEntry {
  abi::UringReqHeader* hdr = nullptr;
  uint8_t* payload = nullptr;
  size_t payload_size = 0;
  bool replied = false;
  iovec iov[2]{};
  uint16_t qid = 0;
  // Its command in the kernel: the last one sent (resent on -EAGAIN).
  uint32_t last_cmd = abi::kUringCmdRegister;
  uint64_t commit_id = 0;
  bool ended = false;  // the kernel ended it (-ENOTCONN, a refused REGISTER)
  // The fiber: started at the first request, it serves one request per
  // resume and parks in between (and while the backends work).
  boost::context::fiber fiber;
  boost::context::fiber loop;  // where the fiber returns to (set on each resume)
  bool serving = false;        // a request is in the entry and not answered yet
  bool queued = false;         // on the ready list
  bool offloaded = false;      // its fiber waits for the queue's helper thread
};

namespace {

// A test hook: LANEFS_TEST_FUSE_URING_REGISTER_FAIL=1 registers a payload
// buffer one page short, which the kernel refuses (the mount must end, not hang).
bool register_fail_hook() {
  const char* v = std::getenv("LANEFS_TEST_FUSE_URING_REGISTER_FAIL");
  return v != nullptr && std::string(v) == "1";
}

void* map_buffer(size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// A fiber's stack: handlers, the RPC layer and the log formatting run on
// it. Mapped with a guard page; pages are touched only as used.
constexpr size_t kFiberStack = 512 * 1024;

// Completions that are not an entry's: polls carry their index + 1 in
// user_data (0, 1: the RPC endpoint's fds; 2: the helper's eventfd);
// entries carry their address.
constexpr uint64_t kPollTag = 1;
constexpr int kPollTags = 3, kHelperPoll = 2;

// One queue: its thread's ring, entries, fibers and call driver.
class Queue final : public rpc::Parker {
 public:
  Queue(Session* se, rpc::RpcClient* rpc, int devfd, uint16_t qid, uint32_t depth, size_t payload_size)
      : se_(se), rpc_(rpc), devfd_(devfd), qid_(qid), depth_(depth), payload_size_(payload_size) {}

  // The thread: registers, reports the outcome, serves until every entry ended.
  void run(std::promise<Status>* registered);

  void* running() noexcept override { return current_; }
  void park() noexcept override {
    RingEntry* e = current_;
    e->loop = std::move(e->loop).resume();
  }
  // On one of this queue's fibers: runs fn(arg) on the queue's helper
  // thread while the fiber parks (see run_off_ring).
  void offload(void (*fn)(void*), void* arg);
  static Queue* on_this_thread();
  RingEntry* running_entry() const { return current_; }

  void resume(void* fiber) noexcept override {
    auto* e = static_cast<RingEntry*>(fiber);
    if (e->queued || !e->serving) return;
    e->queued = true;
    ready_.push_back(e);
  }

 private:
  Status setup();
  io_uring_sqe* sqe();
  void prep_cmd(RingEntry& e, uint32_t cmd);
  void serve(RingEntry& e) noexcept;  // on the entry's fiber: one request
  void run_fiber(RingEntry& e);
  void on_cqe(const io_uring_cqe& c);
  void sleep();
  void teardown();

  Session* se_;
  rpc::RpcClient* rpc_;
  int devfd_;
  uint16_t qid_;
  uint32_t depth_;
  size_t payload_size_;
  io_uring ring_{};
  bool ring_ok_ = false;
  bool registered_ = false;  // the REGISTERs went to the kernel
  std::vector<std::unique_ptr<RingEntry>> entries_;
  std::unique_ptr<rpc::CallDriver> driver_;
  std::vector<RingEntry*> ready_, running_;
  RingEntry* current_ = nullptr;
  bool polling_[kPollTags] = {false, false};
  uint32_t ended_ = 0;
  uint32_t held_ = 0;  // entries holding a request (arrived, not answered)
  std::vector<RingEntry*> unsent_;  // commands that found no SQE (sent next turn)
  // The helper thread (started at the first offload): jobs in, fibers out.
  struct Job {
    void (*fn)(void*);
    void* arg;
    RingEntry* e;
  };
  void helper();
  void helper_done();
  std::thread helper_;
  int helper_fd_ = -1;  // eventfd: the helper finished jobs
  std::mutex helper_mu_;
  std::condition_variable helper_cv_;
  std::vector<Job> jobs_;            // helper_mu_
  std::vector<RingEntry*> helped_;   // helper_mu_
  bool helper_stop_ = false;         // helper_mu_
  bool net_fired_ = true;       // an endpoint fd fired since the last turn
  uint64_t step_due_ns_ = 0;    // the endpoint's timers are due
};

thread_local Queue* t_queue = nullptr;

Queue* Queue::on_this_thread() { return t_queue; }

void Queue::offload(void (*fn)(void*), void* arg) {
  RingEntry* e = current_;
  {
    std::lock_guard lk(helper_mu_);
    if (!helper_.joinable()) helper_ = std::thread([this] { helper(); });
    jobs_.push_back(Job{fn, arg, e});
  }
  helper_cv_.notify_one();
  e->offloaded = true;
  while (e->offloaded) park();
}

// The helper: runs what fibers hand it, one at a time, and wakes the loop.
void Queue::helper() {
  std::vector<Job> mine;
  for (;;) {
    {
      std::unique_lock lk(helper_mu_);
      helper_cv_.wait(lk, [this] { return helper_stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping
      mine.swap(jobs_);
    }
    for (const Job& j : mine) {
      j.fn(j.arg);
      std::lock_guard lk(helper_mu_);
      helped_.push_back(j.e);
    }
    mine.clear();
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(helper_fd_, &one, sizeof one);
  }
}

// On the loop: the fibers whose jobs ran go on.
void Queue::helper_done() {
  uint64_t v;
  [[maybe_unused]] ssize_t r = read(helper_fd_, &v, sizeof v);
  std::vector<RingEntry*> done;
  {
    std::lock_guard lk(helper_mu_);
    done.swap(helped_);
  }
  for (RingEntry* e : done) {
    e->offloaded = false;
    resume(e);
  }
}

io_uring_sqe* Queue::sqe() {
  io_uring_sqe* q = io_uring_get_sqe(&ring_);
  if (q == nullptr) {  // full: hand the batch to the kernel first
    io_uring_submit(&ring_);
    q = io_uring_get_sqe(&ring_);
  }
  return q;
}

// One command for entry `e`: REGISTER (its buffers) or COMMIT_AND_FETCH
// (its reply, and the wait for the next request).
void Queue::prep_cmd(RingEntry& e, uint32_t cmd) {
  io_uring_sqe* q = sqe();
  e.last_cmd = cmd;
  if (q == nullptr) {  // the kernel took none of the queued SQEs: again on the next turn
    LOG_WARN("FUSE io_uring queue {}: no free submission entry; the command waits a turn", qid_);
    unsent_.push_back(&e);
    return;
  }
  std::memset(static_cast<void*>(q), 0, 128);  // SQE128: __pad1 and uring_cmd_flags must be 0
  q->opcode = IORING_OP_URING_CMD;
  q->fd = devfd_;
  q->cmd_op = cmd;
  if (cmd == abi::kUringCmdRegister) {
    q->addr = reinterpret_cast<uint64_t>(e.iov);
    q->len = 2;
  }
  q->user_data = reinterpret_cast<uint64_t>(&e);
  abi::UringCmdReq req{};
  req.qid = qid_;
  req.commit_id = cmd == abi::kUringCmdRegister ? 0 : e.commit_id;
  std::memcpy(q->cmd, &req, sizeof req);
  if (cmd == abi::kUringCmdRegister && se_->kernel_client()) {
    // lanefs.ko reads the buffers from the cmd area (its 6.1 build sees no SQE addr).
    lanefs_ring_cmd k{};
    k.qid = qid_;
    k.header = reinterpret_cast<uint64_t>(e.iov[0].iov_base);
    k.header_len = e.iov[0].iov_len;
    k.payload = reinterpret_cast<uint64_t>(e.iov[1].iov_base);
    k.payload_len = e.iov[1].iov_len;
    std::memcpy(q->cmd, &k, sizeof k);
  }
}

Status Queue::setup() {
  io_uring_params p{};
  // Every entry's command, both polls, room to spare.
  const uint32_t n = depth_ + kPollTags + 2;
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(n, &ring_, &p);
  if (rc == -EINVAL) {  // an older kernel: without the single-issuer flags
    p = io_uring_params{};
    p.flags = IORING_SETUP_SQE128;
    rc = io_uring_queue_init_params(n, &ring_, &p);
  }
  if (rc < 0) return make_error(Errc::kNotSupported, std::string("io_uring setup: ") + std::strerror(-rc));
  ring_ok_ = true;
  if (!(p.features & IORING_FEAT_EXT_ARG))
    return make_error(Errc::kNotSupported, "io_uring without IORING_FEAT_EXT_ARG (kernel too old)");
  auto d = rpc::CallDriver::create(*rpc_, *this);
  if (!d.ok()) return d.error();
  driver_ = std::move(*d);
  const bool short_payload = register_fail_hook();
  for (uint32_t i = 0; i < depth_; ++i) {
    auto e = std::make_unique<RingEntry>();
    e->hdr = static_cast<abi::UringReqHeader*>(map_buffer(4096));
    e->payload = static_cast<uint8_t*>(map_buffer(payload_size_));
    e->payload_size = payload_size_;
    e->qid = qid_;
    entries_.push_back(std::move(e));
    RingEntry& r = *entries_.back();
    if (r.hdr == nullptr || r.payload == nullptr) return make_error(Errc::kNoSpace, "io_uring FUSE entry buffers");
    r.iov[0] = {r.hdr, 4096};
    r.iov[1] = {r.payload, short_payload ? payload_size_ - 4096 : payload_size_};
    prep_cmd(r, abi::kUringCmdRegister);
  }
  rc = io_uring_submit(&ring_);
  if (rc < 0) return make_error(Errc::kNotSupported, std::string("io_uring submit: ") + std::strerror(-rc));
  registered_ = true;
  // A REGISTER the kernel refuses completes at once; a good one stays
  // parked (no completion) until a request arrives.
  Status outcome = ok_status();
  io_uring_cqe* c = nullptr;
  while (io_uring_peek_cqe(&ring_, &c) == 0) {
    if (c->res < 0 && outcome.ok())
      outcome = make_error(Errc::kNotSupported, "FUSE io_uring REGISTER on queue " + std::to_string(qid_) + ": " +
                                                    std::strerror(-c->res));
    on_cqe(*c);
    io_uring_cqe_seen(&ring_, c);
  }
  return outcome;
}

// On the entry's fiber: the request in the entry, answered in place.
void Queue::serve(RingEntry& e) noexcept {
  // Copy what the reply overwrites first.
  abi::InHeader h;
  std::memcpy(&h, e.hdr->in_out, sizeof h);
  e.commit_id = e.hdr->ent.commit_id;
  const size_t op_len = std::min<size_t>(op_in_size(h.opcode), sizeof e.hdr->op_in);
  const size_t pay_len = std::min<size_t>(e.hdr->ent.payload_sz, e.payload_size);
  Req r{se_, devfd_, h.unique, h.uid, h.gid, h.pid};
  r.ring = &e;
  r.out = e.payload;
  r.out_cap = e.payload_size;
  e.replied = false;
  se_->count_uring_request();
  dispatch(r, h, {e.hdr->op_in, op_len}, {e.payload, pay_len});
  if (!e.replied) UringChannel::set_reply(e, h.unique, ENOSYS, nullptr, 0);  // no request goes unanswered here
}

// Runs entry e's fiber until it parks (the backends work) or has answered
// its request (then its reply is committed with the next fetch).
void Queue::run_fiber(RingEntry& e) {
  e.queued = false;
  if (!e.fiber) {
    e.fiber = boost::context::fiber(std::allocator_arg, boost::context::protected_fixedsize_stack(kFiberStack),
                                    [this, &e](boost::context::fiber&& loop) {
                                      e.loop = std::move(loop);
                                      for (;;) {
                                        serve(e);
                                        e.serving = false;
                                        e.loop = std::move(e.loop).resume();  // until the next request
                                        if (!e.serving) break;                // teardown
                                      }
                                      return std::move(e.loop);
                                    });
  }
  current_ = &e;
  e.fiber = std::move(e.fiber).resume();
  current_ = nullptr;
  if (e.serving) return;  // parked: the backends work
  --held_;
  if (!e.ended) prep_cmd(e, abi::kUringCmdCommitAndFetch);
}

void Queue::on_cqe(const io_uring_cqe& c) {
  if (c.user_data >= kPollTag && c.user_data < kPollTag + kPollTags) {
    const int i = static_cast<int>(c.user_data - kPollTag);
    polling_[i] = false;
    if (i == kHelperPoll) return helper_done();
    driver_->fired(i);
    net_fired_ = true;
    return;
  }
  if (c.user_data == LIBURING_UDATA_TIMEOUT || c.user_data == 0) return;
  auto* e = reinterpret_cast<RingEntry*>(c.user_data);
  if (c.res == -EAGAIN || c.res == -EINTR) {  // the command did not run: again
    prep_cmd(*e, e->last_cmd);
    return;
  }
  if (c.res < 0) {  // -ENOTCONN: unmounted or aborted; -ECANCELED: exiting; a refused REGISTER
    e->ended = true;
    ++ended_;
    return;
  }
  e->serving = true;  // a request is in the entry
  se_->note_uring_held(++held_);
  resume(e);
}

// Waits for the kernel's requests, the network, or the endpoint's next
// timer; submits what was prepared on the way (commits, poll re-arms) in
// the same io_uring_enter.
void Queue::sleep() {
  uint64_t timeout = 0;
  const auto net = driver_->arm(&timeout);
  const int fds[kPollTags] = {net[0], net[1], helper_fd_};
  for (int i = 0; i < kPollTags; ++i) {
    if (fds[i] < 0 || polling_[i]) continue;
    io_uring_sqe* q = sqe();
    if (q == nullptr) continue;
    io_uring_prep_poll_add(q, fds[i], POLLIN);
    q->user_data = kPollTag + static_cast<uint64_t>(i);
    polling_[i] = true;
  }
  // Never later than before: requests that wake the loop early must not
  // push the endpoint's timers (retransmits, deadlines) back.
  step_due_ns_ = std::min(step_due_ns_, mono_ns() + timeout);
  __kernel_timespec ts{static_cast<long long>(timeout / 1'000'000'000), static_cast<long long>(timeout % 1'000'000'000)};
  io_uring_cqe* c = nullptr;
  int rc = timeout == 0 ? io_uring_submit_and_get_events(&ring_)
                        : io_uring_submit_and_wait_timeout(&ring_, &c, 1, &ts, nullptr);
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
    LOG_WARN("FUSE io_uring queue {}: io_uring_enter: {}", qid_, std::strerror(-rc));
}

void Queue::run(std::promise<Status>* registered) {
  // Not pinned to the queue's CPU. A thread per entry was faster pinned
  // (4K QD1 0.85x -> 1.03x classic, 13:05/13:38 UTC). With one thread per
  // queue holding every entry, pinning shares the caller's CPU with the
  // whole queue. Measured on 2 vCPUs, 19:29-19:36 UTC, io_uring / classic:
  // QD1 0.81-0.99x pinned (4 runs), 0.98-1.00x unpinned (2 runs); 1 MiB
  // reads 1.17-1.26x pinned, 1.33-1.43x unpinned.
  t_queue = this;
  helper_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  registered->set_value(setup());
  if (!registered_) return teardown();
  // A refused REGISTER: the caller aborts the connection, which ends the
  // entries that were taken. Serve until every entry ended and no handler
  // is still at work.
  for (;;) {
    if (ended_ == entries_.size() && held_ == 0 && driver_->outstanding() == 0) break;
    if (!unsent_.empty()) {
      std::vector<RingEntry*> again;
      again.swap(unsent_);
      for (RingEntry* e : again) prep_cmd(*e, e->last_cmd);
    }
    running_.swap(ready_);
    for (RingEntry* e : running_) run_fiber(*e);  // their calls are sent as they start
    running_.clear();
    // The network needs a turn only when its fd fired or a timer is due
    // (no receive that finds nothing): one turn per answer at QD1.
    if (net_fired_ || mono_ns() >= step_due_ns_) {
      net_fired_ = false;
      step_due_ns_ = UINT64_MAX;
      driver_->step();
    }
    if (!ready_.empty()) continue;  // answers resumed fibers: run them before sleeping
    sleep();
    io_uring_cqe* c = nullptr;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring_, head, c) {
      on_cqe(*c);
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
  }
  teardown();
}

void Queue::teardown() {
  {
    std::lock_guard lk(helper_mu_);
    helper_stop_ = true;
  }
  helper_cv_.notify_all();
  if (helper_.joinable()) helper_.join();  // no fiber waits for it: none is serving
  if (helper_fd_ >= 0) close(helper_fd_);
  helper_fd_ = -1;
  t_queue = nullptr;
  // Fibers wait for their next request: let each one return.
  for (auto& e : entries_) {
    if (!e->fiber) continue;
    current_ = e.get();
    e->fiber = std::move(e->fiber).resume();  // serving is false: the loop inside breaks
    current_ = nullptr;
  }
  driver_.reset();  // before the ring's fds go: its endpoint goes back to the pool
  if (ring_ok_) io_uring_queue_exit(&ring_);
  ring_ok_ = false;
  for (auto& e : entries_) {
    if (e->hdr) munmap(e->hdr, 4096);
    if (e->payload) munmap(e->payload, e->payload_size);
  }
  entries_.clear();
}

}  // namespace

bool run_off_ring(void (*fn)(void*), void* arg) {
  Queue* q = Queue::on_this_thread();
  if (q == nullptr || q->running_entry() == nullptr) return false;
  q->offload(fn, arg);
  return true;
}

uint32_t possible_cpus() {
  // "0-3" or "0,2-5": the highest CPU number + 1.
  std::ifstream in("/sys/devices/system/cpu/possible");
  std::string s;
  std::getline(in, s);
  uint32_t highest = 0;
  bool any = false;
  for (size_t i = 0; i < s.size();) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    highest = std::max<uint32_t>(highest, static_cast<uint32_t>(std::stoul(s.substr(i, j - i))));
    any = true;
    i = j;
  }
  return any ? highest + 1 : static_cast<uint32_t>(std::max(1u, std::thread::hardware_concurrency()));
}

void UringChannel::set_reply(RingEntry& e, uint64_t unique, int error, const iovec* parts, int n) noexcept {
  size_t len = 0;
  if (error == 0) {
    for (int i = 0; i < n; ++i) {
      const size_t k = std::min(parts[i].iov_len, e.payload_size - len);
      // A read's data is already in place (Req::out).
      if (parts[i].iov_base != e.payload + len) std::memmove(e.payload + len, parts[i].iov_base, k);
      len += k;
    }
  }
  abi::OutHeader oh{static_cast<uint32_t>(sizeof oh + len), -error, unique};
  std::memcpy(e.hdr->in_out, &oh, sizeof oh);
  e.hdr->ent.payload_sz = static_cast<uint32_t>(len);
  e.replied = true;
}

std::unique_ptr<UringChannel> UringChannel::start(Session& se, rpc::RpcClient& rpc, int devfd, uint32_t depth,
                                                  size_t payload_size, Status* outcome) {
  std::unique_ptr<UringChannel> ch(new UringChannel());
  ch->queues_ = possible_cpus();
  std::vector<std::promise<Status>> results(ch->queues_);
  for (uint32_t q = 0; q < ch->queues_; ++q)
    ch->threads_.emplace_back([&se, &rpc, devfd, q, depth, payload_size, r = &results[q]] {
      Queue queue(&se, &rpc, devfd, static_cast<uint16_t>(q), depth, payload_size);
      queue.run(r);
    });
  *outcome = ok_status();
  for (auto& r : results) {
    Status s = r.get_future().get();
    if (!s.ok() && outcome->ok()) *outcome = s;
  }
  return ch;
}

UringChannel::~UringChannel() { join(); }

void UringChannel::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace lanefs::fuse
