// Hostile datagrams: 20,000 malformed packets from a few raw UDP sockets at
// a live lanefsd while a normal client keeps working. The backend must keep
// answering correctly, count the rejects (BackendStatus.rx_invalid) and stay
// alive.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/clock.h"
#include "integration/backend_fixture.h"
#include "proto/wire.h"

namespace lanefs::test {
namespace {

constexpr int kDatagrams = 20000;
constexpr int kSockets = 4;

// A header with a correct CRC over `payload`, as a real sender would make it.
std::vector<uint8_t> valid_packet(std::mt19937_64& rng, size_t payload_len) {
  proto::PacketHeader h;
  h.type = static_cast<proto::PktType>(1 + rng() % 11);
  h.session_id = static_cast<uint32_t>(rng());
  h.request_id = rng();
  h.pkt_count = 1;
  h.opcode = static_cast<uint16_t>(rng() % 70);
  h.msg_len = static_cast<uint32_t>(payload_len);
  h.payload_len = static_cast<uint32_t>(payload_len);
  auto payload = random_bytes(rng, payload_len);
  std::vector<uint8_t> pkt(proto::kHeaderSize + payload_len);
  proto::encode_header(h, payload, pkt.data());
  std::memcpy(pkt.data() + proto::kHeaderSize, payload.data(), payload_len);
  return pkt;
}

void put_u32(std::vector<uint8_t>* p, size_t off, uint32_t v) { std::memcpy(p->data() + off, &v, 4); }

// One malformed datagram of kind `k` (every kind is rejected by the decoder).
std::vector<uint8_t> garbage(std::mt19937_64& rng, int k) {
  switch (k) {
    case 0:  // random bytes, 0..2000 long
      return random_bytes(rng, rng() % 2001);
    case 1: {  // a valid packet cut short (header or payload missing)
      auto p = valid_packet(rng, 1 + rng() % 1400);
      p.resize(rng() % p.size());
      return p;
    }
    case 2: {  // valid header and payload, CRC off by a flipped bit
      auto p = valid_packet(rng, rng() % 1400);
      p[40 + rng() % 4] ^= static_cast<uint8_t>(1u << (rng() % 8));
      return p;
    }
    case 3: {  // wrong magic
      auto p = valid_packet(rng, rng() % 1400);
      put_u32(&p, 0, static_cast<uint32_t>(rng()) | 1u);
      if (p[0] == 'L' && p[1] == 'N' && p[2] == 'F' && p[3] == 'S') p[0] = 'X';
      return p;
    }
    case 4: {  // payload_len claims far more than was sent
      auto p = valid_packet(rng, rng() % 1400);
      put_u32(&p, 36, 0x80000000u + static_cast<uint32_t>(rng() % 0x7fffffff));
      return p;
    }
    default: {  // CRC-valid request whose lengths are impossible
      proto::PacketHeader h;
      h.type = proto::PktType::kRequest;
      h.session_id = static_cast<uint32_t>(rng());
      h.request_id = rng();
      h.pkt_count = 1;
      h.opcode = static_cast<uint16_t>(proto::Op::kGetattr);
      h.msg_len = proto::kMaxMessage + 1 + static_cast<uint32_t>(rng() % 1000);
      std::vector<uint8_t> p(proto::kHeaderSize);
      proto::encode_header(h, {}, p.data());
      return p;
    }
  }
}

class UdpSender {
 public:
  UdpSender() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0) ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~UdpSender() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }
  bool send(const std::vector<uint8_t>& d, uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
           static_cast<ssize_t>(d.size());
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

uint64_t rx_invalid(client::ClusterClient& c) {
  auto st = c.status_all();
  if (st.size() != 1 || !st[0].second.ok()) return 0;
  return st[0].second->rx_invalid;
}

TEST(GarbageTest, BackendSurvivesAndCountsMalformedDatagrams) {
  BackendProcess b("garbage");
  ASSERT_OK(b.start());
  auto c = connect_client({b.addr()});
  ASSERT_OK(c);
  auto& cl = **c;
  auto fs = cl.fs_create("g");
  ASSERT_OK(fs);
  uint64_t invalid0 = rx_invalid(cl);

  // A normal client keeps working during the storm; every answer is checked.
  std::atomic<bool> stop{false};
  std::atomic<int> ops{0}, failures{0};
  std::string first_failure;
  std::thread worker([&] {
    auto wc = connect_client({b.addr()});
    if (!wc.ok()) {
      first_failure = wc.error().to_string();
      ++failures;
      return;
    }
    std::mt19937_64 rng(3);
    for (int i = 0; i < 100000 && !stop.load(); ++i) {
      std::string name = "w" + std::to_string(i);
      proto::CreateReq cr;
      cr.parent = fs->root_ino;
      cr.name = name;
      cr.mode = S_IFREG | 0644;
      auto f = (*wc)->create(cr);
      auto data = random_bytes(rng, 1 + rng() % 20000);
      bool good = f.ok();
      if (good) good = (*wc)->write(f->ino, 0, data).ok();
      if (good) {
        auto back = (*wc)->read(f->ino, 0, static_cast<uint32_t>(data.size()));
        good = back.ok() && *back == data;
      }
      if (good) {
        auto l = (*wc)->lookup(fs->root_ino, name);
        good = l.ok() && l->ino == f->ino && l->size == data.size();
      }
      if (!good) {
        if (failures++ == 0) first_failure = "operation " + std::to_string(i) + " failed or returned wrong data";
        return;
      }
      ++ops;
    }
  });
  // Stops and joins the worker on every exit path (ASSERTs return early).
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, worker};

  std::vector<std::unique_ptr<UdpSender>> socks;
  for (int i = 0; i < kSockets; ++i) {
    socks.push_back(std::make_unique<UdpSender>());
    ASSERT_TRUE(socks.back()->ok());
  }
  // The client is running before the storm starts.
  uint64_t warm = mono_ns() + 20 * kSecond;
  while (ops.load() < 3 && failures.load() == 0 && mono_ns() < warm)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_GE(ops.load(), 3) << first_failure;
  std::mt19937_64 rng(99);
  int sent = 0;
  int ops_before = ops.load();
  uint64_t t0 = mono_ns();
  for (int i = 0; i < kDatagrams; ++i) {
    auto d = garbage(rng, i % 6);
    sent += socks[i % kSockets]->send(d, b.port());
    // Pace the storm (about 1 s) so the kernel's socket buffer does not drop
    // most of it and the client's calls interleave with it.
    if (i % 64 == 63) std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  double storm_s = static_cast<double>(mono_ns() - t0) / 1e9;
  int ops_during = ops.load() - ops_before;
  // Let the client do some more work after the storm, then stop it.
  uint64_t deadline = mono_ns() + 20 * kSecond;
  int target = ops.load() + 20;
  while (ops.load() < target && failures.load() == 0 && mono_ns() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop = true;
  worker.join();
  std::printf("garbage: sent %d datagrams in %.2f s; client ops during storm %d, total %d\n", sent, storm_s,
              ops_during, ops.load());
  EXPECT_EQ(sent, kDatagrams);
  EXPECT_EQ(failures.load(), 0) << first_failure;
  EXPECT_GE(ops.load(), target) << "the client stopped making progress";
  EXPECT_GT(ops_during, 0) << "no client call completed during the storm";

  // The counter catches up once the backend drained its socket.
  uint64_t invalid = 0;
  deadline = mono_ns() + 10 * kSecond;
  for (int i = 0; i < 200 && mono_ns() < deadline; ++i) {
    invalid = rx_invalid(cl) - invalid0;
    if (invalid >= kDatagrams / 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf("garbage: rx_invalid rose by %llu\n", static_cast<unsigned long long>(invalid));
  EXPECT_GE(invalid, uint64_t{kDatagrams / 2});
  EXPECT_LE(invalid, uint64_t{kDatagrams});

  EXPECT_TRUE(b.running()) << b.log_tail();
  auto st = cl.status_all();
  ASSERT_EQ(st.size(), 1u);
  ASSERT_OK(st[0].second);
  EXPECT_EQ(st[0].second->pid, static_cast<uint64_t>(b.pid()));
  auto root = cl.getattr(fs->root_ino);
  ASSERT_OK(root);
  EXPECT_TRUE(S_ISDIR(root->mode));
}

}  // namespace
}  // namespace lanefs::test
