/*
 * The user-space virtio-vsock device: its queues, configuration and life. Connections and
 * host sockets are virtio/vsock_mux.c's; this file hands it the guest's packets (tx queue)
 * and fills the guest's receive buffers from it (rx queue). The event queue's buffers are
 * left with the device: the only event (a transport reset after migration) never happens.
 *
 * Threads: activate and reset may come from vCPU threads (unsandboxed) and only change the
 * queue pointers under the lock, then wake the loop; everything else, the mux included, runs
 * on the loop thread. A reset is noticed there through its generation number, which drops
 * every connection and any receive buffer held from the old rings.
 */
#include "virtio/vsock.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <event2/event.h>
#include <linux/virtio_ids.h>

#include "core/iov.h"
#include "core/log.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"
#include "virtio/vsock_mux.h"
#include "virtio/vsock_pkt.h"

#define LISTEN_BACKLOG 128

struct vsock {
	pthread_mutex_t lock;
	const struct logger *log;
	uint64_t cid;
	char path[VSOCK_PATH_MAX]; /* the canonical uds_path */
	char dir[PATH_MAX];	   /* its directory: all the jail shows */
	int listen_fd;
	dev_t sock_dev;
	ino_t sock_ino;
	struct vsock_mux *mux;
	int wake_fd;
	struct event *wake_ev;

	/* Under the lock: set by activate, cleared by reset (any thread). */
	struct virtq *q[VSOCK_NR_QUEUES];
	struct virtio_irq *irq;
	unsigned gen; /* resets so far */

	/* The loop thread's, under the lock. */
	unsigned seen_gen;
	bool in_service, rx_wanted, rx_held;
	struct virtq_chain rx_chain, tx_chain;
	uint64_t nr_bad;
};

const char *vsock_cid_invalid(uint64_t cid)
{
	if (cid <= VSOCK_HOST_CID)
		return "CIDs 0, 1 and 2 are reserved (hypervisor, local, host)";
	if (cid == UINT32_MAX)
		return "CID 4294967295 (U32_MAX) is reserved (VMADDR_CID_ANY)";
	if (cid > UINT32_MAX)
		return "a CID has 32 bits (the spec reserves the upper half of the field)";
	return NULL;
}

/* ---- the queues, on the loop thread with the lock held ---- */

/* A reset since we last looked: its connections and buffers belong to a gone driver. */
static void sync_gen(struct vsock *v)
{
	if (v->seen_gen == v->gen)
		return;
	v->seen_gen = v->gen;
	v->rx_held = false;
	vsock_mux_reset(v->mux);
}

static void bad_chain(struct vsock *v, const char *what, uint16_t head)
{
	if (log_ratelimit(&v->nr_bad))
		log_warn(v->log, "virtio-vsock: %s (chain %u) [%llu so far]", what, head,
			 (unsigned long long)v->nr_bad);
}

static void broken(struct vsock *v)
{
	for (unsigned i = 0; i < VSOCK_NR_QUEUES; i++)
		v->q[i] = NULL;
	virtio_irq_needs_reset(v->irq);
}

/* Fills receive buffers while the mux has packets; a buffer it did not need is kept. */
static void pump_rx(struct vsock *v, bool *irq)
{
	struct virtq *q = v->q[VSOCK_Q_RX];
	struct iov_cursor cur;
	uint32_t written;
	int ret;

	while (q && vsock_mux_has_rx(v->mux)) {
		if (!v->rx_held) {
			ret = virtq_pop(q, &v->rx_chain);
			if (ret == -ENOENT) {
				/* Be kicked when the guest adds one (EVENT_IDX: say so). */
				if (virtq_enable_notify(q))
					continue;
				return;
			}
			if (ret == -EIO) {
				broken(v);
				return;
			}
			if (ret == 0 && v->rx_chain.in_bytes < VSOCK_HDR_SIZE) {
				bad_chain(v, "receive buffer shorter than a header",
					  v->rx_chain.head);
				ret = -EBADMSG;
			}
			if (ret < 0) {
				if (virtq_push(q, v->rx_chain.head, 0) < 0) {
					broken(v);
					return;
				}
				continue;
			}
			v->rx_held = true;
		}
		iov_cursor_writer(&cur, &v->rx_chain);
		if (!vsock_mux_rx(v->mux, &cur, &written))
			return; /* kept for the next packet */
		v->rx_held = false;
		if (virtq_push(q, v->rx_chain.head, written) < 0) {
			broken(v);
			return;
		}
		if (virtq_should_notify(q))
			*irq = true;
	}
}

