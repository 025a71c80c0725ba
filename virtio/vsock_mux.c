#include "virtio/vsock_mux.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <event2/event.h>

#include "core/iov.h"
#include "core/log.h"
#include "virtio/vsock_pkt.h"

#define HASH_BUCKETS	 256u
#define MAX_IOV		 256u /* a chain has at most the queue's size of buffers */
#define ACCEPTS_PER_WAKE 16

enum conn_state {
	ST_LINE,    /* a host program connected: reading its CONNECT line */
	ST_REQUEST, /* host-initiated: REQUEST owed or sent, waiting for the guest's RESPONSE */
	ST_OPEN,    /* established */
	ST_CLOSING, /* the guest shut down both ways: the rest goes to the host, then a RST */
	ST_DEAD,    /* the host side is closed: a RST is owed to the guest, then it is freed */
};

/* Packets owed to the guest, besides data. */
enum {
	OWE_REQUEST = 1u << 0,
	OWE_RESPONSE = 1u << 1,
	OWE_SHUTDOWN = 1u << 2,
	OWE_CREDIT = 1u << 3,
	OWE_RST = 1u << 4,
};

struct conn {
	struct vsock_mux *m;
	enum conn_state state;
	int fd;
	struct event *rev, *wev, *timer;
	bool reading, writing, keyed, in_ready;
	uint32_t host_port, guest_port;
	unsigned owe;

	/* host to guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* the guest's receive credit, as it last said */
	uint32_t tx_cnt;		       /* payload bytes sent to the guest */
	bool data_ready;		       /* the host socket was readable, not yet drained */
	bool host_eof;			       /* the host sent all it will: SHUTDOWN(SEND) */
	bool guest_no_rcv;		       /* the guest will not receive any more */

	/* guest to host */
	uint32_t rx_cnt;    /* payload bytes received from the guest */
	uint32_t fwd_cnt;   /* of which written to the host socket */
	uint32_t fwd_told;  /* fwd_cnt as the guest last heard it */
	uint8_t *buf;	    /* VSOCK_BUF_ALLOC bytes while data waits for the host, else NULL */
	uint32_t head, len; /* the waiting bytes: buf[head, head + len) modulo the size */
	bool guest_no_send; /* after the buffer drains, shut down the host's read side */
	bool host_wr_shut;

	unsigned line_len;
	char line[VSOCK_CONNECT_LINE];

	LIST_ENTRY(conn) hash_link;
	TAILQ_ENTRY(conn) all_link, ready_link;
};

struct orphan {
	uint64_t cid; /* the address the guest's packet went to */
	uint32_t port, guest_port;
};

LIST_HEAD(conn_list, conn);
TAILQ_HEAD(conn_queue, conn);

struct vsock_mux {
	struct vsock_mux_params p;
	struct event_base *eb;
	struct event *listen_ev, *retry_ev;
	bool active, listening;
	unsigned nr_conns;
	uint32_t next_port;
	struct conn_queue all, ready;
	struct conn_list hash[HASH_BUCKETS];
	struct orphan orphans[VSOCK_MAX_ORPHANS];
	unsigned orphan_head, nr_orphans;
	uint64_t nr_dropped_orphans, nr_refused, nr_accept_err, nr_garbage;
	struct iovec iov[MAX_IOV];
};

static unsigned hash_of(uint32_t host_port, uint32_t guest_port)
{
	uint32_t h = host_port * 0x9e3779b1u ^ guest_port * 0x85ebca6bu;

	return (h ^ (h >> 16)) % HASH_BUCKETS;
}

static struct conn *lookup(struct vsock_mux *m, uint32_t host_port, uint32_t guest_port)
{
	struct conn *c;

	LIST_FOREACH(c, &m->hash[hash_of(host_port, guest_port)], hash_link)
	if (c->host_port == host_port && c->guest_port == guest_port)
		return c;
	return NULL;
}

static void set_key(struct conn *c, uint32_t host_port, uint32_t guest_port)
{
	c->host_port = host_port;
	c->guest_port = guest_port;
	c->keyed = true;
	LIST_INSERT_HEAD(&c->m->hash[hash_of(host_port, guest_port)], c, hash_link);
}

