#include "legacy/pvpanic.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/log.h"
#include "core/pci.h"
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

/* Like crosvm's: the register is the BAR's first byte; anything else reads 0, writes nothing. */
static int pvpanic_pci_io(void *dev, unsigned region, uint64_t off, void *data, uint32_t len,
			  bool is_write)
{
	if (region == 0 && off == 0 && len == 1)
		return pvpanic_io(dev, 0, 0, data, 1, is_write);
	if (!is_write)
		memset(data, 0, len);
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

static const struct dev_ops pvpanic_pci_ops = {
	.io = pvpanic_pci_io,
	.destroy = pvpanic_destroy,
};

static int create(const struct vm_events *ev, const struct logger *lg, const char *name,
		  const struct dev_ops *ops, struct device **out)
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
	p->dev = (struct device){.ops = ops, .priv = p};
	snprintf(p->dev.name, sizeof(p->dev.name), "%s", name);
	*out = &p->dev;
	return 0;
}

int pvpanic_create(const struct vm_events *ev, const struct logger *lg, struct device **out)
{
	return create(ev, lg, "pvpanic", &pvpanic_ops, out);
}

int pvpanic_pci_create(const struct vm_events *ev, const struct logger *lg, struct device **out,
		       struct pci_dev_desc *desc)
{
	int ret = create(ev, lg, "pvpanic-pci", &pvpanic_pci_ops, out);

	if (ret < 0)
		return ret;
	/* crosvm's PvPanicPciDevice: class and subclass "other", subsystem 0xff:0xff, rev. 1. */
	*desc = (struct pci_dev_desc){
		.vendor_id = PVPANIC_PCI_VENDOR,
		.device_id = PVPANIC_PCI_DEVICE,
		.subsys_vendor_id = 0xff,
		.subsys_id = 0xff,
		.revision = 1,
		.class_code = 0xff,
		.subclass = 0xff,
	};
	desc->bars[0] = (struct pci_bar_desc){.size = PVPANIC_PCI_BAR_SIZE};
	return 0;
}
