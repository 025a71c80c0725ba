/*
 * Control socket server.
 *
 * Each client has an ordered queue of requests. A request enters the queue when it is
 * decoded, whether it is valid (the handler answers it, maybe later) or not (the server
 * answers at once), and leaves it when its reply and all earlier ones have been copied to the
 * client's output buffer; that is how replies keep request order. When a client goes away,
 * requests already answered are freed and the others are detached (client = NULL), so a late
 * control_reply_*() only frees them.
 *
 * A client is never freed from inside a call that may still use it: client_kill() marks it
 * dead and a zero-delay event frees it on the next loop iteration.
 *
 * Bounds per client: one message of CONTROL_PROTO_MAX_MSG, CLIENT_MAX_INFLIGHT requests in
 * the queue (reading pauses beyond that, so a client pipelining thousands of requests only
 * waits), OUT_LIMIT bytes of unread replies (beyond that it is dropped), and the idle timeout.
 */
#include "control/server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "control/proto.h"
#include "control/sockpath.h"
#include "core/log.h"
#include "core/util.h"

#define DEFAULT_MAX_CLIENTS 64
#define DEFAULT_IDLE_MS	    30000
#define CLIENT_MAX_INFLIGHT 16
#define OUT_LIMIT	    (256u * 1024u)
#define READ_CHUNK	    4096
#define ACCEPT_BURST	    16
#define ACCEPT_PAUSE_MS	    100
#define LISTEN_BACKLOG	    16
#define DISCARD_MAX	    (64u * 1024u)
#define NOTE_BURST	    10
#define NOTE_WINDOW_S	    10

struct control_client;

struct control_request {
	struct control_client *client; /* NULL once the client has gone */
	struct control_request *next;
	char *reply; /* the reply line once answered, until it is copied out */
	bool answered;
	struct control_msg msg;
};

struct control_client {
	struct control_server *srv;
	LIST_ENTRY(control_client) link;
	bool linked;
	int fd;
	unsigned id;
	struct event *rd, *wr, *idle, *reap;
	struct evbuffer *in, *out;
	struct control_decoder *dec;
	struct control_request *head, *tail;
	unsigned queued;
	bool paused;  /* reading stopped while the queue is full */
	bool eof;     /* the peer will send nothing more */
	bool closing; /* no more requests: close once every reply is out */
	bool dead;    /* freed on the next loop iteration */
};

struct control_server {
	struct event_base *eb;
	void (*handle)(void *ctx, struct control_request *req);
	void *ctx;
	const struct logger *log;
	unsigned max_clients, nclients, next_id;
	struct timeval idle_tv;
	int listen_fd;
	struct event *accept_ev, *accept_pause;
	struct control_sockpath sp;
	LIST_HEAD(, control_client) clients;
	time_t note_window;
	unsigned notes, suppressed;
};

static void client_flush(struct control_client *c);

/* Warnings caused by clients are rate limited: a script in a loop must not flood the log. */
static void note(struct control_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct control_server *s, const char *fmt, ...)
{
	struct timespec now;
	char msg[256];
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - s->note_window >= NOTE_WINDOW_S) {
		if (s->suppressed)
			log_warn(s->log, "control: %u more client problems not logged",
				 s->suppressed);
		s->note_window = now.tv_sec;
		s->notes = 0;
		s->suppressed = 0;
	}
	if (s->notes >= NOTE_BURST) {
		s->suppressed++;
		return;
	}
	s->notes++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn(s->log, "control: %s", msg);
}

/*
 * Closing a UNIX socket with unread input makes the peer's next read fail with ECONNRESET
 * instead of a clean end of file, so what the peer already sent is read and dropped first.
 */
