// SPDX-License-Identifier: GPL-2.0
/*
 * Files: open/release, reads and writes, fsync, mmap and the page cache.
 *
 * Which path an IO takes follows the frontend's answers, as FUSE's does
 * (docs/mount.md is the contract): a file opened with FOPEN_DIRECT_IO
 * (forcedirect) and every O_DIRECT IO go straight to the frontend, up to
 * max_write per request, copied once between the caller's memory and the
 * frontend's pinned buffer. Otherwise reads go through the page cache
 * (read_folio, readahead in max_write pieces); writes are buffered and
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

static u64 file_fh(struct file *file)
{
	struct lanefs_file *lf = file ? file->private_data : NULL;

	return lf ? lf->fh : 0;
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
	if (S_ISREG(inode->i_mode) && !(lf->open_flags & FOPEN_KEEP_CACHE))
		invalidate_inode_pages2(inode->i_mapping);
}

int lanefs_do_open(struct inode *inode, struct file *file, bool dir)
{
	struct fuse_open_in in = { .flags = file->f_flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC) };
	struct fuse_open_out out;
	struct lanefs_file *lf;
	struct lanefs_args a;
	ssize_t n;

	lf = kzalloc(sizeof(*lf), GFP_KERNEL);
	if (!lf)
		return -ENOMEM;
	lanefs_fill_header(&a, dir ? FUSE_OPENDIR : FUSE_OPEN, lanefs_nodeid(inode));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	a.out = &out;
	a.out_len = sizeof(out);
	n = lanefs_send(lanefs_fc(inode), &a);
	if (n < 0) {
		kfree(lf);
		return n;
	}
	lf->fh = out.fh;
	lf->open_flags = out.open_flags;
	set_open(inode, file, lf);
	return 0;
}

int lanefs_finish_create(struct inode *inode, struct file *file, const struct fuse_open_out *oo)
{
	struct lanefs_file *lf = kzalloc(sizeof(*lf), GFP_KERNEL);

	if (!lf) {
		lanefs_release_fh(inode, oo->fh, file->f_flags, false);
		return -ENOMEM;
	}
	lf->fh = oo->fh;
	lf->open_flags = oo->open_flags;
	set_open(inode, file, lf);
	return 0;
}

/* RELEASE is sent without waiting for its answer: close(2) does not wait on it. */
void lanefs_release_fh(struct inode *inode, u64 fh, u32 flags, bool dir)
{
	struct fuse_release_in in = { .fh = fh, .flags = flags };
	struct lanefs_args a;

	lanefs_fill_header(&a, dir ? FUSE_RELEASEDIR : FUSE_RELEASE, lanefs_nodeid(inode));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	a.noreply = true;
	lanefs_send(lanefs_fc(inode), &a);
}

static int lanefs_open(struct inode *inode, struct file *file)
{
	int err = generic_file_open(inode, file);

	return err ? err : lanefs_do_open(inode, file, false);
}

static int lanefs_release(struct inode *inode, struct file *file)
{
	struct lanefs_file *lf = file->private_data;

	if (lf)
		lanefs_release_fh(inode, lf->fh, file->f_flags, false);
	kfree(lf);
	return 0;
}

/* close(2): dirty pages reach the frontend, and FLUSH makes them durable. */
static int lanefs_flush(struct file *file, fl_owner_t id)
{
	struct inode *inode = file_inode(file);
	struct fuse_flush_in in = { .fh = file_fh(file) };
	struct lanefs_args a;
	ssize_t n;
	int err;

	if (!(file->f_mode & FMODE_WRITE))
		return 0;
	err = filemap_write_and_wait(inode->i_mapping);
	if (err)
		return err;
	lanefs_fill_header(&a, FUSE_FLUSH, lanefs_nodeid(inode));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	n = lanefs_send(lanefs_fc(inode), &a);
	return n == -ENOSYS ? 0 : (n < 0 ? n : 0);
}

static int lanefs_fsync(struct file *file, loff_t start, loff_t end, int datasync)
{
	struct inode *inode = file_inode(file);
	struct fuse_fsync_in in = { .fh = file_fh(file), .fsync_flags = datasync ? 1 : 0 };
	struct lanefs_args a;
	ssize_t n;
	int err;

	err = file_write_and_wait_range(file, start, end);
	if (err)
		return err;
	lanefs_fill_header(&a, FUSE_FSYNC, lanefs_nodeid(inode));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	n = lanefs_send(lanefs_fc(inode), &a);
	return n == -ENOSYS ? 0 : (n < 0 ? n : 0);
}

