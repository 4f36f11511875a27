// SPDX-License-Identifier: GPL-2.0
/*
 * Names: lookup and revalidation with the frontend's entry timeouts, the
 * operations that make, link, rename and remove names, and readdir. Each
 * is one FUSE request (uapi/lanefs.h); an entry reply counts one lookup on
 * the node, returned by FORGET when the inode goes. Attributes, symlinks
 * and xattrs: inode.c.
 */
#include <linux/mm.h>
#include <linux/namei.h>
#include <linux/slab.h>

#include "lanefs.h"

static void set_entry_time(struct dentry *dentry, u64 sec, u32 nsec)
{
	dentry->d_time = (unsigned long)lanefs_expire(sec, nsec);
}

static bool entry_fresh(struct dentry *dentry)
{
	unsigned long t = READ_ONCE(dentry->d_time);

	return t && time_before(jiffies, t);
}

static void dir_changed(struct inode *dir)
{
	lanefs_invalidate_attr(dir);
}

/*
 * LOOKUP of `name` in `dir`: 0 and the entry, or -errno (-ENOENT: none;
 * out.entry_valid says how long); *fcp: the connection whose frontend
 * counted the lookup.
 */
static int do_lookup(struct inode *dir, const struct qstr *name, struct fuse_entry_out *out,
		     struct lanefs_conn **fcp)
{
	struct lanefs_conn *fc = lanefs_fc(dir);
	struct lanefs_args a;
	ssize_t n;

	if (name->len > NAME_MAX)
		return -ENAMETOOLONG;
	memset(out, 0, sizeof(*out));
	lanefs_fill_header(&a, FUSE_LOOKUP, lanefs_nodeid(dir));
	a.in_num = 1;
	a.in[0].value = name->name;
	a.in[0].size = name->len + 1;
	a.out = out;
	a.out_len = sizeof(*out);
	*fcp = fc;
	n = lanefs_send(fc, &a);
	if (n < 0)
		return n;
	if (!out->nodeid)
		return -ENOENT;	/* a negative entry the kernel may keep */
	if (out->nodeid == FUSE_ROOT_ID)
		return -EIO;
	return 0;
}

static struct dentry *lanefs_lookup(struct inode *dir, struct dentry *dentry, unsigned int flags)
{
	struct fuse_entry_out out;
	struct inode *inode = NULL;
	struct lanefs_conn *fc;
	struct dentry *alias;
	int err = do_lookup(dir, &dentry->d_name, &out, &fc);

	if (err && err != -ENOENT)
		return ERR_PTR(err);
	if (!err) {
		inode = lanefs_iget(dir->i_sb, fc, out.nodeid, out.generation, &out.attr, out.attr_valid,
				    out.attr_valid_nsec);
		if (IS_ERR(inode))
			return ERR_CAST(inode);
	}
	alias = d_splice_alias(inode, dentry);
	if (IS_ERR(alias))
		return alias;
	set_entry_time(alias ? alias : dentry, out.entry_valid, out.entry_valid_nsec);
	return alias;
}

static int lanefs_d_revalidate(struct dentry *dentry, unsigned int flags)
{
	struct inode *inode = d_inode_rcu(dentry);
	struct name_snapshot name;
	struct fuse_entry_out out;
	struct lanefs_conn *fc;
	struct dentry *parent;
	int err, ret;

	/*
	 * LOOKUP_REVAL: the walk is being redone because the frontend answered
	 * ESTALE (an open of a file changed elsewhere): ask it, as FUSE does,
	 * or the same stale answer comes back and reaches the caller.
	 */
	if (entry_fresh(dentry) && !(flags & LOOKUP_REVAL))
		return 1;
	if (flags & LOOKUP_RCU)
		return -ECHILD;
	parent = dget_parent(dentry);
	take_dentry_name_snapshot(&name, dentry);
	err = do_lookup(d_inode(parent), &name.name, &out, &fc);
	release_dentry_name_snapshot(&name);
	dput(parent);
	if (err == -ENOENT) {
		ret = inode ? 0 : 1;	/* still negative: keep it */
		if (ret)
			set_entry_time(dentry, out.entry_valid, out.entry_valid_nsec);
		return ret;
	}
	if (err == -EINTR || err == -ENOTCONN)
		return err;
	if (!err && !inode)	/* now positive: give back the lookup counted for it */
		lanefs_queue_forget(fc, out.nodeid, 1);
	if (err || !inode)
		return 0;
	if (out.nodeid != lanefs_nodeid(inode) || ((inode->i_mode ^ out.attr.mode) & S_IFMT) ||
	    inode->i_generation != (u32)out.generation) {
		/* another node, or the frontend wants a fresh inode: a new lookup builds it */
		lanefs_queue_forget(fc, out.nodeid, 1);
		return 0;
	}
	lanefs_count_lookup(inode, fc);
	lanefs_apply_attr(inode, &out.attr, out.attr_valid, out.attr_valid_nsec);
	set_entry_time(dentry, out.entry_valid, out.entry_valid_nsec);
	return 1;
}

