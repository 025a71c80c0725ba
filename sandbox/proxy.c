#include "sandbox/proxy.h"
#include "core/log.h"

#include <event2/event.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define PROXY_MAX_PENDING 16

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

/* ---- parent side ---- */

struct proxy_pending {
	uint32_t id;
	dev_reply_fn done;
	void *ctx;
};

struct proxy {
	struct device inner; /* the device as it was: the parent's copy, destroyed last */
	char name[sizeof(((struct device *)0)->name)];
	pid_t pid;
	int pidfd;
	int io_sock, ctl_sock;
	pthread_mutex_t lock; /* the I/O socket: one guest access at a time */
	const atomic_bool *cancel;
	const struct vm_events *ev;
	const struct logger *log;
	unsigned grace_ms;
	struct event *ctl_ev, *pid_ev;
	/* Commands run on the main loop thread only, so the pending table needs no lock. */
	uint32_t next_id;
	struct proxy_pending pending[PROXY_MAX_PENDING];
	int sigsys_nr; /* syscall that made seccomp stop the child, -1 if none */
	bool dead;     /* the I/O stream is out of step or closed: no more requests */
	bool reaped;
};

static int proxy_io(void *opaque, unsigned region, uint64_t off, void *data, uint32_t len,
		    bool is_write)
{
	struct proxy *p = opaque;
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
		if (n < 0 && errno == EINTR && !(p->cancel && atomic_load(p->cancel)))
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

static void proxy_msix_state(void *opaque, bool enabled)
{
	struct proxy *p = opaque;
	struct proxy_msg m = {.op = PROXY_MSIX_STATE, .val = enabled};

	pthread_mutex_lock(&p->lock);
	if (!p->dead)
		(void)send_msg(p->io_sock, &m, sizeof(m));
	pthread_mutex_unlock(&p->lock);
}

static int proxy_command(void *opaque, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx)
{
	struct proxy *p = opaque;
	struct proxy_pending *slot = NULL;
	struct proxy_ctl m = {.kind = PROXY_CTL_CMD};
	int ret;

	if (p->ctl_sock < 0)
		return -EPIPE;
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
	for (unsigned i = 0; i < PROXY_MAX_PENDING; i++) {
		struct proxy_pending pd = p->pending[i];

		if (!pd.done)
			continue;
		p->pending[i].done = NULL;
		dev_reply_error(pd.done, pd.ctx, -EPIPE, "the device process is gone");
	}
}

/* One message from the child. It is not trusted: what does not fit is dropped. */
static void ctl_message(struct proxy *p, struct proxy_ctl *m)
{
	switch (m->kind) {
	case PROXY_CTL_SIGSYS:
		p->sigsys_nr = m->u.sysno;
		break;
	case PROXY_CTL_REQUEST:
		if (m->u.exit > VM_EXIT_NONE && m->u.exit <= VM_EXIT_PANIC)
			vm_events_exit(p->ev, (enum vm_exit_reason)m->u.exit);
		break;
	case PROXY_CTL_REPLY:
		m->u.reply.msg[sizeof(m->u.reply.msg) - 1] = '\0';
		for (unsigned i = 0; i < PROXY_MAX_PENDING; i++) {
			struct proxy_pending pd = p->pending[i];

			if (!pd.done || pd.id != m->id)
				continue;
			p->pending[i].done = NULL;
			pd.done(pd.ctx, &m->u.reply);
			break;
		}
		break;
	default:
		break;
	}
}

/* Reads whatever the child left on the control socket (replies, requests, last words). */
static void drain_ctl(struct proxy *p)
{
	struct proxy_ctl m;

	while (p->ctl_sock >= 0) {
		ssize_t n = recv(p->ctl_sock, &m, sizeof(m), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			if (p->ctl_ev)
				event_del(p->ctl_ev);
			fail_pending(p);
			return;
		}
		if (n < 0)
			return;
		if (n == (ssize_t)sizeof(m))
			ctl_message(p, &m);
	}
}

static void on_ctl(evutil_socket_t fd, short what, void *arg)
{
	drain_ctl(arg);
}

static void report_death(struct proxy *p, const siginfo_t *si)
{
	int sig = si->si_status;

	if (si->si_code == CLD_EXITED) {
		log_err(p->log, "device %s (pid %d) exited with status %d", p->name, p->pid, sig);
	} else if (sig == SIGSYS && p->sigsys_nr >= 0) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, p->sigsys_nr);

		log_err(p->log,
			"device %s (pid %d) was killed by signal %d (SIGSYS): "
			"seccomp refused syscall %d (%s)",
			p->name, p->pid, sig, p->sigsys_nr, name ? name : "unknown");
		free(name);
	} else {
		const char *abbrev = sigabbrev_np(sig);

		log_err(p->log, "device %s (pid %d) was killed by signal %d (SIG%s: %s)", p->name,
			p->pid, sig, abbrev ? abbrev : "?", strsignal(sig));
	}
}

