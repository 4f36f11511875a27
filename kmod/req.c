// SPDX-License-Identifier: GPL-2.0
/*
 * The request path: a caller takes a free entry of its CPU's queue
 * (another queue's when its own has none), writes its request straight
 * into the frontend's pinned buffers, completes the entry's parked
 * command and sleeps until the frontend commits the reply (dev.c); it
 * then reads the reply from the same buffers and puts the entry back. No
 * kernel thread and no extra copy sit between the caller and the
 * frontend. FORGETs wait on a list for the next free entry.
 *
 * Locks: one spinlock per queue (entry states), one for the FORGET list.
 * A command is completed in its ring's task (io_uring_cmd_complete_in_task)
 * whoever ends it.
 */
#include <linux/highmem.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "lanefs.h"

struct lanefs_pdu {
	int res;
};

static void lanefs_cmd_tw(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct lanefs_pdu *pdu = (struct lanefs_pdu *)cmd->pdu;

	io_uring_cmd_done(cmd, pdu->res, 0, issue_flags);
}

void lanefs_complete_cmd(struct io_uring_cmd *cmd, int res)
{
	struct lanefs_pdu *pdu = (struct lanefs_pdu *)cmd->pdu;

	BUILD_BUG_ON(sizeof(*pdu) > sizeof(cmd->pdu));
	pdu->res = res;
	io_uring_cmd_complete_in_task(cmd, lanefs_cmd_tw);
}

/* A free entry of this CPU's queue, else of any queue; NULL when none. */
static struct lanefs_entry *try_get_entry(struct lanefs_conn *fc)
{
	unsigned int first = raw_smp_processor_id() % fc->nr_queues, i;

	for (i = 0; i < fc->nr_queues; i++) {
		struct lanefs_queue *q = &fc->queues[(first + i) % fc->nr_queues];
		struct lanefs_entry *e;

		if (list_empty_careful(&q->avail))
			continue;
		spin_lock(&q->lock);
		e = list_first_entry_or_null(&q->avail, struct lanefs_entry, avail);
		if (e) {
			list_del_init(&e->avail);
			e->state = LANEFS_ENT_FILLING;
		}
		spin_unlock(&q->lock);
		if (e)
			return e;
	}
	return NULL;
}

/* `nowait`: -EAGAIN rather than wait when none is free. */
static int get_entry(struct lanefs_conn *fc, bool killable, bool nowait, struct lanefs_entry **out)
{
	int err;

	for (;;) {
		if (READ_ONCE(fc->dead))
			return -ENOTCONN;
		*out = try_get_entry(fc);
		if (*out)
			return 0;
		if (nowait)
			return -EAGAIN;
		if (killable) {
			err = wait_event_killable(fc->waitq, READ_ONCE(fc->dead) ||
						  (*out = try_get_entry(fc)) != NULL);
			if (err)
				return -EINTR;
		} else {
			wait_event(fc->waitq, READ_ONCE(fc->dead) ||
				   (*out = try_get_entry(fc)) != NULL);
		}
		if (*out)
			return 0;
	}
}

/* Sends what an owned entry holds; `req` NULL: no answer is awaited. */
static int send_entry(struct lanefs_entry *e, struct lanefs_req *req)
{
	struct lanefs_queue *q = e->q;
	struct io_uring_cmd *cmd;

	spin_lock(&q->lock);
	cmd = e->cmd;
	e->cmd = NULL;
	if (READ_ONCE(q->fc->dead)) {
		e->state = LANEFS_ENT_DEAD;
		spin_unlock(&q->lock);
		lanefs_complete_cmd(cmd, -ENOTCONN);
		return -ENOTCONN;
	}
	e->req = req;
	e->state = LANEFS_ENT_SENT;
	spin_unlock(&q->lock);
	lanefs_complete_cmd(cmd, 0);
	return 0;
}

static void fill_forget(struct lanefs_entry *e, struct lanefs_conn *fc, struct lanefs_forget *f)
{
	struct fuse_in_header *ih = (struct fuse_in_header *)e->hdr->in_out;
	struct fuse_forget_in in = { .nlookup = f->nlookup };

	memset(ih, 0, sizeof(*ih));
	ih->len = sizeof(*ih) + sizeof(in);
	ih->opcode = FUSE_FORGET;
	ih->unique = atomic64_inc_return(&fc->unique);
	ih->nodeid = f->nodeid;
	memcpy(e->hdr->op_in, &in, sizeof(in));
	e->hdr->ent.commit_id = e->index;
	e->hdr->ent.payload_sz = 0;
	e->hdr->ent.flags = 0;
}

