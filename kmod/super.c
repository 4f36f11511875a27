// SPDX-License-Identifier: GPL-2.0
/*
 * lanefs.ko: the filesystem type, its superblock and inodes, and the
 * module's entry points. A mount names the /dev/lanefs connection its
 * frontend set up (mount option fd=N, uapi/lanefs.h).
 */
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/statfs.h>

#include "lanefs.h"

#define LANEFS_MAGIC 0x4c414e45	/* "LANE" */

static struct kmem_cache *lanefs_inode_cachep;

u64 lanefs_expire(u64 sec, u32 nsec)
{
	if (!sec && !nsec)
		return 0;
	/* a frontend's "forever" must not overflow into "already expired" */
	sec = min_t(u64, sec, 30 * 24 * 3600ULL);
	return get_jiffies_64() + nsecs_to_jiffies64(sec * NSEC_PER_SEC + min_t(u32, nsec, 999999999));
}

void lanefs_fill_header(struct lanefs_args *a, u32 opcode, u64 nodeid)
{
	memset(a, 0, sizeof(*a));
	a->opcode = opcode;
	a->nodeid = nodeid;
}

static struct inode *lanefs_alloc_inode(struct super_block *sb)
{
	struct lanefs_inode *li = alloc_inode_sb(sb, lanefs_inode_cachep, GFP_KERNEL);

	if (!li)
		return NULL;
	li->nodeid = 0;
	li->nlookup = 0;
	li->counted_by = NULL;
	li->attr_expire = 0;
	spin_lock_init(&li->lock);
	return &li->vfs;
}

static void lanefs_free_inode(struct inode *inode)
{
	kmem_cache_free(lanefs_inode_cachep, lanefs_i(inode));
}

static void lanefs_evict_inode(struct inode *inode)
{
	struct lanefs_inode *li = lanefs_i(inode);

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	/* to the frontend that counted them: a replaced (dead) one drops them */
	if (li->nodeid != FUSE_ROOT_ID && li->nlookup)
		lanefs_queue_forget(li->counted_by, li->nodeid, li->nlookup);
}

static int lanefs_statfs(struct dentry *dentry, struct kstatfs *buf)
{
	struct inode *inode = d_inode(dentry);
	struct fuse_statfs_out out;
	struct lanefs_args a;
	ssize_t n;

	lanefs_fill_header(&a, FUSE_STATFS, lanefs_nodeid(inode));
	a.out = &out;
	a.out_len = sizeof(out);
	n = lanefs_send(lanefs_fc(inode), &a);
	if (n < 0)
		return n;
	buf->f_type = LANEFS_MAGIC;
	buf->f_bsize = out.st.bsize;
	buf->f_frsize = out.st.frsize;
	buf->f_blocks = out.st.blocks;
	buf->f_bfree = out.st.bfree;
	buf->f_bavail = out.st.bavail;
	buf->f_files = out.st.files;
	buf->f_ffree = out.st.ffree;
	buf->f_namelen = out.st.namelen;
	return 0;
}

static int lanefs_show_options(struct seq_file *m, struct dentry *root)
{
	struct lanefs_sb *s = lanefs_s(root->d_sb);

	seq_printf(m, ",user_id=%u,group_id=%u", from_kuid_munged(&init_user_ns, s->uid),
		   from_kgid_munged(&init_user_ns, s->gid));
	if (READ_ONCE(s->fc)->writeback)
		seq_puts(m, ",writeback_cache");
	return 0;
}

/* umount -f: every waiter and the frontend's rings end with -ENOTCONN. */
static void lanefs_umount_begin(struct super_block *sb)
{
	lanefs_conn_abort(READ_ONCE(lanefs_s(sb)->fc));
}

static const struct super_operations lanefs_sops = {
	.umount_begin = lanefs_umount_begin,
	.alloc_inode = lanefs_alloc_inode,
	.free_inode = lanefs_free_inode,
	.evict_inode = lanefs_evict_inode,
	.statfs = lanefs_statfs,
	.show_options = lanefs_show_options,
	.drop_inode = generic_delete_inode,
};

