/* Control protocol: what requests are accepted, what is refused and why, reply formatting. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "control/proto.h"
#include "core/device.h"
#include "test/unit/testutil.h"

/* A reply must be one line of JSON: an object with ok:false and a non-empty error. */
static void check_error_reply(const char *err)
{
	struct json_object *v, *ok, *e;
	char *line = NULL;

	ck_assert_int_eq(control_proto_format_error(err, &line), 0);
	ck_assert_ptr_null(strchr(line, '\n'));
	v = json_tokener_parse(line);
	ck_assert_ptr_nonnull(v);
	ck_assert(json_object_is_type(v, json_type_object));
	ck_assert(json_object_object_get_ex(v, "ok", &ok));
	ck_assert(json_object_is_type(ok, json_type_boolean));
	ck_assert(!json_object_get_boolean(ok));
	ck_assert(json_object_object_get_ex(v, "error", &e));
	ck_assert_str_eq(json_object_get_string(e), err);
	json_object_put(v);
	free(line);
}

static void bad_n(const char *buf, size_t len, const char *want)
{
	struct control_msg m;
	char err[CONTROL_PROTO_ERR_LEN] = "";
	size_t i;

	ck_assert_msg(control_proto_parse(buf, len, &m, err, sizeof(err)) == -EINVAL,
		      "accepted: %.*s", (int)len, buf);
	ck_assert_msg(err[0] != '\0', "no reason for: %.*s", (int)len, buf);
	ck_assert_msg(strstr(err, want) != NULL, "'%s' lacks '%s'", err, want);
	/* Reasons go back to the peer and into the log: printable ASCII only. */
	for (i = 0; err[i]; i++)
		ck_assert_msg(err[i] >= 0x20 && err[i] < 0x7f, "raw byte in reason '%s'", err);
	check_error_reply(err);
}

static void bad(const char *s, const char *want)
{
	bad_n(s, strlen(s), want);
}

static void good(const char *s, enum control_cmd cmd, uint64_t a0, uint64_t a1)
{
	struct control_msg m;
	char err[CONTROL_PROTO_ERR_LEN] = "";

	ck_assert_msg(control_proto_parse(s, strlen(s), &m, err, sizeof(err)) == 0,
		      "refused %s: %s", s, err);
	ck_assert_int_eq(m.cmd, cmd);
	ck_assert_uint_eq(m.args[0], a0);
	ck_assert_uint_eq(m.args[1], a1);
}

START_TEST(valid_requests)
{
	good("{\"command\":\"stop\"}", CONTROL_CMD_STOP, 0, 0);
	good("{\"command\":\"suspend\"}", CONTROL_CMD_SUSPEND, 0, 0);
	good("{\"command\":\"resume\"}", CONTROL_CMD_RESUME, 0, 0);
	good("{\"command\":\"powerbtn\"}", CONTROL_CMD_POWERBTN, 0, 0);
	good("{\"command\":\"sleepbtn\"}", CONTROL_CMD_SLEEPBTN, 0, 0);
	good("{\"command\":\"gpe\",\"gpe\":0}", CONTROL_CMD_GPE, 0, 0);
	good("{\"command\":\"gpe\",\"gpe\":63}", CONTROL_CMD_GPE, 63, 0);
	good("{\"command\":\"balloon\",\"num_bytes\":0}", CONTROL_CMD_BALLOON, 0, 0);
	good("{\"command\":\"balloon\",\"num_bytes\":9223372036854775807}", CONTROL_CMD_BALLOON,
	     INT64_MAX, 0);
	good("{\"command\":\"balloon_stats\"}", CONTROL_CMD_BALLOON_STATS, 0, 0);
	good("{\"command\":\"disk_resize\",\"index\":2,\"size\":1073741824}",
	     CONTROL_CMD_DISK_RESIZE, 2, 1073741824);
	good("{\"command\":\"version\"}", CONTROL_CMD_VERSION, 0, 0);
	/* Member order and whitespace, newlines included, do not matter. */
	good(" \n{ \"size\" : 5 ,\n \"command\":\"disk_resize\",\t\"index\":\r\n1 }\n",
	     CONTROL_CMD_DISK_RESIZE, 1, 5);
}
END_TEST

