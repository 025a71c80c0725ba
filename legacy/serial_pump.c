#include "legacy/serial_pump.h"
#include "core/device.h"
#include "core/log.h"
#include "legacy/serial.h"

#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads and writes one direction does per loop callback before giving the other its turn. */
#define PUMP_ROUNDS 16

/* One direction: bytes read from `in` wait in buf until `out` takes them. */
struct pump_dir {
	struct serial_pump *pump;
	const char *what; /* "output" (to the host) or "input" (to the guest) */
	int in, out;
	bool in_pollable, out_pollable;
	bool close_out_at_eof; /* the RX pipe: its reader, the UART, must see the end */
	struct event *in_ev, *out_ev, *again_ev;
	bool in_armed, eof, err_logged;
	unsigned head, len;
	uint8_t buf[SERIAL_PUMP_BUF];
};

struct serial_pump {
	struct device dev;
	const struct logger *log;
	unsigned num;
	struct pump_dir tx, rx;
};

static const struct dev_ops pump_ops;

static bool dir_used(const struct pump_dir *d)
{
	return d->in >= 0 && d->out >= 0;
}

static void failed(struct pump_dir *d, const char *op, int err)
{
	if (d->err_logged)
		return;
	d->err_logged = true;
	log_warn(d->pump->log, "serial%u: %s of guest %s failed: %s", d->pump->num, op, d->what,
		 strerror(err));
}

static void watch_input(struct pump_dir *d, bool on)
{
	if (!d->in_ev || on == d->in_armed)
		return;
	if (on && event_add(d->in_ev, NULL) < 0) {
		failed(d, "watching the source", ENOMEM);
		d->eof = true;
		return;
	}
	if (!on)
		event_del(d->in_ev);
	d->in_armed = on;
}

static void at_eof(struct pump_dir *d)
{
	d->eof = true;
	watch_input(d, false);
	if (d->close_out_at_eof)
		close_fd(&d->out);
}

/* Writes what is buffered; false when `out` would block (EV_WRITE is then armed). */
static bool drain(struct pump_dir *d)
{
	while (d->len) {
		ssize_t n = write(d->out, d->buf + d->head, d->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && d->out_pollable &&
		    d->out_ev && event_add(d->out_ev, NULL) == 0)
			return false;
		if (n <= 0) {
			/* The reader is gone for good: what it would have read is dropped. */
			failed(d, "writing", n < 0 ? errno : EIO);
			d->len = 0;
			if (d->close_out_at_eof)
				at_eof(d);
			break;
		}
		d->head += (unsigned)n;
		d->len -= (unsigned)n;
	}
	d->head = 0;
	return true;
}

/*
 * Moves bytes until the source has none or the destination takes none. A pollable source
 * is read once per readiness only, since it may be a blocking fd (stdin is not ours to
 * change): `readable` says epoll just reported it.
 */
