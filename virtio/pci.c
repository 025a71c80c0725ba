/*
 * The virtio-pci transport's creation (its PCI description and capabilities), the dispatch of
 * BAR0 to its areas, queue kicks (ioeventfds and the notify area) and its lifecycle. The
 * common configuration is in pci_common.c, the interrupts in pci_irq.c.
 */
#include "virtio/pci_internal.h"

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
#include "virtio/queue.h"

/* What the transport itself implements; the device may not offer other bits in 24..49. */
#define TRANSPORT_FEATURES                                                                         \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC))
#define TRANSPORT_RESERVED (((BIT(50) - 1) >> 24) << 24)

/* ---- BAR0: the device configuration, notifications and the dispatch to each area ---- */

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
			virtio_pci_common_write(vp, rel, data, len);
			pthread_mutex_unlock(&vp->op_lock);
		} else {
			virtio_pci_common_read(vp, rel, data, len);
		}
		break;
	case VIRTIO_PCI_ISR_OFF:
		if (!is_write)
			virtio_pci_irq_isr_read(vp, rel, data);
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
		ret = add_event(eb, vp->irqfds.intx_resample_fd, virtio_pci_irq_on_resample, vp,
				&vp->resample_ev);
	if (!ret && vp->ops->start)
		ret = vp->ops->start(vp->vdev, eb);
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
	virtio_pci_common_deactivate(vp);
	pthread_mutex_lock(&vp->lock);
	vp->eb = NULL;
	pthread_mutex_unlock(&vp->lock);
	pthread_mutex_unlock(&vp->op_lock);
	/* After the reset above: the device is quiet and leaves the loop last. */
	if (vp->ops->stop)
		vp->ops->stop(vp->vdev);
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

static int vpci_command(void *opaque, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx)
{
	struct vpci *vp = opaque;

	if (!vp->ops->command)
		return -EOPNOTSUPP;
	return vp->ops->command(vp->vdev, cmd, done, done_ctx);
}

static int vpci_jail(void *opaque, struct dev_jail *out)
{
	struct vpci *vp = opaque;

	return vp->ops->jail ? vp->ops->jail(vp->vdev, out) : 0;
}

static const struct dev_ops vpci_ops = {
	.io = vpci_io,
	.start = vpci_start,
	.stop = vpci_stop,
	.destroy = vpci_destroy,
	.fds = vpci_fds,
	.msix_state = virtio_pci_irq_msix_state,
	.command = vpci_command,
	.jail = vpci_jail,
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

/* How many queues this instance has. */
static unsigned queues_of(const struct virtio_dev_ops *ops, void *dev)
{
	return ops->queues ? ops->queues(dev) : ops->nr_queues;
}

static int check_params(const struct virtio_pci_params *p)
{
	const struct virtio_dev_ops *ops = p->ops;
	unsigned nr;

	if (!ops || !p->mem || !p->irq)
		return -EINVAL;
	if (!ops->activate || (!ops->notify && !ops->own_kicks) || !ops->reset)
		return -EINVAL;
	/* The spec's modern device IDs are 0x1040..0x107f. */
	if (ops->device_type < 1 || ops->device_type > 0x3f)
		return -EINVAL;
	nr = queues_of(ops, p->dev);
	if (!nr || nr > VIRTIO_MAX_QUEUES || nr > PCI_MAX_IOEVENTS)
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
	vp->nr_queues = queues_of(ops, p->dev);
	vp->dev = (struct device){.policy = ops->policy,
				  .jail_dir = ops->jail_dir ? ops->jail_dir(p->dev) : NULL,
				  .host_network = ops->host_network,
				  .ops = &vpci_ops,
				  .priv = vp};
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
	virtio_pci_common_reset_regs_locked(vp);
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

int virtio_pci_create(struct pci_root *root, const struct guest_mem *mem, const struct logger *lg,
		      const struct virtio_dev_ops *ops, void *dev, const char *label,
		      struct device **out)
{
	struct pci_dev_desc desc;
	struct pci_irq_fds irq;
	struct vpci *vp = NULL;
	struct device *d;
	unsigned slot;
	int ret;

	if (!root)
		return -ENODEV;
	if (!ops || !queues_of(ops, dev) || queues_of(ops, dev) > VIRTIO_MAX_QUEUES)
		return -EINVAL;
	ret = pci_next_slot(root, &slot);
	if (ret < 0)
		return ret;
	ret = pci_alloc_irqs(root, slot, queues_of(ops, dev) + 1, true, &irq);
	if (ret < 0)
		return ret;
	ret = virtio_pci_transport_create(
		&(struct virtio_pci_params){
			.ops = ops, .dev = dev, .label = label, .mem = mem, .irq = &irq, .log = lg},
		&d, &desc);
	if (ret < 0)
		goto err_dev;
	vp = d->priv;
	ret = pci_add_device(root, slot, d, &desc, &vp->irqfds);
	if (ret < 0)
		goto err_dev;
	*out = d;
	return 0;
err_dev:
	if (vp)
		vpci_free(vp, false); /* with the irq fds it took over */
	else
		close_irq_fds(&irq);
	log_err(lg, "%s: cannot add virtio-pci device: %s", label ? label : "virtio",
		strerror(-ret));
	return ret;
}
