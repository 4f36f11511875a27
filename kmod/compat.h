/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place for differences between the kernels lanefs.ko builds on
 * (Debian's 6.1 and 6.12). Everything else is written against 6.12.
 */
#ifndef LANEFS_COMPAT_H
#define LANEFS_COMPAT_H

#include <linux/version.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/writeback.h>

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#include <linux/io_uring/cmd.h>
static inline const void *lanefs_cmd_area(struct io_uring_cmd *cmd)
{
	return io_uring_sqe_cmd(cmd->sqe);
}
#else
#include <linux/io_uring.h>
static inline const void *lanefs_cmd_area(struct io_uring_cmd *cmd)
{
	return cmd->cmd;
}
#endif

/* Mount idmaps (6.3): the VFS hands us one or a user namespace. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define LANEFS_IDMAP_T struct mnt_idmap
#define LANEFS_NOP_IDMAP (&nop_mnt_idmap)
#else
#define LANEFS_IDMAP_T struct user_namespace
#define LANEFS_NOP_IDMAP (&init_user_ns)
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
#define lanefs_fillattr(idmap, mask, inode, stat) generic_fillattr(idmap, mask, inode, stat)
#else
#define lanefs_fillattr(idmap, mask, inode, stat) generic_fillattr(idmap, inode, stat)
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static inline void lanefs_set_times(struct inode *inode, struct timespec64 a,
				    struct timespec64 m, struct timespec64 c)
{
	inode_set_atime_to_ts(inode, a);
	inode_set_mtime_to_ts(inode, m);
	inode_set_ctime_to_ts(inode, c);
}
static inline struct timespec64 lanefs_mtime(struct inode *inode)
{
	return inode_get_mtime(inode);
}
#else
static inline void lanefs_set_times(struct inode *inode, struct timespec64 a,
				    struct timespec64 m, struct timespec64 c)
{
	inode->i_atime = a;
	inode->i_mtime = m;
	inode->i_ctime = c;
}
static inline struct timespec64 lanefs_mtime(struct inode *inode)
{
	return inode->i_mtime;
}
#endif

/* write_begin/write_end take a folio since 6.12 (a page before). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#define LANEFS_WB_PAGE_T struct folio
static inline struct folio *lanefs_wb_folio(struct folio *f) { return f; }
static inline struct folio *lanefs_wb_out(struct folio *f) { return f; }
static inline struct folio *lanefs_wb_get(struct address_space *m, pgoff_t index)
{
	struct folio *f = __filemap_get_folio(m, index, FGP_WRITEBEGIN, mapping_gfp_mask(m));

	return IS_ERR(f) ? NULL : f;
}
#else
#define LANEFS_WB_PAGE_T struct page
static inline struct folio *lanefs_wb_folio(struct page *p) { return page_folio(p); }
static inline struct page *lanefs_wb_out(struct folio *f) { return &f->page; }
static inline struct folio *lanefs_wb_get(struct address_space *m, pgoff_t index)
{
	struct page *p = grab_cache_page_write_begin(m, index);

	return p ? page_folio(p) : NULL;
}
#endif

/* write_cache_pages() calls back with a folio since 6.3 (a page before). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define LANEFS_WRITEPAGE_T struct folio
static inline struct folio *lanefs_wp_folio(struct folio *f) { return f; }
#else
#define LANEFS_WRITEPAGE_T struct page
static inline struct folio *lanefs_wp_folio(struct page *p) { return page_folio(p); }
#endif

#endif /* LANEFS_COMPAT_H */