/* One READ of [pos, pos+len): the reply stays in the entry (lanefs_put). */
static ssize_t read_range(struct inode *inode, u64 fh, loff_t pos, size_t len, struct lanefs_args *a)
{
	struct fuse_read_in in = { .fh = fh, .offset = pos, .size = len };

	lanefs_fill_header(a, FUSE_READ, lanefs_nodeid(inode));
	a->op_in = &in;
	a->op_in_len = sizeof(in);
	a->keep = true;
	return lanefs_send(lanefs_fc(inode), a);
}

static ssize_t direct_read(struct kiocb *iocb, struct iov_iter *to)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct lanefs_conn *fc = lanefs_fc(inode);
	u64 fh = file_fh(iocb->ki_filp);
	loff_t pos = iocb->ki_pos;
	ssize_t done = 0, n;
	int err;

	if (!iov_iter_count(to))
		return 0;
	err = filemap_write_and_wait_range(inode->i_mapping, pos, pos + iov_iter_count(to) - 1);
	if (err)
		return err;
	while (iov_iter_count(to)) {
		size_t want = min_t(size_t, iov_iter_count(to), fc->max_write);
		struct lanefs_args a;
		size_t got;

		n = read_range(inode, fh, pos, want, &a);
		if (n < 0)
			break;
		n = min_t(ssize_t, n, want);	/* never more than asked */
		got = copy_to_iter(a.reply, n, to);	/* the one copy */
		lanefs_put(&a);
		pos += got;
		done += got;
		if (got < n) {
			n = -EFAULT;
			break;
		}
		if (n < want)
			break;	/* end of file */
	}
	iocb->ki_pos = pos;
	return done ? done : min_t(ssize_t, n, 0);
}

static ssize_t lanefs_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	int err;

	if (file_direct(iocb))
		return direct_read(iocb, to);
	/* past what the kernel knows of the file: it may have grown elsewhere */
	if (iocb->ki_pos + iov_iter_count(to) > i_size_read(inode)) {
		err = lanefs_update_attr(inode, false);
		if (err)
			return err;
	}
	return generic_file_read_iter(iocb, to);
}

/*
 * A write that must clear set-user-ID (or set-group-ID with group execute)
 * goes through to the frontend flagged FUSE_WRITE_KILL_SUIDGID, which
 * clears them (as FUSE's HANDLE_KILLPRIV_V2 does), whatever the cache mode.
 */