/* An owned entry goes back: to a waiting FORGET, else to its queue. */
void lanefs_put_entry(struct lanefs_entry *e)
{
	struct lanefs_queue *q = e->q;
	struct lanefs_conn *fc = q->fc;
	struct lanefs_forget *f = NULL;
	struct io_uring_cmd *cmd = NULL;

	while (!READ_ONCE(fc->dead)) {
		spin_lock(&fc->forget_lock);
		f = list_first_entry_or_null(&fc->forgets, struct lanefs_forget, list);
		if (f)
			list_del(&f->list);
		spin_unlock(&fc->forget_lock);
		if (!f)
			break;
		fill_forget(e, fc, f);
		kfree(f);
		send_entry(e, NULL);
		return;
	}
	spin_lock(&q->lock);
	if (READ_ONCE(fc->dead)) {
		cmd = e->cmd;
		e->cmd = NULL;
		e->state = LANEFS_ENT_DEAD;
	} else {
		e->state = LANEFS_ENT_AVAIL;
		list_add(&e->avail, &q->avail);
	}
	spin_unlock(&q->lock);
	if (cmd)
		lanefs_complete_cmd(cmd, -ENOTCONN);
	wake_up(&fc->waitq);
}

void lanefs_put(struct lanefs_args *a)
{
	if (a->ent)
		lanefs_put_entry(a->ent);
	a->ent = NULL;
	a->reply = NULL;
}

void lanefs_queue_forget(struct lanefs_conn *fc, u64 nodeid, u64 nlookup)
{
	struct lanefs_forget *f;
	struct lanefs_entry *e;

	if (READ_ONCE(fc->dead) || !nlookup)
		return;
	/* Lost when memory is short: the frontend then keeps the node until unmount. */
	f = kmalloc(sizeof(*f), GFP_NOFS | __GFP_NOWARN);
	if (!f)
		return;
	f->nodeid = nodeid;
	f->nlookup = nlookup;
	spin_lock(&fc->forget_lock);
	list_add_tail(&f->list, &fc->forgets);
	spin_unlock(&fc->forget_lock);
	e = try_get_entry(fc);
	if (e)
		lanefs_put_entry(e);
}

/* Writes request `a` into entry `e`; the size of its payload or -errno. */
static ssize_t fill_request(struct lanefs_conn *fc, struct lanefs_entry *e, struct lanefs_args *a)
{
	struct fuse_in_header *ih = (struct fuse_in_header *)e->hdr->in_out;
	size_t off = 0;
	unsigned int i;

	if (a->op_in_len > sizeof(e->hdr->op_in))
		return -EINVAL;
	for (i = 0; i < a->in_num; i++) {
		if (a->in[i].size > e->payload_len - off)
			return -E2BIG;
		memcpy(e->payload + off, a->in[i].value, a->in[i].size);
		off += a->in[i].size;
	}
	if (a->in_iter) {
		size_t got;

		if (a->in_iter_len > e->payload_len - off)
			return -E2BIG;
		/*
		 * No page fault while an entry is held: the fault may be on a
		 * lanefs mapping and need an entry itself. A short copy gives the
		 * entry back (-EAGAIN) and lanefs_start() faults in and retries.
		 */
		pagefault_disable();
		got = copy_from_iter(e->payload + off, a->in_iter_len, a->in_iter);
		pagefault_enable();
		if (got != a->in_iter_len) {
			iov_iter_revert(a->in_iter, got);
			return -EAGAIN;
		}
		off += a->in_iter_len;
	}
	if (a->in_folios) {
		size_t left = a->in_folios_len;

		if (left > e->payload_len - off)
			return -E2BIG;
		for (i = 0; i < a->in_nr_folios && left; i++) {
			size_t k = min_t(size_t, left, PAGE_SIZE);
			void *src = kmap_local_folio(a->in_folios[i], 0);

			memcpy(e->payload + off, src, k);
			kunmap_local(src);
			off += k;
			left -= k;
		}
	}
	memset(ih, 0, sizeof(*ih));
	ih->len = sizeof(*ih) + a->op_in_len + off;
	ih->opcode = a->opcode;
	ih->unique = atomic64_inc_return(&fc->unique);
	ih->nodeid = a->nodeid;
	ih->uid = from_kuid_munged(&init_user_ns, a->cred ? a->cred->fsuid : current_fsuid());
	ih->gid = from_kgid_munged(&init_user_ns, a->cred ? a->cred->fsgid : current_fsgid());
	ih->pid = task_tgid_nr(current);
	if (a->op_in_len)
		memcpy(e->hdr->op_in, a->op_in, a->op_in_len);
	e->hdr->ent.commit_id = e->index;
	e->hdr->ent.payload_sz = off;
	e->hdr->ent.flags = 0;
	return off;
}