const struct dentry_operations lanefs_dentry_ops = {
	.d_revalidate = lanefs_d_revalidate,
};

/* The entry a MKNOD/MKDIR/SYMLINK/LINK reply made, put on `dentry`. */
static int make_entry(struct inode *dir, struct dentry *dentry, struct lanefs_args *a)
{
	struct lanefs_conn *fc = lanefs_fc(dir);
	struct fuse_entry_out out;
	struct dentry *alias;
	struct inode *inode;
	ssize_t n;

	a->out = &out;
	a->out_len = sizeof(out);
	n = lanefs_send(fc, a);
	if (n < 0)
		return n;
	if (!out.nodeid || out.nodeid == FUSE_ROOT_ID)
		return -EIO;
	inode = lanefs_iget(dir->i_sb, fc, out.nodeid, out.generation, &out.attr, out.attr_valid,
			    out.attr_valid_nsec);
	if (IS_ERR(inode))
		return PTR_ERR(inode);
	dir_changed(dir);
	d_drop(dentry);
	alias = d_splice_alias(inode, dentry);
	if (IS_ERR(alias))
		return PTR_ERR(alias);
	if (alias) {
		set_entry_time(alias, out.entry_valid, out.entry_valid_nsec);
		dput(alias);
	} else {
		set_entry_time(dentry, out.entry_valid, out.entry_valid_nsec);
	}
	return 0;
}

static void name_arg(struct lanefs_args *a, struct dentry *dentry)
{
	a->in[a->in_num].value = dentry->d_name.name;
	a->in[a->in_num].size = dentry->d_name.len + 1;
	a->in_num++;
}

static int lanefs_mknod(LANEFS_IDMAP_T *idmap, struct inode *dir, struct dentry *dentry,
			umode_t mode, dev_t rdev)
{
	struct fuse_mknod_in in = {
		.mode = mode, .rdev = new_encode_dev(rdev), .umask = current_umask(),
	};
	struct lanefs_args a;

	lanefs_fill_header(&a, FUSE_MKNOD, lanefs_nodeid(dir));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	name_arg(&a, dentry);
	return make_entry(dir, dentry, &a);
}

static int lanefs_create(LANEFS_IDMAP_T *idmap, struct inode *dir, struct dentry *dentry,
			 umode_t mode, bool excl)
{
	return lanefs_mknod(idmap, dir, dentry, mode | S_IFREG, 0);
}

static int lanefs_mkdir(LANEFS_IDMAP_T *idmap, struct inode *dir, struct dentry *dentry, umode_t mode)
{
	struct fuse_mkdir_in in = { .mode = mode, .umask = current_umask() };
	struct lanefs_args a;

	lanefs_fill_header(&a, FUSE_MKDIR, lanefs_nodeid(dir));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	name_arg(&a, dentry);
	return make_entry(dir, dentry, &a);
}

static int lanefs_symlink(LANEFS_IDMAP_T *idmap, struct inode *dir, struct dentry *dentry,
			  const char *target)
{
	struct lanefs_args a;

	lanefs_fill_header(&a, FUSE_SYMLINK, lanefs_nodeid(dir));
	name_arg(&a, dentry);
	a.in[1].value = target;
	a.in[1].size = strlen(target) + 1;
	a.in_num = 2;
	return make_entry(dir, dentry, &a);
}

static int lanefs_link(struct dentry *old, struct inode *dir, struct dentry *dentry)
{
	struct inode *inode = d_inode(old);
	struct fuse_link_in in = { .oldnodeid = lanefs_nodeid(inode) };
	struct lanefs_args a;
	int err;

	lanefs_fill_header(&a, FUSE_LINK, lanefs_nodeid(dir));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	name_arg(&a, dentry);
	err = make_entry(dir, dentry, &a);
	if (!err)
		lanefs_invalidate_attr(inode);	/* nlink, ctime */
	return err;
}

