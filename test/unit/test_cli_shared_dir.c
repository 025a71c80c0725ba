/*
 * --shared-dir as crosvm users write it: PATH:TAG and type=fs with every key this build does
 * (cache, timeout, negative_timeout, writeback, uidmap, gidmap), several directories, and
 * every refusal: virtio-9p (type=p9, and no type= at all, which is crosvm's default),
 * crosvm's keys this build lacks, bad values, id maps the kernel would refuse.
 */
#include "core/vmm/cli.h"
#include "core/vmm/cli_shared_dir.h"
#include "core/log.h"
#include "test/unit/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Parses one --shared-dir into a fresh config; what it logged goes to *msg (static). */
static int parse(struct vm_config *c, const char *arg, const char **msg)
{
	static char buf[4096];
	struct logger lg;
	int fd = memfd_create("capture", MFD_CLOEXEC);
	int saved = dup(2);
	ssize_t n;
	int ret;

	ck_assert_int_ge(fd, 0);
	log_init(&lg);
	lg.level = LOG_LVL_ERROR;
	config_init(c);
	fflush(stderr);
	dup2(fd, 2);
	ret = cli_parse_shared_dir(arg, c, &lg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	if (msg)
		*msg = buf;
	return ret;
}

#define REFUSED(arg, words)                                                                        \
	do {                                                                                       \
		struct vm_config c_;                                                               \
		const char *m_;                                                                    \
		ck_assert_int_eq(parse(&c_, arg, &m_), -EINVAL);                                   \
		ck_assert_msg(strstr(m_, words), "%s: logged '%s'", arg, m_);                      \
		ck_assert_uint_eq(c_.nr_shared_dirs, 0);                                           \
		config_free(&c_);                                                                  \
	} while (0)

START_TEST(defaults_and_every_key)
{
	struct vm_config c;
	const struct fs_config *d;

	ck_assert_int_eq(parse(&c, "/tmp:mytag:type=fs", NULL), 0);
	ck_assert_uint_eq(c.nr_shared_dirs, 1);
	d = &c.shared_dirs[0];
	ck_assert_str_eq(d->path, "/tmp");
	ck_assert_str_eq(d->tag, "mytag");
	/* crosvm's defaults: cache=auto, timeout=5, no negative cache, no write-back. */
	ck_assert_int_eq(d->server.cache, FS_CACHE_AUTO);
	ck_assert_uint_eq(d->server.timeout, 5);
	ck_assert_uint_eq(d->server.negative_timeout, 0);
	ck_assert(!d->server.writeback);
	ck_assert_ptr_null(d->uid_map);
	ck_assert_ptr_null(d->gid_map);
	config_free(&c);

	ck_assert_int_eq(
		parse(&c,
		      "/:mtdfake:cache=always:timeout=0:writeback=true:type=FS:"
		      "negative_timeout=9:uidmap=0 1000 1,1000 2000 10:gidmap=0 5 1:dax=false",
		      NULL),
		0);
	d = &c.shared_dirs[0];
	ck_assert_int_eq(d->server.cache, FS_CACHE_ALWAYS);
	ck_assert_uint_eq(d->server.timeout, 0);
	ck_assert_uint_eq(d->server.negative_timeout, 9);
	ck_assert(d->server.writeback);
	ck_assert_str_eq(d->uid_map, "0 1000 1\n1000 2000 10\n");
	ck_assert_str_eq(d->gid_map, "0 5 1\n");
	config_free(&c);

	ck_assert_int_eq(parse(&c, "/tmp:t:type=fs:cache_policy=never:writeback=false", NULL), 0);
	ck_assert_int_eq(c.shared_dirs[0].server.cache, FS_CACHE_NEVER);
	config_free(&c);
}
END_TEST

START_TEST(several_through_the_command_line)
{
	char *argv[] = {"run",
			"--shared-dir",
			"/tmp:one:type=fs",
			"--shared-dir=/:two:type=fs:cache=never",
			"kernel",
			NULL};
	struct vm_config c;
	struct logger lg;

	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	config_init(&c);
	ck_assert_int_eq(cli_parse_run(5, argv, &c, &lg), 0);
	ck_assert_uint_eq(c.nr_shared_dirs, 2);
	ck_assert_str_eq(c.shared_dirs[0].tag, "one");
	ck_assert_str_eq(c.shared_dirs[1].tag, "two");
	ck_assert_int_eq(c.shared_dirs[1].server.cache, FS_CACHE_NEVER);
	config_free(&c);
	/* One tag, one directory. */
	argv[3] = "--shared-dir=/:one:type=fs";
	config_init(&c);
	ck_assert_int_eq(cli_parse_run(5, argv, &c, &lg), -EINVAL);
	config_free(&c);
}
END_TEST

START_TEST(virtio_9p_is_refused_by_name)
{
	/* No type= is crosvm's p9: the same command line must not quietly become virtio-fs. */
	REFUSED("/tmp:tag", "type=fs");
	REFUSED("/tmp:tag", "not supported");
	REFUSED("/tmp:tag:cache=always", "virtio-9p");
	REFUSED("/tmp:tag:type=p9", "not supported");
	REFUSED("/tmp:tag:type=9p", "virtio-9p");
	REFUSED("/tmp:tag:type=P9", "type=fs");
	REFUSED("/tmp:tag:type=ext4", "fs or p9");
}
END_TEST

START_TEST(bad_fields_and_values)
{
	REFUSED("/tmp", "PATH:TAG");
	REFUSED(":tag:type=fs", "path and a tag");
	REFUSED("/tmp::type=fs", "path and a tag");
	REFUSED("/tmp:0123456789012345678901234567890123456:type=fs", "longer than 36");
	REFUSED("/nonexistent-crosvm-dir:t:type=fs", "not a directory");
	REFUSED("/etc/passwd:t:type=fs", "not a directory");
	REFUSED("/tmp:t:type=fs:writeback", "key=value");
	REFUSED("/tmp:t:type=fs:writeback=yes", "true or false");
	REFUSED("/tmp:t:type=fs:cache=sometimes", "never, auto or always");
	REFUSED("/tmp:t:type=fs:timeout=soon", "seconds");
	REFUSED("/tmp:t:type=fs:timeout=-1", "seconds");
	REFUSED("/tmp:t:type=fs:frobnicate=1", "unknown key 'frobnicate'");
	/* crosvm's keys this build does not do. */
	REFUSED("/tmp:t:type=fs:dax=true", "not supported");
	REFUSED("/tmp:t:type=fs:posix_acl=true", "not supported");
	REFUSED("/tmp:t:type=fs:uid=1000", "not supported");
	REFUSED("/tmp:t:type=fs:privileged_quota_uids=0", "not supported");
	REFUSED("/tmp:t:type=fs:a=1:b=2:c=3:d=4:e=5:f=6:g=7:h=8:i=9:j=10:k=11:l=12:m=13:n=14",
		"PATH:TAG");
}
END_TEST

START_TEST(id_maps)
{
	static const char *const bad[] = {
		"",		       /* nothing */
		"0 1000",	       /* two numbers */
		"0 1000 1 4",	       /* four */
		"0 1000 0",	       /* an empty range */
		"a b c",	       /* not numbers */
		"0 4294967295 2",      /* past the last id */
		"0 1000 10,5 2000 1",  /* inner ranges overlap */
		"0 1000 10,20 1005 1", /* outer ranges overlap */
		",",		       /* commas alone */
	};
	char *out, many[2048] = "";
	struct vm_config c;

	ck_assert_int_eq(cli_parse_id_map("0 1000 1", &out), 0);
	ck_assert_str_eq(out, "0 1000 1\n");
	free(out);
	ck_assert_int_eq(cli_parse_id_map("0 0 1, 1 100000 65536", &out), 0);
	ck_assert_str_eq(out, "0 0 1\n1 100000 65536\n");
	free(out);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cli_parse_id_map(bad[i], &out) == -EINVAL, "'%s'", bad[i]);
	/* A trailing comma is no entry. */
	ck_assert_int_eq(cli_parse_id_map("0 1000 1,", &out), 0);
	ck_assert_str_eq(out, "0 1000 1\n");
	free(out);
	/* At most 32 ranges. */
	for (int i = 0; i < 33; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s%d %d 1",
			 i ? "," : "", i, 1000 + i);
	ck_assert_int_eq(cli_parse_id_map(many, &out), -EINVAL);
	REFUSED("/tmp:t:type=fs:uidmap=0 1000", "inner outer count");
	REFUSED("/tmp:t:type=fs:gidmap=0 1000 1,0 2000 1", "overlap");
	ck_assert_int_eq(parse(&c, "/tmp:t:type=fs:uidmap=0 1 1:uidmap=0 2 1", NULL), 0);
	ck_assert_str_eq(c.shared_dirs[0].uid_map, "0 2 1\n");
	config_free(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cli_shared_dir");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, defaults_and_every_key);
	tcase_add_test(tc, several_through_the_command_line);
	tcase_add_test(tc, virtio_9p_is_refused_by_name);
	tcase_add_test(tc, bad_fields_and_values);
	tcase_add_test(tc, id_maps);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
