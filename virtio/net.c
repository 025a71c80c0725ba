/*
 * virtio-net, the device: its back end, features, configuration space, control queue and
 * lifecycle. The frames move in net_io.c (this process) or in the kernel (net_vhost.c).
 */
#include "virtio/net_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "core/iov.h"
#include "core/log.h"

/* Configuration space: mac[6], status, max_virtqueue_pairs, mtu (virtio 1.2, 5.1.4). */
#define CFG_MAC	    0
#define CFG_STATUS  6
#define CFG_MAX_VQP 8
#define CFG_MTU	    10
#define CFG_SIZE    12
#define MAX_EVENTS  (3 * NET_MAX_PAIRS + 2 * NET_MAX_QUEUES + 1)

/* The receive offloads a driver may take, as feature bits and as the TAP's TUN_F_* bits. */
static const struct {
	unsigned feature;
	unsigned tun;
} rx_offloads[] = {
	{VIRTIO_NET_F_GUEST_CSUM, TUN_F_CSUM}, {VIRTIO_NET_F_GUEST_TSO4, TUN_F_TSO4},
	{VIRTIO_NET_F_GUEST_TSO6, TUN_F_TSO6}, {VIRTIO_NET_F_GUEST_ECN, TUN_F_TSO_ECN},
	{VIRTIO_NET_F_GUEST_UFO, TUN_F_UFO},
};

unsigned net_tun_offloads(uint64_t features)
{
	unsigned flags = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(rx_offloads); i++)
		if (features & BIT(rx_offloads[i].feature))
			flags |= rx_offloads[i].tun;
	/* The TAP takes segmentation only with checksums (TUNSETOFFLOAD). */
	return flags & TUN_F_CSUM ? flags : 0;
}

static uint64_t rx_offload_features(void)
{
	uint64_t f = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(rx_offloads); i++)
		f |= BIT(rx_offloads[i].feature);
	return f;
}

int net_set_pairs(struct net *n, unsigned pairs)
{
	int ret = 0;

	if (n->slirp)
		return pairs == 1 ? 0 : -EINVAL;
	/* Attach first, so the interface never has no queue at all. */
	for (unsigned i = 0; i < pairs && !ret; i++)
		ret = tap_enable_queue(&n->tap, i, true);
	for (unsigned i = pairs; i < n->max_pairs && !ret; i++)
		ret = tap_enable_queue(&n->tap, i, false);
	if (ret < 0) {
		log_warn(n->log, "%s: cannot use %u queue pairs of TAP %s: %s", n->name, pairs,
			 n->tap.ifname, strerror(-ret));
		return ret;
	}
	n->curr_pairs = pairs;
	return 0;
}

/* Lock held. The back end's receive offloads (TUNSETOFFLOAD) from feature bits. */
static int set_offloads(struct net *n, uint64_t features)
{
	unsigned flags = net_tun_offloads(features) & n->tap_offloads;
	int ret;

	/* A back end that takes no offloads (slirp, a TAP without headers) has none to set. */
	if (!n->tap_offloads)
		return 0;
	ret = tap_set_offload(&n->tap, flags);
	if (ret < 0)
		log_warn(n->log, "%s: cannot set TAP %s offloads 0x%x: %s", n->name, n->tap.ifname,
			 flags, strerror(-ret));
	return ret;
}

/* ---- the control queue ---- */

