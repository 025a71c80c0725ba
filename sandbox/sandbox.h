/*
 * Fork-per-device sandboxing. A device is created in the main process (it opens its files
 * and fds there), then moved into a child process that keeps only that device's fds, enters
 * new mount/PID/IPC/network (and, unprivileged, user) namespaces (a device with host_network
 * keeps the VMM's network namespace: user-mode networking), pivots into an empty
 * directory, drops every capability, sets no_new_privs and finally installs the device's
 * seccomp filter. The main process keeps a proxy in the device's place (sandbox/proxy.c):
 * the same struct device with the proxy's ops, so nothing outside sandbox/ needs to know.
 */
#ifndef CROSVM_SANDBOX_SANDBOX_H
#define CROSVM_SANDBOX_SANDBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include "core/util.h"

struct device;
struct logger;
struct vm_events;

#define SANDBOX_DEFAULT_PIVOT_ROOT "/var/empty"

struct sandbox_opts {
	const char *pivot_root;	      /* empty directory the children pivot into */
	const char *policy_dir;	      /* NULL: the built-in policies */
	bool log_failures;	      /* SCMP_ACT_LOG instead of killing */
	const char *violation_device; /* test hook: this device makes a forbidden syscall */
	/*
	 * The VM's request handle: in a child, the device's requests are forwarded to it; a
	 * child that dies ends the VM through it.
	 */
	struct vm_events *events;
	const atomic_bool *stopping; /* teardown began: stop waiting on a stuck child */
	struct logger *log;	     /* a child tags its copy with the device's name */
};

/* Checks (creating it if missing) the pivot-root directory; clear error otherwise. */
int sandbox_prepare(const struct sandbox_opts *o) MUST_CHECK;
/*
 * Moves dev (not started yet, with a policy) into its jailed child process; on return dev is
 * its proxy, and its start, stop and destroy run the child's life (sandbox/proxy.h). The
 * child's pid goes to *pid unless pid is NULL (for measurements: it is the proxy's to reap).
 */
int sandbox_jail_device(struct device *dev, const struct sandbox_opts *o, pid_t *pid) MUST_CHECK;
/* Drops every capability of the calling process (the main process, before vCPUs start). */
int sandbox_drop_caps(void) MUST_CHECK;

#endif