/* Reaps the child if it has ended (or, with block, once it ends); fills *si. */
static bool reap(struct proxy *p, bool block, siginfo_t *si)
{
	if (p->reaped)
		return true;
	memset(si, 0, sizeof(*si));
	while (waitid(P_PIDFD, (id_t)p->pidfd, si, WEXITED | (block ? 0 : WNOHANG)) < 0) {
		if (errno != EINTR)
			return false;
	}
	p->reaped = si->si_pid != 0;
	return p->reaped;
}

/* The child ended while the VM runs: the device is gone, so is the VM (a crash). */
static void on_child_exit(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	siginfo_t si;

	if (!reap(p, false, &si))
		return;
	event_del(p->pid_ev);
	drain_ctl(p);
	fail_pending(p);
	pthread_mutex_lock(&p->lock);
	p->dead = true;
	pthread_mutex_unlock(&p->lock);
	if (p->cancel && atomic_load(p->cancel))
		return;
	report_death(p, &si);
	vm_events_exit(p->ev, VM_EXIT_CRASH);
}

static int watch(struct event_base *eb, int fd, event_callback_fn cb, void *arg, struct event **out)
{
	*out = event_new(eb, fd, EV_READ | EV_PERSIST, cb, arg);
	if (!*out)
		return -ENOMEM;
	return event_add(*out, NULL) < 0 ? -EIO : 0;
}

static int proxy_start(void *opaque, struct event_base *eb)
{
	struct proxy *p = opaque;
	int ret;

	if (p->ctl_ev || p->ctl_sock < 0)
		return -EBUSY;
	ret = watch(eb, p->ctl_sock, on_ctl, p, &p->ctl_ev);
	if (ret == 0)
		ret = watch(eb, p->pidfd, on_child_exit, p, &p->pid_ev);
	return ret;
}

/*
 * Waits a little for the stopped child, kills it if it lingers, reaps it. A child found
 * already dead of a signal (we had sent none) or of a failure died on its own before the VM
 * noticed, say while the guest powered off: that is still a device crash.
 */
static void end_child(struct proxy *p)
{
	struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
	bool was_reaped = p->reaped;
	siginfo_t si;

	if (reap(p, false, &si)) {
		if (!was_reaped && (si.si_code != CLD_EXITED || si.si_status != 0)) {
			report_death(p, &si);
			vm_events_exit(p->ev, VM_EXIT_CRASH);
		}
		return;
	}
	while (poll(&pfd, 1, (int)p->grace_ms) < 0 && errno == EINTR)
		;
	if (reap(p, false, &si))
		return;
	if (pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0) < 0)
		log_warn(p->log, "%s: cannot kill device process %d: %s", p->name, p->pid,
			 strerror(errno));
	(void)reap(p, true, &si);
}

/*
 * Closing both sockets tells the child to stop its device and exit; it is then waited for
 * (killed if it lingers) and reaped, so a stopped device has no process left.
 */
