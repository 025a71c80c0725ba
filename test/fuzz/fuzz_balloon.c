/*
 * libFuzzer target for virtio-balloon behind the virtio-pci transport: the guest's rings,
 * descriptors, PFN arrays and stats buffers come from the input, interleaved with kicks,
 * control commands, configuration accesses and resets. Input:
 *
 *   [0]      bit 0 STATS_VQ, bit 1 EVENT_IDX, bit 2 INDIRECT_DESC negotiated
 *   [1..2]   number of script steps (capped by what the input holds)
 *   [3..]    script steps of 4 bytes, then the guest memory image (region A, then B)
 *
 * Guest memory is two 64 KiB regions with a hole between them, so PFNs and buffers can fall
 * into the hole, past RAM or across a region end. The three queues' rings sit at fixed
 * places in region A; the script publishes heads the input chose. Every control command must
 * get exactly one reply, a JSON object with a boolean "ok", by the time the device is gone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <event2/event.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/device.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "core/pci.h"
#include "virtio/balloon.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"

#define REGION_SIZE 0x10000u
#define REGION_B    0x20000u
#define HDR_SIZE    3u
#define STEP_SIZE   4u
#define MAX_STEPS   256u
#define NRQ	    3u
#define QSIZE	    16u
#define RING_STRIDE 0x200u /* desc 256 + avail 38 + used 134 bytes fit */
#define NR_VECTORS  (1 + NRQ)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz {
	struct logger lg;
	struct guest_mem mem;
	struct event_base *eb;
	struct device *dev;
	struct pci_dev_desc desc;
	uint64_t features;
	uint16_t avail_idx[NRQ];
	unsigned commands, replies;
};

static void on_reply(void *ctx, const struct dev_reply *r)
{
	struct fuzz *f = ctx;

	/* A failure says why; a success carries only statistics the guest could report. */
	if (r->err > 0 || (r->err && !memchr(r->msg, 0, sizeof(r->msg))) ||
	    r->stats.valid >> DEV_BALLOON_NR_STATS)
		__builtin_trap();
	f->replies++;
}

static uint64_t bar_rd(struct fuzz *f, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	(void)device_io(f->dev, VIRTIO_PCI_BAR, off, &v, len, false);
	return v;
}

static void bar_wr(struct fuzz *f, uint64_t off, uint32_t len, uint64_t v)
{
	(void)device_io(f->dev, VIRTIO_PCI_BAR, off, &v, len, true);
}

static uint64_t ring(unsigned q)
{
	return (uint64_t)q * RING_STRIDE;
}

static uint64_t avail(unsigned q)
{
	return ring(q) + 16 * QSIZE;
}

static uint64_t used(unsigned q)
{
	return ALIGN_UP(avail(q) + 6 + 2 * QSIZE, 4);
}

static void run_loop(struct fuzz *f)
{
	(void)event_base_loop(f->eb, EVLOOP_NONBLOCK);
}

/* What Linux does from reset to DRIVER_OK. */
static void start_driver(struct fuzz *f)
{
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	bar_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	bar_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, s);
	bar_wr(f, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_wr(f, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f->features);
	bar_wr(f, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	bar_wr(f, VIRTIO_PCI_COMMON_GF, 4, f->features >> 32);
	bar_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, s |= VIRTIO_CONFIG_S_FEATURES_OK);
	bar_wr(f, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	for (unsigned q = 0; q < NRQ; q++) {
		bar_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		bar_wr(f, VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE);
		bar_wr(f, VIRTIO_PCI_COMMON_Q_MSIX, 2, 1 + q);
		bar_wr(f, VIRTIO_PCI_COMMON_Q_DESCLO, 8, ring(q));
		bar_wr(f, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, avail(q));
		bar_wr(f, VIRTIO_PCI_COMMON_Q_USEDLO, 8, used(q));
		bar_wr(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
		/* The rings start empty after a reset, as a new driver lays them out. */
		f->avail_idx[q] = 0;
		(void)guest_mem_fill(&f->mem, avail(q), 0, 6 + 2 * QSIZE);
		(void)guest_mem_fill(&f->mem, used(q), 0, 6 + 8 * QSIZE);
	}
	bar_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, s | VIRTIO_CONFIG_S_DRIVER_OK);
	run_loop(f);
}

/* The guest makes head available on queue q (what it points to is the input's). */
static void publish(struct fuzz *f, unsigned q, uint16_t head)
{
	uint16_t idx = f->avail_idx[q];
	uint16_t v = (uint16_t)(head % QSIZE);

	(void)guest_mem_write(&f->mem, avail(q) + 4 + 2 * (idx % QSIZE), &v, 2);
	f->avail_idx[q] = ++idx;
	(void)guest_mem_write(&f->mem, avail(q) + 2, &idx, 2);
}

static void command(struct fuzz *f, uint32_t op, uint64_t arg)
{
	struct dev_cmd cmd = {.op = op, .arg = arg};

	f->commands++;
	if (device_command(f->dev, &cmd, on_reply, f) < 0)
		f->replies++; /* the caller answers a refused command itself */
}

static void step(struct fuzz *f, const uint8_t *s)
{
	uint32_t off;

	switch (s[0] % 8) {
	case 0:
		(void)eventfd_signal(f->desc.ioevents[s[1] % NRQ].fd);
		run_loop(f);
		break;
	case 1:
		publish(f, s[1] % NRQ, s[2]);
		break;
	case 2:
		/* The guest rewrites a byte anywhere in RAM: rings, descriptors, PFNs, stats. */
		off = ((uint32_t)s[1] | (uint32_t)s[2] << 8) + (s[0] & 0x80 ? REGION_B : 0);
		(void)guest_mem_write(&f->mem, off, &s[3], 1);
		break;
	case 3:
		command(f, DEV_CMD_BALLOON_STATS, 0);
		break;
	case 4:
		command(f, DEV_CMD_BALLOON_TARGET,
			(uint64_t)((uint32_t)s[1] | (uint32_t)s[2] << 8 | (uint32_t)s[3] << 16)
				<< 4);
		break;
	case 5:
		if (s[0] & 0x80)
			bar_wr(f, VIRTIO_PCI_DEVICE_OFF + s[1] % 12, 1u << (s[2] % 4), s[3]);
		else
			(void)bar_rd(f, VIRTIO_PCI_DEVICE_OFF + s[1] % 12, 1u << (s[2] % 4));
		break;
	case 6:
		if (s[0] & 0x80)
			bar_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, 0);
		else
			start_driver(f);
		break;
	default:
		run_loop(f);
		break;
	}
}

