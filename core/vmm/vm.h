/*
 * struct vm: the one context object. Every fd, the guest memory, the buses, the IRQ routing,
 * the main event loop, the vCPUs and the devices hang off it; nothing is global.
 */
#ifndef CROSVM_CORE_VMM_VM_H
#define CROSVM_CORE_VMM_VM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/bus.h"
#include "core/vmm/config.h"
#include "core/device.h"
#include "core/guest_mem.h"
#include "core/irq.h"
#include "core/kvm.h"
#include "core/log.h"
#include "core/vm_event.h"

struct event_base;
struct event;
struct vcpus;
struct pci_root;
struct control_server;

#define VM_MAX_DEVICES 64

struct vm {
	const struct vm_config *cfg;
	struct logger *log;
	struct kvm kvm;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct irq_router irq;
	struct event_base *eb;
	struct vm_events events; /* handed to devices: request_exit -> vm_request_exit */

	/* Exit requests from vCPU threads and devices wake the main loop through this eventfd. */
	int exit_efd;
	struct event *exit_ev;
	atomic_int exit_reason; /* enum vm_exit_reason; the first request wins */

	struct vcpus *vcpus; /* their run state too (suspend, resume, stop) */

	struct device *devs[VM_MAX_DEVICES];
	unsigned nr_devs;

	struct pci_root *pci;
	struct device *acpi_pm;
	struct device *balloon;			/* NULL with --no-balloon */
	struct device *disks[CONFIG_MAX_DISKS]; /* in command-line order (vda, vdb, ...) */
	unsigned nr_disks;
	struct control_server *control;

	atomic_bool stopping; /* teardown has begun: device deaths are expected now */

	struct timespec start_time; /* CLOCK_MONOTONIC at process start, for the startup trace */
};

/* Creates KVM, guest memory (registered with KVM), irqchip, PIT, buses, routing, event loop. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct logger *log) MUST_CHECK;
void vm_destroy(struct vm *vm);

/* Called from any thread: ends the VM with `reason` unless another reason came first. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason);

/* Takes ownership of dev (destroyed with the VM). */
int vm_add_device(struct vm *vm, struct device *dev) MUST_CHECK;
/* Routes [base, base+len) on the I/O or MMIO bus to region `region` of dev. */
int vm_register_region(struct vm *vm, struct bus *bus, struct device *dev, unsigned region,
		       uint64_t base, uint64_t len) MUST_CHECK;

#endif
