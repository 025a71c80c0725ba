#include "virtio/pci.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <event2/event.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/device.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "core/vm.h"
#include "virtio/queue.h"

#define BIT(n) (1ull << (n))

/* What the transport itself implements; the device may not offer other bits in 24..49. */
#define TRANSPORT_FEATURES                                                                         \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC))
#define TRANSPORT_RESERVED (((BIT(50) - 1) >> 24) << 24)

/* Status bits a driver may set; NEEDS_RESET is the device's. */
#define DRIVER_STATUS_BITS                                                                         \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |        \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_FAILED)

#define ISR_QUEUE  0x1
#define ISR_CONFIG 0x2

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

/* The common configuration structure (virtio 1.2, 4.1.4.3), one entry per field. */
enum cfield {
	F_DFSELECT,
	F_DF,
	F_GFSELECT,
	F_GF,
	F_MSIX_CONFIG,
	F_NUM_QUEUES,
	F_STATUS,
	F_GENERATION,
	F_Q_SELECT,
	F_Q_SIZE,
	F_Q_MSIX,
	F_Q_ENABLE,
	F_Q_NOTIFY_OFF,
	F_Q_DESC_LO,
	F_Q_DESC_HI,
	F_Q_DRIVER_LO,
	F_Q_DRIVER_HI,
	F_Q_DEVICE_LO,
	F_Q_DEVICE_HI,
	F_Q_NOTIFY_DATA,
	F_Q_RESET,
	NR_FIELDS,
};

