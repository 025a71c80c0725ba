/*
 * virtio-net with the kernel's vhost-net moving the frames: one vhost-net device per queue
 * pair (vring 0 receives, vring 1 transmits), fed the guest's memory table, the rings, the
 * transport's kick eventfds and, for interrupts, the MSI-X vector's irqfd itself when the
 * driver set one (the kernel then interrupts the guest without us); otherwise a relay eventfd
 * this process turns into virtio_irq_queue (INTx needs the ISR set). Each pair's vrings use
 * that pair's TAP queue. The control queue stays with us (net.c), its kick watched here since
 * the transport leaves all kicks to the device (own_kicks).
 */
#include "virtio/net_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <event2/event.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "core/log.h"
#include "virtio/vhost.h"

/* Ring features vhost-net must implement, because the transport always offers them. */
#define VHOST_REQUIRED                                                                             \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC))

struct relay {
	struct net *n;
	unsigned queue;
	int fd;
	struct event *ev;
};

struct net_vhost {
	int fds[NET_MAX_PAIRS];
	uint64_t features;
	bool owned;
	bool running[NET_MAX_PAIRS];
	struct relay relay[2 * NET_MAX_PAIRS];
	struct event *ctrl_ev;
};

uint64_t net_vhost_features(const struct net *n)
{
	return n->vhost ? n->vhost->features : 0;
}

int net_vhost_open(struct net *n, const char *path)
{
	struct net_vhost *v;
	int ret;

	if (!path)
		path = NET_VHOST_DEFAULT;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	n->vhost = v;
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++)
		v->fds[i] = -1;
	for (unsigned i = 0; i < 2 * NET_MAX_PAIRS; i++)
		v->relay[i] = (struct relay){.n = n, .queue = i, .fd = -1};
	for (unsigned i = 0; i < n->max_pairs; i++) {
		ret = vhost_open(path, &v->fds[i]);
		if (ret < 0) {
			log_err(n->log, "%s: vhost-net: cannot open %s: %s%s", n->name, path,
				strerror(-ret),
				ret == -ENOENT
					? " (load the vhost_net module, or leave out vhost-net)"
				: ret == -EACCES || ret == -EPERM ? " (this user may not use it)"
								  : "");
			return ret;
		}
	}
	ret = vhost_get_features(v->fds[0], &v->features);
	if (ret < 0) {
		log_err(n->log, "%s: vhost-net: VHOST_GET_FEATURES: %s", n->name, strerror(-ret));
		return ret;
	}
	if ((v->features & VHOST_REQUIRED) != VHOST_REQUIRED) {
		log_err(n->log,
			"%s: vhost-net lacks ring features 0x%llx this VMM's transport needs",
			n->name, (unsigned long long)(VHOST_REQUIRED & ~v->features));
		return -EOPNOTSUPP;
	}
	if (!n->vnet_hdr && !(v->features & BIT(VHOST_NET_F_VIRTIO_NET_HDR))) {
		log_err(n->log, "%s: TAP %s has no vnet header and vhost-net cannot add one",
			n->name, n->tap.ifname);
		return -EOPNOTSUPP;
	}
	for (unsigned i = 0; i < 2 * n->max_pairs; i++) {
		v->relay[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->relay[i].fd < 0)
			return -errno;
	}
	return 0;
}

int net_vhost_fds(const struct net *n, struct fd_list *out)
{
	const struct net_vhost *v = n->vhost;
	int ret = 0;

	for (unsigned i = 0; i < n->max_pairs && !ret; i++)
		ret = fd_list_add(out, v->fds[i]);
	for (unsigned i = 0; i < 2 * n->max_pairs && !ret; i++)
		ret = fd_list_add(out, v->relay[i].fd);
	return ret;
}

void net_vhost_close(struct net *n)
{
	struct net_vhost *v = n->vhost;

	for (unsigned i = 0; i < NET_MAX_PAIRS; i++)
		close_fd(&v->fds[i]);
	for (unsigned i = 0; i < 2 * NET_MAX_PAIRS; i++)
		close_fd(&v->relay[i].fd);
	free(v);
	n->vhost = NULL;
}

static void on_relay(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	uint64_t cnt;

	if (eventfd_drain(fd, &cnt) < 0 || !cnt)
		return;
	pthread_mutex_lock(&r->n->lock);
	if (r->n->active)
		virtio_irq_queue(r->n->irq, r->queue);
	pthread_mutex_unlock(&r->n->lock);
}