/* ---- credit ---- */

/* What the guest lets us send now; a guest whose numbers make no sense gets nothing. */
static uint32_t credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool has_work(const struct conn *c)
{
	if (c->owe)
		return true;
	return c->state == ST_OPEN && c->data_ready && !c->guest_no_rcv && credit(c) > 0;
}

static void want_rx(struct vsock_mux *m)
{
	m->p.want_rx(m->p.ctx);
}

/* Queues the connection for vsock_mux_rx if it has something for the guest. */
static void make_ready(struct conn *c)
{
	if (c->in_ready || !has_work(c))
		return;
	TAILQ_INSERT_TAIL(&c->m->ready, c, ready_link);
	c->in_ready = true;
	want_rx(c->m);
}

static void unready(struct conn *c)
{
	if (c->in_ready)
		TAILQ_REMOVE(&c->m->ready, c, ready_link);
	c->in_ready = false;
}

static void owe(struct conn *c, unsigned what)
{
	c->owe |= what;
	make_ready(c);
}

/*
 * The guest heard of our buffer space through fwd_cnt in some header; once more than half
 * of what it believes is in flight has in fact left, say so, or it may stall.
 */
static void maybe_credit_update(struct conn *c)
{
	if (c->fwd_cnt != c->fwd_told && c->rx_cnt - c->fwd_told > VSOCK_BUF_ALLOC / 2)
		owe(c, OWE_CREDIT);
}

/* ---- events ---- */

static void arm(struct event *ev, bool *armed, bool on)
{
	if (on == *armed || !ev)
		return;
	if (on)
		*armed = event_add(ev, NULL) == 0;
	else {
		event_del(ev);
		*armed = false;
	}
}

/* Reads from the host only while there is room in the guest for what it would read. */
static void update_reading(struct conn *c)
{
	bool on;

	if (c->state == ST_LINE)
		on = true;
	else
		on = c->state == ST_OPEN && !c->host_eof && !c->guest_no_rcv && !c->data_ready &&
		     credit(c) > 0;
	arm(c->rev, &c->reading, on);
}

static void start_timer(struct conn *c)
{
	struct timeval tv = {.tv_sec = VSOCK_TIMEOUT_MS / 1000,
			     .tv_usec = (VSOCK_TIMEOUT_MS % 1000) * 1000};

	if (c->timer)
		evtimer_add(c->timer, &tv);
}

static void stop_timer(struct conn *c)
{
	if (c->timer)
		evtimer_del(c->timer);
}

/* ---- connection life ---- */

static void free_event(struct event **ev)
{
	if (*ev)
		event_free(*ev);
	*ev = NULL;
}

static void close_host(struct conn *c)
{
	free_event(&c->rev);
	free_event(&c->wev);
	c->reading = c->writing = false;
	close_fd(&c->fd);
	free(c->buf);
	c->buf = NULL;
	c->len = 0;
}

static void conn_free(struct conn *c)
{
	struct vsock_mux *m = c->m;

	close_host(c);
	free_event(&c->timer);
	unready(c);
	if (c->keyed)
		LIST_REMOVE(c, hash_link);
	TAILQ_REMOVE(&m->all, c, all_link);
	m->nr_conns--;
	free(c);
}

/*
 * The connection ends badly (refused, timed out, broken, or against the rules): the host
 * socket is closed now, the guest gets a RST, and only then is the connection forgotten.
 */