static const struct {
	uint8_t off, width;
} fields[NR_FIELDS] = {
	[F_DFSELECT] = {0x00, 4},     [F_DF] = {0x04, 4},
	[F_GFSELECT] = {0x08, 4},     [F_GF] = {0x0c, 4},
	[F_MSIX_CONFIG] = {0x10, 2},  [F_NUM_QUEUES] = {0x12, 2},
	[F_STATUS] = {0x14, 1},	      [F_GENERATION] = {0x15, 1},
	[F_Q_SELECT] = {0x16, 2},     [F_Q_SIZE] = {0x18, 2},
	[F_Q_MSIX] = {0x1a, 2},	      [F_Q_ENABLE] = {0x1c, 2},
	[F_Q_NOTIFY_OFF] = {0x1e, 2}, [F_Q_DESC_LO] = {0x20, 4},
	[F_Q_DESC_HI] = {0x24, 4},    [F_Q_DRIVER_LO] = {0x28, 4},
	[F_Q_DRIVER_HI] = {0x2c, 4},  [F_Q_DEVICE_LO] = {0x30, 4},
	[F_Q_DEVICE_HI] = {0x34, 4},  [F_Q_NOTIFY_DATA] = {0x38, 2},
	[F_Q_RESET] = {0x3a, 2},
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

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static bool first_time(struct vpci *vp, enum once what)
{
	bool first = !(vp->logged & what);

	vp->logged |= what;
	return first;
}

/* ---- interrupts ---- */

/* Lock held. With MSI-X off the ISR says why and INTx is asserted (level, resampled). */
static void raise_irq_locked(struct vpci *vp, uint16_t vector, uint8_t isr_bit)
{
	int fd;

	if (vp->msix_enabled) {
		if (vector >= vp->irqfds.nr_vectors)
			return; /* VIRTIO_MSI_NO_VECTOR included */
		fd = vp->irqfds.vector_fds[vector];
	} else {
		vp->isr |= isr_bit;
		fd = vp->irqfds.intx_fd;
	}
	/* Only a saturated counter fails, and then an interrupt is pending anyway. */
	if (fd >= 0)
		(void)eventfd_signal(fd);
}

static void set_needs_reset_locked(struct vpci *vp, const char *why)
{
	if (first_time(vp, ONCE_NEEDS_RESET))
		log_err(vp->log, "%s: device needs reset: %s", vp->dev.name, why);
	vp->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	raise_irq_locked(vp, vp->msix_config, ISR_CONFIG);
}

static struct vpci *irq_vpci(struct virtio_irq *irq)
{
	return container_of(irq, struct vpci, irq);
}

void virtio_irq_queue(struct virtio_irq *irq, unsigned queue)
{
	struct vpci *vp = irq_vpci(irq);

	pthread_mutex_lock(&vp->lock);
	/* No used-buffer notification before DRIVER_OK or after a reset (spec 2.1.2). */
	if (queue < vp->nr_queues && (vp->status & VIRTIO_CONFIG_S_DRIVER_OK))
		raise_irq_locked(vp, vp->q[queue].msix_vector, ISR_QUEUE);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_irq_config(struct virtio_irq *irq)
{
	struct vpci *vp = irq_vpci(irq);

	pthread_mutex_lock(&vp->lock);
	vp->generation++;
	/* A driver not yet running reads the configuration when it starts. */
	if (vp->status & VIRTIO_CONFIG_S_DRIVER_OK)
		raise_irq_locked(vp, vp->msix_config, ISR_CONFIG);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_irq_needs_reset(struct virtio_irq *irq)
{
	struct vpci *vp = irq_vpci(irq);

	pthread_mutex_lock(&vp->lock);
	if ((vp->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(vp->status & VIRTIO_CONFIG_S_NEEDS_RESET))
		set_needs_reset_locked(vp, "reported by the device");
	pthread_mutex_unlock(&vp->lock);
}

/* ---- device status state machine ---- */

static void reset_regs_locked(struct vpci *vp)
{
	vp->status = 0;
	vp->driver_features = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	vp->active = false;
	for (unsigned i = 0; i < vp->nr_queues; i++) {
		struct vpci_queue *q = &vp->q[i];

		virtq_reset(&q->vq);
		q->size = vp->ops->queue_max_size;
		q->msix_vector = VIRTIO_MSI_NO_VECTOR;
		q->enabled = false;
		q->desc = q->driver = q->device = 0;
	}
}

/* op_lock held. The device is stopped before the registers go back to their reset values. */
static void do_reset(struct vpci *vp)
{
	pthread_mutex_lock(&vp->lock);
	vp->active = false;
	pthread_mutex_unlock(&vp->lock);
	vp->ops->reset(vp->vdev);
	pthread_mutex_lock(&vp->lock);
	reset_regs_locked(vp);
	pthread_mutex_unlock(&vp->lock);
}

/* op_lock held: the driver set FAILED, so the device stops until the driver resets it. */
static void deactivate(struct vpci *vp)
{
	bool was;

	pthread_mutex_lock(&vp->lock);
	was = vp->active;
	vp->active = false;
	pthread_mutex_unlock(&vp->lock);
	if (was)
		vp->ops->reset(vp->vdev);
}

/* Lock held. Maps every enabled queue; false (queues left reset) if one is unusable. */
static bool init_queues_locked(struct vpci *vp, struct virtio_activate *a)
{
	bool event_idx = vp->driver_features & BIT(VIRTIO_RING_F_EVENT_IDX);
	bool indirect = vp->driver_features & BIT(VIRTIO_RING_F_INDIRECT_DESC);

	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		a->kick_fds[i] = -1;
	for (unsigned i = 0; i < vp->nr_queues; i++) {
		struct vpci_queue *q = &vp->q[i];

		if (!q->enabled)
			continue;
		if (virtq_init(&q->vq, vp->mem, q->size, q->desc, q->driver, q->device, event_idx,
			       indirect, vp->log)) {
			if (first_time(vp, ONCE_BAD_QUEUE))
				log_warn(vp->log,
					 "%s: queue %u unusable (size %u, desc 0x%llx, driver "
					 "0x%llx, device 0x%llx)",
					 vp->dev.name, i, q->size, (unsigned long long)q->desc,
					 (unsigned long long)q->driver,
					 (unsigned long long)q->device);
			for (unsigned j = 0; j < vp->nr_queues; j++)
				virtq_reset(&vp->q[j].vq);
			return false;
		}
		q->vq.name = q->name;
		a->queues[i] = &q->vq;
		a->kick_fds[i] = q->kick_fd;
	}
	return true;
}

/* op_lock held: DRIVER_OK. */
static void activate(struct vpci *vp)
{
	struct virtio_activate a = {0};
	int ret;

	pthread_mutex_lock(&vp->lock);
	if (!init_queues_locked(vp, &a)) {
		set_needs_reset_locked(vp, "a queue lies outside guest memory or is malformed");
		pthread_mutex_unlock(&vp->lock);
		return;
	}
	a.features = vp->driver_features;
	a.nr_queues = vp->nr_queues;
	a.irq = &vp->irq;
	a.mem = vp->mem;
	a.eb = vp->eb;
	/* Set first, so that a device worker may already report an error. */
	vp->active = true;
	pthread_mutex_unlock(&vp->lock);

	ret = vp->ops->activate(vp->vdev, &a);

	pthread_mutex_lock(&vp->lock);
	if (ret < 0) {
		vp->active = false;
		if (first_time(vp, ONCE_ACTIVATE))
			log_err(vp->log, "%s: activation failed: %s", vp->dev.name, strerror(-ret));
		set_needs_reset_locked(vp, "activation failed");
	}
	pthread_mutex_unlock(&vp->lock);
	if (ret < 0)
		return;
	/*
	 * Buffers made available before DRIVER_OK, or kicks that raced with it, would otherwise
	 * wait for the next kick; a spurious kick costs the device one empty pop.
	 */
	for (unsigned i = 0; i < vp->nr_queues; i++)
		if (a.queues[i])
			(void)eventfd_signal(vp->q[i].kick_fd);
}

static bool features_acceptable(const struct vpci *vp)
{
	return !(vp->driver_features & ~vp->features) &&
	       (vp->driver_features & BIT(VIRTIO_F_VERSION_1));
}

/* op_lock held. Bits are only ever added; writing 0 resets (complete on return). */
static void status_write(struct vpci *vp, uint8_t val)
{
	bool no_features;
	uint8_t add, now;

	if (val == 0) {
		do_reset(vp);
		return;
	}
	pthread_mutex_lock(&vp->lock);
	add = (uint8_t)(val & DRIVER_STATUS_BITS & ~vp->status);
	if ((add & VIRTIO_CONFIG_S_FEATURES_OK) && !features_acceptable(vp)) {
		if (first_time(vp, ONCE_FEATURES))
			log_warn(vp->log,
				 "%s: refusing FEATURES_OK: driver features 0x%llx, offered 0x%llx",
				 vp->dev.name, (unsigned long long)vp->driver_features,
				 (unsigned long long)vp->features);
		add &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	}
	no_features = (add & VIRTIO_CONFIG_S_DRIVER_OK) &&
		      !((vp->status | add) & VIRTIO_CONFIG_S_FEATURES_OK);
	if (no_features)
		add &= (uint8_t)~VIRTIO_CONFIG_S_DRIVER_OK;
	vp->status |= add;
	if (no_features) {
		if (first_time(vp, ONCE_NO_FEATURES_OK))
			log_warn(vp->log, "%s: DRIVER_OK without FEATURES_OK", vp->dev.name);
		set_needs_reset_locked(vp, "DRIVER_OK without accepted features");
	}
	now = vp->status;
	pthread_mutex_unlock(&vp->lock);

	if ((add & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(now & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET)))
		activate(vp);
	if (add & VIRTIO_CONFIG_S_FAILED)
		deactivate(vp);
}

/* ---- common configuration ---- */

/* Lock held. NULL when queue_select names no queue. */
static struct vpci_queue *selected(struct vpci *vp)
{
	return vp->queue_select < vp->nr_queues ? &vp->q[vp->queue_select] : NULL;
}

static uint16_t valid_vector(const struct vpci *vp, uint64_t v)
{
	return v < vp->irqfds.nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static uint64_t select32(uint64_t v, uint32_t sel)
{
	return sel == 0 ? (uint32_t)v : sel == 1 ? v >> 32 : 0;
}

/* Lock held. */
static uint64_t field_get(struct vpci *vp, enum cfield f)
{
	struct vpci_queue *q = selected(vp);

	switch (f) {
	case F_DFSELECT:
		return vp->dfselect;
	case F_DF:
		return select32(vp->features, vp->dfselect);
	case F_GFSELECT:
		return vp->gfselect;
	case F_GF:
		return select32(vp->driver_features, vp->gfselect);
	case F_MSIX_CONFIG:
		return vp->msix_config;
	case F_NUM_QUEUES:
		return vp->nr_queues;
	case F_STATUS:
		return vp->status;
	case F_GENERATION:
		return vp->generation;
	case F_Q_SELECT:
		return vp->queue_select;
	default:
		break;
	}
	if (!q)
		return 0;
	switch (f) {
	case F_Q_SIZE:
		return q->size;
	case F_Q_MSIX:
		return q->msix_vector;
	case F_Q_ENABLE:
		return q->enabled;
	case F_Q_NOTIFY_OFF:
		return q->index; /* times the multiplier: one notify address per queue */
	case F_Q_DESC_LO:
		return (uint32_t)q->desc;
	case F_Q_DESC_HI:
		return q->desc >> 32;
	case F_Q_DRIVER_LO:
		return (uint32_t)q->driver;
	case F_Q_DRIVER_HI:
		return q->driver >> 32;
	case F_Q_DEVICE_LO:
		return (uint32_t)q->device;
	case F_Q_DEVICE_HI:
		return q->device >> 32;
	default:
		return 0; /* queue_notify_data, queue_reset: features not offered */
	}
}

static void set_half(uint64_t *v, bool hi, uint64_t half)
{
	if (hi)
		*v = (*v & 0xffffffffull) | (half << 32);
	else
		*v = (*v & ~0xffffffffull) | (uint32_t)half;
}

/* Lock held. Queue fields are frozen once the queue is enabled or the device is live. */
static void queue_field_set(struct vpci *vp, struct vpci_queue *q, enum cfield f, uint64_t v)
{
	if (f == F_Q_MSIX) {
		q->msix_vector = valid_vector(vp, v);
		return;
	}
	if (q->enabled || (vp->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
		if (first_time(vp, ONCE_LATE_QUEUE))
			log_warn(vp->log, "%s: ignoring a change to queue %u after it was enabled",
				 vp->dev.name, q->index);
		return;
	}
	switch (f) {
	case F_Q_SIZE:
		if (v && !(v & (v - 1)) && v <= vp->ops->queue_max_size)
			q->size = (uint16_t)v;
		else if (first_time(vp, ONCE_QUEUE_SIZE))
			log_warn(vp->log, "%s: ignoring queue size %llu (max %u)", vp->dev.name,
				 (unsigned long long)v, vp->ops->queue_max_size);
		break;
	case F_Q_ENABLE:
		/* Writing 0 is not allowed without VIRTIO_F_RING_RESET, which is not offered. */
		if (v == 1)
			q->enabled = true;
		break;
	case F_Q_DESC_LO:
	case F_Q_DESC_HI:
		set_half(&q->desc, f == F_Q_DESC_HI, v);
		break;
	case F_Q_DRIVER_LO:
	case F_Q_DRIVER_HI:
		set_half(&q->driver, f == F_Q_DRIVER_HI, v);
		break;
	case F_Q_DEVICE_LO:
	case F_Q_DEVICE_HI:
		set_half(&q->device, f == F_Q_DEVICE_HI, v);
		break;
	default:
		break;
	}
}

/* Lock held; the status field goes through status_write instead. */
static void field_set(struct vpci *vp, enum cfield f, uint64_t v)
{
	struct vpci_queue *q = selected(vp);

	switch (f) {
	case F_DFSELECT:
		vp->dfselect = (uint32_t)v;
		return;
	case F_GFSELECT:
		vp->gfselect = (uint32_t)v;
		return;
	case F_GF:
		if (vp->status & VIRTIO_CONFIG_S_FEATURES_OK) {
			if (first_time(vp, ONCE_LATE_FEATURES))
				log_warn(vp->log, "%s: ignoring features written after FEATURES_OK",
					 vp->dev.name);
			return;
		}
		if (vp->gfselect <= 1)
			set_half(&vp->driver_features, vp->gfselect == 1, v);
		return;
	case F_MSIX_CONFIG:
		vp->msix_config = valid_vector(vp, v);
		return;
	case F_Q_SELECT:
		vp->queue_select = (uint16_t)v;
		return;
	case F_Q_SIZE:
	case F_Q_MSIX:
	case F_Q_ENABLE:
	case F_Q_DESC_LO:
	case F_Q_DESC_HI:
	case F_Q_DRIVER_LO:
	case F_Q_DRIVER_HI:
	case F_Q_DEVICE_LO:
	case F_Q_DEVICE_HI:
		if (q)
			queue_field_set(vp, q, f, v);
		return;
	default:
		return; /* read-only */
	}
}

/*
 * Accesses are decoded byte by byte against the field table, so any size and alignment is
 * well defined: a read returns the bytes of the fields it covers (0 between them), a write
 * merges its bytes into each field it touches, lowest field first. The usual accesses (a
 * field at its own width, a 64-bit queue address as one 8-byte access) fall out of this.
 */
static void common_read(struct vpci *vp, uint32_t off, uint8_t *data, uint32_t len)
{
	pthread_mutex_lock(&vp->lock);
	for (unsigned f = 0; f < NR_FIELDS; f++) {
		uint8_t buf[8];

		if (!ranges_overlap(off, len, fields[f].off, fields[f].width))
			continue;
		put_le(buf, field_get(vp, f), fields[f].width);
		for (unsigned b = 0; b < fields[f].width; b++)
			if (fields[f].off + b >= off && fields[f].off + b < off + len)
				data[fields[f].off + b - off] = buf[b];
	}
	pthread_mutex_unlock(&vp->lock);
}

/* op_lock held. */
static void common_write(struct vpci *vp, uint32_t off, const uint8_t *data, uint32_t len)
{
	for (unsigned f = 0; f < NR_FIELDS; f++) {
		uint8_t buf[8];
		uint64_t v;

		if (!ranges_overlap(off, len, fields[f].off, fields[f].width))
			continue;
		pthread_mutex_lock(&vp->lock);
		put_le(buf, field_get(vp, f), fields[f].width);
		for (unsigned b = 0; b < fields[f].width; b++)
			if (fields[f].off + b >= off && fields[f].off + b < off + len)
				buf[b] = data[fields[f].off + b - off];
		v = get_le(buf, fields[f].width);
		if (f == F_STATUS) {
			pthread_mutex_unlock(&vp->lock);
			status_write(vp, (uint8_t)v);
			continue;
		}
		field_set(vp, f, v);
		pthread_mutex_unlock(&vp->lock);
	}
}

/* ---- the other areas of BAR0 ---- */

/* op_lock held. Bytes past the device's configuration read 0 and ignore writes. */
static void device_cfg_access(struct vpci *vp, uint32_t off, uint8_t *data, uint32_t len,
			      bool is_write)
{
	uint32_t size = vp->ops->config_size;
	int ret;

	if (off >= size)
		return;
	if (len > size - off || (len != 1 && len != 2 && len != 4 && len != 8)) {
		for (uint32_t i = 0; i < len && off + i < size; i++)
			device_cfg_access(vp, off + i, data + i, 1, is_write);
		return;
	}
	if (is_write) {
		if (vp->ops->config_write)
			(void)vp->ops->config_write(vp->vdev, off, data, len);
		return;
	}
	ret = vp->ops->config_read(vp->vdev, off, data, len);
	if (ret < 0)
		memset(data, 0, len);
}

/* Reading the ISR returns it and clears it, which also ends INTx re-assertion. */
static void isr_read(struct vpci *vp, uint32_t off, uint8_t *data)
{
	if (off != 0)
		return;
	pthread_mutex_lock(&vp->lock);
	data[0] = vp->isr;
	vp->isr = 0;
	pthread_mutex_unlock(&vp->lock);
}

/* A notification that missed the ioeventfd takes the same path through the loop. */
static void notify_write(struct vpci *vp, uint32_t off)
{
	unsigned qi = off / VIRTIO_PCI_NOTIFY_MULT;

	if (qi < vp->nr_queues)
		(void)eventfd_signal(vp->q[qi].kick_fd);
}

static int vpci_io(void *opaque, unsigned region, uint64_t off, void *data, uint32_t len,
		   bool is_write)
{
	struct vpci *vp = opaque;
	uint32_t area, rel;

	if (region != VIRTIO_PCI_BAR || !len || len > 8 ||
	    !range_contains(0, VIRTIO_PCI_BAR_SIZE, off, len))
		return -EINVAL;
	if (!is_write)
		memset(data, 0, len);
	area = (uint32_t)ALIGN_DOWN(off, VIRTIO_PCI_REGION_SIZE);
	rel = (uint32_t)off - area;
	/* An access straddling two areas belongs to neither. */
	if (rel + len > VIRTIO_PCI_REGION_SIZE)
		return 0;
	switch (area) {
	case VIRTIO_PCI_COMMON_OFF:
		if (is_write) {
			pthread_mutex_lock(&vp->op_lock);
			common_write(vp, rel, data, len);
			pthread_mutex_unlock(&vp->op_lock);
		} else {
			common_read(vp, rel, data, len);
		}
		break;
	case VIRTIO_PCI_ISR_OFF:
		if (!is_write)
			isr_read(vp, rel, data);
		break;
	case VIRTIO_PCI_DEVICE_OFF:
		pthread_mutex_lock(&vp->op_lock);
		device_cfg_access(vp, rel, data, len, is_write);
		pthread_mutex_unlock(&vp->op_lock);
		break;
	case VIRTIO_PCI_NOTIFY_OFF:
		if (is_write)
			notify_write(vp, rel);
		break;
	default:
		break; /* unused space; the MSI-X table and PBA are the PCI layer's */
	}
	return 0;
}

/* ---- event loop ---- */

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct vpci_queue *q = arg;
	struct vpci *vp = q->vp;
	uint64_t n;
	bool go;

	if (eventfd_drain(fd, &n) < 0 || !n)
		return;
	pthread_mutex_lock(&vp->lock);
	go = vp->active && q->enabled;
	pthread_mutex_unlock(&vp->lock);
	/* Without the lock: the device may raise interrupts from under its own. */
	if (go)
		vp->ops->notify(vp->vdev, q->index);
}

static void on_resample(evutil_socket_t fd, short what, void *arg)
{
	struct vpci *vp = arg;
	uint64_t n;

	if (eventfd_drain(fd, &n) < 0)
		return;
	pthread_mutex_lock(&vp->lock);
	if (!vp->msix_enabled && vp->isr && vp->irqfds.intx_fd >= 0)
		(void)eventfd_signal(vp->irqfds.intx_fd);
	pthread_mutex_unlock(&vp->lock);
}

static void free_events(struct vpci *vp)
{
	for (unsigned i = 0; i < vp->nr_queues; i++) {
		if (vp->q[i].kick_ev)
			event_free(vp->q[i].kick_ev);
		vp->q[i].kick_ev = NULL;
	}
	if (vp->resample_ev)
		event_free(vp->resample_ev);
	vp->resample_ev = NULL;
}

static int add_event(struct event_base *eb, int fd, event_callback_fn cb, void *arg,
		     struct event **out)
{
	struct event *ev = event_new(eb, fd, EV_READ | EV_PERSIST, cb, arg);

	if (!ev)
		return -ENOMEM;
	if (event_add(ev, NULL) < 0) {
		event_free(ev);
		return -EIO;
	}
	*out = ev;
	return 0;
}

static int vpci_start(void *opaque, struct event_base *eb)
{
	struct vpci *vp = opaque;
	int ret = 0;

	if (vp->eb)
		return -EBUSY;
	/* A device with own_kicks waits on them itself; a loop reading them would steal kicks. */
	for (unsigned i = 0; i < vp->nr_queues && !ret && !vp->ops->own_kicks; i++)
		ret = add_event(eb, vp->q[i].kick_fd, on_kick, &vp->q[i], &vp->q[i].kick_ev);
	if (!ret && vp->irqfds.intx_resample_fd >= 0)
		ret = add_event(eb, vp->irqfds.intx_resample_fd, on_resample, vp, &vp->resample_ev);
	if (ret < 0)
		goto err;
	pthread_mutex_lock(&vp->lock);
	vp->eb = eb;
	pthread_mutex_unlock(&vp->lock);
	return 0;
err:
	free_events(vp);
	return ret;
}

static void vpci_stop(void *opaque)
{
	struct vpci *vp = opaque;

	free_events(vp);
	pthread_mutex_lock(&vp->op_lock);
	deactivate(vp);
	pthread_mutex_lock(&vp->lock);
	vp->eb = NULL;
	pthread_mutex_unlock(&vp->lock);
	pthread_mutex_unlock(&vp->op_lock);
}

/* ---- lifecycle ---- */

static void close_irq_fds(struct pci_irq_fds *irq)
{
	for (unsigned i = 0; i < irq->nr_vectors; i++)
		close_fd(&irq->vector_fds[i]);
	irq->nr_vectors = 0;
	close_fd(&irq->intx_fd);
	close_fd(&irq->intx_resample_fd);
}

/* Frees the transport; the device too when destroy_dev (it is the caller's otherwise). */
static void vpci_free(struct vpci *vp, bool destroy_dev)
{
	free_events(vp);
	if (destroy_dev && vp->ops->destroy)
		vp->ops->destroy(vp->vdev);
	for (unsigned i = 0; i < vp->nr_queues; i++)
		close_fd(&vp->q[i].kick_fd);
	close_irq_fds(&vp->irqfds);
	pthread_mutex_destroy(&vp->lock);
	pthread_mutex_destroy(&vp->op_lock);
	free(vp);
}

static void vpci_destroy(void *opaque)
{
	struct vpci *vp = opaque;

	vpci_stop(vp);
	vpci_free(vp, true);
}

static int vpci_fds(void *opaque, struct fd_list *out)
{
	struct vpci *vp = opaque;
	int ret = 0;

	for (unsigned i = 0; i < vp->nr_queues && !ret; i++)
		ret = fd_list_add(out, vp->q[i].kick_fd);
	for (unsigned i = 0; i < vp->irqfds.nr_vectors && !ret; i++)
		ret = fd_list_add(out, vp->irqfds.vector_fds[i]);
	if (!ret)
		ret = fd_list_add(out, vp->irqfds.intx_fd);
	if (!ret)
		ret = fd_list_add(out, vp->irqfds.intx_resample_fd);
	if (!ret && vp->ops->fds)
		ret = vp->ops->fds(vp->vdev, out);
	return ret;
}

static void vpci_msix_state(void *opaque, bool enabled)
{
	struct vpci *vp = opaque;

	pthread_mutex_lock(&vp->lock);
	vp->msix_enabled = enabled;
	pthread_mutex_unlock(&vp->lock);
}

static int vpci_command(void *opaque, const char *req, dev_reply_fn done, void *done_ctx)
{
	struct vpci *vp = opaque;

	if (!vp->ops->command)
		return -EOPNOTSUPP;
	return vp->ops->command(vp->vdev, req, done, done_ctx);
}

static const struct dev_ops vpci_ops = {
	.io = vpci_io,
	.start = vpci_start,
	.stop = vpci_stop,
	.destroy = vpci_destroy,
	.fds = vpci_fds,
	.msix_state = vpci_msix_state,
	.command = vpci_command,
};

/* ---- PCI description ---- */

/* PCI class, subclass as QEMU gives each virtio-pci device ("other" when it has none). */
static void class_of(uint32_t type, uint8_t *cls, uint8_t *sub)
{
	static const struct {
		uint32_t type;
		uint8_t cls, sub;
	} classes[] = {
		{VIRTIO_ID_NET, 0x02, 0x00},	 /* network, ethernet */
		{VIRTIO_ID_BLOCK, 0x01, 0x00},	 /* mass storage, SCSI */
		{VIRTIO_ID_CONSOLE, 0x07, 0x80}, /* communication, other */
		{VIRTIO_ID_SCSI, 0x01, 0x00},
		{VIRTIO_ID_GPU, 0x03, 0x80},   /* display, other */
		{VIRTIO_ID_INPUT, 0x09, 0x80}, /* input, other */
		{VIRTIO_ID_VSOCK, 0x07, 0x80},
		{VIRTIO_ID_FS, 0x01, 0x80}, /* mass storage, other */
	};

	*cls = 0xff;
	*sub = 0x00;
	for (unsigned i = 0; i < ARRAY_SIZE(classes); i++) {
		if (classes[i].type == type) {
			*cls = classes[i].cls;
			*sub = classes[i].sub;
		}
	}
}

/* A virtio_pci_cap (plus extra bytes after it) pointing into BAR0. */
static struct pci_cap_desc *add_vcap(struct pci_dev_desc *d, uint8_t type, uint32_t off,
				     uint32_t len, uint8_t cap_len)
{
	struct pci_cap_desc *c = &d->caps[d->nr_caps++];

	*c = (struct pci_cap_desc){.id = 0x09, .len = cap_len};
	/* body[] starts at cap_len: the id and next bytes belong to the PCI layer. */
	c->body[VIRTIO_PCI_CAP_LEN - 2] = cap_len;
	c->body[VIRTIO_PCI_CAP_CFG_TYPE - 2] = type;
	c->body[VIRTIO_PCI_CAP_BAR - 2] = VIRTIO_PCI_BAR;
	put_le(&c->body[VIRTIO_PCI_CAP_OFFSET - 2], off, 4);
	put_le(&c->body[VIRTIO_PCI_CAP_LENGTH - 2], len, 4);
	return c;
}

static void fill_desc(const struct vpci *vp, struct pci_dev_desc *d)
{
	uint32_t type = vp->ops->device_type;
	struct pci_cap_desc *c;

	*d = (struct pci_dev_desc){
		.vendor_id = VIRTIO_PCI_VENDOR,
		.device_id = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + type),
		.subsys_vendor_id = VIRTIO_PCI_VENDOR,
		/* Spec 4.1.2.1: a non-transitional device's subsystem ID SHOULD be >= 0x40. */
		.subsys_id = (uint16_t)(VIRTIO_PCI_SUBSYS_BASE + type),
		.revision = 1,
		.msix_vectors = vp->irqfds.nr_vectors,
		.msix_bar = VIRTIO_PCI_BAR,
		.msix_table_off = VIRTIO_PCI_MSIX_TABLE_OFF,
		.msix_pba_off = VIRTIO_PCI_MSIX_PBA_OFF,
		.intx = vp->irqfds.intx_fd >= 0,
	};
	class_of(type, &d->class_code, &d->subclass);
	d->bars[VIRTIO_PCI_BAR] = (struct pci_bar_desc){.size = VIRTIO_PCI_BAR_SIZE, .mem64 = true};

	add_vcap(d, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_REGION_SIZE,
		 sizeof(struct virtio_pci_cap));
	c = add_vcap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF, VIRTIO_PCI_REGION_SIZE,
		     sizeof(struct virtio_pci_notify_cap));
	put_le(&c->body[sizeof(struct virtio_pci_cap) - 2], VIRTIO_PCI_NOTIFY_MULT, 4);
	add_vcap(d, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, VIRTIO_PCI_REGION_SIZE,
		 sizeof(struct virtio_pci_cap));
	if (vp->ops->config_size)
		add_vcap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
			 VIRTIO_PCI_REGION_SIZE, sizeof(struct virtio_pci_cap));
	/* The window's bar/offset/length are the driver's to write; they start at 0. */
	c = add_vcap(d, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, sizeof(struct virtio_pci_cfg_cap));
	c->window = true;

	for (unsigned i = 0; i < vp->nr_queues; i++)
		d->ioevents[d->nr_ioevents++] = (struct pci_ioevent_desc){
			.bar = VIRTIO_PCI_BAR,
			.off = VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * i,
			.len = 2,
			.datamatch = true,
			.data = i,
			.fd = vp->q[i].kick_fd,
		};
}

/* An eventfd for queue notifications; -errno (never 0) on failure. */
static int new_kick_fd(int *fd)
{
	int err;

	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*fd >= 0)
		return 0;
	err = errno;
	return err > 0 ? -err : -EIO;
}

static int check_params(const struct virtio_pci_params *p)
{
	const struct virtio_dev_ops *ops = p->ops;

	if (!ops || !p->mem || !p->irq)
		return -EINVAL;
	if (!ops->activate || (!ops->notify && !ops->own_kicks) || !ops->reset)
		return -EINVAL;
	/* The spec's modern device IDs are 0x1040..0x107f. */
	if (ops->device_type < 1 || ops->device_type > 0x3f)
		return -EINVAL;
	if (!ops->nr_queues || ops->nr_queues > VIRTIO_MAX_QUEUES ||
	    ops->nr_queues > PCI_MAX_IOEVENTS)
		return -EINVAL;
	if (!ops->queue_max_size || (ops->queue_max_size & (ops->queue_max_size - 1)) ||
	    ops->queue_max_size > VIRTQ_MAX_SIZE)
		return -EINVAL;
	if (ops->config_size > VIRTIO_PCI_REGION_SIZE || (ops->config_size && !ops->config_read))
		return -EINVAL;
	if (p->irq->nr_vectors > PCI_MAX_VECTORS)
		return -EINVAL;
	return 0;
}

int virtio_pci_transport_create(const struct virtio_pci_params *p, struct device **out,
				struct pci_dev_desc *desc)
{
	const struct virtio_dev_ops *ops = p->ops;
	uint64_t dev_features;
	struct vpci *vp;
	int ret;

	ret = check_params(p);
	if (ret < 0)
		return ret;
	vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	ret = -pthread_mutex_init(&vp->op_lock, NULL);
	if (ret < 0)
		goto err_free;
	ret = -pthread_mutex_init(&vp->lock, NULL);
	if (ret < 0)
		goto err_op_lock;
	vp->ops = ops;
	vp->vdev = p->dev;
	vp->mem = p->mem;
	vp->log = p->log;
	vp->nr_queues = ops->nr_queues;
	vp->dev = (struct device){.policy = ops->policy, .ops = &vpci_ops, .priv = vp};
	snprintf(vp->dev.name, sizeof(vp->dev.name), "%s",
		 p->label ? p->label : (ops->name ? ops->name : "virtio"));
	for (unsigned i = 0; i < vp->nr_queues; i++) {
		struct vpci_queue *q = &vp->q[i];

		char base[sizeof(vp->dev.name)];

		q->vp = vp;
		q->index = i;
		/* Through a copy: GCC cannot tell that q->name and dev.name never overlap. */
		memcpy(base, vp->dev.name, sizeof(base));
		snprintf(q->name, sizeof(q->name), "%s q%u", base, i);
		q->kick_fd = -1;
	}
	for (unsigned i = 0; i < vp->nr_queues; i++) {
		ret = new_kick_fd(&vp->q[i].kick_fd);
		if (ret < 0)
			goto err_kick;
	}
	dev_features = ops->features ? ops->features(p->dev) : 0;
	if (dev_features & TRANSPORT_RESERVED)
		log_debug(p->log, "%s: dropping transport feature bits 0x%llx the device offered",
			  vp->dev.name, (unsigned long long)(dev_features & TRANSPORT_RESERVED));
	vp->features = (dev_features & ~TRANSPORT_RESERVED) | TRANSPORT_FEATURES;
	reset_regs_locked(vp);
	/* Taken last: nothing below can fail, so a failure above leaves them to the caller. */
	vp->irqfds = *p->irq;
	fill_desc(vp, desc);
	*out = &vp->dev;
	return 0;
err_kick:
	for (unsigned i = 0; i < vp->nr_queues; i++)
		close_fd(&vp->q[i].kick_fd);
	pthread_mutex_destroy(&vp->lock);
err_op_lock:
	pthread_mutex_destroy(&vp->op_lock);
err_free:
	free(vp);
	return ret;
}

int virtio_pci_create(struct vm *vm, const struct virtio_dev_ops *ops, void *dev, const char *label,
		      struct device **out)
{
	struct pci_dev_desc desc;
	struct pci_irq_fds irq;
	struct vpci *vp = NULL;
	struct device *d;
	unsigned slot;
	int ret;

	if (!vm->pci)
		return -ENODEV;
	if (!ops || !ops->nr_queues || ops->nr_queues > VIRTIO_MAX_QUEUES)
		return -EINVAL;
	ret = pci_next_slot(vm->pci, &slot);
	if (ret < 0)
		return ret;
	ret = pci_alloc_irqs(vm->pci, slot, ops->nr_queues + 1, true, &irq);
	if (ret < 0)
		return ret;
	ret = virtio_pci_transport_create(&(struct virtio_pci_params){.ops = ops,
								      .dev = dev,
								      .label = label,
								      .mem = &vm->mem,
								      .irq = &irq,
								      .log = vm->log},
					  &d, &desc);
	if (ret < 0)
		goto err_dev;
	vp = d->priv;
	ret = vm_add_device(vm, d);
	if (ret < 0)
		goto err_dev;
	ret = pci_add_device(vm->pci, slot, d, &desc, &vp->irqfds);
	if (ret < 0)
		goto err_vm;
	*out = d;
	return 0;
err_vm:
	/* Take it back from the VM, which would otherwise destroy the caller's device too. */
	if (vm->nr_devs && vm->devs[vm->nr_devs - 1] == d)
		vm->nr_devs--;
err_dev:
	if (vp)
		vpci_free(vp, false); /* with the irq fds it took over */
	else
		close_irq_fds(&irq);
	log_err(vm->log, "%s: cannot add virtio-pci device: %s", label ? label : "virtio",
		strerror(-ret));
	return ret;
}