static void pump(struct pump_dir *d, bool readable)
{
	for (unsigned round = 0; round < PUMP_ROUNDS; round++) {
		ssize_t n;

		if (!drain(d)) {
			/* Stop reading until the writer drains: the pipe pushes back. */
			watch_input(d, false);
			return;
		}
		if (d->eof || d->out < 0)
			return;
		if (d->in_pollable && !readable) {
			watch_input(d, true);
			return;
		}
		readable = false;
		n = read(d->in, d->buf, sizeof(d->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && d->in_pollable) {
			watch_input(d, true);
			return;
		}
		if (n <= 0) {
			if (n < 0)
				failed(d, "reading", errno);
			at_eof(d);
			return;
		}
		d->len = (unsigned)n;
	}
	/* More may be waiting: continue on the next loop iteration, after other events. */
	event_active(d->again_ev, 0, 0);
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct pump_dir *d = arg;

	/* EV_READ comes from in_ev only; out_ev and again_ev bring no news about `in`. */
	pump(d, fd >= 0 && fd == d->in && (what & EV_READ));
}

static int dir_start(struct pump_dir *d, struct event_base *eb)
{
	if (!dir_used(d))
		return 0;
	d->again_ev = event_new(eb, -1, 0, on_event, d);
	if (d->in_pollable)
		d->in_ev = event_new(eb, d->in, EV_READ | EV_PERSIST, on_event, d);
	if (d->out_pollable)
		d->out_ev = event_new(eb, d->out, EV_WRITE, on_event, d);
	if (!d->again_ev || (d->in_pollable && !d->in_ev) || (d->out_pollable && !d->out_ev))
		return -ENOMEM;
	/* Arms in_ev, or reads a source that is not pollable (a regular file, /dev/null). */
	event_active(d->again_ev, 0, 0);
	return 0;
}

static void free_event(struct event **ev)
{
	if (*ev)
		event_free(*ev);
	*ev = NULL;
}

static void dir_stop(struct pump_dir *d)
{
	free_event(&d->in_ev);
	free_event(&d->out_ev);
	free_event(&d->again_ev);
	d->in_armed = false;
}

static void pump_stop(void *dev)
{
	struct serial_pump *p = dev;

	dir_stop(&p->tx);
	dir_stop(&p->rx);
	/*
	 * The VM is ending and its vCPUs have stopped: whatever the guest sent is in the TX
	 * pipe. Copy it out before leaving (the pipe is bounded, and the VMM kills a device
	 * process that takes too long).
	 */
	if (!dir_used(&p->tx))
		return;
	while (drain(&p->tx) && !p->tx.eof) {
		ssize_t n = read(p->tx.in, p->tx.buf, sizeof(p->tx.buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p->tx.len = (unsigned)n;
	}
}

static int pump_start(void *dev, struct event_base *eb)
{
	struct serial_pump *p = dev;
	int ret = dir_start(&p->tx, eb);

	if (ret == 0)
		ret = dir_start(&p->rx, eb);
	if (ret < 0)
		pump_stop(p);
	return ret;
}

static int pump_io(void *dev, unsigned region, uint64_t off, void *data, uint32_t len,
		   bool is_write)
{
	/* The pump has no registers; the UART in the main process has them. */
	return -ENODEV;
}

static int pump_fds(void *dev, struct fd_list *out)
{
	struct serial_pump *p = dev;
	int ret = fd_list_add(out, p->tx.in);

	if (ret == 0)
		ret = fd_list_add(out, p->tx.out);
	if (ret == 0)
		ret = fd_list_add(out, p->rx.in);
	if (ret == 0)
		ret = fd_list_add(out, p->rx.out);
	return ret;
}

static void close_all(struct serial_pump *p)
{
	close_fd(&p->tx.in);
	close_fd(&p->tx.out);
	close_fd(&p->rx.in);
	close_fd(&p->rx.out);
}

/*
 * In the main process, once the pump runs in its own: the pipes' far ends must close when
 * the pump does (so a dead pump is an error to the UART, never a pipe that fills forever),
 * and the host files are the pump's business alone.
 */
static void pump_forked(void *dev)
{
	close_all(dev);
}

static void pump_destroy(void *dev)
{
	struct serial_pump *p = dev;

	dir_stop(&p->tx);
	dir_stop(&p->rx);
	close_all(p);
	free(p);
}

static const struct dev_ops pump_ops = {
	.io = pump_io,
	.start = pump_start,
	.stop = pump_stop,
	.destroy = pump_destroy,
	.fds = pump_fds,
	.forked = pump_forked,
};

static void dir_init(struct serial_pump *p, struct pump_dir *d, const char *what, int in, int out)
{
	d->pump = p;
	d->what = what;
	d->in = in;
	d->out = out;
	if (!dir_used(d))
		return;
	d->in_pollable = fd_pollable(in);
	d->out_pollable = fd_pollable(out);
}

int serial_pump_create(const struct serial_pump_params *p, struct device **out)
{
	struct serial_pump *s;

	if (!p || !out || p->num < 1 || p->num > 4 || (p->tx_in < 0) != (p->out_fd < 0) ||
	    (p->in_fd < 0) != (p->rx_out < 0))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->log = p->log;
	s->num = p->num;
	dir_init(s, &s->tx, "output", p->tx_in, p->out_fd);
	dir_init(s, &s->rx, "input", p->in_fd, p->rx_out);
	s->rx.close_out_at_eof = true;
	snprintf(s->dev.name, sizeof(s->dev.name), "serial%u", p->num);
	s->dev.policy = "serial_device";
	s->dev.sched_batch = true;
	s->dev.ops = &pump_ops;
	s->dev.priv = s;
	*out = &s->dev;
	return 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int serial_pump_wrap(struct serial_params *p, struct device **out)
{
	int tx[2] = {-1, -1}, rx[2] = {-1, -1};
	struct serial_pump_params pp = {
		.num = p->num, .tx_in = -1, .out_fd = -1, .in_fd = -1, .rx_out = -1, .log = p->log};
	int ret = 0;

	*out = NULL;
	if (p->out_fd < 0 && p->in_fd < 0)
		return 0;
	if ((p->out_fd >= 0 && pipe2(tx, O_CLOEXEC) < 0) ||
	    (p->in_fd >= 0 && pipe2(rx, O_CLOEXEC) < 0)) {
		ret = -errno;
		goto err;
	}
	/*
	 * The UART writes its TX end blocking: when the host's reader stalls, the guest waits
	 * for it, as it does writing to a blocking stdout unsandboxed, and loses nothing.
	 */
	if ((tx[0] >= 0 && (ret = set_nonblock(tx[0])) < 0) ||
	    (rx[0] >= 0 && (ret = set_nonblock(rx[0])) < 0) ||
	    (rx[1] >= 0 && (ret = set_nonblock(rx[1])) < 0))
		goto err;
	if (p->out_fd >= 0) {
		pp.tx_in = tx[0];
		pp.out_fd = p->out_fd;
	}
	if (p->in_fd >= 0) {
		pp.in_fd = p->in_fd;
		pp.rx_out = rx[1];
	}
	ret = serial_pump_create(&pp, out);
	if (ret < 0)
		goto err;
	p->out_fd = tx[1];
	p->in_fd = rx[0];
	return 0;
err:
	close_fd(&tx[0]);
	close_fd(&tx[1]);
	close_fd(&rx[0]);
	close_fd(&rx[1]);
	return ret;
}