static uint8_t ctrl_command(struct net *n, uint8_t cls, uint8_t cmd, struct iov_cursor *rd)
{
	uint8_t buf[8];

	if (cls == VIRTIO_NET_CTRL_MQ && cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) {
		uint64_t pairs;

		if (!(n->acked & BIT(VIRTIO_NET_F_MQ)) || iov_read(rd, buf, 2) < 0)
			return VIRTIO_NET_ERR;
		pairs = get_le(buf, 2);
		if (pairs < 1 || pairs > n->max_pairs)
			return VIRTIO_NET_ERR;
		return net_set_pairs(n, (unsigned)pairs) ? VIRTIO_NET_ERR : VIRTIO_NET_OK;
	}
	if (cls == VIRTIO_NET_CTRL_GUEST_OFFLOADS && cmd == VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET) {
		uint64_t want;

		if (!(n->acked & BIT(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS)) || iov_read(rd, buf, 8) < 0)
			return VIRTIO_NET_ERR;
		want = get_le(buf, 8);
		/* Only receive offloads it negotiated (virtio 1.2, 5.1.6.5.6.2). */
		if (want & ~(n->acked & rx_offload_features()))
			return VIRTIO_NET_ERR;
		return set_offloads(n, want) ? VIRTIO_NET_ERR : VIRTIO_NET_OK;
	}
	if (log_ratelimit(&n->log_ctrl))
		log_info(n->log, "%s: control command class %u command %u is not supported",
			 n->name, cls, cmd);
	return VIRTIO_NET_ERR;
}

/* Lock held. One control request: header, data, then the one-byte ack. */
static enum virtq_verdict ctrl_serve(void *ctx, struct virtq_chain *c, int status,
				     uint32_t *written)
{
	struct net *n = ctx;
	struct iov_cursor rd, wr;
	uint8_t hdr[2], ack;

	if (status == 0 && (c->out_bytes < 2 || !c->in_bytes))
		status = -EBADMSG;
	if (status) {
		n->stats.ctrl_malformed++;
		if (log_ratelimit(&n->log_ctrl))
			log_warn(n->log, "%s: malformed control request %u [%llu so far]", n->name,
				 c->head, (unsigned long long)n->stats.ctrl_malformed);
		return VIRTQ_PUSH;
	}
	iov_cursor_reader(&rd, c);
	iov_cursor_writer(&wr, c);
	ack = iov_read(&rd, hdr, 2) < 0 ? VIRTIO_NET_ERR : ctrl_command(n, hdr[0], hdr[1], &rd);
	if (iov_write(&wr, &ack, 1) == 0)
		*written = 1;
	return VIRTQ_PUSH;
}

static const struct virtq_server ctrl_server = {.serve = ctrl_serve};

void net_ctrl_run(struct net *n)
{
	bool irq = false;

	if (!n->active || !n->ctrlq)
		return;
	if (virtq_serve(n->ctrlq, &n->ctrl_chain, &ctrl_server, n, &irq) < 0) {
		virtio_irq_needs_reset(n->irq);
		n->active = false;
		return;
	}
	if (irq)
		virtio_irq_queue(n->irq, 2 * n->max_pairs);
}

/* ---- virtio_dev_ops ---- */

static uint64_t net_features(void *dev)
{
	return ((struct net *)dev)->features;
}

static int net_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct net *n = dev;
	uint8_t cfg[CFG_SIZE] = {0};

	if (n->has_mac)
		memcpy(cfg + CFG_MAC, n->mac, 6);
	/* The link is up whenever the device exists: a TAP's carrier is the host's business. */
	put_le(cfg + CFG_STATUS, VIRTIO_NET_S_LINK_UP, 2);
	put_le(cfg + CFG_MAX_VQP, n->max_pairs, 2);
	put_le(cfg + CFG_MTU, n->mtu, 2);
	if (off >= CFG_SIZE || len > CFG_SIZE - off)
		return -EINVAL;
	memcpy(data, cfg + off, len);
	return 0;
}

/* Lock held. Drops the queues; the events to free (unlocked) go to evs. */
static void deactivate(struct net *n, struct event **evs, unsigned *nr)
{
	n->active = false;
	if (n->vhost)
		net_vhost_reset(n, evs, nr);
	else
		net_io_reset(n, evs, nr);
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++)
		n->pairs[i].rxq = n->pairs[i].txq = NULL;
	n->ctrlq = NULL;
	n->irq = NULL;
	(void)set_offloads(n, 0);
}

static void free_events(struct event **evs, unsigned nr)
{
	for (unsigned i = 0; i < nr; i++)
		event_free(evs[i]);
}