static int remove_name(struct inode *dir, struct dentry *dentry, u32 opcode)
{
	struct inode *inode = d_inode(dentry);
	struct lanefs_args a;
	ssize_t n;

	lanefs_fill_header(&a, opcode, lanefs_nodeid(dir));
	name_arg(&a, dentry);
	n = lanefs_send(lanefs_fc(dir), &a);
	if (n < 0)
		return n;
	dir_changed(dir);
	if (opcode == FUSE_RMDIR || inode->i_nlink <= 1)
		clear_nlink(inode);
	else
		drop_nlink(inode);
	lanefs_invalidate_attr(inode);
	return 0;
}

static int lanefs_unlink(struct inode *dir, struct dentry *dentry)
{
	return remove_name(dir, dentry, FUSE_UNLINK);
}

static int lanefs_rmdir(struct inode *dir, struct dentry *dentry)
{
	return remove_name(dir, dentry, FUSE_RMDIR);
}

static int lanefs_rename(LANEFS_IDMAP_T *idmap, struct inode *olddir, struct dentry *old,
			 struct inode *newdir, struct dentry *new, unsigned int flags)
{
	struct fuse_rename2_in in = { .newdir = lanefs_nodeid(newdir), .flags = flags };
	struct inode *target = d_inode(new);
	struct lanefs_args a;
	ssize_t n;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	lanefs_fill_header(&a, FUSE_RENAME2, lanefs_nodeid(olddir));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	name_arg(&a, old);
	name_arg(&a, new);
	n = lanefs_send(lanefs_fc(olddir), &a);
	if (n < 0)
		return n;
	dir_changed(olddir);
	if (newdir != olddir)
		dir_changed(newdir);
	lanefs_invalidate_attr(d_inode(old));	/* ctime */
	if (target) {
		if (!(flags & RENAME_EXCHANGE)) {
			if (S_ISDIR(target->i_mode) || target->i_nlink <= 1)
				clear_nlink(target);
			else
				drop_nlink(target);
		}
		lanefs_invalidate_attr(target);
	}
	return 0;
}

/* finish_open's callback: O_DIRECT is checked right after it. */
static int lanefs_created_open(struct inode *inode, struct file *file)
{
	file->f_mode |= FMODE_CAN_ODIRECT;
	return generic_file_open(inode, file);
}

/* open(O_CREAT) in one CREATE: the entry and the open file together. */
static int lanefs_atomic_open(struct inode *dir, struct dentry *dentry, struct file *file,
			      unsigned int flags, umode_t mode)
{
	struct fuse_create_in in = {
		.flags = flags & ~O_NOCTTY, .mode = mode, .umask = current_umask(),
	};
	struct {
		struct fuse_entry_out entry;
		struct fuse_open_out open;
	} out;
	struct dentry *res = NULL;
	struct lanefs_conn *fc;
	struct lanefs_args a;
	struct inode *inode;
	ssize_t n;
	int err;

	if (d_in_lookup(dentry)) {
		res = lanefs_lookup(dir, dentry, 0);
		if (IS_ERR(res))
			return PTR_ERR(res);
		if (res)
			dentry = res;
	}
	if (!(flags & O_CREAT) || d_really_is_positive(dentry))
		return finish_no_open(file, res);

	file->f_mode |= FMODE_CREATED;
	lanefs_fill_header(&a, FUSE_CREATE, lanefs_nodeid(dir));
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	name_arg(&a, dentry);
	a.out = &out;
	a.out_len = sizeof(out);
	fc = lanefs_fc(dir);
	n = lanefs_send(fc, &a);
	if (n < 0) {
		err = n;
		goto out;
	}
	err = -EIO;
	if (!out.entry.nodeid || out.entry.nodeid == FUSE_ROOT_ID || !S_ISREG(out.entry.attr.mode))
		goto out;
	inode = lanefs_iget(dir->i_sb, fc, out.entry.nodeid, out.entry.generation, &out.entry.attr,
			    out.entry.attr_valid, out.entry.attr_valid_nsec);
	if (IS_ERR(inode)) {
		err = PTR_ERR(inode);
		goto out;
	}
	d_instantiate(dentry, inode);
	set_entry_time(dentry, out.entry.entry_valid, out.entry.entry_valid_nsec);
	dir_changed(dir);
	err = finish_open(file, dentry, lanefs_created_open);
	if (err)
		lanefs_release_fh(fc, inode, out.open.fh, flags, false);
	else
		err = lanefs_finish_create(fc, inode, file, &out.open);
out:
	dput(res);
	return err;
}

