/*
 * Where the control socket lives and how it is created and removed: a directory argument gets
 * crosvm-<pid>.sock, the socket is 0600 from the start, a live VM's socket is never taken
 * over, a stale one is replaced, and anything that is not a socket is never touched.
 */
#ifndef CROSVM_CONTROL_SOCKPATH_H
#define CROSVM_CONTROL_SOCKPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct logger;

/* sizeof(sockaddr_un.sun_path): a path needs its NUL too, so at most 107 bytes. */
#define CONTROL_SOCKPATH_MAX 108

/* A socket this process created, identified so that only it is ever unlinked. */
struct control_sockpath {
	char path[CONTROL_SOCKPATH_MAX];
	dev_t dev;
	ino_t ino;
	bool bound;
};

/*
 * Resolves the -s argument: an existing directory (or a symlink to one) becomes
 * DIR/crosvm-<pid>.sock, anything else is the socket path itself. -EINVAL for an empty
 * argument, -ENAMETOOLONG when the result does not fit sun_path (both logged).
 */
int control_sockpath_resolve(const char *arg, pid_t pid, char *out, size_t outlen,
			     const struct logger *lg);

/*
 * Resolves arg (as above, with this process's pid) and returns a listening, non-blocking,
 * close-on-exec socket bound there with mode 0600. An existing path is refused when a
 * server answers on it (-EADDRINUSE) or when it is not a socket (-EEXIST, left untouched);
 * a socket nobody listens on is replaced. Every failure is logged with the path.
 */
int control_sockpath_listen(const char *arg, int backlog, struct control_sockpath *sp, int *fd_out,
			    const struct logger *lg);

/* Unlinks sp->path if it still is the socket sp created (same device and inode). */
void control_sockpath_unlink(struct control_sockpath *sp, const struct logger *lg);

/* Connects a blocking, close-on-exec stream socket to path: 0 or -errno (not logged). */
int control_sockpath_connect(const char *path, int *fd_out);

#endif
