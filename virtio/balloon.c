#include "virtio/balloon.h"

#include <endian.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <event2/event.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>

#include "core/guest_mem.h"
#include "core/log.h"
#include "core/iov.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"

#define PAGE_SIZE  (1u << VIRTIO_BALLOON_PFN_SHIFT)
#define Q_INFLATE  0
#define Q_DEFLATE  1
#define Q_STATS	   2
#define NR_QUEUES  3
#define STAT_BYTES 10 /* packed {le16 tag; le64 val} */
#define PFN_BATCH  256

/* The statistics the reply carries are the tags Linux knows, in their order. */
_Static_assert(VIRTIO_BALLOON_S_NR == DEV_BALLOON_NR_STATS, "one reply slot per virtio tag");

/*
 * Where the driver's one stats buffer is: not given yet, held by the device until someone
 * asks, or handed back to the driver, which refills it and makes it available again.
 */
enum stats_state { STATS_NONE, STATS_HELD, STATS_REQUESTED };

/* A balloon_stats request waiting for its reply. */
struct waiter {
	STAILQ_ENTRY(waiter) link;
	dev_reply_fn done;
	void *ctx;
};
STAILQ_HEAD(waiter_list, waiter);

/* Consecutive pages to remove with one madvise. */
struct run {
	uint64_t gpa, len;
};

struct balloon {
	/* Queues, stats state and waiters: the loop thread, activate and reset. */
	pthread_mutex_t lock;
	/* The configuration alone, so that vCPU reads never wait behind a long inflate. */
	pthread_mutex_t cfg_lock;
	uint32_t num_pages, actual;

	const struct guest_mem *mem;
	const struct logger *log;
	uint32_t max_pages;
	unsigned timeout_ms;

	struct virtq *q[NR_QUEUES]; /* NULL while inactive (statsq also without STATS_VQ) */
	struct virtio_irq *irq;
	struct virtq_chain chain;

	/* Created on the first activation, on the loop of the device's process. */
	struct event_base *eb;
	struct event *timer; /* the deadline of the stats round trip in progress */
	struct event *flush; /* answers, on the loop thread, requests a reset dropped */

	enum stats_state stats;
	uint16_t stats_head;
	struct waiter_list waiting; /* for the guest's next stats buffer */
	struct waiter_list dropped; /* by a reset, maybe on a vCPU thread; answered by flush */

	uint64_t nr_bad_pfns, nr_malformed;
	bool madvise_failed;
};

static void report_malformed(struct balloon *b, unsigned queue, uint16_t head, const char *why)
{
	if (log_ratelimit(&b->nr_malformed))
		log_warn(b->log, "virtio-balloon: queue %u, request %u: %s [%" PRIu64 " so far]",
			 queue, head, why, b->nr_malformed);
}

static void report_bad_pfn(struct balloon *b, uint32_t pfn)
{
	if (log_ratelimit(&b->nr_bad_pfns))
		log_warn(b->log,
			 "virtio-balloon: PFN 0x%" PRIx32 " is not guest RAM, skipped [%" PRIu64
			 " so far]",
			 pfn, b->nr_bad_pfns);
}

/* Lock held. */
static void run_flush(struct balloon *b, struct run *r)
{
	void *hva;

	if (!r->len)
		return;
	/* Every page of the run was checked to lie in one region, so this cannot fail. */
	if (guest_mem_ptr(b->mem, r->gpa, r->len, &hva) == 0 &&
	    madvise(hva, r->len, MADV_REMOVE) < 0 && !b->madvise_failed) {
		b->madvise_failed = true;
		log_err(b->log,
			"virtio-balloon: cannot free guest pages 0x%" PRIx64 "+0x%" PRIx64 ": %s",
			r->gpa, r->len, strerror(errno));
	}
	r->len = 0;
}

/* Lock held. Adds a valid page to the run, flushing it first when the page does not extend it. */
static void run_add(struct balloon *b, struct run *r, uint64_t gpa)
{
	if (r->len && gpa == r->gpa + r->len &&
	    guest_mem_valid(b->mem, r->gpa, r->len + PAGE_SIZE)) {
		r->len += PAGE_SIZE;
		return;
	}
	run_flush(b, r);
	r->gpa = gpa;
	r->len = PAGE_SIZE;
}