/* ---- directories */

static int lanefs_dir_open(struct inode *inode, struct file *file)
{
	return lanefs_do_open(inode, file, true);
}

static int lanefs_dir_release(struct inode *inode, struct file *file)
{
	lanefs_release_file(inode, file, true);
	return 0;
}

/*
 * The reply is copied out of the entry before any name reaches the
 * caller's buffer: dir_emit may fault, and the fault may be on a lanefs
 * mapping that needs an entry itself. That copy (and the buffer, one per
 * call) is the price; readdir is not on the data path.
 */
static int lanefs_readdir(struct file *file, struct dir_context *ctx)
{
	struct inode *inode = file_inode(file);
	struct lanefs_file *lf = file->private_data;
	struct fuse_read_in in = {};
	struct lanefs_conn *fc;
	struct lanefs_args a;
	bool more = true;
	int err = lanefs_file_current(file, false);
	char *buf;
	u32 size;

	if (err)
		return err;
	fc = lanefs_fc(inode);
	size = min_t(u32, fc->max_write, 64 * 1024);
	buf = kvmalloc(size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	while (more) {
		const char *p, *end;
		ssize_t n;

		in.fh = lf->fh;
		in.offset = ctx->pos;
		in.size = size;
		lanefs_fill_header(&a, FUSE_READDIR, lanefs_nodeid(inode));
		a.op_in = &in;
		a.op_in_len = sizeof(in);
		a.keep = true;
		n = lanefs_send(fc, &a);
		if (n < 0) {
			err = n;
			break;
		}
		n = min_t(ssize_t, n, size);
		memcpy(buf, a.reply, n);
		lanefs_put(&a);
		if (!n)
			more = false;
		p = buf;
		end = p + n;
		while (p + FUSE_NAME_OFFSET <= end) {
			struct fuse_dirent d;
			size_t rec;

			memcpy(&d, p, FUSE_NAME_OFFSET);
			rec = FUSE_DIRENT_SIZE(&d);
			if (!d.namelen || d.namelen > NAME_MAX || rec > end - p) {
				err = -EIO;
				more = false;
				break;
			}
			if (!dir_emit(ctx, p + FUSE_NAME_OFFSET, d.namelen, d.ino, d.type)) {
				more = false;
				break;
			}
			ctx->pos = d.off;
			p += rec;
		}
	}
	kvfree(buf);
	if (!err)
		lanefs_update_attr(inode, false);	/* atime */
	return err;
}

static int lanefs_dir_fsync(struct file *file, loff_t start, loff_t end, int datasync)
{
	struct inode *inode = file_inode(file);
	struct lanefs_file *lf = file->private_data;
	struct fuse_fsync_in in;
	int err = lanefs_file_current(file, false);

	if (err)
		return err;
	in = (struct fuse_fsync_in){ .fh = lf->fh, .fsync_flags = datasync ? 1 : 0 };
	return lanefs_send_sync(inode, FUSE_FSYNCDIR, &in, sizeof(in));
}

const struct file_operations lanefs_dir_fops = {
	.llseek = generic_file_llseek,
	.read = generic_read_dir,
	.iterate_shared = lanefs_readdir,
	.open = lanefs_dir_open,
	.release = lanefs_dir_release,
	.fsync = lanefs_dir_fsync,
};

const struct inode_operations lanefs_dir_iops = {
	.lookup = lanefs_lookup,
	.create = lanefs_create,
	.atomic_open = lanefs_atomic_open,
	.mkdir = lanefs_mkdir,
	.mknod = lanefs_mknod,
	.symlink = lanefs_symlink,
	.link = lanefs_link,
	.unlink = lanefs_unlink,
	.rmdir = lanefs_rmdir,
	.rename = lanefs_rename,
	.getattr = lanefs_getattr,
	.setattr = lanefs_setattr,
	.permission = lanefs_permission,
	.listxattr = lanefs_listxattr,
};
