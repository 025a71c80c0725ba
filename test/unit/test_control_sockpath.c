/* Control socket path rules: where the socket goes, its mode, what may be replaced or removed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/sockpath.h"
#include "test/unit/testutil.h"

struct tmp {
	char dir[64];
	char path[CONTROL_SOCKPATH_MAX];
};

static void tmp_init(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/crosvm-sockpath-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/vm.sock", t->dir);
}

static void tmp_fini(struct tmp *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A socket left behind by a process that died: bound, then closed without unlink. */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(a.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
}

static bool can_connect(const char *path)
{
	int fd = -1;

	if (control_sockpath_connect(path, &fd) < 0)
		return false;
	close(fd);
	return true;
}

START_TEST(directory_gets_pid_socket)
{
	struct control_sockpath sp;
	char out[CONTROL_SOCKPATH_MAX], want[CONTROL_SOCKPATH_MAX + 32], slash[80];
	struct tmp t;
	int fd = -1;

	tmp_init(&t);
	ck_assert_int_eq(control_sockpath_resolve(t.dir, 4242, out, sizeof(out), NULL), 0);
	snprintf(want, sizeof(want), "%s/crosvm-4242.sock", t.dir);
	ck_assert_str_eq(out, want);
	snprintf(slash, sizeof(slash), "%s/", t.dir);
	ck_assert_int_eq(control_sockpath_resolve(slash, 4242, out, sizeof(out), NULL), 0);
	ck_assert_str_eq(out, want);
	/* A path that is not a directory is the socket path itself. */
	ck_assert_int_eq(control_sockpath_resolve(t.path, 4242, out, sizeof(out), NULL), 0);
	ck_assert_str_eq(out, t.path);

	ck_assert_int_eq(control_sockpath_listen(t.dir, 4, &sp, &fd, NULL), 0);
	snprintf(want, sizeof(want), "%s/crosvm-%d.sock", t.dir, (int)getpid());
	ck_assert_str_eq(sp.path, want);
	ck_assert(can_connect(want));
	close(fd);
	control_sockpath_unlink(&sp, NULL);
	ck_assert_int_eq(access(want, F_OK), -1);
	tmp_fini(&t);
}
END_TEST

START_TEST(path_length_limits)
{
	char arg[300], out[CONTROL_SOCKPATH_MAX];
	struct control_sockpath sp;
	struct tmp t;
	size_t base;
	int fd = -1;

	tmp_init(&t);
	base = strlen(t.dir) + 1;
	/* 107 bytes fit sun_path with its NUL; 108 do not. */
	snprintf(arg, sizeof(arg), "%s/", t.dir);
	memset(arg + base, 'x', 107 - base);
	arg[107] = '\0';
	ck_assert_int_eq(control_sockpath_resolve(arg, 1, out, sizeof(out), NULL), 0);
	ck_assert_int_eq(control_sockpath_listen(arg, 4, &sp, &fd, NULL), 0);
	close(fd);
	control_sockpath_unlink(&sp, NULL);
	memset(arg + base, 'x', 108 - base);
	arg[108] = '\0';
	ck_assert_int_eq(control_sockpath_resolve(arg, 1, out, sizeof(out), NULL), -ENAMETOOLONG);
	ck_assert_int_eq(control_sockpath_listen(arg, 4, &sp, &fd, NULL), -ENAMETOOLONG);
	ck_assert_int_eq(access(arg, F_OK), -1);
	ck_assert_int_eq(control_sockpath_resolve("", 1, out, sizeof(out), NULL), -EINVAL);
	ck_assert_int_eq(control_sockpath_connect(arg, &fd), -ENAMETOOLONG);
	tmp_fini(&t);
}
END_TEST

START_TEST(socket_mode_is_0600)
{
	struct control_sockpath sp;
	struct stat st;
	mode_t old;
	struct tmp t;
	int fd = -1;

	tmp_init(&t);
	/* Whatever the caller's umask, even none at all. */
	old = umask(0);
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), 0);
	ck_assert_int_eq(umask(old), 0);
	ck_assert_int_eq(lstat(t.path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	close(fd);
	control_sockpath_unlink(&sp, NULL);
	tmp_fini(&t);
}
END_TEST

START_TEST(stale_socket_replaced)
{
	struct control_sockpath sp;
	struct tmp t;
	int fd = -1;

	tmp_init(&t);
	make_stale_socket(t.path);
	ck_assert(!can_connect(t.path));
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), 0);
	ck_assert(can_connect(t.path));
	close(fd);
	control_sockpath_unlink(&sp, NULL);
	tmp_fini(&t);
}
END_TEST

