#include "legacy/serial_backend.h"

#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <event2/event.h>

#include "core/device.h"
#include "core/log.h"

/* ---- Output ---- */

static void drop(struct serial_backend *b, unsigned n)
{
	b->dropped += n;
	if (!b->drop_logged) {
		b->drop_logged = true;
		log_warn(b->log, "serial%u: output is not draining; dropping guest output", b->num);
	}
}

/* A write error other than EAGAIN will not go away; say so once and discard. */
static void write_failed(struct serial_backend *b, int err, unsigned n)
{
	if (!b->write_err_logged) {
		b->write_err_logged = true;
		log_warn(b->log, "serial%u: writing guest output failed: %s", b->num,
			 strerror(err));
	}
	b->dropped += n;
}

/* Writes pending output; returns true when some is still pending (the fd would block). */
static bool flush(struct serial_backend *b)
{
	while (b->pend_len) {
		unsigned chunk = MIN(b->pend_len, SERIAL_BACKEND_PENDING - b->pend_head);
		ssize_t n = write(b->out_fd, b->pend + b->pend_head, chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) {
			write_failed(b, n < 0 ? errno : EIO, b->pend_len);
			b->pend_len = 0;
			break;
		}
		b->pend_head = (b->pend_head + (unsigned)n) % SERIAL_BACKEND_PENDING;
		b->pend_len -= (unsigned)n;
	}
	b->pend_head = 0;
	return false;
}

/* One write per byte: the guest never sees THR empty while its byte sits in a buffer. */
static bool put_fd(struct serial_backend *b, uint8_t byte)
{
	/* Bytes already waiting go first, or the output would be reordered. */
	if (b->pend_len && flush(b)) {
		if (b->pend_len == SERIAL_BACKEND_PENDING) {
			drop(b, 1);
			return true;
		}
		b->pend[(b->pend_head + b->pend_len++) % SERIAL_BACKEND_PENDING] = byte;
		return true;
	}
	for (;;) {
		ssize_t n = write(b->out_fd, &byte, 1);

		if (n == 1)
			return false;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			b->pend_head = 0;
			b->pend[0] = byte;
			b->pend_len = 1;
			return true;
		}
		write_failed(b, n < 0 ? errno : EIO, 1);
		return false;
	}
}

/* Guest text goes into the host log: anything unprintable is escaped, never passed raw. */
static void emit_line(struct serial_backend *b)
{
	char out[SERIAL_BACKEND_LINE * 4 + 1];
	size_t o = 0;

	for (unsigned i = 0; i < b->line_len; i++) {
		unsigned char c = (unsigned char)b->line[i];

		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
	}
	out[o] = '\0';
	log_info(b->log, "serial%u: %s", b->num, out);
	b->line_len = 0;
}

static void put_line(struct serial_backend *b, uint8_t byte)
{
	if (byte == '\n') {
		emit_line(b);
		return;
	}
	if (byte == '\r')
		return;
	b->line[b->line_len++] = (char)byte;
	if (b->line_len == SERIAL_BACKEND_LINE)
		emit_line(b);
}

static void wake(struct serial_backend *b)
{
	int ret = eventfd_signal(b->wake_fd);

	if (ret < 0 && ret != -EAGAIN && !b->wake_err_logged) {
		b->wake_err_logged = true;
		log_warn(b->log, "serial%u: cannot wake the event loop: %s", b->num,
			 strerror(-ret));
	}
}

void serial_backend_put(struct serial_backend *b, uint8_t byte)
{
	if (b->type == SERIAL_SYSLOG)
		put_line(b, byte);
	else if (b->out_fd >= 0 && put_fd(b, byte) && !b->want_tx && !b->out_armed) {
		b->want_tx = true;
		wake(b);
	}
}

/* Loop thread, lock held: keeps an EV_WRITE armed while output is pending. */
static void out_arm(struct serial_backend *b)
{
	b->out_armed = flush(b) && b->out_ev && event_add(b->out_ev, NULL) == 0;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct serial_backend *b = arg;

	pthread_mutex_lock(b->lock);
	out_arm(b);
	pthread_mutex_unlock(b->lock);
}

/* ---- Input ---- */

/* Loop thread, lock held. A non-pollable fd (regular file, /dev/null) is always readable. */
static void in_arm(struct serial_backend *b)
{
	if (!b->in_ev || b->in_eof)
		return;
	if (b->in_pollable) {
		if (!b->in_armed && event_add(b->in_ev, NULL) < 0) {
			log_warn(b->log, "serial%u: cannot watch input; input stops", b->num);
			b->in_eof = true;
			return;
		}
	} else {
		event_active(b->in_ev, EV_READ, 0);
	}
	b->in_armed = true;
}

static void in_disarm(struct serial_backend *b)
{
	if (b->in_ev && b->in_armed)
		event_del(b->in_ev);
	b->in_armed = false;
}