void lanefs_apply_attr(struct inode *inode, const struct fuse_attr *attr, u64 attr_valid,
		       u32 attr_valid_nsec)
{
	struct lanefs_inode *li = lanefs_i(inode);
	struct lanefs_conn *fc = lanefs_fc(inode);
	struct timespec64 at = { attr->atime, attr->atimensec };
	struct timespec64 mt = { attr->mtime, attr->mtimensec };
	struct timespec64 ct = { attr->ctime, attr->ctimensec };
	bool keep_size;

	spin_lock(&li->lock);
	inode->i_mode = (inode->i_mode & S_IFMT) | (attr->mode & 07777);
	set_nlink(inode, attr->nlink);
	inode->i_uid = make_kuid(&init_user_ns, attr->uid);
	inode->i_gid = make_kgid(&init_user_ns, attr->gid);
	inode->i_blocks = attr->blocks;
	lanefs_set_times(inode, at, mt, ct);
	/*
	 * Under the write-back cache the kernel's size leads: a reply never
	 * shrinks it (pages being written back may lie past the backend's size;
	 * a truncate here sets it itself; another host's growth comes as
	 * LANEFS_NOTIFY_SIZE, as on FUSE).
	 */
	keep_size = fc->writeback && S_ISREG(inode->i_mode) && attr->size < i_size_read(inode);
	if (!keep_size)
		i_size_write(inode, attr->size);
	li->attr_expire = lanefs_expire(attr_valid, attr_valid_nsec);
	spin_unlock(&li->lock);
}

void lanefs_invalidate_attr(struct inode *inode)
{
	WRITE_ONCE(lanefs_i(inode)->attr_expire, 0);
}

/* The size after data written here (never shrinks it: truncate does that). */
void lanefs_grow_size(struct inode *inode, loff_t end)
{
	if (end <= i_size_read(inode))
		return;	/* the common case takes no lock */
	spin_lock(&lanefs_i(inode)->lock);
	if (end > i_size_read(inode))
		i_size_write(inode, end);
	spin_unlock(&lanefs_i(inode)->lock);
}

int lanefs_update_attr(struct inode *inode, bool force)
{
	struct lanefs_inode *li = lanefs_i(inode);
	struct fuse_getattr_in in = {};
	struct fuse_attr_out out;
	struct lanefs_args a;
	u64 exp = READ_ONCE(li->attr_expire);
	ssize_t n;

	if (!force && exp && time_before64(get_jiffies_64(), exp))
		return 0;
	lanefs_fill_header(&a, FUSE_GETATTR, li->nodeid);
	a.op_in = &in;
	a.op_in_len = sizeof(in);
	a.out = &out;
	a.out_len = sizeof(out);
	n = lanefs_send(lanefs_fc(inode), &a);
	if (n < 0)
		return n;
	if ((inode->i_mode ^ out.attr.mode) & S_IFMT)
		return -ESTALE;
	lanefs_apply_attr(inode, &out.attr, out.attr_valid, out.attr_valid_nsec);
	return 0;
}

static int inode_test(struct inode *inode, void *data)
{
	return lanefs_i(inode)->nodeid == *(u64 *)data;
}

static int inode_set(struct inode *inode, void *data)
{
	lanefs_i(inode)->nodeid = *(u64 *)data;
	return 0;
}

static void init_inode(struct inode *inode, const struct fuse_attr *attr)
{
	inode->i_mode = attr->mode & S_IFMT;
	inode->i_ino = attr->ino;
	switch (inode->i_mode) {
	case S_IFREG:
		inode->i_op = &lanefs_file_iops;
		inode->i_fop = &lanefs_file_fops;
		inode->i_data.a_ops = &lanefs_aops;
		break;
	case S_IFDIR:
		inode->i_op = &lanefs_dir_iops;
		inode->i_fop = &lanefs_dir_fops;
		break;
	case S_IFLNK:
		inode->i_op = &lanefs_symlink_iops;
		inode_nohighmem(inode);
		break;
	default:
		inode->i_op = &lanefs_file_iops;
		init_special_inode(inode, inode->i_mode, new_decode_dev(attr->rdev));
		break;
	}
}

/*
 * One more lookup that fc's frontend counted. Counts of another frontend
 * (one that a new connection replaced, attach.c) mean nothing to this one
 * and are dropped; a reply of the replaced one counts for nothing.
 */
void lanefs_count_lookup(struct inode *inode, struct lanefs_conn *fc)
{
	struct lanefs_inode *li = lanefs_i(inode);

	spin_lock(&li->lock);
	if (li->counted_by != fc) {
		li->counted_by = fc;
		li->nlookup = 0;
	}
	li->nlookup++;
	spin_unlock(&li->lock);
}

/*
 * The inode of node `nodeid`, counting the lookup fc's frontend just made.
 * Another generation than the cached inode's means the frontend wants a
 * fresh one (the file changed elsewhere in a way the cached inode cannot
 * follow, e.g. it shrank under the write-back cache), as FUSE does: the
 * old inode leaves the hash (files open on it keep it) and a new one is
 * built from this entry.
 */