static int create(struct fuzz *f)
{
	const struct guest_region layout[] = {
		{.gpa = 0, .size = REGION_SIZE},
		{.gpa = REGION_B, .size = REGION_SIZE},
	};
	struct pci_irq_fds irq = {.nr_vectors = NR_VECTORS};
	const struct virtio_dev_ops *ops = NULL;
	void *dev = NULL;

	log_init(&f->lg);
	f->lg.level = LOG_LVL_OFF;
	for (unsigned i = 0; i < NR_VECTORS; i++)
		irq.vector_fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	irq.intx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	irq.intx_resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (guest_mem_create_regions(&f->mem, layout, 2))
		goto err;
	f->eb = event_base_new();
	if (!f->eb || virtio_balloon_create(&f->mem, &f->lg, &ops, &dev))
		goto err;
	virtio_balloon_set_stats_timeout(dev, 1);
	if (virtio_pci_transport_create(&(struct virtio_pci_params){.ops = ops,
								    .dev = dev,
								    .label = "virtio-balloon0",
								    .mem = &f->mem,
								    .irq = &irq,
								    .log = &f->lg},
					&f->dev, &f->desc))
		goto err;
	if (device_start(f->dev, f->eb))
		goto err;
	device_msix_state(f->dev, true);
	return 0;
err:
	/* Once the transport exists it owns the balloon and the eventfds. */
	if (f->dev) {
		device_destroy(f->dev);
	} else {
		if (dev)
			ops->destroy(dev);
		for (unsigned i = 0; i < NR_VECTORS; i++)
			close_fd(&irq.vector_fds[i]);
		close_fd(&irq.intx_fd);
		close_fd(&irq.intx_resample_fd);
	}
	if (f->eb)
		event_base_free(f->eb);
	guest_mem_destroy(&f->mem);
	return -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz *f;
	unsigned steps;
	size_t img;

	if (size < HDR_SIZE)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return 0;
	if (create(f))
		goto out_free;
	f->features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (data[0] & 1)
		f->features |= 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
	if (data[0] & 2)
		f->features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (data[0] & 4)
		f->features |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	steps = MIN((unsigned)(data[1] | data[2] << 8), MAX_STEPS);
	steps = MIN(steps, (unsigned)((size - HDR_SIZE) / STEP_SIZE));
	img = HDR_SIZE + (size_t)steps * STEP_SIZE;
	if (size > img)
		(void)guest_mem_write(&f->mem, 0, data + img, MIN(size - img, REGION_SIZE));
	if (size - img > REGION_SIZE)
		(void)guest_mem_write(&f->mem, REGION_B, data + img + REGION_SIZE,
				      MIN(size - img - REGION_SIZE, REGION_SIZE));
	start_driver(f);
	for (unsigned i = 0; i < steps; i++)
		step(f, data + HDR_SIZE + (size_t)i * STEP_SIZE);
	run_loop(f);
	device_destroy(f->dev);
	if (f->replies != f->commands)
		__builtin_trap();
	event_base_free(f->eb);
	guest_mem_destroy(&f->mem);
out_free:
	free(f);
	return 0;
}