static void proxy_stop(void *opaque)
{
	struct proxy *p = opaque;

	if (p->ctl_ev)
		event_free(p->ctl_ev);
	if (p->pid_ev)
		event_free(p->pid_ev);
	p->ctl_ev = p->pid_ev = NULL;
	fail_pending(p);
	pthread_mutex_lock(&p->lock);
	p->dead = true;
	close_fd(&p->io_sock);
	pthread_mutex_unlock(&p->lock);
	close_fd(&p->ctl_sock);
	end_child(p);
}

static void proxy_destroy(void *opaque)
{
	struct proxy *p = opaque;
	struct device inner = p->inner;

	proxy_stop(p);
	close_fd(&p->pidfd);
	pthread_mutex_destroy(&p->lock);
	free(p);
	/* Last: the device may own the very struct device the proxy was attached to. */
	device_destroy(&inner);
}

static int proxy_fds(void *opaque, struct fd_list *out)
{
	struct proxy *p = opaque;
	int ret = fd_list_add(out, p->io_sock);

	if (ret == 0)
		ret = fd_list_add(out, p->ctl_sock);
	return ret ? ret : fd_list_add(out, p->pidfd);
}

static const struct dev_ops proxy_ops = {
	.io = proxy_io,
	.start = proxy_start,
	.stop = proxy_stop,
	.destroy = proxy_destroy,
	.fds = proxy_fds,
	.msix_state = proxy_msix_state,
	.command = proxy_command,
};

int proxy_attach(struct device *dev, const struct proxy_params *pp)
{
	struct proxy *p = calloc(1, sizeof(*p));
	int ret = p ? 0 : -ENOMEM;

	if (ret == 0)
		ret = -pthread_mutex_init(&p->lock, NULL);
	if (ret < 0) {
		free(p);
		goto err;
	}
	p->pidfd = pidfd_open(pp->pid, 0);
	if (p->pidfd < 0) {
		ret = -errno;
		pthread_mutex_destroy(&p->lock);
		free(p);
		goto err;
	}
	p->inner = *dev;
	memcpy(p->name, dev->name, sizeof(p->name));
	p->pid = pp->pid;
	p->io_sock = pp->io_sock;
	p->ctl_sock = pp->ctl_sock;
	p->cancel = pp->cancel;
	p->ev = pp->ev;
	p->log = pp->log;
	p->grace_ms = pp->reap_grace_ms;
	p->next_id = 1;
	p->sigsys_nr = -1;
	dev->ops = &proxy_ops;
	dev->priv = p;
	return 0;
err:
	close(pp->io_sock);
	close(pp->ctl_sock);
	return ret;
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
		if (m.len > sizeof(m.data))
			m.val = -EINVAL;
		else
			m.val = device_io(s->dev, m.region, m.off, m.data, m.len, false);
		(void)send_msg(s->io_sock, &m, sizeof(m));
		break;
	case PROXY_IO_WRITE:
		if (m.len <= sizeof(m.data))
			(void)device_io(s->dev, m.region, m.off, m.data, m.len, true);
		break;
	case PROXY_MSIX_STATE:
		device_msix_state(s->dev, m.val != 0);
		break;
	default:
		break;
	}
}

static void cmd_done(void *ctx, const struct dev_reply *reply)
{
	struct cmd_reply *r = ctx;
	struct proxy_ctl m = {.kind = PROXY_CTL_REPLY, .id = r->id, .u.reply = *reply};

	(void)send_msg(r->sock, &m, sizeof(m));
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

/* Any thread of the device: one datagram each, so concurrent requests do not interleave. */
static void forward_exit(void *ctx, enum vm_exit_reason reason)
{
	const int *fd = ctx;
	struct proxy_ctl m = {.kind = PROXY_CTL_REQUEST, .u.exit = (int32_t)reason};

	(void)send_msg(*fd, &m, sizeof(m));
}

void proxy_forward_requests(struct vm_events *ev, const int *ctl_fd)
{
	*ev = (struct vm_events){.request_exit = forward_exit, .ctx = (void *)ctl_fd};
}
