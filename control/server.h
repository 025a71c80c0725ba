/*
 * The control socket server, on the VM's libevent loop. It accepts clients, decodes and
 * validates their requests (control/proto.h) and hands each valid one to a handler, which
 * answers now or later with control_reply*(). Invalid requests are answered by the server
 * itself. No client can stall the loop or the other clients.
 *
 * Threading: everything here, control_reply*() included, runs on the loop thread.
 */
#ifndef CROSVM_CONTROL_SERVER_H
#define CROSVM_CONTROL_SERVER_H

#include <stdint.h>

struct event_base;
struct logger;
struct control_server;
struct control_msg;
struct dev_balloon_stats;

/* One parsed, validated request awaiting its reply. */
struct control_request;

/* The request, typed: its command and arguments (control/proto.h). */
const struct control_msg *control_request_msg(const struct control_request *req);

/*
 * Replies to req if its client is still connected, then frees req. Exactly one of these
 * per request, on the loop thread, now or later (balloon stats wait for the guest), even
 * after the client or the whole server has gone (then it only frees req). Replies to one
 * client keep request order. The server writes the JSON; handlers never see any.
 */
/* {"ok":true} */
void control_reply_ok(struct control_request *req);
/* {"ok":false,"error":msg} */
void control_reply_error(struct control_request *req, const char *msg);
/* {"ok":true,"version":version} */
void control_reply_version(struct control_request *req, const char *version);
/* {"ok":true,"stats":{...},"balloon_actual":N}: the statistics the guest reported */
void control_reply_stats(struct control_request *req, const struct dev_balloon_stats *st);

struct control_server_params {
	struct event_base *eb;
	const char *path; /* -s argument: a socket path or a directory */
	/*
	 * Called for every valid request. Must eventually call control_reply* exactly once. It
	 * may do so before returning, but must not destroy the server from inside the call.
	 */
	void (*handle)(void *ctx, struct control_request *req);
	void *ctx;
	const struct logger *log;
	unsigned max_clients;	  /* default 64 when 0 */
	unsigned idle_timeout_ms; /* default 30000 when 0 */
};

int control_server_create(const struct control_server_params *p, struct control_server **out);
/* The resolved socket path (a directory argument gets crosvm-<pid>.sock). */
const char *control_server_path(const struct control_server *s);
int control_server_listen_fd(const struct control_server *s);
/*
 * Closes every client (their pending requests stay valid for control_reply) and unlinks the
 * socket if it still is ours. Not from inside the handler.
 */
void control_server_destroy(struct control_server *s);

#endif
