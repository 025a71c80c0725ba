/*
 * Threads: activate and reset may run on vCPU threads (unsandboxed): they change the queue
 * pointers under the lock and wake the loop through an eventfd; the loop thread does all the
 * rest (libevent is not used from any other thread).
 */
#include "virtio/console.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <event2/event.h>
#include <linux/virtio_ids.h>

#include "core/iov.h"
#include "core/log.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"

#define Q_RX	  0 /* receiveq(port0): host to guest */
#define Q_TX	  1 /* transmitq(port0): guest to host */
#define NR_QUEUES 2

struct console {
	pthread_mutex_t lock;
	const struct logger *log;
	unsigned num;
	enum virtio_console_out out;
	int out_fd, in_fd, wake_fd;
	bool in_pollable;
	struct event *in_ev, *out_ev, *wake_ev;

	/* Under the lock: activate and reset (any thread). */
	struct virtq *q[NR_QUEUES];
	struct virtio_irq *irq;
	unsigned gen;

	/* Loop thread, under the lock. */
	unsigned seen_gen;
	bool in_armed, out_armed;
	bool in_ready; /* input may be readable: read when the guest has a buffer */
	bool in_eof;
	bool rx_held, tx_held; /* a popped chain not yet given back */
	size_t tx_done;	       /* bytes of the held output chain already written */
	struct virtq_chain rx_chain, tx_chain;
	bool write_err_logged;
	unsigned line_len;
	char line[VIRTIO_CONSOLE_LINE];
};

/* ---- output ---- */

/* Guest text goes into the host log escaped, never raw. */
static void emit_line(struct console *c)
{
	char out[VIRTIO_CONSOLE_LINE * 4 + 1];
	size_t o = 0;

	for (unsigned i = 0; i < c->line_len; i++) {
		unsigned char ch = (unsigned char)c->line[i];

		if (ch >= 0x20 && ch < 0x7f)
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", ch);
	}
	out[o] = '\0';
	log_info(c->log, "virtio-console%u: %s", c->num, out);
	c->line_len = 0;
}

static void to_syslog(struct console *c, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			emit_line(c);
			continue;
		}
		if (p[i] == '\r')
			continue;
		c->line[c->line_len++] = (char)p[i];
		if (c->line_len == sizeof(c->line))
			emit_line(c);
	}
}

/*
 * Up to len bytes at the cursor as at most ARRAY_SIZE(v) iovecs, without moving it: fewer
 * bytes when the buffers are more fragmented than that. Returns the bytes described.
 */
static size_t peek_iov(const struct iov_cursor *cur, size_t len, struct iovec *v, unsigned max,
		       unsigned *nr)
{
	len = MIN(len, iov_remaining(cur));
	while (len) {
		struct iov_cursor t = *cur;

		if (iov_take(&t, len, v, max, nr) == 0)
			return len;
		len /= 2;
	}
	*nr = 0;
	return 0;
}

/*
 * Writes the held output chain from tx_done on. True when all of it is out (or dropped: an
 * fd that fails for good loses the output, said once); false when the fd would block.
 */
static bool write_chain(struct console *c)
{
	struct iov_cursor cur;
	struct iovec v[64];
	unsigned nr;

	iov_cursor_reader(&cur, &c->tx_chain);
	if (iov_skip(&cur, c->tx_done) < 0)
		return true;
	while (iov_remaining(&cur)) {
		size_t want = peek_iov(&cur, iov_remaining(&cur), v, ARRAY_SIZE(v), &nr);
		ssize_t n = (ssize_t)want;

		if (c->out == VIRTIO_CONSOLE_SYSLOG) {
			for (unsigned i = 0; i < nr; i++)
				to_syslog(c, v[i].iov_base, v[i].iov_len);
		} else if (c->out == VIRTIO_CONSOLE_FD) {
			n = writev(c->out_fd, v, (int)nr);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return false;
			if (n <= 0) {
				if (!c->write_err_logged)
					log_warn(c->log,
						 "virtio-console%u: writing output failed: %s",
						 c->num, n < 0 ? strerror(errno) : "end of file");
				c->write_err_logged = true;
				return true;
			}
		} /* else a sink: dropped */
		if (iov_skip(&cur, (size_t)n) < 0)
			return true;
		c->tx_done += (size_t)n;
	}
	return true;
}

static enum virtq_verdict serve_tx(void *ctx, struct virtq_chain *ch, int status, uint32_t *written)
{
	struct console *c = ctx;

	if (status < 0)
		return VIRTQ_PUSH;
	c->tx_done = 0;
	if (write_chain(c))
		return VIRTQ_PUSH;
	c->tx_held = true; /* the fd is full: this chain waits for it, and the queue too */
	return VIRTQ_HOLD;
}

static bool tx_between(void *ctx, bool idle)
{
	return !((struct console *)ctx)->tx_held;
}

static const struct virtq_server tx_server = {.serve = serve_tx, .between = tx_between};

static void arm(struct event *ev, bool *armed, bool on)
{
	if (!ev || on == *armed)
		return;
	if (on)
		*armed = event_add(ev, NULL) == 0;
	else {
		event_del(ev);
		*armed = false;
	}
}

