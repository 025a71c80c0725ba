/* crosvm's "key=value,flag,key=value" sub-option syntax. */
#include "core/vmm/kvlist.h"
#include "test/unit/testutil.h"

#include <string.h>

static const char *const flags[] = {"ro", "root", NULL};

START_TEST(keys_values_and_bare_keys)
{
	struct kvlist l;

	ck_assert_int_eq(kvlist_parse(&l, "a=1,b,c=,d=x=y", NULL, NULL), 0);
	ck_assert_uint_eq(l.nr, 4);
	ck_assert_str_eq(l.items[0].key, "a");
	ck_assert_str_eq(l.items[0].value, "1");
	ck_assert_str_eq(l.items[1].key, "b");
	ck_assert_ptr_null(l.items[1].value);
	ck_assert_str_eq(l.items[2].key, "c");
	ck_assert_str_eq(l.items[2].value, "");
	/* Only the first '=' separates: the value keeps the rest. */
	ck_assert_str_eq(l.items[3].key, "d");
	ck_assert_str_eq(l.items[3].value, "x=y");
	kvlist_free(&l);
	ck_assert_uint_eq(l.nr, 0);
	ck_assert_ptr_null(l.buf);
}
END_TEST

/* The caller's string is copied, never modified. */
START_TEST(input_untouched)
{
	char s[] = "path=a,ro";
	struct kvlist l;

	ck_assert_int_eq(kvlist_parse(&l, s, "path", flags), 0);
	ck_assert_str_eq(s, "path=a,ro");
	s[5] = 'X';
	ck_assert_str_eq(l.items[0].value, "a");
	kvlist_free(&l);
}
END_TEST

START_TEST(first_key_may_be_omitted)
{
	struct kvlist l;

	ck_assert_int_eq(kvlist_parse(&l, "disk.img,ro", "path", flags), 0);
	ck_assert_uint_eq(l.nr, 2);
	ck_assert_str_eq(l.items[0].key, "path");
	ck_assert_str_eq(l.items[0].value, "disk.img");
	ck_assert_str_eq(l.items[1].key, "ro");
	ck_assert_ptr_null(l.items[1].value);
	kvlist_free(&l);

	/* A known flag in first place stays a flag. */
	ck_assert_int_eq(kvlist_parse(&l, "ro,disk.img", "path", flags), 0);
	ck_assert_str_eq(l.items[0].key, "ro");
	ck_assert_ptr_null(l.items[0].value);
	/* Only the first item gets the implied key. */
	ck_assert_str_eq(l.items[1].key, "disk.img");
	ck_assert_ptr_null(l.items[1].value);
	kvlist_free(&l);

	/* Without first_key a bare first item is a bare key. */
	ck_assert_int_eq(kvlist_parse(&l, "disk.img", NULL, flags), 0);
	ck_assert_str_eq(l.items[0].key, "disk.img");
	ck_assert_ptr_null(l.items[0].value);
	kvlist_free(&l);

	/* An explicit first key is kept. */
	ck_assert_int_eq(kvlist_parse(&l, "id=x,disk.img", "path", flags), 0);
	ck_assert_str_eq(l.items[0].key, "id");
	ck_assert_str_eq(l.items[1].key, "disk.img");
	kvlist_free(&l);
}
END_TEST

START_TEST(empty_items_and_limits)
{
	char many[KVLIST_MAX * 4 + 8] = "";
	struct kvlist l;

	ck_assert_int_eq(kvlist_parse(&l, "", NULL, NULL), 0);
	ck_assert_uint_eq(l.nr, 0);
	kvlist_free(&l);
	ck_assert_int_eq(kvlist_parse(&l, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(l.nr, 0);
	kvlist_free(&l);
	/* Empty items between commas are skipped. */
	ck_assert_int_eq(kvlist_parse(&l, ",,a=1,,b,", NULL, NULL), 0);
	ck_assert_uint_eq(l.nr, 2);
	ck_assert_str_eq(l.items[1].key, "b");
	kvlist_free(&l);
	/* An empty key is malformed. */
	ck_assert_int_eq(kvlist_parse(&l, "=1", NULL, NULL), -EINVAL);
	ck_assert_int_eq(kvlist_parse(&l, "a=1,=2", NULL, NULL), -EINVAL);
	ck_assert_ptr_null(l.buf);

	/* Up to KVLIST_MAX items; one more is refused, not truncated. */
	for (unsigned i = 0; i < KVLIST_MAX; i++)
		strcat(many, i ? ",k" : "k");
	ck_assert_int_eq(kvlist_parse(&l, many, NULL, NULL), 0);
	ck_assert_uint_eq(l.nr, KVLIST_MAX);
	kvlist_free(&l);
	strcat(many, ",k");
	ck_assert_int_eq(kvlist_parse(&l, many, NULL, NULL), -EINVAL);
	ck_assert_uint_eq(l.nr, 0);
}
END_TEST

START_TEST(booleans)
{
	static const struct {
		const char *s;
		int ret;
		bool val;
	} cases[] = {
		{"f", 0, true},	       {"f=true", 0, true},    {"f=1", 0, true},
		{"f=false", 0, false}, {"f=0", 0, false},      {"f=", -EINVAL, false},
		{"f=yes", -EINVAL, 0}, {"f=TRUE", -EINVAL, 0}, {"f=2", -EINVAL, 0},
		{"f=on", -EINVAL, 0},  {"f=01", -EINVAL, 0},
	};

	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kvlist l;
		bool b = !cases[i].val;

		ck_assert_int_eq(kvlist_parse(&l, cases[i].s, NULL, NULL), 0);
		ck_assert_msg(kv_bool(&l.items[0], &b) == cases[i].ret, "'%s'", cases[i].s);
		if (cases[i].ret == 0)
			ck_assert_msg(b == cases[i].val, "'%s'", cases[i].s);
		kvlist_free(&l);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("kvlist");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, keys_values_and_bare_keys);
	tcase_add_test(tc, input_untouched);
	tcase_add_test(tc, first_key_may_be_omitted);
	tcase_add_test(tc, empty_items_and_limits);
	tcase_add_test(tc, booleans);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