/*
 * Fills an entry with request `a` and sends it; `req` is told when the
 * answer is in (req->end, or its completion). 0, or -errno with nothing
 * sent. A caller may be killed while it waits for an entry. Once its
 * request is with the frontend it waits for the answer unkillably, as
 * FUSE does (an abandoned CREATE or LOOKUP would leak the frontend's
 * handle or lookup count); the frontend answers within its response
 * timeout, and its death ends the wait (-ENOTCONN). RELEASE, FLUSH and
 * write-back (a->nokill) do not give up at all. a->nowait (IOCB_NOWAIT):
 * -EAGAIN when no entry is free or the data is not in memory.
 */
int lanefs_start(struct lanefs_conn *fc, struct lanefs_args *a, struct lanefs_req *req)
{
	bool killable = !a->nokill && a->opcode != FUSE_RELEASE && a->opcode != FUSE_RELEASEDIR &&
			a->opcode != FUSE_FLUSH;
	struct lanefs_entry *e;
	ssize_t n;
	int err;

	a->ent = NULL;
	a->reply = NULL;
	a->reply_len = 0;
	for (;;) {
		err = get_entry(fc, killable, a->nowait, &e);
		if (err)
			return err;
		n = fill_request(fc, e, a);
		if (n >= 0)
			break;
		lanefs_put_entry(e);
		if (n != -EAGAIN || a->nowait)
			return n;
		/* the write data was not in memory: fault it in, holding nothing */
		if (fault_in_iov_iter_readable(a->in_iter, a->in_iter_len))
			return -EFAULT;
	}
	if (req) {
		req->error = 0;
		init_completion(&req->done);
	}
	return send_entry(e, req);
}

/*
 * The answer to `a` in entry `e` (its request's `end`, or after the wait):
 * the payload's length or -errno. The entry goes back unless a->keep and
 * the answer is a success (then lanefs_put() returns it).
 */
ssize_t lanefs_finish(struct lanefs_entry *e, struct lanefs_args *a)
{
	const struct fuse_out_header *oh = (const struct fuse_out_header *)e->hdr->in_out;
	u32 len = min_t(u32, READ_ONCE(e->hdr->ent.payload_sz), e->payload_len);
	int err = READ_ONCE(oh->error);

	/* kernel-internal codes (-ERESTARTSYS, -EIOCBQUEUED: -512 and below) never come from the frontend */
	if (err > 0 || err <= -512)
		err = -EIO;
	if (!err && a->out && len < a->out_len && !a->out_var)
		err = -EIO;
	if (err) {
		lanefs_put_entry(e);
		return err;
	}
	if (a->out) {
		memcpy(a->out, e->payload, min(len, a->out_len));
		if (a->out_var)
			a->out_len = min(len, a->out_len);
	}
	a->reply_len = len;
	if (a->keep) {
		a->ent = e;
		a->reply = e->payload;
	} else {
		lanefs_put_entry(e);
	}
	return len;
}

ssize_t lanefs_send(struct lanefs_conn *fc, struct lanefs_args *a)
{
	struct lanefs_req req = { .end = NULL };
	int err;

	if (a->noreply)
		return lanefs_start(fc, a, NULL);
	err = lanefs_start(fc, a, &req);
	if (err)
		return err;
	wait_for_completion(&req.done);
	if (req.error)	/* the connection ended: the entry is not ours */
		return req.error;
	return lanefs_finish(req.ent, a);
}