static void conn_reset(struct conn *c)
{
	stop_timer(c);
	close_host(c);
	if (!c->keyed) {
		conn_free(c); /* the guest never heard of it */
		return;
	}
	c->state = ST_DEAD;
	c->data_ready = false;
	c->owe = OWE_RST;
	make_ready(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

static struct conn *conn_new(struct vsock_mux *m, int fd, enum conn_state state)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->m = m;
	c->fd = fd;
	c->state = state;
	c->rev = event_new(m->eb, fd, EV_READ | EV_PERSIST, on_read, c);
	c->wev = event_new(m->eb, fd, EV_WRITE | EV_PERSIST, on_write, c);
	c->timer = evtimer_new(m->eb, on_timer, c);
	if (!c->rev || !c->wev || !c->timer) {
		free_event(&c->rev);
		free_event(&c->wev);
		free_event(&c->timer);
		free(c);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&m->all, c, all_link);
	m->nr_conns++;
	return c;
}

/* ---- guest to host: the connection's buffer ---- */

static uint32_t buf_room(const struct conn *c)
{
	return VSOCK_BUF_ALLOC - c->len;
}

/* Appends n bytes from the cursor; the caller checked the room. */
static int buf_put(struct conn *c, struct iov_cursor *cur, uint32_t n)
{
	uint32_t tail, first;
	int ret;

	if (!c->buf) {
		c->buf = malloc(VSOCK_BUF_ALLOC);
		if (!c->buf)
			return -ENOMEM;
		c->head = 0;
	}
	tail = (c->head + c->len) % VSOCK_BUF_ALLOC;
	first = MIN(n, VSOCK_BUF_ALLOC - tail);
	ret = iov_read(cur, c->buf + tail, first);
	if (ret == 0 && n > first)
		ret = iov_read(cur, c->buf, n - first);
	if (ret == 0)
		c->len += n;
	return ret;
}

/* Writes what the buffer holds: 0, or -errno for a host socket that is gone. */
static int buf_flush(struct conn *c)
{
	while (c->len) {
		uint32_t first = MIN(c->len, VSOCK_BUF_ALLOC - c->head);
		struct iovec v[2] = {{c->buf + c->head, first}, {c->buf, c->len - first}};
		struct msghdr msg = {.msg_iov = v, .msg_iovlen = c->len > first ? 2 : 1};
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		c->head = (c->head + (uint32_t)n) % VSOCK_BUF_ALLOC;
		c->len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	/* An idle connection holds no buffer. */
	free(c->buf);
	c->buf = NULL;
	c->head = 0;
	return 0;
}

/* After the buffer changed: keep writing, finish a shutdown, or finish closing. */
static void after_flush(struct conn *c)
{
	arm(c->wev, &c->writing, c->len > 0);
	if (c->len)
		return;
	if (c->state == ST_CLOSING) {
		conn_reset(c); /* everything reached the host: close, and RST as Linux expects */
		return;
	}
	if (c->guest_no_send && !c->host_wr_shut) {
		c->host_wr_shut = true;
		shutdown(c->fd, SHUT_WR);
	}
	maybe_credit_update(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (buf_flush(c) < 0) {
		conn_reset(c);
		return;
	}
	after_flush(c);
}

/* A RW packet's payload: straight to the host socket, the rest into the buffer. */
static void guest_data(struct conn *c, uint32_t len, struct iov_cursor *payload)
{
	struct vsock_mux *m = c->m;
	struct iov_cursor rest = *payload;
	unsigned nr;
	ssize_t n = 0;

	c->rx_cnt += len;
	/* The credit we gave: more than that in flight breaks the rules. */
	if (c->rx_cnt - c->fwd_cnt > VSOCK_BUF_ALLOC) {
		log_debug(m->p.log, "vsock: guest port %u overran its credit; resetting",
			  c->guest_port);
		conn_reset(c);
		return;
	}
	if (!c->len && iov_take(&rest, len, m->iov, MAX_IOV, &nr) == 0) {
		struct msghdr msg = {.msg_iov = m->iov, .msg_iovlen = nr};

		do {
			n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_reset(c); /* the host closed its end */
			return;
		}
		n = MAX(n, 0);
		c->fwd_cnt += (uint32_t)n;
		rest = *payload;
		if (iov_skip(&rest, (size_t)n) < 0) {
			conn_reset(c);
			return;
		}
	}
	if ((uint32_t)n < len &&
	    (len - (uint32_t)n > buf_room(c) || buf_put(c, &rest, len - (uint32_t)n) < 0)) {
		conn_reset(c);
		return;
	}
	after_flush(c);
}

/* ---- packets from the guest ---- */

static void owe_orphan_rst(struct vsock_mux *m, const struct vsock_hdr *h)
{
	struct orphan *o;

	if (h->op == VSOCK_OP_RST)
		return; /* never answer a RST */
	if (m->nr_orphans == VSOCK_MAX_ORPHANS) {
		/* The guest does not take its packets: it will time out instead. */
		m->nr_dropped_orphans++;
		return;
	}
	o = &m->orphans[(m->orphan_head + m->nr_orphans++) % VSOCK_MAX_ORPHANS];
	*o = (struct orphan){.cid = h->dst_cid, .port = h->dst_port, .guest_port = h->src_port};
	want_rx(m);
}

/* A guest connection to CID 2 port P: connect to PATH_P now, RESPONSE or RST. */
static void guest_connect(struct vsock_mux *m, const struct vsock_hdr *h)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct conn *c;
	int fd, ret;

	if (m->nr_conns >= m->p.max_conns ||
	    (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", m->p.path, h->dst_port) >=
		    sizeof(sa.sun_path)) {
		owe_orphan_rst(m, h);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		owe_orphan_rst(m, h);
		return;
	}
	do {
		ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (ret < 0 && errno == EINTR);
	/*
	 * A UNIX stream connect completes at once or fails: EAGAIN means the listener's backlog
	 * is full, which is a refusal like any other here.
	 */
	if (ret < 0) {
		if (log_ratelimit(&m->nr_refused))
			log_debug(m->p.log,
				  "vsock: guest connection to port %u refused: %s: %s [%llu]",
				  h->dst_port, sa.sun_path, strerror(errno),
				  (unsigned long long)m->nr_refused);
		close(fd);
		owe_orphan_rst(m, h);
		return;
	}
	c = conn_new(m, fd, ST_OPEN);
	if (!c) {
		close(fd);
		owe_orphan_rst(m, h);
		return;
	}
	set_key(c, h->dst_port, h->src_port);
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	owe(c, OWE_RESPONSE);
	update_reading(c);
}

/* The guest accepted a host program's connection: tell the program, start the stream. */
static void guest_response(struct conn *c)
{
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
	ssize_t w;

	stop_timer(c);
	do {
		w = send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (w < 0 && errno == EINTR);
	/* A fresh socket has room for a line; anything else means the program is gone. */
	if (w != n) {
		conn_reset(c);
		return;
	}
	c->state = ST_OPEN;
	update_reading(c);
}

static void guest_shutdown(struct conn *c, uint32_t flags)
{
	if (flags & VSOCK_SHUTDOWN_RCV) {
		c->guest_no_rcv = true;
		c->data_ready = false;
		update_reading(c);
	}
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->guest_no_send = true;
	if ((flags & VSOCK_SHUTDOWN_BOTH) == VSOCK_SHUTDOWN_BOTH) {
		c->state = ST_CLOSING;
		start_timer(c);
	}
	after_flush(c);
}

void vsock_mux_tx(struct vsock_mux *m, const struct vsock_hdr *h, struct iov_cursor *payload)
{
	struct conn *c;

	if (h->dst_cid != VSOCK_HOST_CID || h->type != VSOCK_TYPE_STREAM) {
		owe_orphan_rst(m, h); /* no other VM, no SEQPACKET (not offered) */
		return;
	}
	c = lookup(m, h->dst_port, h->src_port);
	if (!c) {
		if (h->op == VSOCK_OP_REQUEST)
			guest_connect(m, h);
		else
			owe_orphan_rst(m, h);
		return;
	}
	if (c->state == ST_DEAD)
		return; /* a RST is on its way */
	if (h->op == VSOCK_OP_RST) {
		conn_free(c);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state != ST_REQUEST) {
			conn_reset(c);
			return;
		}
		guest_response(c);
		return;
	case VSOCK_OP_RW:
		if (c->state != ST_OPEN || c->guest_no_send) {
			conn_reset(c);
			return;
		}
		guest_data(c, h->len, payload);
		break;
	case VSOCK_OP_SHUTDOWN:
		if (c->state != ST_OPEN) {
			if (c->state != ST_CLOSING)
				conn_reset(c);
			return;
		}
		guest_shutdown(c, h->flags);
		return;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		owe(c, OWE_CREDIT);
		break;
	default: /* a second REQUEST for a live connection */
		conn_reset(c);
		return;
	}
	/* The guest's credit may have grown: read on, or send what was already there. */
	if (c->state == ST_OPEN) {
		update_reading(c);
		make_ready(c);
	}
}

/* ---- host side: connections and their first line ---- */

static void garbage(struct conn *c);

static uint32_t local_port(struct vsock_mux *m, uint32_t guest_port, bool *found)
{
	for (unsigned i = 0; i <= VSOCK_MAX_CONNS; i++) {
		uint32_t p = m->next_port++;

		if (m->next_port == VSOCK_LOCAL_PORT_END)
			m->next_port = VSOCK_LOCAL_PORT_FIRST;
		if (!lookup(m, p, guest_port)) {
			*found = true;
			return p;
		}
	}
	*found = false;
	return 0;
}

static void line_done(struct conn *c)
{
	struct vsock_mux *m = c->m;
	uint32_t port, local;
	bool found;

	if (vsock_parse_connect(c->line, c->line_len, &port) < 0) {
		garbage(c);
		return;
	}
	local = local_port(m, port, &found);
	if (!found) {
		conn_free(c);
		return;
	}
	set_key(c, local, port);
	c->state = ST_REQUEST;
	update_reading(c); /* nothing more is read until the guest accepts */
	start_timer(c);
	owe(c, OWE_REQUEST);
}

/* A host client that sent garbage: closed, the guest never hears of it. */
static void garbage(struct conn *c)
{
	struct vsock_mux *m = c->m;

	if (log_ratelimit(&m->nr_garbage))
		log_info(m->p.log, "vsock: a host client sent no valid CONNECT line [%llu]",
			 (unsigned long long)m->nr_garbage);
	conn_free(c);
}

/*
 * Byte by byte, so nothing of the stream that follows the line is read too early. The line
 * with its '\n' is at most VSOCK_CONNECT_LINE bytes.
 */
static void read_line(struct conn *c)
{
	for (;;) {
		char ch;
		ssize_t n = read(c->fd, &ch, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_free(c);
			return;
		}
		if (ch == '\n') {
			line_done(c);
			return;
		}
		if (c->line_len == sizeof(c->line) - 1) {
			garbage(c);
			return;
		}
		c->line[c->line_len++] = ch;
	}
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state == ST_LINE) {
		read_line(c);
		return;
	}
	/* Read later, straight into a receive buffer of the guest's. */
	c->data_ready = true;
	update_reading(c);
	make_ready(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	switch (c->state) {
	case ST_LINE:
		conn_free(c);
		break;
	case ST_REQUEST: /* the guest did not answer */
	case ST_CLOSING: /* the host did not take the rest */
		conn_reset(c);
		break;
	default:
		break;
	}
}

static void accept_later(struct vsock_mux *m)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100 * 1000};

	if (m->listening) {
		event_del(m->listen_ev);
		m->listening = false;
	}
	evtimer_add(m->retry_ev, &tv);
}

static void set_listening(struct vsock_mux *m)
{
	bool on = m->active && m->listen_ev;

	if (on == m->listening)
		return;
	if (on)
		m->listening = event_add(m->listen_ev, NULL) == 0;
	else {
		event_del(m->listen_ev);
		m->listening = false;
	}
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	set_listening(arg);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct vsock_mux *m = arg;

	for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
		struct conn *c;
		int fd = accept4((int)lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* Out of fds or memory: do not spin on a listener that stays readable. */
			if (log_ratelimit(&m->nr_accept_err))
				log_warn(m->p.log,
					 "vsock: cannot accept a host connection: %s [%llu]",
					 strerror(errno), (unsigned long long)m->nr_accept_err);
			accept_later(m);
			return;
		}
		/* Over the limit: accepted and closed at once, so the program knows (as FC). */
		if (m->nr_conns >= m->p.max_conns) {
			close(fd);
			continue;
		}
		c = conn_new(m, fd, ST_LINE);
		if (!c) {
			close(fd);
			continue;
		}
		start_timer(c);
		update_reading(c);
	}
}

/* ---- packets for the guest ---- */

static void fill_hdr(const struct vsock_mux *m, const struct conn *c, struct vsock_hdr *h,
		     uint16_t op)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = m->p.guest_cid,
		.src_port = c->host_port,
		.dst_port = c->guest_port,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = VSOCK_BUF_ALLOC,
		.fwd_cnt = c->fwd_cnt,
	};
}

