/*
 * Creates the VM's virtio devices in crosvm's order: virtio consoles (by num), disks (vda,
 * vdb, ... in command-line order), then rng and balloon, which are on unless turned off, the
 * network devices, vsock, then shared directories.
 */
#include "core/vmm/virtio_devices.h"
#include "core/vmm/vm.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/fs.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "virtio/vsock.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The fds of one virtio-console port: its output (stdout, a file) and stdin if it takes it. */
static int console_fds(struct vm *vm, const struct vconsole_config *vc,
		       struct virtio_console_params *p)
{
	const struct serial_config *sc = &vc->s;

	p->out = sc->type == SERIAL_CFG_SYSLOG ? VIRTIO_CONSOLE_SYSLOG
		 : sc->type == SERIAL_CFG_SINK ? VIRTIO_CONSOLE_SINK
					       : VIRTIO_CONSOLE_FD;
	if (sc->type == SERIAL_CFG_STDOUT)
		p->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	else if (sc->type == SERIAL_CFG_FILE)
		p->out_fd = open(sc->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (p->out == VIRTIO_CONSOLE_FD && p->out_fd < 0) {
		int e = errno;

		log_err(vm->log, "virtio-console %u: cannot open %s: %s", vc->num,
			sc->type == SERIAL_CFG_FILE ? sc->path : "stdout", strerror(e));
		return -e;
	}
	if (sc->stdin_) {
		p->in_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
		if (p->in_fd < 0) {
			int e = errno;

			log_err(vm->log, "virtio-console %u: cannot use stdin: %s", vc->num,
				strerror(e));
			close_fd(&p->out_fd);
			return -e;
		}
	}
	return 0;
}

static int cmp_vconsole(const void *a, const void *b)
{
	const struct vconsole_config *const *x = a, *const *y = b;

	return (int)(*x)->num - (int)(*y)->num;
}

/* One device per port, by num as crosvm orders them, so that hvc<num-1> names it. */
static int create_consoles(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	const struct vconsole_config *order[CONFIG_MAX_VCONSOLE];
	const struct virtio_dev_ops *ops;
	struct device *d;
	char label[32];
	void *dev;
	int ret;

	for (unsigned i = 0; i < cfg->nr_vconsoles; i++)
		order[i] = &cfg->vconsole[i];
	qsort(order, cfg->nr_vconsoles, sizeof(const struct vconsole_config *), cmp_vconsole);
	for (unsigned i = 0; i < cfg->nr_vconsoles; i++) {
		struct virtio_console_params p = {
			.num = order[i]->num, .out_fd = -1, .in_fd = -1, .log = vm->log};

		ret = console_fds(vm, order[i], &p);
		if (ret < 0)
			return ret;
		ret = virtio_console_create(&p, &ops, &dev);
		if (ret < 0) {
			close_fd(&p.out_fd);
			close_fd(&p.in_fd);
			log_err(vm->log, "virtio-console %u: %s", p.num, strerror(-ret));
			return ret;
		}
		snprintf(label, sizeof(label), "virtio-console%u", p.num);
		ret = plug(vm, ops, dev, label, &d);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int create_vsock(struct vm *vm)
{
	const struct vsock_config *vc = &vm->cfg->vsock;
	const struct virtio_dev_ops *ops;
	struct device *d;
	void *dev;
	int ret;

	if (vc->uds_path)
		ret = virtio_vsock_create(vc->cid, vc->uds_path, vm->log, &ops, &dev);
	else
		ret = virtio_vhost_vsock_create(vc->cid, vc->device, vm->log, &ops, &dev);
	if (ret < 0)
		return ret;
	return plug(vm, ops, dev, vc->uds_path ? "virtio-vsock" : "vhost-vsock", &d);
}

int virtio_devices_create(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	const struct virtio_dev_ops *ops;
	struct device *d;
	char label[32];
	void *dev;
	int ret;

	ret = create_consoles(vm);
	if (ret < 0)
		return ret;
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
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		snprintf(label, sizeof(label), "virtio-net%u", i);
		ret = virtio_net_create(&cfg->nets[i], label, vm->log, &ops, &dev);
		if (ret < 0) {
			log_err(vm->log, "%s: %s", label, strerror(-ret));
			return ret;
		}
		ret = plug(vm, ops, dev, label, &d);
		if (ret < 0)
			return ret;
	}
	if (cfg->vsock.present) {
		ret = create_vsock(vm);
		if (ret < 0)
			return ret;
	}
	for (unsigned i = 0; i < cfg->nr_shared_dirs; i++) {
		ret = virtio_fs_create(&cfg->shared_dirs[i], vm->log, &ops, &dev);
		if (ret < 0)
			return ret;
		snprintf(label, sizeof(label), "virtio-fs%u", i);
		ret = plug(vm, ops, dev, label, &d);
		if (ret < 0)
			return ret;
	}
	return 0;
}