static int net_activate(void *dev, const struct virtio_activate *a)
{
	struct net *n = dev;
	struct event *evs[MAX_EVENTS];
	unsigned nr = 0;
	int ret;

	pthread_mutex_lock(&n->lock);
	n->acked = a->features;
	n->irq = a->irq;
	n->eb = a->eb;
	for (unsigned i = 0; i < n->max_pairs; i++) {
		n->pairs[i].rxq = a->queues[2 * i];
		n->pairs[i].txq = a->queues[2 * i + 1];
	}
	n->ctrlq = n->has_ctrl ? a->queues[2 * n->max_pairs] : NULL;
	/* Until the driver asks for more, only the first pair carries frames (5.1.6.5.5). */
	ret = net_set_pairs(n, 1);
	if (ret == 0)
		ret = set_offloads(n, n->acked);
	if (ret == 0 && n->slirp)
		ret = net_slirp_run(n->slirp);
	if (ret == 0)
		ret = n->vhost ? net_vhost_activate(n, a) : net_io_activate(n);
	n->active = ret == 0;
	if (ret < 0)
		deactivate(n, evs, &nr);
	pthread_mutex_unlock(&n->lock);
	free_events(evs, nr);
	return ret;
}

static void net_notify(void *dev, unsigned queue)
{
	struct net *n = dev;

	pthread_mutex_lock(&n->lock);
	if (n->active) {
		if (n->has_ctrl && queue == 2 * n->max_pairs)
			net_ctrl_run(n);
		else
			net_io_kick(n, queue);
	}
	pthread_mutex_unlock(&n->lock);
}

static void net_reset(void *dev)
{
	struct net *n = dev;
	struct event *evs[MAX_EVENTS];
	unsigned nr = 0;

	pthread_mutex_lock(&n->lock);
	deactivate(n, evs, &nr);
	pthread_mutex_unlock(&n->lock);
	free_events(evs, nr);
}

static int net_fds(void *dev, struct fd_list *out)
{
	struct net *n = dev;
	int ret = 0;

	if (n->slirp)
		return net_slirp_fds(n->slirp, out);
	for (unsigned i = 0; i < n->tap.nr_fds && !ret; i++)
		ret = fd_list_add(out, n->tap.fds[i]);
	if (!ret && n->vhost)
		ret = net_vhost_fds(n, out);
	return ret;
}

static void net_destroy(void *dev)
{
	struct net *n = dev;

	net_reset(n);
	if (n->vhost)
		net_vhost_close(n);
	if (n->slirp)
		net_slirp_destroy(n->slirp);
	tap_close(&n->tap);
	net_io_free(n);
	virtq_chain_free(&n->ctrl_chain);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net",
	.policy = "net_device",
	.device_type = VIRTIO_ID_NET,
	.queue_max_size = NET_QUEUE_SIZE,
	.features = net_features,
	.config_size = CFG_SIZE,
	.config_read = net_config_read,
	.activate = net_activate,
	.notify = net_notify,
	.reset = net_reset,
	.fds = net_fds,
	.destroy = net_destroy,
};

/* ---- creation ---- */

static uint64_t offered_features(const struct net *n, const struct net_config *cfg)
{
	uint64_t f = BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MTU);

	if (n->has_mac)
		f |= BIT(VIRTIO_NET_F_MAC);
	if (!cfg->no_mrg_rxbuf)
		f |= BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (n->vnet_hdr)
		f |= BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4) |
		     BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_HOST_ECN) |
		     BIT(VIRTIO_NET_F_HOST_UFO);
	for (unsigned i = 0; i < ARRAY_SIZE(rx_offloads); i++)
		if ((n->tap_offloads & TUN_F_CSUM) && (n->tap_offloads & rx_offloads[i].tun))
			f |= BIT(rx_offloads[i].feature);
	if (n->has_ctrl) {
		f |= BIT(VIRTIO_NET_F_CTRL_VQ);
		if (f & BIT(VIRTIO_NET_F_GUEST_CSUM))
			f |= BIT(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS);
	}
	if (n->max_pairs > 1)
		f |= BIT(VIRTIO_NET_F_MQ);
	return f;
}