static bool put_hdr(struct iov_cursor *buf, const struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_SIZE];

	vsock_hdr_encode(h, raw);
	return iov_write(buf, raw, sizeof(raw)) == 0;
}

/* A control packet for c; the credit it carries counts as told. */
static bool put_control(struct conn *c, struct iov_cursor *buf, uint16_t op, uint32_t flags)
{
	struct vsock_hdr h;

	fill_hdr(c->m, c, &h, op);
	h.flags = flags;
	c->fwd_told = c->fwd_cnt;
	c->owe &= ~(unsigned)OWE_CREDIT;
	return put_hdr(buf, &h);
}

/*
 * Reads the host's data straight into the guest's buffer, as far as its credit, the buffer
 * and the largest packet go. 1: a packet was written; 0: nothing to read after all; -1:
 * nothing, and c is gone (reset before the guest knew of it).
 */
static int put_data(struct conn *c, struct iov_cursor *buf, uint32_t *written)
{
	struct vsock_mux *m = c->m;
	struct iov_cursor payload = *buf;
	size_t room = iov_remaining(buf) - VSOCK_HDR_SIZE;
	uint32_t len = (uint32_t)MIN(MIN((size_t)credit(c), room), (size_t)VSOCK_MAX_PAYLOAD);
	struct vsock_hdr h;
	unsigned nr;
	ssize_t n;

	if (!len || iov_skip(&payload, VSOCK_HDR_SIZE) < 0 ||
	    iov_take(&payload, len, m->iov, MAX_IOV, &nr) < 0)
		return 0;
	do {
		n = readv(c->fd, m->iov, (int)nr);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->data_ready = false;
		update_reading(c);
		return 0;
	}
	if (n < 0) {
		/* The host's end broke: the guest gets a RST instead of data. */
		bool known = c->keyed;

		conn_reset(c);
		return known ? 0 : -1; /* -1: c is freed */
	}
	c->data_ready = false;
	if (n == 0) {
		c->host_eof = true;
		update_reading(c);
		owe(c, OWE_SHUTDOWN);
		return 0;
	}
	fill_hdr(m, c, &h, VSOCK_OP_RW);
	h.len = (uint32_t)n;
	c->tx_cnt += (uint32_t)n;
	c->fwd_told = c->fwd_cnt;
	c->owe &= ~(unsigned)OWE_CREDIT;
	if (!put_hdr(buf, &h))
		return 0;
	*written = VSOCK_HDR_SIZE + (uint32_t)n;
	/* There may be more: read again, once the guest can take it. */
	c->data_ready = true;
	return 1;
}

