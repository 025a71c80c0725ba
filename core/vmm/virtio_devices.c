/*
 * Creates the VM's virtio devices in crosvm's order: disks first (vda, vdb, ... in command-line
 * order), then rng and balloon, which are on unless turned off.
 */
#include "core/vmm/virtio_devices.h"
#include "core/vmm/vm.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#include <stdio.h>
#include <string.h>

/*
 * Wraps a created device in the PCI transport and gives it to the VM; on failure the device
 * is destroyed.
 */
static int plug(struct vm *vm, const struct virtio_dev_ops *ops, void *dev, const char *label,
		struct device **out)
{
	int ret = vm->nr_devs < VM_MAX_DEVICES ? 0 : -ENOSPC;

	if (ret == 0)
		ret = virtio_pci_create(vm->pci, &vm->mem, vm->log, ops, dev, label, out);
	if (ret < 0) {
		log_err(vm->log, "%s: cannot create the PCI device: %s", label, strerror(-ret));
		ops->destroy(dev);
		return ret;
	}
	/* Cannot fail: there was room. */
	return vm_add_device(vm, *out);
}

int virtio_devices_create(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	const struct virtio_dev_ops *ops;
	struct device *d;
	char label[32];
	void *dev;
	int ret;

	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		ret = virtio_blk_create(&cfg->disks[i], vm->log, &ops, &dev);
		if (ret < 0)
			return ret;
		snprintf(label, sizeof(label), "virtio-blk%u", i);
		ret = plug(vm, ops, dev, label, &vm->disks[i]);
		if (ret < 0)
			return ret;
		vm->nr_disks = i + 1;
	}
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
	if (!cfg->no_balloon) {
		ret = virtio_balloon_create(&vm->mem, vm->log, &ops, &dev);
		if (ret < 0) {
			log_err(vm->log, "virtio-balloon: %s", strerror(-ret));
			return ret;
		}
		ret = plug(vm, ops, dev, "virtio-balloon", &vm->balloon);
		if (ret < 0)
			return ret;
	}
	return 0;
}