static void on_ctrl_kick(evutil_socket_t fd, short what, void *arg)
{
	struct net *n = arg;
	uint64_t cnt;

	if (eventfd_drain(fd, &cnt) < 0 || !cnt)
		return;
	pthread_mutex_lock(&n->lock);
	net_ctrl_run(n);
	pthread_mutex_unlock(&n->lock);
}

static int add_event(struct net *n, int fd, event_callback_fn cb, void *arg, struct event **out)
{
	struct event *ev = event_new(n->eb, fd, EV_READ | EV_PERSIST, cb, arg);

	if (!ev)
		return -ENOMEM;
	if (event_add(ev, NULL) < 0) {
		event_free(ev);
		return -EIO;
	}
	*out = ev;
	return 0;
}

/* Lock held. The vrings of pair i. */
static int start_pair(struct net *n, unsigned i, const struct virtio_activate *a, uint64_t ack)
{
	struct net_vhost *v = n->vhost;
	int fd = v->fds[i], ret;

	ret = vhost_set_features(fd, ack);
	if (ret == 0)
		ret = vhost_set_mem_table(fd, a->mem);
	for (unsigned j = 0; j < 2 && ret == 0; j++) {
		unsigned q = 2 * i + j;
		int call = virtio_irq_queue_fd(a->irq, q);

		if (call < 0) {
			call = v->relay[q].fd;
			ret = add_event(n, call, on_relay, &v->relay[q], &v->relay[q].ev);
		}
		if (ret == 0)
			ret = vhost_set_vring(fd, j, a->queues[q], a->kick_fds[q], call);
	}
	if (ret == 0)
		v->running[i] = true;
	for (unsigned j = 0; j < 2 && ret == 0; j++)
		ret = vhost_net_set_backend(fd, j, n->tap.fds[i]);
	return ret;
}

int net_vhost_activate(struct net *n, const struct virtio_activate *a)
{
	struct net_vhost *v = n->vhost;
	uint64_t ack = n->acked & v->features;
	unsigned ctrl = 2 * n->max_pairs;
	int ret = 0;

	if (!n->eb)
		return -EINVAL;
	/* The owner's memory is what the table's addresses mean: the process the device is in. */
	for (unsigned i = 0; i < n->max_pairs && !v->owned && !ret; i++)
		ret = vhost_set_owner(v->fds[i]);
	if (ret < 0) {
		log_err(n->log, "%s: vhost-net: VHOST_SET_OWNER: %s", n->name, strerror(-ret));
		return ret;
	}
	v->owned = true;
	if (!n->vnet_hdr)
		ack |= BIT(VHOST_NET_F_VIRTIO_NET_HDR);
	for (unsigned i = 0; i < n->max_pairs && !ret; i++) {
		/* A pair the driver left disabled stays with nobody. */
		if (!a->queues[2 * i] || !a->queues[2 * i + 1])
			continue;
		ret = start_pair(n, i, a, ack);
		if (ret < 0)
			log_err(n->log, "%s: vhost-net: cannot start queue pair %u: %s", n->name, i,
				strerror(-ret));
	}
	if (ret == 0 && n->has_ctrl && a->queues[ctrl])
		ret = add_event(n, a->kick_fds[ctrl], on_ctrl_kick, n, &v->ctrl_ev);
	return ret;
}

void net_vhost_reset(struct net *n, struct event **evs, unsigned *nr)
{
	struct net_vhost *v = n->vhost;

	for (unsigned i = 0; i < n->max_pairs; i++) {
		uint16_t base;

		if (!v->running[i])
			continue;
		for (unsigned j = 0; j < 2; j++) {
			int r1 = vhost_net_set_backend(v->fds[i], j, -1);
			int r2 = vhost_stop_vring(v->fds[i], j, &base);

			if (r1 < 0 || r2 < 0)
				log_warn(n->log,
					 "%s: vhost-net: cannot stop vring %u of pair %u: %s",
					 n->name, j, i, strerror(r1 < 0 ? -r1 : -r2));
		}
		v->running[i] = false;
	}
	for (unsigned i = 0; i < 2 * NET_MAX_PAIRS; i++) {
		if (v->relay[i].ev)
			evs[(*nr)++] = v->relay[i].ev;
		v->relay[i].ev = NULL;
	}
	if (v->ctrl_ev)
		evs[(*nr)++] = v->ctrl_ev;
	v->ctrl_ev = NULL;
}