static int open_backend(struct net *n, const struct net_config *cfg)
{
	int ret, fd;

	switch (cfg->mode) {
	case NET_TAP_NAME:
		return tap_open_name(&n->tap, cfg->tap_name, n->max_pairs, n->log);
	case NET_TAP_FD:
		return tap_open_fd(&n->tap, cfg->tap_fd, n->log);
	case NET_TAP_CREATE:
		return tap_create(&n->tap, cfg->host_ip, cfg->netmask, cfg->mac, n->max_pairs,
				  n->log);
	case NET_PACKET_FD:
		fd = fcntl(cfg->tap_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return -errno;
		n->tap.fds[0] = fd;
		n->tap.nr_fds = 1;
		n->tap.attached[0] = true;
		n->tap.vnet_hdr = cfg->packet_vnet_hdr;
		n->tap.mtu = 1500;
		return 0;
	case NET_USER:
		ret = net_slirp_create(cfg, n->name, n->log, &n->slirp, &fd);
		if (ret == 0)
			n->pairs[0].fd = fd;
		return ret;
	}
	return -EINVAL;
}

int virtio_net_create(const struct net_config *cfg, const char *name, const struct logger *lg,
		      const struct virtio_dev_ops **ops, void **dev)
{
	struct net *n;
	int ret;

	if (cfg->vq_pairs < 1 || cfg->vq_pairs > NET_MAX_PAIRS)
		return -EINVAL;
	if (cfg->mode == NET_USER && (cfg->vq_pairs != 1 || cfg->vhost))
		return -EINVAL;
	if ((cfg->mode == NET_TAP_FD || cfg->mode == NET_PACKET_FD) && cfg->vq_pairs != 1)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	ret = -pthread_mutex_init(&n->lock, NULL);
	if (ret < 0) {
		free(n);
		return ret;
	}
	n->log = lg;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->max_pairs = cfg->vq_pairs;
	n->mtu = 1500;
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		n->tap.fds[i] = -1;
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++) {
		n->pairs[i].n = n;
		n->pairs[i].index = i;
		n->pairs[i].fd = -1;
	}
	ret = open_backend(n, cfg);
	if (ret < 0)
		goto err;
	if (!n->slirp) {
		for (unsigned i = 0; i < n->tap.nr_fds; i++)
			n->pairs[i].fd = n->tap.fds[i];
		n->vnet_hdr = n->tap.vnet_hdr;
		n->tap_offloads = n->tap.offloads;
		n->mtu = n->tap.mtu;
	}
	/* With host-ip, mac= is the TAP's own address (crosvm); the guest picks its own. */
	n->has_mac = cfg->has_mac && cfg->mode != NET_TAP_CREATE;
	memcpy(n->mac, cfg->mac, 6);
	n->has_ctrl = n->max_pairs > 1 || (n->tap_offloads & TUN_F_CSUM);
	n->features = offered_features(n, cfg);
	if (cfg->vhost) {
		ret = net_vhost_open(n, cfg->vhost_device);
		if (ret < 0)
			goto err;
		/* vhost-net implements the rings: offer only what it does of those. */
		if (!(net_vhost_features(n) & BIT(VIRTIO_NET_F_MRG_RXBUF)))
			n->features &= ~BIT(VIRTIO_NET_F_MRG_RXBUF);
	}
	ret = net_io_alloc(n);
	if (ret == 0)
		ret = virtq_chain_alloc(&n->ctrl_chain, NET_QUEUE_SIZE);
	if (ret < 0)
		goto err;
	n->ops = net_ops;
	n->ops.nr_queues = 2 * n->max_pairs + (n->has_ctrl ? 1 : 0);
	if (n->vhost) {
		n->ops.policy = "vhost_net_device";
		/* The kernel reads the data queues' kicks; net_vhost.c watches the control one. */
		n->ops.own_kicks = true;
		n->ops.notify = NULL;
	} else if (n->slirp) {
		n->ops.policy = "net_user_device";
		n->ops.host_network = true;
	}
	*ops = &n->ops;
	*dev = n;
	return 0;
err:
	net_destroy(n);
	return ret;
}
