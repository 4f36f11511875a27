// The io_uring FUSE channel (fuse/channel_uring.h).
#include "fuse/channel_uring.h"

#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>

#include "common/log.h"
#include "fuse/session.h"

namespace lanefs::fuse {

// One entry: its buffers, owned by the thread that registered it (the
// kernel copies requests in that thread's context, so it must live as
// long as the entry).
struct RingEntry {
  abi::UringReqHeader* hdr = nullptr;
  uint8_t* payload = nullptr;
  size_t payload_size = 0;
  bool replied = false;
};

namespace {

// A test hook: LANEFS_TEST_FUSE_URING_REGISTER_FAIL=1 registers a payload
// buffer one page short, which the kernel refuses (the mount must end, not hang).
bool register_fail_hook() {
  const char* v = std::getenv("LANEFS_TEST_FUSE_URING_REGISTER_FAIL");
  return v != nullptr && std::string(v) == "1";
}

// One command in the ring's next SQE (each ring carries one entry's
// command at a time, so there is always a free one).
void prep_cmd(io_uring* ring, int devfd, uint32_t cmd, uint16_t qid, uint64_t commit_id, const iovec* iov,
              RingEntry* e) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe == nullptr) return;
  std::memset(static_cast<void*>(sqe), 0, 128);  // SQE128: __pad1 and uring_cmd_flags must be 0
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = devfd;
  sqe->cmd_op = cmd;
  if (iov != nullptr) {
    sqe->addr = reinterpret_cast<uint64_t>(iov);
    sqe->len = 2;
  }
  sqe->user_data = reinterpret_cast<uint64_t>(e);
  abi::UringCmdReq req{};
  req.qid = qid;
  req.commit_id = commit_id;
  std::memcpy(sqe->cmd, &req, sizeof req);
}

void* map_buffer(size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// One thread: one ring, one entry on queue `qid`. Reports the REGISTER's
// outcome through `registered`, then serves until the connection ends.
void serve_entry(Session* se, int devfd, uint16_t qid, size_t payload_size, std::promise<Status>* registered) {
  // On the CPU whose requests this queue gets: the kernel delivers each
  // request into the entry as task work of this thread, and the caller
  // waits on that CPU too, so neither wake-up crosses CPUs.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(qid, &cpus);
  (void)pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);  // an offline CPU: left unpinned
  io_uring ring;
  io_uring_params p{};
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(4, &ring, &p);
  if (rc == -EINVAL) {  // an older kernel: without the single-issuer flags
    p = io_uring_params{};
    p.flags = IORING_SETUP_SQE128;
    rc = io_uring_queue_init_params(4, &ring, &p);
  }
  if (rc < 0) {
    registered->set_value(make_error(Errc::kNotSupported, std::string("io_uring setup: ") + std::strerror(-rc)));
    return;
  }
  RingEntry e;
  e.hdr = static_cast<abi::UringReqHeader*>(map_buffer(4096));
  e.payload = static_cast<uint8_t*>(map_buffer(payload_size));
  e.payload_size = payload_size;
  if (e.hdr == nullptr || e.payload == nullptr) {
    registered->set_value(make_error(Errc::kNoSpace, "io_uring FUSE entry buffers"));
    io_uring_queue_exit(&ring);
    return;
  }
  iovec iov[2] = {{e.hdr, 4096}, {e.payload, register_fail_hook() ? payload_size - 4096 : payload_size}};
  prep_cmd(&ring, devfd, abi::kUringCmdRegister, qid, 0, iov, &e);
  rc = io_uring_submit(&ring);
  // A REGISTER the kernel refuses completes at once; a good one stays
  // parked (no completion) until a request arrives.
  io_uring_cqe* cqe = nullptr;
  Status outcome = ok_status();
  if (rc < 0) {
    outcome = make_error(Errc::kNotSupported, std::string("io_uring submit: ") + std::strerror(-rc));
  } else if (io_uring_peek_cqe(&ring, &cqe) == 0 && cqe->res < 0) {
    outcome = make_error(Errc::kNotSupported, "FUSE io_uring REGISTER on queue " + std::to_string(qid) +
                                                  ": " + std::strerror(-cqe->res));
  }
  const bool ok = outcome.ok();
  registered->set_value(std::move(outcome));
  if (!ok) {
    io_uring_queue_exit(&ring);
    munmap(e.hdr, 4096);
    munmap(e.payload, payload_size);
    return;
  }
  uint32_t last_cmd = abi::kUringCmdRegister;
  uint64_t last_commit = 0;
  for (;;) {
    if (cqe == nullptr) {
      rc = io_uring_submit_and_wait(&ring, 1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) break;
      if (io_uring_peek_cqe(&ring, &cqe) != 0) {
        cqe = nullptr;
        continue;
      }
    }
    const int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    cqe = nullptr;
    if (res == -EAGAIN || res == -EINTR) {  // the command did not run: again
      if (last_cmd == abi::kUringCmdRegister) prep_cmd(&ring, devfd, last_cmd, qid, 0, iov, &e);
      else prep_cmd(&ring, devfd, last_cmd, qid, last_commit, nullptr, &e);
      continue;
    }
    if (res < 0) break;  // -ENOTCONN: unmounted or aborted; -ECANCELED: exiting
    // The request is in the entry: copy what the reply overwrites first.
    abi::InHeader h;
    std::memcpy(&h, e.hdr->in_out, sizeof h);
    const uint64_t commit_id = e.hdr->ent.commit_id;
    const size_t op_len = std::min<size_t>(op_in_size(h.opcode), sizeof e.hdr->op_in);
    const size_t pay_len = std::min<size_t>(e.hdr->ent.payload_sz, payload_size);
    Req r{se, devfd, h.unique, h.uid, h.gid, h.pid};
    r.ring = &e;
    r.out = e.payload;
    r.out_cap = payload_size;
    e.replied = false;
    se->count_uring_request();
    dispatch(r, h, {e.hdr->op_in, op_len}, {e.payload, pay_len});
    if (!e.replied) UringChannel::set_reply(e, h.unique, ENOSYS, nullptr, 0);  // no request goes unanswered here
    prep_cmd(&ring, devfd, abi::kUringCmdCommitAndFetch, qid, commit_id, nullptr, &e);
    last_cmd = abi::kUringCmdCommitAndFetch;
    last_commit = commit_id;
  }
  io_uring_queue_exit(&ring);
  munmap(e.hdr, 4096);
  munmap(e.payload, payload_size);
}

}  // namespace

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

std::unique_ptr<UringChannel> UringChannel::start(Session& se, int devfd, uint32_t depth, size_t payload_size,
                                                  Status* outcome) {
  std::unique_ptr<UringChannel> ch(new UringChannel());
  ch->queues_ = possible_cpus();
  std::vector<std::promise<Status>> results(size_t{ch->queues_} * depth);
  size_t k = 0;
  for (uint32_t q = 0; q < ch->queues_; ++q)
    for (uint32_t d = 0; d < depth; ++d, ++k)
      ch->threads_.emplace_back(serve_entry, &se, devfd, static_cast<uint16_t>(q), payload_size, &results[k]);
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
