/* The jailed device's surroundings for the benchmarks (bench_jail.h). */
#include "test/bench/bench_jail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "core/device.h"
#include "sandbox/sandbox.h"

/* The device process died: the proxy has said why; the bench's run stops at its next stall. */
static void device_died(void *ctx, enum vm_exit_reason reason)
{
	const struct bench_jail *j = ctx;

	fprintf(stderr, "%s: the sandboxed device ended (reason %d)\n", j->name, reason);
}

int bench_jail_setup(struct bench_jail *j, const char *name)
{
	int ret;

	j->name = name;
	j->events = (struct vm_events){.request_exit = device_died, .ctx = j};
	j->eb = event_base_new();
	if (!j->eb)
		return -ENOMEM;
	/* An empty directory of our own to pivot into, removed at the end. */
	if (snprintf(j->root, sizeof(j->root), "/tmp/%s-root.XXXXXX", name) >= (int)sizeof(j->root))
		return -ENAMETOOLONG;
	if (!mkdtemp(j->root)) {
		ret = -errno;
		fprintf(stderr, "%s: cannot create an empty root directory: %s\n", name,
			strerror(-ret));
		return ret;
	}
	j->root_made = true;
	return 0;
}

int bench_jail_device(struct bench_jail *j, struct device *dev, struct logger *log, pid_t *pid)
{
	struct sandbox_opts so = {
		.pivot_root = j->root, .events = &j->events, .stopping = &j->stopping, .log = log};
	int ret = sandbox_jail_device(dev, &so, pid);

	if (!ret)
		ret = device_start(dev, j->eb);
	if (!ret)
		device_msix_state(dev, true);
	return ret;
}

void bench_jail_stopping(struct bench_jail *j)
{
	atomic_store(&j->stopping, true);
}

void bench_jail_destroy(struct bench_jail *j)
{
	if (j->eb)
		event_base_free(j->eb);
	if (j->root_made)
		rmdir(j->root);
}
