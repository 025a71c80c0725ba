#include "test/unit/virtio_env.h"

#include <check.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <event2/event.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/device.h"
#include "core/util.h"
#include "virtio/pci.h"

#define RING_ALIGN 0x1000u

/* ---- returning errors ---- */

int virtio_env_create(struct virtio_env *e, const struct virtio_env_params *p)
{
	int ret;

	memset(e, 0, sizeof(*e));
	log_init(&e->lg);
	e->lg.level = p->log_level;
	e->queue_size = p->queue_size;
	e->ring_gpa = p->ring_gpa;
	e->data_gpa = p->data_gpa;
	e->data_len = p->data_len;
	ret = guest_mem_create_regions(&e->mem, p->ram, p->nr_ram);
	if (ret)
		return ret;
	/* Last: destroy takes a NULL loop for an env that was never created. */
	e->eb = event_base_new();
	if (!e->eb) {
		guest_mem_destroy(&e->mem);
		return -ENOMEM;
	}
	return 0;
}

static void close_irq_fds(struct pci_irq_fds *irq)
{
	for (unsigned i = 0; i < irq->nr_vectors; i++)
		close_fd(&irq->vector_fds[i]);
	close_fd(&irq->intx_fd);
	close_fd(&irq->intx_resample_fd);
}

static int new_eventfd(int *fd)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? -errno : 0;
}

int virtio_env_attach(struct virtio_env *e, const struct virtio_dev_ops *ops, void *dev,
		      const char *label)
{
	struct pci_irq_fds *irq = &e->irq;
	unsigned nr = ops->queues ? ops->queues(dev) : ops->nr_queues;
	int ret = 0;

	if (nr > VIRTIO_MAX_QUEUES)
		return -EINVAL;
	*irq = (struct pci_irq_fds){.nr_vectors = nr + 1, .intx_fd = -1, .intx_resample_fd = -1};
	for (unsigned i = 0; i < irq->nr_vectors; i++)
		irq->vector_fds[i] = -1;
	for (unsigned i = 0; i < irq->nr_vectors && !ret; i++)
		ret = new_eventfd(&irq->vector_fds[i]);
	if (!ret)
		ret = new_eventfd(&irq->intx_fd);
	if (!ret)
		ret = new_eventfd(&irq->intx_resample_fd);
	if (ret)
		goto out_fds;
	ret = virtio_pci_transport_create(&(struct virtio_pci_params){.ops = ops,
								      .dev = dev,
								      .label = label,
								      .mem = &e->mem,
								      .irq = irq,
								      .log = &e->lg},
					  &e->dev, &e->desc);
	if (ret)
		goto out_fds;
	e->ops = ops;
	e->nr_queues = nr;
	return 0;

out_fds:
	close_irq_fds(irq);
	e->dev = NULL;
	return ret;
}

int virtio_env_start(struct virtio_env *e, bool msix)
{
	int ret = device_start(e->dev, e->eb);

	if (ret)
		return ret;
	if (msix)
		device_msix_state(e->dev, true);
	return 0;
}

void virtio_env_destroy(struct virtio_env *e)
{
	if (!e->eb)
		return;
	if (e->dev)
		device_destroy(e->dev);
	e->dev = NULL;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (e->drv_live[q])
			virtq_driver_destroy(&e->drv[q]);
	memset(e->drv_live, 0, sizeof(e->drv_live));
	event_base_free(e->eb);
	e->eb = NULL;
	guest_mem_destroy(&e->mem);
}

int virtio_env_read(struct virtio_env *e, uint64_t off, uint32_t len, uint64_t *val)
{
	*val = 0;
	return device_io(e->dev, VIRTIO_PCI_BAR, off, val, len, false);
}

int virtio_env_write(struct virtio_env *e, uint64_t off, uint32_t len, uint64_t val)
{
	return device_io(e->dev, VIRTIO_PCI_BAR, off, &val, len, true);
}

/* As Linux's virtio_add_status: the bits go on top of what the device status holds. */
static int add_status(struct virtio_env *e, uint8_t bits)
{
	uint64_t s;
	int ret = virtio_env_read(e, VIRTIO_PCI_COMMON_STATUS, 1, &s);

	if (ret)
		return ret;
	return virtio_env_write(e, VIRTIO_PCI_COMMON_STATUS, 1, s | bits);
}