static enum virtq_verdict serve_tx(void *ctx, struct virtq_chain *c, int status, uint32_t *written)
{
	struct vsock *v = ctx;
	struct iov_cursor cur;
	struct vsock_hdr h;
	enum vsock_pkt_error e;

	if (status < 0)
		return VIRTQ_PUSH; /* the queue logged why */
	iov_cursor_reader(&cur, c);
	e = vsock_pkt_parse(&cur, v->cid, &h);
	switch (e) {
	case VSOCK_PKT_OK:
		vsock_mux_tx(v->mux, &h, &cur);
		break;
	case VSOCK_PKT_SHORT:
	case VSOCK_PKT_SPOOFED:
		bad_chain(v, vsock_pkt_error_str(e), c->head);
		break;
	default:
		/* Addressed but malformed: its connection (or its peer) gets a RST. */
		bad_chain(v, vsock_pkt_error_str(e), c->head);
		h.op = VSOCK_OP_INVALID;
		h.len = 0;
		vsock_mux_tx(v->mux, &h, &cur);
		break;
	}
	return VIRTQ_PUSH;
}

static const struct virtq_server tx_server = {.serve = serve_tx};

/* Lock held, loop thread: the guest's packets (if tx), then whatever is owed to it. */
static void service(struct vsock *v, bool tx)
{
	bool irq_tx = false, irq_rx = false;
	struct virtio_irq *irq = v->irq;

	v->in_service = true;
	sync_gen(v);
	if (tx && v->q[VSOCK_Q_TX] &&
	    virtq_serve(v->q[VSOCK_Q_TX], &v->tx_chain, &tx_server, v, &irq_tx) < 0)
		broken(v);
	do {
		v->rx_wanted = false;
		pump_rx(v, &irq_rx);
	} while (v->rx_wanted && v->q[VSOCK_Q_RX]);
	v->in_service = false;
	/* Raised under the lock, so that a reset cannot slip in between and see it late. */
	if (irq && irq_tx && v->q[VSOCK_Q_TX])
		virtio_irq_queue(irq, VSOCK_Q_TX);
	if (irq && irq_rx && v->q[VSOCK_Q_RX])
		virtio_irq_queue(irq, VSOCK_Q_RX);
}

/* The mux has something for the guest (loop thread). */
static void want_rx(void *ctx)
{
	struct vsock *v = ctx;

	if (v->in_service) {
		v->rx_wanted = true;
		return;
	}
	pthread_mutex_lock(&v->lock);
	service(v, false);
	pthread_mutex_unlock(&v->lock);
}

static void vsock_notify(void *dev, unsigned queue)
{
	struct vsock *v = dev;

	pthread_mutex_lock(&v->lock);
	service(v, queue == VSOCK_Q_TX);
	pthread_mutex_unlock(&v->lock);
}

/* Activate or reset happened (maybe on a vCPU thread): the loop catches up. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct vsock *v = arg;
	uint64_t n;

	(void)eventfd_drain(v->wake_fd, &n);
	pthread_mutex_lock(&v->lock);
	v->in_service = true;
	sync_gen(v);
	vsock_mux_set_active(v->mux, v->q[VSOCK_Q_RX] && v->q[VSOCK_Q_TX]);
	v->in_service = false;
	service(v, true);
	pthread_mutex_unlock(&v->lock);
}

static void wake(struct vsock *v)
{
	int ret = eventfd_signal(v->wake_fd);

	if (ret < 0 && ret != -EAGAIN)
		log_warn(v->log, "virtio-vsock: cannot wake the event loop: %s", strerror(-ret));
}

/* ---- virtio ops ---- */

static int vsock_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct vsock *v = dev;
	uint8_t cfg[VSOCK_CONFIG_SIZE];

	if (off > sizeof(cfg) || len > sizeof(cfg) - off)
		return -EINVAL;
	put_le(cfg, v->cid, 8);
	memcpy(data, cfg + off, len);
	return 0;
}

