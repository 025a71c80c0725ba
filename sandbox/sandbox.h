/*
 * Fork-per-device sandboxing. A device is created in the main process (it opens its files
 * and fds there), then moved into a child process that keeps only that device's fds, enters
 * new mount/PID/IPC/network (and, unprivileged, user) namespaces, pivots into an empty
 * directory, drops every capability, sets no_new_privs and finally installs the device's
 * seccomp filter. The main process keeps a proxy in the device's place (sandbox/proxy.c).
 */
#ifndef CROSVM_SANDBOX_SANDBOX_H
#define CROSVM_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>
#include "core/util.h"

struct vm;
struct device;
struct logger;

#define SANDBOX_DEFAULT_PIVOT_ROOT "/var/empty"

struct sandbox_opts {
	const char *pivot_root;	      /* empty directory the children pivot into */
	const char *policy_dir;	      /* NULL: the built-in policies */
	bool log_failures;	      /* SCMP_ACT_LOG instead of killing */
	const char *violation_device; /* test hook: this device makes a forbidden syscall */
};

/* Checks (creating it if missing) the pivot-root directory; clear error otherwise. */
int sandbox_prepare(const struct sandbox_opts *o, const struct logger *lg) MUST_CHECK;
/* Moves dev into its jailed child process; on return dev->proxy and dev->pid are set. */
int sandbox_fork_device(struct vm *vm, struct device *dev, const struct sandbox_opts *o) MUST_CHECK;
/* Reaps exited children (SIGCHLD); a device process that died ends the VM as a crash. */
void sandbox_reap(struct vm *vm);
/* At teardown: asks every child to stop, waits briefly, kills what is left, reaps all. */
void sandbox_shutdown(struct vm *vm);
/* Drops every capability of the calling process (the main process, before vCPUs start). */
int sandbox_drop_caps(void) MUST_CHECK;

#endif