int virtio_env_negotiate(struct virtio_env *e, uint64_t features)
{
	uint64_t s = 0;
	int ret;

	e->features = features;
	ret = virtio_env_write(e, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	if (!ret)
		ret = add_status(e, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	if (!ret)
		ret = add_status(e, VIRTIO_CONFIG_S_DRIVER);
	if (!ret)
		ret = virtio_env_write(e, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	if (!ret)
		ret = virtio_env_write(e, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
	if (!ret)
		ret = virtio_env_write(e, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	if (!ret)
		ret = virtio_env_write(e, VIRTIO_PCI_COMMON_GF, 4, features >> 32);
	if (!ret)
		ret = add_status(e, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!ret)
		ret = virtio_env_read(e, VIRTIO_PCI_COMMON_STATUS, 1, &s);
	if (!ret && !(s & VIRTIO_CONFIG_S_FEATURES_OK))
		ret = -EPROTO;
	if (!ret)
		ret = virtio_env_write(e, VIRTIO_PCI_COMMON_MSIX, 2, VIRTIO_ENV_CFG_VECTOR);
	return ret;
}

int virtio_env_setup_queue(struct virtio_env *e, unsigned q)
{
	uint64_t stride = ALIGN_UP(virtq_driver_ring_bytes(e->queue_size), RING_ALIGN);
	struct virtq_driver *d;
	int ret;

	if (q >= e->nr_queues)
		return -EINVAL;
	d = &e->drv[q];
	if (e->drv_live[q])
		virtq_driver_destroy(d);
	e->drv_live[q] = false;
	ret = virtq_driver_init(d, &e->mem, e->queue_size, e->ring_gpa + q * stride,
				e->data_gpa + q * e->data_len, e->data_len,
				e->features & (1ULL << VIRTIO_RING_F_EVENT_IDX));
	if (ret)
		return ret;
	e->drv_live[q] = true;
	d->kick_fd = e->desc.ioevents[q].fd;

	const struct {
		uint64_t off;
		uint32_t len;
		uint64_t val;
	} regs[] = {
		{VIRTIO_PCI_COMMON_Q_SELECT, 2, q},
		{VIRTIO_PCI_COMMON_Q_SIZE, 2, e->queue_size},
		{VIRTIO_PCI_COMMON_Q_MSIX, 2, VIRTIO_ENV_Q_VECTOR(q)},
		{VIRTIO_PCI_COMMON_Q_DESCLO, 8, d->desc},
		{VIRTIO_PCI_COMMON_Q_AVAILLO, 8, d->avail},
		{VIRTIO_PCI_COMMON_Q_USEDLO, 8, d->used},
		{VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(regs) && !ret; i++)
		ret = virtio_env_write(e, regs[i].off, regs[i].len, regs[i].val);
	return ret;
}

int virtio_env_driver_ok(struct virtio_env *e)
{
	uint64_t s;
	int ret = add_status(e, VIRTIO_CONFIG_S_DRIVER_OK);

	if (!ret)
		ret = virtio_env_read(e, VIRTIO_PCI_COMMON_STATUS, 1, &s);
	if (!ret && s != VIRTIO_ENV_S_LIVE)
		ret = -EPROTO;
	return ret;
}

/* ---- asserting ---- */

uint64_t virtio_env_rd(struct virtio_env *e, uint64_t off, uint32_t len)
{
	uint64_t v;

	ck_assert_int_eq(virtio_env_read(e, off, len, &v), 0);
	return v;
}

void virtio_env_wr(struct virtio_env *e, uint64_t off, uint32_t len, uint64_t val)
{
	ck_assert_int_eq(virtio_env_write(e, off, len, val), 0);
}

uint8_t virtio_env_status(struct virtio_env *e)
{
	return (uint8_t)virtio_env_rd(e, VIRTIO_PCI_COMMON_STATUS, 1);
}

uint64_t virtio_env_count(int fd)
{
	uint64_t n;

	ck_assert_int_eq(eventfd_drain(fd, &n), 0);
	return n;
}

void virtio_env_drain_irqs(struct virtio_env *e)
{
	for (unsigned i = 0; i < e->irq.nr_vectors; i++)
		virtio_env_count(e->irq.vector_fds[i]);
	virtio_env_count(e->irq.intx_fd);
}

void virtio_env_run_loop(struct virtio_env *e)
{
	ck_assert_int_ge(event_base_loop(e->eb, EVLOOP_NONBLOCK), 0);
}

void virtio_env_setup(struct virtio_env *e, uint64_t features, unsigned nr_queues)
{
	int ret = virtio_env_negotiate(e, features);

	ck_assert_msg(ret == 0, "features 0x%llx: %s", (unsigned long long)features,
		      ret == -EPROTO ? "FEATURES_OK refused" : strerror(-ret));
	for (unsigned q = 0; q < nr_queues; q++) {
		ret = virtio_env_setup_queue(e, q);
		ck_assert_msg(ret == 0, "queue %u: %s", q, strerror(-ret));
	}
}

void virtio_env_live(struct virtio_env *e)
{
	int ret = virtio_env_driver_ok(e);

	ck_assert_msg(ret == 0, "DRIVER_OK: %s",
		      ret == -EPROTO ? "the device status is not live" : strerror(-ret));
	virtio_env_run_loop(e);
}

void virtio_env_init(struct virtio_env *e, uint64_t features, unsigned nr_queues)
{
	virtio_env_setup(e, features, nr_queues);
	virtio_env_live(e);
}

uint16_t virtio_env_add(struct virtio_env *e, unsigned q, const struct virtq_buf *b, unsigned nr)
{
	uint16_t head;

	ck_assert_int_eq(virtq_driver_add(&e->drv[q], b, nr, &head), 0);
	return head;
}

void virtio_env_kick(struct virtio_env *e, unsigned q)
{
	virtq_driver_kick(&e->drv[q]);
	virtio_env_run_loop(e);
}

int64_t virtio_env_used(struct virtio_env *e, unsigned q, uint16_t head)
{
	uint16_t id = 0;
	uint32_t len = 0;

	if (virtq_driver_get_used(&e->drv[q], &id, &len) < 0)
		return -1;
	ck_assert_uint_eq(id, head);
	virtq_driver_set_used_event(&e->drv[q], e->drv[q].last_used);
	return len;
}

uint8_t *virtio_env_ptr(struct virtio_env *e, uint64_t gpa, uint64_t len)
{
	void *p;

	ck_assert_int_eq(guest_mem_ptr(&e->mem, gpa, len, &p), 0);
	return p;
}
