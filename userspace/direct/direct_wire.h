// What liblanefs-direct and lanefs-frontend share: the control messages on
// the frontend's direct socket and the layout of a ring in shared memory.
// Both sides are built from this one header (same build, same version).
//
// Control: a SOCK_SEQPACKET unix socket at <run dir>/direct.sock, one per
// process (its connection is the application's session: when it closes,
// the frontend stops the process's rings, unmaps its buffers and closes
// its files). Each Request gets one Reply; descriptors travel as
// SCM_RIGHTS with the request that introduces them.
//
// Ring memory (a memfd the library makes and the frontend maps):
//   RingShared | Sqe[entries] | lanefs_cqe[entries]
// The application produces SQEs and consumes CQEs; the frontend the
// other way round. Indices are free-running uint32 counters (slot =
// index & (entries - 1)), published with release stores and read with
// acquire loads. Doorbells: the frontend sets server_sleeping before it
// sleeps on the doorbell eventfd and checks the SQ again; the
// application writes the doorbell after publishing only when it takes
// the flag (an exchange to 0, so several submits ring once; both sides
// fence between the store and the load). Completions the same way round
// with app_waiting and the completion eventfd.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "lanefs/direct.h"

namespace lanefs::direct {

inline constexpr const char* kSocketName = "direct.sock";
inline constexpr uint32_t kRingMagic = 0x52444c4c;  // "LLDR"

enum class Op : uint32_t {
  kBufCreate = 1,     // fd: memfd sealed against shrinking; a = size -> a = buffer id
  kBufImportDmabuf,   // fd: dma-buf; a = offset, b = size -> a = id, b = 1 when RDMA-registered
  kBufFree,           // a = id
  kRingCreate,        // fds: ring memfd, doorbell, completion eventfd; a = entries; path = mount
  kRingDestroy,       // a = id
  kFileRegister,      // fd: the application's file -> a = file id, b = access (1 read, 2 write)
  kFileForget,        // a = file id
  kHello,             // path = a mount point: is it served here? (buffers need no mount)
};

struct Request {
  uint32_t op = 0;
  uint32_t pad = 0;
  uint64_t a = 0, b = 0;
  char path[1024] = {};
};

struct Reply {
  int32_t err = 0;  // 0 or -errno
  uint32_t pad = 0;
  uint64_t a = 0, b = 0;
  char msg[512] = {};  // why, when err != 0
};

inline constexpr uint8_t kOpRead = 1, kOpWrite = 2;

struct Sqe {
  uint8_t op = 0;  // kOpRead, kOpWrite
  uint8_t pad[3] = {};
  uint32_t buf = 0;   // buffer id
  uint32_t file = 0;  // file id
  uint32_t len = 0;
  uint64_t buf_off = 0;
  uint64_t file_off = 0;
  uint64_t user_data = 0;
};
static_assert(sizeof(Sqe) == 40);
static_assert(sizeof(lanefs_cqe) == 24);

struct RingShared {
  uint32_t magic = kRingMagic;
  uint32_t abi = LANEFS_DIRECT_ABI;
  uint32_t entries = 0;  // a power of two
  uint32_t pad = 0;
  alignas(64) std::atomic<uint32_t> sq_tail{0};  // application
  alignas(64) std::atomic<uint32_t> sq_head{0};  // frontend
  alignas(64) std::atomic<uint32_t> cq_tail{0};  // frontend
  alignas(64) std::atomic<uint32_t> cq_head{0};  // application
  alignas(64) std::atomic<uint32_t> server_sleeping{0};
  alignas(64) std::atomic<uint32_t> app_waiting{0};
};
static_assert(std::atomic<uint32_t>::is_always_lock_free, "ring indices are shared across processes");

inline size_t ring_bytes(uint32_t entries) {
  return sizeof(RingShared) + entries * (sizeof(Sqe) + sizeof(lanefs_cqe));
}
inline Sqe* ring_sqes(RingShared* r) { return reinterpret_cast<Sqe*>(r + 1); }
// `entries`: the creator's own count (the frontend never re-reads the
// application-writable header for it).
inline lanefs_cqe* ring_cqes(RingShared* r, uint32_t entries) {
  return reinterpret_cast<lanefs_cqe*>(ring_sqes(r) + entries);
}

}  // namespace lanefs::direct
