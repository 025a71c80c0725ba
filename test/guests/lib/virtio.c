#include "virtio.h"
#include "cmdline.h"
#include "console.h"
#include "fmt.h"
#include "io.h"
#include "pci_access.h"
#include "str.h"

/* Common configuration structure (virtio 1.2, 4.1.4.3). */
#define CC_DFSELECT	0x00
#define CC_DF		0x04
#define CC_GFSELECT	0x08
#define CC_GF		0x0c
#define CC_MSIX_CONFIG	0x10
#define CC_NUM_QUEUES	0x12
#define CC_STATUS	0x14
#define CC_GENERATION	0x15
#define CC_Q_SELECT	0x16
#define CC_Q_SIZE	0x18
#define CC_Q_MSIX	0x1a
#define CC_Q_ENABLE	0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC	0x20
#define CC_Q_DRIVER	0x28
#define CC_Q_DEVICE	0x30
#define CC_LEN		0x38

/* struct virtio_pci_cap and the notify/window extensions. */
#define VCAP_TYPE	 3
#define VCAP_BAR	 4
#define VCAP_OFFSET	 8
#define VCAP_LENGTH	 12
#define VCAP_NOTIFY_MULT 16
#define VCAP_WINDOW_DATA 16
#define VCAP_MIN_LEN	 16
#define CFG_GEN_TRIES	 16

_Static_assert(VIRTIO_MAX_ENTRIES <= VIRTIO_VEC_INTX, "MSI-X and INTx vectors overlap");
_Static_assert(VIRTIO_VEC_INTX + PCI_INTX_VECTORS <= VIRTIO_VECS_PER_DEV, "INTx vectors overflow");
#define VIRTIO_TRANSITIONAL_BASE 0x1000

static uint8_t cc_read8(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read8(d->common + off);
}

static uint16_t cc_read16(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read16(d->common + off);
}

static uint32_t cc_read32(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read32(d->common + off);
}

static void cc_write8(const struct virtio_dev *d, uint32_t off, uint8_t v)
{
	mmio_write8(d->common + off, v);
}

static void cc_write16(const struct virtio_dev *d, uint32_t off, uint16_t v)
{
	mmio_write16(d->common + off, v);
}

static void cc_write32(const struct virtio_dev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->common + off, v);
}

/* 64-bit fields as two 32-bit halves: the spec lets a device refuse wider accesses. */
static void cc_write64(const struct virtio_dev *d, uint32_t off, uint64_t v)
{
	cc_write32(d, off, (uint32_t)v);
	cc_write32(d, off + 4, (uint32_t)(v >> 32));
}

const char *virtio_irq_mode_name(enum virtio_irq_mode m)
{
	switch (m) {
	case VIRTIO_IRQ_MSIX:
		return "msix";
	case VIRTIO_IRQ_INTX:
		return "intx";
	default:
		return "poll";
	}
}

int virtio_bus_init(struct guest *g, struct virtio_bus *b)
{
	const char *cl = g->boot.cmdline;
	char mode[8] = "";
	int rc;

	*b = (struct virtio_bus){
		.g = g,
		.next_vector = VEC_VIRTIO_FIRST,
		.use_event_idx = cmdline_u64(cl, "virtio.event_idx", 1) != 0,
		.use_indirect = cmdline_u64(cl, "virtio.indirect", 1) != 0,
		.irq_mode = VIRTIO_IRQ_MSIX,
	};
	cmdline_get(cl, "virtio.irq", mode, sizeof(mode));
	if (!strcmp(mode, "intx"))
		b->irq_mode = VIRTIO_IRQ_INTX;
	else if (!strcmp(mode, "poll"))
		b->irq_mode = VIRTIO_IRQ_POLL;
	else if (mode[0] && strcmp(mode, "msix"))
		report_fail(g, "virtio_keys", "virtio.irq=%s is not msix, intx or poll", mode);

	rc = clock_init(g, &b->clock);
	if (rc) {
		report_fail(g, "clock", "the TSC does not advance (%d)", rc);
		return rc;
	}
	rc = dma_pool_init(g, &b->pool, DMA_POOL_DEFAULT_BASE, DMA_POOL_DEFAULT_SIZE);
	if (rc) {
		report_fail(g, "dma_pool", "[0x%lx, +0x%lx) is not free RAM (%d)",
			    DMA_POOL_DEFAULT_BASE, DMA_POOL_DEFAULT_SIZE, rc);
		return rc;
	}
	return pci_access_open(g, &b->pci);
}

