// SPDX-License-Identifier: GPL-2.0
/*
 * Direct IO: a file opened with FOPEN_DIRECT_IO (forcedirect), every
 * O_DIRECT IO, and the write-through of a mount without the write-back
 * cache. Each request carries up to max_write bytes, copied once between
 * the caller's memory and the frontend's pinned buffer.
 *
 * Synchronous IO (read(2), write(2), psync) sends one request after the
 * other and waits for each. Asynchronous IO (libaio, io_uring) of one
 * request's size does not wait: the read holds the caller's pages and
 * returns -EIOCBQUEUED; the answer is copied into those pages and the IO
 * completed (ki_complete) in the frontend's COMMIT, so one submitter keeps
 * as many IOs in flight as the ring has entries. An asynchronous write
 * copies its data into the entry before it returns, so it holds no pages.
 * Larger, O_DSYNC and file-extending asynchronous IOs take the
 * synchronous path.
 */
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "lanefs.h"

/*
 * A write that must clear set-user-ID (or set-group-ID with group execute)
 * goes through to the frontend flagged FUSE_WRITE_KILL_SUIDGID, which
 * clears them (as FUSE's HANDLE_KILLPRIV_V2 does), whatever the cache mode.
 */
bool lanefs_write_kills_privs(struct inode *inode)
{
	umode_t m = READ_ONCE(inode->i_mode);

	return ((m & S_ISUID) || (m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) &&
	       !capable(CAP_FSETID);
}

/* WRITE of `in` with in->size bytes of `from`; the answer into `out`. */
static void write_args(struct lanefs_args *a, struct inode *inode, const struct fuse_write_in *in,
		       struct fuse_write_out *out, struct iov_iter *from)
{
	lanefs_fill_header(a, FUSE_WRITE, lanefs_nodeid(inode));
	a->op_in = in;
	a->op_in_len = sizeof(*in);
	a->in_iter = from;
	a->in_iter_len = in->size;
	a->out = out;
	a->out_len = sizeof(*out);
}

/*
 * One asynchronous request. Allocated per IO (kept: it outlives the
 * submitter's stack); a read of more than LANEFS_AIO_PAGES pages also
 * allocates its page array.
 */
#define LANEFS_AIO_PAGES 4
struct lanefs_aio {
	struct lanefs_req req;
	struct lanefs_args a;
	struct kiocb *iocb;
	size_t want;
	union {
		struct fuse_read_in rd;
		struct fuse_write_in wr;
	} in;
	struct fuse_write_out wout;
	struct page **pages;       /* read: the caller's buffer, held */
	unsigned int nr_pages;
	size_t first_off;          /* where the buffer starts in pages[0] */
	struct page *inline_pages[LANEFS_AIO_PAGES];
};

/* The read's held pages go back (dirtied when data landed in them). */
static void aio_put_pages(struct lanefs_aio *io, bool dirty)
{
	unsigned int i;

	for (i = 0; i < io->nr_pages; i++) {
		if (dirty)
			set_page_dirty_lock(io->pages[i]);
		put_page(io->pages[i]);
	}
	if (io->pages != io->inline_pages)
		kvfree(io->pages);
	io->nr_pages = 0;
}

static void aio_done(struct lanefs_aio *io, long res)
{
	struct kiocb *iocb = io->iocb;

	inode_dio_end(file_inode(iocb->ki_filp));
	if (res > 0)
		iocb->ki_pos += res;
	kfree(io);
	iocb->ki_complete(iocb, res);
}

/* Copies the answer into the held pages (the one copy) and lets them go. */
static void aio_read_end(struct lanefs_req *req)
{
	struct lanefs_aio *io = container_of(req, struct lanefs_aio, req);
	size_t off = io->first_off, done = 0;
	long res = req->error;
	unsigned int i;
	ssize_t n;

	if (!res) {
		n = lanefs_finish(req->ent, &io->a);
		if (n >= 0) {
			n = min_t(ssize_t, n, io->want);	/* never more than asked */
			for (i = 0; i < io->nr_pages && done < n; i++) {
				size_t k = min_t(size_t, n - done, PAGE_SIZE - off);

				memcpy_to_page(io->pages[i], off, (const char *)io->a.reply + done, k);
				done += k;
				off = 0;
			}
			lanefs_put(&io->a);
		}
		res = n;
	}
	aio_put_pages(io, res > 0);
	aio_done(io, res);
}

/*
 * The reply's size is applied; cached pages of the range are dropped
 * without waiting on a page lock (invalidate_mapping_pages): this runs in
 * the frontend's thread, and a locked page may be one whose READ waits
 * for that very thread.
 */
static void aio_write_end(struct lanefs_req *req)
{
	struct lanefs_aio *io = container_of(req, struct lanefs_aio, req);
	struct inode *inode = file_inode(io->iocb->ki_filp);
	loff_t pos = io->in.wr.offset;
	long res = req->error;

	if (!res) {
		res = lanefs_finish(req->ent, &io->a);
		if (res >= 0)
			res = io->wout.size > io->want ? -EIO : io->wout.size;
	}
	if (res > 0) {
		lanefs_grow_size(inode, pos + res);
		if (inode->i_mapping->nrpages)
			invalidate_mapping_pages(inode->i_mapping, pos >> PAGE_SHIFT,
						 (pos + res - 1) >> PAGE_SHIFT);
	}
	lanefs_invalidate_attr(inode);	/* mtime, blocks */
	aio_done(io, res);
}

/* 1: not taken (the caller goes the synchronous way); else -EIOCBQUEUED or -errno. */
static ssize_t aio_read(struct kiocb *iocb, struct iov_iter *to, size_t want)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct lanefs_aio *io;
	ssize_t n;
	int err;

	if (!user_backed_iter(to) && !iov_iter_is_bvec(to))
		return 1;
	io = kzalloc(sizeof(*io), GFP_KERNEL);
	if (!io)
		return -ENOMEM;
	/* the whole buffer in one piece of the iterator, or the synchronous way */
	if (DIV_ROUND_UP(want, PAGE_SIZE) + 1 <= LANEFS_AIO_PAGES) {
		io->pages = io->inline_pages;
		n = iov_iter_get_pages2(to, io->pages, want, LANEFS_AIO_PAGES, &io->first_off);
	} else {
		n = iov_iter_get_pages_alloc2(to, &io->pages, want, &io->first_off);
	}
	if (n > 0)
		io->nr_pages = DIV_ROUND_UP(io->first_off + n, PAGE_SIZE);
	if (n != want) {
		if (n > 0)
			iov_iter_revert(to, n);
		aio_put_pages(io, false);
		kfree(io);
		return n < 0 ? n : 1;
	}
	io->iocb = iocb;
	io->want = want;
	io->in.rd = (struct fuse_read_in){ .fh = lanefs_file_fh(iocb->ki_filp), .offset = iocb->ki_pos,
					   .size = want };
	lanefs_read_args(&io->a, inode, &io->in.rd);
	io->a.nowait = iocb->ki_flags & IOCB_NOWAIT;
	io->req.end = aio_read_end;
	inode_dio_begin(inode);
	err = lanefs_start(lanefs_fc(inode), &io->a, &io->req);
	if (err) {
		inode_dio_end(inode);
		iov_iter_revert(to, n);
		aio_put_pages(io, false);
		kfree(io);
		return err;
	}
	return -EIOCBQUEUED;
}

