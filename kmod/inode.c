// SPDX-License-Identifier: GPL-2.0
/*
 * What every inode has: getattr/setattr/permission against the
 * frontend's attribute timeouts, symlink targets, and xattrs (every name
 * goes to the frontend, as on FUSE).
 */
#include <linux/slab.h>
#include <linux/xattr.h>

#include "lanefs.h"

/* ---- attributes */

int lanefs_getattr(LANEFS_IDMAP_T *idmap, const struct path *path, struct kstat *stat,
		   u32 mask, unsigned int flags)
{
	struct inode *inode = d_inode(path->dentry);
	int err = 0;

	if (!(flags & AT_STATX_DONT_SYNC))
		err = lanefs_update_attr(inode, flags & AT_STATX_FORCE_SYNC);
	if (err)
		return err;
	lanefs_fillattr(idmap, mask, inode, stat);
	stat->blksize = 1 << 20;
	return 0;
}

int lanefs_setattr(LANEFS_IDMAP_T *idmap, struct dentry *dentry, struct iattr *attr)
{
	struct inode *inode = d_inode(dentry);
	struct lanefs_conn *fc = lanefs_fc(inode);
	struct fuse_setattr_in in = {};
	struct fuse_attr_out out;
	struct lanefs_args a;
	ssize_t n;
	int err;

	err = setattr_prepare(idmap, dentry, attr);
	if (err)
		return err;
	if (attr->ia_valid & (ATTR_KILL_SUID | ATTR_KILL_SGID)) {
		/*
		 * A write, truncate or chown clearing set-user-ID/set-group-ID
		 * (the VFS turned the kill into ATTR_MODE): sent as the kill, as
		 * FUSE's HANDLE_KILLPRIV_V2 does, since the backend lets only the
		 * owner change a mode (docs/security.md, "Permissions").
		 */
		in.valid |= FATTR_KILL_SUIDGID;
	} else if (attr->ia_valid & ATTR_MODE) {
		in.valid |= FATTR_MODE;
		in.mode = attr->ia_mode;
	}
	if (attr->ia_valid & ATTR_UID) {
		in.valid |= FATTR_UID;
		in.uid = from_kuid(&init_user_ns, attr->ia_uid);
	}
	if (attr->ia_valid & ATTR_GID) {
		in.valid |= FATTR_GID;
		in.gid = from_kgid(&init_user_ns, attr->ia_gid);
	}
	if (attr->ia_valid & ATTR_SIZE) {
		in.valid |= FATTR_SIZE;
		in.size = attr->ia_size;
		if (S_ISREG(inode->i_mode)) {	/* mmap'd pages are dirty in every mode */
			inode_dio_wait(inode);	/* asynchronous direct IO in flight (dio.c) */
			err = filemap_write_and_wait(inode->i_mapping);
			if (err)
				return err;
		}
	}
	if (attr->ia_valid & ATTR_ATIME) {
		in.valid |= FATTR_ATIME;
		if (attr->ia_valid & ATTR_ATIME_SET) {
			in.atime = attr->ia_atime.tv_sec;
			in.atimensec = attr->ia_atime.tv_nsec;
		} else {
			in.valid |= FATTR_ATIME_NOW;
		}
	}
	if (attr->ia_valid & ATTR_MTIME) {
		in.valid |= FATTR_MTIME;
		if (attr->ia_valid & ATTR_MTIME_SET) {
			in.mtime = attr->ia_mtime.tv_sec;
			in.mtimensec = attr->ia_mtime.tv_nsec;
		} else {
			in.valid |= FATTR_MTIME_NOW;
		}
	}
	if ((attr->ia_valid & ATTR_FILE) && attr->ia_file->private_data && S_ISREG(inode->i_mode)) {
		int err = lanefs_file_current(attr->ia_file, false);	/* attach.c */

		if (err)
			return err;
		in.valid |= FATTR_FH;
		in.fh = lanefs_file_fh(attr->ia_file);
	}
	if (!in.valid)
		return 0;
	lanefs_fill_header(&a, FUSE_SETATTR, lanefs_nodeid(inode));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	a.out = &out;
	a.out_len = sizeof(out);
	n = lanefs_send(fc, &a);
	if (n < 0)
		return n;
	if ((inode->i_mode ^ out.attr.mode) & S_IFMT)
		return -EIO;
	if (attr->ia_valid & ATTR_SIZE)
		truncate_setsize(inode, attr->ia_size);
	lanefs_apply_attr(inode, &out.attr, out.attr_valid, out.attr_valid_nsec);
	return 0;
}

