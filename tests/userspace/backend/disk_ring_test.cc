#include "backend/disk_ring.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace lanefs::backend {
namespace {

std::unique_ptr<DiskRing> make_ring(uint32_t entries = 256) {
  auto r = DiskRing::create(entries);
  if (!r.ok()) {
    ADD_FAILURE() << r.error().to_string();
    return nullptr;
  }
  return std::move(r).value();
}

// Polls until nothing is in flight (bounded: a hang fails the test).
void drain(DiskRing& ring, bool* in_poll = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ring.inflight() > 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << ring.inflight() << " ops never completed";
    if (in_poll) *in_poll = true;
    ring.poll_wait(100);
    if (in_poll) *in_poll = false;
  }
}

class DiskRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ring_ = make_ring();
    ASSERT_NE(ring_, nullptr);
    path_ = tmp_.path() + "/f";
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    ring_.reset();
    if (fd_ >= 0) ::close(fd_);
  }
  test::TempDir tmp_;
  std::unique_ptr<DiskRing> ring_;
  std::string path_;
  int fd_ = -1;
};

TEST_F(DiskRingTest, CreateNamesNothingOnSuccessAndGivesANotifyFd) {
  EXPECT_GE(ring_->notify_fd(), 0);
  EXPECT_EQ(ring_->inflight(), 0u);
  EXPECT_EQ(ring_->poll(), 0u);
  EXPECT_FALSE(ring_->has_pending());
}

TEST_F(DiskRingTest, WritevFdatasyncReadRoundTripWithCallbacksOnlyInPoll) {
  bool in_poll = false;
  std::string a = "hello, ", b = "io_uring";
  struct iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  int32_t wres = 1, sres = 1, rres = 1;
  ring_->writev(fd_, iov, 2, 100, [&](int32_t res) {
    EXPECT_TRUE(in_poll) << "callback ran outside poll()";
    wres = res;
    ring_->fdatasync(fd_, [&](int32_t r2) {
      EXPECT_TRUE(in_poll);
      sres = r2;
    });
  });
  EXPECT_EQ(wres, 1) << "writev() ran its callback inline";
  EXPECT_EQ(ring_->inflight(), 1u);
  drain(*ring_, &in_poll);
  EXPECT_EQ(wres, static_cast<int32_t>(a.size() + b.size()));
  EXPECT_EQ(sres, 0);

  std::vector<char> buf(200, 'x');
  ring_->read(fd_, buf.data(), 200, 0, [&](int32_t res) {
    EXPECT_TRUE(in_poll);
    rres = res;
  });
  EXPECT_EQ(rres, 1);
  drain(*ring_, &in_poll);
  ASSERT_EQ(rres, 115) << "a read at EOF is short";
  EXPECT_EQ(std::string(buf.data() + 100, 15), "hello, io_uring");
  EXPECT_EQ(buf[0], '\0') << "the hole before the data reads as zeros";
}

TEST_F(DiskRingTest, ErrorsReachTheCallbackAsNegativeErrno) {
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  int rdonly = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(rdonly, 0);
  char buf[16];
  struct iovec iov = {buf, sizeof buf};
  int32_t bad_read = 0, bad_write = 0, bad_sync = 0, pipe_sync = 0;
  ring_->read(-1, buf, sizeof buf, 0, [&](int32_t r) { bad_read = r; });
  ring_->writev(rdonly, &iov, 1, 0, [&](int32_t r) { bad_write = r; });
  ring_->fdatasync(1 << 20, [&](int32_t r) { bad_sync = r; });
  ring_->fsync(pipefd[0], [&](int32_t r) { pipe_sync = r; });
  drain(*ring_);
  EXPECT_EQ(bad_read, -EBADF);
  EXPECT_EQ(bad_write, -EBADF);
  EXPECT_EQ(bad_sync, -EBADF);
  EXPECT_EQ(pipe_sync, -EINVAL);
  ::close(rdonly);
  ::close(pipefd[0]);
  ::close(pipefd[1]);
}

