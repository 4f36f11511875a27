// SPDX-License-Identifier: GPL-2.0
/*
 * Files: open/release, reads and writes, fsync, mmap (the page cache
 * itself: pages.c).
 *
 * Which path an IO takes follows the frontend's answers, as FUSE's does
 * (docs/mount.md is the contract): a file opened with FOPEN_DIRECT_IO
 * (forcedirect) and every O_DIRECT IO go straight to the frontend (dio.c).
 * Otherwise reads go through the page cache (read_folio, readahead in
 * max_write pieces); writes are buffered and
 * written back in runs of contiguous pages (writepages) when the mount
 * has the write-back cache (writecache), else written through at once
 * and the cached range dropped (readcache).
 */
#include <linux/fs.h>
#include <linux/falloc.h>
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/writeback.h>

#include "lanefs.h"

/* The file's handle with the serving frontend (0: none there yet, attach.c). */
u64 lanefs_file_fh(struct file *file)
{
	struct lanefs_file *lf = file ? file->private_data : NULL;

	if (!lf || smp_load_acquire(&lf->fc) != lanefs_fc(file_inode(file)))
		return 0;
	return lf->fh;
}

static bool file_direct(struct kiocb *iocb)
{
	struct lanefs_file *lf = iocb->ki_filp->private_data;

	return (iocb->ki_flags & IOCB_DIRECT) || (lf && (lf->open_flags & FOPEN_DIRECT_IO));
}

static void set_open(struct inode *inode, struct file *file, struct lanefs_file *lf)
{
	file->private_data = lf;
	file->f_mode |= FMODE_CAN_ODIRECT;
	/* io_uring may issue inline (IOCB_NOWAIT): what would wait says -EAGAIN */
	if (S_ISREG(inode->i_mode))
		file->f_mode |= FMODE_NOWAIT;
	if (S_ISREG(inode->i_mode) && !(lf->open_flags & FOPEN_KEEP_CACHE))
		invalidate_inode_pages2(inode->i_mapping);
}

/* OPEN or OPENDIR of `file` on `fc` (its flags: no create, no truncate). */
static ssize_t send_open(struct lanefs_conn *fc, struct inode *inode, struct file *file, bool dir,
			 struct fuse_open_out *out)
{
	struct fuse_open_in in = { .flags = file->f_flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC) };
	struct lanefs_args a;

	lanefs_fill_header(&a, dir ? FUSE_OPENDIR : FUSE_OPEN, lanefs_nodeid(inode));
	a.cred = file->f_cred;	/* the opener, also when a reopen runs in another task */
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	a.out = out;
	a.out_len = sizeof(*out);
	return lanefs_send(fc, &a);
}

static struct lanefs_file *file_alloc(struct lanefs_conn *fc, const struct fuse_open_out *oo)
{
	struct lanefs_file *lf = kzalloc(sizeof(*lf), GFP_KERNEL);

	if (!lf)
		return NULL;
	lf->fh = oo->fh;
	lf->open_flags = oo->open_flags;
	lf->fc = fc;
	mutex_init(&lf->reopen);
	return lf;
}

int lanefs_do_open(struct inode *inode, struct file *file, bool dir)
{
	struct lanefs_conn *fc = lanefs_fc(inode);
	struct fuse_open_out out;
	struct lanefs_file *lf;
	ssize_t n;

	n = send_open(fc, inode, file, dir, &out);
	if (n < 0)
		return n;
	lf = file_alloc(fc, &out);
	if (!lf) {
		lanefs_release_fh(fc, inode, out.fh, file->f_flags, dir);
		return -ENOMEM;
	}
	set_open(inode, file, lf);
	return 0;
}

/* `fc`: the connection whose frontend made the file and counted its open. */
int lanefs_finish_create(struct lanefs_conn *fc, struct inode *inode, struct file *file,
			 const struct fuse_open_out *oo)
{
	struct lanefs_file *lf = file_alloc(fc, oo);

	if (!lf) {
		lanefs_release_fh(fc, inode, oo->fh, file->f_flags, false);
		return -ENOMEM;
	}
	set_open(inode, file, lf);
	return 0;
}

/*
 * The file was opened under a frontend that a new one replaced: open it
 * again there, as its opener (file->f_cred: the task using it now may be
 * another, or have dropped privileges since; its FOPEN_* flags stay those
 * the page cache was built on).
 * IOCB_NOWAIT callers are told to come back.
 */
int lanefs_file_reopen(struct file *file, bool nowait)
{
	struct inode *inode = file_inode(file);
	struct lanefs_file *lf = file->private_data;
	struct lanefs_conn *fc;
	struct fuse_open_out out;
	ssize_t n = 0;

	if (nowait)
		return -EAGAIN;
	if (mutex_lock_killable(&lf->reopen))
		return -EINTR;
	fc = lanefs_fc(inode);
	if (lf->fc != fc) {
		n = send_open(fc, inode, file, S_ISDIR(inode->i_mode), &out);
		if (n >= 0) {
			lf->fh = out.fh;
			smp_store_release(&lf->fc, fc);	/* fh before the connection it belongs to */
		}
	}
	mutex_unlock(&lf->reopen);
	return n < 0 ? n : 0;
}

