/*
 * Private to virtio-net (virtio/net*.c): the device's state and what its files call across.
 * net.c is the device (features, configuration, control queue, lifecycle, back ends);
 * net_io.c moves frames in this process (receive and transmit); net_vhost.c hands the queues
 * to the kernel's vhost-net instead; net_slirp.c is the user-mode back end.
 *
 * Queues: receive queue 2i and transmit queue 2i+1 of pair i, then the control queue (when
 * there is one) after the last pair.
 *
 * Threads: the device's event loop runs receive, transmit and the control queue; activate and
 * reset come from the thread that made the guest's access (a vCPU, or the device process's
 * loop). One lock guards everything; a loop callback that finds the device inactive does
 * nothing, and events are freed only outside the lock (libevent waits for a running
 * callback, which may be waiting for the lock).
 */
#ifndef CROSVM_VIRTIO_NET_INTERNAL_H
#define CROSVM_VIRTIO_NET_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/device.h"
#include "virtio/net.h"
#include "virtio/queue.h"
#include "virtio/tap.h"
#include "virtio/virtio.h"

struct event;
struct event_base;
struct net_slirp;
struct net_vhost;

/* The virtio 1.x header (virtio_net_hdr_v1) before every frame in the queues. */
#define NET_HDR_LEN 12
/* The largest frame the driver may send or we pass on: 64 KiB of GSO plus an Ethernet header
 * (virtio 1.2, 5.1.6.2); a frame without GSO is limited by the MTU. */
#define NET_MAX_FRAME 65550u
#define NET_ETH_HLEN  14u
#define NET_VLAN_HLEN 4u
/* Room for one frame read from the back end: the header, then the largest TAP frame. */
#define NET_RX_BUF     (NET_HDR_LEN + 65536u + 64u)
#define NET_RX_BUDGET  64u  /* frames received per wake-up before others get the loop */
#define NET_TX_BUDGET  256u /* chains sent per wake-up, likewise */
#define NET_MAX_QUEUES (2 * NET_MAX_PAIRS + 1)

/* What happened to frames, for the logs (rate-limited) and the tests that read them. */
struct net_stats {
	uint64_t tx_frames;
	uint64_t tx_malformed; /* transmit chains dropped for breaking a rule */
	uint64_t tx_errors;    /* frames the back end refused */
	uint64_t rx_frames;
	uint64_t rx_dropped;   /* frames no buffer the driver posted could hold */
	uint64_t rx_malformed; /* receive chains given back unused for breaking a rule */
	uint64_t ctrl_malformed;
};

struct net;

struct net_pair {
	struct net *n;
	unsigned index;
	int fd; /* the back end's packet fd of this pair (a TAP queue, slirp's end) */
	struct virtq *rxq, *txq;
	struct event *rx_ev;	  /* fd readable, persistent while armed */
	struct event *tx_ev;	  /* fd writable, while a chain waits for room */
	struct event *tx_more_ev; /* serve transmit again after a budget ran out */
	bool rx_armed;
	bool tx_blocked; /* tx_chain holds a popped chain the back end had no room for */
	unsigned tx_left;
	bool tx_pushed;
	struct virtq_chain rx_chain, tx_chain;
	struct iovec *tx_iov; /* the header and the frame's buffers, for writev */
	uint8_t *rx_buf;      /* a frame from the back end, its virtio header first */
	size_t rx_len;	      /* bytes of rx_buf waiting for buffers (0: none) */
	uint16_t *rx_heads;   /* the chains one frame is spread over */
	uint32_t *rx_lens;
};

struct net {
	pthread_mutex_t lock;
	const struct logger *log;
	char name[32];
	struct virtio_dev_ops ops; /* per device: the number of queues depends on the pairs */

	uint64_t features; /* offered */
	uint8_t mac[6];
	bool has_mac;
	uint16_t mtu;
	unsigned max_pairs;
	bool has_ctrl;
	bool vnet_hdr;	       /* frames to and from the back end carry the virtio header */
	unsigned tap_offloads; /* TUN_F_* the TAP takes */
	struct tap tap;	       /* the back end, unless slirp */
	struct net_slirp *slirp;
	struct net_vhost *vhost; /* the kernel moves the packets */

	/* Between activate and reset. */
	bool active;
	uint64_t acked;
	unsigned curr_pairs;
	struct virtio_irq *irq;
	struct event_base *eb;
	struct net_pair pairs[NET_MAX_PAIRS];
	struct virtq *ctrlq;
	struct virtq_chain ctrl_chain;

	struct net_stats stats;
	uint64_t log_tx_malformed, log_tx_errors, log_rx_dropped, log_rx_malformed, log_ctrl;
};

/* ---- net.c ---- */

/* Lock held: the back end's offloads follow the negotiated receive offloads. */
unsigned net_tun_offloads(uint64_t features);
/* Lock held: attaches the back end's queues of the first `pairs` pairs, detaches the rest. */
int net_set_pairs(struct net *n, unsigned pairs);

/* Lock held. Serves the control queue (a kick of it). */
void net_ctrl_run(struct net *n);

/* ---- net_io.c: the datapath in this process ---- */

int net_io_alloc(struct net *n) MUST_CHECK;
void net_io_free(struct net *n);
/* Lock held. Creates each active pair's events; the transport's start-up kicks arm them. */
int net_io_activate(struct net *n) MUST_CHECK;
/* Lock held. Forgets the queues; the events move to *evs (nr) for the caller to free after
 * unlocking. */
void net_io_reset(struct net *n, struct event **evs, unsigned *nr);
/* Lock held. A kick of receive or transmit queue q. */
void net_io_kick(struct net *n, unsigned q);
/*
 * Validates and sends one transmit chain to fd. 0 sent, -EBADMSG malformed (dropped and
 * counted), -EAGAIN no room (nothing sent), other -errno the back end refused it (counted).
 */
int net_tx_chain(struct net *n, int fd, struct iovec *iov, const struct virtq_chain *c);

/* ---- net_vhost.c: the kernel's vhost-net ---- */

/* Opens one vhost-net device per pair (path, or the default); logs why not. */
int net_vhost_open(struct net *n, const char *path) MUST_CHECK;
/* The features vhost-net implements (VHOST_GET_FEATURES). */
uint64_t net_vhost_features(const struct net *n);
/* Lock held. Hands memory, rings, kicks, interrupts and the TAP queues to the kernel. */
int net_vhost_activate(struct net *n, const struct virtio_activate *a) MUST_CHECK;
/* Lock held. Takes the rings back from the kernel; events to free after unlocking. */
void net_vhost_reset(struct net *n, struct event **evs, unsigned *nr);
int net_vhost_fds(const struct net *n, struct fd_list *out) MUST_CHECK;
void net_vhost_close(struct net *n);

/* ---- net_slirp.c: user-mode networking ---- */

/* A libslirp stack with its end of a packet socket pair in *fd (frames without header). */
int net_slirp_create(const struct net_config *cfg, const char *name, const struct logger *lg,
		     struct net_slirp **out, int *fd) MUST_CHECK;
/* Starts its thread (once, at the first activation: after the sandbox's seccomp filter). */
int net_slirp_run(struct net_slirp *s) MUST_CHECK;
int net_slirp_fds(struct net_slirp *s, struct fd_list *out) MUST_CHECK;
void net_slirp_destroy(struct net_slirp *s);

#endif
