#include "core/vmm/vm.h"
#include "core/layout.h"
#include "core/pci.h"
#include "vcpu/vcpu.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

static void request_exit_cb(void *ctx, enum vm_exit_reason reason)
{
	vm_request_exit(ctx, reason);
}

/*
 * The more severe reason wins, whatever the order: a device process that died while the guest
 * was powering off is still a crash, a guest that panics and then resets still a panic.
 * The first request also stops every vCPU at once (vcpus_halt), so that no vCPU runs on and,
 * say, prints after its guest's own power-off; the main loop then tears the VM down.
 */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason)
{
	int cur = atomic_load(&vm->exit_reason);

	if (reason == VM_EXIT_NONE)
		return;
	while (cur < (int)reason) {
		if (atomic_compare_exchange_weak(&vm->exit_reason, &cur, (int)reason)) {
			if (cur == VM_EXIT_NONE) {
				if (vm->vcpus)
					vcpus_halt(vm->vcpus);
				eventfd_signal(vm->exit_efd);
			}
			return;
		}
	}
}

static int register_memory(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nr; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		int ret = kvm_set_user_memory(&vm->kvm, i, r->gpa, r->size, r->hva);

		if (ret < 0) {
			log_err(vm->log,
				"cannot register guest memory [0x%llx, 0x%llx) with KVM: %s",
				(unsigned long long)r->gpa, (unsigned long long)(r->gpa + r->size),
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct logger *log)
{
	const char *kvm_path = cfg->kvm_device ? cfg->kvm_device : "/dev/kvm";
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->log = log;
	vm->kvm.dev_fd = vm->kvm.vm_fd = -1;
	vm->mem.fd = -1;
	vm->exit_efd = -1;
	vm->events = (struct vm_events){.request_exit = request_exit_cb, .ctx = vm};
	clock_gettime(CLOCK_MONOTONIC, &vm->start_time);

	ret = kvm_open(&vm->kvm, kvm_path);
	if (ret < 0) {
		log_err(log, "cannot open %s: %s%s", kvm_path, strerror(-ret),
			ret == -ENOENT ? " (is KVM available on this host?)" : "");
		goto err;
	}
	ret = guest_mem_create(&vm->mem, cfg->mem_mib << 20);
	if (ret < 0) {
		log_err(log, "cannot allocate %llu MiB of guest memory: %s",
			(unsigned long long)cfg->mem_mib, strerror(-ret));
		goto err;
	}
	ret = register_memory(vm);
	if (ret < 0)
		goto err;
	ret = kvm_setup_platform(&vm->kvm, LAYOUT_TSS, LAYOUT_IDENTITY_MAP);
	if (ret < 0) {
		log_err(log, "cannot create the in-kernel irqchip and PIT: %s", strerror(-ret));
		goto err;
	}
	ret = irq_router_init(&vm->irq, &vm->kvm);
	if (ret < 0)
		goto err;
	ret = bus_init(&vm->pio, "io");
	if (ret < 0)
		goto err;
	ret = bus_init(&vm->mmio, "mmio");
	if (ret < 0)
		goto err;
	vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_efd < 0) {
		ret = -errno;
		goto err;
	}
	evthread_use_pthreads();
	vm->eb = event_base_new();
	if (!vm->eb) {
		ret = -ENOMEM;
		goto err;
	}
	return 0;
err:
	vm_destroy(vm);
	return ret;
}

int vm_add_device(struct vm *vm, struct device *dev)
{
	if (vm->nr_devs >= VM_MAX_DEVICES)
		return -ENOSPC;
	vm->devs[vm->nr_devs++] = dev;
	return 0;
}

int vm_register_region(struct vm *vm, struct bus *bus, struct device *dev, unsigned region,
		       uint64_t base, uint64_t len)
{
	int ret = bus_register(bus, base, len, device_bus_io, dev, region, dev->name);

	if (ret < 0)
		log_err(vm->log, "%s: cannot claim %s range [0x%llx, 0x%llx): %s", dev->name,
			bus->name, (unsigned long long)base, (unsigned long long)(base + len),
			strerror(-ret));
	return ret;
}

void vm_destroy(struct vm *vm)
{
	for (unsigned i = vm->nr_devs; i-- > 0;) {
		struct device *d = vm->devs[i];

		if (d)
			device_destroy(d);
	}
	vm->nr_devs = 0;
	pci_root_destroy(vm->pci);
	vm->pci = NULL;
	if (vm->exit_ev)
		event_free(vm->exit_ev);
	vm->exit_ev = NULL;
	if (vm->eb)
		event_base_free(vm->eb);
	vm->eb = NULL;
	close_fd(&vm->exit_efd);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	guest_mem_destroy(&vm->mem);
	kvm_close(&vm->kvm);
}
