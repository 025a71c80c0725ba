/*
 * `--net user`: user-mode networking with libslirp, for a user without CAP_NET_ADMIN. The guest
 * is on NET_USER_NETWORK/24 and gets NET_USER_GUEST by DHCP; its connections become this
 * process's own sockets; host ports forwarded to it listen on 127.0.0.1 only; DNS queries to
 * NET_USER_DNS are forwarded to the host's resolver only when asked for (`dns`), otherwise
 * slirp answers none.
 *
 * The stack is created with the device (so a port that cannot be bound is an error at start)
 * and runs on its own thread from the first activation (after the sandbox's filter is on, so
 * the thread has it too): a poll loop over slirp's sockets and its end of a SOCK_SEQPACKET pair
 * whose other end is the device's packet fd, one Ethernet frame per message, like a TAP
 * without vnet headers. libslirp is not thread-safe; only that thread touches it once it runs.
 */
#include "virtio/net_internal.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <libslirp.h>

#include "core/log.h"

#define SLIRP_MTU	   1500
#define SLIRP_FRAME_MAX	   (SLIRP_MTU + 64)
#define SLIRP_SOCKBUF	   (1 << 20)
#define SLIRP_IN_BUDGET	   64
#define SLIRP_IDLE_TIMEOUT 1000 /* ms: slirp's own timers need a look now and then */

struct slirp_timer {
	struct net_slirp *s;
	SlirpTimerCb cb; /* the classic kind; NULL for an opaque one */
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
	struct slirp_timer *next;
};

struct net_slirp {
	const struct logger *log;
	char name[32];
	Slirp *slirp;
	int dev_fd;  /* the device's end of the pair */
	int fd;	     /* ours */
	int wake_fd; /* tells the thread to end */
	pthread_t thread;
	bool running;
	struct slirp_timer *timers;
	struct pollfd *pfds;
	unsigned npfds, cap;
	uint8_t frame[SLIRP_FRAME_MAX];
	uint64_t to_guest_dropped, log_dropped, log_guest_error;
	/* net_slirp_fds collects slirp's sockets here (at creation: its listening ones) */
	struct fd_list *collect;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- libslirp's callbacks (its thread) ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct net_slirp *s = opaque;

	/* No room at the device (the guest is not taking frames): drop; TCP resends. */
	if (send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		s->to_guest_dropped++;
		if (errno != EAGAIN && log_ratelimit(&s->log_dropped))
			log_warn(s->log, "%s: slirp: cannot pass a frame on: %s", s->name,
				 strerror(errno));
	}
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct net_slirp *s = opaque;

