#include "vcpu/gdb/server.h"
#include "core/log.h"
#include "vcpu/gdb/packet.h"
#include "vcpu/gdb/stub.h"
#include "vcpu/gdb/target.h"
#include "vcpu/vcpu.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/* What a client that does not read may leave queued before it is dropped. */
#define OUT_MAX (4 * GDB_FRAME_MAX)
#define IN_SIZE 4096

struct gdb_server {
	struct gdb_server_params p;
	struct gdb_target target;
	struct gdb_stub *stub;
	int listen_fd, client_fd, efd;
	struct event *listen_ev, *efd_ev, *read_ev, *write_ev;
	bool reading;
	bool closing;  /* the session ended (D, k): half-close once the output is out */
	bool draining; /* half-closed: what comes is dropped until the client closes */
	bool broken;   /* the client does not read: drop it */
	uint8_t in[IN_SIZE];
	size_t in_len;
	char *out;
	size_t out_len;
};

/* Writes what the socket takes now; the rest waits for EV_WRITE. */
static void flush(struct gdb_server *g)
{
	while (g->out_len) {
		ssize_t n = send(g->client_fd, g->out, g->out_len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			g->broken = true;
			g->out_len = 0;
			return;
		}
		memmove(g->out, g->out + n, g->out_len - (size_t)n);
		g->out_len -= (size_t)n;
	}
	if (g->out_len)
		event_add(g->write_ev, NULL);
}

static void send_cb(void *ctx, const void *data, size_t len)
{
	struct gdb_server *g = ctx;

	if (g->client_fd < 0 || g->broken)
		return;
	if (len > OUT_MAX - g->out_len) {
		g->broken = true;
		return;
	}
	memcpy(g->out + g->out_len, data, len);
	g->out_len += len;
	flush(g);
}

static void close_socket(struct gdb_server *g)
{
	if (g->read_ev)
		event_free(g->read_ev);
	if (g->write_ev)
		event_free(g->write_ev);
	g->read_ev = g->write_ev = NULL;
	close_fd(&g->client_fd);
	g->in_len = g->out_len = 0;
	g->reading = g->closing = g->draining = g->broken = false;
}

static void close_client(struct gdb_server *g)
{
	if (g->client_fd < 0)
		return;
	close_socket(g);
	gdb_stub_disconnect(g->stub);
}

/*
 * After anything happened: drops a client that broke or finished, hands the stub what input
 * waits, and reads more only while the stub takes it (not while the vCPUs are stopping).
 */
static void settle(struct gdb_server *g)
{
	bool close = false;

	while (g->client_fd >= 0 && !g->broken && !g->closing && g->in_len &&
	       !gdb_stub_busy(g->stub)) {
		size_t n = gdb_stub_input(g->stub, g->in, g->in_len, &close);

		memmove(g->in, g->in + n, g->in_len - n);
		g->in_len -= n;
		if (close)
			g->closing = true;
		if (n == 0)
			break;
	}
	if (g->client_fd < 0)
		return;
	if (g->broken) {
		log_warn(g->p.log, "gdb: dropping the debugger's connection (it does not read)");
		close_client(g);
		return;
	}
	if (g->closing && !g->out_len && !g->draining) {
		/*
		 * A FIN, not a close: the client's last '+' may still be on its way, and a close
		 * with unread input would reset the connection under its last reply.
		 */
		shutdown(g->client_fd, SHUT_WR);
		g->draining = true;
		g->in_len = 0;
	}
	if (g->draining || (!g->closing && g->in_len < IN_SIZE && !gdb_stub_busy(g->stub))) {
		if (!g->reading)
			event_add(g->read_ev, NULL);
		g->reading = true;
	} else if (g->reading) {
		event_del(g->read_ev);
		g->reading = false;
	}
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct gdb_server *g = arg;
	ssize_t n;

	(void)what;
	n = recv((int)fd, g->in + g->in_len, IN_SIZE - g->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		close_client(g);
		return;
	}
	if (g->draining)
		return;
	g->in_len += (size_t)n;
	settle(g);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct gdb_server *g = arg;

	(void)fd;
	(void)what;
	flush(g);
	settle(g);
}