enum rx_result { RX_NONE, RX_SENT, RX_SENT_GONE };

/* One packet of c's into buf; RX_SENT_GONE: it was the last (a RST) and c is freed. */
static enum rx_result conn_rx(struct conn *c, struct iov_cursor *buf, uint32_t *written)
{
	*written = VSOCK_HDR_SIZE;
	if (c->owe & OWE_REQUEST) {
		c->owe &= ~(unsigned)OWE_REQUEST;
		return put_control(c, buf, VSOCK_OP_REQUEST, 0) ? RX_SENT : RX_NONE;
	}
	if (c->owe & OWE_RESPONSE) {
		c->owe &= ~(unsigned)OWE_RESPONSE;
		return put_control(c, buf, VSOCK_OP_RESPONSE, 0) ? RX_SENT : RX_NONE;
	}
	if (!(c->owe & OWE_RST) && c->state == ST_OPEN && c->data_ready && !c->guest_no_rcv &&
	    credit(c) > 0) {
		int r = put_data(c, buf, written);

		if (r > 0)
			return RX_SENT;
		if (r < 0)
			return RX_NONE; /* freed; the caller forgets it */
	}
	*written = VSOCK_HDR_SIZE;
	/* Also when put_data found the host's end broken and reset the connection. */
	if (c->owe & OWE_RST) {
		put_control(c, buf, VSOCK_OP_RST, 0);
		conn_free(c);
		return RX_SENT_GONE;
	}
	if (c->owe & OWE_SHUTDOWN) {
		c->owe &= ~(unsigned)OWE_SHUTDOWN;
		return put_control(c, buf, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND) ? RX_SENT
										   : RX_NONE;
	}
	if (c->owe & OWE_CREDIT)
		return put_control(c, buf, VSOCK_OP_CREDIT_UPDATE, 0) ? RX_SENT : RX_NONE;
	return RX_NONE;
}

