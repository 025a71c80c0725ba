#include "virtio/blk.h"

#include <endian.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "core/log.h"
#include "virtio/disk.h"
#include "core/iov.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"

#define SECTOR_SHIFT 9
#define SECTOR_SIZE  (1u << SECTOR_SHIFT)
/* While a batch runs, the driver is interrupted at most once per this interval (see process). */
#define IRQ_INTERVAL_NS 15000u

/* Configuration layout (virtio 1.2, 5.2.4); checked against Linux's header below. */
#define CFG_CAPACITY	     0
#define CFG_SIZE_MAX	     8
#define CFG_SEG_MAX	     12
#define CFG_BLK_SIZE	     20
#define CFG_NUM_QUEUES	     34
#define CFG_MAX_DISCARD_SECT 36
#define CFG_MAX_DISCARD_SEG  40
#define CFG_DISCARD_ALIGN    44
#define CFG_MAX_WZ_SECT	     48
#define CFG_MAX_WZ_SEG	     52
#define CFG_WZ_MAY_UNMAP     56

_Static_assert(offsetof(struct virtio_blk_config, size_max) == CFG_SIZE_MAX, "layout");
_Static_assert(offsetof(struct virtio_blk_config, seg_max) == CFG_SEG_MAX, "layout");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == CFG_BLK_SIZE, "layout");
_Static_assert(offsetof(struct virtio_blk_config, num_queues) == CFG_NUM_QUEUES, "layout");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == CFG_MAX_DISCARD_SECT,
	       "layout");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_seg) == CFG_MAX_DISCARD_SEG,
	       "layout");
_Static_assert(offsetof(struct virtio_blk_config, discard_sector_alignment) == CFG_DISCARD_ALIGN,
	       "layout");
_Static_assert(offsetof(struct virtio_blk_config, max_write_zeroes_sectors) == CFG_MAX_WZ_SECT,
	       "layout");
_Static_assert(offsetof(struct virtio_blk_config, max_write_zeroes_seg) == CFG_MAX_WZ_SEG,
	       "layout");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == CFG_WZ_MAY_UNMAP,
	       "layout");
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "request header");
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "segment");

/* One request being served: a slot of the device's fixed pool. */
struct blk_req {
	struct disk_req dr;
	struct blk *b;
	struct blk_queue *q; /* NULL: served through virtio_blk_handle_chains */
	uint32_t *out;	     /* then: where its used length goes */
	uint8_t *status;     /* the chain's last writable byte; NULL when it has none */
	uint32_t written;    /* data bytes put into the chain (IN, GET_ID) */
	uint32_t type;
	uint64_t sector; /* for messages */
	uint16_t head;
	/* DISCARD and WRITE_ZEROES: the segments, carried out one after the other. */
	unsigned nr_seg, next_seg;
	struct virtio_blk_discard_write_zeroes seg[VIRTIO_BLK_MAX_DISCARD_SEG];
	struct blk_req *next_free;
	/* A chain has no more buffers than the queue has descriptors. */
	struct iovec iov[VIRTIO_BLK_QUEUE_SIZE];
};

struct blk_queue {
	struct blk *b;
	unsigned index;
	struct virtq *vq; /* NULL: the driver left it disabled */
	int kick_fd;
	bool ready;  /* to be served: kicked, or left with chains when the slots ran out */
	bool pushed; /* used entries the driver was not yet considered for an interrupt for */
	bool broken;
	uint64_t last_irq; /* when the driver was last considered for one */
};

struct blk {
	const struct logger *log;
	struct disk *disk;
	uint64_t features;
	uint32_t blk_size;
	unsigned num_queues;
	bool has_id;
	char id[VIRTIO_BLK_ID_BYTES];
	uint64_t capacity; /* sectors; written while the worker is paused, read atomically */
	uint64_t nr_bad;   /* requests the guest got wrong, for rate-limited logs */
	uint64_t nr_ioerr; /* requests the host failed */

	/*
	 * The slots: at most nr_reqs requests are served at once whatever the queues hold, so
	 * a guest that posts faster than the disk completes waits in its own rings.
	 */
	struct blk_req *reqs;
	unsigned nr_reqs, inflight;
	struct blk_req *free;
	struct virtq_chain chain; /* the worker's, for popping */