static bool id_matches(uint32_t id, uint16_t type)
{
	static const uint16_t transitional[] = {[VIRTIO_ID_NET] = 0x1000,
						[VIRTIO_ID_BLOCK] = 0x1001,
						[VIRTIO_ID_RNG] = 0x1005,
						[VIRTIO_ID_BALLOON] = 0x1002};
	uint16_t vendor = (uint16_t)id, device = (uint16_t)(id >> 16);

	if (vendor != VIRTIO_VENDOR)
		return false;
	if (device == VIRTIO_PCI_DEVICE_BASE + type)
		return true;
	return type < ARRAY_SIZE(transitional) && transitional[type] &&
	       device == transitional[type];
}

/* Sizes every BAR (decoding off meanwhile) and checks the ones that are assigned. */
static int probe_bars(struct virtio_dev *d)
{
	struct guest *g = d->bus->g;

	for (unsigned i = 0; i < 6; i++) {
		struct pci_bar *b = &d->bars[i];

		pci_bar_probe(&d->bus->pci, 0, d->dev, d->fn, i, b);
		if (!b->present)
			goto next;
		if (b->io)
			goto next; /* we use none; a VMM may still offer one */
		if (b->size & (b->size - 1)) {
			report_fail(g, "pci_bar", "%s BAR%u size 0x%lx is not a power of two",
				    d->bdf, i, b->size);
			return -EIO;
		}
		if (!b->addr || (b->addr & (b->size - 1))) {
			report_fail(g, "pci_bar", "%s BAR%u at 0x%lx: unassigned or misaligned",
				    d->bdf, i, b->addr);
			return -EIO;
		}
		if (!phys_range_ok(b->addr, b->size)) {
			report_fail(g, "pci_bar",
				    "%s BAR%u at 0x%lx is above the guest's 4 GiB identity map",
				    d->bdf, i, b->addr);
			b->present = false;
		}
	next:
		if (b->is64)
			i++;
	}
	return 0;
}

/* Address of [off, off+len) inside a checked memory BAR, or 0. */
static uint64_t bar_window(const struct virtio_dev *d, uint8_t bar, uint32_t off, uint32_t len)
{
	const struct pci_bar *b;

	if (bar > 5)
		return 0;
	b = &d->bars[bar];
	if (!b->present || b->io || off > b->size || len > b->size - off)
		return 0;
	return b->addr + off;
}

static int parse_vendor_cap(struct virtio_dev *d, uint8_t cap)
{
	const struct pci_cfg *c = &d->bus->pci;
	uint32_t w0 = pci_read32(c, 0, d->dev, d->fn, cap);
	uint8_t len = (uint8_t)(w0 >> 16), type = (uint8_t)(w0 >> 24);
	uint8_t bar = (uint8_t)pci_read32(c, 0, d->dev, d->fn, cap + VCAP_BAR);
	uint32_t off = pci_read32(c, 0, d->dev, d->fn, cap + VCAP_OFFSET);
	uint32_t length = pci_read32(c, 0, d->dev, d->fn, cap + VCAP_LENGTH);
	uint64_t addr;

	if (len < VCAP_MIN_LEN || type < VIRTIO_PCI_CAP_COMMON || type > VIRTIO_PCI_CAP_PCI_CFG)
		return 0; /* not one of ours (or a future type): skip, as the spec says */
	/* The driver uses the first usable structure of each type. */
	if (d->caps & (1u << type))
		return 0;
	if (type == VIRTIO_PCI_CAP_PCI_CFG) {
		d->window_cap = cap;
		d->caps |= 1u << type;
		return 0;
	}
	addr = bar_window(d, bar, off, length);
	if (!addr)
		return 0;
	switch (type) {
	case VIRTIO_PCI_CAP_COMMON:
		if (length < CC_LEN)
			return 0;
		d->common = addr;
		break;
	case VIRTIO_PCI_CAP_NOTIFY:
		if (len < VCAP_NOTIFY_MULT + 4)
			return 0;
		d->notify = addr;
		d->notify_len = length;
		d->notify_mult = pci_read32(c, 0, d->dev, d->fn, cap + VCAP_NOTIFY_MULT);
		break;
	case VIRTIO_PCI_CAP_ISR:
		if (length < 1)
			return 0;
		d->isr = addr;
		break;
	case VIRTIO_PCI_CAP_DEVICE:
		d->device_cfg = addr;
		d->device_cfg_len = length;
		break;
	}
	d->caps |= 1u << type;
	return 0;
}

