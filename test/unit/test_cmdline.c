/* The bounded command line builder. */
#include "core/boot/cmdline.h"
#include "test/unit/testutil.h"

#include <string.h>

START_TEST(parts_are_space_separated)
{
	struct cmdline c;

	ck_assert_int_eq(cmdline_init(&c, 2047), 0);
	ck_assert_str_eq(c.buf, "");
	ck_assert_int_eq(cmdline_append(&c, "panic=-1"), 0);
	ck_assert_int_eq(cmdline_append(&c, ""), 0);
	ck_assert_int_eq(cmdline_append(&c, "console=ttyS0 earlycon"), 0);
	ck_assert_str_eq(c.buf, "panic=-1 console=ttyS0 earlycon");
	ck_assert_uint_eq(c.len, strlen(c.buf));
	cmdline_free(&c);
	ck_assert_ptr_null(c.buf);
	ck_assert_uint_eq(c.len, 0);
}
END_TEST

/*
 * cap is the buffer size (room for cap - 1 characters and the NUL); the separator counts;
 * a part that does not fit leaves the line as it was.
 */
START_TEST(bounded_without_truncation)
{
	struct cmdline c;

	ck_assert_int_eq(cmdline_init(&c, 8), 0);
	ck_assert_int_eq(cmdline_append(&c, "abc"), 0);
	ck_assert_int_eq(cmdline_append(&c, "def"), 0);
	ck_assert_str_eq(c.buf, "abc def");
	ck_assert_int_eq(cmdline_append(&c, "g"), -E2BIG);
	ck_assert_str_eq(c.buf, "abc def");
	ck_assert_uint_eq(c.len, 7);
	cmdline_free(&c);

	ck_assert_int_eq(cmdline_init(&c, 7), 0);
	ck_assert_int_eq(cmdline_append(&c, "abc"), 0);
	ck_assert_int_eq(cmdline_append(&c, "def"), -E2BIG);
	ck_assert_int_eq(cmdline_append(&c, "de"), 0);
	ck_assert_str_eq(c.buf, "abc de");
	cmdline_free(&c);

	ck_assert_int_eq(cmdline_init(&c, 4), 0);
	ck_assert_int_eq(cmdline_append(&c, "abcd"), -E2BIG);
	ck_assert_str_eq(c.buf, "");
	ck_assert_int_eq(cmdline_append(&c, "abc"), 0);
	cmdline_free(&c);

	ck_assert_int_eq(cmdline_init(&c, 1), 0);
	ck_assert_int_eq(cmdline_append(&c, "a"), -E2BIG);
	ck_assert_int_eq(cmdline_append(&c, ""), 0);
	cmdline_free(&c);
}
END_TEST

START_TEST(bad_input)
{
	struct cmdline c;

	ck_assert_int_eq(cmdline_init(&c, 0), -EINVAL);
	ck_assert_int_eq(cmdline_init(&c, 64), 0);
	ck_assert_int_eq(cmdline_append(&c, NULL), -EINVAL);
	ck_assert_int_eq(cmdline_append(&c, "a\nb"), -EINVAL);
	ck_assert_int_eq(cmdline_append(&c, "\x1b[2J"), -EINVAL);
	ck_assert_str_eq(c.buf, "");
	cmdline_free(&c);
	/* A freed (or never initialised to a buffer) line refuses appends. */
	ck_assert_int_eq(cmdline_append(&c, "a"), -EINVAL);
	cmdline_free(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cmdline");
	TCase *tc = tcase_create("cmdline");

	tcase_add_test(tc, parts_are_space_separated);
	tcase_add_test(tc, bounded_without_truncation);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
