/*
 * A bus is a sorted table of [base, base+len) ranges, one for port I/O and one for MMIO,
 * with a single handler type. vCPU threads dispatch into it concurrently; registration
 * (e.g. a PCI BAR moving) takes the write lock. The handler is called after the lock is
 * dropped, so a handler may itself change the bus (a config-space write remapping a BAR).
 * Devices live until every vCPU has stopped, so a handler copied out under the lock stays
 * valid even if its range was removed meanwhile.
 */
#ifndef CROSVM_CORE_BUS_H
#define CROSVM_CORE_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

/*
 * Handles an access at `off` bytes into a range: ctx and region are what the range was
 * registered with (a device and the index of one of its regions, say); returns 0 or -errno.
 */
typedef int (*bus_handler_fn)(void *ctx, unsigned region, uint64_t off, void *data, uint32_t len,
			      bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_handler_fn fn;
	void *ctx;
	unsigned region;
	const char *name;
};

struct bus {
	pthread_rwlock_t lock;
	struct bus_range *ranges; /* sorted by base, non-overlapping */
	size_t nr, cap;
	const char *name; /* "io" or "mmio", for log messages */
};

int bus_init(struct bus *b, const char *name) MUST_CHECK;
void bus_destroy(struct bus *b);
/* -EEXIST if the range overlaps another one, -EINVAL if empty or wrapping. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_handler_fn fn, void *ctx,
		 unsigned region, const char *name) MUST_CHECK;
/* Removes the range starting at base owned by ctx; -ENOENT if there is none. */
int bus_unregister(struct bus *b, uint64_t base, void *ctx);
/*
 * Dispatches one access. -ENOENT if no range covers [addr, addr+len) entirely. Unclaimed
 * reads are filled with 0xff by the caller (as on real hardware), never an error to the guest.
 */
int bus_access(struct bus *b, uint64_t addr, void *data, uint32_t len, bool is_write);
/* Looks up the range containing addr (copy); -ENOENT if none. */
int bus_lookup(struct bus *b, uint64_t addr, struct bus_range *out);

#endif