/*
 * RELEASE, to the frontend that counted the open (fc; a replaced one drops
 * it), sent without waiting for its answer: close(2) does not wait on it.
 */
void lanefs_release_fh(struct lanefs_conn *fc, struct inode *inode, u64 fh, u32 flags, bool dir)
{
	struct fuse_release_in in = { .fh = fh, .flags = flags };
	struct lanefs_args a;

	lanefs_fill_header(&a, dir ? FUSE_RELEASEDIR : FUSE_RELEASE, lanefs_nodeid(inode));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	a.noreply = true;
	lanefs_send(fc, &a);
}

void lanefs_release_file(struct inode *inode, struct file *file, bool dir)
{
	struct lanefs_file *lf = file->private_data;

	if (lf)
		lanefs_release_fh(smp_load_acquire(&lf->fc), inode, lf->fh, file->f_flags, dir);
	kfree(lf);
}

static int lanefs_open(struct inode *inode, struct file *file)
{
	int err = generic_file_open(inode, file);

	return err ? err : lanefs_do_open(inode, file, false);
}

static int lanefs_release(struct inode *inode, struct file *file)
{
	lanefs_release_file(inode, file, false);
	return 0;
}

/*
 * A request whose only argument is its per-op header and whose answer is
 * an error code (FLUSH, FSYNC, FSYNCDIR): 0 or -errno; ENOSYS (the frontend
 * does not serve it) counts as done.
 */
int lanefs_send_sync(struct inode *inode, u32 opcode, const void *in, u32 in_len)
{
	struct lanefs_args a;
	ssize_t n;

	lanefs_fill_header(&a, opcode, lanefs_nodeid(inode));
	a.op_in = in;
	a.op_in_len = in_len;
	n = lanefs_send(lanefs_fc(inode), &a);
	return n == -ENOSYS ? 0 : (n < 0 ? n : 0);
}

/* close(2): dirty pages reach the frontend, and FLUSH makes them durable. */
static int lanefs_flush(struct file *file, fl_owner_t id)
{
	struct inode *inode = file_inode(file);
	struct fuse_flush_in in;
	int err;

	if (!(file->f_mode & FMODE_WRITE))
		return 0;
	err = filemap_write_and_wait(inode->i_mapping);	/* needs no handle */
	/* opened under a replaced frontend and not since: the serving one holds nothing to flush */
	if (err || !lanefs_file_fh_current(file))
		return err;
	in = (struct fuse_flush_in){ .fh = lanefs_file_fh(file) };
	return lanefs_send_sync(inode, FUSE_FLUSH, &in, sizeof(in));
}

static int lanefs_fsync(struct file *file, loff_t start, loff_t end, int datasync)
{
	struct inode *inode = file_inode(file);
	struct fuse_fsync_in in;
	int err = file_write_and_wait_range(file, start, end);	/* needs no handle */

	if (!err)
		err = lanefs_file_current(file, false);
	if (err)
		return err;
	in = (struct fuse_fsync_in){ .fh = lanefs_file_fh(file), .fsync_flags = datasync ? 1 : 0 };
	return lanefs_send_sync(inode, FUSE_FSYNC, &in, sizeof(in));
}

/* One READ of [pos, pos+len): the reply stays in the entry (lanefs_put). */
/* READ of `in`, its reply kept in the entry; `in` lives as long as the request. */
void lanefs_read_args(struct lanefs_args *a, struct inode *inode, const struct fuse_read_in *in)
{
	lanefs_fill_header(a, FUSE_READ, lanefs_nodeid(inode));
	a->op_in = in;
	a->op_in_len = sizeof(*in);
	a->keep = true;
}

ssize_t lanefs_read_range(struct inode *inode, u64 fh, loff_t pos, size_t len, struct lanefs_args *a)
{
	struct fuse_read_in in = { .fh = fh, .offset = pos, .size = len };

	lanefs_read_args(a, inode, &in);
	return lanefs_send(lanefs_fc(inode), a);
}

static ssize_t lanefs_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	bool noio = (iocb->ki_flags & (IOCB_NOWAIT | IOCB_NOIO)) == IOCB_NOWAIT;
	ssize_t ret = lanefs_file_current(iocb->ki_filp, iocb->ki_flags & IOCB_NOWAIT);

	if (ret)
		return ret;
	if (file_direct(iocb))
		return lanefs_direct_read(iocb, to);
	/* past what the kernel knows of the file: it may have grown elsewhere */
	if (iocb->ki_pos + iov_iter_count(to) > i_size_read(inode)) {
		if (iocb->ki_flags & IOCB_NOWAIT)
			return -EAGAIN;
		ret = lanefs_update_attr(inode, false);
		if (ret)
			return ret;
	}
	/* IOCB_NOWAIT: cached pages only (readahead waits for the frontend) */
	if (noio)
		iocb->ki_flags |= IOCB_NOIO;
	ret = generic_file_read_iter(iocb, to);
	if (noio)
		iocb->ki_flags &= ~IOCB_NOIO;
	return ret;
}

