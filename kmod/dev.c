// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/lanefs: one connection per open, served by lanefs-frontend over
 * io_uring commands (uapi/lanefs.h): setup, REGISTER (pin and map an
 * entry's buffers, park its command), COMMIT_AND_FETCH (a reply in, the
 * entry parked again). The request path that uses the entries is req.c.
 *
 * Ending: unmount, close of the device and the death of a queue's thread
 * abort the connection: parked commands complete with -ENOTCONN, callers
 * waiting for a reply or an entry get -ENOTCONN, new callers too. A
 * thread's death is seen by a check every half second (commands keep the
 * device file open, so its release alone would never come). A dead
 * connection's mount can be taken over by a new one (attach.c).
 */
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "lanefs.h"

static struct lanefs_conn *conn_alloc(void)
{
	struct lanefs_conn *fc = kzalloc(sizeof(*fc), GFP_KERNEL);

	if (!fc)
		return NULL;
	refcount_set(&fc->ref, 1);
	mutex_init(&fc->setup_mutex);
	init_rwsem(&fc->sb_rwsem);
	init_waitqueue_head(&fc->waitq);
	spin_lock_init(&fc->forget_lock);
	INIT_LIST_HEAD(&fc->forgets);
	return fc;
}

static void entry_unmap(struct lanefs_entry *e)
{
	if (e->map)
		vunmap(e->map);
	if (e->pages) {
		unpin_user_pages_dirty_lock(e->pages, e->nr_pages, true);
		kvfree(e->pages);
	}
	e->map = NULL;
	e->pages = NULL;
}

static void conn_free(struct lanefs_conn *fc)
{
	struct lanefs_forget *f, *n;
	unsigned int i, j;

	for (i = 0; i < fc->nr_queues; i++) {
		struct lanefs_queue *q = &fc->queues[i];

		if (!q->entries)
			continue;
		for (j = 0; j < fc->cfg.depth; j++)
			entry_unmap(&q->entries[j]);
		kfree(q->entries);
		if (q->task)
			put_task_struct(q->task);
	}
	kfree(fc->queues);
	list_for_each_entry_safe(f, n, &fc->forgets, list)
		kfree(f);
	kfree(fc);
}

void lanefs_conn_put(struct lanefs_conn *fc)
{
	if (refcount_dec_and_test(&fc->ref))
		conn_free(fc);
}

void lanefs_conn_abort(struct lanefs_conn *fc)
{
	unsigned int i, j, nq = smp_load_acquire(&fc->set_up) ? fc->nr_queues : 0;
	struct lanefs_req *req, *tmp;
	LIST_HEAD(ends);

	/* no mutex: abort runs while notifications or mounts may hold it */
	for (i = 0; i < nq; i++) {
		struct lanefs_queue *q = &fc->queues[i];

		spin_lock(&q->lock);
		WRITE_ONCE(fc->dead, true);
		for (j = 0; q->entries && j < fc->cfg.depth; j++) {
			struct lanefs_entry *e = &q->entries[j];

			if (e->state == LANEFS_ENT_AVAIL) {
				list_del_init(&e->avail);
				lanefs_complete_cmd(e->cmd, -ENOTCONN);
				e->cmd = NULL;
				e->state = LANEFS_ENT_DEAD;
			} else if (e->state == LANEFS_ENT_SENT) {
				if (e->req) {
					e->req->error = -ENOTCONN;
					if (e->req->end)
						list_add_tail(&e->req->list, &ends);
					else
						complete(&e->req->done);
					e->req = NULL;
				}
				e->state = LANEFS_ENT_DEAD;
			}
			/* FILLING, REPLIED: their caller ends them (put_entry) */
		}
		spin_unlock(&q->lock);
	}
	WRITE_ONCE(fc->dead, true);
	wake_up_all(&fc->waitq);
	list_for_each_entry_safe(req, tmp, &ends, list)
		req->end(req);
}

/* ---- the device */

static const struct file_operations lanefs_dev_fops;