START_TEST(invalid_json)
{
	bad("{", "incomplete");
	bad("", "incomplete");
	bad("{\"command\":}", "invalid JSON");
	bad("{\"command\":\"stop\",}", "invalid JSON");
	bad("{\"command\" \"stop\"}", "invalid JSON");
	bad("nonsense", "invalid JSON");
	bad("{'command':'stop'}", "invalid JSON");
	bad("/* c */ {\"command\":\"stop\"}", "invalid JSON");
	bad("{\"command\":\"stop\"} x", "trailing");
	bad("{\"command\":\"stop\"}{\"command\":\"stop\"}", "trailing");
}
END_TEST

START_TEST(not_an_object)
{
	bad("5 ", "must be a JSON object");
	bad("\"stop\"", "must be a JSON object");
	bad("null", "must be a JSON object");
	bad("true", "must be a JSON object");
	bad("[]", "must be a JSON object");
	bad("[{\"command\":\"stop\"}]", "must be a JSON object");
}
END_TEST

START_TEST(missing_or_unknown_command)
{
	bad("{}", "missing \"command\"");
	bad("{\"cmd\":\"stop\"}", "missing \"command\"");
	bad("{\"command\":5}", "must be a string");
	bad("{\"command\":null}", "must be a string");
	bad("{\"command\":[\"stop\"]}", "must be a string");
	bad("{\"command\":{\"stop\":1}}", "must be a string");
	bad("{\"command\":\"reboot\"}", "unknown command \"reboot\"");
	bad("{\"command\":\"STOP\"}", "unknown command");
	bad("{\"command\":\"stop \"}", "unknown command");
	bad("{\"command\":\"\"}", "unknown command");
	/* An embedded NUL must not make "stop\0x" pass as "stop". */
	bad("{\"command\":\"stop\\u0000x\"}", "unknown command");
	/* Peer bytes echoed in the reason are neutralised. */
	bad("{\"command\":\"a\\nb\\\"c\\u0001\"}", "unknown command \"a?b?c?\"");
}
END_TEST

START_TEST(wrong_argument_types)
{
	bad("{\"command\":\"gpe\",\"gpe\":\"1\"}", "\"gpe\" must be an integer");
	bad("{\"command\":\"gpe\",\"gpe\":1.0}", "must be an integer");
	bad("{\"command\":\"gpe\",\"gpe\":1e1}", "must be an integer");
	bad("{\"command\":\"gpe\",\"gpe\":true}", "must be an integer");
	bad("{\"command\":\"gpe\",\"gpe\":null}", "must be an integer");
	bad("{\"command\":\"gpe\",\"gpe\":[1]}", "must be an integer");
	bad("{\"command\":\"gpe\",\"gpe\":{}}", "must be an integer");
	bad("{\"command\":\"balloon\",\"num_bytes\":\"1024\"}", "must be an integer");
	bad("{\"command\":\"disk_resize\",\"index\":0,\"size\":1.5}", "\"size\" must be");
	bad("{\"command\":\"gpe\",\"gpe\":NaN}", "must be an integer");
}
END_TEST

START_TEST(negative_and_huge_numbers)
{
	bad("{\"command\":\"gpe\",\"gpe\":-1}", "must not be negative");
	bad("{\"command\":\"balloon\",\"num_bytes\":-4096}", "must not be negative");
	bad("{\"command\":\"balloon\",\"num_bytes\":-99999999999999999999}",
	    "must not be negative");
	bad("{\"command\":\"gpe\",\"gpe\":64}", "out of range (0..63)");
	bad("{\"command\":\"balloon\",\"num_bytes\":9223372036854775808}", "out of range");
	bad("{\"command\":\"balloon\",\"num_bytes\":18446744073709551615}", "out of range");
	/* json-c saturates this to UINT64_MAX; it must not pass as a size. */
	bad("{\"command\":\"balloon\",\"num_bytes\":99999999999999999999999}", "out of range");
	bad("{\"command\":\"disk_resize\",\"index\":0,\"size\":1e30}", "must be an integer");
	bad("{\"command\":\"gpe\",\"gpe\":01}", "invalid JSON");
}
END_TEST

