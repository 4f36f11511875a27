/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lanefs.ko internals: the connection to lanefs-frontend (dev.c), the
 * superblock and inodes (super.c), directories and names (dir.c), files
 * (file.c), direct IO (dio.c) and the page cache (pages.c). uapi/lanefs.h
 * is the contract with the frontend; requests are FUSE protocol messages
 * (<linux/fuse.h>).
 */
#ifndef LANEFS_H
#define LANEFS_H

#include <linux/completion.h>
#include <linux/fs.h>
#include <linux/fuse.h>
#include <linux/list.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "uapi/lanefs.h"

struct lanefs_conn;

/* One ring entry: the frontend's pinned buffers and the command it parked. */
enum lanefs_ent_state {
	LANEFS_ENT_NONE,    /* not registered, or the frontend works on it */
	LANEFS_ENT_AVAIL,   /* parked command, buffers free */
	LANEFS_ENT_FILLING, /* a caller writes its request */
	LANEFS_ENT_SENT,    /* the request went to the frontend */
	LANEFS_ENT_REPLIED, /* the reply is in the buffers; its caller reads it */
	LANEFS_ENT_DEAD,    /* the connection ended */
};

struct lanefs_req;

struct lanefs_entry {
	struct lanefs_queue *q;
	struct list_head avail;
	enum lanefs_ent_state state;
	u16 index;
	struct io_uring_cmd *cmd;  /* parked command (AVAIL, FILLING) */
	struct lanefs_ring_header *hdr;
	void *payload;
	size_t payload_len;
	struct page **pages;
	unsigned int nr_pages;
	void *map;                 /* vmap of every pinned page (header, then payload) */
	struct lanefs_req *req;    /* SENT: its caller; NULL once it gave up */
};

struct lanefs_queue {
	struct lanefs_conn *fc;
	spinlock_t lock;           /* entries' state, avail */
	struct list_head avail;
	struct lanefs_entry *entries;
	unsigned int registered;
	struct task_struct *task;  /* the thread serving the queue (it registered) */
};

struct lanefs_forget {
	struct list_head list;
	u64 nodeid, nlookup;
};

struct lanefs_conn {
	refcount_t ref;
	struct mutex setup_mutex;   /* setup, mount attach */
	bool set_up;
	bool mounted;
	bool dead;                  /* no new request; every command ended */
	struct lanefs_setup cfg;
	unsigned int nr_queues;
	struct lanefs_queue *queues;
	wait_queue_head_t waitq;    /* an entry is free, or the connection ended */
	atomic64_t unique;
	spinlock_t forget_lock;
	struct list_head forgets;   /* FORGETs waiting for a free entry */
	struct delayed_work monitor;
	unsigned long max_write;
	bool writeback;
	struct rw_semaphore sb_rwsem;
	struct super_block *sb;     /* the mount: notifications hold sb_rwsem for read */
	struct list_head retired;   /* in lanefs_sb.retired once a new connection took over */
};

/* One request: what goes out and where the reply goes. */
struct lanefs_arg {
	const void *value;
	u32 size;
};

struct lanefs_args {
	u32 opcode;
	u64 nodeid;
	const void *op_in;          /* per-op header (in_args[0]) */
	u32 op_in_len;
	unsigned int in_num;        /* payload pieces after op_in */
	struct lanefs_arg in[3];
	struct iov_iter *in_iter;   /* write data, copied from the caller */
	size_t in_iter_len;
	struct folio **in_folios;   /* write data from the page cache (order-0 folios) */
	unsigned int in_nr_folios;
	size_t in_folios_len;       /* bytes: whole pages, the last one may be partial */
	void *out;                  /* the reply's fixed arguments */
	u32 out_len;
	bool out_var;               /* a shorter reply is fine (out_len: its size) */
	bool noreply;               /* FORGET */
	bool nokill;                /* write-back: a fatal signal does not end the wait */
	bool keep;                  /* the caller reads the payload, then lanefs_put() */
	bool nowait;                /* IOCB_NOWAIT: -EAGAIN rather than wait for an entry or a fault */
	const struct cred *cred;    /* who asks (NULL: current): a reopen asks as the file's opener */
	/* set by lanefs_send() */
	u32 reply_len;              /* bytes in the reply's payload */
	const void *reply;          /* keep: the payload */
	struct lanefs_entry *ent;   /* keep: put it back with lanefs_put() */
};

/*
 * A request with the frontend. Without `end` its caller sleeps on `done`;
 * with it (asynchronous direct IO, file.c) `end` runs once the answer is
 * in, in the frontend's context (its COMMIT), or with `error` set when the
 * connection ends, in the aborter's; it may sleep and owns `ent`.
 */
struct lanefs_req {
	struct completion done;
	void (*end)(struct lanefs_req *req);
	int error;                  /* -ENOTCONN: the connection ended, no entry */
	struct lanefs_entry *ent;   /* the answer (REPLIED): lanefs_finish() reads it */
	struct list_head list;      /* abort: ends run after the queue lock */
};

/* dev.c */
int lanefs_dev_init(void);
void lanefs_dev_exit(void);
struct lanefs_conn *lanefs_conn_from_fd(int fd);
int lanefs_conn_claim(struct lanefs_conn *fc);
void lanefs_conn_set_sb(struct lanefs_conn *fc, struct super_block *sb);
void lanefs_conn_put(struct lanefs_conn *fc);
void lanefs_conn_abort(struct lanefs_conn *fc);
void lanefs_conn_unpin(struct lanefs_conn *fc);

/* attach.c */
int lanefs_attach(struct lanefs_conn *fc, const void __user *arg);

