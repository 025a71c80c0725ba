/*
 * What a benchmark needs to run a device in its jailed process exactly as the VMM runs it
 * (sandbox_jail_device, the built-in seccomp policies): the part of a VM the sandbox uses
 * (where a device process that ends is reported, the teardown flag), the loop its proxy
 * watches the process on, and an empty directory of its own to pivot into. bench_block and
 * bench_net share it; each keeps its own devices and driver.
 */
#ifndef CROSVM_TEST_BENCH_JAIL_H
#define CROSVM_TEST_BENCH_JAIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/vm_event.h"

struct device;
struct event_base;
struct logger;

struct bench_jail {
	const char *name; /* the bench's: its messages and its root's name */
	struct vm_events events;
	atomic_bool stopping;
	/*
	 * The proxies' loop. Nothing turns it unless the bench does: it hears why a device
	 * process died when it turns it (e.g. at a stall); otherwise a death shows as a stall.
	 */
	struct event_base *eb;
	char root[64];
	bool root_made;
};

/*
 * Sets j up for the bench `name`: the loop and an empty root /tmp/<name>-root.XXXXXX. On
 * failure (said on stderr) bench_jail_destroy still undoes what was done.
 */
int bench_jail_setup(struct bench_jail *j, const char *name);
/*
 * Moves dev (attached to its transport, not started) into its jailed process, logging to
 * log there, and starts its proxy on j->eb with MSI-X enabled; the process's pid goes to
 * *pid. It clones this process: call it before this process has any other thread.
 */
int bench_jail_device(struct bench_jail *j, struct device *dev, struct logger *log, pid_t *pid);
/* Teardown begins: from here a device process that ends was asked to (before device_stop). */
void bench_jail_stopping(struct bench_jail *j);
/* Frees the loop and removes the root, once; a no-op on a zeroed jail. */
void bench_jail_destroy(struct bench_jail *j);

#endif