START_TEST(live_socket_refused)
{
	struct control_sockpath first, second;
	struct tmp t;
	int fd1 = -1, fd2 = -1;

	tmp_init(&t);
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &first, &fd1, NULL), 0);
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &second, &fd2, NULL), -EADDRINUSE);
	ck_assert_int_eq(fd2, -1);
	/* The first VM's socket is untouched and still answers. */
	ck_assert(can_connect(t.path));
	/* A failed second server must not remove the first one's socket. */
	control_sockpath_unlink(&second, NULL);
	ck_assert(can_connect(t.path));
	close(fd1);
	control_sockpath_unlink(&first, NULL);
	tmp_fini(&t);
}
END_TEST

START_TEST(non_socket_refused_and_left_alone)
{
	static const char data[] = "precious data";
	struct control_sockpath sp;
	char buf[sizeof(data)] = "", link_target[CONTROL_SOCKPATH_MAX + 16];
	struct stat st;
	struct tmp t;
	int fd = -1, ffd;

	tmp_init(&t);
	ffd = open(t.path, O_CREAT | O_WRONLY | O_EXCL, 0644);
	ck_assert_int_ge(ffd, 0);
	ck_assert_int_eq(write(ffd, data, sizeof(data)), (ssize_t)sizeof(data));
	close(ffd);
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), -EEXIST);
	ffd = open(t.path, O_RDONLY);
	ck_assert_int_ge(ffd, 0);
	ck_assert_int_eq(read(ffd, buf, sizeof(buf)), (ssize_t)sizeof(data));
	close(ffd);
	ck_assert_str_eq(buf, data);
	unlink(t.path);

	ck_assert_int_eq(mkfifo(t.path, 0600), 0);
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), -EEXIST);
	ck_assert_int_eq(lstat(t.path, &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	unlink(t.path);

	/* A symlink is not a socket either, even one pointing at a stale socket. */
	snprintf(link_target, sizeof(link_target), "%s/stale.sock", t.dir);
	make_stale_socket(link_target);
	ck_assert_int_eq(symlink(link_target, t.path), 0);
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), -EEXIST);
	ck_assert_int_eq(lstat(t.path, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(lstat(link_target, &st), 0);
	tmp_fini(&t);
}
END_TEST

START_TEST(unlink_only_our_socket)
{
	char other[CONTROL_SOCKPATH_MAX + 16];
	struct control_sockpath sp;
	struct stat st;
	struct tmp t;
	int fd = -1, ffd;

	tmp_init(&t);
	snprintf(other, sizeof(other), "%s/other", t.dir);
	/*
	 * The replacements are made before ours goes (rename over it), so they cannot reuse its
	 * inode number.
	 */
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), 0);
	close(fd);
	make_stale_socket(other);
	ck_assert_int_eq(rename(other, t.path), 0);
	control_sockpath_unlink(&sp, NULL);
	ck_assert_int_eq(lstat(t.path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	unlink(t.path);

	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), 0);
	close(fd);
	ffd = open(other, O_CREAT | O_WRONLY | O_EXCL, 0644);
	ck_assert_int_ge(ffd, 0);
	close(ffd);
	ck_assert_int_eq(rename(other, t.path), 0);
	control_sockpath_unlink(&sp, NULL);
	ck_assert_int_eq(lstat(t.path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	unlink(t.path);

	/* Still ours: removed, and only once. */
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), 0);
	close(fd);
	control_sockpath_unlink(&sp, NULL);
	ck_assert_int_eq(lstat(t.path, &st), -1);
	make_stale_socket(t.path);
	control_sockpath_unlink(&sp, NULL);
	ck_assert_int_eq(lstat(t.path, &st), 0);
	tmp_fini(&t);
}
END_TEST

START_TEST(connect_reports_why)
{
	struct control_sockpath sp;
	struct tmp t;
	int fd = -1, cfd = -1;

	tmp_init(&t);
	ck_assert_int_eq(control_sockpath_connect(t.path, &cfd), -ENOENT);
	make_stale_socket(t.path);
	ck_assert_int_eq(control_sockpath_connect(t.path, &cfd), -ECONNREFUSED);
	ck_assert_int_eq(control_sockpath_listen(t.path, 4, &sp, &fd, NULL), 0);
	ck_assert_int_eq(control_sockpath_connect(t.path, &cfd), 0);
	ck_assert_int_ge(cfd, 0);
	close(cfd);
	close(fd);
	control_sockpath_unlink(&sp, NULL);
	tmp_fini(&t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("control_sockpath");
	TCase *tc = tcase_create("sockpath");

	tcase_add_test(tc, directory_gets_pid_socket);
	tcase_add_test(tc, path_length_limits);
	tcase_add_test(tc, socket_mode_is_0600);
	tcase_add_test(tc, stale_socket_replaced);
	tcase_add_test(tc, live_socket_refused);
	tcase_add_test(tc, non_socket_refused_and_left_alone);
	tcase_add_test(tc, unlink_only_our_socket);
	tcase_add_test(tc, connect_reports_why);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