static int vsock_activate(void *dev, const struct virtio_activate *a)
{
	struct vsock *v = dev;

	if (a->nr_queues < VSOCK_NR_QUEUES || !a->queues[VSOCK_Q_RX] || !a->queues[VSOCK_Q_TX])
		return -EINVAL;
	pthread_mutex_lock(&v->lock);
	for (unsigned i = 0; i < VSOCK_NR_QUEUES; i++)
		v->q[i] = a->queues[i];
	v->irq = a->irq;
	pthread_mutex_unlock(&v->lock);
	wake(v);
	return 0;
}

static void vsock_reset(void *dev)
{
	struct vsock *v = dev;

	pthread_mutex_lock(&v->lock);
	for (unsigned i = 0; i < VSOCK_NR_QUEUES; i++)
		v->q[i] = NULL;
	v->irq = NULL;
	v->gen++;
	pthread_mutex_unlock(&v->lock);
	wake(v);
}

static int vsock_start(void *dev, struct event_base *eb)
{
	struct vsock *v = dev;
	int ret;

	if (v->wake_ev)
		return -EBUSY;
	v->wake_ev = event_new(eb, v->wake_fd, EV_READ | EV_PERSIST, on_wake, v);
	if (!v->wake_ev || event_add(v->wake_ev, NULL) < 0) {
		if (v->wake_ev)
			event_free(v->wake_ev);
		v->wake_ev = NULL;
		return -ENOMEM;
	}
	ret = vsock_mux_start(v->mux, eb);
	if (ret < 0) {
		event_free(v->wake_ev);
		v->wake_ev = NULL;
		return ret;
	}
	/* A driver may already be there (activated before the loop ran). */
	wake(v);
	return 0;
}

static void vsock_stop(void *dev)
{
	struct vsock *v = dev;

	pthread_mutex_lock(&v->lock);
	vsock_mux_stop(v->mux);
	v->rx_held = false;
	pthread_mutex_unlock(&v->lock);
	if (v->wake_ev)
		event_free(v->wake_ev);
	v->wake_ev = NULL;
}

static int vsock_fds(void *dev, struct fd_list *out)
{
	struct vsock *v = dev;
	int ret = fd_list_add(out, v->listen_fd);

	return ret ? ret : fd_list_add(out, v->wake_fd);
}

static const char *vsock_jail_dir(void *dev)
{
	return ((struct vsock *)dev)->dir;
}

/* The socket file, if it is still the one we made (a later VM may have replaced it). */
static void unlink_ours(struct vsock *v)
{
	struct stat st;

	if (v->sock_ino && lstat(v->path, &st) == 0 && st.st_dev == v->sock_dev &&
	    st.st_ino == v->sock_ino)
		unlink(v->path);
	v->sock_ino = 0;
}

static void vsock_destroy(void *dev)
{
	struct vsock *v = dev;

	vsock_stop(v);
	vsock_mux_destroy(v->mux);
	unlink_ours(v);
	close_fd(&v->listen_fd);
	close_fd(&v->wake_fd);
	virtq_chain_free(&v->rx_chain);
	virtq_chain_free(&v->tx_chain);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock",
	.policy = "vsock_device",
	.device_type = VIRTIO_ID_VSOCK,
	.nr_queues = VSOCK_NR_QUEUES,
	.queue_max_size = VSOCK_QUEUE_SIZE,
	.config_size = VSOCK_CONFIG_SIZE,
	.config_read = vsock_config_read,
	.activate = vsock_activate,
	.notify = vsock_notify,
	.reset = vsock_reset,
	.fds = vsock_fds,
	.jail_dir = vsock_jail_dir,
	.start = vsock_start,
	.stop = vsock_stop,
	.destroy = vsock_destroy,
};

unsigned virtio_vsock_nr_conns(void *dev)
{
	return vsock_mux_nr_conns(((struct vsock *)dev)->mux);
}

/* ---- the listening socket ---- */