/* Lock held. Validates the chain's PFNs and, to inflate, frees their pages. */
static void do_pfns(struct balloon *b, unsigned queue, const struct virtq_chain *c)
{
	uint32_t pfns[PFN_BATCH];
	struct iov_cursor cur;
	struct run run = {0};
	size_t left = c->out_bytes / sizeof(uint32_t);

	if (c->out_bytes % sizeof(uint32_t))
		report_malformed(b, queue, c->head, "not a whole number of PFNs");
	if (left > VIRTIO_BALLOON_MAX_CHAIN_PFNS) {
		report_malformed(b, queue, c->head, "too many PFNs, the rest ignored");
		left = VIRTIO_BALLOON_MAX_CHAIN_PFNS;
	}
	iov_cursor_reader(&cur, c);
	while (left) {
		size_t n = MIN(left, (size_t)PFN_BATCH);

		/* The guest may rewrite the buffer meanwhile: only the copy is looked at. */
		if (iov_read(&cur, pfns, n * sizeof(uint32_t)) < 0)
			break;
		left -= n;
		for (size_t i = 0; i < n; i++) {
			uint32_t pfn = le32toh(pfns[i]);
			uint64_t gpa = (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT;

			if (!guest_mem_valid(b->mem, gpa, PAGE_SIZE))
				report_bad_pfn(b, pfn);
			else if (queue == Q_INFLATE)
				run_add(b, &run, gpa);
		}
	}
	run_flush(b, &run);
}

/* Lock held. A queue the device can no longer trust: stop using it until reset. */
static void broken(struct balloon *b, unsigned queue)
{
	if (!b->q[queue])
		return; /* already */
	b->q[queue] = NULL;
	virtio_irq_needs_reset(b->irq);
}

/* A queue being served (virtq_serve's context). */
struct serving {
	struct balloon *b;
	unsigned queue;
	struct waiter_list *answered; /* statsq: the waiters this round answers... */
	struct dev_reply *reply;      /* ...and their reply */
	bool irq;		      /* statsq: a push of the device's own wants an interrupt */
};

/* Lock held. One chain of inflateq or deflateq. */
static enum virtq_verdict serve_pfns(void *ctx, struct virtq_chain *c, int status,
				     uint32_t *written)
{
	struct serving *sv = ctx;

	/* -EBADMSG: the queue already logged why; the request completes empty. */
	if (status == 0 && c->nr_in)
		report_malformed(sv->b, sv->queue, c->head, "device-writable buffer");
	else if (status == 0)
		do_pfns(sv->b, sv->queue, c);
	return VIRTQ_PUSH;
}

static const struct virtq_server pfn_server = {.serve = serve_pfns};

/* Reads the whole entries of a stats buffer (later duplicates win, unknown tags ignored). */
static void parse_stats(const struct virtq_chain *c, struct dev_balloon_stats *st)
{
	size_t n = MIN(c->out_bytes / STAT_BYTES, (size_t)VIRTIO_BALLOON_MAX_STATS);
	struct iov_cursor cur;
	uint8_t e[STAT_BYTES];

	iov_cursor_reader(&cur, c);
	for (size_t i = 0; i < n && iov_read(&cur, e, sizeof(e)) == 0; i++) {
		uint16_t tag = (uint16_t)get_le(e, 2);

		if (tag < DEV_BALLOON_NR_STATS) {
			st->val[tag] = get_le(e + 2, 8);
			st->valid |= 1u << tag;
		}
	}
}

static uint32_t cfg_actual(struct balloon *b)
{
	uint32_t v;

	pthread_mutex_lock(&b->cfg_lock);
	v = b->actual;
	pthread_mutex_unlock(&b->cfg_lock);
	return v;
}

/* A failure reply: err and why. */
static void failure(struct dev_reply *r, int err, const char *why)
{
	memset(r, 0, sizeof(*r));
	r->err = err;
	snprintf(r->msg, sizeof(r->msg), "virtio-balloon: %s", why);
}

/* Without any lock: a reply may lead the caller straight into another command. */
static void answer_all(struct waiter_list *l, const struct dev_reply *reply)
{
	struct waiter *w;

	while ((w = STAILQ_FIRST(l))) {
		STAILQ_REMOVE_HEAD(l, link);
		w->done(w->ctx, reply);
		free(w);
	}
}

/* Lock held. Gives the held stats buffer back so that the driver refills it. */
static bool request_stats(struct balloon *b)
{
	struct virtq *q = b->q[Q_STATS];

	b->stats = STATS_REQUESTED;
	if (virtq_push(q, b->stats_head, 0) < 0) {
		broken(b, Q_STATS);
		return false;
	}
	return virtq_should_notify(q);
}

/*
 * Lock held. One chain of the statsq: the driver's stats buffer. When it answers a request,
 * the waiters move to sv->answered with their reply formatted.
 */
static enum virtq_verdict serve_stats(void *ctx, struct virtq_chain *c, int status,
				      uint32_t *written)
{
	struct serving *sv = ctx;
	struct balloon *b = sv->b;

	if (status == -EBADMSG || b->stats == STATS_HELD) {
		/* The driver has one stats buffer: another one is a bug. */
		if (status == 0)
			report_malformed(b, Q_STATS, c->head, "a second stats buffer");
		return VIRTQ_PUSH;
	}
	if (b->stats == STATS_REQUESTED && !STAILQ_EMPTY(&b->waiting)) {
		memset(sv->reply, 0, sizeof(*sv->reply));
		parse_stats(c, &sv->reply->stats);
		sv->reply->stats.actual_bytes = (uint64_t)cfg_actual(b) << VIRTIO_BALLOON_PFN_SHIFT;
		STAILQ_CONCAT(sv->answered, &b->waiting);
		if (b->timer)
			event_del(b->timer);
	}
	b->stats_head = c->head;
	b->stats = STATS_HELD;
	/* The driver's first buffer carries stale stats: ask for fresh ones. */
	if (!STAILQ_EMPTY(&b->waiting)) {
		sv->irq |= request_stats(b);
		if (!b->q[Q_STATS])
			return VIRTQ_BROKEN;
	}
	return VIRTQ_HOLD;
}

static const struct virtq_server stats_server = {.serve = serve_stats};

static void balloon_notify(void *dev, unsigned queue)
{
	struct balloon *b = dev;
	struct waiter_list answered = STAILQ_HEAD_INITIALIZER(answered);
	struct dev_reply reply;
	bool irq = false;
	struct serving sv = {.b = b, .queue = queue, .answered = &answered, .reply = &reply};

	pthread_mutex_lock(&b->lock);
	if (queue < NR_QUEUES && b->q[queue] &&
	    virtq_serve(b->q[queue], &b->chain, queue == Q_STATS ? &stats_server : &pfn_server, &sv,
			&irq) < 0)
		broken(b, queue);
	irq |= sv.irq;
	/* Raised under the lock so that a reset cannot slip in between and see it late. */
	if (irq && b->irq)
		virtio_irq_queue(b->irq, queue);
	pthread_mutex_unlock(&b->lock);
	answer_all(&answered, &reply);
}

/* The stats deadline passed (loop thread): whoever still waits gets an error. */
static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct balloon *b = arg;
	struct waiter_list late = STAILQ_HEAD_INITIALIZER(late);
	struct dev_reply reply;
	char why[96];

	pthread_mutex_lock(&b->lock);
	STAILQ_CONCAT(&late, &b->waiting);
	snprintf(why, sizeof(why), "the guest did not report statistics within %u ms",
		 b->timeout_ms);
	pthread_mutex_unlock(&b->lock);
	failure(&reply, -ETIMEDOUT, why);
	answer_all(&late, &reply);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct balloon *b = arg;
	struct waiter_list l = STAILQ_HEAD_INITIALIZER(l);
	struct dev_reply reply;

	pthread_mutex_lock(&b->lock);
	STAILQ_CONCAT(&l, &b->dropped);
	pthread_mutex_unlock(&b->lock);
	failure(&reply, -ECANCELED, "the device was reset");
	answer_all(&l, &reply);
}