	/* The worker: created at activate, stopped and joined at reset. */
	struct blk_queue q[VIRTIO_MAX_QUEUES];
	unsigned nr_active; /* queues the transport handed over */
	unsigned rr;	    /* the queue served first next time, for fairness */
	struct virtio_irq *q_irq;
	int wake_fd; /* stop or pause asked */
	pthread_t worker;
	bool stop;  /* atomic: stop serving, finish what is in flight, leave */
	bool pause; /* atomic: finish what is in flight and wait (a resize) */

	/* Protects what follows, and the pause handshake with the control command. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool running;
	bool worker_alive;
	bool paused;
	struct virtio_irq *irq;
};

static uint64_t capacity(struct blk *b)
{
	return __atomic_load_n(&b->capacity, __ATOMIC_RELAXED);
}

static void __attribute__((format(printf, 3, 4)))
bad_request(struct blk *b, uint16_t head, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	if (!log_ratelimit(&b->nr_bad))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn(b->log, "virtio-blk %s: request %u: %s [%" PRIu64 " so far]", b->disk->path, head,
		 why, b->nr_bad);
}

static void io_failed(struct blk *b, const char *what, uint64_t sector, int err)
{
	if (log_ratelimit(&b->nr_ioerr))
		log_err(b->log,
			"virtio-blk %s: %s at sector %" PRIu64 " failed: %s [%" PRIu64 " so far]",
			b->disk->path, what, sector, strerror(-err), b->nr_ioerr);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static bool stopping(struct blk *b)
{
	return __atomic_load_n(&b->stop, __ATOMIC_ACQUIRE);
}

static bool pausing(struct blk *b)
{
	return __atomic_load_n(&b->pause, __ATOMIC_ACQUIRE);
}

/* Interrupts the driver for what was pushed to q since the last call, if it asked to be. */
static void signal_used(struct blk *b, struct blk_queue *q, uint64_t t)
{
	q->pushed = false;
	q->last_irq = t;
	if (virtq_should_notify(q->vq))
		virtio_irq_queue(b->q_irq, q->index);
}

static void signal_all(struct blk *b)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < b->nr_active; i++)
		if (b->q[i].pushed) {
			if (!t)
				t = now_ns();
			signal_used(b, &b->q[i], t);
		}
}

/*
 * The request is over with status st: the status byte, then the used entry (none once the
 * device is stopping: the driver reset the queue), and the slot is free again.
 */
static void req_end(struct blk_req *r, uint8_t st)
{
	struct blk *b = r->b;
	uint32_t used = 0;

	if (r->status) {
		*r->status = st;
		used = (st == VIRTIO_BLK_S_OK ? r->written : 0) + 1;
	}
	if (r->q) {
		if (!stopping(b)) {
			if (virtq_push(r->q->vq, r->head, used) < 0)
				r->q->broken = true;
			else
				r->q->pushed = true;
		}
	} else if (r->out) {
		*r->out = used;
	}
	r->next_free = b->free;
	b->free = r;
	b->inflight--;
}

static const char *op_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN:
		return "read";
	case VIRTIO_BLK_T_OUT:
		return "write";
	case VIRTIO_BLK_T_FLUSH:
		return "flush";
	case VIRTIO_BLK_T_DISCARD:
		return "discard";
	default:
		return "write-zeroes";
	}
}

static void submit(struct blk_req *r);

