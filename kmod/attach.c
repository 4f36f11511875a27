// SPDX-License-Identifier: GPL-2.0
/*
 * Attach: a new frontend's connection takes over a mount whose connection
 * ended (its frontend died), so the mount, the working directories in it
 * and its open files live on (uapi/lanefs.h, LANEFS_IOC_ATTACH).
 *
 * The mount's connection pointer is swapped; callers read it with
 * READ_ONCE and may still hold the old one for a moment, so the old
 * connection is kept (dead: every call on it ends with -ENOTCONN) until
 * the superblock ends, with its dead frontend's pinned buffers given back
 * at once. The new frontend starts with no lookup counts: an inode's count
 * belongs to the connection that counted it (lanefs_count_lookup), so no
 * FORGET of the old frontend's counts reaches the new one, and a reply of
 * the old one that lands after the swap counts for nothing. Files opened
 * before are opened again on their next use (file.c, lanefs_file_current)
 * and released to the frontend that counted their open.
 */
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/uaccess.h>

#include "lanefs.h"

/* One attach at a time (they are rare: after a frontend died). */
static DEFINE_MUTEX(attach_mutex);

/* `fc` (set up, serving nothing) takes over the mount whose root `root` is. */
static int attach_to(struct lanefs_conn *fc, struct file *root)
{
	struct super_block *sb = file_inode(root)->i_sb;
	struct lanefs_conn *old;
	struct lanefs_sb *s;

	if (sb->s_type != &lanefs_fs_type || root->f_path.dentry != sb->s_root)
		return -EINVAL;
	s = lanefs_s(sb);
	old = s->fc;
	if (!READ_ONCE(old->dead))
		return -EBUSY;	/* its frontend serves it */
	if (!smp_load_acquire(&fc->set_up) || fc->writeback != old->writeback)
		return -EINVAL;
	if (lanefs_conn_claim(fc))
		return -EINVAL;
	lanefs_conn_set_sb(old, NULL);	/* no notification reaches the superblock through it */
	lanefs_conn_unpin(old);
	list_add(&old->retired, &s->retired);
	lanefs_conn_set_sb(fc, sb);
	smp_store_release(&s->fc, fc);	/* set up and claimed before it is seen */
	pr_info("lanefs: a new frontend (pid %d) attached to a mount whose frontend had died\n",
		task_tgid_nr(current));
	return 0;
}

int lanefs_attach(struct lanefs_conn *fc, const void __user *arg)
{
	struct lanefs_attach at;
	struct file *root;
	int err;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&at, arg, sizeof(at)))
		return -EFAULT;
	if (at.flags || at.reserved[0] || at.reserved[1] || at.reserved[2])
		return -EINVAL;
	/* O_PATH too (fget refuses it); it holds the mount, so the superblock lives on */
	root = fget_raw(at.mount_fd);
	if (!root)
		return -EBADF;
	mutex_lock(&attach_mutex);
	err = attach_to(fc, root);
	mutex_unlock(&attach_mutex);
	fput(root);
	return err;
}
