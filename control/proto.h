/*
 * The control socket's wire protocol (docs/control.md): a stream of JSON objects in, one JSON
 * object plus "\n" out per request. This module knows the commands and their arguments; it
 * does no I/O, so the server, the client, the tests and the fuzzer share it.
 */
#ifndef CROSVM_CONTROL_PROTO_H
#define CROSVM_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct dev_balloon_stats;

/* Largest request object the server accepts, in bytes of JSON text. */
#define CONTROL_PROTO_MAX_MSG (64u * 1024u)
/* Room for an error message handed back to the peer. */
#define CONTROL_PROTO_ERR_LEN 160
/* Deepest JSON nesting the decoder accepts; a valid request needs 1. */
#define CONTROL_PROTO_MAX_DEPTH 16
#define CONTROL_PROTO_MAX_ARGS	2

enum control_cmd {
	CONTROL_CMD_STOP,
	CONTROL_CMD_SUSPEND,
	CONTROL_CMD_RESUME,
	CONTROL_CMD_POWERBTN,
	CONTROL_CMD_SLEEPBTN,
	CONTROL_CMD_GPE,
	CONTROL_CMD_BALLOON,
	CONTROL_CMD_BALLOON_STATS,
	CONTROL_CMD_DISK_RESIZE,
	CONTROL_CMD_VERSION,
};

/* A validated request. args[] follow the command's field order (control_proto_field_name). */
struct control_msg {
	enum control_cmd cmd;
	uint64_t args[CONTROL_PROTO_MAX_ARGS];
};

/* The wire name of cmd ("stop", "disk_resize", ...); NULL for a value outside the enum. */
const char *control_proto_cmd_name(enum control_cmd cmd);
/* The wire name of cmd's idx-th argument, or NULL when it has fewer. */
const char *control_proto_field_name(enum control_cmd cmd, unsigned idx);
/* Largest value the idx-th argument of cmd may take (0 when there is no such argument). */
uint64_t control_proto_field_max(enum control_cmd cmd, unsigned idx);
/* Looks up a command by wire name: 0, or -ENOENT. */
int control_proto_cmd_lookup(const char *name, enum control_cmd *out);
/* Reads the argument called field of m: 0, or -ENOENT when m's command has no such field. */
int control_proto_msg_arg(const struct control_msg *m, const char *field, uint64_t *out);

/*
 * Validates one decoded JSON value as a request. Returns 0, or -EINVAL with a human readable
 * reason in err (always NUL-terminated when errlen > 0).
 */
int control_proto_parse_value(struct json_object *v, struct control_msg *out, char *err,
			      size_t errlen);
/* Parses exactly one request from buf (whitespace around it allowed); errors as above. */
int control_proto_parse(const char *buf, size_t len, struct control_msg *out, char *err,
			size_t errlen);

/*
 * Incremental decoder for a stream of JSON values (json_tokener underneath). Whitespace between
 * values is skipped; a value may arrive in any number of pieces.
 */
struct control_decoder;

int control_decoder_new(size_t max_msg, struct control_decoder **out);
void control_decoder_free(struct control_decoder *d);
/*
 * Consumes bytes from buf. Returns 0 with *complete set once a value is complete, *consumed
 * telling how much of buf it took and *value holding it (a new reference the caller puts;
 * NULL for JSON null); or 0 with *complete false after consuming all of buf without completing
 * one. Errors (the stream cannot be resynchronised; the decoder must not be fed again):
 * -EBADMSG for invalid JSON, -EMSGSIZE when the value exceeds max_msg bytes; err says why.
 */
int control_decoder_feed(struct control_decoder *d, const char *buf, size_t len, size_t *consumed,
			 bool *complete, struct json_object **value, char *err, size_t errlen);
/* True while part of a value has been consumed but the value is not complete. */
bool control_decoder_mid_message(const struct control_decoder *d);

/* Request text for m (one line, no newline), malloc'd into *out. */
int control_proto_format_request(const struct control_msg *m, char **out);
/*
 * Replies, each one line (the framing depends on replies holding no raw newline) without the
 * newline, malloc'd into *out:
 *   {"ok":true}
 *   {"ok":false,"error":msg}
 *   {"ok":true,"version":version}
 *   {"ok":true,"stats":{name:value, ...},"balloon_actual":bytes}: only the statistics the
 *     guest reported, named as crosvm's BalloonStats fields, in virtio tag order.
 */
int control_proto_format_ok(char **out);
int control_proto_format_error(const char *msg, char **out);
int control_proto_format_version(const char *version, char **out);
int control_proto_format_stats(const struct dev_balloon_stats *st, char **out);

#endif
