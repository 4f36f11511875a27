// SPDX-License-Identifier: GPL-2.0
/*
 * The page cache of lanefs files (file.c says which IO takes it): reads
 * fill folios from READ replies (read_folio, readahead in max_write runs),
 * buffered writes go through write_begin/write_end, and write-back sends
 * runs of contiguous dirty pages, one WRITE per run.
 */
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/writeback.h>

#include "lanefs.h"

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
	ssize_t n = lanefs_read_range(inode, lanefs_file_fh(file), folio_pos(folio), PAGE_SIZE, &a);

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
	u64 fh = lanefs_file_fh(rac->file);

	while (left) {
		unsigned int nr = min_t(unsigned int, left, fc->max_write >> PAGE_SHIFT);
		struct lanefs_args a;
		struct folio *folio;
		size_t off = 0;
		unsigned int i;
		ssize_t n;

		n = lanefs_read_range(inode, fh, pos, (size_t)nr << PAGE_SHIFT, &a);
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
	lanefs_grow_size(inode, pos + copied);
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