TEST_F(DiskRingTest, MoreOperationsThanTheQueueHoldsAllCompleteOnce) {
  auto small = make_ring(8);  // SQ 8, CQ 16
  ASSERT_NE(small, nullptr);
  constexpr int kOps = 2000;
  std::vector<uint32_t> blocks(kOps);
  std::vector<int> calls(kOps, 0);
  std::vector<struct iovec> iov(kOps);
  for (int i = 0; i < kOps; ++i) {
    blocks[i] = 0xb10c0000u + i;
    iov[i] = {&blocks[i], sizeof(uint32_t)};
    small->writev(fd_, &iov[i], 1, uint64_t(i) * 4, [&, i](int32_t r) {
      EXPECT_EQ(r, 4) << i;
      ++calls[i];
    });
  }
  EXPECT_EQ(small->inflight(), size_t(kOps));
  drain(*small);
  for (int i = 0; i < kOps; ++i) ASSERT_EQ(calls[i], 1) << i;

  std::vector<uint32_t> back(kOps, 0);
  std::fill(calls.begin(), calls.end(), 0);
  for (int i = 0; i < kOps; ++i)
    small->read(fd_, &back[i], 4, uint64_t(i) * 4, [&, i](int32_t r) {
      EXPECT_EQ(r, 4);
      ++calls[i];
    });
  drain(*small);
  for (int i = 0; i < kOps; ++i) {
    ASSERT_EQ(calls[i], 1) << i;
    ASSERT_EQ(back[i], blocks[i]) << i;
  }
}

TEST_F(DiskRingTest, CallbacksMayQueueMoreWorkAndPostRunsFromPoll) {
  int chain = 0, posted = 0;
  std::function<void(int32_t)> step;  // the test's own recursion; the ring holds a small lambda
  char byte = 'z';
  struct iovec iov = {&byte, 1};
  step = [&](int32_t r) {
    ASSERT_EQ(r, 1);
    if (++chain < 50) ring_->writev(fd_, &iov, 1, chain, [&](int32_t r2) { step(r2); });
  };
  ring_->writev(fd_, &iov, 1, 0, [&](int32_t r) { step(r); });
  ring_->post([&](int32_t r) {
    EXPECT_EQ(r, 0);
    ++posted;
  });
  EXPECT_EQ(posted, 0) << "post() ran its callback inline";
  EXPECT_TRUE(ring_->has_pending());
  drain(*ring_);
  EXPECT_EQ(chain, 50);
  EXPECT_EQ(posted, 1);
  struct stat st;
  ASSERT_EQ(::fstat(fd_, &st), 0);
  EXPECT_EQ(st.st_size, 50);
}

TEST_F(DiskRingTest, NotifyFdIsReadableWhenCompletionsWait) {
  // A large write goes to the kernel's workers, so it usually completes
  // after submission: the eventfd must wake a sleeping loop for it.
  std::vector<char> big(8 << 20, 'q');
  struct iovec iov = {big.data(), big.size()};
  int32_t res = 0;
  ring_->writev(fd_, &iov, 1, 0, [&](int32_t r) { res = r; });
  ring_->fdatasync(fd_, [&](int32_t) {});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ring_->inflight() > 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    ring_->poll();
    if (ring_->inflight() == 0 || ring_->has_pending()) continue;
    struct pollfd p = {ring_->notify_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1) << "in-flight IO never made notify_fd readable";
  }
  EXPECT_EQ(res, static_cast<int32_t>(big.size()));
  // Drained: nothing pending, so the fd stops being readable.
  ring_->poll();
  struct pollfd p = {ring_->notify_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
}

TEST_F(DiskRingTest, DestructorRunsEveryQueuedCallback) {
  int ran = 0;
  char buf[8];
  for (int i = 0; i < 10; ++i) ring_->read(fd_, buf, sizeof buf, 0, [&](int32_t) { ++ran; });
  ring_->post([&](int32_t) { ++ran; });
  ring_.reset();
  EXPECT_EQ(ran, 11);
}

TEST_F(DiskRingTest, TraceRecordsQueueAndCompletionOrder) {
  std::vector<DiskRing::TraceEvent> trace;
  ring_->set_trace(&trace);
  char c = 'a';
  struct iovec iov = {&c, 1};
  ring_->writev(fd_, &iov, 1, 0, [&](int32_t) {
    ring_->trace_mark(fd_, 7);
    ring_->fdatasync(fd_, [](int32_t) {});
  });
  drain(*ring_);
  ASSERT_EQ(trace.size(), 5u);
  EXPECT_EQ(trace[0].kind, DiskRing::TraceEvent::kQueued);
  EXPECT_EQ(trace[1].kind, DiskRing::TraceEvent::kCompleted);
  EXPECT_EQ(trace[1].op, trace[0].op);
  EXPECT_EQ(trace[1].res, 1);
  EXPECT_EQ(trace[2].kind, DiskRing::TraceEvent::kMark);
  EXPECT_EQ(trace[2].op, 7u);
  EXPECT_EQ(trace[3].kind, DiskRing::TraceEvent::kQueued);
  EXPECT_EQ(trace[4].kind, DiskRing::TraceEvent::kCompleted);
  EXPECT_EQ(trace[4].res, 0);
}

}  // namespace
}  // namespace lanefs::backend
