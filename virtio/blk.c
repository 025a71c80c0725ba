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
#include "virtio/disk_raw.h"
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
#define CFG_MAX_DISCARD_SECT 36
#define CFG_MAX_DISCARD_SEG  40
#define CFG_DISCARD_ALIGN    44
#define CFG_MAX_WZ_SECT	     48
#define CFG_MAX_WZ_SEG	     52
#define CFG_WZ_MAY_UNMAP     56

_Static_assert(offsetof(struct virtio_blk_config, size_max) == CFG_SIZE_MAX, "layout");
_Static_assert(offsetof(struct virtio_blk_config, seg_max) == CFG_SEG_MAX, "layout");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == CFG_BLK_SIZE, "layout");
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

struct blk {
	const struct logger *log;
	struct disk *disk;
	uint64_t features;
	uint32_t blk_size;
	bool has_id;
	char id[VIRTIO_BLK_ID_BYTES];

	/*
	 * Held by the worker across each request and by a resize, so the image never changes
	 * size under a request (a write in flight would otherwise grow a shrunk file again).
	 */
	pthread_mutex_t io_lock;
	/* The back-end request in flight (one at a time) and its completion. */
	struct disk_req req;
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
	bool completed;
	int result;
	uint64_t capacity; /* sectors; written under io_lock, read atomically by config reads */
	uint64_t nr_bad;   /* requests the guest got wrong, for rate-limited logs */
	uint64_t nr_ioerr; /* requests the host failed */
	struct iovec *iov; /* the data buffers of one request */

	/* The worker: created at activate, stopped and joined at reset. */
	int kick_fd; /* the queue's, the transport's (own_kicks); -1 when not running */
	int stop_fd;
	pthread_t worker;
	bool stop; /* atomic: leave the queue now */
	bool broken;
	struct virtq *q;
	struct virtio_irq *q_irq;
	struct virtq_chain chain;

	/* Protects running and irq against the control command's config interrupt. */
	pthread_mutex_t state_lock;
	bool running;
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

static void req_done(struct disk_req *req, int ret)
{
	struct blk *b = req->ctx;

	pthread_mutex_lock(&b->done_lock);
	b->result = ret;
	b->completed = true;
	pthread_cond_signal(&b->done_cond);
	pthread_mutex_unlock(&b->done_lock);
}

/*
 * io_lock held. Runs one back-end request to its end: requests are served one at a time,
 * so this waits for the completion, which the raw back end delivers inside disk_submit
 * and an asynchronous one from its own thread.
 */
static int disk_io(struct blk *b, struct disk_req r)
{
	int ret;

	b->req = r;
	b->req.done = req_done;
	b->req.ctx = b;
	b->completed = false;
	ret = disk_submit(b->disk, &b->req);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&b->done_lock);
	while (!b->completed)
		pthread_cond_wait(&b->done_cond, &b->done_lock);
	ret = b->result;
	pthread_mutex_unlock(&b->done_lock);
	return ret;
}

/* [sector, sector+n) lies inside the disk; the sum never wraps. */
static bool in_capacity(struct blk *b, uint64_t sector, uint64_t n)
{
	uint64_t cap = capacity(b);

	return sector <= cap && n <= cap - sector;
}