/* The back end's completion (inside disk_submit, or from disk_reap; the worker's thread). */
static void req_done(struct disk_req *dr, int ret)
{
	struct blk_req *r = dr->ctx;

	if (ret) {
		io_failed(r->b, op_name(r->type), r->sector, ret);
		req_end(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (r->nr_seg && ++r->next_seg < r->nr_seg) {
		submit(r);
		return;
	}
	req_end(r, VIRTIO_BLK_S_OK);
}

/* Hands r->dr (the next segment's, for DISCARD and WRITE_ZEROES) to the back end. */
static void submit(struct blk_req *r)
{
	int ret;

	if (r->nr_seg) {
		const struct virtio_blk_discard_write_zeroes *s = &r->seg[r->next_seg];

		r->sector = le64toh(s->sector);
		r->dr = (struct disk_req){
			.op = r->type == VIRTIO_BLK_T_DISCARD ? DISK_DISCARD : DISK_WRITE_ZEROES,
			.off = r->sector << SECTOR_SHIFT,
			.len = (uint64_t)le32toh(s->num_sectors) << SECTOR_SHIFT,
			.unmap = le32toh(s->flags) & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP};
	}
	r->dr.done = req_done;
	r->dr.ctx = r;
	ret = disk_submit(r->b->disk, &r->dr);
	if (ret)
		req_done(&r->dr, ret); /* done did not and will not run */
}

/* [sector, sector+n) lies inside the disk; the sum never wraps. */
static bool in_capacity(struct blk *b, uint64_t sector, uint64_t n)
{
	uint64_t cap = capacity(b);

	return sector <= cap && n <= cap - sector;
}

/* IN or OUT: data is the request's data area. Returns 0 once submitted, or a status. */
static uint8_t start_rw(struct blk *b, struct blk_req *r, struct iov_cursor *data, bool write)
{
	size_t len = iov_remaining(data);
	unsigned nr;

	if (len % SECTOR_SIZE) {
		bad_request(b, r->head, "data length %zu is not a multiple of 512", len);
		return VIRTIO_BLK_S_IOERR;
	}
	if (!in_capacity(b, r->sector, len >> SECTOR_SHIFT)) {
		bad_request(b, r->head, "sectors %" PRIu64 "+%zu beyond the capacity %" PRIu64,
			    r->sector, len >> SECTOR_SHIFT, capacity(b));
		return VIRTIO_BLK_S_IOERR;
	}
	/* A chain has no more buffers than the queue has descriptors, so this always fits. */
	if (iov_take(data, len, r->iov, ARRAY_SIZE(r->iov), &nr))
		return VIRTIO_BLK_S_IOERR;
	if (!write)
		r->written = (uint32_t)len;
	r->dr = (struct disk_req){.op = write ? DISK_WRITE : DISK_READ,
				  .off = r->sector << SECTOR_SHIFT,
				  .iov = r->iov,
				  .nr = nr};
	submit(r);
	return 0;
}

static uint8_t do_get_id(struct blk *b, struct blk_req *r, struct iov_cursor *data)
{
	char id[VIRTIO_BLK_ID_BYTES];

	if (!b->has_id)
		return VIRTIO_BLK_S_UNSUPP;
	/* NUL-padded; no terminator when the id is exactly 20 bytes (spec 5.2.6). */
	memcpy(id, b->id, sizeof(id));
	if (iov_write(data, id, sizeof(id))) {
		bad_request(b, r->head, "GET_ID buffer of %zu bytes, 20 needed",
			    iov_remaining(data));
		return VIRTIO_BLK_S_IOERR;
	}
	r->written = sizeof(id);
	return VIRTIO_BLK_S_OK;
}

/* Every segment is checked before any is carried out. Returns 0 once submitted, or a status. */
static uint8_t start_discard(struct blk *b, struct blk_req *r, struct iov_cursor *rd)
{
	bool zeroes = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	const char *what = op_name(r->type);
	size_t len = iov_remaining(rd);
	size_t n = len / sizeof(r->seg[0]);

	if (len % sizeof(r->seg[0]) || n > ARRAY_SIZE(r->seg)) {
		bad_request(b, r->head,
			    "%s with %zu bytes of segments (at most %zu segments of 16)", what, len,
			    ARRAY_SIZE(r->seg));
		return VIRTIO_BLK_S_IOERR;
	}
	if (iov_read(rd, r->seg, len))
		return VIRTIO_BLK_S_IOERR;
	if (!n)
		return VIRTIO_BLK_S_OK;
	for (size_t i = 0; i < n; i++) {
		uint32_t flags = le32toh(r->seg[i].flags);

		/* Unknown flags, and unmap on a discard, are unsupported (spec 5.2.6.2). */
		if (flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP || (!zeroes && flags)) {
			bad_request(b, r->head, "%s segment flags 0x%x", what, flags);
			return VIRTIO_BLK_S_UNSUPP;
		}
		if (!in_capacity(b, le64toh(r->seg[i].sector), le32toh(r->seg[i].num_sectors))) {
			bad_request(b, r->head, "%s of sectors %" PRIu64 "+%u beyond the capacity",
				    what, (uint64_t)le64toh(r->seg[i].sector),
				    le32toh(r->seg[i].num_sectors));
			return VIRTIO_BLK_S_IOERR;
		}
	}
	r->nr_seg = (unsigned)n;
	submit(r);
	return 0;
}

/*
 * rd is past the header; data is the writable part before the status byte. Returns 0 when
 * the request went to the back end (which ends it), else its status.
 */
static uint8_t execute(struct blk *b, struct blk_req *r, struct iov_cursor *rd,
		       struct iov_cursor *data)
{
	bool ro = b->disk->ro;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		return start_rw(b, r, data, false);
	case VIRTIO_BLK_T_OUT:
		if (ro)
			return VIRTIO_BLK_S_IOERR;
		return start_rw(b, r, rd, true);
	case VIRTIO_BLK_T_FLUSH:
		/* The status goes out only at done: a flush the guest sees done is on disk. */
		r->dr = (struct disk_req){.op = DISK_FLUSH};
		submit(r);
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		return do_get_id(b, r, data);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (ro)
			return VIRTIO_BLK_S_IOERR;
		if (!(b->features &
		      BIT(r->type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD
							  : VIRTIO_BLK_F_WRITE_ZEROES)))
			return VIRTIO_BLK_S_UNSUPP;
		return start_discard(b, r, rd);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* A free slot for a new request (the caller checked that one is free). */
static struct blk_req *take_slot(struct blk *b, struct blk_queue *q, uint32_t *out)
{
	struct blk_req *r = b->free;

	b->free = r->next_free;
	b->inflight++;
	r->q = q;
	r->out = out;
	r->status = NULL;
	r->written = 0;
	r->type = 0;
	r->sector = 0;
	r->nr_seg = r->next_seg = 0;
	return r;
}

/*
 * Starts one chain in slot r: header in the readable part, the status as the last writable
 * byte. The request ends (req_end) now when it fails or needs no I/O, else at its done.
 */
static void start(struct blk *b, struct blk_req *r, const struct virtq_chain *c)
{
	struct iov_cursor rd, data, status;
	struct virtio_blk_outhdr h;
	struct iovec st_iov;
	unsigned n;
	uint8_t st;

	r->head = c->head;
	iov_cursor_reader(&rd, c);
	iov_cursor_writer(&data, c);
	if (!iov_remaining(&data)) {
		bad_request(b, c->head, "no device-writable byte for the status");
		req_end(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	/* Cannot fail: one byte remains for the status, in one buffer. */
	if (iov_split(&data, iov_remaining(&data) - 1, &status) ||
	    iov_take(&status, 1, &st_iov, 1, &n)) {
		req_end(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	r->status = st_iov.iov_base;
	if (iov_read(&rd, &h, sizeof(h))) {
		bad_request(b, c->head, "header of %u bytes, 16 needed", c->out_bytes);
		req_end(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	r->type = le32toh(h.type);
	r->sector = le64toh(h.sector);
	st = execute(b, r, &rd, &data);
	if (st || r->type == VIRTIO_BLK_T_GET_ID || (r->type >= VIRTIO_BLK_T_DISCARD && !r->nr_seg))
		req_end(r, st);
}

/* Waits until the back end has completions. */
static int wait_disk(struct blk *b)
{
	struct pollfd p = {.fd = b->disk->event_fd, .events = POLLIN};

	if (p.fd < 0)
		return -EIO; /* cannot happen: a synchronous back end has nothing in flight */
	if (poll(&p, 1, -1) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/* Until nothing is in flight; completions end as usual (pushed unless stopping). */
static int drain_inflight(struct blk *b)
{
	int ret;

	while (b->inflight) {
		ret = disk_commit(b->disk);
		if (ret >= 0)
			ret = disk_reap(b->disk);
		if (ret < 0)
			return ret;
		if (b->q_irq)
			signal_all(b);
		if (!b->inflight)
			break;
		ret = wait_disk(b);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int virtio_blk_handle_chains(void *dev, const struct virtq_chain *c, unsigned n, uint32_t *written)
{
	struct blk *b = dev;
	bool running;

	pthread_mutex_lock(&b->lock);
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	if (running)
		return -EBUSY;
	if (n > b->nr_reqs - b->inflight)
		return -E2BIG;
	for (unsigned i = 0; i < n; i++) {
		written[i] = 0;
		start(b, take_slot(b, NULL, &written[i]), &c[i]);
	}
	return drain_inflight(b);
}

int virtio_blk_handle_chain(void *dev, const struct virtq_chain *c, uint32_t *written)
{
	return virtio_blk_handle_chains(dev, c, 1, written);
}

static enum virtq_verdict serve_chain(void *ctx, struct virtq_chain *c, int status,
				      uint32_t *written)
{
	struct blk_queue *q = ctx;

	/* -EBADMSG: the queue logged why; the chain completes empty. */
	if (status)
		return VIRTQ_PUSH;
	start(q->b, take_slot(q->b, q, NULL), c);
	return q->broken ? VIRTQ_BROKEN : VIRTQ_HOLD;
}

/*
 * Before each chain, and (idle) when the ring is empty. Completions are published at once,
 * but interrupts are moderated: while a batch runs the driver is considered for one at most
 * every IRQ_INTERVAL_NS, and always before the worker sleeps. One interrupt per completion
 * made a driver thread sharing this CPU preempt the worker for every request (a deep queue
 * ran at a third of the speed); one per batch made a driver on another CPU wait for the whole
 * batch instead of refilling the ring meanwhile. Serving stops, leaving the queue to be
 * served again, when the slots run out or the worker is asked to stop or pause.
 */
static bool between(void *ctx, bool idle)
{
	struct blk_queue *q = ctx;
	struct blk *b = q->b;

	if (q->pushed) {
		uint64_t t = now_ns();

		if (idle || t - q->last_irq >= IRQ_INTERVAL_NS)
			signal_used(b, q, t);
	}
	if (stopping(b) || pausing(b) || (!idle && !b->free)) {
		q->ready = true;
		return false;
	}
	return true;
}

static const struct virtq_server blk_server = {.serve = serve_chain, .between = between};

/* Serves every queue that has work, while slots last; the first queue rotates. */
static void serve_ready(struct blk *b)
{
	unsigned n = b->nr_active;

	for (unsigned i = 0; i < n && b->free; i++) {
		struct blk_queue *q = &b->q[(b->rr + i) % n];

		if (!q->vq || !q->ready || q->broken)
			continue;
		q->ready = false;
		if (virtq_serve(q->vq, &b->chain, &blk_server, q, NULL) < 0 || q->broken) {
			q->broken = true;
			virtio_irq_needs_reset(b->q_irq);
		}
	}
	b->rr = n ? (b->rr + 1) % n : 0;
}

static bool has_ready(struct blk *b)
{
	for (unsigned i = 0; i < b->nr_active; i++)
		if (b->q[i].vq && b->q[i].ready && !b->q[i].broken)
			return true;
	return false;
}

static void drain(int fd)
{
	uint64_t n;

	(void)eventfd_drain(fd, &n);
}

/* A resize waits for this: nothing in flight, nothing served until it is done. */
static int pause_here(struct blk *b)
{
	int ret;

	drain(b->wake_fd);
	ret = drain_inflight(b);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&b->lock);
	b->paused = true;
	pthread_cond_broadcast(&b->cond);
	while (pausing(b) && !stopping(b))
		pthread_cond_wait(&b->cond, &b->lock);
	b->paused = false;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* Sleeps until a queue is kicked, the back end completes something, or a stop or pause. */
static int sleep_on_events(struct blk *b)
{
	struct pollfd p[2 + VIRTIO_MAX_QUEUES];
	struct blk_queue *of[2 + VIRTIO_MAX_QUEUES];
	unsigned n = 0;
	uint64_t cnt;

	p[n] = (struct pollfd){.fd = b->wake_fd, .events = POLLIN};
	of[n++] = NULL;
	if (b->inflight && b->disk->event_fd >= 0) {
		p[n] = (struct pollfd){.fd = b->disk->event_fd, .events = POLLIN};
		of[n++] = NULL;
	}
	for (unsigned i = 0; i < b->nr_active; i++) {
		if (!b->q[i].vq || b->q[i].broken || b->q[i].kick_fd < 0)
			continue;
		p[n] = (struct pollfd){.fd = b->q[i].kick_fd, .events = POLLIN};
		of[n++] = &b->q[i];
	}
	if (poll(p, n, -1) < 0)
		return errno == EINTR ? 0 : -errno;
	for (unsigned i = 0; i < n; i++) {
		if (!of[i] || !p[i].revents)
			continue;
		if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL))
			return -EIO;
		if (eventfd_drain(p[i].fd, &cnt) == 0)
			of[i]->ready = true;
	}
	return 0;
}

/*
 * The worker: serves the queues, hands each batch to the back end in one go, ends what
 * completed and interrupts the driver, and sleeps only when nothing can move. It waits on
 * the queues' kick eventfds itself (own_kicks), so a kick wakes this thread directly.
 */
static void *worker(void *arg)
{
	struct blk *b = arg;
	int ret = 0;

	(void)pthread_setname_np(pthread_self(), "virtio_blk");
	while (ret >= 0 && !stopping(b)) {
		if (pausing(b)) {
			ret = pause_here(b);
			continue;
		}
		serve_ready(b);
		ret = disk_commit(b->disk);
		if (ret >= 0)
			ret = disk_reap(b->disk);
		signal_all(b);
		if (ret < 0 || stopping(b) || pausing(b) || (b->free && has_ready(b)))
			continue;
		ret = sleep_on_events(b);
	}
	if (ret < 0) {
		log_err(b->log, "virtio-blk %s: the worker failed: %s", b->disk->path,
			strerror(-ret));
		virtio_irq_needs_reset(b->q_irq);
	}
	/* Reset or stop: what is in flight finishes on the disk; the driver gets no entries. */
	if (drain_inflight(b) < 0)
		log_err(b->log, "virtio-blk %s: requests in flight never completed", b->disk->path);
	pthread_mutex_lock(&b->lock);
	b->worker_alive = false;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static uint64_t blk_features(void *dev)
{
	return ((struct blk *)dev)->features;
}

static unsigned blk_queues(void *dev)
{
	return ((struct blk *)dev)->num_queues;
}

static int blk_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct blk *b = dev;
	uint8_t cfg[VIRTIO_BLK_CONFIG_SIZE] = {0};

	if (off > sizeof(cfg) || len > sizeof(cfg) - off)
		return -EINVAL;
	/* Geometry, topology and writeback stay 0: not offered, and no writeback toggle. */
	put_le(cfg + CFG_CAPACITY, capacity(b), 8);
	put_le(cfg + CFG_SIZE_MAX, VIRTIO_BLK_SIZE_MAX, 4);
	put_le(cfg + CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX, 4);
	put_le(cfg + CFG_BLK_SIZE, b->blk_size, 4);
	if (b->features & BIT(VIRTIO_BLK_F_MQ))
		put_le(cfg + CFG_NUM_QUEUES, b->num_queues, 2);
	if (b->features & BIT(VIRTIO_BLK_F_DISCARD)) {
		put_le(cfg + CFG_MAX_DISCARD_SECT, UINT32_MAX, 4);
		put_le(cfg + CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_DISCARD_SEG, 4);
		put_le(cfg + CFG_DISCARD_ALIGN, VIRTIO_BLK_DISCARD_ALIGNMENT, 4);
	}
	if (b->features & BIT(VIRTIO_BLK_F_WRITE_ZEROES)) {
		put_le(cfg + CFG_MAX_WZ_SECT, UINT32_MAX, 4);
		put_le(cfg + CFG_MAX_WZ_SEG, VIRTIO_BLK_MAX_DISCARD_SEG, 4);
		cfg[CFG_WZ_MAY_UNMAP] = b->disk->sparse;
	}
	memcpy(data, cfg + off, len);
	return 0;
}

static int blk_activate(void *dev, const struct virtio_activate *a)
{
	struct blk *b = dev;
	sigset_t all, old;
	int ret;

	pthread_mutex_lock(&b->lock);
	if (b->running) {
		ret = -EBUSY;
		goto out;
	}
	b->nr_active = MIN(a->nr_queues, b->num_queues);
	for (unsigned i = 0; i < b->nr_active; i++)
		b->q[i] = (struct blk_queue){.b = b,
					     .index = i,
					     .vq = a->queues[i],
					     .kick_fd = a->kick_fds[i],
					     .ready = a->queues[i] != NULL};
	b->q_irq = a->irq;
	b->rr = 0;
	__atomic_store_n(&b->stop, false, __ATOMIC_RELEASE);
	__atomic_store_n(&b->pause, false, __ATOMIC_RELEASE);
	drain(b->wake_fd);
	/* Signals belong to the loop and vCPU threads (signalfd, kicks), never to the worker. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&b->worker, NULL, worker, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		log_err(b->log, "virtio-blk %s: cannot start the worker: %s", b->disk->path,
			strerror(-ret));
		b->nr_active = 0;
		goto out;
	}
	b->running = true;
	b->worker_alive = true;
	b->irq = a->irq;
out:
	pthread_mutex_unlock(&b->lock);
	return ret;
}

/*
 * Stops and joins the worker, which first lets what is in flight finish on the disk; the
 * queues and the interrupt are not used after this returns.
 */
static void blk_reset(void *dev)
{
	struct blk *b = dev;
	bool was;

	pthread_mutex_lock(&b->lock);
	was = b->running;
	b->running = false;
	b->irq = NULL;
	if (was)
		__atomic_store_n(&b->stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&b->cond); /* a worker paused for a resize */
	pthread_mutex_unlock(&b->lock);
	if (!was)
		return;
	(void)eventfd_signal(b->wake_fd);
	pthread_join(b->worker, NULL);
	drain(b->wake_fd);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		b->q[i] = (struct blk_queue){.kick_fd = -1};
	b->nr_active = 0;
	b->q_irq = NULL;
}

static int blk_fds(void *dev, struct fd_list *out)
{
	struct blk *b = dev;
	int ret = disk_fds(b->disk, out);

	/* The kick eventfds are the transport's, which lists them. */
	if (!ret)
		ret = fd_list_add(out, b->wake_fd);
	return ret;
}

/*
 * Loop thread. The worker finishes what is in flight and waits, so the image never changes
 * size under a request (a write in flight would otherwise grow a shrunk file again).
 */
static void resize(struct blk *b, uint64_t size, dev_reply_fn done, void *done_ctx)
{
	uint64_t old;
	int ret;

	pthread_mutex_lock(&b->lock);
	if (b->running && b->worker_alive) {
		__atomic_store_n(&b->pause, true, __ATOMIC_RELEASE);
		(void)eventfd_signal(b->wake_fd);
		while (!b->paused && b->worker_alive && b->running)
			pthread_cond_wait(&b->cond, &b->lock);
	}
	old = b->disk->size;
	ret = disk_resize(b->disk, size);
	if (!ret)
		__atomic_store_n(&b->capacity, size >> SECTOR_SHIFT, __ATOMIC_RELAXED);
	__atomic_store_n(&b->pause, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&b->cond);
	if (!ret && b->irq)
		virtio_irq_config(b->irq);
	pthread_mutex_unlock(&b->lock);
	if (ret) {
		dev_reply_error(done, done_ctx, ret, "cannot resize %s to %" PRIu64 " bytes: %s",
				b->disk->path, size, strerror(-ret));
		return;
	}
	log_info(b->log, "virtio-blk %s: resized from %" PRIu64 " to %" PRIu64 " bytes",
		 b->disk->path, old, size);
	dev_reply_ok(done, done_ctx);
}

static int blk_command(void *dev, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx)
{
	struct blk *b = dev;

	if (cmd->op != DEV_CMD_DISK_RESIZE)
		return -EOPNOTSUPP;
	if (b->disk->ro) {
		dev_reply_error(done, done_ctx, -EROFS, "disk is read-only");
	} else if (cmd->arg % SECTOR_SIZE) {
		dev_reply_error(done, done_ctx, -EINVAL,
				"disk_resize: size must be a multiple of 512");
	} else {
		resize(b, cmd->arg, done, done_ctx);
	}
	return 0;
}

static void blk_destroy(void *dev)
{
	struct blk *b = dev;

	blk_reset(b);
	/* Chains served through virtio_blk_handle_chains never outlive their call. */
	close_fd(&b->wake_fd);
	disk_close(b->disk);
	virtq_chain_free(&b->chain);
	free(b->reqs);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.policy = "block_device",
	.device_type = VIRTIO_ID_BLOCK,
	.nr_queues = 1,
	.queues = blk_queues,
	.queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
	.features = blk_features,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.config_read = blk_config_read,
	/* No config_write: the configuration is read-only, guest writes are ignored. */
	.activate = blk_activate,
	.own_kicks = true,
	.reset = blk_reset,
	.fds = blk_fds,
	.command = blk_command,
	.destroy = blk_destroy,
};

static uint64_t features_for(const struct disk_config *cfg, unsigned num_queues)
{
	uint64_t f = BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_SIZE_MAX) |
		     BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_FLUSH);

	/* As crosvm: one queue is the plain device, without the feature. */
	if (num_queues > 1)
		f |= BIT(VIRTIO_BLK_F_MQ);
	if (cfg->ro)
		return f | BIT(VIRTIO_BLK_F_RO);
	f |= BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	if (cfg->sparse)
		f |= BIT(VIRTIO_BLK_F_DISCARD);
	return f;
}

static int new_eventfd(int *fd)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? -errno : 0;
}

/* The slot pool, once, off the hot path: popping and serving allocate nothing. */
static int alloc_slots(struct blk *b)
{
	b->nr_reqs = MIN(VIRTIO_BLK_MAX_INFLIGHT, b->disk->max_inflight);
	b->reqs = calloc(b->nr_reqs, sizeof(*b->reqs));
	if (!b->reqs)
		return -ENOMEM;
	for (unsigned i = 0; i < b->nr_reqs; i++) {
		b->reqs[i].b = b;
		b->reqs[i].next_free = b->free;
		b->free = &b->reqs[i];
	}
	return 0;
}

int virtio_blk_create(const struct disk_config *cfg, const struct logger *lg,
		      const struct virtio_dev_ops **ops, void **dev)
{
	unsigned nq = cfg->num_queues ? cfg->num_queues : VIRTIO_BLK_DEFAULT_QUEUES;
	struct blk *b;
	int ret;

	if (cfg->block_size < SECTOR_SIZE || cfg->block_size > 65536 ||
	    (cfg->block_size & (cfg->block_size - 1))) {
		log_err(lg, "disk image %s: block size %u is not a power of two in 512..65536",
			cfg->path ? cfg->path : "(none)", cfg->block_size);
		return -EINVAL;
	}
	if (nq > VIRTIO_BLK_MAX_QUEUES) {
		log_err(lg, "disk image %s: %u queues, at most %u",
			cfg->path ? cfg->path : "(none)", nq, VIRTIO_BLK_MAX_QUEUES);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->log = lg;
	b->wake_fd = -1;
	b->num_queues = nq;
	b->features = features_for(cfg, nq);
	b->blk_size = cfg->block_size;
	b->has_id = cfg->has_id;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		b->q[i].kick_fd = -1;
	/* NUL-padded, unterminated at 20 bytes: what GET_ID returns. */
	memcpy(b->id, cfg->id, strnlen(cfg->id, sizeof(b->id)));
	ret = -pthread_mutex_init(&b->lock, NULL);
	if (ret)
		goto err_free;
	ret = -pthread_cond_init(&b->cond, NULL);
	if (ret)
		goto err_lock;
	ret = virtq_chain_alloc(&b->chain, VIRTIO_BLK_QUEUE_SIZE);
	if (ret)
		goto err_cond;
	ret = new_eventfd(&b->wake_fd);
	if (ret)
		goto err_chain;
	/* io_uring where the kernel allows it, else synchronous: blk sees only struct disk. */
	ret = disk_open(cfg, lg, &b->disk);
	if (ret)
		goto err_chain;
	ret = alloc_slots(b);
	if (ret)
		goto err_disk;
	b->capacity = b->disk->size >> SECTOR_SHIFT;
	if (b->disk->size % SECTOR_SIZE)
		log_warn(lg,
			 "disk image %s: its size %" PRIu64 " is not a multiple of 512; the last "
			 "%" PRIu64 " bytes are not visible to the guest",
			 b->disk->path, b->disk->size, b->disk->size % SECTOR_SIZE);
	*ops = &blk_ops;
	*dev = b;
	return 0;
err_disk:
	disk_close(b->disk);
err_chain:
	close_fd(&b->wake_fd);
	virtq_chain_free(&b->chain);
err_cond:
	pthread_cond_destroy(&b->cond);
err_lock:
	pthread_mutex_destroy(&b->lock);
err_free:
	free(b);
	return ret;
}
