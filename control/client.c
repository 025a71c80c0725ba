/*
 * The control subcommands: build one request from the command line, send it, wait for the
 * one reply and show it. Results go to stdout as JSON, errors to the log (stderr).
 */
#include "control/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "control/proto.h"
#include "control/sockpath.h"
#include "core/log.h"
#include "core/util.h"

#define REPLY_TIMEOUT_MS 30000
/* Replies are small; this only bounds a misbehaving server. */
#define REPLY_MAX (1024u * 1024u)

struct client_cmd {
	const char *name;     /* argv[0] */
	const char *sub;      /* required argv[1] ("disk resize"), or NULL */
	enum control_cmd cmd; /* its arguments follow sub, then SOCKET */
	const char *usage;
};

static const struct client_cmd cmds[] = {
	{"stop", NULL, CONTROL_CMD_STOP, "stop SOCKET"},
	{"suspend", NULL, CONTROL_CMD_SUSPEND, "suspend SOCKET"},
	{"resume", NULL, CONTROL_CMD_RESUME, "resume SOCKET"},
	{"powerbtn", NULL, CONTROL_CMD_POWERBTN, "powerbtn SOCKET"},
	{"sleepbtn", NULL, CONTROL_CMD_SLEEPBTN, "sleepbtn SOCKET"},
	{"gpe", NULL, CONTROL_CMD_GPE, "gpe N SOCKET  (N: 0..63)"},
	{"balloon", NULL, CONTROL_CMD_BALLOON, "balloon SIZE_BYTES SOCKET"},
	{"balloon_stats", NULL, CONTROL_CMD_BALLOON_STATS, "balloon_stats SOCKET"},
	{"disk", "resize", CONTROL_CMD_DISK_RESIZE, "disk resize INDEX NEW_SIZE_BYTES SOCKET"},
	{"version", NULL, CONTROL_CMD_VERSION, "version SOCKET"},
};

static const struct client_cmd *find_cmd(const char *name)
{
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	}
	return NULL;
}

static unsigned nargs(enum control_cmd cmd)
{
	unsigned n = 0;

	while (n < CONTROL_PROTO_MAX_ARGS && control_proto_field_name(cmd, n))
		n++;
	return n;
}

static int usage_error(const struct client_cmd *cc, const struct logger *lg, const char *why)
{
	log_err(lg, "crosvm %s: %s; usage: crosvm %s", cc->name, why, cc->usage);
	return -EINVAL;
}

static int parse_args(const struct client_cmd *cc, int argc, char **argv, struct control_msg *m,
		      const char **sock, const struct logger *lg)
{
	unsigned first = cc->sub ? 2 : 1, n = nargs(cc->cmd), i;
	char why[160];

	if (cc->sub && (argc < 2 || strcmp(argv[1], cc->sub) != 0))
		return usage_error(cc, lg, "unknown or missing subcommand");
	if ((unsigned)argc != first + n + 1) {
		snprintf(why, sizeof(why), "expected %u argument%s, got %d", first + n,
			 first + n > 1 ? "s" : "", argc - 1);
		return usage_error(cc, lg, why);
	}
	memset(m, 0, sizeof(*m));
	m->cmd = cc->cmd;
	for (i = 0; i < n; i++) {
		const char *a = argv[first + i];
		uint64_t max = control_proto_field_max(cc->cmd, i);

		if (parse_u64(a, &m->args[i]) < 0 || m->args[i] > max) {
			snprintf(why, sizeof(why), "%s must be a number from 0 to %llu, not '%s'",
				 control_proto_field_name(cc->cmd, i), (unsigned long long)max, a);
			return usage_error(cc, lg, why);
		}
	}
	*sock = argv[first + n];
	if (!**sock)
		return usage_error(cc, lg, "the socket path is empty");
	return 0;
}

static int append_newline(char **line)
{
	size_t n = strlen(*line);
	char *p = realloc(*line, n + 2);

	if (!p)
		return -ENOMEM;
	p[n] = '\n';
	p[n + 1] = '\0';
	*line = p;
	return 0;
}

