#include "virtio/rng.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ids.h>

#include "core/log.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"

struct rng {
	pthread_mutex_t lock;
	const struct logger *log;
	struct virtq *q; /* NULL while the driver has not activated the device */
	struct virtio_irq *irq;
	struct virtq_chain chain;
	uint64_t nr_malformed;
	/* The host's entropy, opened before any jail: a device process then needs only read. */
	int entropy_fd;
	bool read_failed;
};

/* Fills the chain's writable buffers (up to the request cap); returns the bytes written. */
static uint32_t serve(struct rng *r, const struct virtq_chain *c)
{
	uint32_t done = 0;
	int ret;

	for (unsigned i = c->nr_out; i < c->nr_out + c->nr_in && done < VIRTIO_RNG_MAX_REQUEST;
	     i++) {
		size_t n = MIN(c->iov[i].iov_len, VIRTIO_RNG_MAX_REQUEST - done);

		ret = read_full(r->entropy_fd, c->iov[i].iov_base, n);
		if (ret < 0) {
			if (!r->read_failed)
				log_err(r->log, "virtio-rng: cannot read %s: %s", VIRTIO_RNG_SOURCE,
					strerror(-ret));
			r->read_failed = true;
			break;
		}
		done += (uint32_t)n;
	}
	return done;
}

static void report_malformed(struct rng *r, uint16_t head)
{
	if (!log_ratelimit(&r->nr_malformed))
		return;
	log_warn(r->log,
		 "virtio-rng: request %u has no device-writable bytes or a readable buffer "
		 "[%llu so far]",
		 head, (unsigned long long)r->nr_malformed);
}

/* Lock held. One request: fill its writable buffers. */
static enum virtq_verdict serve_chain(void *ctx, struct virtq_chain *c, int status,
				      uint32_t *written)
{
	struct rng *r = ctx;

	/* -EBADMSG: the queue already logged why; the request completes empty. */
	if (status == 0 && !c->nr_out && c->in_bytes)
		*written = serve(r, c);
	else if (status == 0)
		report_malformed(r, c->head);
	return VIRTQ_PUSH;
}

static const struct virtq_server rng_server = {.serve = serve_chain};

static int rng_activate(void *dev, const struct virtio_activate *a)
{
	struct rng *r = dev;

	pthread_mutex_lock(&r->lock);
	r->q = a->nr_queues ? a->queues[0] : NULL;
	r->irq = a->irq;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void rng_notify(void *dev, unsigned queue)
{
	struct rng *r = dev;
	bool irq = false;

	pthread_mutex_lock(&r->lock);
	if (r->q && queue == 0 && virtq_serve(r->q, &r->chain, &rng_server, r, &irq) < 0) {
		r->q = NULL;
		virtio_irq_needs_reset(r->irq);
	}
	/* Raised under the lock so that a reset cannot slip in between and see it late. */
	if (irq)
		virtio_irq_queue(r->irq, 0);
	pthread_mutex_unlock(&r->lock);
}

static void rng_reset(void *dev)
{
	struct rng *r = dev;

	pthread_mutex_lock(&r->lock);
	r->q = NULL;
	r->irq = NULL;
	pthread_mutex_unlock(&r->lock);
}

static int rng_fds(void *dev, struct fd_list *out)
{
	return fd_list_add(out, ((struct rng *)dev)->entropy_fd);
}

static void rng_destroy(void *dev)
{
	struct rng *r = dev;

	close_fd(&r->entropy_fd);
	virtq_chain_free(&r->chain);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng",
	.policy = "rng_device",
	.device_type = VIRTIO_ID_RNG,
	.nr_queues = 1,
	.queue_max_size = VIRTIO_RNG_QUEUE_SIZE,
	.activate = rng_activate,
	.notify = rng_notify,
	.reset = rng_reset,
	.fds = rng_fds,
	.destroy = rng_destroy,
};

int virtio_rng_create(const struct logger *lg, const struct virtio_dev_ops **ops, void **dev)
{
	struct rng *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	ret = -pthread_mutex_init(&r->lock, NULL);
	if (ret < 0)
		goto err_free;
	/* A chain never has more buffers than the queue has descriptors. */
	ret = virtq_chain_alloc(&r->chain, VIRTIO_RNG_QUEUE_SIZE);
	if (ret < 0)
		goto err_lock;
	r->entropy_fd = open(VIRTIO_RNG_SOURCE, O_RDONLY | O_CLOEXEC);
	if (r->entropy_fd < 0) {
		ret = -errno;
		log_err(lg, "virtio-rng: cannot open %s: %s", VIRTIO_RNG_SOURCE, strerror(-ret));
		goto err_chain;
	}
	r->log = lg;
	*ops = &rng_ops;
	*dev = r;
	return 0;
err_chain:
	virtq_chain_free(&r->chain);
err_lock:
	pthread_mutex_destroy(&r->lock);
err_free:
	free(r);
	return ret;
}