START_TEST(missing_and_extra_fields)
{
	bad("{\"command\":\"gpe\"}", "missing field \"gpe\"");
	bad("{\"command\":\"balloon\"}", "missing field \"num_bytes\"");
	bad("{\"command\":\"disk_resize\",\"index\":0}", "missing field \"size\"");
	bad("{\"command\":\"disk_resize\",\"size\":0}", "missing field \"index\"");
	bad("{\"command\":\"stop\",\"force\":true}", "unknown field \"force\"");
	bad("{\"command\":\"balloon\",\"num_byte\":5}", "unknown field \"num_byte\"");
	bad("{\"command\":\"gpe\",\"gpe\":1,\"gpe2\":2}", "unknown field \"gpe2\"");
	/* An argument of another command is still unknown to this one. */
	bad("{\"command\":\"stop\",\"gpe\":1}", "unknown field \"gpe\"");
}
END_TEST

START_TEST(nested_junk_nul_and_long_strings)
{
	static const char nul_inside[] = "{\"command\":\"st\0op\"}";
	static const char nul_first[] = "\0{\"command\":\"stop\"}";
	static const char garbage[] = "\xff\xfe\x00\x01\x80garbage";
	char *deep, *big, *longcmd;
	size_t i, n;

	/* Nesting within the depth limit is just an unknown field; beyond it, invalid JSON. */
	bad("{\"command\":\"stop\",\"x\":{\"y\":[[1]]}}", "unknown field \"x\"");
	n = 1000;
	deep = malloc(2 * n + 64);
	ck_assert_ptr_nonnull(deep);
	strcpy(deep, "{\"command\":\"stop\",\"x\":");
	for (i = 0; i < n; i++)
		strcat(deep, "[");
	bad(deep, "invalid JSON");
	free(deep);

	bad_n(nul_inside, sizeof(nul_inside) - 1, "invalid JSON");
	bad_n(nul_first, sizeof(nul_first) - 1, "invalid JSON");
	bad_n(garbage, sizeof(garbage) - 1, "invalid JSON");
	bad("{\"command\":\"\xc3\x28\"}", "invalid JSON");

	/* Over 64 KiB: refused for its size; the reason stays short. */
	n = CONTROL_PROTO_MAX_MSG + 100;
	big = malloc(n + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', n);
	memcpy(big, "{\"command\":\"", 12);
	big[n] = '\0';
	bad(big, "larger than 65536 bytes");
	free(big);

	/* A long unknown command is echoed cut short. */
	n = 10000;
	longcmd = malloc(n + 32);
	ck_assert_ptr_nonnull(longcmd);
	strcpy(longcmd, "{\"command\":\"");
	memset(longcmd + 12, 'b', n);
	strcpy(longcmd + 12 + n, "\"}");
	bad(longcmd, "...");
	free(longcmd);
}
END_TEST

START_TEST(decoder_streams_values)
{
	static const char stream[] = "  {\"command\":\"stop\"}\n\n{\"command\":\n\"gpe\",\"gpe\":7}"
				     "[1]\t{\"command\":\"version\"} ";
	static const enum control_cmd want[] = {CONTROL_CMD_STOP, CONTROL_CMD_GPE, 99,
						CONTROL_CMD_VERSION};
	struct control_decoder *d;
	struct json_object *v;
	char err[CONTROL_PROTO_ERR_LEN];
	unsigned got = 0;
	size_t i, used;
	bool done;

	ck_assert_int_eq(control_decoder_new(CONTROL_PROTO_MAX_MSG, &d), 0);
	/* One byte at a time: values complete wherever the pieces are cut. */
	for (i = 0; i < sizeof(stream) - 1; i++) {
		ck_assert_int_eq(
			control_decoder_feed(d, stream + i, 1, &used, &done, &v, err, sizeof(err)),
			0);
		ck_assert_uint_eq(used, 1);
		if (!done)
			continue;
		ck_assert_uint_lt(got, 4);
		if (want[got] == 99) {
			ck_assert(json_object_is_type(v, json_type_array));
		} else {
			struct control_msg m;

			ck_assert_int_eq(control_proto_parse_value(v, &m, err, sizeof(err)), 0);
			ck_assert_int_eq(m.cmd, want[got]);
		}
		got++;
		json_object_put(v);
	}
	ck_assert_uint_eq(got, 4);
	ck_assert(!control_decoder_mid_message(d));
	control_decoder_free(d);
}
END_TEST

START_TEST(decoder_several_values_in_one_buffer)
{
	static const char two[] = "{\"command\":\"stop\"}{\"command\":\"resume\"}";
	struct control_decoder *d;
	struct json_object *v;
	struct control_msg m;
	size_t used;
	bool done;

	ck_assert_int_eq(control_decoder_new(CONTROL_PROTO_MAX_MSG, &d), 0);
	ck_assert_int_eq(control_decoder_feed(d, two, sizeof(two) - 1, &used, &done, &v, NULL, 0),
			 0);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(used, 18);
	ck_assert_int_eq(control_proto_parse_value(v, &m, NULL, 0), 0);
	ck_assert_int_eq(m.cmd, CONTROL_CMD_STOP);
	json_object_put(v);
	ck_assert_int_eq(control_decoder_feed(d, two + used, sizeof(two) - 1 - used, &used, &done,
					      &v, NULL, 0),
			 0);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(control_proto_parse_value(v, &m, NULL, 0), 0);
	ck_assert_int_eq(m.cmd, CONTROL_CMD_RESUME);
	json_object_put(v);
	control_decoder_free(d);
}
END_TEST

START_TEST(decoder_size_limit)
{
	static const char msg[] = "{\"command\":\"stop\"}"; /* 18 bytes */
	struct control_decoder *d;
	struct json_object *v;
	char err[CONTROL_PROTO_ERR_LEN];
	size_t used;
	bool done;

	/* Exactly the limit passes, and whitespace between values does not count. */
	ck_assert_int_eq(control_decoder_new(18, &d), 0);
	ck_assert_int_eq(
		control_decoder_feed(d, "\n\n\n   ", 6, &used, &done, &v, err, sizeof(err)), 0);
	ck_assert(!done);
	ck_assert(!control_decoder_mid_message(d));
	ck_assert_int_eq(control_decoder_feed(d, msg, 18, &used, &done, &v, err, sizeof(err)), 0);
	ck_assert(done);
	ck_assert_ptr_nonnull(v);
	json_object_put(v);
	/* One byte over, even in pieces, fails and the decoder stays failed. */
	ck_assert_int_eq(control_decoder_feed(d, "{\"command\":\"stopp", 17, &used, &done, &v, err,
					      sizeof(err)),
			 0);
	ck_assert(control_decoder_mid_message(d));
	ck_assert_int_eq(control_decoder_feed(d, "\"", 1, &used, &done, &v, err, sizeof(err)), 0);
	ck_assert_int_eq(control_decoder_feed(d, "}", 1, &used, &done, &v, err, sizeof(err)),
			 -EMSGSIZE);
	ck_assert_ptr_nonnull(strstr(err, "larger than 18 bytes"));
	ck_assert_int_eq(control_decoder_feed(d, msg, 18, &used, &done, &v, err, sizeof(err)),
			 -EBADMSG);
	control_decoder_free(d);
}
END_TEST

START_TEST(format_request_round_trip)
{
	static const struct control_msg msgs[] = {
		{CONTROL_CMD_STOP, {0, 0}},
		{CONTROL_CMD_SUSPEND, {0, 0}},
		{CONTROL_CMD_RESUME, {0, 0}},
		{CONTROL_CMD_POWERBTN, {0, 0}},
		{CONTROL_CMD_SLEEPBTN, {0, 0}},
		{CONTROL_CMD_GPE, {63, 0}},
		{CONTROL_CMD_BALLOON, {INT64_MAX, 0}},
		{CONTROL_CMD_BALLOON_STATS, {0, 0}},
		{CONTROL_CMD_DISK_RESIZE, {3, 1ull << 40}},
		{CONTROL_CMD_VERSION, {0, 0}},
	};
	struct control_msg m, over = {CONTROL_CMD_GPE, {64, 0}};
	char *line = NULL;
	unsigned i;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		ck_assert_int_eq(control_proto_format_request(&msgs[i], &line), 0);
		ck_assert_ptr_null(strchr(line, '\n'));
		ck_assert_int_eq(control_proto_parse(line, strlen(line), &m, NULL, 0), 0);
		ck_assert_int_eq(memcmp(&m, &msgs[i], sizeof(m)), 0);
		free(line);
	}
	ck_assert_int_eq(control_proto_format_request(&over, &line), -ERANGE);
	ck_assert_int_eq(control_proto_cmd_lookup("disk_resize", &m.cmd), 0);
	ck_assert_int_eq(m.cmd, CONTROL_CMD_DISK_RESIZE);
	ck_assert_int_eq(control_proto_cmd_lookup("disk", &m.cmd), -ENOENT);
}
END_TEST