/* req.c */
void lanefs_complete_cmd(struct io_uring_cmd *cmd, int res);
void lanefs_put_entry(struct lanefs_entry *e);
int lanefs_start(struct lanefs_conn *fc, struct lanefs_args *a, struct lanefs_req *req);
ssize_t lanefs_finish(struct lanefs_entry *e, struct lanefs_args *a);
ssize_t lanefs_send(struct lanefs_conn *fc, struct lanefs_args *a);
void lanefs_put(struct lanefs_args *a);
void lanefs_queue_forget(struct lanefs_conn *fc, u64 nodeid, u64 nlookup);

/* super.c */
extern struct file_system_type lanefs_fs_type;

struct lanefs_sb {
	struct lanefs_conn *fc;     /* the serving connection: swapped by attach (READ_ONCE) */
	struct list_head retired;   /* connections it replaced: freed with the superblock */
	kuid_t uid;
	kgid_t gid;
	struct super_block *sb;
};

struct lanefs_inode {
	struct inode vfs;
	u64 nodeid;
	u64 nlookup;               /* lookups counted_by's frontend counted (FORGET returns them) */
	struct lanefs_conn *counted_by; /* attach.c: another connection's frontend never counted them */
	u64 attr_expire;           /* jiffies64 */
	spinlock_t lock;
};

struct lanefs_file {
	u64 fh;
	u32 open_flags;            /* FOPEN_* of the reply */
	struct lanefs_conn *fc;    /* the connection that opened it (compared, never used) */
	struct mutex reopen;       /* lanefs_file_current(): one reopen at a time */
};

static inline struct lanefs_inode *lanefs_i(struct inode *inode)
{
	return container_of(inode, struct lanefs_inode, vfs);
}

static inline struct lanefs_sb *lanefs_s(struct super_block *sb)
{
	return sb->s_fs_info;
}

static inline struct lanefs_conn *lanefs_fc(struct inode *inode)
{
	return READ_ONCE(lanefs_s(inode->i_sb)->fc);
}

static inline u64 lanefs_nodeid(struct inode *inode)
{
	return lanefs_i(inode)->nodeid;
}

u64 lanefs_expire(u64 sec, u32 nsec);
struct inode *lanefs_iget(struct super_block *sb, struct lanefs_conn *fc, u64 nodeid, u64 generation,
			  const struct fuse_attr *attr, u64 attr_valid, u32 attr_valid_nsec);
void lanefs_count_lookup(struct inode *inode, struct lanefs_conn *fc);
void lanefs_apply_attr(struct inode *inode, const struct fuse_attr *attr, u64 attr_valid,
		       u32 attr_valid_nsec);
void lanefs_invalidate_attr(struct inode *inode);
int lanefs_update_attr(struct inode *inode, bool force);
void lanefs_grow_size(struct inode *inode, loff_t end);
void lanefs_fill_header(struct lanefs_args *a, u32 opcode, u64 nodeid);
int lanefs_notify(struct lanefs_conn *fc, const struct lanefs_notify *n);
int lanefs_fs_init(void);
void lanefs_fs_exit(void);

/* dir.c */
extern const struct inode_operations lanefs_dir_iops;
extern const struct inode_operations lanefs_symlink_iops;
extern const struct inode_operations lanefs_file_iops;
extern const struct file_operations lanefs_dir_fops;
extern const struct dentry_operations lanefs_dentry_ops;
extern const struct xattr_handler *lanefs_xattr_handlers[];
int lanefs_getattr(LANEFS_IDMAP_T *idmap, const struct path *path, struct kstat *stat,
		   u32 mask, unsigned int flags);
int lanefs_setattr(LANEFS_IDMAP_T *idmap, struct dentry *dentry, struct iattr *attr);
int lanefs_permission(LANEFS_IDMAP_T *idmap, struct inode *inode, int mask);
ssize_t lanefs_listxattr(struct dentry *dentry, char *list, size_t size);

/* file.c */
extern const struct file_operations lanefs_file_fops;
u64 lanefs_file_fh(struct file *file);
int lanefs_file_reopen(struct file *file, bool nowait);

/*
 * A file opened under a frontend that a new one replaced (attach.c) is
 * opened again on first use; 0, or why it cannot be. The common case is
 * one comparison.
 */
static inline bool lanefs_file_fh_current(struct file *file)
{
	struct lanefs_file *lf = file->private_data;

	return !lf || smp_load_acquire(&lf->fc) == lanefs_fc(file_inode(file));
}

static inline int lanefs_file_current(struct file *file, bool nowait)
{
	if (likely(lanefs_file_fh_current(file)))
		return 0;
	return lanefs_file_reopen(file, nowait);
}
void lanefs_read_args(struct lanefs_args *a, struct inode *inode, const struct fuse_read_in *in);
ssize_t lanefs_read_range(struct inode *inode, u64 fh, loff_t pos, size_t len, struct lanefs_args *a);
int lanefs_send_sync(struct inode *inode, u32 opcode, const void *in, u32 in_len);

/* dio.c */
bool lanefs_write_kills_privs(struct inode *inode);
ssize_t lanefs_direct_read(struct kiocb *iocb, struct iov_iter *to);
ssize_t lanefs_direct_write(struct kiocb *iocb, struct iov_iter *from);

/* pages.c */
extern const struct address_space_operations lanefs_aops;
int lanefs_do_open(struct inode *inode, struct file *file, bool dir);
int lanefs_finish_create(struct lanefs_conn *fc, struct inode *inode, struct file *file,
			 const struct fuse_open_out *oo);
void lanefs_release_fh(struct lanefs_conn *fc, struct inode *inode, u64 fh, u32 flags, bool dir);
void lanefs_release_file(struct inode *inode, struct file *file, bool dir);

#endif /* LANEFS_H */