static ssize_t lanefs_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	ssize_t ret = lanefs_file_current(iocb->ki_filp, iocb->ki_flags & IOCB_NOWAIT);

	if (ret)
		return ret;
	/* nothing would ever write it back: no page is dirtied for a dead frontend */
	if (READ_ONCE(lanefs_fc(inode)->dead))
		return -ENOTCONN;
	if (iocb->ki_flags & IOCB_NOWAIT) {
		if (!inode_trylock(inode))
			return -EAGAIN;
	} else {
		inode_lock(inode);
	}
	ret = generic_write_checks(iocb, from);
	if (ret <= 0)
		goto out;
	if (file_direct(iocb) || !lanefs_fc(inode)->writeback || lanefs_write_kills_privs(inode)) {
		ret = lanefs_direct_write(iocb, from);
	} else if (iocb->ki_flags & IOCB_NOWAIT) {
		ret = -EAGAIN;	/* write_begin may read a page from the frontend */
	} else {
		ret = file_update_time(iocb->ki_filp);
		if (!ret) {
			loff_t pos = iocb->ki_pos;

			/* some kernels advance ki_pos in generic_perform_write, some leave it to us */
			ret = generic_perform_write(iocb, from);
			if (ret > 0)
				iocb->ki_pos = pos + ret;
		}
	}
out:
	inode_unlock(inode);
	if (ret > 0)
		ret = generic_write_sync(iocb, ret);
	return ret;
}

static loff_t lanefs_llseek(struct file *file, loff_t offset, int whence)
{
	struct inode *inode = file_inode(file);

	if (whence == SEEK_END || whence == SEEK_DATA || whence == SEEK_HOLE) {
		int err = lanefs_update_attr(inode, false);

		if (err)
			return err;
	}
	return generic_file_llseek(file, offset, whence);
}

static long lanefs_fallocate(struct file *file, int mode, loff_t offset, loff_t length)
{
	struct inode *inode = file_inode(file);
	struct fuse_fallocate_in in;
	struct lanefs_args a;
	ssize_t n;
	int err;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return -EOPNOTSUPP;
	err = lanefs_file_current(file, false);
	if (err)
		return err;
	in = (struct fuse_fallocate_in){
		.fh = lanefs_file_fh(file), .offset = offset, .length = length, .mode = mode,
	};
	inode_lock(inode);
	err = filemap_write_and_wait_range(inode->i_mapping, offset, offset + length - 1);
	if (err)
		goto out;
	lanefs_fill_header(&a, FUSE_FALLOCATE, lanefs_nodeid(inode));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	n = lanefs_send(lanefs_fc(inode), &a);
	err = n == -ENOSYS ? -EOPNOTSUPP : (n < 0 ? n : 0);
	if (err)
		goto out;
	/* a punched range reads zeros; allocating changes no byte (cached pages stay) */
	if (mode & FALLOC_FL_PUNCH_HOLE)
		truncate_pagecache_range(inode, offset, offset + length - 1);
	if (!(mode & FALLOC_FL_KEEP_SIZE))
		lanefs_grow_size(inode, offset + length);
	lanefs_invalidate_attr(inode);
out:
	inode_unlock(inode);
	return err;
}

/* The last unmap of a shared writable mapping writes its pages back (as FUSE). */
static void lanefs_vma_close(struct vm_area_struct *vma)
{
	if ((vma->vm_flags & VM_SHARED) && (vma->vm_flags & VM_MAYWRITE))
		filemap_write_and_wait(vma->vm_file->f_mapping);
}

static const struct vm_operations_struct lanefs_vm_ops = {
	.close = lanefs_vma_close,
	.fault = filemap_fault,
	.map_pages = filemap_map_pages,
	.page_mkwrite = filemap_page_mkwrite,
};

/* No reopen here (mmap_lock is held): faults need no handle. */
static int lanefs_mmap(struct file *file, struct vm_area_struct *vma)
{
	file_accessed(file);
	vma->vm_ops = &lanefs_vm_ops;
	return 0;
}

const struct file_operations lanefs_file_fops = {
	.llseek = lanefs_llseek,
	.read_iter = lanefs_read_iter,
	.write_iter = lanefs_write_iter,
	.mmap = lanefs_mmap,
	.open = lanefs_open,
	.flush = lanefs_flush,
	.release = lanefs_release,
	.fsync = lanefs_fsync,
	.fallocate = lanefs_fallocate,
};