static int probe_caps(struct virtio_dev *d)
{
	struct guest *g = d->bus->g;
	uint8_t ids[PCI_CAP_MAX], offs[PCI_CAP_MAX];
	int n = pci_caps(&d->bus->pci, 0, d->dev, d->fn, ids, offs, PCI_CAP_MAX);
	const uint8_t need = (1u << VIRTIO_PCI_CAP_COMMON) | (1u << VIRTIO_PCI_CAP_NOTIFY) |
			     (1u << VIRTIO_PCI_CAP_ISR);

	if (n < 0) {
		report_fail(g, "virtio_caps", "%s: malformed capability list", d->bdf);
		return -EIO;
	}
	for (int i = 0; i < n && i < PCI_CAP_MAX; i++) {
		if (ids[i] == PCI_CAP_ID_VENDOR)
			parse_vendor_cap(d, offs[i]);
		else if (ids[i] == PCI_CAP_ID_MSIX && !d->msix.cap &&
			 pci_msix_init(&d->bus->pci, d->dev, d->fn, offs[i], d->bars, &d->msix))
			report_fail(g, "virtio_caps", "%s: MSI-X table or PBA outside its BAR",
				    d->bdf);
	}
	if ((d->caps & need) != need) {
		report_fail(g, "virtio_caps",
			    "%s lacks a usable common/notify/ISR structure (types seen 0x%x)",
			    d->bdf, d->caps);
		return -EIO;
	}
	return 0;
}

int virtio_find(struct virtio_bus *b, uint16_t type, unsigned index, struct virtio_dev *d)
{
	unsigned seen = 0;

	for (uint8_t dev = 0; dev < 32; dev++) {
		uint8_t nfn = 1;

		for (uint8_t fn = 0; fn < nfn; fn++) {
			uint32_t id = pci_read32(&b->pci, 0, dev, fn, PCI_VENDOR_ID);
			uint32_t hdr = pci_read32(&b->pci, 0, dev, fn, 0x0c) >> 16;
			int rc;

			if ((id & 0xffff) == 0xffff || !(id & 0xffff))
				continue;
			if (fn == 0 && (hdr & 0x80))
				nfn = 8;
			if ((hdr & 0x7f) != 0 || !id_matches(id, type) || seen++ != index)
				continue;
			*d = (struct virtio_dev){.bus = b,
						 .dev = dev,
						 .fn = fn,
						 .type = type,
						 .irq_active = VIRTIO_IRQ_POLL,
						 .intx_gsi = -1};
			fmt_snprintf(d->bdf, sizeof(d->bdf), "00:%02x.%x", dev, fn);
			fmt_snprintf(d->name, sizeof(d->name), "%s", d->bdf);
			d->pin = (uint8_t)(pci_read32(&b->pci, 0, dev, fn, PCI_INTERRUPT) >> 8);
			rc = probe_bars(d);
			if (!rc)
				rc = probe_caps(d);
			if (rc)
				return rc;
			d->irq_mode = b->irq_mode;
			if (d->irq_mode == VIRTIO_IRQ_MSIX && !d->msix.cap)
				d->irq_mode = VIRTIO_IRQ_INTX;
			pci_enable_device(&b->pci, dev, fn, true);
			report_info(b->g,
				    "virtio.%s=%u,msix=%u,pin=%u,line=%u,caps=0x%x,cfg_len=%u",
				    d->bdf, type, d->msix.cap ? d->msix.nvec : 0, d->pin,
				    pci_read32(&b->pci, 0, dev, fn, PCI_INTERRUPT) & 0xff, d->caps,
				    d->device_cfg_len);
			return 0;
		}
	}
	return -ENOENT;
}

