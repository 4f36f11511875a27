/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * lanefs.ko <-> lanefs-frontend: the one contract between the kernel
 * client and user space (C and C++ include it; no other header is shared).
 *
 * Requests and replies are the FUSE protocol's (<linux/fuse.h>, 7.31 and
 * later: fuse_in_header, the per-op *_in structs, fuse_out_header, the
 * *_out structs, fuse_dirent), laid out in a ring entry exactly as FUSE
 * over io_uring lays them out, so the frontend's one dispatcher serves
 * /dev/fuse, FUSE over io_uring and /dev/lanefs alike. FUSE_INIT is not
 * sent: LANEFS_IOC_SETUP carries what it would negotiate.
 *
 * Setup, in this order:
 *   1. open("/dev/lanefs", O_RDWR): a new connection;
 *   2. ioctl(fd, LANEFS_IOC_SETUP, &struct lanefs_setup);
 *   3. mount("SOURCE", MNT, "lanefs", flags, "fd=N,rootmode=40000,user_id=U,group_id=G")
 *      with N the fd of step 1;
 *   4. on an io_uring created with IORING_SETUP_SQE128, one
 *      IORING_OP_URING_CMD on fd per entry (cmd_op LANEFS_RING_REGISTER,
 *      struct lanefs_ring_cmd in the SQE's cmd area) for each queue.
 *
 * Attaching (a new frontend takes over a mount whose frontend died):
 * instead of step 3, ioctl(fd, LANEFS_IOC_ATTACH, &struct lanefs_attach)
 * with an fd of the mount's root (open(MNT, O_PATH | O_DIRECTORY): the
 * dead mount answers stat with ENOTCONN, not that). The mount stays where
 * it is, with every process's working directory and open file in it. The
 * kernel forgets the old frontend's lookup counts (no FORGET of them
 * reaches the new one); a file opened under the old frontend is opened
 * again (OPEN/OPENDIR with its flags) by its next read, write, fsync,
 * fallocate, ftruncate or readdir, and its RELEASE goes to the new
 * frontend only then (until then requests about it carry fh 0). Errors: EPERM without CAP_SYS_ADMIN; EINVAL when
 * mount_fd is not the root of a lanefs mount, the connection is not set
 * up or already serves a mount, or its LANEFS_SETUP_WRITEBACK_CACHE
 * differs from the mount's; EBUSY while the mount's connection is alive.
 *
 * Ring: every queue (0 .. queues-1; the kernel uses the queue of the CPU a
 * caller runs on, and another queue's free entry when its own has none)
 * holds `depth` entries. An entry is two user buffers: a header buffer of
 * at least sizeof(struct lanefs_ring_header) and a payload buffer of
 * `payload_size` bytes. REGISTER pins both buffers' pages
 * (FOLL_LONGTERM) and maps them into the kernel for the life of the
 * connection: a request's data is copied once, by the calling task, from
 * its own memory straight into the payload buffer (writes), and a
 * reply's data once from the payload buffer into the caller's memory or
 * page cache (reads). The REGISTER command completes (res 0) when a
 * request is in the entry:
 *   header.in_out  fuse_in_header
 *   header.op_in   the per-op header (in_args[0]: fuse_read_in, ...),
 *                  empty for ops that start with a name
 *   header.ent     commit_id (give it back with the reply), payload_sz
 *   payload        the rest (names, write data), payload_sz bytes.
 * The frontend answers with LANEFS_RING_COMMIT_AND_FETCH (same entry,
 * commit_id): header.in_out holds a fuse_out_header, the payload the
 * reply's arguments (payload_sz bytes); the command then waits for the
 * entry's next request. FORGET gets no answer of its own: commit with
 * any reply. A command completes with -ENOTCONN when the connection ends
 * (unmount, the frontend closed it, the module aborted it).
 */
#ifndef _UAPI_LINUX_LANEFS_H
#define _UAPI_LINUX_LANEFS_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define LANEFS_ABI_VERSION 1
#define LANEFS_DEVICE "/dev/lanefs"
#define LANEFS_FSTYPE "lanefs"

/* Limits the module enforces on struct lanefs_setup. */
#define LANEFS_MAX_QUEUES 1024
#define LANEFS_MAX_DEPTH 256
#define LANEFS_MAX_PAYLOAD (16u << 20)

/* struct lanefs_setup.flags */
#define LANEFS_SETUP_WRITEBACK_CACHE (1u << 0) /* page cache holds dirty data (writecache) */

struct lanefs_setup {
	__u32 abi_version;  /* LANEFS_ABI_VERSION */
	__u32 queues;       /* ring queues: one per possible CPU */
	__u32 depth;        /* entries per queue */
	__u32 payload_size; /* bytes of each entry's payload buffer */
	__u32 max_write;    /* largest READ/WRITE, <= payload_size */
	__u32 max_readahead;
	__u32 flags;        /* LANEFS_SETUP_* */
	__u32 padding;
	__u64 reserved[4];
};

/* What the frontend tells the kernel about a file (struct lanefs_notify.code). */
#define LANEFS_NOTIFY_INVAL_INODE 1 /* drop attributes, and pages [off, off+len) (len 0: to the end; off < 0: none) */
#define LANEFS_NOTIFY_SIZE 2        /* the file's size is now at least `size` (it grew elsewhere) */

struct lanefs_notify {
	__u32 code;
	__u32 padding;
	__u64 nodeid;
	__s64 off;
	__s64 len;
	__u64 size;
};

/* LANEFS_IOC_ATTACH: serve an existing mount whose connection ended. */
struct lanefs_attach {
	__s32 mount_fd;     /* the mount's root directory */
	__u32 flags;        /* 0 */
	__u64 reserved[3];  /* 0 */
};

#define LANEFS_IOC_MAGIC 0xE6
#define LANEFS_IOC_SETUP _IOW(LANEFS_IOC_MAGIC, 1, struct lanefs_setup)
#define LANEFS_IOC_NOTIFY _IOW(LANEFS_IOC_MAGIC, 2, struct lanefs_notify)
#define LANEFS_IOC_ATTACH _IOW(LANEFS_IOC_MAGIC, 3, struct lanefs_attach)

/* IORING_OP_URING_CMD cmd_op values (the same numbers as FUSE over io_uring). */
#define LANEFS_RING_REGISTER 1
#define LANEFS_RING_COMMIT_AND_FETCH 2

/* The same layout as struct fuse_uring_ent_in_out. */
struct lanefs_ring_ent {
	__u64 flags;
	__u64 commit_id;
	__u32 payload_sz;
	__u32 padding;
	__u64 reserved;
};

/* The same layout as struct fuse_uring_req_header. */
struct lanefs_ring_header {
	__u8 in_out[128];
	__u8 op_in[128];
	struct lanefs_ring_ent ent;
};

/*
 * In the SQE's cmd area (80 bytes with IORING_SETUP_SQE128). The first 24
 * bytes are struct fuse_uring_cmd_req's; the buffers follow (REGISTER only).
 */
struct lanefs_ring_cmd {
	__u64 flags;
	__u64 commit_id;
	__u16 qid;
	__u8 padding[6];
	__u64 header;      /* REGISTER: user address of the header buffer */
	__u64 header_len;
	__u64 payload;     /* REGISTER: user address of the payload buffer */
	__u64 payload_len;
};

#endif /* _UAPI_LINUX_LANEFS_H */
