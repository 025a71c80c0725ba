/*
 * virtio-vsock on the kernel's vhost-vsock, as crosvm does it: the device only sets the
 * back end up. At activation it hands the kernel guest memory, the rx and tx rings, their
 * kick eventfds (the guest's notifications go straight to the kernel) and an eventfd per
 * queue to signal: the queue's own MSI-X irqfd when it has one, so that interrupts bypass
 * us too, else an eventfd this device relays to the transport (INTx needs its ISR set). The
 * event queue stays here, unused: its only event is a transport reset after migration.
 *
 * The CID is claimed when the device is created, in the main process, so that a CID in use
 * fails the start with the kernel's own error; everything that needs the owner (all the
 * rest) happens in the process the device runs in, sandboxed or not.
 */
#include "virtio/vsock.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <event2/event.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include "core/log.h"
#include "virtio/queue.h"
#include "virtio/vhost.h"
#include "virtio/virtio.h"

#define NR_DATA_QUEUES 2 /* rx and tx go to the kernel */
/* What the transport always offers; the kernel must implement each. */
#define NEEDED                                                                                     \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC))

struct vvsock;

/* The relay of one queue's call eventfd. */
struct vv_call {
	struct vvsock *v;
	unsigned queue;
	int fd;
	struct event *ev;
};

struct vvsock {
	pthread_mutex_t lock;
	const struct logger *log;
	uint64_t cid;
	int vhost_fd;
	uint64_t vhost_features;
	struct vv_call call[NR_DATA_QUEUES];
	/* Under the lock. */
	struct virtio_irq *irq;
	bool owner, running;
};

static uint64_t vv_features(void *dev)
{
	struct vvsock *v = dev;

	/* Of the device's own bits, the kernel implements SEQPACKET (Linux 5.16 on). */
	return v->vhost_features & BIT(VIRTIO_VSOCK_F_SEQPACKET);
}

static int vv_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct vvsock *v = dev;
	uint8_t cfg[VSOCK_CONFIG_SIZE];

	if (off > sizeof(cfg) || len > sizeof(cfg) - off)
		return -EINVAL;
	put_le(cfg, v->cid, 8);
	memcpy(data, cfg + off, len);
	return 0;
}

/* Lock held: the kernel stops and forgets this driver's rings and memory. */
static void vv_stop_backend(struct vvsock *v)
{
	int ret;

	if (v->running) {
		ret = vhost_vsock_set_running(v->vhost_fd, false);
		if (ret < 0)
			log_warn(v->log, "vhost-vsock: cannot stop: %s", strerror(-ret));
	}
	v->running = false;
	if (v->owner) {
		ret = vhost_reset_owner(v->vhost_fd);
		if (ret < 0)
			log_warn(v->log, "vhost-vsock: cannot reset: %s", strerror(-ret));
	}
	v->owner = false;
	v->irq = NULL;
}

static int vv_activate(void *dev, const struct virtio_activate *a)
{
	struct vvsock *v = dev;
	const char *step = "take ownership";
	int ret;

	if (a->nr_queues < VSOCK_NR_QUEUES || !a->queues[VSOCK_Q_RX] || !a->queues[VSOCK_Q_TX])
		return -EINVAL;
	pthread_mutex_lock(&v->lock);
	ret = vhost_set_owner(v->vhost_fd);
	if (ret < 0)
		goto err;
	v->owner = true;
	step = "set the features";
	ret = vhost_set_features(v->vhost_fd, a->features & v->vhost_features);
	if (ret == 0) {
		step = "set the memory table";
		ret = vhost_set_mem_table(v->vhost_fd, a->mem);
	}
	for (unsigned i = 0; ret == 0 && i < NR_DATA_QUEUES; i++) {
		const struct virtq *q = a->queues[i];
		int direct = virtio_irq_queue_fd(a->irq, i);

		step = "set up a queue";
		ret = vhost_set_queue(v->vhost_fd, i,
				      &(struct vhost_queue){
					      .size = q->size,
					      .desc_hva = (uint64_t)(uintptr_t)q->desc,
					      .avail_hva = (uint64_t)(uintptr_t)q->avail,
					      .used_hva = (uint64_t)(uintptr_t)q->used,
					      .last_avail_idx = q->last_avail_idx,
					      .kick_fd = a->kick_fds[i],
					      .call_fd = direct >= 0 ? direct : v->call[i].fd,
				      });
	}
	if (ret < 0)
		goto err;
	v->irq = a->irq;
	step = "start";
	ret = vhost_vsock_set_running(v->vhost_fd, true);
	if (ret < 0)
		goto err;
	v->running = true;
	pthread_mutex_unlock(&v->lock);
	return 0;
err:
	log_err(v->log, "vhost-vsock: cannot %s: %s", step, strerror(-ret));
	vv_stop_backend(v);
	pthread_mutex_unlock(&v->lock);
	return ret;
}

static void vv_reset(void *dev)
{
	struct vvsock *v = dev;

	pthread_mutex_lock(&v->lock);
	vv_stop_backend(v);
	pthread_mutex_unlock(&v->lock);
}