/* Loop thread, lock held: held bytes go first so input stays in order. */
static void deliver(struct serial_backend *b, const uint8_t *buf, unsigned len)
{
	unsigned took;

	if (b->held_len) {
		took = serial_uart_receive(b->uart, b->held, b->held_len);
		memmove(b->held, b->held + took, b->held_len - took);
		b->held_len -= took;
	}
	if (len) {
		took = b->held_len ? 0 : serial_uart_receive(b->uart, buf, len);
		memcpy(b->held + b->held_len, buf + took, len - took);
		b->held_len += len - took;
	} else if (!b->held_len) {
		serial_uart_receive(b->uart, NULL, 0); /* a full FIFO then owes us rx_room */
	}
	if (b->held_len || serial_uart_rx_room(b->uart) == 0)
		in_disarm(b);
	else
		in_arm(b);
}

static void on_input(evutil_socket_t fd, short what, void *arg)
{
	struct serial_backend *b = arg;
	uint8_t buf[SERIAL_RX_FIFO];
	unsigned room;
	ssize_t n;
	int err;

	pthread_mutex_lock(b->lock);
	room = b->held_len ? 0 : serial_uart_rx_room(b->uart);
	if (room == 0)
		deliver(b, buf, 0);
	pthread_mutex_unlock(b->lock);
	if (room == 0)
		return;
	/* Read without the lock: vCPUs must never wait on a host read. */
	do {
		n = read(b->in_fd, buf, room);
	} while (n < 0 && errno == EINTR);
	err = errno;
	if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK) && b->in_pollable)
		return;
	pthread_mutex_lock(b->lock);
	if (n > 0) {
		deliver(b, buf, (unsigned)n);
	} else {
		if (n < 0)
			log_warn(b->log, "serial%u: reading input failed: %s; input stops", b->num,
				 strerror(err));
		else
			log_debug(b->log, "serial%u: end of input", b->num);
		in_disarm(b);
		b->in_eof = true;
	}
	pthread_mutex_unlock(b->lock);
}

void serial_backend_rx_room(struct serial_backend *b)
{
	b->want_rx = true;
	wake(b);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct serial_backend *b = arg;
	uint64_t count;

	(void)eventfd_drain(b->wake_fd, &count);
	pthread_mutex_lock(b->lock);
	if (b->want_rx) {
		b->want_rx = false;
		deliver(b, NULL, 0);
	}
	if (b->want_tx) {
		b->want_tx = false;
		if (!b->out_armed)
			out_arm(b);
	}
	pthread_mutex_unlock(b->lock);
}

/* ---- Lifecycle ---- */

static void free_event(struct event **ev)
{
	if (*ev)
		event_free(*ev);
	*ev = NULL;
}

void serial_backend_stop(struct serial_backend *b)
{
	free_event(&b->in_ev);
	free_event(&b->out_ev);
	free_event(&b->wake_ev);
	b->in_armed = false;
	b->out_armed = false;
}

int serial_backend_start(struct serial_backend *b, struct event_base *eb)
{
	b->wake_ev = event_new(eb, b->wake_fd, EV_READ | EV_PERSIST, on_wake, b);
	if (!b->wake_ev || event_add(b->wake_ev, NULL) < 0)
		goto err;
	if (b->out_fd >= 0) {
		b->out_ev = event_new(eb, b->out_fd, EV_WRITE, on_writable, b);
		if (!b->out_ev)
			goto err;
	}
	if (b->in_fd >= 0) {
		b->in_ev = b->in_pollable
				   ? event_new(eb, b->in_fd, EV_READ | EV_PERSIST, on_input, b)
				   : event_new(eb, -1, 0, on_input, b);
		if (!b->in_ev)
			goto err;
	}
	pthread_mutex_lock(b->lock);
	in_arm(b);
	if (!b->out_armed)
		out_arm(b);
	pthread_mutex_unlock(b->lock);
	return 0;
err:
	serial_backend_stop(b);
	return -ENOMEM;
}

int serial_backend_fds(const struct serial_backend *b, struct fd_list *out)
{
	int ret = fd_list_add(out, b->in_fd);

	if (ret == 0)
		ret = fd_list_add(out, b->out_fd);
	if (ret == 0)
		ret = fd_list_add(out, b->wake_fd);
	return ret;
}

void serial_backend_destroy(struct serial_backend *b)
{
	serial_backend_stop(b);
	if (b->type == SERIAL_SYSLOG && b->line_len)
		emit_line(b);
	if (b->out_fd >= 0 && flush(b) && b->pend_len)
		drop(b, b->pend_len);
	if (b->dropped)
		log_warn(b->log, "serial%u: %llu bytes of guest output were lost", b->num,
			 (unsigned long long)b->dropped);
	close_fd(&b->in_fd);
	close_fd(&b->out_fd);
	close_fd(&b->wake_fd);
}

int serial_backend_init(struct serial_backend *b, const struct serial_params *p,
			struct serial_uart *u, pthread_mutex_t *lock)
{
	bool uses_fd = p->type == SERIAL_STDOUT || p->type == SERIAL_FILE;

	if (p->type != SERIAL_SINK && p->type != SERIAL_SYSLOG && !uses_fd)
		return -EINVAL;
	if (uses_fd && p->out_fd < 0)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->wake_fd < 0)
		return -errno;
	b->type = p->type;
	b->num = p->num;
	b->log = p->log;
	b->lock = lock;
	b->uart = u;
	b->in_fd = p->in_fd;
	b->in_pollable = p->in_fd < 0 || fd_pollable(p->in_fd);
	b->out_fd = p->out_fd;
	if (!uses_fd)
		close_fd(&b->out_fd);
	return 0;
}
