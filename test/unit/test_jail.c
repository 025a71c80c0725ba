/*
 * The mount side of a device's jail (sandbox/jail.c), in a child process with its own mount
 * namespace (and a user namespace when not root): after jail_pivot_root nothing of the host
 * is left but, when asked, one directory, read-only at its own path, where connect(2) to a
 * UNIX socket still works (the user-space vsock device's PATH_<port>) and a socket outside
 * it cannot be reached.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/jail.h"
#include "test/unit/testutil.h"

struct dirs {
	char empty[32], shown[32], other[32];
	int in_sock, out_sock; /* listening in shown/ and in other/ */
};

static int listen_at(const char *dir, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

static void setup(struct dirs *d)
{
	char file[64];
	int fd;

	snprintf(d->empty, sizeof(d->empty), "/tmp/jail-empty.XXXXXX");
	snprintf(d->shown, sizeof(d->shown), "/tmp/jail-shown.XXXXXX");
	snprintf(d->other, sizeof(d->other), "/tmp/jail-other.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d->empty));
	ck_assert_ptr_nonnull(mkdtemp(d->shown));
	ck_assert_ptr_nonnull(mkdtemp(d->other));
	snprintf(file, sizeof(file), "%s/file", d->shown);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	d->in_sock = listen_at(d->shown, "sock_52");
	d->out_sock = listen_at(d->other, "sock_52");
}

static void teardown(struct dirs *d)
{
	char cmd[160];

	close(d->in_sock);
	close(d->out_sock);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s %s", d->empty, d->shown, d->other);
	ck_assert_int_eq(system(cmd), 0);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* A mount namespace of our own; not root: a user namespace where we are root. */
static int own_namespace(void)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();

	if (geteuid() == 0)
		return unshare(CLONE_NEWNS);
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0 || write_file("/proc/self/setgroups", "deny"))
		return -1;
	snprintf(map, sizeof(map), "0 %u 1\n", uid);
	if (write_file("/proc/self/uid_map", map))
		return -1;
	snprintf(map, sizeof(map), "0 %u 1\n", gid);
	return write_file("/proc/self/gid_map", map);
}

static int connect_to(const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ret;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock_52", dir);
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	close(fd);
	return ret;
}

/* Runs in the child; the exit status says which check failed (0: all held). */
static int jailed(const struct dirs *d, bool show)
{
	char path[96];

	if (own_namespace() < 0)
		return 10;
	if (jail_pivot_root(d->empty, d->empty, show ? d->shown : NULL) < 0)
		return 11;
	if (access("/etc/passwd", F_OK) == 0 || errno != ENOENT)
		return 12; /* the host's files are gone */
	if (connect_to(d->other) != -ENOENT)
		return 13; /* a socket outside cannot be reached */
	if (!show)
		return connect_to(d->shown) == -ENOENT ? 0 : 14;
	snprintf(path, sizeof(path), "%s/file", d->shown);
	if (access(path, R_OK) < 0)
		return 15; /* the shown directory is there, at its own path */
	snprintf(path, sizeof(path), "%s/new", d->shown);
	if (open(path, O_CREAT | O_WRONLY, 0644) >= 0 || errno != EROFS)
		return 16; /* read-only */
	if (mkdir("/escape", 0755) == 0)
		return 17; /* the root is read-only too */
	if (connect_to(d->shown) < 0)
		return 18; /* connecting works */
	return 0;
}

static int run_jailed(const struct dirs *d, bool show)
{
	int st;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(jailed(d, show));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(empty_root)
{
	struct dirs d;

	setup(&d);
	ck_assert_int_eq(run_jailed(&d, false), 0);
	teardown(&d);
}
END_TEST

START_TEST(root_showing_one_directory)
{
	struct dirs d;
	char inside[96];

	setup(&d);
	ck_assert_int_eq(run_jailed(&d, true), 0);
	/* Nothing leaked into the host's mounts: the empty directory is still empty. */
	snprintf(inside, sizeof(inside), "%s%s", d.empty, d.shown);
	ck_assert_int_ne(access(inside, F_OK), 0);
	teardown(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jail");
	TCase *tc = tcase_create("jail");

	tcase_add_test(tc, empty_root);
	tcase_add_test(tc, root_showing_one_directory);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
