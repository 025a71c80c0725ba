/*
 * The contract between the virtio-pci transport (virtio/pci.c) and a virtio device
 * (virtio/blk.c, rng.c, balloon.c...). The transport owns PCI config space, BARs, the common
 * configuration, feature negotiation, the device-status state machine, queue setup,
 * ioeventfd notifications and interrupts; a device sees only its device-specific
 * configuration, negotiated features, its queues, guest memory and an interrupt handle.
 * That keeps devices small and lets the whole virtio stack run in a sandboxed child.
 */
#ifndef CROSVM_VIRTIO_VIRTIO_H
#define CROSVM_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include "core/device.h"
#include "core/util.h"

struct event_base;
struct guest_mem;
struct logger;
struct virtq;
struct virtio_irq;

/* virtio-net's 8 queue pairs and its control queue. */
#define VIRTIO_MAX_QUEUES 17

/* Handed to the device when the driver sets DRIVER_OK. Valid until reset/destroy. */
struct virtio_activate {
	uint64_t features; /* negotiated (includes transport bits such as VERSION_1) */
	unsigned nr_queues;
	struct virtq *queues[VIRTIO_MAX_QUEUES]; /* NULL for queues the driver left disabled */
	struct virtio_irq *irq;
	const struct guest_mem *mem;
	struct event_base *eb; /* the loop of the process the device runs in */
	/* Each queue's kick eventfd (-1 for a disabled queue); see virtio_dev_ops.own_kicks. */
	int kick_fds[VIRTIO_MAX_QUEUES];
};

struct virtio_dev_ops {
	const char *name;     /* "virtio-blk", in logs */
	const char *policy;   /* seccomp policy of its sandboxed process, e.g. "block_device" */
	uint32_t device_type; /* virtio device id (2 = block, 4 = rng, 5 = balloon ...) */
	unsigned nr_queues;
	/* Optional: the queues of this instance when they vary (virtio-blk's num-queues). */
	unsigned (*queues)(void *dev);
	uint16_t queue_max_size; /* power of two */
	/* Device feature bits (the transport adds VERSION_1, RING_EVENT_IDX, RING_INDIRECT_DESC).
	 */
	uint64_t (*features)(void *dev);
	/* Device-specific configuration space (len 1, 2, 4 or 8 at any offset inside it). */
	uint32_t config_size;
	int (*config_read)(void *dev, uint32_t off, void *data, uint32_t len);
	int (*config_write)(void *dev, uint32_t off, const void *data, uint32_t len);
	/* DRIVER_OK: start processing. Returns 0 or -errno (the transport then sets NEEDS_RESET).
	 */
	int (*activate)(void *dev, const struct virtio_activate *a);
	/* A queue was kicked (loop thread). Not called for a device with own_kicks. */
	void (*notify)(void *dev, unsigned queue);
	/*
	 * The device waits on its queues' kick eventfds itself (virtio_activate.kick_fds), e.g.
	 * from the worker thread that does its I/O, from activate until reset returns: the
	 * transport then leaves them off its event loop (notify may be NULL). That saves a
	 * thread wake-up per kick. A notification written to the BAR instead of reaching the
	 * ioeventfd, and the kick the transport sends at activation, go to the same eventfd.
	 */
	bool own_kicks;
	/*
	 * Its sandboxed process stays in the VMM's network namespace (user-mode networking
	 * opens the host's sockets); every other device process gets an empty one.
	 */
	bool host_network;
	/* The driver reset the device (or the VM stops): stop using queues; back to initial state.
	 */
	void (*reset)(void *dev);
	/* Back-end fds the device needs once running (disk image, ...), for the sandbox. */
	int (*fds)(void *dev, struct fd_list *out);
	/* Optional: the host directory its jail must show (struct device.jail_dir), or NULL. */
	const char *(*jail_dir)(void *dev);
	/* A control command (dev_ops.command of core/device.h). Optional. */
	int (*command)(void *dev, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx);
	/*
	 * Optional: the device's own fds (host sockets, stdin, timers) join the loop `eb` of the
	 * process it runs in, on that loop's thread, before any activation; stop detaches them
	 * (safe without start). For a device that must watch host fds whether or not a driver
	 * is active; activate and reset may run on other threads and must not touch the loop.
	 */
	int (*start)(void *dev, struct event_base *eb);
	void (*stop)(void *dev);
	/* What its sandboxed process needs beyond the default jail (dev_ops.jail). Optional. */
	int (*jail)(void *dev, struct dev_jail *out);
	void (*destroy)(void *dev);
};

/* Interrupts, implemented by the transport; callable from any thread of the device. */
void virtio_irq_queue(struct virtio_irq *irq, unsigned queue);
void virtio_irq_config(struct virtio_irq *irq);
/* A fatal device error: sets DEVICE_NEEDS_RESET and raises a config interrupt. */
void virtio_irq_needs_reset(struct virtio_irq *irq);
/*
 * The eventfd that raises queue `queue`'s interrupt by itself (its MSI-X vector's irqfd), for
 * a back end that signals the guest without the device (the kernel's vhost), or -1 when
 * there is none: MSI-X is off (INTx needs the ISR set first) or the queue has no vector.
 * Valid while the device is active; -1 must be answered with virtio_irq_queue.
 */
int virtio_irq_queue_fd(struct virtio_irq *irq, unsigned queue);

struct pci_root;
/*
 * Wraps a virtio device into a virtio-pci function and plugs it into the PCI root (the next
 * slot, its MSI-X vectors and INTx). dev_ops/dev are owned by the resulting struct device
 * (destroy frees both); on failure they stay the caller's. `label` names the device in logs
 * and in the sandbox (e.g. "virtio-blk0").
 */
int virtio_pci_create(struct pci_root *root, const struct guest_mem *mem, const struct logger *lg,
		      const struct virtio_dev_ops *ops, void *dev, const char *label,
		      struct device **out) MUST_CHECK;

#endif