static void discard_input(int fd)
{
	char buf[READ_CHUNK];
	size_t total = 0;
	ssize_t n;

	while (total < DISCARD_MAX) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

static void client_free(struct control_client *c)
{
	struct control_request *req, *next;

	for (req = c->head; req; req = next) {
		next = req->next;
		req->next = NULL;
		if (req->answered) {
			free(req->reply);
			free(req);
		} else {
			req->client = NULL;
		}
	}
	if (c->linked) {
		LIST_REMOVE(c, link);
		c->srv->nclients--;
	}
	if (c->rd)
		event_free(c->rd);
	if (c->wr)
		event_free(c->wr);
	if (c->idle)
		event_free(c->idle);
	if (c->reap)
		event_free(c->reap);
	if (c->in)
		evbuffer_free(c->in);
	if (c->out)
		evbuffer_free(c->out);
	control_decoder_free(c->dec);
	if (c->fd >= 0) {
		discard_input(c->fd);
		close(c->fd);
	}
	free(c);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	client_free(arg);
}

static void client_kill(struct control_client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	event_del(c->rd);
	event_del(c->wr);
	event_del(c->idle);
	event_active(c->reap, 0, 0);
}

static void arm_idle(struct control_client *c)
{
	if (!c->dead)
		evtimer_add(c->idle, &c->srv->idle_tv);
}

static void enqueue(struct control_client *c, struct control_request *req)
{
	req->client = c;
	req->next = NULL;
	if (c->tail)
		c->tail->next = req;
	else
		c->head = req;
	c->tail = req;
	c->queued++;
}

/* Records req's reply line (taken over) and sends what is due; NULL (out of memory) drops the
 * client, which can no longer be answered in order. */
static void answer(struct control_request *req, char *line)
{
	struct control_client *c = req->client;

	req->reply = line;
	req->answered = true;
	if (!line)
		client_kill(c);
	client_flush(c);
}

static void answer_error(struct control_client *c, const char *msg)
{
	struct control_request *req = calloc(1, sizeof(*req));
	char *line = NULL;

	if (!req) {
		client_kill(c);
		return;
	}
	enqueue(c, req);
	if (control_proto_format_error(msg, &line) < 0)
		line = NULL;
	answer(req, line);
}

static void maybe_finish(struct control_client *c)
{
	if (c->closing && c->queued == 0 && evbuffer_get_length(c->out) == 0)
		client_kill(c);
}

/* Copies the replies that are next in order to the output buffer and schedules the write. */
static void client_flush(struct control_client *c)
{
	struct control_request *req;

	if (c->dead)
		return;
	while ((req = c->head) && req->answered) {
		if (evbuffer_add(c->out, req->reply, strlen(req->reply)) < 0 ||
		    evbuffer_add(c->out, "\n", 1) < 0) {
			client_kill(c);
			return;
		}
		c->head = req->next;
		if (!c->head)
			c->tail = NULL;
		c->queued--;
		free(req->reply);
		free(req);
	}
	if (evbuffer_get_length(c->out) > OUT_LIMIT) {
		note(c->srv, "client %u does not read its replies; dropping it", c->id);
		client_kill(c);
		return;
	}
	if (evbuffer_get_length(c->out))
		event_add(c->wr, NULL);
	if (c->paused && c->queued < CLIENT_MAX_INFLIGHT) {
		/* Unprocessed input may already be buffered: run the read path once. */
		c->paused = false;
		if (!c->eof && !c->closing)
			event_add(c->rd, NULL);
		event_active(c->rd, EV_READ, 0);
	}
	maybe_finish(c);
}

static void dispatch(struct control_client *c, struct json_object *v)
{
	struct control_request *req = calloc(1, sizeof(*req));
	char err[CONTROL_PROTO_ERR_LEN];

	if (!req) {
		client_kill(c);
		return;
	}
	enqueue(c, req);
	if (control_proto_parse_value(v, &req->msg, err, sizeof(err)) < 0) {
		char *line = NULL;

		note(c->srv, "client %u: bad request: %s", c->id, err);
		if (control_proto_format_error(err, &line) < 0)
			line = NULL;
		answer(req, line);
		return;
	}
	log_debug(c->srv->log, "control: client %u: %s", c->id,
		  control_proto_cmd_name(req->msg.cmd));
	c->srv->handle(c->srv->ctx, req);
}

static void process_input(struct control_client *c)
{
	char err[CONTROL_PROTO_ERR_LEN];
	struct evbuffer_iovec v;
	struct json_object *val;
	bool done;
	size_t used;
	int r;

	while (!c->dead && !c->closing && evbuffer_get_length(c->in)) {
		if (c->queued >= CLIENT_MAX_INFLIGHT) {
			c->paused = true;
			event_del(c->rd);
			return;
		}
		if (evbuffer_peek(c->in, -1, NULL, &v, 1) < 1)
			break;
		r = control_decoder_feed(c->dec, v.iov_base, v.iov_len, &used, &done, &val, err,
					 sizeof(err));
		if (r < 0) {
			/* The stream cannot be resynchronised: say why, then close. */
			note(c->srv, "client %u: %s; closing it", c->id, err);
			evbuffer_drain(c->in, evbuffer_get_length(c->in));
			c->closing = true;
			event_del(c->rd);
			answer_error(c, err);
			return;
		}
		evbuffer_drain(c->in, used);
		if (done) {
			dispatch(c, val);
			json_object_put(val);
		}
	}
	if (c->eof && !c->dead && !c->closing && evbuffer_get_length(c->in) == 0) {
		/* A client that leaves mid-message is gone for good: nothing to answer. */
		if (control_decoder_mid_message(c->dec)) {
			client_kill(c);
			return;
		}
		/* A half-close (echo ... | socat) still gets the replies it is owed. */
		c->closing = true;
		maybe_finish(c);
	}
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *c = arg;
	char buf[READ_CHUNK];
	ssize_t n;

	if (c->dead)
		return;
	if (!c->eof && !c->closing && !c->paused) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			if (evbuffer_add(c->in, buf, (size_t)n) < 0) {
				client_kill(c);
				return;
			}
			arm_idle(c);
		} else if (n == 0) {
			c->eof = true;
			event_del(c->rd);
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			/* Reset by the peer or similar: it is gone, nobody to tell. */
			client_kill(c);
			return;
		}
	}
	process_input(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *c = arg;
	struct evbuffer_iovec v;
	ssize_t n;

	if (c->dead)
		return;
	while (evbuffer_peek(c->out, -1, NULL, &v, 1) >= 1 && v.iov_len) {
		/* MSG_NOSIGNAL: a vanished client must not raise SIGPIPE in the VMM. */
		n = send(c->fd, v.iov_base, v.iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_kill(c);
			return;
		}
		evbuffer_drain(c->out, (size_t)n);
	}
	event_del(c->wr);
	arm_idle(c);
	maybe_finish(c);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *c = arg;

	if (c->dead)
		return;
	/* Answered heads leave the queue at once, so a queued request means the VM is still
	 * working on it: waiting for the VM is not idleness. */
	if (c->head) {
		arm_idle(c);
		return;
	}
	log_debug(c->srv->log, "control: client %u idle, closing it", c->id);
	client_kill(c);
}