	if (log_ratelimit(&s->log_guest_error))
		log_warn(s->log, "%s: slirp: guest error: %s", s->name, msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	return now_ns();
}

static struct slirp_timer *timer_add(struct net_slirp *s, SlirpTimerCb cb, SlirpTimerId id,
				     void *cb_opaque)
{
	struct slirp_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	*t = (struct slirp_timer){.s = s,
				  .cb = cb,
				  .id = id,
				  .cb_opaque = cb_opaque,
				  .expire_ms = -1,
				  .next = s->timers};
	s->timers = t;
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	return timer_add(opaque, cb, 0, cb_opaque);
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	return timer_add(opaque, NULL, id, cb_opaque);
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct net_slirp *s = opaque;

	for (struct slirp_timer **p = &s->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = ((struct slirp_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
}

static void cb_notify(void *opaque)
{
}

static const SlirpCb slirp_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- the poll loop ---- */

static short to_poll(int ev)
{
	return (short)(((ev & SLIRP_POLL_IN) ? POLLIN : 0) | ((ev & SLIRP_POLL_OUT) ? POLLOUT : 0) |
		       ((ev & SLIRP_POLL_PRI) ? POLLPRI : 0) |
		       ((ev & SLIRP_POLL_ERR) ? POLLERR : 0) |
		       ((ev & SLIRP_POLL_HUP) ? POLLHUP : 0));
}

static int from_poll(short ev)
{
	return ((ev & POLLIN) ? SLIRP_POLL_IN : 0) | ((ev & POLLOUT) ? SLIRP_POLL_OUT : 0) |
	       ((ev & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((ev & POLLERR) ? SLIRP_POLL_ERR : 0) |
	       ((ev & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct net_slirp *s = opaque;

	if (s->collect) {
		/* Listing the fds for the sandbox: no polling. */
		return fd_list_add(s->collect, fd) == 0 ? 0 : -1;
	}
	if (s->npfds == s->cap) {
		unsigned cap = s->cap ? 2 * s->cap : 16;
		struct pollfd *p = realloc(s->pfds, cap * sizeof(*p));

		/* Out of memory: this socket waits for the next turn. */
		if (!p)
			return -1;
		s->pfds = p;
		s->cap = cap;
	}
	s->pfds[s->npfds] = (struct pollfd){.fd = fd, .events = to_poll(events)};
	return (int)s->npfds++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct net_slirp *s = opaque;

	if (idx < 0 || (unsigned)idx >= s->npfds)
		return 0;
	return from_poll(s->pfds[idx].revents);
}

/* Frames from the guest, as many as are there (bounded, so slirp's sockets get their turn). */
static void from_guest(struct net_slirp *s)
{
	for (unsigned i = 0; i < SLIRP_IN_BUDGET; i++) {
		ssize_t n = recv(s->fd, s->frame, sizeof(s->frame), MSG_DONTWAIT | MSG_TRUNC);

		if (n <= 0)
			return;
		/* A frame larger than slirp's MTU was cut short by the buffer: not for it. */
		if ((size_t)n > sizeof(s->frame))
			continue;
		slirp_input(s->slirp, s->frame, (int)n);
	}
}

static int next_timeout(struct net_slirp *s, uint32_t timeout)
{
	int64_t now = now_ns() / 1000000;

	for (struct slirp_timer *t = s->timers; t; t = t->next) {
		if (t->expire_ms < 0)
			continue;
		if (t->expire_ms <= now)
			return 0;
		if (t->expire_ms - now < (int64_t)timeout)
			timeout = (uint32_t)(t->expire_ms - now);
	}
	return (int)timeout;
}

static void run_timers(struct net_slirp *s)
{
	int64_t now = now_ns() / 1000000;
	bool again = true;

	/* A callback may free or add timers: start over after each one that fired. */
	while (again) {
		again = false;
		for (struct slirp_timer *t = s->timers; t; t = t->next) {
			if (t->expire_ms < 0 || t->expire_ms > now)
				continue;
			t->expire_ms = -1;
			if (t->cb)
				t->cb(t->cb_opaque);
			else
				slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
			again = true;
			break;
		}
	}
}

static void *slirp_thread(void *arg)
{
	struct net_slirp *s = arg;

	for (;;) {
		uint32_t timeout = SLIRP_IDLE_TIMEOUT;
		int r;

		s->npfds = 0;
		cb_add_poll(s->wake_fd, SLIRP_POLL_IN, s);
		cb_add_poll(s->fd, SLIRP_POLL_IN, s);
		slirp_pollfds_fill(s->slirp, &timeout, cb_add_poll, s);
		r = poll(s->pfds, s->npfds, next_timeout(s, timeout));
		if (r < 0 && errno != EINTR)
			log_warn(s->log, "%s: slirp: poll: %s", s->name, strerror(errno));
		if (s->npfds >= 1 && (s->pfds[0].revents & POLLIN))
			break;
		if (s->npfds >= 2 && (s->pfds[1].revents & POLLIN))
			from_guest(s);
		slirp_pollfds_poll(s->slirp, r < 0, cb_get_revents, s);
		run_timers(s);
	}
	return NULL;
}

/* ---- lifecycle ---- */

int net_slirp_run(struct net_slirp *s)
{
	int ret;

	if (s->running)
		return 0;
	ret = -pthread_create(&s->thread, NULL, slirp_thread, s);
	if (ret < 0) {
		log_err(s->log, "%s: cannot start the slirp thread: %s", s->name, strerror(-ret));
		return ret;
	}
	s->running = true;
	return 0;
}

int net_slirp_fds(struct net_slirp *s, struct fd_list *out)
{
	uint32_t timeout = 0;
	int ret;

	ret = fd_list_add(out, s->dev_fd);
	if (ret == 0)
		ret = fd_list_add(out, s->fd);
	if (ret == 0)
		ret = fd_list_add(out, s->wake_fd);
	if (ret < 0 || s->running)
		return ret;
	/* Before its thread runs, slirp's sockets are its listening ones (hostfwd). */
	s->collect = out;
	slirp_pollfds_fill(s->slirp, &timeout, cb_add_poll, s);
	s->collect = NULL;
	return 0;
}

void net_slirp_destroy(struct net_slirp *s)
{
	if (s->running) {
		(void)eventfd_signal(s->wake_fd);
		pthread_join(s->thread, NULL);
	}
	if (s->slirp)
		slirp_cleanup(s->slirp);
	while (s->timers) {
		struct slirp_timer *t = s->timers;

		s->timers = t->next;
		free(t);
	}
	close_fd(&s->dev_fd);
	close_fd(&s->fd);
	close_fd(&s->wake_fd);
	free(s->pfds);
	free(s);
}

static struct in_addr addr(const char *text)
{
	struct in_addr a = {0};

	inet_pton(AF_INET, text, &a);
	return a;
}

static int new_pair(struct net_slirp *s)
{
	int sv[2], size = SLIRP_SOCKBUF;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	s->dev_fd = sv[0];
	s->fd = sv[1];
	/* Room for bursts both ways; the kernel caps it at its maximum. */
	for (unsigned i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return s->wake_fd < 0 ? -errno : 0;
}

int net_slirp_create(const struct net_config *cfg, const char *name, const struct logger *lg,
		     struct net_slirp **out, int *fd)
{
	struct net_slirp *s = calloc(1, sizeof(*s));
	SlirpConfig sc = {
		.version = 4,
		.in_enabled = true,
		.vnetwork = addr(NET_USER_NETWORK),
		.vnetmask = {htonl(~0u << (32 - NET_USER_PREFIXLEN))},
		.vhost = addr(NET_USER_HOST),
		.vdhcp_start = addr(NET_USER_GUEST),
		.vnameserver = addr(NET_USER_DNS),
		.if_mtu = SLIRP_MTU,
		.if_mru = SLIRP_MTU,
		/* The guest reaches the host's loopback services only through hostfwd. */
		.disable_host_loopback = true,
		.disable_dns = !cfg->dns,
	};
	int ret;

	if (!s)
		return -ENOMEM;
	s->log = lg;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->dev_fd = s->fd = s->wake_fd = -1;
	ret = new_pair(s);
	if (ret < 0) {
		log_err(lg, "%s: cannot create slirp's packet socket pair: %s", name,
			strerror(-ret));
		goto err;
	}
	s->slirp = slirp_new(&sc, &slirp_callbacks, s);
	if (!s->slirp) {
		log_err(lg, "%s: libslirp %s would not start", name, slirp_version_string());
		ret = -EIO;
		goto err;
	}
	for (unsigned i = 0; i < cfg->nr_fwd; i++) {
		const struct net_hostfwd *f = &cfg->fwd[i];

		errno = 0;
		if (slirp_add_hostfwd(s->slirp, 0, addr("127.0.0.1"), f->host_port,
				      addr(NET_USER_GUEST), f->guest_port) < 0) {
			ret = errno ? -errno : -EADDRINUSE;
			log_err(lg, "%s: hostfwd=tcp:%u-:%u: cannot listen on 127.0.0.1:%u: %s",
				name, f->host_port, f->guest_port, f->host_port, strerror(-ret));
			goto err;
		}
	}
	*out = s;
	*fd = s->dev_fd;
	return 0;
err:
	net_slirp_destroy(s);
	return ret;
}
