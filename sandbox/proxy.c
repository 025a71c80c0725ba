#include "sandbox/proxy.h"
#include "core/log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- parent side ---- */

int proxy_init(struct proxy *p, struct device *dev, int io_sock, int ctl_sock,
	       const atomic_bool *cancel, const struct logger *lg)
{
	memset(p, 0, sizeof(*p));
	p->dev = dev;
	p->io_sock = io_sock;
	p->ctl_sock = ctl_sock;
	p->cancel = cancel;
	p->log = lg;
	p->sigsys_nr = -1;
	p->next_id = 1;
	return -pthread_mutex_init(&p->lock, NULL);
}

/* Sends one message; a signal (a vCPU kick) must not cut a request in half. */
static int send_msg(int fd, const void *m, size_t len)
{
	for (;;) {
		ssize_t n = send(fd, m, len, MSG_NOSIGNAL);

		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

int proxy_io(struct proxy *p, unsigned region, uint64_t off, void *data, uint32_t len,
	     bool is_write)
{
	struct proxy_msg m = {.op = is_write ? PROXY_IO_WRITE : PROXY_IO_READ,
			      .region = region,
			      .off = off,
			      .len = len};
	int ret;

	if (len > sizeof(m.data))
		return -EINVAL;
	if (is_write)
		memcpy(m.data, data, len);
	pthread_mutex_lock(&p->lock);
	if (p->dead) {
		ret = -EPIPE;
		goto out;
	}
	ret = send_msg(p->io_sock, &m, sizeof(m));
	if (ret < 0 || is_write)
		goto out;
	for (;;) {
		ssize_t n = recv(p->io_sock, &m, sizeof(m), 0);

		if (n == (ssize_t)sizeof(m) && m.op == PROXY_IO_READ) {
			memcpy(data, m.data, len);
			ret = m.val;
			break;
		}
		if (n < 0 && errno == EINTR && !atomic_load(p->cancel))
			continue;
		ret = n < 0 ? -errno : -EPIPE;
		/* The stream is out of step (or the child is gone): stop talking to it. */
		p->dead = true;
		break;
	}
out:
	pthread_mutex_unlock(&p->lock);
	if (ret < 0 && !is_write)
		memset(data, 0xff, len);
	return ret;
}

void proxy_msix_state(struct proxy *p, bool enabled)
{
	struct proxy_msg m = {.op = PROXY_MSIX_STATE, .val = enabled};

	pthread_mutex_lock(&p->lock);
	if (!p->dead)
		send_msg(p->io_sock, &m, sizeof(m));
	pthread_mutex_unlock(&p->lock);
}

/* Commands run on the main loop thread only, so the pending table needs no lock. */
int proxy_command(struct proxy *p, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx)
{
	struct proxy_pending *slot = NULL;
	struct proxy_ctl m = {.kind = PROXY_CTL_CMD};
	int ret;

	for (unsigned i = 0; i < PROXY_MAX_PENDING; i++)
		if (!p->pending[i].done)
			slot = &p->pending[i];
	if (!slot)
		return -EBUSY;
	m.id = p->next_id++;
	m.u.cmd = *cmd;
	ret = send_msg(p->ctl_sock, &m, sizeof(m));
	if (ret == 0)
		*slot = (struct proxy_pending){.id = m.id, .done = done, .ctx = done_ctx};
	return ret;
}

static void fail_pending(struct proxy *p)
{
	struct dev_reply gone = {.err = -EPIPE};

	snprintf(gone.msg, sizeof(gone.msg), "the device process is gone");
	for (unsigned i = 0; i < PROXY_MAX_PENDING; i++) {
		struct proxy_pending pd = p->pending[i];

		if (!pd.done)
			continue;
		p->pending[i].done = NULL;
		pd.done(pd.ctx, &gone);
	}
}

void proxy_drain(struct proxy *p)
{
	struct proxy_ctl m;

	for (;;) {
		ssize_t n = recv(p->ctl_sock, &m, sizeof(m), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			if (p->ctl_ev)
				event_del(p->ctl_ev);
			fail_pending(p);
			break;
		}
		if (n < 0)
			break;
		/* The child is not trusted: a message of another size is dropped. */
		if (n != (ssize_t)sizeof(m))
			continue;
		if (m.kind == PROXY_CTL_SIGSYS) {
			p->sigsys_nr = m.u.sysno;
			continue;
		}
		if (m.kind != PROXY_CTL_REPLY)
			continue;
		m.u.reply.msg[sizeof(m.u.reply.msg) - 1] = '\0';
		for (unsigned i = 0; i < PROXY_MAX_PENDING; i++) {
			struct proxy_pending pd = p->pending[i];

			if (!pd.done || pd.id != m.id)
				continue;
			p->pending[i].done = NULL;
			pd.done(pd.ctx, &m.u.reply);
			break;
		}
	}
}

static void on_ctl(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	proxy_drain(arg);
}

int proxy_start(struct proxy *p, struct event_base *eb)
{
	p->ctl_ev = event_new(eb, p->ctl_sock, EV_READ | EV_PERSIST, on_ctl, p);
	if (!p->ctl_ev || event_add(p->ctl_ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

void proxy_destroy(struct proxy *p)
{
	if (p->ctl_ev)
		event_free(p->ctl_ev);
	p->ctl_ev = NULL;
	fail_pending(p);
	close_fd(&p->io_sock);
	close_fd(&p->ctl_sock);
	pthread_mutex_destroy(&p->lock);
}

/* ---- child side ---- */

struct serve_ctx {
	struct device *dev;
	int io_sock;
	int ctl_sock;
	struct event_base *eb;
	struct event *io_ev;
	struct event *ctl_ev;
};

struct cmd_reply {
	int sock;
	uint32_t id;
};

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct serve_ctx *s = arg;
	struct proxy_msg m;
	ssize_t n;

	(void)what;
	n = recv((int)fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(m)) {
		/* The parent closed the socket (or broke the protocol): time to stop. */
		event_base_loopbreak(s->eb);
		return;
	}
	switch (m.op) {
	case PROXY_IO_READ:
		if (m.len > sizeof(m.data)) {
			m.val = -EINVAL;
		} else {
			m.val = s->dev->ops->io(s->dev->priv, m.region, m.off, m.data, m.len,
						false);
		}
		send_msg(s->io_sock, &m, sizeof(m));
		break;
	case PROXY_IO_WRITE:
		if (m.len <= sizeof(m.data))
			s->dev->ops->io(s->dev->priv, m.region, m.off, m.data, m.len, true);
		break;
	case PROXY_MSIX_STATE:
		if (s->dev->ops->msix_state)
			s->dev->ops->msix_state(s->dev->priv, m.val != 0);
		break;
	default:
		break;
	}
}

static void cmd_done(void *ctx, const struct dev_reply *reply)
{
	struct cmd_reply *r = ctx;
	struct proxy_ctl m = {.kind = PROXY_CTL_REPLY, .id = r->id, .u.reply = *reply};

	send_msg(r->sock, &m, sizeof(m));
	free(r);
}

static void on_ctl_child(evutil_socket_t fd, short what, void *arg)
{
	struct serve_ctx *s = arg;
	struct proxy_ctl m;
	struct cmd_reply *r;
	ssize_t n;

	(void)what;
	n = recv((int)fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n == 0) {
		event_del(s->ctl_ev);
		return;
	}
	if (n != (ssize_t)sizeof(m) || m.kind != PROXY_CTL_CMD)
		return;
	r = malloc(sizeof(*r));
	if (!r)
		return;
	*r = (struct cmd_reply){.sock = s->ctl_sock, .id = m.id};
	if (device_command(s->dev, &m.u.cmd, cmd_done, r) < 0)
		dev_reply_error(cmd_done, r, -EOPNOTSUPP,
				"the device does not support this command");
}

int proxy_serve(struct device *dev, int io_sock, int ctl_sock, struct event_base *eb,
		int (*ready)(void *ctx), void *ready_ctx)
{
	struct serve_ctx s = {.dev = dev, .io_sock = io_sock, .ctl_sock = ctl_sock, .eb = eb};
	int ret = 0;

	s.io_ev = event_new(eb, io_sock, EV_READ | EV_PERSIST, on_io, &s);
	s.ctl_ev = event_new(eb, ctl_sock, EV_READ | EV_PERSIST, on_ctl_child, &s);
	if (!s.io_ev || !s.ctl_ev || event_add(s.io_ev, NULL) < 0 ||
	    event_add(s.ctl_ev, NULL) < 0) {
		ret = -ENOMEM;
		goto out;
	}
	ret = ready(ready_ctx);
	if (ret < 0)
		goto out;
	if (event_base_dispatch(eb) < 0)
		ret = -EIO;
out:
	if (s.io_ev)
		event_free(s.io_ev);
	if (s.ctl_ev)
		event_free(s.ctl_ev);
	return ret;
}
