/*
 * liblanefs-direct: zero-copy IO between an application and lanefs-frontend.
 *
 * An application (a data loader, a GPU framework) registers memory with the
 * frontend that serves a lanefs mount and submits reads and writes through
 * a ring in shared memory; the frontend moves the data between its lanes
 * and that memory and never touches the kernel's page cache:
 *   - host memory (lanefs_buf_create): a memfd mapped by the application
 *     and by the frontend. On the UDP and DPDK lanes a read's bytes go from
 *     the received packets straight into the buffer (one copy, none through
 *     FUSE); a write's bytes go from the buffer into the packets.
 *   - device memory (lanefs_buf_import_dmabuf, lanefs_buf_import_cuda): a
 *     dma-buf. Per IO the frontend takes GPUDirect (RDMA straight into the
 *     device memory) when the lane is RDMA, the filesystem is not
 *     encrypted, the dma-buf is registered with the RDMA device and the
 *     range is aligned; otherwise it bounces the data through host memory
 *     and says why in the completion (lanefs_cqe.reason) and in
 *     `lanefs stats --json` (gpudirect_bounce_reasons).
 * docs/direct.md says which parts ran on which machine.
 *
 * Files: IO names a file by a descriptor the application opened through
 * the mount (open(2) checked its permissions; a read needs it open for
 * reading, a write for writing). The first IO on a descriptor hands it to
 * the frontend (one round trip), which keeps the file open until the
 * application exits or calls lanefs_fd_forget().
 *
 * A direct write by a user other than root clears the file's
 * set-user-ID and set-group-ID bits, as write(2) does.
 *
 * Coherence with this host's page cache: a direct read first writes back
 * the dirty cached pages of its range; a direct write drops the cached
 * pages of the file afterwards (and grows the cached size when it grew the
 * file). Other hosts see a direct write as any write of this host.
 *
 * Errors: calls returning int return a count (>= 0) or -errno; calls
 * returning a pointer return NULL and set errno. Either way
 * lanefs_direct_error() then says what went wrong in words. The codes:
 *   -ENOENT   the path is not a lanefs mount served by this host's frontend
 *   -ENOTCONN no lanefs-frontend answers (LANEFS_RUN_DIR, default /run/lanefs),
 *             or it went away
 *   -EBADF    the descriptor is not open, or not open for this IO's direction
 *   -EXDEV    the descriptor is not on the ring's mount
 *   -ERANGE   off_in_buf + len runs past the buffer's end
 *   -EBUSY    the ring already holds `entries` IOs not yet reaped
 *   -EINVAL   a bad argument (NULL ring or buffer, len 0 or > LANEFS_DIRECT_MAX_IO,
 *             entries not 1..LANEFS_DIRECT_MAX_ENTRIES); as a completion's res:
 *             a write on a descriptor opened O_APPEND (direct writes take
 *             explicit offsets)
 *   -ENOTSUP  a part this build or machine lacks (CUDA, dma-buf mapping)
 *   -EMFILE   the frontend's per-application limits (rings, buffers, files)
 * A completion's res is the bytes moved or -errno (-EIO: a backend failed
 * or the data failed its checksum; -ENOSPC, -EROFS, -EDQUOT as write(2)).
 *
 * Threading: every call is thread-safe, except that one ring must be used
 * by one thread at a time (one ring per thread is the intended shape; a
 * process may hold many). Buffers may be shared by every ring.
 * Blocking: lanefs_*_create, lanefs_buf_import_*, the first IO on a new
 * descriptor and the *_destroy calls talk to the frontend (a round trip);
 * lanefs_prep_* and lanefs_submit never block; lanefs_wait blocks up to its
 * timeout.
 *
 * Fork: a child does not inherit the parent's buffers or rings (it must
 * make its own); the frontend frees everything of a process that exits.
 */
#ifndef LANEFS_DIRECT_H
#define LANEFS_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LANEFS_DIRECT_ABI 1
/* The largest single IO (bytes). */
#define LANEFS_DIRECT_MAX_IO (64u << 20)
/* The most entries of one ring. */
#define LANEFS_DIRECT_MAX_ENTRIES 4096u

typedef struct lanefs_buf lanefs_buf;
typedef struct lanefs_ring lanefs_ring;

/* How the frontend moved an IO's data (lanefs_cqe.path). */
enum lanefs_path {
  LANEFS_PATH_HOST = 0,      /* host buffer, datagram lane: one copy (packets <-> buffer) */
  LANEFS_PATH_RDMA = 1,      /* host buffer, RDMA lane */
  LANEFS_PATH_GPUDIRECT = 2, /* device buffer, RDMA straight into it */
  LANEFS_PATH_BOUNCED = 3,   /* device buffer, through a host buffer (reason says why) */
};