struct inode *lanefs_iget(struct super_block *sb, struct lanefs_conn *fc, u64 nodeid, u64 generation,
			  const struct fuse_attr *attr, u64 attr_valid, u32 attr_valid_nsec)
{
	struct inode *inode;

retry:
	inode = iget5_locked(sb, (unsigned long)nodeid, inode_test, inode_set, &nodeid);
	if (!inode)
		return ERR_PTR(-ENOMEM);
	if (!(inode->i_state & I_NEW) && inode->i_generation != (u32)generation) {
		remove_inode_hash(inode);
		iput(inode);
		goto retry;
	}
	if (inode->i_state & I_NEW) {
		inode->i_generation = (u32)generation;
		init_inode(inode, attr);
		lanefs_apply_attr(inode, attr, attr_valid, attr_valid_nsec);
		lanefs_count_lookup(inode, fc);
		unlock_new_inode(inode);
		return inode;
	}
	lanefs_count_lookup(inode, fc);
	if ((inode->i_mode ^ attr->mode) & S_IFMT) {
		/* the node changed type: the frontend reuses no ids, so this is its error */
		iput(inode);
		return ERR_PTR(-EIO);
	}
	lanefs_apply_attr(inode, attr, attr_valid, attr_valid_nsec);
	return inode;
}

int lanefs_notify(struct lanefs_conn *fc, const struct lanefs_notify *n)
{
	u64 nodeid = n->nodeid;
	struct inode *inode;
	int err = 0;

	/* held to the end: unmount waits for the inode reference to go */
	down_read(&fc->sb_rwsem);
	if (!fc->sb) {
		up_read(&fc->sb_rwsem);
		return -ENOTCONN;
	}
	inode = ilookup5(fc->sb, (unsigned long)nodeid, inode_test, &nodeid);
	if (!inode) {
		up_read(&fc->sb_rwsem);
		return -ENOENT;
	}
	switch (n->code) {
	case LANEFS_NOTIFY_INVAL_INODE:
		lanefs_invalidate_attr(inode);
		if (n->off >= 0 && S_ISREG(inode->i_mode)) {
			pgoff_t first = n->off >> PAGE_SHIFT;
			pgoff_t last = n->len > 0 ? (n->off + n->len - 1) >> PAGE_SHIFT : -1;

			err = invalidate_inode_pages2_range(inode->i_mapping, first, last);
		}
		break;
	case LANEFS_NOTIFY_SIZE:
		spin_lock(&lanefs_i(inode)->lock);
		if (n->size > i_size_read(inode))
			i_size_write(inode, n->size);
		spin_unlock(&lanefs_i(inode)->lock);
		lanefs_invalidate_attr(inode);
		break;
	default:
		err = -EINVAL;
	}
	iput(inode);
	up_read(&fc->sb_rwsem);
	return err;
}

/* ---- mounting */

enum { OPT_FD, OPT_ROOTMODE, OPT_USER_ID, OPT_GROUP_ID, OPT_DEFAULT_PERMISSIONS, OPT_ALLOW_OTHER };

static const struct fs_parameter_spec lanefs_params[] = {
	fsparam_u32("fd", OPT_FD),
	fsparam_u32oct("rootmode", OPT_ROOTMODE),
	fsparam_u32("user_id", OPT_USER_ID),
	fsparam_u32("group_id", OPT_GROUP_ID),
	fsparam_flag("default_permissions", OPT_DEFAULT_PERMISSIONS),
	fsparam_flag("allow_other", OPT_ALLOW_OTHER),
	{}
};

struct lanefs_mount_ctx {
	int fd;
	bool fd_set;
	umode_t rootmode;
	kuid_t uid;
	kgid_t gid;
};

static int lanefs_parse_param(struct fs_context *fsc, struct fs_parameter *param)
{
	struct lanefs_mount_ctx *ctx = fsc->fs_private;
	struct fs_parse_result r;
	int opt = fs_parse(fsc, lanefs_params, param, &r);

	if (opt < 0)
		return opt;
	switch (opt) {
	case OPT_FD:
		ctx->fd = r.uint_32;
		ctx->fd_set = true;
		break;
	case OPT_ROOTMODE:
		if (!S_ISDIR(r.uint_32))
			return invalfc(fsc, "rootmode must be a directory's");
		ctx->rootmode = r.uint_32;
		break;
	case OPT_USER_ID:
		ctx->uid = make_kuid(fsc->user_ns, r.uint_32);
		if (!uid_valid(ctx->uid))
			return invalfc(fsc, "bad user_id");
		break;
	case OPT_GROUP_ID:
		ctx->gid = make_kgid(fsc->user_ns, r.uint_32);
		if (!gid_valid(ctx->gid))
			return invalfc(fsc, "bad group_id");
		break;
	default:	/* always on: the kernel checks permissions for every user */
		break;
	}
	return 0;
}