static void monitor_fn(struct work_struct *w)
{
	struct lanefs_conn *fc = container_of(to_delayed_work(w), struct lanefs_conn, monitor);
	unsigned int i;

	if (READ_ONCE(fc->dead))
		return;
	for (i = 0; i < fc->nr_queues; i++) {
		struct task_struct *t = READ_ONCE(fc->queues[i].task);

		if (t && (READ_ONCE(t->flags) & PF_EXITING)) {
			pr_info("lanefs: frontend thread %d exited; connection aborted\n", t->pid);
			lanefs_conn_abort(fc);
			return;
		}
	}
	schedule_delayed_work(&fc->monitor, HZ / 2);
}

static int dev_open(struct inode *inode, struct file *file)
{
	struct lanefs_conn *fc = conn_alloc();

	if (!fc)
		return -ENOMEM;
	INIT_DELAYED_WORK(&fc->monitor, monitor_fn);
	file->private_data = fc;
	return 0;
}

static int dev_release(struct inode *inode, struct file *file)
{
	struct lanefs_conn *fc = file->private_data;

	lanefs_conn_abort(fc);
	cancel_delayed_work_sync(&fc->monitor);
	lanefs_conn_put(fc);
	return 0;
}

/* The superblock notifications reach through fc (NULL: none any more). */
void lanefs_conn_set_sb(struct lanefs_conn *fc, struct super_block *sb)
{
	down_write(&fc->sb_rwsem);
	fc->sb = sb;
	up_write(&fc->sb_rwsem);
}

/* The connection starts serving a mount (fill_super, attach): once only. */
int lanefs_conn_claim(struct lanefs_conn *fc)
{
	int err = 0;

	mutex_lock(&fc->setup_mutex);
	if (!fc->set_up || fc->mounted || fc->dead)
		err = -EINVAL;
	else
		fc->mounted = true;
	mutex_unlock(&fc->setup_mutex);
	if (!err)
		refcount_inc(&fc->ref);
	return err;
}

struct lanefs_conn *lanefs_conn_from_fd(int fd)
{
	struct file *f = fget(fd);
	struct lanefs_conn *fc;
	int err;

	if (!f)
		return ERR_PTR(-EBADF);
	if (f->f_op != &lanefs_dev_fops) {
		fput(f);
		return ERR_PTR(-EINVAL);
	}
	fc = f->private_data;
	err = lanefs_conn_claim(fc);
	fput(f);
	return err ? ERR_PTR(err) : fc;
}

/*
 * A dead connection that a new one replaced (attach.c) gives back the
 * pinned buffers of its dead frontend once no caller holds an entry (they
 * only finish what they copy: nothing waits for a dead frontend). The
 * connection itself stays until the superblock ends: callers that read the
 * mount's connection just before the swap may still look at it.
 */
void lanefs_conn_unpin(struct lanefs_conn *fc)
{
	unsigned long deadline = jiffies + 5 * HZ;
	unsigned int i, j, held = 0;

	/*
	 * The abort that made it dead may still be walking its queues (it sets
	 * `dead` first): done again here, every parked command has completed
	 * and every waiter has been told before an entry is looked at.
	 */
	lanefs_conn_abort(fc);
	for (i = 0; i < fc->nr_queues; i++) {
		struct lanefs_queue *q = &fc->queues[i];

		for (j = 0; q->entries && j < fc->cfg.depth; j++) {
			struct lanefs_entry *e = &q->entries[j];
			bool busy;

			for (;;) {
				spin_lock(&q->lock);
				busy = e->state == LANEFS_ENT_FILLING || e->state == LANEFS_ENT_REPLIED;
				if (!busy)
					e->state = LANEFS_ENT_DEAD;
				spin_unlock(&q->lock);
				if (!busy || time_after(jiffies, deadline))
					break;
				msleep(10);
			}
			if (busy)
				held++;	/* unpinned when the superblock ends */
			else
				entry_unmap(e);
		}
	}
	if (held)
		pr_warn("lanefs: %u entries of the replaced connection still held after 5 s\n", held);
}

