#include "sandbox/jail.h"
#include "core/device.h"

#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int jail_close_fds(const struct fd_list *keep)
{
	int fds[DEV_MAX_FDS];
	unsigned n = keep->nr;
	unsigned lo = 0;

	memcpy(fds, keep->fds, n * sizeof(int));
	qsort(fds, n, sizeof(int), cmp_int);
	for (unsigned i = 0; i < n; i++) {
		if ((unsigned)fds[i] > lo && syscall(SYS_close_range, lo, fds[i] - 1, 0) < 0)
			return -errno;
		lo = (unsigned)fds[i] + 1;
	}
	if (syscall(SYS_close_range, lo, ~0u, 0) < 0)
		return -errno;
	return 0;
}

/* mkdir -p of path's components below root (root exists); path is absolute. */
static int make_dirs(const char *root, const char *path)
{
	char buf[PATH_MAX];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s/%s", root, path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + strlen(root) + 1; *p; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * The new root is a tmpfs on dir (in this namespace only) with `show` bind-mounted at its own
 * path, read-only: connect(2) to a UNIX socket there still works (it needs no write access
 * to the file system), nothing can be created, changed or executed.
 */
static int root_showing(const char *dir, const char *show)
{
	char target[PATH_MAX];
	int ret;

	if (show[0] != '/' ||
	    (size_t)snprintf(target, sizeof(target), "%s/%s", dir, show) >= sizeof(target))
		return -EINVAL;
	if (mount("none", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") < 0)
		return -errno;
	ret = make_dirs(dir, show);
	if (ret < 0)
		return ret;
	if (mount(show, target, NULL, MS_BIND, NULL) < 0)
		return -errno;
	if (mount(NULL, target, NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	return 0;
}

int jail_pivot_root(const char *dir, const char *show)
{
	int ret;

	/* Nothing done in this namespace may leak back into the host's mounts. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (show) {
		ret = root_showing(dir, show);
		if (ret < 0)
			return ret;
	} else if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0) {
		/* pivot_root needs the new root to be a mount point: bind it onto itself. */
		return -errno;
	}
	if (chdir(dir) < 0)
		return -errno;
	/* Stack the old root on top of the new one, then detach it. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return -errno;
	if (umount2(".", MNT_DETACH) < 0)
		return -errno;
	if (chdir("/") < 0)
		return -errno;
	/* Best effort: the empty root is read-only, without devices, setuid or exec. */
	mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
	      NULL);
	return 0;
}

int jail_limit_fds(unsigned max)
{
	struct rlimit rl = {.rlim_cur = max, .rlim_max = max};

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return 0;
}

int jail_drop_caps(void)
{
	cap_t caps;
	int ret = 0;

	/* The bounding set first: dropping from it needs CAP_SETPCAP, which goes next. */
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	caps = cap_init();
	if (!caps)
		return -ENOMEM;
	if (cap_set_proc(caps) < 0)
		ret = -errno;
	cap_free(caps);
	return ret;
}

int jail_no_new_privs(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