/* Called with the inode locked; 1: not taken, else -EIOCBQUEUED or -errno. */
static ssize_t aio_write(struct kiocb *iocb, struct iov_iter *from, size_t want, u32 flags)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct lanefs_aio *io;
	int err;

	if (iocb->ki_flags & IOCB_DSYNC)
		return 1;	/* generic_write_sync() follows the synchronous write */
	io = kzalloc(sizeof(*io), GFP_KERNEL);
	if (!io)
		return -ENOMEM;
	io->iocb = iocb;
	io->want = want;
	io->in.wr = (struct fuse_write_in){ .fh = lanefs_file_fh(iocb->ki_filp), .offset = iocb->ki_pos,
					    .size = want, .write_flags = flags };
	write_args(&io->a, inode, &io->in.wr, &io->wout, from);
	io->a.nowait = iocb->ki_flags & IOCB_NOWAIT;
	io->req.end = aio_write_end;
	inode_dio_begin(inode);
	err = lanefs_start(lanefs_fc(inode), &io->a, &io->req);	/* copies the data */
	if (err) {
		inode_dio_end(inode);
		kfree(io);
		return err;
	}
	return -EIOCBQUEUED;
}

ssize_t lanefs_direct_read(struct kiocb *iocb, struct iov_iter *to)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct lanefs_conn *fc = lanefs_fc(inode);
	u64 fh = lanefs_file_fh(iocb->ki_filp);
	loff_t pos = iocb->ki_pos;
	ssize_t done = 0, n;
	int err;

	if (!iov_iter_count(to))
		return 0;
	if (iocb->ki_flags & IOCB_NOWAIT) {
		/* inline from io_uring: only what needs no waiting, else its worker retries */
		if (is_sync_kiocb(iocb) || iov_iter_count(to) > fc->max_write ||
		    filemap_range_needs_writeback(inode->i_mapping, pos, pos + iov_iter_count(to) - 1))
			return -EAGAIN;
		n = aio_read(iocb, to, iov_iter_count(to));
		return n == 1 ? -EAGAIN : n;
	}
	err = filemap_write_and_wait_range(inode->i_mapping, pos, pos + iov_iter_count(to) - 1);
	if (err)
		return err;
	if (!is_sync_kiocb(iocb) && iov_iter_count(to) <= fc->max_write) {
		n = aio_read(iocb, to, iov_iter_count(to));
		if (n <= 0)
			return n;
	}
	while (iov_iter_count(to)) {
		size_t want = min_t(size_t, iov_iter_count(to), fc->max_write);
		struct lanefs_args a;
		size_t got;

		n = lanefs_read_range(inode, fh, pos, want, &a);
		if (n < 0)
			break;
		n = min_t(ssize_t, n, want);	/* never more than asked */
		/* the one copy; no page fault while the entry is held (see req.c) */
		pagefault_disable();
		got = copy_to_iter(a.reply, n, to);
		pagefault_enable();
		lanefs_put(&a);
		pos += got;
		done += got;
		if (got < n) {
			/* the rest is asked again once the buffer is in memory */
			if (fault_in_iov_iter_writeable(to, n - got) == n - got) {
				n = -EFAULT;
				break;
			}
			continue;
		}
		if (n < want)
			break;	/* end of file */
	}
	iocb->ki_pos = pos;
	return done ? done : min_t(ssize_t, n, 0);
}

