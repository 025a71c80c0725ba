/*
 * virtio-net's datapath in this process: frames between the queues and the back end's packet
 * fd of each pair, on the device's event loop.
 *
 * Transmit: a kick serves the transmit queue (virtq_serve), at most NET_TX_BUDGET chains per
 * turn, one interrupt per turn. Each chain's header is copied out and checked against what was
 * negotiated before the frame goes to the back end with one writev straight from guest memory;
 * a chain that breaks a rule is dropped, counted and given back. When the back end has no room
 * (EAGAIN), the chain is held until the fd is writable.
 *
 * Receive: while the driver has posted buffers, the back end's fd is watched; each frame is
 * read whole into the pair's buffer, then spread over as many receive chains as it needs
 * (several only with VIRTIO_NET_F_MRG_RXBUF), all published at once. When the buffers run
 * out, the frame stays in the pair's buffer, the fd is no longer watched (the back end queues
 * or drops, never us: no unbounded queue, no busy loop) and a kick of the receive queue
 * resumes. A frame no buffer the driver posted can hold is dropped and counted.
 */
#include "virtio/net_internal.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <linux/virtio_net.h>

#include "core/iov.h"
#include "core/log.h"

/* virtio_net_hdr_v1 byte offsets (little-endian fields). */
#define HDR_FLAGS	0
#define HDR_GSO_TYPE	1
#define HDR_HDR_LEN	2
#define HDR_GSO_SIZE	4
#define HDR_CSUM_START	6
#define HDR_CSUM_OFFSET 8
#define HDR_NUM_BUFFERS 10

enum rx_result { RX_DONE, RX_NOBUF, RX_BROKEN };

int net_io_alloc(struct net *n)
{
	for (unsigned i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		int ret;

		p->rx_buf = malloc(NET_RX_BUF);
		p->tx_iov = calloc(NET_QUEUE_SIZE + 1, sizeof(*p->tx_iov));
		p->rx_heads = calloc(NET_QUEUE_SIZE, sizeof(*p->rx_heads));
		p->rx_lens = calloc(NET_QUEUE_SIZE, sizeof(*p->rx_lens));
		if (!p->rx_buf || !p->tx_iov || !p->rx_heads || !p->rx_lens)
			return -ENOMEM;
		/* A chain never has more buffers than the queue has descriptors. */
		ret = virtq_chain_alloc(&p->rx_chain, NET_QUEUE_SIZE);
		if (ret == 0)
			ret = virtq_chain_alloc(&p->tx_chain, NET_QUEUE_SIZE);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void net_io_free(struct net *n)
{
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++) {
		struct net_pair *p = &n->pairs[i];

		free(p->rx_buf);
		free(p->tx_iov);
		free(p->rx_heads);
		free(p->rx_lens);
		virtq_chain_free(&p->rx_chain);
		virtq_chain_free(&p->tx_chain);
		p->rx_buf = NULL;
		p->tx_iov = NULL;
		p->rx_heads = NULL;
		p->rx_lens = NULL;
	}
}

/* Lock held: the queue cannot be trusted any more; the driver must reset the device. */
static void broken(struct net *n)
{
	if (n->active)
		virtio_irq_needs_reset(n->irq);
	n->active = false;
}

/* ---- transmit ---- */

static bool has(const struct net *n, unsigned bit)
{
	return n->acked & BIT(bit);
}

/* Checks a transmit header against what was negotiated; NULL, or why the frame is refused. */
static const char *tx_check(const struct net *n, const uint8_t *h, size_t len)
{
	uint8_t flags = h[HDR_FLAGS], gso = h[HDR_GSO_TYPE];
	uint8_t type = gso & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if (len < NET_ETH_HLEN)
		return "frame shorter than an Ethernet header";
	if (len > NET_MAX_FRAME)
		return "frame larger than 64 KiB";
	if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!has(n, VIRTIO_NET_F_CSUM))
			return "NEEDS_CSUM without VIRTIO_NET_F_CSUM";
		if ((size_t)get_le(h + HDR_CSUM_START, 2) + get_le(h + HDR_CSUM_OFFSET, 2) + 2 >
		    len)
			return "checksum field past the end of the frame";
	}
	switch (type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		if (gso & VIRTIO_NET_HDR_GSO_ECN)
			return "ECN without segmentation";
		/* Spec 5.1.6.2: without GSO a frame is no larger than the MTU allows. */
		if (len > (size_t)n->mtu + NET_ETH_HLEN + NET_VLAN_HLEN)
			return "frame larger than the MTU without segmentation offload";
		return NULL;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!has(n, VIRTIO_NET_F_HOST_TSO4))
			return "TCPv4 segmentation without VIRTIO_NET_F_HOST_TSO4";
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!has(n, VIRTIO_NET_F_HOST_TSO6))
			return "TCPv6 segmentation without VIRTIO_NET_F_HOST_TSO6";
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!has(n, VIRTIO_NET_F_HOST_UFO))
			return "UDP fragmentation without VIRTIO_NET_F_HOST_UFO";
		break;
	default:
		return "unknown gso_type";
	}
	if ((gso & VIRTIO_NET_HDR_GSO_ECN) && !has(n, VIRTIO_NET_F_HOST_ECN))
		return "ECN segmentation without VIRTIO_NET_F_HOST_ECN";
	if (!get_le(h + HDR_GSO_SIZE, 2))
		return "segmentation with gso_size 0";
	return NULL;
}