/* Why a device-memory IO did not take GPUDirect (lanefs_cqe.reason). */
enum lanefs_bounce_reason {
  LANEFS_BOUNCE_NONE = 0,
  LANEFS_BOUNCE_NOT_RDMA = 1,            /* the IO's lane is not RDMA */
  LANEFS_BOUNCE_ENCRYPTED = 2,           /* encrypted filesystem: sealed in the frontend */
  LANEFS_BOUNCE_UNALIGNED = 3,           /* buffer offset, file offset or length not 4 KiB aligned */
  LANEFS_BOUNCE_NO_DMABUF_SUPPORT = 4,   /* the RDMA device or build cannot register dma-bufs */
  LANEFS_BOUNCE_DEVICE_UNREGISTERED = 5, /* the dma-buf is not registered with the RDMA device */
};

/* One completion. */
struct lanefs_cqe {
  int64_t res;        /* bytes read or written (a read stops at end of file), or -errno */
  uint64_t user_data; /* as given to lanefs_prep_* */
  uint32_t path;      /* enum lanefs_path */
  uint32_t reason;    /* enum lanefs_bounce_reason (LANEFS_PATH_BOUNCED only) */
};

/* ---- Buffers ---------------------------------------------------------- */

/* A host buffer of `size` bytes (rounded up to 4 KiB), zero-filled, for
 * IO on any mount of this host's frontend; `mountpoint` finds the frontend
 * and must be one of its mounts. Its memory is lanefs_buf_addr(). */
lanefs_buf* lanefs_buf_create(const char* mountpoint, size_t size);

/* Device memory: `size` bytes at `offset` of the dma-buf `dmabuf_fd`
 * (dup'ed; the caller keeps its own). Registered with the RDMA device for
 * GPUDirect where the lane allows; otherwise the frontend maps it for the
 * bounce path. -ENOTSUP when the frontend can do neither with this
 * dma-buf. Uses the frontend of the process's earlier calls (or of
 * LANEFS_RUN_DIR). lanefs_buf_addr() is the application's own mapping of
 * it when the dma-buf can be mapped, else NULL. */
lanefs_buf* lanefs_buf_import_dmabuf(int dmabuf_fd, uint64_t offset, size_t size);

/* CUDA device memory at `dev_ptr` (from cuMemAlloc): its dma-buf from the
 * CUDA driver API (cuMemGetHandleForAddressRange), then as
 * lanefs_buf_import_dmabuf. -ENOTSUP when lanefs was built without CUDA
 * (LANEFS_CUDA=OFF or no toolkit) or the driver has no dma-buf support. */
lanefs_buf* lanefs_buf_import_cuda(void* dev_ptr, size_t size);

void* lanefs_buf_addr(const lanefs_buf* buf);
size_t lanefs_buf_size(const lanefs_buf* buf);

/* Frees the buffer in the frontend and here. IOs still using it must have
 * completed (-EBUSY otherwise: a ring of this process holds one). */
int lanefs_buf_destroy(lanefs_buf* buf);

/* ---- Rings -------------------------------------------------------------- */

/* A ring of `entries` (rounded up to a power of two) for IO on the files of
 * the mount at `mountpoint`. The frontend serves it on a thread of its own. */
lanefs_ring* lanefs_ring_create(const char* mountpoint, unsigned entries);

/* Waits for the ring's IOs in flight, then frees it. */
int lanefs_ring_destroy(lanefs_ring* ring);

/* Queues a read of `len` bytes at `file_off` of `fd` into `buf` at
 * `off_in_buf` (sent by the next lanefs_submit). 0 or -errno. */
int lanefs_prep_read(lanefs_ring* ring, lanefs_buf* buf, size_t off_in_buf, int fd, uint64_t file_off,
                     size_t len, uint64_t user_data);
/* Queues a write of `len` bytes of `buf` at `off_in_buf` to `fd` at `file_off`. */
int lanefs_prep_write(lanefs_ring* ring, lanefs_buf* buf, size_t off_in_buf, int fd, uint64_t file_off,
                      size_t len, uint64_t user_data);

/* Hands the queued IOs to the frontend (waking it only when it sleeps).
 * Returns how many it handed over. */
int lanefs_submit(lanefs_ring* ring);

/* Reaps up to `max` completions into `cqes`, waiting until at least `min`
 * are there or `timeout_ms` passed (-1: no limit). Returns how many it
 * reaped (fewer than `min` on timeout), or -errno (-ENOTCONN: the frontend
 * went away; IOs in flight are lost). */
int lanefs_wait(lanefs_ring* ring, struct lanefs_cqe* cqes, unsigned max, unsigned min, int timeout_ms);

/* ---- Descriptors and errors --------------------------------------------- */

/* The frontend lets go of `fd`'s file (call before closing `fd` when the
 * process goes on with other files; exit does it for all). 0 or -errno. */
int lanefs_fd_forget(int fd);

/* The last failed call's reason on this thread, in words ("" if none). */
const char* lanefs_direct_error(void);

#ifdef __cplusplus
}
#endif

#endif /* LANEFS_DIRECT_H */