START_TEST(message_arguments_by_name)
{
	static const char req[] = "{\"command\":\"disk_resize\",\"index\":4,\"size\":9}";

	struct control_msg m;
	uint64_t v = 0;

	ck_assert_int_eq(control_proto_parse(req, sizeof(req) - 1, &m, NULL, 0), 0);
	ck_assert_int_eq(control_proto_msg_arg(&m, "size", &v), 0);
	ck_assert_uint_eq(v, 9);
	ck_assert_int_eq(control_proto_msg_arg(&m, "index", &v), 0);
	ck_assert_uint_eq(v, 4);
	ck_assert_int_eq(control_proto_msg_arg(&m, "gpe", &v), -ENOENT);
	ck_assert_str_eq(control_proto_cmd_name(m.cmd), "disk_resize");
	ck_assert_ptr_null(control_proto_cmd_name((enum control_cmd)1000));
}
END_TEST

START_TEST(error_replies_escape_text)
{
	check_error_reply("plain");
	check_error_reply("quote \" backslash \\ newline \n tab \t ctl \x01 slash /");
	check_error_reply("");
}
END_TEST

static void check_line(int ret, char **line, const char *want)
{
	ck_assert_int_eq(ret, 0);
	ck_assert_str_eq(*line, want);
	free(*line);
	*line = NULL;
}