static void tx_malformed(struct net *n, uint16_t head, const char *why)
{
	n->stats.tx_malformed++;
	if (log_ratelimit(&n->log_tx_malformed))
		log_warn(n->log, "%s: dropping transmit chain %u: %s [%llu so far]", n->name, head,
			 why, (unsigned long long)n->stats.tx_malformed);
}

int net_tx_chain(struct net *n, int fd, struct iovec *iov, const struct virtq_chain *c)
{
	uint8_t hdr[NET_HDR_LEN];
	struct iov_cursor cur;
	const char *why = NULL;
	unsigned nr = 0, cnt;
	size_t len = 0;
	ssize_t w;

	if (c->nr_in)
		why = "device-writable buffer in a transmit chain";
	else if (c->out_bytes < NET_HDR_LEN)
		why = "no room for the virtio header";
	if (!why) {
		len = c->out_bytes - NET_HDR_LEN;
		iov_cursor_reader(&cur, c);
		/* Copied once: the guest may rewrite its buffer while the kernel reads it. */
		if (iov_read(&cur, hdr, NET_HDR_LEN) < 0)
			why = "header unreadable";
		else
			/*
			 * Spec 5.1.6.2.2: the device ignores flag bits it does not know
			 * (DATA_VALID and RSC_INFO are the device's to set on receive); the
			 * back end sees them cleared.
			 */
			hdr[HDR_FLAGS] &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	}
	if (!why)
		why = tx_check(n, hdr, len);
	if (!why && !n->vnet_hdr && (hdr[HDR_FLAGS] || hdr[HDR_GSO_TYPE]))
		why = "offload header for a back end without offloads";
	if (!why && iov_take(&cur, len, iov + 1, NET_QUEUE_SIZE, &nr) < 0)
		why = "frame spread over too many buffers";
	if (why) {
		tx_malformed(n, c->head, why);
		return -EBADMSG;
	}
	if (n->vnet_hdr) {
		iov[0] = (struct iovec){.iov_base = hdr, .iov_len = NET_HDR_LEN};
		w = writev(fd, iov, (int)nr + 1);
		cnt = NET_HDR_LEN;
	} else {
		w = writev(fd, iov + 1, (int)nr);
		cnt = 0;
	}
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -EAGAIN;
	if (w < 0 || (size_t)w != len + cnt) {
		int err = w < 0 ? errno : EIO;

		n->stats.tx_errors++;
		if (log_ratelimit(&n->log_tx_errors))
			log_warn(n->log,
				 "%s: the back end refused a %zu-byte frame: %s [%llu so far]",
				 n->name, len, strerror(err),
				 (unsigned long long)n->stats.tx_errors);
		return -err;
	}
	n->stats.tx_frames++;
	return 0;
}

/* Lock held. One chain from virtq_serve. */
static enum virtq_verdict tx_serve(void *ctx, struct virtq_chain *c, int status, uint32_t *written)
{
	struct net_pair *p = ctx;
	struct net *n = p->n;

	if (status == 0 && net_tx_chain(n, p->fd, p->tx_iov, c) == -EAGAIN) {
		/* Held in tx_chain; virtq_serve stops at the next `between`. */
		p->tx_blocked = true;
		event_add(p->tx_ev, NULL);
		return VIRTQ_HOLD;
	}
	if (status)
		n->stats.tx_malformed++;
	p->tx_pushed = true;
	*written = 0;
	return VIRTQ_PUSH;
}