/* Called with the inode locked. */
ssize_t lanefs_direct_write(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct lanefs_conn *fc = lanefs_fc(inode);
	u64 fh = lanefs_file_fh(iocb->ki_filp);
	loff_t start = iocb->ki_pos, pos = start;
	ssize_t done = 0, n = 0;
	bool nowait = iocb->ki_flags & IOCB_NOWAIT;
	u32 flags = 0;
	int err;

	/* inline from io_uring: cached pages of the file would be waited on */
	if (nowait && (inode->i_mapping->nrpages || is_sync_kiocb(iocb)))
		return -EAGAIN;
	err = filemap_write_and_wait_range(inode->i_mapping, pos, pos + iov_iter_count(from) - 1);
	if (err)
		return err;
	if (lanefs_write_kills_privs(inode))
		flags |= FUSE_WRITE_KILL_SUIDGID;
	/*
	 * A write that extends the file goes the synchronous way (as FUSE's):
	 * the size moves only with its answer, and an O_APPEND write behind it
	 * must see the new end.
	 */
	if (!is_sync_kiocb(iocb) && iov_iter_count(from) <= fc->max_write &&
	    start + iov_iter_count(from) <= i_size_read(inode)) {
		size_t want = iov_iter_count(from);

		/* cached pages go now; the answer drops any read in meanwhile */
		invalidate_inode_pages2_range(inode->i_mapping, start >> PAGE_SHIFT,
					      (start + want - 1) >> PAGE_SHIFT);
		n = aio_write(iocb, from, want, flags);
		if (n <= 0)
			return n;
	}
	if (nowait)
		return -EAGAIN;	/* the synchronous way waits */
	while (iov_iter_count(from)) {
		size_t want = min_t(size_t, iov_iter_count(from), fc->max_write);
		struct fuse_write_in in = { .fh = fh, .offset = pos, .size = want, .write_flags = flags };
		struct fuse_write_out out;
		struct lanefs_args a;

		write_args(&a, inode, &in, &out, from);
		n = lanefs_send(fc, &a);	/* copies the data once, into the frontend's buffer */
		if (n < 0)
			break;
		if (out.size > want) {
			n = -EIO;
			break;
		}
		if (out.size < want)
			iov_iter_revert(from, want - out.size);
		pos += out.size;
		done += out.size;
		if (out.size < want)
			break;
	}
	if (done) {
		lanefs_grow_size(inode, pos);
		invalidate_inode_pages2_range(inode->i_mapping, start >> PAGE_SHIFT,
					      (pos - 1) >> PAGE_SHIFT);
	}
	lanefs_invalidate_attr(inode);	/* mtime, blocks */
	iocb->ki_pos = pos;
	return done ? done : min_t(ssize_t, n, 0);
}