/* io_lock held. IN or OUT: data is the request's data area. */
static uint8_t do_rw(struct blk *b, uint16_t head, uint64_t sector, struct iov_cursor *data,
		     bool write, uint32_t *written)
{
	size_t len = iov_remaining(data);
	unsigned nr;
	int ret;

	if (len % SECTOR_SIZE) {
		bad_request(b, head, "data length %zu is not a multiple of 512", len);
		return VIRTIO_BLK_S_IOERR;
	}
	if (!in_capacity(b, sector, len >> SECTOR_SHIFT)) {
		bad_request(b, head, "sectors %" PRIu64 "+%zu beyond the capacity %" PRIu64, sector,
			    len >> SECTOR_SHIFT, capacity(b));
		return VIRTIO_BLK_S_IOERR;
	}
	/* A chain has no more buffers than the queue has descriptors, so this always fits. */
	ret = iov_take(data, len, b->iov, VIRTIO_BLK_QUEUE_SIZE, &nr);
	if (!ret)
		ret = disk_io(b, (struct disk_req){.op = write ? DISK_WRITE : DISK_READ,
						   .off = sector << SECTOR_SHIFT,
						   .iov = b->iov,
						   .nr = nr});
	if (ret) {
		io_failed(b, write ? "write" : "read", sector, ret);
		return VIRTIO_BLK_S_IOERR;
	}
	if (!write)
		*written = (uint32_t)len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_get_id(struct blk *b, uint16_t head, struct iov_cursor *data, uint32_t *written)
{
	char id[VIRTIO_BLK_ID_BYTES];

	if (!b->has_id)
		return VIRTIO_BLK_S_UNSUPP;
	/* NUL-padded; no terminator when the id is exactly 20 bytes (spec 5.2.6). */
	memcpy(id, b->id, sizeof(id));
	if (iov_write(data, id, sizeof(id))) {
		bad_request(b, head, "GET_ID buffer of %zu bytes, 20 needed", iov_remaining(data));
		return VIRTIO_BLK_S_IOERR;
	}
	*written = sizeof(id);
	return VIRTIO_BLK_S_OK;
}

/* io_lock held. Every segment is checked before any is carried out. */
static uint8_t do_discard(struct blk *b, uint16_t head, struct iov_cursor *rd, bool zeroes)
{
	struct virtio_blk_discard_write_zeroes seg[VIRTIO_BLK_MAX_DISCARD_SEG];
	const char *what = zeroes ? "write-zeroes" : "discard";
	size_t len = iov_remaining(rd);
	size_t n = len / sizeof(seg[0]);
	int ret = 0;

	if (len % sizeof(seg[0]) || n > ARRAY_SIZE(seg)) {
		bad_request(b, head, "%s with %zu bytes of segments (at most %zu segments of 16)",
			    what, len, ARRAY_SIZE(seg));
		return VIRTIO_BLK_S_IOERR;
	}
	if (iov_read(rd, seg, len))
		return VIRTIO_BLK_S_IOERR;
	for (size_t i = 0; i < n; i++) {
		uint32_t flags = le32toh(seg[i].flags);

		/* Unknown flags, and unmap on a discard, are unsupported (spec 5.2.6.2). */
		if (flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP || (!zeroes && flags)) {
			bad_request(b, head, "%s segment flags 0x%x", what, flags);
			return VIRTIO_BLK_S_UNSUPP;
		}
		if (!in_capacity(b, le64toh(seg[i].sector), le32toh(seg[i].num_sectors))) {
			bad_request(b, head, "%s of sectors %" PRIu64 "+%u beyond the capacity",
				    what, (uint64_t)le64toh(seg[i].sector),
				    le32toh(seg[i].num_sectors));
			return VIRTIO_BLK_S_IOERR;
		}
	}
	for (size_t i = 0; i < n && !ret; i++) {
		uint64_t off = le64toh(seg[i].sector) << SECTOR_SHIFT;
		uint64_t bytes = (uint64_t)le32toh(seg[i].num_sectors) << SECTOR_SHIFT;

		ret = disk_io(b, (struct disk_req){.op = zeroes ? DISK_WRITE_ZEROES : DISK_DISCARD,
						   .off = off,
						   .len = bytes,
						   .unmap = le32toh(seg[i].flags) &
							    VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP});
		if (ret)
			io_failed(b, what, le64toh(seg[i].sector), ret);
	}
	return ret ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* io_lock held. rd is past the header; data is the writable part before the status byte. */
static uint8_t execute(struct blk *b, uint16_t head, const struct virtio_blk_outhdr *h,
		       struct iov_cursor *rd, struct iov_cursor *data, uint32_t *written)
{
	uint32_t type = le32toh(h->type);
	uint64_t sector = le64toh(h->sector);
	bool ro = b->disk->ro;
	int ret;

	switch (type) {
	case VIRTIO_BLK_T_IN:
		return do_rw(b, head, sector, data, false, written);
	case VIRTIO_BLK_T_OUT:
		if (ro)
			return VIRTIO_BLK_S_IOERR;
		return do_rw(b, head, sector, rd, true, written);
	case VIRTIO_BLK_T_FLUSH:
		/* The status goes out only now: a flush the guest sees done is on disk. */
		ret = disk_io(b, (struct disk_req){.op = DISK_FLUSH});
		if (ret)
			io_failed(b, "flush", 0, ret);
		return ret ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		return do_get_id(b, head, data, written);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (ro)
			return VIRTIO_BLK_S_IOERR;
		if (!(b->features & BIT(type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD
								     : VIRTIO_BLK_F_WRITE_ZEROES)))
			return VIRTIO_BLK_S_UNSUPP;
		return do_discard(b, head, rd, type == VIRTIO_BLK_T_WRITE_ZEROES);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/*
 * Serves one chain: header in the readable part, the status as the last writable byte.
 * Returns the used length (data written plus the status byte; 0 without a status byte).
 */
static uint32_t handle(struct blk *b, const struct virtq_chain *c)
{
	struct iov_cursor rd, data, status;
	struct virtio_blk_outhdr h;
	uint32_t written = 0;
	uint8_t st;

	iov_cursor_reader(&rd, c);
	iov_cursor_writer(&data, c);
	pthread_mutex_lock(&b->io_lock);
	if (!iov_remaining(&data)) {
		bad_request(b, c->head, "no device-writable byte for the status");
		pthread_mutex_unlock(&b->io_lock);
		return 0;
	}
	if (iov_split(&data, iov_remaining(&data) - 1, &status)) {
		st = VIRTIO_BLK_S_IOERR; /* cannot happen: one byte remains for the status */
	} else if (iov_read(&rd, &h, sizeof(h))) {
		bad_request(b, c->head, "header of %u bytes, 16 needed", c->out_bytes);
		st = VIRTIO_BLK_S_IOERR;
	} else {
		st = execute(b, c->head, &h, &rd, &data, &written);
	}
	pthread_mutex_unlock(&b->io_lock);
	if (st != VIRTIO_BLK_S_OK)
		written = 0;
	if (iov_write(&status, &st, 1))
		return 0;
	return written + 1;
}

int virtio_blk_handle_chain(void *dev, const struct virtq_chain *c, uint32_t *written)
{
	*written = handle(dev, c);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Interrupts the driver for what was pushed since the last call, if it asked to be. */
static void signal_used(struct blk *b)
{
	if (virtq_should_notify(b->q))
		virtio_irq_queue(b->q_irq, 0);
}

/* One call of process: the interrupt moderation's state. */
struct batch {
	struct blk *b;
	uint64_t last;	  /* when the driver was last considered for an interrupt */
	bool served;	  /* a chain was given back since the last between() */
	bool unsignalled; /* ... and the driver was not considered for it */
};

static enum virtq_verdict serve_chain(void *ctx, struct virtq_chain *c, int status,
				      uint32_t *written)
{
	struct batch *bt = ctx;

	bt->served = true;
	/* -EBADMSG: the queue logged why; the chain completes empty. */
	if (status == 0)
		*written = handle(bt->b, c);
	return VIRTQ_PUSH;
}

/*
 * Each completion is published at once, but interrupts are moderated: while a batch runs
 * the driver is considered for one at most every IRQ_INTERVAL_NS, and always when the batch
 * ends. One interrupt per completion made a driver thread sharing this CPU preempt the
 * worker for every request (a deep queue ran at a third of the speed); one per batch made a
 * driver on another CPU wait for the whole batch instead of refilling the ring meanwhile. A
 * completion waits at most the interval plus the request served after it. Stops early when
 * the device is asked to.
 */
static bool between(void *ctx, bool idle)
{
	struct batch *bt = ctx;
	bool stop = __atomic_load_n(&bt->b->stop, __ATOMIC_RELAXED);
	uint64_t t;

	if (bt->served) {
		bt->served = false;
		t = now_ns();
		bt->unsignalled = t - bt->last < IRQ_INTERVAL_NS;
		if (!bt->unsignalled) {
			signal_used(bt->b);
			bt->last = t;
		}
	}
	/* Before sleeping (or stopping): nothing finished may stay unannounced. */
	if ((idle || stop) && bt->unsignalled) {
		signal_used(bt->b);
		bt->last = now_ns();
		bt->unsignalled = false;
	}
	return !stop;
}

static const struct virtq_server blk_server = {.serve = serve_chain, .between = between};

/* Worker. Serves every available request. */
static void process(struct blk *b)
{
	struct batch bt = {.b = b};

	if (virtq_serve(b->q, &b->chain, &blk_server, &bt, NULL) < 0) {
		b->broken = true;
		virtio_irq_needs_reset(b->q_irq);
	}
}

/*
 * Waits on the queue's kick eventfd itself (own_kicks), so a kick wakes this thread
 * directly instead of the event loop, which would only have woken this thread in turn.
 */
static void *worker(void *arg)
{
	struct blk *b = arg;
	struct pollfd p[2] = {
		{.fd = b->stop_fd, .events = POLLIN},
		{.fd = b->kick_fd, .events = POLLIN},
	};
	uint64_t n;

	(void)pthread_setname_np(pthread_self(), "virtio_blk");
	for (;;) {
		if (poll(p, ARRAY_SIZE(p), -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err(b->log, "virtio-blk %s: worker poll: %s", b->disk->path,
				strerror(errno));
			break;
		}
		if (p[0].revents || __atomic_load_n(&b->stop, __ATOMIC_RELAXED))
			return NULL;
		if (p[1].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			log_err(b->log, "virtio-blk %s: worker eventfd failed", b->disk->path);
			break;
		}
		if (eventfd_drain(b->kick_fd, &n) == 0 && b->q && !b->broken)
			process(b);
	}
	virtio_irq_needs_reset(b->q_irq);
	return NULL;
}

static uint64_t blk_features(void *dev)
{
	return ((struct blk *)dev)->features;
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

static void drain(int fd)
{
	uint64_t n;

	(void)eventfd_drain(fd, &n);
}

static int blk_activate(void *dev, const struct virtio_activate *a)
{
	struct blk *b = dev;
	sigset_t all, old;
	int ret;

	pthread_mutex_lock(&b->state_lock);
	if (b->running) {
		ret = -EBUSY;
		goto out;
	}
	b->q = a->nr_queues ? a->queues[0] : NULL;
	b->kick_fd = a->nr_queues ? a->kick_fds[0] : -1;
	b->q_irq = a->irq;
	b->broken = false;
	__atomic_store_n(&b->stop, false, __ATOMIC_RELAXED);
	drain(b->stop_fd);
	/* Signals belong to the loop and vCPU threads (signalfd, kicks), never to the worker. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&b->worker, NULL, worker, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		log_err(b->log, "virtio-blk %s: cannot start the worker: %s", b->disk->path,
			strerror(-ret));
		goto out;
	}
	b->running = true;
	b->irq = a->irq;
out:
	pthread_mutex_unlock(&b->state_lock);
	return ret;
}

/* Stops and joins the worker; the queue and the interrupt are not used after this returns. */
static void blk_reset(void *dev)
{
	struct blk *b = dev;
	bool was;

	pthread_mutex_lock(&b->state_lock);
	was = b->running;
	b->running = false;
	b->irq = NULL;
	pthread_mutex_unlock(&b->state_lock);
	if (!was)
		return;
	__atomic_store_n(&b->stop, true, __ATOMIC_RELAXED);
	(void)eventfd_signal(b->stop_fd);
	pthread_join(b->worker, NULL);
	drain(b->stop_fd);
	b->kick_fd = -1;
	b->q = NULL;
	b->q_irq = NULL;
}

static int blk_fds(void *dev, struct fd_list *out)
{
	struct blk *b = dev;
	int ret = disk_fds(b->disk, out);

	/* The kick eventfd is the transport's, which lists it. */
	if (!ret)
		ret = fd_list_add(out, b->stop_fd);
	return ret;
}

/* Loop thread. Waits for the request in flight, if any (io_lock). */
static void resize(struct blk *b, uint64_t size, dev_reply_fn done, void *done_ctx)
{
	uint64_t old;
	int ret;

	pthread_mutex_lock(&b->io_lock);
	old = b->disk->size;
	ret = disk_resize(b->disk, size);
	if (!ret)
		__atomic_store_n(&b->capacity, size >> SECTOR_SHIFT, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->io_lock);
	if (ret) {
		dev_reply_error(done, done_ctx, ret, "cannot resize %s to %" PRIu64 " bytes: %s",
				b->disk->path, size, strerror(-ret));
		return;
	}
	log_info(b->log, "virtio-blk %s: resized from %" PRIu64 " to %" PRIu64 " bytes",
		 b->disk->path, old, size);
	pthread_mutex_lock(&b->state_lock);
	if (b->irq)
		virtio_irq_config(b->irq);
	pthread_mutex_unlock(&b->state_lock);
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
	close_fd(&b->stop_fd);
	disk_close(b->disk);
	virtq_chain_free(&b->chain);
	free(b->iov);
	pthread_cond_destroy(&b->done_cond);
	pthread_mutex_destroy(&b->done_lock);
	pthread_mutex_destroy(&b->state_lock);
	pthread_mutex_destroy(&b->io_lock);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.policy = "block_device",
	.device_type = VIRTIO_ID_BLOCK,
	.nr_queues = 1,
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

static uint64_t features_for(const struct disk_config *cfg)
{
	uint64_t f = BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_SIZE_MAX) |
		     BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_FLUSH);

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

int virtio_blk_create(const struct disk_config *cfg, const struct logger *lg,
		      const struct virtio_dev_ops **ops, void **dev)
{
	struct blk *b;
	int ret;

	if (cfg->block_size < SECTOR_SIZE || cfg->block_size > 65536 ||
	    (cfg->block_size & (cfg->block_size - 1))) {
		log_err(lg, "disk image %s: block size %u is not a power of two in 512..65536",
			cfg->path ? cfg->path : "(none)", cfg->block_size);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->log = lg;
	b->kick_fd = b->stop_fd = -1;
	b->features = features_for(cfg);
	b->blk_size = cfg->block_size;
	b->has_id = cfg->has_id;
	/* NUL-padded, unterminated at 20 bytes: what GET_ID returns. */
	memcpy(b->id, cfg->id, strnlen(cfg->id, sizeof(b->id)));
	ret = -pthread_mutex_init(&b->io_lock, NULL);
	if (ret)
		goto err_free;
	ret = -pthread_mutex_init(&b->state_lock, NULL);
	if (ret)
		goto err_io_lock;
	ret = -pthread_mutex_init(&b->done_lock, NULL);
	if (ret)
		goto err_state_lock;
	ret = -pthread_cond_init(&b->done_cond, NULL);
	if (ret)
		goto err_done_lock;
	b->iov = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(*b->iov));
	ret = b->iov ? virtq_chain_alloc(&b->chain, VIRTIO_BLK_QUEUE_SIZE) : -ENOMEM;
	if (ret)
		goto err_done_cond;
	ret = new_eventfd(&b->stop_fd);
	if (ret)
		goto err_fds;
	/* The raw file is the one back end so far; blk uses it only through struct disk_ops. */
	ret = disk_raw_open(cfg, lg, &b->disk);
	if (ret)
		goto err_fds;
	b->capacity = b->disk->size >> SECTOR_SHIFT;
	if (b->disk->size % SECTOR_SIZE)
		log_warn(lg,
			 "disk image %s: its size %" PRIu64 " is not a multiple of 512; the last "
			 "%" PRIu64 " bytes are not visible to the guest",
			 b->disk->path, b->disk->size, b->disk->size % SECTOR_SIZE);
	*ops = &blk_ops;
	*dev = b;
	return 0;
err_fds:
	close_fd(&b->stop_fd);
	virtq_chain_free(&b->chain);
err_done_cond:
	free(b->iov);
	pthread_cond_destroy(&b->done_cond);
err_done_lock:
	pthread_mutex_destroy(&b->done_lock);
err_state_lock:
	pthread_mutex_destroy(&b->state_lock);
err_io_lock:
	pthread_mutex_destroy(&b->io_lock);
err_free:
	free(b);
	return ret;
}