static bool tx_between(void *ctx, bool idle)
{
	struct net_pair *p = ctx;

	if (p->tx_blocked)
		return false;
	if (!idle && !p->tx_left) {
		/* Fair to receive and the other pairs: carry on in a later turn of the loop. */
		event_active(p->tx_more_ev, EV_TIMEOUT, 0);
		return false;
	}
	if (!idle)
		p->tx_left--;
	return true;
}

static const struct virtq_server tx_server = {.serve = tx_serve, .between = tx_between};

/* Lock held. Serves the transmit queue until it is empty, blocked or the budget is spent. */
static void tx_run(struct net_pair *p)
{
	struct net *n = p->n;
	int ret;

	if (!n->active || !p->txq || p->tx_blocked)
		return;
	p->tx_left = NET_TX_BUDGET;
	p->tx_pushed = false;
	ret = virtq_serve(p->txq, &p->tx_chain, &tx_server, p, NULL);
	if (ret < 0) {
		broken(n);
		return;
	}
	if (p->tx_pushed && virtq_should_notify(p->txq))
		virtio_irq_queue(n->irq, 2 * p->index + 1);
}

/* Lock held. The back end has room again: send the held chain, then carry on. */
static void tx_resume(struct net_pair *p)
{
	struct net *n = p->n;
	int ret;

	if (!n->active || !p->tx_blocked)
		return;
	ret = net_tx_chain(n, p->fd, p->tx_iov, &p->tx_chain);
	if (ret == -EAGAIN) {
		event_add(p->tx_ev, NULL);
		return;
	}
	p->tx_blocked = false;
	if (virtq_push(p->txq, p->tx_chain.head, 0) < 0) {
		broken(n);
		return;
	}
	if (virtq_should_notify(p->txq))
		virtio_irq_queue(n->irq, 2 * p->index + 1);
	tx_run(p);
}

/* ---- receive ---- */

static void rx_malformed(struct net *n, uint16_t head, const char *why)
{
	n->stats.rx_malformed++;
	if (log_ratelimit(&n->log_rx_malformed))
		log_warn(n->log, "%s: giving back receive chain %u unused: %s [%llu so far]",
			 n->name, head, why, (unsigned long long)n->stats.rx_malformed);
}

static void rx_drop(struct net *n, size_t len, const char *why)
{
	n->stats.rx_dropped++;
	if (log_ratelimit(&n->log_rx_dropped))
		log_warn(n->log, "%s: dropping a received %zu-byte frame: %s [%llu so far]",
			 n->name, len, why, (unsigned long long)n->stats.rx_dropped);
}

/*
 * The frame's header as the driver may see it: only what it negotiated. NULL, or why the frame
 * cannot be given to this driver (an offload it did not take; the back end's offloads follow
 * the negotiation, so only a racing change does this).
 */
static const char *rx_fix_header(const struct net *n, uint8_t *h)
{
	uint8_t type = h[HDR_GSO_TYPE] & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if (!n->vnet_hdr) {
		memset(h, 0, NET_HDR_LEN);
		return NULL;
	}
	if (!has(n, VIRTIO_NET_F_GUEST_CSUM))
		h[HDR_FLAGS] = 0;
	h[HDR_FLAGS] &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	if ((type == VIRTIO_NET_HDR_GSO_TCPV4 && !has(n, VIRTIO_NET_F_GUEST_TSO4)) ||
	    (type == VIRTIO_NET_HDR_GSO_TCPV6 && !has(n, VIRTIO_NET_F_GUEST_TSO6)) ||
	    (type == VIRTIO_NET_HDR_GSO_UDP && !has(n, VIRTIO_NET_F_GUEST_UFO)) ||
	    (type != VIRTIO_NET_HDR_GSO_NONE && type != VIRTIO_NET_HDR_GSO_TCPV4 &&
	     type != VIRTIO_NET_HDR_GSO_TCPV6 && type != VIRTIO_NET_HDR_GSO_UDP) ||
	    ((h[HDR_GSO_TYPE] & VIRTIO_NET_HDR_GSO_ECN) && !has(n, VIRTIO_NET_F_GUEST_ECN)))
		return "an offload the driver did not negotiate";
	return NULL;
}

/*
 * Lock held. Writes the pending frame into receive chains: one (without MRG_RXBUF) or as many
 * as it needs, published together with num_buffers in the first one's header. RX_NOBUF: the
 * posted buffers are not enough yet (none consumed, the frame stays pending).
 */
