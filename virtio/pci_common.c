/*
 * The common configuration of the virtio-pci transport (virtio 1.2, 4.1.4.3; BAR0 0x0000) and
 * the device-status state machine behind it: feature windows, queue fields, reset,
 * FEATURES_OK and DRIVER_OK, queue activation.
 */
#include "virtio/pci_internal.h"

#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/log.h"
#include "core/util.h"
#include "virtio/queue.h"

/* Status bits a driver may set; NEEDS_RESET is the device's. */
#define DRIVER_STATUS_BITS                                                                         \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |        \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_FAILED)

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

/* ---- device status state machine ---- */

void virtio_pci_common_reset_regs_locked(struct vpci *vp)
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
	virtio_pci_common_reset_regs_locked(vp);
	pthread_mutex_unlock(&vp->lock);
}

/* op_lock held: the driver set FAILED, so the device stops until the driver resets it. */
void virtio_pci_common_deactivate(struct vpci *vp)
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
			if (virtio_pci_first_time(vp, ONCE_BAD_QUEUE))
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
		virtio_pci_irq_set_needs_reset_locked(
			vp, "a queue lies outside guest memory or is malformed");
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
		if (virtio_pci_first_time(vp, ONCE_ACTIVATE))
			log_err(vp->log, "%s: activation failed: %s", vp->dev.name, strerror(-ret));
		virtio_pci_irq_set_needs_reset_locked(vp, "activation failed");
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
		if (virtio_pci_first_time(vp, ONCE_FEATURES))
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
		if (virtio_pci_first_time(vp, ONCE_NO_FEATURES_OK))
			log_warn(vp->log, "%s: DRIVER_OK without FEATURES_OK", vp->dev.name);
		virtio_pci_irq_set_needs_reset_locked(vp, "DRIVER_OK without accepted features");
	}
	now = vp->status;
	pthread_mutex_unlock(&vp->lock);

	if ((add & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(now & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET)))
		activate(vp);
	if (add & VIRTIO_CONFIG_S_FAILED)
		virtio_pci_common_deactivate(vp);
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
		if (virtio_pci_first_time(vp, ONCE_LATE_QUEUE))
			log_warn(vp->log, "%s: ignoring a change to queue %u after it was enabled",
				 vp->dev.name, q->index);
		return;
	}
	switch (f) {
	case F_Q_SIZE:
		if (v && !(v & (v - 1)) && v <= vp->ops->queue_max_size)
			q->size = (uint16_t)v;
		else if (virtio_pci_first_time(vp, ONCE_QUEUE_SIZE))
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
			if (virtio_pci_first_time(vp, ONCE_LATE_FEATURES))
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
void virtio_pci_common_read(struct vpci *vp, uint32_t off, uint8_t *data, uint32_t len)
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
void virtio_pci_common_write(struct vpci *vp, uint32_t off, const uint8_t *data, uint32_t len)
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