/* Lock held, loop thread. */
static void do_tx(struct console *c, bool *irq)
{
	struct virtq *q = c->q[Q_TX];

	if (!q)
		return;
	if (c->tx_held) {
		if (!write_chain(c)) {
			arm(c->out_ev, &c->out_armed, true);
			return;
		}
		c->tx_held = false;
		if (virtq_push(q, c->tx_chain.head, 0) < 0)
			goto broken;
		*irq |= virtq_should_notify(q);
	}
	/* with `between`, virtq_serve leaves the interrupt decision to us */
	if (virtq_serve(q, &c->tx_chain, &tx_server, c, NULL) < 0)
		goto broken;
	*irq |= virtq_should_notify(q);
	arm(c->out_ev, &c->out_armed, c->tx_held);
	return;
broken:
	c->q[Q_TX] = c->q[Q_RX] = NULL;
	virtio_irq_needs_reset(c->irq);
}

/* ---- input ---- */

static void update_input(struct console *c)
{
	arm(c->in_ev, &c->in_armed, c->in_pollable && c->q[Q_RX] && !c->in_eof && !c->in_ready);
}

/* Lock held, loop thread: input that is there goes into the guest's buffers. */
static void do_rx(struct console *c, bool *irq)
{
	struct virtq *q = c->q[Q_RX];
	struct iov_cursor cur;
	struct iovec v[64];
	unsigned nr;
	ssize_t n;
	int ret;

	while (q && c->in_ready && !c->in_eof) {
		if (!c->rx_held) {
			ret = virtq_pop(q, &c->rx_chain);
			if (ret == -ENOENT) {
				if (virtq_enable_notify(q))
					continue;
				break; /* input waits in the fd until the guest adds a buffer */
			}
			if (ret == -EIO)
				goto broken;
			if (ret < 0 || !c->rx_chain.in_bytes) {
				if (virtq_push(q, c->rx_chain.head, 0) < 0)
					goto broken;
				continue;
			}
			c->rx_held = true;
		}
		iov_cursor_writer(&cur, &c->rx_chain);
		peek_iov(&cur, iov_remaining(&cur), v, ARRAY_SIZE(v), &nr);
		do {
			n = readv(c->in_fd, v, (int)nr);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->in_ready = false;
			break;
		}
		if (n <= 0) {
			if (n < 0)
				log_warn(c->log,
					 "virtio-console%u: reading input failed: %s; input stops",
					 c->num, strerror(errno));
			c->in_eof = true;
			break;
		}
		c->rx_held = false;
		/*
		 * One read per readiness: stdin may be a blocking fd (a pipe, a terminal), and a
		 * second read would block the loop. A file never blocks: read on while there is
		 * room.
		 */
		c->in_ready = !c->in_pollable;
		if (virtq_push(q, c->rx_chain.head, (uint32_t)n) < 0)
			goto broken;
		*irq |= virtq_should_notify(q);
	}
	update_input(c);
	return;
broken:
	c->q[Q_TX] = c->q[Q_RX] = NULL;
	virtio_irq_needs_reset(c->irq);
}

/* ---- the loop ---- */

/* Lock held, loop thread. */
static void service(struct console *c)
{
	bool irq_rx = false, irq_tx = false;

	if (c->seen_gen != c->gen) {
		/* A reset: chains held from the old rings are gone with them. */
		c->seen_gen = c->gen;
		c->rx_held = c->tx_held = false;
	}
	do_tx(c, &irq_tx);
	do_rx(c, &irq_rx);
	update_input(c);
	if (!c->q[Q_TX])
		arm(c->out_ev, &c->out_armed, false);
	if (irq_tx && c->q[Q_TX])
		virtio_irq_queue(c->irq, Q_TX);
	if (irq_rx && c->q[Q_RX])
		virtio_irq_queue(c->irq, Q_RX);
}

static void on_input(evutil_socket_t fd, short what, void *arg)
{
	struct console *c = arg;

	pthread_mutex_lock(&c->lock);
	c->in_ready = true;
	service(c);
	pthread_mutex_unlock(&c->lock);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct console *c = arg;

	pthread_mutex_lock(&c->lock);
	c->out_armed = false; /* not persistent */
	service(c);
	pthread_mutex_unlock(&c->lock);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct console *c = arg;
	uint64_t n;

	(void)eventfd_drain(c->wake_fd, &n);
	pthread_mutex_lock(&c->lock);
	service(c);
	pthread_mutex_unlock(&c->lock);
}

static void con_notify(void *dev, unsigned queue)
{
	struct console *c = dev;

	pthread_mutex_lock(&c->lock);
	service(c);
	pthread_mutex_unlock(&c->lock);
}

/* ---- virtio ops ---- */

static int con_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
	uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE] = {0};

	if (off > sizeof(cfg) || len > sizeof(cfg) - off)
		return -EINVAL;
	/* cols and rows need F_SIZE, emerg_wr F_EMERG_WRITE; max_nr_ports as crosvm: 1. */
	put_le(cfg + 4, 1, 4);
	memcpy(data, cfg + off, len);
	return 0;
}

