/*
 * Control server with real clients: a server runs on its own event_base in a thread, the test
 * talks to it through blocking sockets (with a receive timeout, so a bug fails instead of
 * hanging). The handler below plays the VM; where it needs to say something, it uses the
 * version reply's text:
 *   gpe           -> {"ok":true,"version":"gpe N"}  (echoes the validated argument)
 *   version       -> {"ok":true,"version":"0.1.0"}
 *   disk_resize   -> ok for index 0, an error otherwise
 *   balloon_stats -> answered later, from a zero-delay timer
 *   suspend       -> held until some client sends resume
 *   resume        -> answers every held suspend ("held"), then "released N"
 *   anything else -> {"ok":true}
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <json-c/json.h>

#include "control/client.h"
#include "control/proto.h"
#include "control/server.h"
#include "control/sockpath.h"
#include "core/device.h"
#include "test/unit/testutil.h"

#define MAX_HELD 64

struct harness {
	struct event_base *eb;
	struct control_server *srv;
	pthread_t thread;
	char dir[64];
	/* Loop thread only while it runs. */
	struct control_request *held[MAX_HELD];
	unsigned nheld;
};

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dev_balloon_stats st = {.valid = 1u << 4, .actual_bytes = 42};

	st.val[4] = 4096; /* free_memory */
	control_reply_stats(arg, &st);
}

static void handle(void *ctx, struct control_request *req)
{
	struct harness *h = ctx;
	const struct control_msg *m = control_request_msg(req);
	struct timeval now = {0, 0};
	uint64_t v = 0;
	char buf[96];
	unsigned i;

	switch (m->cmd) {
	case CONTROL_CMD_GPE:
		ck_assert_int_eq(control_proto_msg_arg(m, "gpe", &v), 0);
		ck_assert_uint_eq(v, m->args[0]);
		snprintf(buf, sizeof(buf), "gpe %llu", (unsigned long long)v);
		control_reply_version(req, buf);
		break;
	case CONTROL_CMD_VERSION:
		control_reply_version(req, "0.1.0");
		break;
	case CONTROL_CMD_DISK_RESIZE:
		snprintf(buf, sizeof(buf), "no disk %llu", (unsigned long long)m->args[0]);
		if (m->args[0] == 0)
			control_reply_ok(req);
		else
			control_reply_error(req, buf);
		break;
	case CONTROL_CMD_BALLOON_STATS:
		ck_assert_int_eq(event_base_once(h->eb, -1, EV_TIMEOUT, later_cb, req, &now), 0);
		break;
	case CONTROL_CMD_SUSPEND:
		if (h->nheld < MAX_HELD)
			h->held[h->nheld++] = req;
		else
			control_reply_error(req, "too many held");
		break;
	case CONTROL_CMD_RESUME:
		for (i = 0; i < h->nheld; i++)
			control_reply_version(h->held[i], "held");
		snprintf(buf, sizeof(buf), "released %u", h->nheld);
		h->nheld = 0;
		control_reply_version(req, buf);
		break;
	default:
		control_reply_ok(req);
		break;
	}
}

static void *loop_main(void *arg)
{
	struct harness *h = arg;

	event_base_dispatch(h->eb);
	return NULL;
}