uint8_t virtio_status(const struct virtio_dev *d)
{
	return cc_read8(d, CC_STATUS);
}

bool virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return bit < 64 && (d->features & VIRTIO_BIT(bit));
}

static void teardown_irqs(struct virtio_dev *d)
{
	if (d->irq_active == VIRTIO_IRQ_INTX) {
		/* A probe's finding holds for the next setup: pins do not move. */
		if (d->intx.gsi >= 0)
			d->intx_gsi = d->intx.gsi;
		pci_intx_teardown(&d->intx);
	}
	/*
	 * The handlers stay: the vectors are this device's for good, and a message sent before
	 * the mask may still arrive.
	 */
	for (uint16_t e = 0; e < d->nentries; e++)
		pci_msix_mask(&d->msix, e, true);
	d->nentries = 0;
	pci_msix_enable(&d->bus->pci, d->dev, d->fn, &d->msix, false);
	d->irq_active = VIRTIO_IRQ_POLL;
}

int virtio_reset(struct virtio_dev *d)
{
	struct clock *c = &d->bus->clock;
	uint64_t start = clock_now_ms(c);

	cc_write8(d, CC_STATUS, 0);
	/* The reset is complete when the status reads 0 (virtio 1.2, 4.1.4.3.2). */
	while (virtio_status(d) != 0) {
		if (clock_now_ms(c) - start > VIRTIO_RESET_WAIT_MS)
			return -ETIMEDOUT;
		cpu_pause();
	}
	teardown_irqs(d);
	return 0;
}

static int on_msix(struct guest *g, struct irq_frame *f, void *arg)
{
	struct virtio_msix_slot *s = arg;

	(void)g;
	(void)f;
	s->d->entry_irqs[s->entry]++;
	if (s->entry == 0)
		s->d->config_irqs++;
	return 0;
}

/* INTx: the ISR read tells why and deasserts the line. */
static bool claim_intx(void *arg)
{
	struct virtio_dev *d = arg;
	uint8_t isr = mmio_read8(d->isr);

	if (isr & VIRTIO_ISR_QUEUE)
		d->isr_queue_irqs++;
	if (isr & VIRTIO_ISR_CONFIG)
		d->config_irqs++;
	return isr != 0;
}

static int alloc_vectors(struct virtio_dev *d)
{
	struct virtio_bus *b = d->bus;

	if (d->vec_base)
		return 0;
	if (b->next_vector + VIRTIO_VECS_PER_DEV > VEC_VIRTIO_END)
		return -ENOSPC;
	d->vec_base = b->next_vector;
	b->next_vector += VIRTIO_VECS_PER_DEV;
	return 0;
}

static int setup_msix(struct virtio_dev *d)
{
	struct guest *g = d->bus->g;

	d->nentries = MIN(d->msix.nvec, VIRTIO_MAX_ENTRIES);
	for (uint16_t e = 0; e < d->nentries; e++) {
		d->slots[e] = (struct virtio_msix_slot){.d = d, .entry = e};
		idt_set_handler(g, d->vec_base + e, on_msix, &d->slots[e]);
		pci_msix_set(&d->msix, e, g->bsp->apic_id, (uint8_t)(d->vec_base + e), false);
	}
	pci_msix_enable(&d->bus->pci, d->dev, d->fn, &d->msix, true);
	pci_enable_device(&d->bus->pci, d->dev, d->fn, true);
	cc_write16(d, CC_MSIX_CONFIG, 0);
	if (cc_read16(d, CC_MSIX_CONFIG) != 0) {
		report_fail(g, "virtio_msix", "%s refused MSI-X entry 0 for configuration changes",
			    d->name);
		return -EIO;
	}
	return 0;
}

