#include "sandbox/jail.h"
#include "core/device.h"

#include <errno.h>
#include <fcntl.h>
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

int jail_pivot_root(const char *root, const char *mountpoint, const char *show)
{
	bool empty = strcmp(root, mountpoint) == 0;
	int ret;

	/* Nothing done in this namespace may leak back into the host's mounts. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (show) {
		/* Only the default jail's empty root shows a host directory. */
		if (!empty)
			return -EINVAL;
		ret = root_showing(mountpoint, show);
		if (ret < 0)
			return ret;
	} else if (mount(root, mountpoint, NULL, MS_BIND | MS_REC, NULL) < 0) {
		/*
		 * pivot_root needs the new root to be a mount point: bind it (with what is mounted
		 * below it) onto the empty directory, or the empty directory onto itself. Binding
		 * onto a directory of our own, rather than onto root itself, works for "/" too.
		 */
		return -errno;
	}
	if (chdir(mountpoint) < 0)
		return -errno;
	/* Stack the old root on top of the new one, then detach it. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return -errno;
	if (umount2(".", MNT_DETACH) < 0)
		return -errno;
	if (chdir("/") < 0)
		return -errno;
	/*
	 * Best effort: the empty root is read-only, without devices, setuid or exec. A device's
	 * own root keeps its flags (its device works in it) but loses device nodes and setuid,
	 * below it too: the process opens no device and runs nothing.
	 */
	if (empty)
		mount(NULL, "/", NULL,
		      MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	else
		mount_setattr(
			AT_FDCWD, "/", AT_RECURSIVE,
			&(struct mount_attr){.attr_set = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID},
			sizeof(struct mount_attr));
	return 0;
}

int jail_private_proc(int *proc_self_fd)
{
	int fs, mnt, ret = 0;

	/*
	 * A new proc instance of this process's PID namespace, never attached to any path: it
	 * shows this process alone, and nothing the device serves can reach it by name.
	 */
	fs = fsopen("proc", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	/* Only the process directories (Linux 5.8); older kernels show the rest, harmlessly. */
	(void)fsconfig(fs, FSCONFIG_SET_STRING, "subset", "pid", 0);
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		ret = -errno;
		goto out_fs;
	}
	mnt = fsmount(fs, FSMOUNT_CLOEXEC,
		      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (mnt < 0) {
		ret = -errno;
		goto out_fs;
	}
	*proc_self_fd = openat(mnt, "self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*proc_self_fd < 0)
		ret = -errno;
	close(mnt);
out_fs:
	close(fs);
	return ret;
}

int jail_become_ns_root(void)
{
	/* EINVAL: the maps have no inner 0; the process keeps the ids it has. */
	if (setresgid(0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	if (setresuid(0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}

int jail_limit_fds(unsigned max)
{
	struct rlimit rl = {.rlim_cur = max, .rlim_max = max};

	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return 0;
	/* Raising the hard limit needs a privilege a user namespace does not give: take the most.
	 */
	if (errno != EPERM || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	rl.rlim_cur = rl.rlim_max = MIN(rl.rlim_max, (rlim_t)max);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return 0;
}

int jail_keep_caps(uint64_t keep)
{
	cap_value_t list[CAP_LAST_CAP + 1];
	int n = 0, ret = 0;
	cap_t caps;

	/* The bounding set first: dropping from it needs CAP_SETPCAP, which goes next. */
	for (int c = 0; c <= CAP_LAST_CAP; c++) {
		if (keep & BIT(c)) {
			list[n++] = c;
			continue;
		}
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	caps = cap_init();
	if (!caps)
		return -ENOMEM;
	if (n && (cap_set_flag(caps, CAP_PERMITTED, n, list, CAP_SET) < 0 ||
		  cap_set_flag(caps, CAP_EFFECTIVE, n, list, CAP_SET) < 0))
		ret = -errno;
	if (ret == 0 && cap_set_proc(caps) < 0)
		ret = -errno;
	cap_free(caps);
	return ret;
}

int jail_drop_caps(void)
{
	return jail_keep_caps(0);
}

int jail_no_new_privs(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