bool vsock_mux_has_rx(const struct vsock_mux *m)
{
	return m->nr_orphans || !TAILQ_EMPTY(&m->ready);
}

bool vsock_mux_rx(struct vsock_mux *m, struct iov_cursor *buf, uint32_t *written)
{
	struct conn *c;

	if (iov_remaining(buf) < VSOCK_HDR_SIZE)
		return false;
	if (m->nr_orphans) {
		struct orphan *o = &m->orphans[m->orphan_head];
		struct vsock_hdr h = {.src_cid = o->cid,
				      .dst_cid = m->p.guest_cid,
				      .src_port = o->port,
				      .dst_port = o->guest_port,
				      .type = VSOCK_TYPE_STREAM,
				      .op = VSOCK_OP_RST};

		m->orphan_head = (m->orphan_head + 1) % VSOCK_MAX_ORPHANS;
		m->nr_orphans--;
		*written = VSOCK_HDR_SIZE;
		return put_hdr(buf, &h);
	}
	while ((c = TAILQ_FIRST(&m->ready))) {
		struct iov_cursor start = *buf;
		enum rx_result r;

		unready(c);
		r = conn_rx(c, buf, written);
		if (r == RX_SENT)
			make_ready(c); /* to the back of the queue, if it has more */
		if (r != RX_NONE)
			return true;
		*buf = start;
	}
	return false;
}

