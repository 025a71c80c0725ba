/*
 * Control protocol: the command table, the request validator, the stream decoder and the
 * reply formatter. Everything a peer sends is hostile: the validator rejects anything that is
 * not exactly a known command with exactly its arguments, so a typo never passes silently.
 */
#include "control/proto.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/device.h"
#include "core/util.h"

/* Names echoed back in error messages are cut to this many bytes. */
#define ECHO_MAX 32

struct field_desc {
	const char *name;
	uint64_t max;
};

struct cmd_desc {
	const char *name;
	unsigned nfields;
	struct field_desc fields[CONTROL_PROTO_MAX_ARGS];
};

/*
 * Indexed by enum control_cmd. Values above INT64_MAX are refused because json-c saturates
 * integers that overflow to UINT64_MAX / INT64_MIN, which would otherwise pass as valid.
 */
static const struct cmd_desc cmds[] = {
	[CONTROL_CMD_STOP] = {"stop", 0, {{NULL, 0}}},
	[CONTROL_CMD_SUSPEND] = {"suspend", 0, {{NULL, 0}}},
	[CONTROL_CMD_RESUME] = {"resume", 0, {{NULL, 0}}},
	[CONTROL_CMD_POWERBTN] = {"powerbtn", 0, {{NULL, 0}}},
	[CONTROL_CMD_SLEEPBTN] = {"sleepbtn", 0, {{NULL, 0}}},
	[CONTROL_CMD_GPE] = {"gpe", 1, {{"gpe", 63}}},
	[CONTROL_CMD_BALLOON] = {"balloon", 1, {{"num_bytes", INT64_MAX}}},
	[CONTROL_CMD_BALLOON_STATS] = {"balloon_stats", 0, {{NULL, 0}}},
	[CONTROL_CMD_DISK_RESIZE] = {"disk_resize", 2, {{"index", INT64_MAX}, {"size", INT64_MAX}}},
	[CONTROL_CMD_VERSION] = {"version", 0, {{NULL, 0}}},
};

struct control_decoder {
	struct json_tokener *tok;
	size_t max_msg;
	size_t msg_bytes; /* bytes of the value being decoded fed to tok so far */
	bool failed;
};

static const struct cmd_desc *desc_of(enum control_cmd cmd)
{
	if ((unsigned)cmd >= ARRAY_SIZE(cmds))
		return NULL;
	return &cmds[cmd];
}

const char *control_proto_cmd_name(enum control_cmd cmd)
{
	const struct cmd_desc *d = desc_of(cmd);

	return d ? d->name : NULL;
}

const char *control_proto_field_name(enum control_cmd cmd, unsigned idx)
{
	const struct cmd_desc *d = desc_of(cmd);

	if (!d || idx >= d->nfields)
		return NULL;
	return d->fields[idx].name;
}

uint64_t control_proto_field_max(enum control_cmd cmd, unsigned idx)
{
	const struct cmd_desc *d = desc_of(cmd);

	if (!d || idx >= d->nfields)
		return 0;
	return d->fields[idx].max;
}

static int lookup_len(const char *name, size_t len, enum control_cmd *out)
{
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (strlen(cmds[i].name) == len && memcmp(cmds[i].name, name, len) == 0) {
			*out = (enum control_cmd)i;
			return 0;
		}
	}
	return -ENOENT;
}

int control_proto_cmd_lookup(const char *name, enum control_cmd *out)
{
	if (!name || !out)
		return -EINVAL;
	return lookup_len(name, strlen(name), out);
}

static int field_index(const struct cmd_desc *d, const char *field, unsigned *idx)
{
	unsigned i;

	for (i = 0; i < d->nfields; i++) {
		if (strcmp(d->fields[i].name, field) == 0) {
			*idx = i;
			return 0;
		}
	}
	return -ENOENT;
}

