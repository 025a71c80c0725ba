/*
 * virtio_rng: drives the virtio entropy device (1af4:1044) through the library's virtio-pci
 * driver. It reads 64 bytes twice with MSI-X interrupts, resets the device and reads 64 more
 * with INTx (MSI-X disabled, the ISR acknowledging), and checks the data looks random: no
 * buffer all one value, no two buffers equal. With a VIRTIO_PCI_CAP_PCI_CFG capability it
 * also reads the common configuration through that window and compares.
 *
 * Keys: vrng.intx (INTx only: both reads with INTx), vrng.index=N (the N-th rng, default 0),
 * plus the driver keys of lib/virtio.h (virtio.irq=poll polls both reads).
 * INFO: rng.dev=BDF, rng.features=0x.. (negotiated), rng.intx=GSI,prt|probe.
 * PASS/FAIL: rng_found, rng_read_msix, rng_read_intx (or rng_read_poll), rng_random,
 * virtio_pci_cfg_window.
 */
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/fmt.h"
#include "lib/str.h"
#include "lib/virtio.h"

#define RNG_BYTES      64
#define RNG_READS      3
#define RNG_TIMEOUT_MS 2000
#define RNG_MAX_REQS   64 /* a device may return fewer bytes than asked: bounded retries */

struct rng {
	struct virtio_bus bus;
	struct virtio_dev dev;
	uint64_t buf_pa;
	uint8_t data[RNG_READS][RNG_BYTES];
	unsigned nreads;
};

static int rng_start(struct guest *g, struct rng *r, enum virtio_irq_mode mode)
{
	struct virtio_dev *d = &r->dev;
	int rc;

	d->irq_mode = mode;
	rc = virtio_begin(d, 0);
	if (!rc)
		rc = virtio_setup_queue(d, 0, 0);
	if (!rc)
		rc = virtio_driver_ok(d);
	if (rc)
		report_fail(g, "rng_init", "%s initialisation failed (%d)",
			    virtio_irq_mode_name(mode), rc);
	return rc;
}

/* Fills the next data[] slot; 0 when all bytes came with their interrupts. */
static int rng_read(struct guest *g, struct rng *r)
{
	struct virtio_dev *d = &r->dev;
	uint8_t *out = r->data[r->nreads];
	uint32_t got = 0, missed = d->missed_irqs;

	for (unsigned i = 0; i < RNG_MAX_REQS && got < RNG_BYTES; i++) {
		struct virtq_buf b = {r->buf_pa, RNG_BYTES - got, true};
		uint32_t len;
		int rc = virtio_request(d, 0, &b, 1, RNG_TIMEOUT_MS, &len);

		if (rc) {
			report_fail(g, "rng_read", "request failed (%d) after %u bytes", rc, got);
			return rc;
		}
		if (len > RNG_BYTES - got) {
			report_fail(g, "rng_read", "device claims %u bytes for a %u-byte buffer",
				    len, RNG_BYTES - got);
			return -EIO;
		}
		memcpy(out + got, phys_to_ptr(r->buf_pa), len);
		got += len;
	}
	if (got < RNG_BYTES) {
		report_fail(g, "rng_read", "only %u of %u bytes", got, RNG_BYTES);
		return -EIO;
	}
	r->nreads++;
	return d->missed_irqs == missed ? 0 : -ETIMEDOUT;
}

static void read_phase(struct guest *g, struct rng *r, enum virtio_irq_mode mode, unsigned n)
{
	char name[24];
	int rc = rng_start(g, r, mode);

	fmt_snprintf(name, sizeof(name), "rng_read_%s", virtio_irq_mode_name(mode));
	for (unsigned i = 0; !rc && i < n; i++)
		rc = rng_read(g, r);
	if (!rc && mode == VIRTIO_IRQ_INTX)
		report_info(g, "rng.intx=%d,%s", r->dev.intx.gsi,
			    r->dev.intx.from_prt ? "prt" : "probe");
	report_check(g, rc == 0, name, "%s reads: %s (%d)", virtio_irq_mode_name(mode),
		     rc == -ETIMEDOUT ? "completed without their interrupt" : "failed", rc);
}

static bool looks_random(const uint8_t *a)
{
	for (unsigned i = 1; i < RNG_BYTES; i++) {
		if (a[i] != a[0])
			return true;
	}
	return false;
}

static void check_random(struct guest *g, struct rng *r)
{
	for (unsigned i = 0; i < r->nreads; i++) {
		if (!looks_random(r->data[i])) {
			report_fail(g, "rng_random", "read %u is 64 times 0x%02x", i,
				    r->data[i][0]);
			return;
		}
		for (unsigned j = 0; j < i; j++) {
			if (!memcmp(r->data[i], r->data[j], RNG_BYTES)) {
				report_fail(g, "rng_random", "reads %u and %u are equal", j, i);
				return;
			}
		}
	}
	report_check(g, r->nreads >= 2, "rng_random", "only %u reads to compare", r->nreads);
}

/* The same dword read through the BAR and through the PCI configuration window. */
static void check_window(struct guest *g, struct virtio_dev *d)
{
	uint32_t direct, windowed;

	for (uint8_t i = 0; i < 6; i++) {
		const struct pci_bar *b = &d->bars[i];

		if (!b->present || d->common < b->addr || d->common - b->addr >= b->size)
			continue;
		/* msix_config and num_queues: stable while the device is idle. */
		direct = mmio_read32(d->common + 0x10);
		virtio_window_read32(d, i, (uint32_t)(d->common - b->addr) + 0x10, &windowed);
		report_check(g, direct == windowed, "virtio_pci_cfg_window",
			     "common config dword 0x10 is 0x%08x, 0x%08x through the window",
			     direct, windowed);
		return;
	}
}

int guest_main(struct guest *g)
{
	struct rng r;
	unsigned index = (unsigned)cmdline_u64(g->boot.cmdline, "vrng.index", 0);
	int rc;

	memset(&r, 0, sizeof(r));
	if (virtio_bus_init(g, &r.bus))
		return 0;
	rc = virtio_find(&r.bus, VIRTIO_ID_RNG, index, &r.dev);
	if (report_check(g, rc == 0, "rng_found", "no usable virtio-rng #%u (%d)", index, rc))
		return 0;
	str_copy(r.dev.name, "rng", sizeof(r.dev.name));
	report_info(g, "rng.dev=%s", r.dev.bdf);
	if (dma_alloc(&r.bus.pool, RNG_BYTES, 64, &r.buf_pa))
		return 0;

	if (cmdline_has(g->boot.cmdline, "vrng.intx")) {
		read_phase(g, &r, VIRTIO_IRQ_INTX, 2);
	} else if (r.dev.irq_mode != VIRTIO_IRQ_MSIX) {
		read_phase(g, &r, r.dev.irq_mode, 2);
	} else {
		read_phase(g, &r, VIRTIO_IRQ_MSIX, 2);
		read_phase(g, &r, VIRTIO_IRQ_INTX, 1);
	}
	report_info(g, "rng.features=0x%lx", r.dev.features);
	check_random(g, &r);
	if (r.dev.window_cap)
		check_window(g, &r.dev);
	virtio_reset(&r.dev);
	return 0;
}