static void h_start(struct harness *h, unsigned max_clients, unsigned idle_ms)
{
	struct control_server_params p = {
		.handle = handle,
		.ctx = h,
		.max_clients = max_clients,
		.idle_timeout_ms = idle_ms,
	};

	memset(h, 0, sizeof(*h));
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	h->eb = event_base_new();
	ck_assert_ptr_nonnull(h->eb);
	snprintf(h->dir, sizeof(h->dir), "/tmp/crosvm-ctl-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(h->dir));
	p.eb = h->eb;
	p.path = h->dir;
	ck_assert_int_eq(control_server_create(&p, &h->srv), 0);
	ck_assert_int_eq(pthread_create(&h->thread, NULL, loop_main, h), 0);
}

static void h_stop(struct harness *h)
{
	unsigned i;

	ck_assert_int_eq(event_base_loopexit(h->eb, NULL), 0);
	ck_assert_int_eq(pthread_join(h->thread, NULL), 0);
	control_server_destroy(h->srv);
	/* Requests still held outlive their clients and the server: replying only frees them. */
	for (i = 0; i < h->nheld; i++)
		control_reply_ok(h->held[i]);
	event_base_free(h->eb);
	ck_assert_int_eq(rmdir(h->dir), 0);
}

static int c_open(struct harness *h)
{
	struct timeval tv = {10, 0};
	int fd = -1;

	ck_assert_int_eq(control_sockpath_connect(control_server_path(h->srv), &fd), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

static void c_send_n(int fd, const void *buf, size_t len)
{
	ck_assert_int_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void c_send(int fd, const char *s)
{
	c_send_n(fd, s, strlen(s));
}

/* Reads one reply line (without its "\n") into buf; false on EOF, error or timeout. */
static bool c_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	char ch;

	while (n + 1 < len) {
		if (recv(fd, &ch, 1, 0) != 1)
			return false;
		if (ch == '\n') {
			buf[n] = '\0';
			return true;
		}
		buf[n++] = ch;
	}
	return false;
}

static void c_expect(int fd, const char *want)
{
	char line[1024];

	ck_assert_msg(c_line(fd, line, sizeof(line)), "no reply (wanted %s)", want);
	ck_assert_str_eq(line, want);
}

/* Expects {"ok":false,"error":...} with want in the error text. */
static void c_expect_error(int fd, const char *want)
{
	struct json_object *v, *ok, *err;
	char line[1024];

	ck_assert_msg(c_line(fd, line, sizeof(line)), "no reply (wanted error %s)", want);
	v = json_tokener_parse(line);
	ck_assert_msg(v != NULL, "not JSON: %s", line);
	ck_assert(json_object_object_get_ex(v, "ok", &ok));
	ck_assert(!json_object_get_boolean(ok));
	ck_assert(json_object_object_get_ex(v, "error", &err));
	ck_assert_msg(strstr(json_object_get_string(err), want), "'%s' lacks '%s'", line, want);
	json_object_put(v);
}

/* Sends resume on fd and returns how many held requests it released. */
static unsigned c_resume(int fd)
{
	unsigned n = 0;
	char line[128];

	c_send(fd, "{\"command\":\"resume\"}");
	ck_assert(c_line(fd, line, sizeof(line)));
	ck_assert_msg(sscanf(line, "{\"ok\":true,\"version\":\"released %u\"}", &n) == 1, "%s",
		      line);
	return n;
}

static void c_expect_eof(int fd)
{
	char ch;

	ck_assert_int_eq(recv(fd, &ch, 1, 0), 0);
}

START_TEST(request_reply)
{
	struct harness h;
	int fd;

	h_start(&h, 0, 0);
	fd = c_open(&h);
	c_send(fd, "{\"command\":\"stop\"}\n");
	c_expect(fd, "{\"ok\":true}");
	c_send(fd, "{\"command\":\"version\"}");
	c_expect(fd, "{\"ok\":true,\"version\":\"0.1.0\"}");
	c_send(fd, "{\"command\":\"gpe\",\"gpe\":5}");
	c_expect(fd, "{\"ok\":true,\"version\":\"gpe 5\"}");
	c_send(fd, "{\"command\":\"disk_resize\",\"index\":7,\"size\":4096}");
	c_expect(fd, "{\"ok\":false,\"error\":\"no disk 7\"}");
	c_send(fd, "{\"command\":\"balloon\",\"num_bytes\":2}");
	c_expect(fd, "{\"ok\":true}");
	close(fd);
	h_stop(&h);
}
END_TEST

START_TEST(invalid_requests_keep_the_connection)
{
	struct harness h;
	int fd;

	h_start(&h, 0, 0);
	fd = c_open(&h);
	c_send(fd, "{\"command\":\"reboot\"}");
	c_expect_error(fd, "unknown command \"reboot\"");
	c_send(fd, "[1,2] 7 \"stop\" null {}");
	c_expect_error(fd, "must be a JSON object");
	c_expect_error(fd, "must be a JSON object");
	c_expect_error(fd, "must be a JSON object");
	c_expect_error(fd, "must be a JSON object");
	c_expect_error(fd, "missing \"command\"");
	c_send(fd, "{\"command\":\"gpe\",\"gpe\":\"3\"}{\"command\":\"stop\",\"now\":1}");
	c_expect_error(fd, "must be an integer");
	c_expect_error(fd, "unknown field \"now\"");
	c_send(fd, "{\"command\":\"stop\"}");
	c_expect(fd, "{\"ok\":true}");
	close(fd);
	h_stop(&h);
}
END_TEST

START_TEST(several_requests_in_one_write)
{
	struct harness h;
	int fd;

	h_start(&h, 0, 0);
	fd = c_open(&h);
	c_send(fd, "{\"command\":\"gpe\",\"gpe\":1}{\"command\":\"version\"}\n\n  "
		   "{\"command\":\"gpe\",\"gpe\":2}\n{\"command\":\"reboot\"}{\"command\":\"gpe\","
		   "\"gpe\":3}");
	c_expect(fd, "{\"ok\":true,\"version\":\"gpe 1\"}");
	c_expect(fd, "{\"ok\":true,\"version\":\"0.1.0\"}");
	c_expect(fd, "{\"ok\":true,\"version\":\"gpe 2\"}");
	c_expect_error(fd, "unknown command");
	c_expect(fd, "{\"ok\":true,\"version\":\"gpe 3\"}");
	close(fd);
	h_stop(&h);
}
END_TEST

START_TEST(request_split_across_writes)
{
	static const char req[] = "{\"command\" :\n\"gpe\", \"gpe\"\n:\n42}";
	struct harness h;
	size_t i;
	int fd;

	h_start(&h, 0, 0);
	fd = c_open(&h);
	/* The pauses let the server see each piece on its own. */
	for (i = 0; i < sizeof(req) - 1; i++) {
		c_send_n(fd, req + i, 1);
		usleep(1000);
	}
	c_expect(fd, "{\"ok\":true,\"version\":\"gpe 42\"}");
	close(fd);
	h_stop(&h);
}
END_TEST

START_TEST(fifty_clients_at_once)
{
	struct harness h;
	char req[64], want[64];
	int fds[50];
	unsigned i;

	h_start(&h, 0, 0);
	for (i = 0; i < 50; i++)
		fds[i] = c_open(&h);
	for (i = 0; i < 50; i++) {
		snprintf(req, sizeof(req), "{\"command\":\"gpe\",\"gpe\":%u}", i);
		c_send(fds[i], req);
	}
	/* Read in reverse order: nobody's reply waits for anybody else's. */
	for (i = 50; i-- > 0;) {
		snprintf(want, sizeof(want), "{\"ok\":true,\"version\":\"gpe %u\"}", i);
		c_expect(fds[i], want);
		close(fds[i]);
	}
	h_stop(&h);
}
END_TEST

START_TEST(garbage_client_closed_others_keep_working)
{
	static const char garbage[] = "\xff\xfe\x00\x01garbage\x80";
	struct harness h;
	int good, bad1, bad2;

	h_start(&h, 0, 0);
	good = c_open(&h);
	bad1 = c_open(&h);
	bad2 = c_open(&h);
	c_send(good, "{\"command\":\"version\"}");
	c_expect(good, "{\"ok\":true,\"version\":\"0.1.0\"}");
	c_send_n(bad1, garbage, sizeof(garbage) - 1);
	c_expect_error(bad1, "invalid JSON");
	c_expect_eof(bad1);
	/* A valid request before the junk is still answered, in order. */
	c_send(bad2, "{\"command\":\"stop\"} {\"command\":\"stop\"]");
	c_expect(bad2, "{\"ok\":true}");
	c_expect_error(bad2, "invalid JSON");
	c_expect_eof(bad2);
	c_send(good, "{\"command\":\"gpe\",\"gpe\":9}");
	c_expect(good, "{\"ok\":true,\"version\":\"gpe 9\"}");
	close(bad1);
	close(bad2);
	close(good);
	h_stop(&h);
}
END_TEST

START_TEST(oversize_message_closes)
{
	struct harness h;
	/* Well past the limit, so that unread input is left when the server closes. */
	size_t n = CONTROL_PROTO_MAX_MSG + 32 * 1024;
	char *big = malloc(n);
	int fd, other;

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', n);
	memcpy(big, "{\"command\":\"stop\",\"pad\":\"", 25);
	h_start(&h, 0, 0);
	fd = c_open(&h);
	other = c_open(&h);
	c_send_n(fd, big, n);
	c_expect_error(fd, "larger than 65536 bytes");
	c_expect_eof(fd);
	c_send(other, "{\"command\":\"stop\"}");
	c_expect(other, "{\"ok\":true}");
	close(fd);
	close(other);
	free(big);
	h_stop(&h);
}
END_TEST

START_TEST(disconnect_mid_message_and_with_pending_request)
{
	struct harness h;
	int a, b, c;

	h_start(&h, 0, 0);
	a = c_open(&h);
	c_send(a, "{\"command\":\"gpe\",\"gp");
	close(a);
	/* Leaves with a request the VM has not answered yet... */
	b = c_open(&h);
	c_send(b, "{\"command\":\"suspend\"}{\"command\":\"suspend\"}{\"command\":\"version\"}");
	c = c_open(&h);
	c_send(c, "{\"command\":\"stop\"}");
	c_expect(c, "{\"ok\":true}");
	close(b);
	/* ...which the VM then answers: nothing is sent, nothing breaks. */
	c_resume(c);
	/* A request answered later from a timer, its client already gone. */
	b = c_open(&h);
	c_send(b, "{\"command\":\"balloon_stats\"}");
	close(b);
	c_send(c, "{\"command\":\"version\"}");
	c_expect(c, "{\"ok\":true,\"version\":\"0.1.0\"}");
	close(c);
	h_stop(&h);
}
END_TEST

START_TEST(pending_at_shutdown)
{
	struct harness h;
	int fd;

	h_start(&h, 0, 0);
	fd = c_open(&h);
	c_send(fd, "{\"command\":\"suspend\"}");
	/* Make sure the server has taken it before stopping. */
	c_send(fd, "{\"command\":\"gpe\",\"gpe\":1}{\"command\":\"gpe\",\"gpe\":\"x\"}");
	c_send(fd, "{\"command\":\"suspend\",\"x\":1}");
	close(fd);
	fd = c_open(&h);
	c_send(fd, "{\"command\":\"stop\"}");
	c_expect(fd, "{\"ok\":true}");
	/* h_stop replies to the held request after destroying the server. */
	h_stop(&h);
	close(fd);
}
END_TEST

START_TEST(async_replies_keep_order)
{
	struct harness h;
	int a, b;

	h_start(&h, 0, 0);
	a = c_open(&h);
	b = c_open(&h);
	c_send(a, "{\"command\":\"suspend\"}{\"command\":\"gpe\",\"gpe\":8}{\"command\":\"x\"}"
		  "{\"command\":\"balloon_stats\"}");
	/* b is not held up by a's pending request. */
	c_send(b, "{\"command\":\"version\"}");
	c_expect(b, "{\"ok\":true,\"version\":\"0.1.0\"}");
	ck_assert_uint_eq(c_resume(b), 1);
	c_expect(a, "{\"ok\":true,\"version\":\"held\"}");
	c_expect(a, "{\"ok\":true,\"version\":\"gpe 8\"}");
	c_expect_error(a, "unknown command");
	c_expect(a, "{\"ok\":true,\"stats\":{\"free_memory\":4096},\"balloon_actual\":42}");
	close(a);
	close(b);
	h_stop(&h);
}
END_TEST

START_TEST(pipelining_beyond_the_in_flight_limit)
{
	struct harness h;
	unsigned i, n, total = 0;
	char buf[64];
	int a, b;

	h_start(&h, 0, 0);
	a = c_open(&h);
	b = c_open(&h);
	/*
	 * 40 requests the VM holds, then 20 more: the server takes at most 16 at a time from
	 * one client, and nothing is lost or reordered.
	 */
	for (i = 0; i < 40; i++)
		c_send(a, "{\"command\":\"suspend\"}");
	for (i = 0; i < 20; i++) {
		snprintf(buf, sizeof(buf), "{\"command\":\"gpe\",\"gpe\":%u}", i);
		c_send(a, buf);
	}
	for (i = 0; i < 100000 && total < 40; i++) {
		n = c_resume(b);
		ck_assert_uint_le(n, 16);
		total += n;
	}
	ck_assert_uint_eq(total, 40);
	for (i = 0; i < 40; i++)
		c_expect(a, "{\"ok\":true,\"version\":\"held\"}");
	for (i = 0; i < 20; i++) {
		snprintf(buf, sizeof(buf), "{\"ok\":true,\"version\":\"gpe %u\"}", i);
		c_expect(a, buf);
	}
	close(a);
	close(b);
	h_stop(&h);
}
END_TEST

START_TEST(half_close_still_gets_replies)
{
	struct harness h;
	unsigned i;
	int fd, other;

	h_start(&h, 0, 0);
	fd = c_open(&h);
	other = c_open(&h);
	/* What `echo ... | socat - UNIX-CONNECT:...` does, with a reply the VM gives later. */
	c_send(fd, "{\"command\":\"suspend\"}\n{\"command\":\"stop\"}\n");
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	/* Give the server time to see the end of input before the VM answers. */
	usleep(100 * 1000);
	/* Until the server has taken the suspend in. */
	for (i = 0; i < 10000 && c_resume(other) == 0; i++)
		usleep(1000);
	c_expect(fd, "{\"ok\":true,\"version\":\"held\"}");
	c_expect(fd, "{\"ok\":true}");
	c_expect_eof(fd);
	close(fd);
	close(other);
	h_stop(&h);
}
END_TEST

START_TEST(client_not_reading_is_dropped)
{
	static const char req[] = "{\"command\":\"version\"}";
	struct harness h;
	bool dropped = false;
	unsigned i;
	int fd, other;

	h_start(&h, 0, 0);
	fd = c_open(&h);
	other = c_open(&h);
	/* Far more replies than the output limit and the socket buffers can hold. */
	for (i = 0; i < 200000 && !dropped; i++)
		dropped = send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0;
	ck_assert(dropped);
	c_send(other, "{\"command\":\"stop\"}");
	c_expect(other, "{\"ok\":true}");
	close(fd);
	close(other);
	h_stop(&h);
}
END_TEST

START_TEST(idle_client_times_out)
{
	struct harness h;
	int idle, waiting, b;

	h_start(&h, 0, 50);
	idle = c_open(&h);
	c_expect_eof(idle);
	close(idle);
	/* A client waiting for the VM's answer is not idle, however long the VM takes. */
	waiting = c_open(&h);
	c_send(waiting, "{\"command\":\"suspend\"}");
	usleep(300 * 1000);
	b = c_open(&h);
	ck_assert_uint_eq(c_resume(b), 1);
	c_expect(waiting, "{\"ok\":true,\"version\":\"held\"}");
	close(b);
	close(waiting);
	h_stop(&h);
}
END_TEST

START_TEST(too_many_clients)
{
	struct harness h;
	int a, b, c;

	h_start(&h, 2, 0);
	a = c_open(&h);
	b = c_open(&h);
	c_send(a, "{\"command\":\"stop\"}");
	c_expect(a, "{\"ok\":true}");
	c_send(b, "{\"command\":\"stop\"}");
	c_expect(b, "{\"ok\":true}");
	c = c_open(&h);
	c_expect_error(c, "too many control clients (at most 2)");
	c_expect_eof(c);
	close(c);
	c_send(a, "{\"command\":\"version\"}");
	c_expect(a, "{\"ok\":true,\"version\":\"0.1.0\"}");
	close(a);
	close(b);
	h_stop(&h);
}
END_TEST

START_TEST(socket_is_0600_and_removed)
{
	struct harness h;
	char path[128];
	struct stat st;

	h_start(&h, 0, 0);
	snprintf(path, sizeof(path), "%s/crosvm-%d.sock", h.dir, (int)getpid());
	ck_assert_str_eq(control_server_path(h.srv), path);
	ck_assert_int_ge(control_server_listen_fd(h.srv), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	h_stop(&h);
	ck_assert_int_eq(lstat(path, &st), -1);
}
END_TEST

/* Runs the client subcommand with stdout captured into out. */
static int run_client(char **argv, int argc, char *out, size_t outlen)
{
	char tmpl[] = "/tmp/crosvm-ctl-out-XXXXXX";
	int fd = mkstemp(tmpl), saved, r;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(tmpl);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
	r = control_client_main(argc, argv, NULL);
	fflush(stdout);
	ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
	close(saved);
	n = pread(fd, out, outlen - 1, 0);
	ck_assert_int_ge(n, 0);
	out[n] = '\0';
	close(fd);
	return r;
}

#define RUN(out, ...)                                                                              \
	({                                                                                         \
		char *argv_[] = {__VA_ARGS__, NULL};                                               \
		run_client(argv_, (int)(sizeof(argv_) / sizeof(argv_[0])) - 1, out, sizeof(out));  \
	})

START_TEST(client_subcommands)
{
	struct harness h;
	char out[512], path[128], missing[160];
	int fd;

	h_start(&h, 0, 0);
	snprintf(path, sizeof(path), "%s", control_server_path(h.srv));
	snprintf(missing, sizeof(missing), "%s/nothing.sock", h.dir);

	ck_assert_int_eq(RUN(out, "stop", path), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(RUN(out, "powerbtn", path), 0);
	ck_assert_int_eq(RUN(out, "sleepbtn", path), 0);
	ck_assert_int_eq(RUN(out, "gpe", "63", path), 0);
	ck_assert_str_eq(out, "{\"version\":\"gpe 63\"}\n");
	ck_assert_int_eq(RUN(out, "balloon", "0x100000", path), 0);
	ck_assert_int_eq(RUN(out, "version", path), 0);
	ck_assert_str_eq(out, "{\"version\":\"0.1.0\"}\n");
	ck_assert_int_eq(RUN(out, "balloon_stats", path), 0);
	ck_assert_str_eq(out, "{\"stats\":{\"free_memory\":4096},\"balloon_actual\":42}\n");
	ck_assert_int_eq(RUN(out, "disk", "resize", "0", "1048576", path), 0);
	/* The VM says no. */
	ck_assert_int_eq(RUN(out, "disk", "resize", "3", "1048576", path), -EIO);
	ck_assert_str_eq(out, "");
	/* Usage errors. */
	ck_assert_int_eq(RUN(out, "gpe", "64", path), -EINVAL);
	ck_assert_int_eq(RUN(out, "gpe", "-1", path), -EINVAL);
	ck_assert_int_eq(RUN(out, "gpe", "x", path), -EINVAL);
	ck_assert_int_eq(RUN(out, "balloon", path), -EINVAL);
	ck_assert_int_eq(RUN(out, "stop"), -EINVAL);
	ck_assert_int_eq(RUN(out, "stop", path, path), -EINVAL);
	ck_assert_int_eq(RUN(out, "disk", "grow", "0", "1", path), -EINVAL);
	ck_assert_int_eq(RUN(out, "disk", "resize", "0", path), -EINVAL);
	ck_assert_int_eq(RUN(out, "stop", ""), -EINVAL);
	ck_assert_int_eq(RUN(out, "reboot", path), -ENOENT);
	ck_assert_int_eq(RUN(out, "stop", "--help"), 0);
	ck_assert_str_eq(out, "usage: crosvm stop SOCKET\n");
	/* Nobody there: an error other than "unknown command". */
	ck_assert_int_eq(RUN(out, "stop", missing), -EIO);
	/* The server keeps serving after all that. */
	fd = c_open(&h);
	c_send(fd, "{\"command\":\"version\"}");
	c_expect(fd, "{\"ok\":true,\"version\":\"0.1.0\"}");
	close(fd);
	h_stop(&h);
}
END_TEST

START_TEST(client_against_a_rejecting_server)
{
	struct harness h;
	char out[256], path[128];
	int a;

	h_start(&h, 1, 0);
	snprintf(path, sizeof(path), "%s", control_server_path(h.srv));
	a = c_open(&h);
	c_send(a, "{\"command\":\"stop\"}");
	c_expect(a, "{\"ok\":true}");
	ck_assert_int_eq(RUN(out, "stop", path), -EIO);
	close(a);
	h_stop(&h);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("control_server");
	TCase *tc = tcase_create("server");

	tcase_add_test(tc, request_reply);
	tcase_add_test(tc, invalid_requests_keep_the_connection);
	tcase_add_test(tc, several_requests_in_one_write);
	tcase_add_test(tc, request_split_across_writes);
	tcase_add_test(tc, fifty_clients_at_once);
	tcase_add_test(tc, garbage_client_closed_others_keep_working);
	tcase_add_test(tc, oversize_message_closes);
	tcase_add_test(tc, disconnect_mid_message_and_with_pending_request);
	tcase_add_test(tc, pending_at_shutdown);
	tcase_add_test(tc, async_replies_keep_order);
	tcase_add_test(tc, pipelining_beyond_the_in_flight_limit);
	tcase_add_test(tc, half_close_still_gets_replies);
	tcase_add_test(tc, client_not_reading_is_dropped);
	tcase_add_test(tc, idle_client_times_out);
	tcase_add_test(tc, too_many_clients);
	tcase_add_test(tc, socket_is_0600_and_removed);
	tcase_add_test(tc, client_subcommands);
	tcase_add_test(tc, client_against_a_rejecting_server);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
