/*
 * Control socket path rules.
 *
 * Permissions: the socket must never exist with wider permissions than 0600, even briefly,
 * since anyone who can connect controls the VM. bind() creates the file with mode
 * 0777 & ~umask, so the umask is narrowed to 0177 around bind() alone. umask is per process,
 * but a thread creating a file during that window only gets narrower permissions, never wider,
 * and the VMM creates this socket during setup, before it starts threads that create files.
 * The other choice, binding in a private directory and renaming, needs a longer path than the
 * final one, which sun_path's 108 bytes often cannot hold.
 */
#include "control/sockpath.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

_Static_assert(CONTROL_SOCKPATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path),
	       "CONTROL_SOCKPATH_MAX must match sun_path");

int control_sockpath_resolve(const char *arg, pid_t pid, char *out, size_t outlen,
			     const struct logger *lg)
{
	size_t limit = MIN(outlen, (size_t)CONTROL_SOCKPATH_MAX);
	struct stat st;
	bool dir;
	int n;

	if (!arg || !*arg) {
		log_err(lg, "control socket: the path is empty");
		return -EINVAL;
	}
	if (!out || outlen == 0)
		return -EINVAL;
	dir = stat(arg, &st) == 0 && S_ISDIR(st.st_mode);
	if (dir)
		n = snprintf(out, outlen, "%s%scrosvm-%d.sock", arg,
			     arg[strlen(arg) - 1] == '/' ? "" : "/", (int)pid);
	else
		n = snprintf(out, outlen, "%s", arg);
	if (n < 0 || (size_t)n >= limit) {
		log_err(lg,
			"control socket path %s%s is too long: a UNIX socket path holds at most "
			"%zu bytes",
			arg, dir ? "/crosvm-<pid>.sock" : "", limit - 1);
		out[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Makes path free for bind(): 0 when nothing is there (any more), -errno to refuse. */
static int clear_stale(const char *path, const struct logger *lg)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	int fd = -1, r, err;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		log_err(lg, "control socket %s: cannot inspect the path: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err(lg,
			"control socket %s: the path exists and is not a socket; leaving it alone",
			path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		log_err(lg, "control socket %s: socket: %s", path, strerror(-r));
		return r;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	r = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	err = r < 0 ? errno : 0;
	close_fd(&fd);
	/* A full backlog (EAGAIN) still means someone is listening. */
	if (err == 0 || err == EAGAIN || err == EINPROGRESS) {
		log_err(lg, "control socket %s: another VM is already listening on it", path);
		return -EADDRINUSE;
	}
	if (err != ECONNREFUSED) {
		log_err(lg, "control socket %s: cannot tell whether it is in use (%s); leaving it",
			path, strerror(err));
		return err == EPROTOTYPE ? -EADDRINUSE : -err;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		log_err(lg, "control socket %s: cannot remove the stale socket: %s", path,
			strerror(-r));
		return r;
	}
	log_info(lg, "control socket %s: replaced a stale socket", path);
	return 0;
}

int control_sockpath_listen(const char *arg, int backlog, struct control_sockpath *sp, int *fd_out,
			    const struct logger *lg)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old_mask;
	int fd = -1, r, err;

	if (!sp || !fd_out)
		return -EINVAL;
	memset(sp, 0, sizeof(*sp));
	r = control_sockpath_resolve(arg, getpid(), sp->path, sizeof(sp->path), lg);
	if (r < 0)
		return r;
	r = clear_stale(sp->path, lg);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		log_err(lg, "control socket %s: socket: %s", sp->path, strerror(-r));
		goto fail;
	}
	memcpy(addr.sun_path, sp->path, strlen(sp->path) + 1);
	old_mask = umask(0177);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	err = errno;
	umask(old_mask);
	if (r < 0) {
		r = -err;
		if (err == EADDRINUSE)
			log_err(lg,
				"control socket %s: the path appeared while creating the socket",
				sp->path);
		else
			log_err(lg, "control socket %s: bind: %s", sp->path, strerror(err));
		goto fail;
	}
	if (lstat(sp->path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		r = -EIO;
		log_err(lg, "control socket %s: the socket vanished after bind", sp->path);
		goto fail;
	}
	sp->dev = st.st_dev;
	sp->ino = st.st_ino;
	sp->bound = true;
	if (listen(fd, backlog > 0 ? backlog : 16) < 0) {
		r = -errno;
		log_err(lg, "control socket %s: listen: %s", sp->path, strerror(-r));
		goto fail_unlink;
	}
	*fd_out = fd;
	return 0;

fail_unlink:
	control_sockpath_unlink(sp, lg);
fail:
	close_fd(&fd);
	return r;
}

void control_sockpath_unlink(struct control_sockpath *sp, const struct logger *lg)
{
	struct stat st;

	if (!sp || !sp->bound)
		return;
	sp->bound = false;
	if (lstat(sp->path, &st) < 0)
		return;
	if (!S_ISSOCK(st.st_mode) || st.st_dev != sp->dev || st.st_ino != sp->ino) {
		log_warn(lg, "control socket %s: not removing it, it is no longer this VM's socket",
			 sp->path);
		return;
	}
	if (unlink(sp->path) < 0)
		log_warn(lg, "control socket %s: unlink: %s", sp->path, strerror(errno));
}

int control_sockpath_connect(const char *path, int *fd_out)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len;
	int fd, r;

	if (!path || !*path || !fd_out)
		return -EINVAL;
	len = strlen(path);
	if (len >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}