int control_proto_msg_arg(const struct control_msg *m, const char *field, uint64_t *out)
{
	const struct cmd_desc *d;
	unsigned idx;
	int r;

	if (!m || !field || !out)
		return -EINVAL;
	d = desc_of(m->cmd);
	if (!d)
		return -EINVAL;
	r = field_index(d, field, &idx);
	if (r < 0)
		return r;
	*out = m->args[idx];
	return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Copies a peer-supplied name for an error message: short, printable ASCII only, so that it
 * cannot forge log lines or bloat replies.
 */
static void echo_name(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; i < len && i < ECHO_MAX && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		out[n++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	if (i < len && n + 4 < outlen) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static int parse_field(struct json_object *v, const char *cmd, const struct field_desc *f,
		       uint64_t *out, char *err, size_t errlen)
{
	struct json_object *fv;

	if (!json_object_object_get_ex(v, f->name, &fv)) {
		set_err(err, errlen, "missing field \"%s\" for command \"%s\"", f->name, cmd);
		return -EINVAL;
	}
	/* json_type_int covers exactly the JSON numbers without fraction or exponent. */
	if (!json_object_is_type(fv, json_type_int)) {
		set_err(err, errlen, "\"%s\" must be an integer", f->name);
		return -EINVAL;
	}
	if (json_object_get_int64(fv) < 0) {
		set_err(err, errlen, "\"%s\" must not be negative", f->name);
		return -EINVAL;
	}
	*out = json_object_get_uint64(fv);
	if (*out > f->max) {
		set_err(err, errlen, "\"%s\" is out of range (0..%llu)", f->name,
			(unsigned long long)f->max);
		return -EINVAL;
	}
	return 0;
}

static int check_fields(struct json_object *v, const struct cmd_desc *d, char *err, size_t errlen)
{
	struct json_object_iterator it = json_object_iter_begin(v);
	struct json_object_iterator end = json_object_iter_end(v);
	char shown[ECHO_MAX + 8];
	unsigned idx;

	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);

		if (strcmp(key, "command") == 0 || field_index(d, key, &idx) == 0)
			continue;
		echo_name(key, strlen(key), shown, sizeof(shown));
		set_err(err, errlen, "unknown field \"%s\" for command \"%s\"", shown, d->name);
		return -EINVAL;
	}
	return 0;
}

int control_proto_parse_value(struct json_object *v, struct control_msg *out, char *err,
			      size_t errlen)
{
	struct control_msg m = {.cmd = CONTROL_CMD_STOP};
	struct json_object *cv;
	const struct cmd_desc *d;
	char shown[ECHO_MAX + 8];
	const char *name;
	size_t len;
	unsigned i;
	int r;

	if (!out)
		return -EINVAL;
	if (!json_object_is_type(v, json_type_object)) {
		set_err(err, errlen, "a request must be a JSON object");
		return -EINVAL;
	}
	if (!json_object_object_get_ex(v, "command", &cv)) {
		set_err(err, errlen, "missing \"command\"");
		return -EINVAL;
	}
	if (!json_object_is_type(cv, json_type_string)) {
		set_err(err, errlen, "\"command\" must be a string");
		return -EINVAL;
	}
	name = json_object_get_string(cv);
	/* The length, not strlen: "stop\u0000x" must not pass as "stop". */
	len = (size_t)json_object_get_string_len(cv);
	if (lookup_len(name, len, &m.cmd) < 0) {
		echo_name(name, len, shown, sizeof(shown));
		set_err(err, errlen, "unknown command \"%s\"", shown);
		return -EINVAL;
	}
	d = desc_of(m.cmd);
	r = check_fields(v, d, err, errlen);
	if (r < 0)
		return r;
	for (i = 0; i < d->nfields; i++) {
		r = parse_field(v, d->name, &d->fields[i], &m.args[i], err, errlen);
		if (r < 0)
			return r;
	}
	*out = m;
	return 0;
}

int control_decoder_new(size_t max_msg, struct control_decoder **out)
{
	struct control_decoder *d;

	if (!out || max_msg == 0 || max_msg > INT_MAX)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->tok = json_tokener_new_ex(CONTROL_PROTO_MAX_DEPTH);
	if (!d->tok) {
		free(d);
		return -ENOMEM;
	}
	/*
	 * Strict: real JSON only (no comments, trailing commas or leading zeros), so scripts do
	 * not come to rely on json-c's leniency. Trailing chars: the next value follows.
	 */
	json_tokener_set_flags(d->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
					       JSON_TOKENER_VALIDATE_UTF8);
	d->max_msg = max_msg;
	*out = d;
	return 0;
}

void control_decoder_free(struct control_decoder *d)
{
	if (!d)
		return;
	json_tokener_free(d->tok);
	free(d);
}

bool control_decoder_mid_message(const struct control_decoder *d)
{
	return d && d->msg_bytes > 0;
}

static bool is_json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int control_decoder_feed(struct control_decoder *d, const char *buf, size_t len, size_t *consumed,
			 bool *complete, struct json_object **value, char *err, size_t errlen)
{
	size_t pos = 0;

	if (!d || (!buf && len) || !consumed || !complete || !value)
		return -EINVAL;
	*consumed = 0;
	*complete = false;
	*value = NULL;
	if (d->failed) {
		set_err(err, errlen, "stream already failed");
		return -EBADMSG;
	}
	while (pos < len) {
		enum json_tokener_error jerr;
		struct json_object *obj;
		size_t n, used;

		/* Whitespace between values does not count against the size limit. */
		if (d->msg_bytes == 0) {
			while (pos < len && is_json_ws(buf[pos]))
				pos++;
			if (pos == len)
				break;
		}
		if (d->msg_bytes >= d->max_msg) {
			d->failed = true;
			set_err(err, errlen, "message larger than %zu bytes", d->max_msg);
			return -EMSGSIZE;
		}
		n = MIN(len - pos, d->max_msg - d->msg_bytes);
		obj = json_tokener_parse_ex(d->tok, buf + pos, (int)n);
		jerr = json_tokener_get_error(d->tok);
		if (jerr == json_tokener_continue) {
			pos += n;
			d->msg_bytes += n;
			continue;
		}
		used = json_tokener_get_parse_end(d->tok);
		/* A number ends at the byte after it, so a value can complete having used none
		 * of this piece; but a value out of no bytes at all would loop forever. */
		if (jerr == json_tokener_success && used <= n && (used || d->msg_bytes)) {
			*complete = true;
			*value = obj;
			*consumed = pos + used;
			d->msg_bytes = 0;
			json_tokener_reset(d->tok);
			return 0;
		}
		json_object_put(obj);
		d->failed = true;
		if (jerr == json_tokener_success) {
			set_err(err, errlen, "invalid JSON: no value decoded");
			return -EBADMSG;
		}
		set_err(err, errlen, "invalid JSON: %s at byte %zu of the message",
			json_tokener_error_desc(jerr), d->msg_bytes + used + 1);
		return -EBADMSG;
	}
	*consumed = pos;
	return 0;
}

int control_proto_parse(const char *buf, size_t len, struct control_msg *out, char *err,
			size_t errlen)
{
	struct control_decoder *d = NULL;
	struct json_object *v = NULL;
	size_t used = 0, i;
	bool done = false;
	int r;

	if ((!buf && len) || !out)
		return -EINVAL;
	r = control_decoder_new(CONTROL_PROTO_MAX_MSG, &d);
	if (r < 0)
		goto out;
	r = control_decoder_feed(d, buf, len, &used, &done, &v, err, errlen);
	if (r == 0 && !done && control_decoder_mid_message(d)) {
		/* The input ends here: a space ends a bare number or literal ("5", "true"). */
		r = control_decoder_feed(d, " ", 1, &i, &done, &v, err, errlen);
		used = len;
	}
	if (r < 0)
		goto out;
	if (!done) {
		set_err(err, errlen, "incomplete request");
		r = -EINVAL;
		goto out;
	}
	for (i = used; i < len; i++) {
		if (!is_json_ws(buf[i])) {
			set_err(err, errlen, "trailing data after the request");
			r = -EINVAL;
			goto out;
		}
	}
	r = control_proto_parse_value(v, out, err, errlen);
out:
	json_object_put(v);
	control_decoder_free(d);
	if (r == -EBADMSG || r == -EMSGSIZE)
		r = -EINVAL;
	return r;
}

/* Serialises obj as one line and hands back a malloc'd copy. */
static int to_line(struct json_object *obj, char **out)
{
	const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!s)
		return -ENOMEM;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

int control_proto_format_request(const struct control_msg *m, char **out)
{
	const struct cmd_desc *d;
	struct json_object *obj = NULL, *v;
	unsigned i;
	int r = -ENOMEM;

	if (!m || !out)
		return -EINVAL;
	d = desc_of(m->cmd);
	if (!d)
		return -EINVAL;
	obj = json_object_new_object();
	if (!obj)
		goto out;
	v = json_object_new_string(d->name);
	if (!v || json_object_object_add(obj, "command", v) < 0)
		goto out;
	for (i = 0; i < d->nfields; i++) {
		if (m->args[i] > d->fields[i].max) {
			r = -ERANGE;
			goto out;
		}
		v = json_object_new_int64((int64_t)m->args[i]);
		if (!v || json_object_object_add(obj, d->fields[i].name, v) < 0)
			goto out;
	}
	r = to_line(obj, out);
out:
	json_object_put(obj);
	return r;
}

/* Indexed by the virtio-balloon tag; the names are crosvm's BalloonStats fields. */
static const char *const stat_names[DEV_BALLOON_NR_STATS] = {
	"swap_in",	    "swap_out",	   "major_faults",
	"minor_faults",	    "free_memory", "total_memory",
	"available_memory", "disk_caches", "hugetlb_allocations",
	"hugetlb_failures",
};

/* A new object {"ok":ok}, or NULL. */
static struct json_object *reply_object(bool ok)
{
	struct json_object *obj = json_object_new_object();
	struct json_object *v = json_object_new_boolean(ok);

	if (!obj || !v || json_object_object_add(obj, "ok", v) < 0) {
		json_object_put(v);
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* Adds v (taken over, NULL allowed: out of memory) to obj as name. */
static int add(struct json_object *obj, const char *name, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(obj, name, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int control_proto_format_ok(char **out)
{
	struct json_object *obj = reply_object(true);
	int r = obj ? to_line(obj, out) : -ENOMEM;

	json_object_put(obj);
	return r;
}

int control_proto_format_version(const char *version, char **out)
{
	struct json_object *obj = reply_object(true);
	int r = obj ? add(obj, "version", json_object_new_string(version ? version : "")) : -ENOMEM;

	if (r == 0)
		r = to_line(obj, out);
	json_object_put(obj);
	return r;
}

int control_proto_format_stats(const struct dev_balloon_stats *st, char **out)
{
	struct json_object *obj = reply_object(true), *stats = json_object_new_object();
	int r = obj && stats ? 0 : -ENOMEM;

	for (unsigned i = 0; r == 0 && i < DEV_BALLOON_NR_STATS; i++)
		if (st->valid & (1u << i))
			r = add(stats, stat_names[i], json_object_new_uint64(st->val[i]));
	if (r == 0) {
		r = add(obj, "stats", stats);
		stats = NULL;
	}
	if (r == 0)
		r = add(obj, "balloon_actual", json_object_new_uint64(st->actual_bytes));
	if (r == 0)
		r = to_line(obj, out);
	json_object_put(stats);
	json_object_put(obj);
	return r;
}

int control_proto_format_error(const char *msg, char **out)
{
	struct json_object *obj, *v;
	int r = -ENOMEM;

	if (!out)
		return -EINVAL;
	obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;
	v = json_object_new_boolean(0);
	if (!v || json_object_object_add(obj, "ok", v) < 0)
		goto out;
	v = json_object_new_string(msg ? msg : "error");
	if (!v || json_object_object_add(obj, "error", v) < 0)
		goto out;
	r = to_line(obj, out);
out:
	json_object_put(obj);
	return r;
}