static long dev_setup(struct lanefs_conn *fc, void __user *arg)
{
	struct lanefs_setup s;
	unsigned int i;
	long err = 0;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	if (s.abi_version != LANEFS_ABI_VERSION)
		return -EPROTO;
	if (!s.queues || s.queues > LANEFS_MAX_QUEUES || !s.depth || s.depth > LANEFS_MAX_DEPTH ||
	    s.payload_size < PAGE_SIZE || s.payload_size > LANEFS_MAX_PAYLOAD ||
	    s.max_write < PAGE_SIZE || s.max_write > s.payload_size)
		return -EINVAL;
	mutex_lock(&fc->setup_mutex);
	if (fc->set_up) {
		err = -EBUSY;
		goto out;
	}
	fc->queues = kcalloc(s.queues, sizeof(*fc->queues), GFP_KERNEL);
	if (!fc->queues) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s.queues; i++) {
		struct lanefs_queue *q = &fc->queues[i];
		unsigned int j;

		q->fc = fc;
		spin_lock_init(&q->lock);
		INIT_LIST_HEAD(&q->avail);
		q->entries = kcalloc(s.depth, sizeof(*q->entries), GFP_KERNEL);
		if (!q->entries) {
			err = -ENOMEM;
			break;
		}
		for (j = 0; j < s.depth; j++) {
			q->entries[j].q = q;
			q->entries[j].index = j;
			INIT_LIST_HEAD(&q->entries[j].avail);
		}
	}
	fc->nr_queues = s.queues;	/* conn_free frees what was allocated */
	fc->cfg = s;
	if (!err) {
		fc->max_write = s.max_write;
		fc->writeback = s.flags & LANEFS_SETUP_WRITEBACK_CACHE;
		smp_store_release(&fc->set_up, true);	/* queues before the flag */
	} else {
		for (i = 0; i < s.queues; i++)
			kfree(fc->queues[i].entries);
		kfree(fc->queues);
		fc->queues = NULL;
		fc->nr_queues = 0;
	}
out:
	mutex_unlock(&fc->setup_mutex);
	return err;
}

static long dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct lanefs_conn *fc = file->private_data;
	struct lanefs_notify n;

	switch (cmd) {
	case LANEFS_IOC_SETUP:
		return dev_setup(fc, (void __user *)arg);
	case LANEFS_IOC_NOTIFY:
		if (copy_from_user(&n, (void __user *)arg, sizeof(n)))
			return -EFAULT;
		return lanefs_notify(fc, &n);
	case LANEFS_IOC_ATTACH:
		return lanefs_attach(fc, (const void __user *)arg);
	default:
		return -ENOTTY;
	}
}

/* Pins [addr, addr+len) and maps it; the mapped address or an ERR_PTR. */
static void *pin_map(struct lanefs_entry *e, u64 addr, u64 len, unsigned int first)
{
	unsigned long start = addr & PAGE_MASK;
	unsigned int n = DIV_ROUND_UP((addr - start) + len, PAGE_SIZE);
	int got;

	got = pin_user_pages_fast(start, n, FOLL_WRITE | FOLL_LONGTERM, e->pages + first);
	if (got < 0)
		return ERR_PTR(got);
	e->nr_pages = first + got;
	if (got != n)
		return ERR_PTR(-EFAULT);
	return (void *)(addr - start);	/* the offset; mapped by the caller */
}

static int entry_register(struct lanefs_entry *e, const struct lanefs_ring_cmd *c, size_t payload_size)
{
	unsigned long hoff, poff;
	unsigned int nh, np;
	void *r;

	if (c->header_len < sizeof(struct lanefs_ring_header) || c->payload_len < payload_size)
		return -EINVAL;
	hoff = c->header & ~PAGE_MASK;
	poff = c->payload & ~PAGE_MASK;
	if (hoff || poff)	/* page-aligned buffers: one map covers both */
		return -EINVAL;
	nh = DIV_ROUND_UP(sizeof(struct lanefs_ring_header), PAGE_SIZE);
	np = DIV_ROUND_UP(payload_size, PAGE_SIZE);
	e->pages = kvcalloc(nh + np, sizeof(struct page *), GFP_KERNEL);
	if (!e->pages)
		return -ENOMEM;
	r = pin_map(e, c->header, sizeof(struct lanefs_ring_header), 0);
	if (IS_ERR(r))
		goto fail;
	r = pin_map(e, c->payload, payload_size, nh);
	if (IS_ERR(r))
		goto fail;
	e->map = vmap(e->pages, nh + np, VM_MAP, PAGE_KERNEL);
	if (!e->map) {
		r = ERR_PTR(-ENOMEM);
		goto fail;
	}
	e->hdr = e->map;
	e->payload = e->map + nh * PAGE_SIZE;
	e->payload_len = payload_size;
	return 0;
fail:
	entry_unmap(e);
	return PTR_ERR(r);
}