static enum rx_result rx_place(struct net_pair *p)
{
	struct net *n = p->n;
	struct virtq *q = p->rxq;
	bool mergeable = has(n, VIRTIO_NET_F_MRG_RXBUF);
	const uint8_t *src = p->rx_buf;
	size_t left = p->rx_len;
	uint8_t *nb[2] = {NULL, NULL}; /* where num_buffers lands in the first chain */
	unsigned k = 0;
	int ret;

	while (left) {
		struct virtq_chain *c = &p->rx_chain;
		struct iov_cursor cur;
		size_t take;

		if (k == q->size) {
			/* Every descriptor of the ring is not enough: it never will be. */
			virtq_unpop(q, (uint16_t)k);
			rx_drop(n, p->rx_len - NET_HDR_LEN, "larger than all the receive buffers");
			return RX_DONE;
		}
		ret = virtq_pop(q, c);
		if (ret == -ENOENT) {
			virtq_unpop(q, (uint16_t)k);
			return RX_NOBUF;
		}
		if (ret == -EIO)
			return RX_BROKEN;
		if (ret == 0 && (c->nr_out || c->in_bytes < NET_HDR_LEN)) {
			rx_malformed(n, c->head,
				     c->nr_out ? "device-readable buffer in a receive chain"
					       : "smaller than the virtio header");
			ret = -EBADMSG;
		} else if (ret == -EBADMSG) {
			n->stats.rx_malformed++;
		}
		if (ret == -EBADMSG) {
			/*
			 * Given back unused, with the chains this frame took so far (the driver
			 * sees short, empty frames and recycles them): unpopping would find this
			 * one again.
			 */
			p->rx_heads[k] = c->head;
			p->rx_lens[k] = 0;
			for (unsigned i = 0; i <= k; i++)
				p->rx_lens[i] = 0;
			if (virtq_push_many(q, p->rx_heads, p->rx_lens, k + 1) < 0)
				return RX_BROKEN;
			k = 0;
			left = p->rx_len;
			src = p->rx_buf;
			nb[0] = nb[1] = NULL;
			continue;
		}
		if (!mergeable && c->in_bytes < p->rx_len) {
			virtq_unpop(q, 1);
			rx_drop(n, p->rx_len - NET_HDR_LEN,
				"larger than the receive buffer (no VIRTIO_NET_F_MRG_RXBUF)");
			return RX_DONE;
		}
		iov_cursor_writer(&cur, c);
		take = MIN(left, (size_t)c->in_bytes);
		if (k == 0) {
			/* Remember the two bytes of num_buffers wherever the driver's buffers put
			 * them. */
			struct iov_cursor at = cur;
			uint8_t *where[NET_HDR_LEN];

			for (unsigned b = 0; b < NET_HDR_LEN; b++) {
				struct iovec one;
				unsigned got;

				if (iov_take(&at, 1, &one, 1, &got) < 0)
					return RX_BROKEN; /* cannot happen: in_bytes >= header */
				where[b] = one.iov_base;
			}
			nb[0] = where[HDR_NUM_BUFFERS];
			nb[1] = where[HDR_NUM_BUFFERS + 1];
		}
		if (iov_write(&cur, src, take) < 0)
			return RX_BROKEN; /* cannot happen: take <= in_bytes */
		p->rx_heads[k] = c->head;
		p->rx_lens[k] = (uint32_t)take;
		k++;
		src += take;
		left -= take;
	}
	if (!nb[0] || !nb[1])
		return RX_BROKEN; /* cannot happen: a frame always has a header */
	nb[0][0] = (uint8_t)k;
	nb[1][0] = (uint8_t)(k >> 8);
	if (virtq_push_many(q, p->rx_heads, p->rx_lens, k) < 0)
		return RX_BROKEN;
	n->stats.rx_frames++;
	return RX_DONE;
}

/* Lock held. Reads one frame from the back end into rx_buf: its length, 0 none, -errno. */
static ssize_t rx_read(struct net_pair *p)
{
	struct net *n = p->n;
	size_t off = n->vnet_hdr ? 0 : NET_HDR_LEN;
	ssize_t r = read(p->fd, p->rx_buf + off, NET_RX_BUF - off);

	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	if ((size_t)r + off <= NET_HDR_LEN)
		return r == 0 ? -EPIPE : -EMSGSIZE;
	return r + (ssize_t)off;
}

