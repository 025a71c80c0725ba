#include "legacy/pvpanic.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/device.h"
#include "core/log.h"
#include "core/vm_event.h"

struct pvpanic {
	struct device dev;
	pthread_mutex_t lock;
	const struct vm_events *ev; /* the VM's, wherever the device runs (may be NULL) */
	const struct logger *log;
	/* Events already reported: a guest that keeps writing gets one log line per kind. */
	uint8_t seen;
};

static void report(struct pvpanic *p, uint8_t val)
{
	uint8_t fresh = val & (uint8_t)~p->seen;

	p->seen |= val;
	if (fresh & PVPANIC_PANICKED)
		log_err(p->log, "pvpanic: the guest panicked (event 0x%02x)", val);
	if (fresh & PVPANIC_CRASH_LOADED)
		log_warn(p->log, "pvpanic: the guest crashed into its crash kernel (event 0x%02x)",
			 val);
	if (fresh & (uint8_t) ~(PVPANIC_PANICKED | PVPANIC_CRASH_LOADED))
		log_debug(p->log, "pvpanic: ignoring unsupported event bits 0x%02x", val);
}

static int pvpanic_io(void *dev, unsigned region, uint64_t off, void *data, uint32_t len,
		      bool is_write)
{
	struct pvpanic *p = dev;
	uint8_t *b = data;

	if (region != 0 || off != 0 || len != 1)
		return -EINVAL;
	if (!is_write) {
		*b = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	report(p, *b);
	pthread_mutex_unlock(&p->lock);
	if (*b & PVPANIC_PANICKED)
		vm_events_exit(p->ev, VM_EXIT_PANIC);
	return 0;
}

static void pvpanic_destroy(void *dev)
{
	struct pvpanic *p = dev;

	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct dev_ops pvpanic_ops = {
	.io = pvpanic_io,
	.destroy = pvpanic_destroy,
};

int pvpanic_create(const struct vm_events *ev, const struct logger *lg, struct device **out)
{
	struct pvpanic *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	ret = -pthread_mutex_init(&p->lock, NULL);
	if (ret < 0) {
		free(p);
		return ret;
	}
	p->ev = ev;
	p->log = lg;
	p->dev = (struct device){.name = "pvpanic", .ops = &pvpanic_ops, .priv = p};
	*out = &p->dev;
	return 0;
}