static int client_new(struct control_server *s, int fd)
{
	struct control_client *c = calloc(1, sizeof(*c));
	int r = -ENOMEM;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->srv = s;
	c->fd = fd;
	c->id = ++s->next_id;
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->rd = event_new(s->eb, fd, EV_READ | EV_PERSIST, read_cb, c);
	c->wr = event_new(s->eb, fd, EV_WRITE | EV_PERSIST, write_cb, c);
	c->idle = evtimer_new(s->eb, idle_cb, c);
	c->reap = event_new(s->eb, -1, 0, reap_cb, c);
	if (!c->in || !c->out || !c->rd || !c->wr || !c->idle || !c->reap)
		goto fail;
	r = control_decoder_new(CONTROL_PROTO_MAX_MSG, &c->dec);
	if (r < 0)
		goto fail;
	if (event_add(c->rd, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	arm_idle(c);
	LIST_INSERT_HEAD(&s->clients, c, link);
	c->linked = true;
	s->nclients++;
	log_debug(s->log, "control: client %u connected", c->id);
	return 0;

fail:
	client_free(c);
	return r;
}

/* Over the client limit: tell the newcomer why, without letting it hold a slot. */
static void reject(struct control_server *s, int fd)
{
	char msg[64], *line = NULL;

	snprintf(msg, sizeof(msg), "too many control clients (at most %u)", s->max_clients);
	if (control_proto_format_error(msg, &line) == 0) {
		struct iovec iov[2] = {{line, strlen(line)}, {(void *)"\n", 1}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

		if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			note(s, "cannot tell a rejected client why: %s", strerror(errno));
	}
	free(line);
	note(s, "too many clients (at most %u); rejected one", s->max_clients);
	discard_input(fd);
	close(fd);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_server *s = arg;

	event_add(s->accept_ev, NULL);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct control_server *s = arg;
	struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};
	unsigned i;
	int fd, r;

	for (i = 0; i < ACCEPT_BURST; i++) {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/*
			 * Out of fds or memory: the listener would fire again at once and spin, so
			 * it sleeps a little instead.
			 */
			note(s, "accept: %s; pausing for %d ms", strerror(errno), ACCEPT_PAUSE_MS);
			event_del(s->accept_ev);
			evtimer_add(s->accept_pause, &pause);
			return;
		}
		if (s->nclients >= s->max_clients) {
			reject(s, fd);
			continue;
		}
		r = client_new(s, fd);
		if (r < 0)
			note(s, "cannot set up a client: %s", strerror(-r));
	}
}

int control_server_create(const struct control_server_params *p, struct control_server **out)
{
	struct control_server *s;
	unsigned idle_ms;
	int r = -ENOMEM;

	if (!p || !out || !p->eb || !p->path || !p->handle)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->eb = p->eb;
	s->handle = p->handle;
	s->ctx = p->ctx;
	s->log = p->log;
	s->max_clients = p->max_clients ? p->max_clients : DEFAULT_MAX_CLIENTS;
	idle_ms = p->idle_timeout_ms ? p->idle_timeout_ms : DEFAULT_IDLE_MS;
	s->idle_tv.tv_sec = idle_ms / 1000;
	s->idle_tv.tv_usec = (idle_ms % 1000) * 1000;
	s->listen_fd = -1;
	LIST_INIT(&s->clients);
	r = control_sockpath_listen(p->path, LISTEN_BACKLOG, &s->sp, &s->listen_fd, s->log);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	s->accept_ev = event_new(s->eb, s->listen_fd, EV_READ | EV_PERSIST, accept_cb, s);
	s->accept_pause = evtimer_new(s->eb, accept_resume_cb, s);
	if (!s->accept_ev || !s->accept_pause || event_add(s->accept_ev, NULL) < 0)
		goto fail;
	log_info(s->log, "control: listening on %s", s->sp.path);
	*out = s;
	return 0;

fail:
	control_server_destroy(s);
	return r;
}

const char *control_server_path(const struct control_server *s)
{
	return s ? s->sp.path : NULL;
}

int control_server_listen_fd(const struct control_server *s)
{
	return s ? s->listen_fd : -EINVAL;
}

void control_server_destroy(struct control_server *s)
{
	struct control_client *c;

	if (!s)
		return;

	while ((c = LIST_FIRST(&s->clients)) != NULL) {
		LIST_REMOVE(c, link);
		c->linked = false;
		s->nclients--;
		client_free(c);
	}
	if (s->accept_ev)
		event_free(s->accept_ev);
	if (s->accept_pause)
		event_free(s->accept_pause);
	close_fd(&s->listen_fd);
	control_sockpath_unlink(&s->sp, s->log);
	free(s);
}

/* Sends a reply line built by the protocol module (NULL: it ran out of memory). */
static void reply_line(struct control_request *req, char *line)
{
	if (!req)
		return;
	if (!req->client) {
		free(line);
		free(req);
		return;
	}
	answer(req, line);
}

void control_reply_ok(struct control_request *req)
{
	char *line = NULL;

	if (control_proto_format_ok(&line) < 0)
		line = NULL;
	reply_line(req, line);
}

void control_reply_error(struct control_request *req, const char *msg)
{
	char *line = NULL;

	if (control_proto_format_error(msg, &line) < 0)
		line = NULL;
	reply_line(req, line);
}

void control_reply_version(struct control_request *req, const char *version)
{
	char *line = NULL;

	if (control_proto_format_version(version, &line) < 0)
		line = NULL;
	reply_line(req, line);
}

void control_reply_stats(struct control_request *req, const struct dev_balloon_stats *st)
{
	char *line = NULL;

	if (control_proto_format_stats(st, &line) < 0)
		line = NULL;
	reply_line(req, line);
}

const struct control_msg *control_request_msg(const struct control_request *req)
{
	return &req->msg;
}
