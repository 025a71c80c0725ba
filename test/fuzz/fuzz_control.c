/*
 * libFuzzer target for the control protocol: the input is a byte stream from a client. It is
 * decoded in pieces whose sizes come from the input itself, every decoded value is validated,
 * and the invariants a peer relies on are checked: error reasons are printable, error replies
 * are one line of JSON, and a request accepted once reads back the same after formatting.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "control/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reason(const char *err)
{
	struct json_object *v;
	char *line = NULL;
	size_t i;

	if (!err[0])
		abort();
	for (i = 0; err[i]; i++) {
		if (err[i] < 0x20 || err[i] >= 0x7f)
			abort();
	}
	if (control_proto_format_error(err, &line) < 0)
		return;
	if (strchr(line, '\n'))
		abort();
	v = json_tokener_parse(line);
	if (!json_object_is_type(v, json_type_object))
		abort();
	json_object_put(v);
	free(line);
}

static void check_round_trip(const struct control_msg *m)
{
	struct control_msg back;
	char *line = NULL;

	if (control_proto_format_request(m, &line) < 0)
		abort();
	if (control_proto_parse(line, strlen(line), &back, NULL, 0) < 0 ||
	    memcmp(&back, m, sizeof(back)) != 0)
		abort();
	free(line);
}

static void check_value(struct json_object *v)
{
	char err[CONTROL_PROTO_ERR_LEN] = "";
	struct control_msg m;

	if (control_proto_parse_value(v, &m, err, sizeof(err)) < 0)
		check_reason(err);
	else
		check_round_trip(&m);
}

static void stream(const uint8_t *data, size_t size)
{
	char err[CONTROL_PROTO_ERR_LEN] = "";
	struct control_decoder *d = NULL;
	struct json_object *v;
	size_t pos = 1, piece, used;
	bool done;

	if (size < 1 || control_decoder_new(CONTROL_PROTO_MAX_MSG, &d) < 0)
		return;
	piece = (size_t)data[0] % 64 + 1;
	while (pos < size) {
		size_t n = size - pos < piece ? size - pos : piece;
		size_t off = 0;

		while (off < n) {
			if (control_decoder_feed(d, (const char *)data + pos + off, n - off, &used,
						 &done, &v, err, sizeof(err)) < 0) {
				check_reason(err);
				goto out;
			}
			if (used > n - off)
				abort();
			if (!done && used != n - off)
				abort();
			off += used;
			if (done) {
				check_value(v);
				json_object_put(v);
			}
		}
		pos += n;
	}
out:
	control_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONTROL_PROTO_ERR_LEN] = "";
	struct control_msg m;

	if (control_proto_parse((const char *)data, size, &m, err, sizeof(err)) < 0)
		check_reason(err);
	else
		check_round_trip(&m);
	stream(data, size);
	return 0;
}