static int send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		/* MSG_NOSIGNAL: a server that hung up is an error to report, not a SIGPIPE. */
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads until one JSON value arrives; *why says what went wrong on failure. */
static int read_reply(int fd, struct json_object **out, const char **why)
{
	struct control_decoder *dec = NULL;
	int64_t deadline = now_ms() + REPLY_TIMEOUT_MS;
	struct json_object *v = NULL;
	bool done = false;
	char buf[4096];
	size_t used;
	ssize_t n;
	int r;

	r = control_decoder_new(REPLY_MAX, &dec);
	if (r < 0) {
		*why = "out of memory";
		return r;
	}
	while (!done) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - now_ms();

		r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			*why = "no reply within 30 s";
			r = -ETIMEDOUT;
			goto out;
		}
		n = r < 0 ? -1 : recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*why = n == 0 ? "the VM closed the connection without replying"
				      : "reading the reply failed";
			r = -EIO;
			goto out;
		}
		r = control_decoder_feed(dec, buf, (size_t)n, &used, &done, &v, NULL, 0);
		if (r < 0) {
			*why = "the reply is not valid JSON";
			r = -EIO;
			goto out;
		}
	}
	*out = v;
	r = 0;
out:
	control_decoder_free(dec);
	return r;
}

static int show_reply(const struct client_cmd *cc, struct json_object *v, const struct logger *lg)
{
	struct json_object *ok, *err;

	if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		log_err(lg, "crosvm %s: the VM sent a malformed reply", cc->name);
		return -EIO;
	}
	if (!json_object_get_boolean(ok)) {
		if (json_object_object_get_ex(v, "error", &err) &&
		    json_object_is_type(err, json_type_string))
			log_err(lg, "crosvm %s: the VM refused: %s", cc->name,
				json_object_get_string(err));
		else
			log_err(lg, "crosvm %s: the VM refused without saying why", cc->name);
		return -EIO;
	}
	json_object_object_del(v, "ok");
	if (json_object_object_length(v) > 0) {
		printf("%s\n", json_object_to_json_string_ext(
				       v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
	}
	return 0;
}

int control_client_main(int argc, char **argv, const struct logger *lg)
{
	const struct client_cmd *cc;
	struct json_object *reply = NULL;
	struct control_msg m;
	const char *sock = NULL, *why = NULL;
	char *line = NULL;
	int fd = -1, r;

	if (argc < 1 || !argv || !argv[0])
		return -ENOENT;
	cc = find_cmd(argv[0]);
	if (!cc)
		return -ENOENT;
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: crosvm %s\n", cc->usage);
		return 0;
	}
	r = parse_args(cc, argc, argv, &m, &sock, lg);
	if (r < 0)
		return r;
	r = control_proto_format_request(&m, &line);
	if (r < 0) {
		log_err(lg, "crosvm %s: cannot build the request: %s", cc->name, strerror(-r));
		goto out;
	}
	r = control_sockpath_connect(sock, &fd);
	if (r < 0) {
		log_err(lg, "crosvm %s: cannot connect to %s: %s%s", cc->name, sock, strerror(-r),
			r == -ENOENT	     ? " (is a VM running with -s there?)"
			: r == -ECONNREFUSED ? " (no VM is listening on it any more)"
					     : "");
		r = -EIO;
		goto out;
	}
	/*
	 * One send for the request and its newline: the VM may act on the request (stop) and
	 * close the connection before a second send, which would then fail with EPIPE.
	 */
	r = append_newline(&line);
	if (r == 0)
		r = send_all(fd, line, strlen(line));
	if (r < 0) {
		log_err(lg, "crosvm %s: cannot send the request to %s: %s", cc->name, sock,
			strerror(-r));
		r = -EIO;
		goto out;
	}
	r = read_reply(fd, &reply, &why);
	if (r < 0) {
		log_err(lg, "crosvm %s: %s: %s", cc->name, sock, why);
		r = r == -ETIMEDOUT ? r : -EIO;
		goto out;
	}
	r = show_reply(cc, reply, lg);
out:
	json_object_put(reply);
	close_fd(&fd);
	free(line);
	return r;
}