static int ring_register(struct lanefs_conn *fc, struct lanefs_queue *q, struct io_uring_cmd *cmd,
			 const struct lanefs_ring_cmd *c)
{
	struct lanefs_entry *e = NULL;
	unsigned int j;
	int err;

	spin_lock(&q->lock);
	for (j = 0; j < fc->cfg.depth; j++) {
		if (q->entries[j].state == LANEFS_ENT_NONE && !q->entries[j].pages) {
			e = &q->entries[j];
			e->state = LANEFS_ENT_FILLING;	/* ours while we pin */
			break;
		}
	}
	spin_unlock(&q->lock);
	if (!e)
		return -ENOSPC;
	err = entry_register(e, c, fc->cfg.payload_size);
	spin_lock(&q->lock);
	if (err || READ_ONCE(fc->dead)) {
		e->state = err ? LANEFS_ENT_NONE : LANEFS_ENT_DEAD;
		spin_unlock(&q->lock);
		return err ? err : -ENOTCONN;
	}
	if (!q->task)
		q->task = get_task_struct(current);
	e->cmd = cmd;
	e->state = LANEFS_ENT_AVAIL;
	list_add_tail(&e->avail, &q->avail);
	q->registered++;
	spin_unlock(&q->lock);
	wake_up(&fc->waitq);
	schedule_delayed_work(&fc->monitor, HZ / 2);
	return -EIOCBQUEUED;
}

static int ring_commit(struct lanefs_conn *fc, struct lanefs_queue *q, struct io_uring_cmd *cmd,
		       const struct lanefs_ring_cmd *c)
{
	struct lanefs_entry *e;
	struct lanefs_req *req;

	if (c->commit_id >= fc->cfg.depth)
		return -EINVAL;
	e = &q->entries[c->commit_id];
	spin_lock(&q->lock);
	if (READ_ONCE(fc->dead)) {
		spin_unlock(&q->lock);
		return -ENOTCONN;
	}
	if (e->state != LANEFS_ENT_SENT) {
		spin_unlock(&q->lock);
		return -EINVAL;
	}
	e->cmd = cmd;
	req = e->req;
	e->req = NULL;
	if (req) {
		e->state = LANEFS_ENT_REPLIED;	/* its caller reads the reply and puts it */
		req->error = 0;
		req->ent = e;
		if (req->end) {
			spin_unlock(&q->lock);
			req->end(req);
		} else {
			complete(&req->done);
			spin_unlock(&q->lock);
		}
		return -EIOCBQUEUED;
	}
	e->state = LANEFS_ENT_FILLING;	/* a FORGET's, or its caller gave up */
	spin_unlock(&q->lock);
	lanefs_put_entry(e);
	return -EIOCBQUEUED;
}

static int dev_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct lanefs_conn *fc = cmd->file->private_data;
	struct lanefs_ring_cmd c;

	if (!(issue_flags & IO_URING_F_SQE128))
		return -EINVAL;
	memcpy(&c, lanefs_cmd_area(cmd), sizeof(c));
	if (!smp_load_acquire(&fc->set_up))
		return -EINVAL;
	if (READ_ONCE(fc->dead))
		return -ENOTCONN;
	if (c.qid >= fc->nr_queues)
		return -EINVAL;
	switch (cmd->cmd_op) {
	case LANEFS_RING_REGISTER:
		return ring_register(fc, &fc->queues[c.qid], cmd, &c);
	case LANEFS_RING_COMMIT_AND_FETCH:
		return ring_commit(fc, &fc->queues[c.qid], cmd, &c);
	default:
		return -EINVAL;
	}
}

static const struct file_operations lanefs_dev_fops = {
	.owner = THIS_MODULE,
	.open = dev_open,
	.release = dev_release,
	.unlocked_ioctl = dev_ioctl,
	.uring_cmd = dev_uring_cmd,
	.llseek = noop_llseek,
};

static struct miscdevice lanefs_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "lanefs",
	.fops = &lanefs_dev_fops,
	.mode = 0600,	/* the frontend runs as root: mounting needs it */
};

int lanefs_dev_init(void)
{
	return misc_register(&lanefs_misc);
}

void lanefs_dev_exit(void)
{
	misc_deregister(&lanefs_misc);
}
