/*
 * A virtio device behind the virtio-pci transport, with the host playing the guest: guest
 * memory, an event loop, eventfds for the interrupts, BAR0 reached through device_io, the
 * Linux driver's initialisation sequence, and one queue test driver (virtq_driver.h) per
 * queue. No KVM: the unit suites and bench_block drive devices with it.
 *
 * Two halves. The first returns 0 or -errno and never asserts, so bench_block (not a Check
 * program) can use it. The second wraps the first for the Check suites: each function there
 * fails the running test (ck_assert) instead of returning an error, and may only be called
 * from inside a Check test.
 *
 * Interrupts: one MSI-X vector per queue plus one for configuration changes, as Linux asks
 * for them: vector 0 for the configuration, vector 1 + q for queue q; and an INTx pair.
 */
#ifndef CROSVM_TEST_VIRTIO_ENV_H
#define CROSVM_TEST_VIRTIO_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_config.h>

#include "core/guest_mem.h"
#include "core/log.h"
#include "core/pci.h"
#include "test/unit/virtq_driver.h"
#include "virtio/virtio.h"

struct device;
struct event_base;

#define VIRTIO_ENV_CFG_VECTOR  0
#define VIRTIO_ENV_Q_VECTOR(q) (1 + (q))
/* The device status once virtio_env_driver_ok succeeded. */
#define VIRTIO_ENV_S_LIVE                                                                          \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |      \
	 VIRTIO_CONFIG_S_DRIVER_OK)

struct virtio_env_params {
	const struct guest_region *ram; /* the guest's RAM, nr_ram regions */
	unsigned nr_ram;
	enum log_level log_level; /* of e->lg, which the device and transport log to; 0: off */
	/*
	 * Where virtio_env_setup_queue puts queue q: its rings at ring_gpa + q * (the rings'
	 * size rounded up to 4 KiB), the area virtq_driver_alloc hands out at
	 * data_gpa + q * data_len (none when data_len is 0).
	 */
	uint16_t queue_size;
	uint64_t ring_gpa, data_gpa, data_len;
};

struct virtio_env {
	struct logger lg;
	struct guest_mem mem;
	struct event_base *eb;
	struct pci_irq_fds irq; /* the eventfd numbers; the transport owns the fds once attached */
	const struct virtio_dev_ops *ops;
	struct device *dev; /* the transport; NULL until attached */
	struct pci_dev_desc desc;
	unsigned nr_queues;
	uint64_t features; /* what the driver last wrote during virtio_env_negotiate */
	uint16_t queue_size;
	uint64_t ring_gpa, data_gpa, data_len;
	struct virtq_driver drv[VIRTIO_MAX_QUEUES];
	bool drv_live[VIRTIO_MAX_QUEUES]; /* drv[q] holds memory to free */
};

/* ---- returning errors: for any program ---- */

/* The logger, guest memory and an event base; on failure nothing is left to destroy. */
int virtio_env_create(struct virtio_env *e, const struct virtio_env_params *p);
/*
 * Puts (ops, dev) behind a virtio-pci transport with fresh eventfds for its interrupts. On
 * success e->dev owns dev and the eventfds; on failure the caller still owns dev.
 */
int virtio_env_attach(struct virtio_env *e, const struct virtio_dev_ops *ops, void *dev,
		      const char *label);
/* Starts the device on e->eb; msix: then enables MSI-X as the guest's PCI code would. */
int virtio_env_start(struct virtio_env *e, bool msix);
/* Destroys the device, the queue drivers, the loop and memory; a no-op on a zeroed env. */
void virtio_env_destroy(struct virtio_env *e);

/* A guest access of len bytes at off in BAR0. */
int virtio_env_read(struct virtio_env *e, uint64_t off, uint32_t len, uint64_t *val);
int virtio_env_write(struct virtio_env *e, uint64_t off, uint32_t len, uint64_t val);

/*
 * Linux's order up to the queues: reset, ACKNOWLEDGE, DRIVER, the features, FEATURES_OK and
 * its read-back (-EPROTO if the device refused), the configuration vector.
 */
int virtio_env_negotiate(struct virtio_env *e, uint64_t features);
/*
 * (Re)starts the test driver of queue q where the params put it (EVENT_IDX as negotiated,
 * kicks to the queue's ioeventfd) and sets the queue up: size, vector, rings, enable.
 */
int virtio_env_setup_queue(struct virtio_env *e, unsigned q);
/* DRIVER_OK; -EPROTO unless the device status then reads exactly live. */
int virtio_env_driver_ok(struct virtio_env *e);

/* ---- asserting: inside Check tests only ---- */

uint64_t virtio_env_rd(struct virtio_env *e, uint64_t off, uint32_t len);
void virtio_env_wr(struct virtio_env *e, uint64_t off, uint32_t len, uint64_t val);
uint8_t virtio_env_status(struct virtio_env *e);
/* How often the eventfd (an interrupt, a kick) was signalled since the last count. */
uint64_t virtio_env_count(int fd);
/* Forgets every interrupt raised so far (all vectors and INTx). */
void virtio_env_drain_irqs(struct virtio_env *e);
/* Runs what is ready on the event loop, without blocking. */
void virtio_env_run_loop(struct virtio_env *e);

/* Everything up to (not including) DRIVER_OK, with queues [0, nr_queues) enabled. */
void virtio_env_setup(struct virtio_env *e, uint64_t features, unsigned nr_queues);
/* DRIVER_OK, the status checked, then the loop consumes the start-up kicks. */
void virtio_env_live(struct virtio_env *e);
/* virtio_env_setup, then virtio_env_live. */
void virtio_env_init(struct virtio_env *e, uint64_t features, unsigned nr_queues);

/* Adds a chain of nr buffers to queue q; returns its head. */
uint16_t virtio_env_add(struct virtio_env *e, unsigned q, const struct virtq_buf *b, unsigned nr);
/* Kicks queue q if its driver would, then runs the loop. */
void virtio_env_kick(struct virtio_env *e, unsigned q);
/*
 * The length of the next used entry of queue q, which must be head; -1 if the device has
 * returned nothing. Then asks for an interrupt at the next one, as Linux's virtqueue_get_buf.
 */
int64_t virtio_env_used(struct virtio_env *e, unsigned q, uint16_t head);
/* Host pointer to [gpa, gpa + len) of guest memory. */
uint8_t *virtio_env_ptr(struct virtio_env *e, uint64_t gpa, uint64_t len);

#endif