static void on_news(evutil_socket_t fd, short what, void *arg)
{
	struct gdb_server *g = arg;
	uint64_t n;

	(void)what;
	eventfd_drain((int)fd, &n);
	gdb_stub_poll(g->stub);
	settle(g);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct gdb_server *g = arg;
	struct sockaddr_in peer = {.sin_family = AF_INET};
	socklen_t plen = sizeof(peer);
	int one = 1;
	int c;

	(void)what;
	c = accept4((int)fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	if (g->client_fd >= 0) {
		log_warn(g->p.log, "gdb: refused a second debugger (one is connected already)");
		close(c);
		return;
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	g->read_ev = event_new(g->p.eb, c, EV_READ | EV_PERSIST, on_read, g);
	g->write_ev = event_new(g->p.eb, c, EV_WRITE, on_write, g);
	if (!g->read_ev || !g->write_ev) {
		if (g->read_ev)
			event_free(g->read_ev);
		if (g->write_ev)
			event_free(g->write_ev);
		g->read_ev = g->write_ev = NULL;
		close(c);
		return;
	}
	g->client_fd = c;
	log_info(g->p.log, "gdb: a debugger connected from port %u", ntohs(peer.sin_port));
	gdb_stub_connect(g->stub);
	settle(g);
}

static int listen_on(uint16_t port, int *out)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A crosvm started again at once must not find its port held by closed connections. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

int gdb_server_create(const struct gdb_server_params *p, struct gdb_server **out)
{
	struct gdb_server *g = calloc(1, sizeof(*g));
	struct gdb_stub_params sp;
	int ret;

	if (!g)
		return -ENOMEM;
	g->p = *p;
	g->listen_fd = g->client_fd = g->efd = -1;
	g->target = (struct gdb_target){.vcpus = p->vcpus, .mem = p->mem, .ev = p->ev};
	g->out = malloc(OUT_MAX);
	if (!g->out) {
		ret = -ENOMEM;
		goto err;
	}
	ret = listen_on(p->port, &g->listen_fd);
	if (ret < 0) {
		log_err(p->log, "--gdb %u: cannot listen on 127.0.0.1:%u: %s", p->port, p->port,
			strerror(-ret));
		goto err;
	}
	g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->efd < 0) {
		ret = -errno;
		goto err;
	}
	sp = (struct gdb_stub_params){.nr_cpus = p->nr_cpus,
				      .kvm_debug_flags = p->kvm_debug_flags,
				      .ops = &gdb_target_ops,
				      .target = &g->target,
				      .send = send_cb,
				      .send_ctx = g,
				      .log = p->log};
	ret = gdb_stub_create(&sp, &g->stub);
	if (ret < 0)
		goto err;
	g->listen_ev = event_new(p->eb, g->listen_fd, EV_READ | EV_PERSIST, on_accept, g);
	g->efd_ev = event_new(p->eb, g->efd, EV_READ | EV_PERSIST, on_news, g);
	if (!g->listen_ev || !g->efd_ev || event_add(g->listen_ev, NULL) < 0 ||
	    event_add(g->efd_ev, NULL) < 0) {
		ret = -ENOMEM;
		goto err;
	}
	vcpus_debug_init(p->vcpus, g->efd);
	log_info(p->log,
		 "gdb: the guest waits for a debugger on 127.0.0.1:%u (gdb: target remote :%u)",
		 p->port, p->port);
	*out = g;
	return 0;
err:
	gdb_server_destroy(g, 0);
	return ret;
}

void gdb_server_destroy(struct gdb_server *g, int status)
{
	if (!g)
		return;
	if (g->client_fd >= 0 && g->stub) {
		gdb_stub_vm_exit(g->stub, status);
		/* Best effort: the loop is over, what the socket takes now is all it gets. */
		if (g->write_ev)
			event_del(g->write_ev);
		flush(g);
		close_socket(g);
	}
	if (g->listen_ev)
		event_free(g->listen_ev);
	if (g->efd_ev)
		event_free(g->efd_ev);
	gdb_stub_destroy(g->stub);
	close_fd(&g->listen_fd);
	close_fd(&g->efd);
	free(g->out);
	free(g);
}