static bool write_kills_privs(struct inode *inode)
{
	umode_t m = READ_ONCE(inode->i_mode);

	return ((m & S_ISUID) || (m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) &&
	       !capable(CAP_FSETID);
}

static ssize_t direct_write(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct lanefs_conn *fc = lanefs_fc(inode);
	u64 fh = file_fh(iocb->ki_filp);
	loff_t start = iocb->ki_pos, pos = start;
	ssize_t done = 0, n = 0;
	u32 flags = 0;
	int err;

	err = filemap_write_and_wait_range(inode->i_mapping, pos, pos + iov_iter_count(from) - 1);
	if (err)
		return err;
	if (write_kills_privs(inode))
		flags |= FUSE_WRITE_KILL_SUIDGID;
	while (iov_iter_count(from)) {
		size_t want = min_t(size_t, iov_iter_count(from), fc->max_write);
		struct fuse_write_in in = { .fh = fh, .offset = pos, .size = want, .write_flags = flags };
		struct fuse_write_out out;
		struct lanefs_args a;

		/* faults are taken before an entry is held (a fault may need one) */
		if (fault_in_iov_iter_readable(from, want) == want) {
			n = -EFAULT;
			break;
		}
		lanefs_fill_header(&a, FUSE_WRITE, lanefs_nodeid(inode));
		a.op_in = &in;
		a.op_in_len = sizeof(in);
		a.in_iter = from;
		a.in_iter_len = want;
		a.out = &out;
		a.out_len = sizeof(out);
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
		spin_lock(&lanefs_i(inode)->lock);
		if (pos > i_size_read(inode))
			i_size_write(inode, pos);
		spin_unlock(&lanefs_i(inode)->lock);
		invalidate_inode_pages2_range(inode->i_mapping, start >> PAGE_SHIFT,
					      (pos - 1) >> PAGE_SHIFT);
	}
	lanefs_invalidate_attr(inode);	/* mtime, blocks */
	iocb->ki_pos = pos;
	return done ? done : min_t(ssize_t, n, 0);
}

static ssize_t lanefs_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	ssize_t ret;

	inode_lock(inode);
	ret = generic_write_checks(iocb, from);
	if (ret <= 0)
		goto out;
	if (file_direct(iocb) || !lanefs_fc(inode)->writeback || write_kills_privs(inode)) {
		ret = direct_write(iocb, from);
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
	struct fuse_fallocate_in in = {
		.fh = file_fh(file), .offset = offset, .length = length, .mode = mode,
	};
	struct lanefs_args a;
	ssize_t n;
	int err;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return -EOPNOTSUPP;
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
	if (!(mode & FALLOC_FL_KEEP_SIZE) && offset + length > i_size_read(inode)) {
		spin_lock(&lanefs_i(inode)->lock);
		i_size_write(inode, offset + length);
		spin_unlock(&lanefs_i(inode)->lock);
	}
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

/* ---- the page cache */

/* Fills a locked folio from the reply of `a` (n bytes), zeroing the rest. */
static void fill_folio(struct folio *folio, const void *src, size_t n)
{
	void *dst = kmap_local_folio(folio, 0);

	n = min_t(size_t, n, PAGE_SIZE);
	memcpy(dst, src, n);
	memset(dst + n, 0, PAGE_SIZE - n);
	kunmap_local(dst);
	flush_dcache_folio(folio);
	folio_mark_uptodate(folio);
}

static int read_into_folio(struct file *file, struct folio *folio)
{
	struct inode *inode = folio->mapping->host;
	struct lanefs_args a;
	ssize_t n = read_range(inode, file_fh(file), folio_pos(folio), PAGE_SIZE, &a);

	if (n < 0)
		return n;
	fill_folio(folio, a.reply, n);
	lanefs_put(&a);
	return 0;
}

static int lanefs_read_folio(struct file *file, struct folio *folio)
{
	int err = read_into_folio(file, folio);

	folio_unlock(folio);
	return err;
}

/*
 * Readahead in max_write pieces: one READ fills a run of pages. Positions
 * are counted here: readahead_pos() lags one folio behind while folios
 * are taken (readahead_folio() advances lazily).
 */
static void lanefs_readahead(struct readahead_control *rac)
{
	struct inode *inode = rac->mapping->host;
	struct lanefs_conn *fc = lanefs_fc(inode);
	unsigned int left = readahead_count(rac);
	loff_t pos = readahead_pos(rac);
	u64 fh = file_fh(rac->file);

	while (left) {
		unsigned int nr = min_t(unsigned int, left, fc->max_write >> PAGE_SHIFT);
		struct lanefs_args a;
		struct folio *folio;
		size_t off = 0;
		unsigned int i;
		ssize_t n;

		n = read_range(inode, fh, pos, (size_t)nr << PAGE_SHIFT, &a);
		for (i = 0; i < nr && (folio = readahead_folio(rac)) != NULL; i++) {
			if (n >= 0)
				fill_folio(folio, a.reply + off, off < n ? n - off : 0);
			off += PAGE_SIZE;
			folio_unlock(folio);
		}
		if (n < 0)
			return;	/* the rest stays not uptodate: read_folio tries again */
		lanefs_put(&a);
		pos += (loff_t)nr << PAGE_SHIFT;
		left -= nr;
	}
}

static int lanefs_write_begin(struct file *file, struct address_space *mapping, loff_t pos,
			      unsigned int len, LANEFS_WB_PAGE_T **pagep, void **fsdata)
{
	struct folio *folio = lanefs_wb_get(mapping, pos >> PAGE_SHIFT);
	int err;

	if (!folio)
		return -ENOMEM;
	*pagep = lanefs_wb_out(folio);
	if (folio_test_uptodate(folio) || len >= PAGE_SIZE)
		return 0;
	if (folio_pos(folio) >= i_size_read(mapping->host)) {
		/* past the end: nothing to read; what the write leaves is zeros */
		size_t off = offset_in_folio(folio, pos);

		folio_zero_segments(folio, 0, off, off + len, PAGE_SIZE);
		return 0;
	}
	err = read_into_folio(file, folio);
	if (err) {
		folio_unlock(folio);
		folio_put(folio);
	}
	return err;
}

static int lanefs_write_end(struct file *file, struct address_space *mapping, loff_t pos,
			    unsigned int len, unsigned int copied, LANEFS_WB_PAGE_T *page,
			    void *fsdata)
{
	struct folio *folio = lanefs_wb_folio(page);
	struct inode *inode = mapping->host;

	if (!folio_test_uptodate(folio)) {
		/* a whole page, or one past the end zeroed around the write */
		if (copied < len) {
			copied = 0;	/* a short copy into a page never read: again */
			goto unlock;
		}
		folio_mark_uptodate(folio);
	}
	if (pos + copied > i_size_read(inode)) {
		spin_lock(&lanefs_i(inode)->lock);
		i_size_write(inode, pos + copied);
		spin_unlock(&lanefs_i(inode)->lock);
	}
	folio_mark_dirty(folio);
unlock:
	folio_unlock(folio);
	folio_put(folio);
	return copied;
}

/* Write-back: runs of contiguous dirty pages, one WRITE per run (up to max_write). */
struct lanefs_wb {
	struct inode *inode;
	struct folio **folios;
	unsigned int nr, max;
	int err;
};

static void wb_send(struct lanefs_wb *wb)
{
	struct inode *inode = wb->inode;
	loff_t pos, size = i_size_read(inode);
	struct fuse_write_in in = {};
	struct fuse_write_out out;
	struct lanefs_args a;
	unsigned int i;
	size_t len;
	ssize_t n;

	if (!wb->nr)
		return;
	pos = folio_pos(wb->folios[0]);
	len = (size_t)wb->nr << PAGE_SHIFT;
	if (pos + len > size)
		len = size > pos ? size - pos : 0;
	n = 0;
	if (len) {
		in.offset = pos;
		in.size = len;
		lanefs_fill_header(&a, FUSE_WRITE, lanefs_nodeid(inode));
		a.op_in = &in;
		a.op_in_len = sizeof(in);
		a.in_folios = wb->folios;
		a.in_nr_folios = wb->nr;
		a.in_folios_len = len;
		a.nokill = true;	/* a killed fsync must not lose other writers' pages */
		a.out = &out;
		a.out_len = sizeof(out);
		n = lanefs_send(lanefs_fc(inode), &a);
		if (n >= 0 && out.size != len)
			n = -EIO;
	}
	for (i = 0; i < wb->nr; i++) {
		if (n < 0)
			mapping_set_error(inode->i_mapping, n);
		folio_end_writeback(wb->folios[i]);
		folio_put(wb->folios[i]);
	}
	if (n < 0 && !wb->err)
		wb->err = n;
	wb->nr = 0;
}

static int wb_page(LANEFS_WRITEPAGE_T *page, struct writeback_control *wbc, void *data)
{
	struct folio *folio = lanefs_wp_folio(page);
	struct lanefs_wb *wb = data;

	bool flush = wb->nr && (wb->nr == wb->max ||
				folio->index != wb->folios[wb->nr - 1]->index + 1);

	folio_get(folio);	/* ours until its run is written */
	folio_start_writeback(folio);
	folio_unlock(folio);	/* before waiting for the frontend */
	if (flush)
		wb_send(wb);
	wb->folios[wb->nr++] = folio;
	return 0;
}

static int lanefs_writepages(struct address_space *mapping, struct writeback_control *wbc)
{
	struct lanefs_wb wb = { .inode = mapping->host };
	int err;

	wb.max = lanefs_fc(wb.inode)->max_write >> PAGE_SHIFT;
	wb.folios = kvmalloc_array(wb.max, sizeof(*wb.folios), GFP_NOFS);
	if (!wb.folios)
		return -ENOMEM;
	err = write_cache_pages(mapping, wbc, wb_page, &wb);
	wb_send(&wb);
	kvfree(wb.folios);
	if (!err)
		lanefs_invalidate_attr(wb.inode);
	return err ? err : wb.err;
}

/* A dirty folio that must go now (invalidation): written by itself. */
static int lanefs_launder_folio(struct folio *folio)
{
	struct inode *inode = folio->mapping->host;
	struct folio *one[1] = { folio };
	struct lanefs_wb wb = { .inode = inode, .folios = one, .max = 1 };

	if (!folio_clear_dirty_for_io(folio))
		return 0;
	folio_get(folio);
	folio_start_writeback(folio);
	wb.folios[wb.nr++] = folio;
	wb_send(&wb);
	return wb.err;
}

const struct address_space_operations lanefs_aops = {
	.launder_folio = lanefs_launder_folio,
	.migrate_folio = filemap_migrate_folio,
	.read_folio = lanefs_read_folio,
	.readahead = lanefs_readahead,
	.writepages = lanefs_writepages,
	.dirty_folio = filemap_dirty_folio,
	.write_begin = lanefs_write_begin,
	.write_end = lanefs_write_end,
};