/* Replies built from typed results: exact text, one line whatever the strings hold. */
START_TEST(typed_replies)
{
	struct dev_balloon_stats st = {0};
	char *line = NULL;

	check_line(control_proto_format_ok(&line), &line, "{\"ok\":true}");
	check_line(control_proto_format_version("0.1.0", &line), &line,
		   "{\"ok\":true,\"version\":\"0.1.0\"}");
	check_line(control_proto_format_version("a\nb\"", &line), &line,
		   "{\"ok\":true,\"version\":\"a\\nb\\\"\"}");
	/* Every statistic, named as crosvm names them, in virtio tag order. */
	for (unsigned i = 0; i < DEV_BALLOON_NR_STATS; i++)
		st.val[i] = 10 + i;
	st.val[DEV_BALLOON_NR_STATS - 1] = UINT64_MAX;
	st.valid = (1u << DEV_BALLOON_NR_STATS) - 1;
	st.actual_bytes = 12288;
	check_line(control_proto_format_stats(&st, &line), &line,
		   "{\"ok\":true,\"stats\":{\"swap_in\":10,\"swap_out\":11,\"major_faults\":12,"
		   "\"minor_faults\":13,\"free_memory\":14,\"total_memory\":15,"
		   "\"available_memory\":16,\"disk_caches\":17,\"hugetlb_allocations\":18,"
		   "\"hugetlb_failures\":18446744073709551615},\"balloon_actual\":12288}");
	/* Only what the guest reported. */
	st.valid = 1u << 4;
	check_line(control_proto_format_stats(&st, &line), &line,
		   "{\"ok\":true,\"stats\":{\"free_memory\":14},\"balloon_actual\":12288}");
	memset(&st, 0, sizeof(st));
	check_line(control_proto_format_stats(&st, &line), &line,
		   "{\"ok\":true,\"stats\":{},\"balloon_actual\":0}");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("control_proto");
	TCase *tc = tcase_create("proto");

	tcase_add_test(tc, valid_requests);
	tcase_add_test(tc, invalid_json);
	tcase_add_test(tc, not_an_object);
	tcase_add_test(tc, missing_or_unknown_command);
	tcase_add_test(tc, wrong_argument_types);
	tcase_add_test(tc, negative_and_huge_numbers);
	tcase_add_test(tc, missing_and_extra_fields);
	tcase_add_test(tc, nested_junk_nul_and_long_strings);
	tcase_add_test(tc, decoder_streams_values);
	tcase_add_test(tc, decoder_several_values_in_one_buffer);
	tcase_add_test(tc, decoder_size_limit);
	tcase_add_test(tc, format_request_round_trip);
	tcase_add_test(tc, message_arguments_by_name);
	tcase_add_test(tc, error_replies_escape_text);
	tcase_add_test(tc, typed_replies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