/* The kernel signalled a queue that has no irqfd of its own: interrupt through the transport. */
static void on_call(evutil_socket_t fd, short what, void *arg)
{
	struct vv_call *c = arg;
	struct vvsock *v = c->v;
	uint64_t n;

	if (eventfd_drain((int)fd, &n) < 0 || !n)
		return;
	pthread_mutex_lock(&v->lock);
	if (v->irq)
		virtio_irq_queue(v->irq, c->queue);
	pthread_mutex_unlock(&v->lock);
}

static void vv_stop(void *dev)
{
	struct vvsock *v = dev;

	for (unsigned i = 0; i < NR_DATA_QUEUES; i++) {
		if (v->call[i].ev)
			event_free(v->call[i].ev);
		v->call[i].ev = NULL;
	}
}

static int vv_start(void *dev, struct event_base *eb)
{
	struct vvsock *v = dev;

	for (unsigned i = 0; i < NR_DATA_QUEUES; i++) {
		struct vv_call *c = &v->call[i];

		c->ev = event_new(eb, c->fd, EV_READ | EV_PERSIST, on_call, c);
		if (!c->ev || event_add(c->ev, NULL) < 0) {
			vv_stop(v);
			return -ENOMEM;
		}
	}
	return 0;
}

static int vv_fds(void *dev, struct fd_list *out)
{
	struct vvsock *v = dev;
	int ret = fd_list_add(out, v->vhost_fd);

	for (unsigned i = 0; ret == 0 && i < NR_DATA_QUEUES; i++)
		ret = fd_list_add(out, v->call[i].fd);
	return ret;
}

static void vv_free(struct vvsock *v)
{
	for (unsigned i = 0; i < NR_DATA_QUEUES; i++)
		close_fd(&v->call[i].fd);
	/* Closing the device frees the CID for the next VM. */
	close_fd(&v->vhost_fd);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static void vv_destroy(void *dev)
{
	struct vvsock *v = dev;

	vv_stop(v);
	pthread_mutex_lock(&v->lock);
	vv_stop_backend(v);
	pthread_mutex_unlock(&v->lock);
	vv_free(v);
}

static const struct virtio_dev_ops vv_ops = {
	.name = "vhost-vsock",
	.policy = "vhost_vsock_device",
	.device_type = VIRTIO_ID_VSOCK,
	.nr_queues = VSOCK_NR_QUEUES,
	.queue_max_size = VSOCK_QUEUE_SIZE,
	.features = vv_features,
	.config_size = VSOCK_CONFIG_SIZE,
	.config_read = vv_config_read,
	.activate = vv_activate,
	/* The kernel reads the rx and tx kicks; the event queue's are never needed. */
	.own_kicks = true,
	.reset = vv_reset,
	.fds = vv_fds,
	.start = vv_start,
	.stop = vv_stop,
	.destroy = vv_destroy,
};

/* "EADDRINUSE: Address already in use": the kernel's error by name and by text. */
static const char *errname(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "?";
}

int virtio_vhost_vsock_create(uint64_t cid, const char *device, const struct logger *lg,
			      const struct virtio_dev_ops **ops, void **dev)
{
	struct vvsock *v;
	int ret;

	if (vsock_cid_invalid(cid))
		return -EINVAL;
	if (!device)
		device = VSOCK_VHOST_DEFAULT;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->log = lg;
	v->cid = cid;
	v->vhost_fd = -1;
	for (unsigned i = 0; i < NR_DATA_QUEUES; i++)
		v->call[i] = (struct vv_call){.v = v, .queue = i, .fd = -1};
	ret = -pthread_mutex_init(&v->lock, NULL);
	if (ret < 0) {
		free(v);
		return ret;
	}
	v->vhost_fd = open(device, O_RDWR | O_CLOEXEC);
	if (v->vhost_fd < 0) {
		ret = -errno;
		log_err(lg, "vhost-vsock: cannot open %s: %s (%s)%s", device, strerror(-ret),
			errname(-ret),
			ret == -ENOENT ? "; load the vhost_vsock module, or use --vsock "
					 "cid=N,uds-path=PATH (no module needed)"
				       : "");
		goto err;
	}
	ret = vhost_get_features(v->vhost_fd, &v->vhost_features);
	if (ret < 0) {
		log_err(lg, "vhost-vsock: %s is not a vhost device: %s", device, strerror(-ret));
		goto err;
	}
	if ((v->vhost_features & NEEDED) != NEEDED) {
		log_err(lg, "vhost-vsock: %s lacks virtio 1.0, EVENT_IDX or indirect descriptors",
			device);
		ret = -EOPNOTSUPP;
		goto err;
	}
	ret = vhost_vsock_set_guest_cid(v->vhost_fd, cid);
	if (ret < 0) {
		log_err(lg, "vhost-vsock: the kernel refused guest CID %llu: %s (%s)%s",
			(unsigned long long)cid, strerror(-ret), errname(-ret),
			ret == -EADDRINUSE ? "; another VM (or this host's own vsock) has it" : "");
		goto err;
	}
	for (unsigned i = 0; i < NR_DATA_QUEUES; i++) {
		v->call[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->call[i].fd < 0) {
			ret = -errno;
			goto err;
		}
	}
	*ops = &vv_ops;
	*dev = v;
	return 0;
err:
	vv_free(v);
	return ret;
}
