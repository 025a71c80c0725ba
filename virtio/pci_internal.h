/*
 * Private to the virtio-pci transport (virtio/pci*.c): the transport's state and what its
 * files call across. pci.c creates the transport, dispatches BAR0 and runs the kicks and the
 * lifecycle; pci_common.c holds the common configuration and the device-status state
 * machine; pci_irq.c raises the interrupts (MSI-X vectors, or INTx with the ISR).
 */
#ifndef CROSVM_VIRTIO_PCI_INTERNAL_H
#define CROSVM_VIRTIO_PCI_INTERNAL_H

#include "virtio/pci.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <event2/util.h>

#include "core/device.h"
#include "virtio/queue.h"

struct event;
struct event_base;

/* Things a guest can repeat forever: each is logged once per transport. */
enum once {
	ONCE_FEATURES = 1u << 0,
	ONCE_LATE_FEATURES = 1u << 1,
	ONCE_BAD_QUEUE = 1u << 2,
	ONCE_NO_FEATURES_OK = 1u << 3,
	ONCE_QUEUE_SIZE = 1u << 4,
	ONCE_ACTIVATE = 1u << 5,
	ONCE_NEEDS_RESET = 1u << 6,
	ONCE_LATE_QUEUE = 1u << 7,
};

struct vpci;

struct vpci_queue {
	struct vpci *vp;
	unsigned index;
	struct virtq vq;
	uint16_t size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc, driver, device;
	int kick_fd;
	struct event *kick_ev;
	char name[48];
};

struct virtio_irq {
	char unused; /* only its address matters: it leads back to the transport */
};

struct vpci {
	struct device dev;
	struct virtio_irq irq;
	/* Serialises guest accesses that call into the device (reset, activate, config). */
	pthread_mutex_t op_lock;
	/* Register state and interrupts; never held while calling into the device. */
	pthread_mutex_t lock;

	const struct virtio_dev_ops *ops;
	void *vdev;
	const struct guest_mem *mem;
	const struct logger *log;
	struct pci_irq_fds irqfds;
	struct event_base *eb;
	struct event *resample_ev;

	uint64_t features; /* offered */
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint16_t msix_config;
	uint16_t queue_select;
	uint8_t status;
	uint8_t generation;
	uint8_t isr;
	bool msix_enabled;
	bool active;	 /* the device has been (or is being) activated and not reset since */
	unsigned logged; /* enum once */

	unsigned nr_queues;
	struct vpci_queue q[VIRTIO_MAX_QUEUES];
};

static inline bool virtio_pci_first_time(struct vpci *vp, enum once what)
{
	bool first = !(vp->logged & what);

	vp->logged |= what;
	return first;
}

/* ---- pci_common.c: the common configuration (BAR0 0x0000) and the device status ---- */

/* Lock held (or the transport not yet published). Registers and queues to reset values. */
void virtio_pci_common_reset_regs_locked(struct vpci *vp);
/*
 * op_lock held. Stops the device if it runs (the driver set FAILED, or the VM stops); the
 * registers keep their values until the driver resets it.
 */
void virtio_pci_common_deactivate(struct vpci *vp);
/* Takes the lock. off/len lie inside the area; data was zeroed by the caller. */
void virtio_pci_common_read(struct vpci *vp, uint32_t off, uint8_t *data, uint32_t len);
/* op_lock held. */
void virtio_pci_common_write(struct vpci *vp, uint32_t off, const uint8_t *data, uint32_t len);

/* ---- pci_irq.c: MSI-X vectors, or INTx with the ISR (BAR0 0x1000) and its resample ---- */

/* Lock held. Sets DEVICE_NEEDS_RESET and raises a config interrupt; logs why once. */
void virtio_pci_irq_set_needs_reset_locked(struct vpci *vp, const char *why);
/* Takes the lock. A read of the ISR area (BAR0 0x1000); only its byte 0 is the ISR. */
void virtio_pci_irq_isr_read(struct vpci *vp, uint32_t off, uint8_t *data);
/* The event-loop callback of the INTx resample eventfd (arg: the struct vpci). */
void virtio_pci_irq_on_resample(evutil_socket_t fd, short what, void *arg);
/* dev_ops.msix_state: the driver enabled or disabled MSI-X (opaque: the struct vpci). */
void virtio_pci_irq_msix_state(void *opaque, bool enabled);

#endif