unsigned vsock_mux_nr_conns(const struct vsock_mux *m)
{
	return m->nr_conns;
}

/* ---- life ---- */

int vsock_mux_create(const struct vsock_mux_params *p, struct vsock_mux **out)
{
	struct vsock_mux *m;

	if (!p->path || !p->want_rx || p->listen_fd < 0 || !p->max_conns)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->p = *p;
	m->next_port = VSOCK_LOCAL_PORT_FIRST;
	TAILQ_INIT(&m->all);
	TAILQ_INIT(&m->ready);
	for (unsigned i = 0; i < HASH_BUCKETS; i++)
		LIST_INIT(&m->hash[i]);
	*out = m;
	return 0;
}

void vsock_mux_reset(struct vsock_mux *m)
{
	struct conn *c, *next;

	/* conn_free frees c alone: its successor stays valid. */
	for (c = TAILQ_FIRST(&m->all); c; c = next) {
		next = TAILQ_NEXT(c, all_link);
		conn_free(c);
	}
	m->nr_orphans = 0;
	m->orphan_head = 0;
}

int vsock_mux_start(struct vsock_mux *m, struct event_base *eb)
{
	if (m->eb)
		return -EBUSY;
	m->listen_ev = event_new(eb, m->p.listen_fd, EV_READ | EV_PERSIST, on_accept, m);
	m->retry_ev = evtimer_new(eb, on_retry, m);
	if (!m->listen_ev || !m->retry_ev) {
		free_event(&m->listen_ev);
		free_event(&m->retry_ev);
		return -ENOMEM;
	}
	m->eb = eb;
	set_listening(m);
	return 0;
}

void vsock_mux_stop(struct vsock_mux *m)
{
	/* Connections hold events of this loop: they go with it. */
	vsock_mux_reset(m);
	free_event(&m->listen_ev);
	free_event(&m->retry_ev);
	m->listening = false;
	m->eb = NULL;
}

void vsock_mux_set_active(struct vsock_mux *m, bool active)
{
	m->active = active;
	set_listening(m);
}

void vsock_mux_destroy(struct vsock_mux *m)
{
	if (!m)
		return;
	vsock_mux_stop(m);
	free(m);
}