static void wake(struct console *c)
{
	int ret = eventfd_signal(c->wake_fd);

	if (ret < 0 && ret != -EAGAIN)
		log_warn(c->log, "virtio-console%u: cannot wake the event loop: %s", c->num,
			 strerror(-ret));
}

static int con_activate(void *dev, const struct virtio_activate *a)
{
	struct console *c = dev;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < NR_QUEUES; i++)
		c->q[i] = i < a->nr_queues ? a->queues[i] : NULL;
	c->irq = a->irq;
	pthread_mutex_unlock(&c->lock);
	wake(c);
	return 0;
}

static void con_reset(void *dev)
{
	struct console *c = dev;

	pthread_mutex_lock(&c->lock);
	c->q[Q_RX] = c->q[Q_TX] = NULL;
	c->irq = NULL;
	c->gen++;
	pthread_mutex_unlock(&c->lock);
	wake(c);
}

static void free_event(struct event **ev)
{
	if (*ev)
		event_free(*ev);
	*ev = NULL;
}

static void con_stop(void *dev)
{
	struct console *c = dev;

	free_event(&c->in_ev);
	free_event(&c->out_ev);
	free_event(&c->wake_ev);
	c->in_armed = c->out_armed = false;
}

static int con_start(void *dev, struct event_base *eb)
{
	struct console *c = dev;

	c->wake_ev = event_new(eb, c->wake_fd, EV_READ | EV_PERSIST, on_wake, c);
	if (!c->wake_ev || event_add(c->wake_ev, NULL) < 0)
		goto err;
	if (c->out_fd >= 0) {
		c->out_ev = event_new(eb, c->out_fd, EV_WRITE, on_writable, c);
		if (!c->out_ev)
			goto err;
	}
	if (c->in_fd >= 0 && c->in_pollable) {
		c->in_ev = event_new(eb, c->in_fd, EV_READ | EV_PERSIST, on_input, c);
		if (!c->in_ev)
			goto err;
	}
	/* An input that never blocks (a file, /dev/null) is read whenever there is room. */
	c->in_ready = c->in_fd >= 0 && !c->in_pollable;
	c->in_eof = c->in_fd < 0;
	wake(c);
	return 0;
err:
	con_stop(c);
	return -ENOMEM;
}

static int con_fds(void *dev, struct fd_list *out)
{
	struct console *c = dev;
	int ret = fd_list_add(out, c->in_fd);

	if (ret == 0)
		ret = fd_list_add(out, c->out_fd);
	return ret ? ret : fd_list_add(out, c->wake_fd);
}

static void con_free(struct console *c)
{
	close_fd(&c->in_fd);
	close_fd(&c->out_fd);
	close_fd(&c->wake_fd);
	virtq_chain_free(&c->rx_chain);
	virtq_chain_free(&c->tx_chain);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void con_destroy(void *dev)
{
	struct console *c = dev;

	con_stop(c);
	if (c->line_len)
		emit_line(c);
	con_free(c);
}

static const struct virtio_dev_ops console_ops = {
	.name = "virtio-console",
	.policy = "console_device",
	.device_type = VIRTIO_ID_CONSOLE,
	.nr_queues = NR_QUEUES,
	.queue_max_size = VIRTIO_CONSOLE_QUEUE_SIZE,
	.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
	.config_read = con_config_read,
	.activate = con_activate,
	.notify = con_notify,
	.reset = con_reset,
	.fds = con_fds,
	.start = con_start,
	.stop = con_stop,
	.destroy = con_destroy,
};

int virtio_console_create(const struct virtio_console_params *p, const struct virtio_dev_ops **ops,
			  void **dev)
{
	struct console *c;
	int ret;

	if (p->out == VIRTIO_CONSOLE_FD && p->out_fd < 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->out_fd = c->in_fd = c->wake_fd = -1;
	ret = -pthread_mutex_init(&c->lock, NULL);
	if (ret < 0) {
		free(c);
		return ret;
	}
	ret = virtq_chain_alloc(&c->rx_chain, VIRTIO_CONSOLE_QUEUE_SIZE);
	if (ret == 0)
		ret = virtq_chain_alloc(&c->tx_chain, VIRTIO_CONSOLE_QUEUE_SIZE);
	if (ret == 0) {
		c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->wake_fd < 0)
			ret = -errno;
	}
	if (ret < 0) {
		con_free(c);
		return ret;
	}
	c->log = p->log;
	c->num = p->num;
	c->out = p->out;
	/* Taken last: nothing fails after this. */
	c->out_fd = p->out == VIRTIO_CONSOLE_FD ? p->out_fd : -1;
	if (p->out != VIRTIO_CONSOLE_FD && p->out_fd >= 0)
		close(p->out_fd);
	c->in_fd = p->in_fd;
	c->in_pollable = p->in_fd < 0 || fd_pollable(p->in_fd);
	*ops = &console_ops;
	*dev = c;
	return 0;
}