static int lanefs_fill_super(struct super_block *sb, struct fs_context *fsc)
{
	struct lanefs_mount_ctx *ctx = fsc->fs_private;
	struct fuse_attr root = { .ino = FUSE_ROOT_ID, .mode = ctx->rootmode, .nlink = 2 };
	struct lanefs_conn *fc;
	struct lanefs_sb *s;
	struct inode *inode;
	int err;

	if (!ctx->fd_set)
		return invalfc(fsc, "no fd=: lanefs is mounted by lanefs-frontend (mount -t lanefs uses it)");
	fc = lanefs_conn_from_fd(ctx->fd);
	if (IS_ERR(fc))
		return invalfc(fsc, "fd=%d is not a set-up, unmounted /dev/lanefs connection", ctx->fd);
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		lanefs_conn_put(fc);
		return -ENOMEM;
	}
	s->fc = fc;
	INIT_LIST_HEAD(&s->retired);
	s->uid = ctx->uid;
	s->gid = ctx->gid;
	s->sb = sb;
	sb->s_fs_info = s;
	sb->s_magic = LANEFS_MAGIC;
	sb->s_op = &lanefs_sops;
	sb->s_d_op = &lanefs_dentry_ops;
	sb->s_xattr = lanefs_xattr_handlers;
	sb->s_maxbytes = MAX_LFS_FILESIZE;
	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_time_gran = 1;
	err = super_setup_bdi(sb);
	if (err)
		return err;
	sb->s_bdi->ra_pages = fc->cfg.max_readahead / PAGE_SIZE;
	inode = lanefs_iget(sb, fc, FUSE_ROOT_ID, 0, &root, 0, 0);
	if (IS_ERR(inode))
		return PTR_ERR(inode);
	sb->s_root = d_make_root(inode);
	if (!sb->s_root)
		return -ENOMEM;
	lanefs_conn_set_sb(fc, sb);
	return 0;
}

static int lanefs_get_tree(struct fs_context *fsc)
{
	return get_tree_nodev(fsc, lanefs_fill_super);
}

static void lanefs_free_fc(struct fs_context *fsc)
{
	kfree(fsc->fs_private);
}

static const struct fs_context_operations lanefs_context_ops = {
	.parse_param = lanefs_parse_param,
	.get_tree = lanefs_get_tree,
	.free = lanefs_free_fc,
};

static int lanefs_init_fs_context(struct fs_context *fsc)
{
	struct lanefs_mount_ctx *ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);

	if (!ctx)
		return -ENOMEM;
	ctx->rootmode = S_IFDIR | 0755;
	ctx->uid = current_uid();
	ctx->gid = current_gid();
	fsc->fs_private = ctx;
	fsc->ops = &lanefs_context_ops;
	return 0;
}

static void lanefs_kill_sb(struct super_block *sb)
{
	struct lanefs_sb *s = lanefs_s(sb);
	struct lanefs_conn *old, *tmp;

	if (s) {
		lanefs_conn_set_sb(s->fc, NULL);	/* no notification reaches a dying superblock */
	}
	kill_anon_super(sb);
	if (!s)
		return;
	/* the frontend's queues end with -ENOTCONN: it exits */
	lanefs_conn_abort(s->fc);
	lanefs_conn_put(s->fc);
	list_for_each_entry_safe(old, tmp, &s->retired, retired)	/* attach.c */
		lanefs_conn_put(old);
	kfree(s);
}

struct file_system_type lanefs_fs_type = {
	.owner = THIS_MODULE,
	.name = "lanefs",
	.init_fs_context = lanefs_init_fs_context,
	.parameters = lanefs_params,
	.kill_sb = lanefs_kill_sb,
};
MODULE_ALIAS_FS("lanefs");

static void inode_once(void *p)
{
	struct lanefs_inode *li = p;

	inode_init_once(&li->vfs);
}

static int __init lanefs_init(void)
{
	int err;

	lanefs_inode_cachep = kmem_cache_create("lanefs_inode", sizeof(struct lanefs_inode), 0,
						SLAB_RECLAIM_ACCOUNT | SLAB_ACCOUNT, inode_once);
	if (!lanefs_inode_cachep)
		return -ENOMEM;
	err = register_filesystem(&lanefs_fs_type);
	if (err)
		goto fail_cache;
	err = lanefs_dev_init();
	if (err)
		goto fail_fs;
	pr_info("lanefs: kernel client loaded (ABI %d, /dev/lanefs)\n", LANEFS_ABI_VERSION);
	return 0;
fail_fs:
	unregister_filesystem(&lanefs_fs_type);
fail_cache:
	kmem_cache_destroy(lanefs_inode_cachep);
	return err;
}

static void __exit lanefs_exit(void)
{
	lanefs_dev_exit();
	unregister_filesystem(&lanefs_fs_type);
	rcu_barrier();
	kmem_cache_destroy(lanefs_inode_cachep);
}

module_init(lanefs_init);
module_exit(lanefs_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lanefs kernel client: VFS over the /dev/lanefs io_uring channel to lanefs-frontend");