static int setup_irqs(struct virtio_dev *d)
{
	struct guest *g = d->bus->g;
	int rc = alloc_vectors(d);

	if (rc)
		return rc;
	d->irq_active = d->irq_mode;
	if (d->irq_mode == VIRTIO_IRQ_MSIX)
		return setup_msix(d);
	pci_msix_enable(&d->bus->pci, d->dev, d->fn, &d->msix, false);
	cc_write16(d, CC_MSIX_CONFIG, VIRTIO_MSI_NO_VECTOR);
	if (d->irq_mode == VIRTIO_IRQ_POLL) {
		pci_enable_device(&d->bus->pci, d->dev, d->fn, true);
		return 0;
	}
	pci_enable_device(&d->bus->pci, d->dev, d->fn, false);
	rc = pci_intx_setup(g, &d->intx, d->dev, d->pin, d->vec_base + VIRTIO_VEC_INTX, d->intx_gsi,
			    claim_intx, d);
	if (rc) {
		report_fail(g, "virtio_intx", "%s: cannot route INTx pin %u (%d)", d->name, d->pin,
			    rc);
		d->irq_active = VIRTIO_IRQ_POLL;
	}
	return rc;
}

int virtio_begin(struct virtio_dev *d, uint64_t want)
{
	struct guest *g = d->bus->g;
	uint64_t ring = 0;
	uint8_t st;
	int rc;

	rc = virtio_reset(d);
	if (rc) {
		report_fail(g, "virtio_reset", "%s: status still 0x%x after a reset", d->name,
			    virtio_status(d));
		return rc;
	}
	memset((void *)d->entry_irqs, 0, sizeof(d->entry_irqs));
	d->isr_queue_irqs = d->config_irqs = 0;
	cc_write8(d, CC_STATUS, VIRTIO_STATUS_ACK);
	cc_write8(d, CC_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	cc_write32(d, CC_DFSELECT, 0);
	d->offered = cc_read32(d, CC_DF);
	cc_write32(d, CC_DFSELECT, 1);
	d->offered |= (uint64_t)cc_read32(d, CC_DF) << 32;
	if (!(d->offered & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		report_fail(g, "virtio_features", "%s does not offer VERSION_1 (0x%lx)", d->name,
			    d->offered);
		cc_write8(d, CC_STATUS, VIRTIO_STATUS_FAILED);
		return -ENODEV;
	}
	if (d->bus->use_event_idx)
		ring |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	if (d->bus->use_indirect)
		ring |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	d->features = d->offered & (want | ring | VIRTIO_BIT(VIRTIO_F_VERSION_1));
	cc_write32(d, CC_GFSELECT, 0);
	cc_write32(d, CC_GF, (uint32_t)d->features);
	cc_write32(d, CC_GFSELECT, 1);
	cc_write32(d, CC_GF, (uint32_t)(d->features >> 32));
	cc_write8(d, CC_STATUS,
		  VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	st = virtio_status(d);
	if (!(st & VIRTIO_STATUS_FEATURES_OK)) {
		report_fail(g, "virtio_features", "%s did not accept features 0x%lx (status 0x%x)",
			    d->name, d->features, st);
		cc_write8(d, CC_STATUS, st | VIRTIO_STATUS_FAILED);
		return -EIO;
	}
	d->num_queues = cc_read16(d, CC_NUM_QUEUES);
	return setup_irqs(d);
}

static uint16_t pow2_floor(uint16_t v)
{
	uint16_t p = 1;

	while (p <= v / 2)
		p *= 2;
	return p;
}

int virtio_setup_queue(struct virtio_dev *d, uint16_t idx, uint16_t max_size)
{
	struct guest *g = d->bus->g;
	struct virtq *q;
	uint16_t size, noff;
	uint64_t notify_off;
	int rc;

	if (idx >= d->num_queues || idx >= VIRTIO_MAX_QUEUES)
		return -ENOENT;
	cc_write16(d, CC_Q_SELECT, idx);
	size = cc_read16(d, CC_Q_SIZE);
	if (!size)
		return -ENOENT;
	size = pow2_floor(MIN(MIN(size, max_size ? max_size : size), VIRTQ_MAX_SIZE));
	cc_write16(d, CC_Q_SIZE, size);
	q = d->vq[idx];
	if (q && q->size != size)
		return -EINVAL; /* a device that changes its mind between resets */
	if (!q) {
		q = dma_zalloc(&d->bus->pool, sizeof(*q), 64);
		if (!q)
			return -ENOMEM;
		rc = virtq_alloc(q, &d->bus->pool, idx, size,
				 !!(d->offered & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)));
		if (rc)
			return rc;
		d->vq[idx] = q;
	}
	noff = cc_read16(d, CC_Q_NOTIFY_OFF);
	notify_off = (uint64_t)noff * d->notify_mult;
	if (notify_off > d->notify_len || d->notify_len - notify_off < 2) {
		report_fail(g, "virtio_queue", "%s queue %u: notify offset 0x%lx outside 0x%x",
			    d->name, idx, notify_off, d->notify_len);
		return -EIO;
	}
	virtq_reset(q, virtio_has(d, VIRTIO_F_EVENT_IDX), d->notify + notify_off);
	d->irq_mark[idx] = 0;
	if (d->irq_active == VIRTIO_IRQ_MSIX) {
		d->q_entry[idx] = MIN((uint16_t)(1 + idx), (uint16_t)(d->nentries - 1));
		cc_write16(d, CC_Q_MSIX, d->q_entry[idx]);
		if (cc_read16(d, CC_Q_MSIX) != d->q_entry[idx]) {
			report_fail(g, "virtio_msix", "%s refused MSI-X entry %u for queue %u",
				    d->name, d->q_entry[idx], idx);
			return -EIO;
		}
	} else {
		cc_write16(d, CC_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
	}
	cc_write64(d, CC_Q_DESC, q->desc_pa);
	cc_write64(d, CC_Q_DRIVER, q->avail_pa);
	cc_write64(d, CC_Q_DEVICE, q->used_pa);
	cc_write16(d, CC_Q_ENABLE, 1);
	return 0;
}

int virtio_driver_ok(struct virtio_dev *d)
{
	uint8_t st = virtio_status(d);

	cc_write8(d, CC_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	st = virtio_status(d);
	if (!(st & VIRTIO_STATUS_DRIVER_OK) || (st & VIRTIO_STATUS_NEEDS_RESET)) {
		report_fail(d->bus->g, "virtio_status", "%s: status 0x%x after DRIVER_OK", d->name,
			    st);
		return -EIO;
	}
	return 0;
}

static uint64_t cfg_read_once(const struct virtio_dev *d, uint32_t off, unsigned width)
{
	uint64_t a = d->device_cfg + off;

	switch (width) {
	case 1:
		return mmio_read8(a);
	case 2:
		return mmio_read16(a);
	case 4:
		return mmio_read32(a);
	default:
		return mmio_read32(a) | (uint64_t)mmio_read32(a + 4) << 32;
	}
}

int virtio_cfg_read(const struct virtio_dev *d, uint32_t off, unsigned width, uint64_t *v)
{
	if ((width != 1 && width != 2 && width != 4 && width != 8) || !d->device_cfg ||
	    off > d->device_cfg_len || width > d->device_cfg_len - off)
		return -EINVAL;
	for (unsigned i = 0; i < CFG_GEN_TRIES; i++) {
		uint8_t gen = cc_read8(d, CC_GENERATION);

		*v = cfg_read_once(d, off, width);
		if (cc_read8(d, CC_GENERATION) == gen)
			return 0;
	}
	return -EIO;
}

int virtio_cfg_write(const struct virtio_dev *d, uint32_t off, unsigned width, uint64_t v)
{
	uint64_t a = d->device_cfg + off;

	if ((width != 1 && width != 2 && width != 4) || !d->device_cfg || off > d->device_cfg_len ||
	    width > d->device_cfg_len - off)
		return -EINVAL;
	if (width == 1)
		mmio_write8(a, (uint8_t)v);
	else if (width == 2)
		mmio_write16(a, (uint16_t)v);
	else
		mmio_write32(a, (uint32_t)v);
	return 0;
}

int virtio_window_read32(const struct virtio_dev *d, uint8_t bar, uint32_t off, uint32_t *v)
{
	const struct pci_cfg *c = &d->bus->pci;
	uint8_t cap = d->window_cap;
	uint32_t w;

	if (!cap)
		return -ENOENT;
	/* cap.bar is the low byte of the dword that also holds the (read-only) id. */
	w = pci_read32(c, 0, d->dev, d->fn, cap + VCAP_BAR);
	pci_write32(c, 0, d->dev, d->fn, cap + VCAP_BAR, (w & ~0xffu) | bar);
	pci_write32(c, 0, d->dev, d->fn, cap + VCAP_OFFSET, off);
	pci_write32(c, 0, d->dev, d->fn, cap + VCAP_LENGTH, 4);
	*v = pci_read32(c, 0, d->dev, d->fn, cap + VCAP_WINDOW_DATA);
	return 0;
}

uint32_t virtio_queue_irqs(const struct virtio_dev *d, uint16_t idx)
{
	if (idx >= VIRTIO_MAX_QUEUES)
		return 0;
	switch (d->irq_active) {
	case VIRTIO_IRQ_MSIX:
		return d->entry_irqs[d->q_entry[idx]];
	case VIRTIO_IRQ_INTX:
		return d->isr_queue_irqs;
	default:
		return 0;
	}
}

int virtio_submit(struct virtio_dev *d, uint16_t idx, const struct virtq_buf *bufs, unsigned n,
		  uint16_t *head)
{
	struct virtq *q = idx < VIRTIO_MAX_QUEUES ? d->vq[idx] : NULL;
	bool indirect = n > 1 && virtio_has(d, VIRTIO_F_INDIRECT_DESC);
	int rc;

	if (!q)
		return -EINVAL;
	rc = virtq_add(q, bufs, n, indirect, head);
	if (rc)
		return rc;
	d->irq_mark[idx] = virtio_queue_irqs(d, idx);
	virtq_kick(q);
	return 0;
}

int virtio_wait(struct virtio_dev *d, uint16_t idx, uint32_t timeout_ms, uint16_t *head,
		uint32_t *len)
{
	struct virtq *q = idx < VIRTIO_MAX_QUEUES ? d->vq[idx] : NULL;
	struct clock *c = &d->bus->clock;
	uint64_t start = clock_now_ms(c), used_at = 0;
	bool polling = d->irq_active == VIRTIO_IRQ_POLL;

	if (!q)
		return -EINVAL;
	cpu_cli();
	for (;;) {
		bool used = virtq_has_used(q);
		bool irq = polling || virtio_queue_irqs(d, idx) != d->irq_mark[idx];
		uint64_t now = clock_now_ms(c);

		if (used && irq)
			break;
		if (used) {
			if (!used_at)
				used_at = now ? now : 1;
			else if (now - used_at >= VIRTIO_IRQ_GRACE_MS) {
				d->missed_irqs++;
				break;
			}
		} else if (now - start >= timeout_ms) {
			return -ETIMEDOUT;
		}
		if (polling)
			cpu_pause();
		else
			clock_halt(c, 10000);
	}
	d->irq_mark[idx] = virtio_queue_irqs(d, idx);
	return virtq_pop(q, head, len);
}

int virtio_request(struct virtio_dev *d, uint16_t idx, const struct virtq_buf *bufs, unsigned n,
		   uint32_t timeout_ms, uint32_t *len)
{
	uint16_t head, got;
	int rc = virtio_submit(d, idx, bufs, n, &head);

	/* Bounded: each pass consumes one used entry or ends. */
	for (unsigned i = 0; !rc && i <= VIRTQ_MAX_SIZE; i++) {
		rc = virtio_wait(d, idx, timeout_ms, &got, len);
		if (rc || got == head)
			return rc;
		d->stale++;
	}
	return rc ? rc : -EIO;
}

int virtio_wait_config(struct virtio_dev *d, uint32_t since, uint32_t timeout_ms)
{
	struct clock *c = &d->bus->clock;
	uint64_t start = clock_now_ms(c);

	cpu_cli();
	while (d->config_irqs == since) {
		if (clock_now_ms(c) - start >= timeout_ms)
			return -ETIMEDOUT;
		if (d->irq_active == VIRTIO_IRQ_POLL) {
			/* No interrupt to wait for: look at the ISR ourselves. */
			claim_intx(d);
			cpu_pause();
		} else {
			clock_halt(c, 10000);
		}
	}
	return 0;
}