int lanefs_permission(LANEFS_IDMAP_T *idmap, struct inode *inode, int mask)
{
	u64 exp = READ_ONCE(lanefs_i(inode)->attr_expire);
	int err;

	if (!exp || time_after64(get_jiffies_64(), exp)) {
		if (mask & MAY_NOT_BLOCK)
			return -ECHILD;
		err = lanefs_update_attr(inode, false);
		if (err)
			return err;
	}
	return generic_permission(idmap, inode, mask);
}

/* ---- symlinks */

static const char *lanefs_get_link(struct dentry *dentry, struct inode *inode,
				   struct delayed_call *done)
{
	struct lanefs_args a;
	char *buf;
	ssize_t n;

	if (!dentry)
		return ERR_PTR(-ECHILD);
	buf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!buf)
		return ERR_PTR(-ENOMEM);
	lanefs_fill_header(&a, FUSE_READLINK, lanefs_nodeid(inode));
	a.keep = true;
	n = lanefs_send(lanefs_fc(inode), &a);
	if (n < 0 || n >= PAGE_SIZE) {
		if (n >= 0)
			lanefs_put(&a);
		kfree(buf);
		return ERR_PTR(n < 0 ? n : -ENAMETOOLONG);
	}
	memcpy(buf, a.reply, n);
	buf[n] = 0;
	lanefs_put(&a);
	set_delayed_call(done, kfree_link, buf);
	return buf;
}

/* ---- xattrs: every name goes to the frontend (prefix ""), as FUSE does */

static ssize_t get_or_list(struct inode *inode, u32 opcode, const char *name, void *value,
			   size_t size)
{
	struct fuse_getxattr_in in = { .size = size };
	struct fuse_getxattr_out out;
	struct lanefs_args a;
	ssize_t n;

	lanefs_fill_header(&a, opcode, lanefs_nodeid(inode));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	if (name) {
		a.in_num = 1;
		a.in[0].value = name;
		a.in[0].size = strlen(name) + 1;
	}
	if (!size) {
		a.out = &out;
		a.out_len = sizeof(out);
		n = lanefs_send(lanefs_fc(inode), &a);
		if (n == -ENOSYS)
			return -EOPNOTSUPP;
		return n < 0 ? n : out.size;
	}
	a.keep = true;
	n = lanefs_send(lanefs_fc(inode), &a);
	if (n == -ENOSYS)
		return -EOPNOTSUPP;
	if (n < 0)
		return n;
	if (n > size) {
		lanefs_put(&a);
		return -ERANGE;
	}
	memcpy(value, a.reply, n);
	lanefs_put(&a);
	return n;
}

static int lanefs_xattr_get(const struct xattr_handler *h, struct dentry *dentry,
			    struct inode *inode, const char *name, void *value, size_t size)
{
	return get_or_list(inode, FUSE_GETXATTR, name, value, size);
}

static int lanefs_xattr_set(const struct xattr_handler *h, LANEFS_IDMAP_T *idmap,
			    struct dentry *dentry, struct inode *inode, const char *name,
			    const void *value, size_t size, int flags)
{
	struct fuse_setxattr_in in = { .size = size, .flags = flags };
	struct lanefs_args a;
	ssize_t n;

	lanefs_fill_header(&a, value ? FUSE_SETXATTR : FUSE_REMOVEXATTR, lanefs_nodeid(inode));
	a.in[0].value = name;
	a.in[0].size = strlen(name) + 1;
	a.in_num = 1;
	if (value) {
		a.op_in = &in;
		a.op_in_len = FUSE_COMPAT_SETXATTR_IN_SIZE;
		a.in[1].value = value;
		a.in[1].size = size;
		a.in_num = 2;
	}
	n = lanefs_send(lanefs_fc(inode), &a);
	if (n == -ENOSYS)
		return -EOPNOTSUPP;
	if (n < 0)
		return n;
	lanefs_invalidate_attr(inode);	/* ctime */
	return 0;
}

ssize_t lanefs_listxattr(struct dentry *dentry, char *list, size_t size)
{
	return get_or_list(d_inode(dentry), FUSE_LISTXATTR, NULL, list, size);
}

static const struct xattr_handler lanefs_xattr_handler = {
	.prefix = "",
	.get = lanefs_xattr_get,
	.set = lanefs_xattr_set,
};

const struct xattr_handler *lanefs_xattr_handlers[] = {
	&lanefs_xattr_handler,
	NULL
};

const struct inode_operations lanefs_symlink_iops = {
	.get_link = lanefs_get_link,
	.getattr = lanefs_getattr,
	.setattr = lanefs_setattr,
	.listxattr = lanefs_listxattr,
};

const struct inode_operations lanefs_file_iops = {
	.getattr = lanefs_getattr,
	.setattr = lanefs_setattr,
	.permission = lanefs_permission,
	.listxattr = lanefs_listxattr,
};