/* PATH as an absolute path in a real directory, with room for "_<port>" in a sun_path. */
static int canonical_path(struct vsock *v, const char *uds_path)
{
	char a[PATH_MAX], b[PATH_MAX];
	const char *base;
	size_t n;

	if (!*uds_path || strlen(uds_path) >= sizeof(a)) {
		log_err(v->log, "--vsock: uds-path '%s' is empty or too long", uds_path);
		return -EINVAL;
	}
	memcpy(a, uds_path, strlen(uds_path) + 1);
	memcpy(b, uds_path, strlen(uds_path) + 1);
	base = basename(b);
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..") ||
	    uds_path[strlen(uds_path) - 1] == '/') {
		log_err(v->log, "--vsock: uds-path '%s' does not name a socket file", uds_path);
		return -EINVAL;
	}
	if (!realpath(dirname(a), v->dir)) {
		int e = errno;

		log_err(v->log, "--vsock: the directory of uds-path '%s': %s", uds_path,
			strerror(e));
		return -e;
	}
	n = (size_t)snprintf(v->path, sizeof(v->path), "%s/%s", strcmp(v->dir, "/") ? v->dir : "",
			     base);
	/* Guest connections go to PATH_<port>: the longest port has 10 digits. */
	if (n + sizeof("_4294967295") > sizeof(((struct sockaddr_un *)0)->sun_path)) {
		log_err(v->log,
			"--vsock: uds-path '%s' is too long for a UNIX socket with a port suffix "
			"(at most %zu bytes as an absolute path)",
			uds_path,
			sizeof(((struct sockaddr_un *)0)->sun_path) - sizeof("_4294967295"));
		return -ENAMETOOLONG;
	}
	return 0;
}

/* A socket file already there: refused if something listens on it, else (stale) removed. */
static int clear_stale(struct vsock *v, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, ret;

	if (lstat(v->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_err(v->log, "--vsock: uds-path %s exists and is not a socket", v->path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (ret == 0) {
		log_err(v->log, "--vsock: uds-path %s is in use by a running program", v->path);
		return -EADDRINUSE;
	}
	if (unlink(v->path) < 0 && errno != ENOENT)
		return -errno;
	log_info(v->log, "vsock: replaced the stale socket %s", v->path);
	return 0;
}

static int open_listener(struct vsock *v, const char *uds_path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int ret;

	ret = canonical_path(v, uds_path);
	if (ret < 0)
		return ret;
	memcpy(sa.sun_path, v->path, strlen(v->path) + 1);
	ret = clear_stale(v, &sa);
	if (ret < 0)
		goto err;
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->listen_fd < 0) {
		ret = -errno;
		goto err;
	}
	if (bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(v->listen_fd, LISTEN_BACKLOG) < 0 || lstat(v->path, &st) < 0) {
		ret = -errno;
		goto err;
	}
	v->sock_dev = st.st_dev;
	v->sock_ino = st.st_ino;
	return 0;
err:
	if (ret != -EEXIST && ret != -EADDRINUSE)
		log_err(v->log, "--vsock: cannot listen on uds-path %s: %s", v->path,
			strerror(-ret));
	close_fd(&v->listen_fd);
	return ret;
}

int virtio_vsock_create(uint64_t cid, const char *uds_path, const struct logger *lg,
			const struct virtio_dev_ops **ops, void **dev)
{
	struct vsock *v;
	int ret;

	if (vsock_cid_invalid(cid))
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->log = lg;
	v->cid = cid;
	v->listen_fd = v->wake_fd = -1;
	ret = -pthread_mutex_init(&v->lock, NULL);
	if (ret < 0) {
		free(v);
		return ret;
	}
	ret = virtq_chain_alloc(&v->rx_chain, VSOCK_QUEUE_SIZE);
	if (ret == 0)
		ret = virtq_chain_alloc(&v->tx_chain, VSOCK_QUEUE_SIZE);
	if (ret < 0)
		goto err;
	v->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->wake_fd < 0) {
		ret = -errno;
		goto err;
	}
	ret = open_listener(v, uds_path);
	if (ret < 0)
		goto err;
	ret = vsock_mux_create(&(struct vsock_mux_params){.guest_cid = cid,
							  .listen_fd = v->listen_fd,
							  .path = v->path,
							  .max_conns = VSOCK_MAX_CONNS,
							  .want_rx = want_rx,
							  .ctx = v,
							  .log = lg},
			       &v->mux);
	if (ret < 0)
		goto err;
	*ops = &vsock_ops;
	*dev = v;
	return 0;
err:
	unlink_ours(v);
	close_fd(&v->listen_fd);
	close_fd(&v->wake_fd);
	virtq_chain_free(&v->rx_chain);
	virtq_chain_free(&v->tx_chain);
	pthread_mutex_destroy(&v->lock);
	free(v);
	return ret;
}