/* Loop thread. */
static int stats_command(struct balloon *b, dev_reply_fn done, void *ctx)
{
	struct timeval tv;
	struct waiter *w = malloc(sizeof(*w));
	struct dev_reply reply;
	bool first, irq = false;

	if (!w)
		return -ENOMEM;
	*w = (struct waiter){.done = done, .ctx = ctx};
	pthread_mutex_lock(&b->lock);
	if (!b->q[Q_STATS] || !b->timer) {
		pthread_mutex_unlock(&b->lock);
		free(w);
		failure(&reply, -ENODEV, "the guest has not enabled the statistics queue");
		done(ctx, &reply);
		return 0;
	}
	/* Requests that arrive while a round trip is in progress share it. */
	first = STAILQ_EMPTY(&b->waiting);
	STAILQ_INSERT_TAIL(&b->waiting, w, link);
	if (b->stats == STATS_HELD)
		irq = request_stats(b);
	if (irq)
		virtio_irq_queue(b->irq, Q_STATS);
	if (first) {
		tv = (struct timeval){.tv_sec = b->timeout_ms / 1000,
				      .tv_usec = (b->timeout_ms % 1000) * 1000};
		evtimer_add(b->timer, &tv);
	}
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* Loop thread. */
static void target_command(struct balloon *b, uint64_t num_bytes)
{
	uint64_t pages = MIN(num_bytes >> VIRTIO_BALLOON_PFN_SHIFT, (uint64_t)b->max_pages);

	pthread_mutex_lock(&b->lock);
	pthread_mutex_lock(&b->cfg_lock);
	b->num_pages = (uint32_t)pages;
	pthread_mutex_unlock(&b->cfg_lock);
	/* A driver not running yet reads the target when it starts. */
	if (b->irq)
		virtio_irq_config(b->irq);
	pthread_mutex_unlock(&b->lock);
}

static int balloon_command(void *dev, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx)
{
	struct balloon *b = dev;

	switch (cmd->op) {
	case DEV_CMD_BALLOON_STATS:
		return stats_command(b, done, done_ctx);
	case DEV_CMD_BALLOON_TARGET:
		target_command(b, cmd->arg);
		dev_reply_ok(done, done_ctx);
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static uint64_t balloon_features(void *dev)
{
	return 1ULL << VIRTIO_BALLOON_F_STATS_VQ | 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
}

static void cfg_image(struct balloon *b, uint8_t img[VIRTIO_BALLOON_CONFIG_SIZE])
{
	uint32_t v = htole32(b->num_pages);

	memcpy(img, &v, sizeof(v));
	v = htole32(b->actual);
	memcpy(img + sizeof(v), &v, sizeof(v));
}

static int balloon_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct balloon *b = dev;
	uint8_t img[VIRTIO_BALLOON_CONFIG_SIZE];

	if (off > sizeof(img) || len > sizeof(img) - off)
		return -EINVAL;
	pthread_mutex_lock(&b->cfg_lock);
	cfg_image(b, img);
	pthread_mutex_unlock(&b->cfg_lock);
	memcpy(data, img + off, len);
	return 0;
}

/* Only actual is the driver's to write; bytes of num_pages are dropped. */
static int balloon_config_write(void *dev, uint32_t off, const void *data, uint32_t len)
{
	struct balloon *b = dev;
	uint8_t img[VIRTIO_BALLOON_CONFIG_SIZE];
	uint32_t v;

	if (off > sizeof(img) || len > sizeof(img) - off)
		return -EINVAL;
	pthread_mutex_lock(&b->cfg_lock);
	cfg_image(b, img);
	memcpy(img + off, data, len);
	memcpy(&v, img + sizeof(v), sizeof(v));
	b->actual = le32toh(v);
	pthread_mutex_unlock(&b->cfg_lock);
	return 0;
}

/* The loop's events, made once: the device lives on one loop for its whole life. */
static int make_events(struct balloon *b, struct event_base *eb)
{
	int ret = -ENOMEM;

	if (!eb || eb == b->eb)
		return 0;
	if (b->eb) {
		log_err(b->log, "virtio-balloon: activated on another event loop");
		return -EINVAL;
	}
	b->timer = evtimer_new(eb, on_timeout, b);
	if (!b->timer)
		goto err;
	b->flush = event_new(eb, -1, 0, on_flush, b);
	if (!b->flush)
		goto err_timer;
	b->eb = eb;
	return 0;
err_timer:
	event_free(b->timer);
	b->timer = NULL;
err:
	return ret;
}

static int balloon_activate(void *dev, const struct virtio_activate *a)
{
	struct balloon *b = dev;
	int ret;

	pthread_mutex_lock(&b->lock);
	ret = make_events(b, a->eb);
	if (ret == 0) {
		for (unsigned i = 0; i < NR_QUEUES; i++)
			b->q[i] = i < a->nr_queues ? a->queues[i] : NULL;
		/* A statsq the driver enabled without negotiating STATS_VQ is not one. */
		if (!(a->features & (1ULL << VIRTIO_BALLOON_F_STATS_VQ)))
			b->q[Q_STATS] = NULL;
		b->irq = a->irq;
		b->stats = STATS_NONE;
	}
	pthread_mutex_unlock(&b->lock);
	return ret;
}

/* Any thread (a vCPU writing the status, or the loop). */
static void balloon_reset(void *dev)
{
	struct balloon *b = dev;
	bool any;

	pthread_mutex_lock(&b->lock);
	for (unsigned i = 0; i < NR_QUEUES; i++)
		b->q[i] = NULL;
	b->irq = NULL;
	b->stats = STATS_NONE;
	/* Replies belong on the loop thread, which this may not be. */
	STAILQ_CONCAT(&b->dropped, &b->waiting);
	any = !STAILQ_EMPTY(&b->dropped);
	if (any && b->flush)
		event_active(b->flush, EV_TIMEOUT, 0);
	/*
	 * The balloon is empty for the next driver: its pages come back when touched. The
	 * target is the host's and stays, so that the next driver inflates to it again.
	 */
	pthread_mutex_lock(&b->cfg_lock);
	b->actual = 0;
	pthread_mutex_unlock(&b->cfg_lock);
	pthread_mutex_unlock(&b->lock);
}

static void balloon_destroy(void *dev)
{
	struct balloon *b = dev;
	struct dev_reply reply;

	if (b->timer)
		event_free(b->timer);
	if (b->flush)
		event_free(b->flush);
	/* Every request gets exactly one reply, even when the VM goes away first. */
	STAILQ_CONCAT(&b->dropped, &b->waiting);
	failure(&reply, -ECANCELED, "the device was removed");
	answer_all(&b->dropped, &reply);
	virtq_chain_free(&b->chain);
	pthread_mutex_destroy(&b->cfg_lock);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static const struct virtio_dev_ops balloon_ops = {
	.name = "virtio-balloon",
	.policy = "balloon_device",
	.device_type = VIRTIO_ID_BALLOON,
	.nr_queues = NR_QUEUES,
	.queue_max_size = VIRTIO_BALLOON_QUEUE_SIZE,
	.features = balloon_features,
	.config_size = VIRTIO_BALLOON_CONFIG_SIZE,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.activate = balloon_activate,
	.notify = balloon_notify,
	.reset = balloon_reset,
	.command = balloon_command,
	.destroy = balloon_destroy,
};

void virtio_balloon_set_stats_timeout(void *dev, unsigned timeout_ms)
{
	struct balloon *b = dev;

	pthread_mutex_lock(&b->lock);
	b->timeout_ms = MAX(timeout_ms, 1u);
	pthread_mutex_unlock(&b->lock);
}

int virtio_balloon_create(const struct guest_mem *m, const struct logger *lg,
			  const struct virtio_dev_ops **ops, void **dev)
{
	struct balloon *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return -ENOMEM;
	ret = -pthread_mutex_init(&b->lock, NULL);
	if (ret < 0)
		goto err_free;
	ret = -pthread_mutex_init(&b->cfg_lock, NULL);
	if (ret < 0)
		goto err_lock;
	/* A chain never has more buffers than the queue has descriptors. */
	ret = virtq_chain_alloc(&b->chain, VIRTIO_BALLOON_QUEUE_SIZE);
	if (ret < 0)
		goto err_cfg_lock;
	b->mem = m;
	b->log = lg;
	b->max_pages = (uint32_t)MIN(m->size >> VIRTIO_BALLOON_PFN_SHIFT, (uint64_t)UINT32_MAX);
	b->timeout_ms = VIRTIO_BALLOON_STATS_TIMEOUT_MS;
	STAILQ_INIT(&b->waiting);
	STAILQ_INIT(&b->dropped);
	*ops = &balloon_ops;
	*dev = b;
	return 0;
err_cfg_lock:
	pthread_mutex_destroy(&b->cfg_lock);
err_lock:
	pthread_mutex_destroy(&b->lock);
err_free:
	free(b);
	return ret;
}