static void rx_disarm(struct net_pair *p)
{
	if (p->rx_armed)
		event_del(p->rx_ev);
	p->rx_armed = false;
}

/* Lock held. Delivers frames while there are frames and buffers. */
static void rx_run(struct net_pair *p)
{
	struct net *n = p->n;
	bool pushed = false;

	if (!n->active || !p->rxq)
		return;
	for (unsigned i = 0; i < NET_RX_BUDGET; i++) {
		enum rx_result r;
		const char *why;

		if (!p->rx_len) {
			ssize_t len = rx_read(p);

			if (len == 0)
				break;
			if (len < 0) {
				if (len == -EMSGSIZE)
					continue;
				/* The back end is gone (slirp's thread ended): stop watching it. */
				log_err(n->log, "%s: cannot read from the back end: %s", n->name,
					strerror((int)-len));
				rx_disarm(p);
				break;
			}
			p->rx_len = (size_t)len;
			why = rx_fix_header(n, p->rx_buf);
			if (why) {
				rx_drop(n, p->rx_len - NET_HDR_LEN, why);
				p->rx_len = 0;
				continue;
			}
		}
		r = rx_place(p);
		if (r == RX_BROKEN) {
			broken(n);
			return;
		}
		if (r == RX_NOBUF) {
			/* Let the driver tell us about new buffers, unless some came meanwhile. */
			if (virtq_enable_notify_more(p->rxq))
				continue;
			rx_disarm(p);
			break;
		}
		pushed = true;
		p->rx_len = 0;
	}
	if (pushed && virtq_should_notify(p->rxq))
		virtio_irq_queue(n->irq, 2 * p->index);
}

/* Lock held. The driver posted receive buffers (or activation kicked): watch the fd again. */
static void rx_kick(struct net_pair *p)
{
	if (!p->n->active || !p->rxq)
		return;
	virtq_disable_notify(p->rxq);
	if (!p->rx_armed && p->rx_ev && event_add(p->rx_ev, NULL) == 0)
		p->rx_armed = true;
	rx_run(p);
}

/* ---- loop callbacks and lifecycle ---- */

static void on_rx(evutil_socket_t fd, short what, void *arg)
{
	struct net_pair *p = arg;

	pthread_mutex_lock(&p->n->lock);
	rx_run(p);
	pthread_mutex_unlock(&p->n->lock);
}

static void on_tx_writable(evutil_socket_t fd, short what, void *arg)
{
	struct net_pair *p = arg;

	pthread_mutex_lock(&p->n->lock);
	tx_resume(p);
	pthread_mutex_unlock(&p->n->lock);
}

static void on_tx_more(evutil_socket_t fd, short what, void *arg)
{
	struct net_pair *p = arg;

	pthread_mutex_lock(&p->n->lock);
	tx_run(p);
	pthread_mutex_unlock(&p->n->lock);
}

void net_io_kick(struct net *n, unsigned q)
{
	struct net_pair *p;

	if (q >= 2 * n->max_pairs)
		return;
	p = &n->pairs[q / 2];
	if (q & 1)
		tx_run(p);
	else
		rx_kick(p);
}

int net_io_activate(struct net *n)
{
	if (!n->eb)
		return -EINVAL;
	for (unsigned i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		p->rx_ev = event_new(n->eb, p->fd, EV_READ | EV_PERSIST, on_rx, p);
		p->tx_ev = event_new(n->eb, p->fd, EV_WRITE, on_tx_writable, p);
		p->tx_more_ev = event_new(n->eb, -1, 0, on_tx_more, p);
		if (!p->rx_ev || !p->tx_ev || !p->tx_more_ev)
			return -ENOMEM;
		p->rx_armed = false;
		p->tx_blocked = false;
		p->rx_len = 0;
	}
	return 0;
}

void net_io_reset(struct net *n, struct event **evs, unsigned *nr)
{
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++) {
		struct net_pair *p = &n->pairs[i];
		struct event *e[3] = {p->rx_ev, p->tx_ev, p->tx_more_ev};

		for (unsigned j = 0; j < 3; j++)
			if (e[j])
				evs[(*nr)++] = e[j];
		p->rx_ev = p->tx_ev = p->tx_more_ev = NULL;
		p->rx_armed = false;
		p->tx_blocked = false;
		p->rx_len = 0;
	}
}
