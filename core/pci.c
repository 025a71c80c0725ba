#include "core/pci.h"
#include "core/layout.h"
#include "core/log.h"
#include "core/bus.h"
#include "core/device.h"
#include "core/guest_mem.h"
#include "core/irq.h"
#include "core/kvm.h"
#include "core/msix.h"
#include "core/vm_event.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#define PCI_VENDOR_ID	  0x00
#define PCI_COMMAND	  0x04
#define PCI_STATUS	  0x06
#define PCI_REVISION	  0x08
#define PCI_HEADER_TYPE	  0x0e
#define PCI_BAR0	  0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_CAP_PTR	  0x34
#define PCI_INT_LINE	  0x3c
#define PCI_INT_PIN	  0x3d
#define PCI_CAP_START	  0x40

#define PCI_CMD_IO	     0x1
#define PCI_CMD_MEM	     0x2
#define PCI_CMD_MASTER	     0x4
#define PCI_CMD_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST  0x10

#define PCI_BAR_MEM_64	 0x4
#define PCI_BAR_PREFETCH 0x8

#define PCI_CAP_ID_MSIX	    0x11
#define MSIX_CTRL_ENABLE    0x8000
#define MSIX_CTRL_FUNC_MASK 0x4000

#define CF9_RESET_CPU 0x04

/* Window capability (virtio_pci_cfg_cap) layout after the 2-byte id/next header. */
#define WIN_BAR	   4  /* offset of `bar` within the cap (virtio_pci_cap) */
#define WIN_OFFSET 8  /* u32 offset */
#define WIN_LENGTH 12 /* u32 length */
#define WIN_DATA   16 /* u8 data[4] */

struct pci_fn {
	struct pci_root *root;
	struct device *dev;
	unsigned slot;
	pthread_mutex_t lock;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];
	struct pci_bar_desc bars[PCI_NUM_BARS];
	uint64_t bar_addr[PCI_NUM_BARS];
	uint64_t bar_mapped[PCI_NUM_BARS]; /* address it is registered at, 0: not mapped */
	struct pci_ioevent_desc ioevents[PCI_MAX_IOEVENTS];
	unsigned nr_ioevents;
	uint8_t msix_cap; /* config offset of the MSI-X capability, 0 if none */
	uint8_t msix_bar;
	uint32_t msix_table_off, msix_pba_off;
	struct msix msix;
	uint8_t window_cap; /* config offset of the window capability, 0 if none */
};

struct pci_root {
	struct pci_root_params p;
	pthread_mutex_t lock;
	uint32_t cf8;
	uint8_t cf9;
	struct pci_fn *fns[PCI_MAX_SLOTS];
	unsigned next_slot;
	uint64_t mmio32_next, mmio64_next, mmio64_end;
};

uint32_t pci_intx_gsi(unsigned slot, unsigned pin)
{
	return LAYOUT_IRQ_PCI_FIRST + (slot + pin) % LAYOUT_IRQ_PCI_COUNT;
}

/* ---- BAR decoding ---- */

/* The bus handler of a BAR: ctx is the function, region the BAR number. */
static int bar_handler(void *ctx, unsigned bar, uint64_t off, void *data, uint32_t len,
		       bool is_write)
{
	struct pci_fn *fn = ctx;
	int ret;

	if (fn->msix.nr && bar == fn->msix_bar) {
		if (range_contains(fn->msix_table_off, msix_table_size(&fn->msix), off, len)) {
			pthread_mutex_lock(&fn->lock);
			ret = msix_table_access(&fn->msix, off - fn->msix_table_off, data, len,
						is_write);
			pthread_mutex_unlock(&fn->lock);
			return ret;
		}
		if (range_contains(fn->msix_pba_off, msix_pba_size(&fn->msix), off, len)) {
			pthread_mutex_lock(&fn->lock);
			ret = msix_pba_access(&fn->msix, off - fn->msix_pba_off, data, len,
					      is_write);
			pthread_mutex_unlock(&fn->lock);
			return ret;
		}
	}
	return device_io(fn->dev, bar, off, data, len, is_write);
}

static void set_ioevents(struct pci_fn *fn, unsigned bar, uint64_t base, bool assign)
{
	struct kvm *kvm = fn->root->p.kvm;

	for (unsigned i = 0; i < fn->nr_ioevents; i++) {
		const struct pci_ioevent_desc *e = &fn->ioevents[i];
		int r;

		if (e->bar != bar)
			continue;
		r = kvm_ioeventfd(kvm, e->fd, base + e->off, e->len, false, e->datamatch, e->data,
				  !assign);
		if (r < 0)
			log_warn(fn->root->p.log, "%s: cannot %s ioeventfd at 0x%llx: %s",
				 fn->dev->name, assign ? "register" : "remove",
				 (unsigned long long)(base + e->off), strerror(-r));
	}
}

/* Maps or unmaps every memory BAR to follow the command register and BAR addresses. */
static void update_bars(struct pci_fn *fn)
{
	const struct pci_root_params *p = &fn->root->p;
	bool mem_on = get_le(&fn->cfg[PCI_COMMAND], 2) & PCI_CMD_MEM;

	for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
		uint64_t want = mem_on && fn->bars[b].size ? fn->bar_addr[b] : 0;

		if (fn->bar_mapped[b] == want)
			continue;
		if (fn->bar_mapped[b]) {
			set_ioevents(fn, b, fn->bar_mapped[b], false);
			bus_unregister(p->mmio, fn->bar_mapped[b], fn);
			fn->bar_mapped[b] = 0;
		}
		if (!want)
			continue;
		/* A BAR the guest placed over RAM, another device or the 4 GiB edge stays off. */
		if (range_wraps(want, fn->bars[b].size) ||
		    bus_register(p->mmio, want, fn->bars[b].size, bar_handler, fn, b,
				 fn->dev->name) < 0) {
			log_warn(p->log, "%s: BAR%u at 0x%llx overlaps another range; not decoded",
				 fn->dev->name, b, (unsigned long long)want);
			continue;
		}
		fn->bar_mapped[b] = want;
		set_ioevents(fn, b, want, true);
	}
}

/* Rebuilds the BAR registers in config space from the current addresses. */
static void write_bar_regs(struct pci_fn *fn, unsigned b)
{
	const struct pci_bar_desc *d = &fn->bars[b];
	uint32_t lo;

	if (!d->size)
		return;
	lo = (uint32_t)fn->bar_addr[b] | (d->mem64 ? PCI_BAR_MEM_64 : 0) |
	     (d->prefetch ? PCI_BAR_PREFETCH : 0);
	put_le(&fn->cfg[PCI_BAR0 + 4 * b], lo, 4);
	if (d->mem64)
		put_le(&fn->cfg[PCI_BAR0 + 4 * (b + 1)], (uint32_t)(fn->bar_addr[b] >> 32), 4);
}

/* A guest write to BAR register index r (0..5): sizing or placing a BAR. */
static void bar_reg_written(struct pci_fn *fn, unsigned r)
{
	uint32_t v = (uint32_t)get_le(&fn->cfg[PCI_BAR0 + 4 * r], 4);

	for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
		const struct pci_bar_desc *d = &fn->bars[b];
		uint64_t mask = ~(d->size - 1);

		if (!d->size)
			continue;
		if (b == r)
			fn->bar_addr[b] =
				((fn->bar_addr[b] & 0xffffffff00000000ull) | (v & ~0xfu)) & mask;
		else if (d->mem64 && b + 1 == r)
			fn->bar_addr[b] =
				(((uint64_t)v << 32) | (fn->bar_addr[b] & 0xffffffffu)) & mask;
		else
			continue;
		if (!d->mem64)
			fn->bar_addr[b] &= 0xffffffffu;
		write_bar_regs(fn, b);
	}
}

/* ---- capabilities ---- */

static void window_access(struct pci_fn *fn, uint32_t reg, void *data, uint32_t len, bool is_write)
{
	uint8_t *cap = &fn->cfg[fn->window_cap];
	unsigned bar = cap[WIN_BAR];
	uint32_t off = (uint32_t)get_le(cap + WIN_OFFSET, 4);
	uint32_t wlen = (uint32_t)get_le(cap + WIN_LENGTH, 4);

	/* The access length must match the window length (1, 2 or 4) and the BAR must exist. */
	if (reg != (uint32_t)fn->window_cap + WIN_DATA || len != wlen || bar >= PCI_NUM_BARS ||
	    !fn->bars[bar].size || !range_contains(0, fn->bars[bar].size, off, len)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_unlock(&fn->lock);
	bar_handler(fn, bar, off, data, len, is_write);
	pthread_mutex_lock(&fn->lock);
}

static void add_cap(struct pci_fn *fn, uint8_t *pos, uint8_t *prev_next, uint8_t id, uint8_t len,
		    const uint8_t *body)
{
	fn->cfg[*pos] = id;
	fn->cfg[*pos + 1] = 0;
	if (len > 2)
		memcpy(&fn->cfg[*pos + 2], body, len - 2u);
	fn->cfg[*prev_next] = *pos;
	*prev_next = (uint8_t)(*pos + 1);
	*pos = (uint8_t)ALIGN_UP(*pos + len, 4);
}

static int build_config(struct pci_fn *fn, const struct pci_dev_desc *d, uint32_t intx_gsi)
{
	uint8_t pos = PCI_CAP_START, prev = PCI_CAP_PTR;
	uint16_t status = 0;

	put_le(&fn->cfg[PCI_VENDOR_ID], d->vendor_id, 2);
	put_le(&fn->cfg[PCI_VENDOR_ID + 2], d->device_id, 2);
	fn->cfg[PCI_REVISION] = d->revision;
	fn->cfg[PCI_REVISION + 1] = d->prog_if;
	fn->cfg[PCI_REVISION + 2] = d->subclass;
	fn->cfg[PCI_REVISION + 3] = d->class_code;
	fn->cfg[PCI_HEADER_TYPE] = 0;
	put_le(&fn->cfg[PCI_SUBSYS_VENDOR], d->subsys_vendor_id, 2);
	put_le(&fn->cfg[PCI_SUBSYS_VENDOR + 2], d->subsys_id, 2);
	/* Writable: command (I/O, memory, bus master, INTx disable) and the interrupt line. */
	put_le(&fn->wmask[PCI_COMMAND],
	       PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE, 2);
	fn->wmask[PCI_INT_LINE] = 0xff;
	if (d->intx) {
		fn->cfg[PCI_INT_PIN] = 1;
		fn->cfg[PCI_INT_LINE] = (uint8_t)intx_gsi;
	}
	for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
		if (!d->bars[b].size)
			continue;
		/* BAR registers are handled by bar_reg_written; they are fully "writable". */
		memset(&fn->wmask[PCI_BAR0 + 4 * b], 0xff, d->bars[b].mem64 ? 8 : 4);
		write_bar_regs(fn, b);
	}
	for (unsigned i = 0; i < d->nr_caps; i++) {
		const struct pci_cap_desc *c = &d->caps[i];

		if (c->len < 2 || c->len > sizeof(c->body) + 2 || pos + c->len > PCI_CFG_SIZE)
			return -EINVAL;
		if (c->window) {
			if (c->len < WIN_DATA + 4)
				return -EINVAL;
			fn->window_cap = pos;
			fn->wmask[pos + WIN_BAR] = 0xff;
			memset(&fn->wmask[pos + WIN_OFFSET], 0xff, 8);
		}
		add_cap(fn, &pos, &prev, c->id, c->len, c->body);
	}
	if (d->msix_vectors) {
		uint8_t body[10];

		if (pos + 12 > PCI_CFG_SIZE || d->msix_bar >= PCI_NUM_BARS)
			return -EINVAL;
		put_le(body, (d->msix_vectors - 1) & 0x7ff, 2);
		put_le(body + 2, d->msix_table_off | d->msix_bar, 4);
		put_le(body + 6, d->msix_pba_off | d->msix_bar, 4);
		fn->msix_cap = pos;
		fn->wmask[pos + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FUNC_MASK) >> 8;
		add_cap(fn, &pos, &prev, PCI_CAP_ID_MSIX, 12, body);
	}
	if (prev != PCI_CAP_PTR)
		status |= PCI_STATUS_CAP_LIST;
	put_le(&fn->cfg[PCI_STATUS], status, 2);
	return 0;
}

/* ---- config space access ---- */

static void fn_config_read(struct pci_fn *fn, uint32_t reg, void *data, uint32_t len)
{
	pthread_mutex_lock(&fn->lock);
	if (fn->window_cap && ranges_overlap(reg, len, fn->window_cap + WIN_DATA, 4))
		window_access(fn, reg, data, len, false);
	else
		memcpy(data, &fn->cfg[reg], len);
	pthread_mutex_unlock(&fn->lock);
}

static void fn_config_write(struct pci_fn *fn, uint32_t reg, const void *data, uint32_t len)
{
	const uint8_t *p = data;
	bool touch_cmd, touch_msix;

	pthread_mutex_lock(&fn->lock);
	if (fn->window_cap && ranges_overlap(reg, len, fn->window_cap + WIN_DATA, 4)) {
		uint8_t buf[4];

		memcpy(buf, data, len);
		window_access(fn, reg, buf, len, true);
		pthread_mutex_unlock(&fn->lock);
		return;
	}
	for (uint32_t i = 0; i < len; i++)
		fn->cfg[reg + i] = (uint8_t)((fn->cfg[reg + i] & ~fn->wmask[reg + i]) |
					     (p[i] & fn->wmask[reg + i]));
	for (unsigned r = 0; r < PCI_NUM_BARS; r++)
		if (ranges_overlap(reg, len, PCI_BAR0 + 4 * r, 4))
			bar_reg_written(fn, r);
	touch_cmd = ranges_overlap(reg, len, PCI_COMMAND, 2);
	touch_msix = fn->msix_cap && ranges_overlap(reg, len, fn->msix_cap + 2, 2);
	if (touch_cmd || ranges_overlap(reg, len, PCI_BAR0, 24))
		update_bars(fn);
	if (touch_msix) {
		uint16_t ctrl = (uint16_t)get_le(&fn->cfg[fn->msix_cap + 2], 2);
		bool was = fn->msix.enabled;

		msix_set_control(&fn->msix, ctrl & MSIX_CTRL_ENABLE, ctrl & MSIX_CTRL_FUNC_MASK);
		if (was != fn->msix.enabled) {
			bool en = fn->msix.enabled;

			pthread_mutex_unlock(&fn->lock);
			device_msix_state(fn->dev, en);
			return;
		}
	}
	pthread_mutex_unlock(&fn->lock);
}

/* The host bridge at 00:00.0: a fixed, read-only header. */
static void host_bridge_read(uint32_t reg, void *data, uint32_t len)
{
	uint8_t cfg[64] = {0};

	put_le(&cfg[PCI_VENDOR_ID], 0x8086, 2);
	put_le(&cfg[PCI_VENDOR_ID + 2], 0x1237, 2);
	cfg[PCI_REVISION + 3] = 0x06; /* bridge */
	cfg[PCI_REVISION + 2] = 0x00; /* host bridge */
	if (reg + len <= sizeof(cfg))
		memcpy(data, &cfg[reg], len);
	else
		memset(data, 0, len);
}

int pci_config_access(struct pci_root *root, unsigned bus, unsigned slot, unsigned fn_no,
		      uint32_t reg, void *data, uint32_t len, bool is_write)
{
	struct pci_fn *fn;

	if ((len != 1 && len != 2 && len != 4) || reg % len)
		return -EINVAL;
	if (bus != 0 || fn_no != 0 || slot >= PCI_MAX_SLOTS) {
		if (!is_write)
			memset(data, 0xff, len);
		return 0;
	}
	if (slot == 0) {
		if (!is_write)
			host_bridge_read(reg, data, len);
		return 0;
	}
	fn = root->fns[slot];
	if (!fn) {
		if (!is_write)
			memset(data, 0xff, len);
		return 0;
	}
	if (reg >= PCI_CFG_SIZE) {
		/* No PCIe extended capabilities: the extended space reads as zero. */
		if (!is_write)
			memset(data, 0, len);
		return 0;
	}
	if (is_write)
		fn_config_write(fn, reg, data, len);
	else
		fn_config_read(fn, reg, data, len);
	return 0;
}

/* Ports 0xcf8-0xcff: the address register, the reset control register at 0xcf9, data. */
static int config_port(void *ctx, unsigned region, uint64_t off, void *data, uint32_t len,
		       bool is_write)
{
	struct pci_root *root = ctx;
	uint32_t addr;

	if (off == 0 && len == 4) {
		pthread_mutex_lock(&root->lock);
		if (is_write)
			memcpy(&root->cf8, data, 4);
		else
			memcpy(data, &root->cf8, 4);
		pthread_mutex_unlock(&root->lock);
		return 0;
	}
	if (off == 1 && len == 1) {
		uint8_t v = *(uint8_t *)data;

		if (!is_write) {
			*(uint8_t *)data = root->cf9;
			return 0;
		}
		root->cf9 = v & ~CF9_RESET_CPU;
		if (v & CF9_RESET_CPU) {
			log_info(root->p.log, "guest requested a reset through port 0xcf9");
			vm_events_exit(root->p.ev, VM_EXIT_RESET);
		}
		return 0;
	}
	if (off < 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return 0;
	}
	pthread_mutex_lock(&root->lock);
	addr = root->cf8;
	pthread_mutex_unlock(&root->lock);
	if (!(addr & 0x80000000u) || (off - 4) % len) {
		if (!is_write)
			memset(data, 0xff, len);
		return 0;
	}
	return pci_config_access(root, (addr >> 16) & 0xff, (addr >> 11) & 0x1f, (addr >> 8) & 7,
				 (addr & 0xfc) + (uint32_t)(off - 4), data, len, is_write);
}

static int ecam_handler(void *ctx, unsigned region, uint64_t off, void *data, uint32_t len,
			bool is_write)
{
	int r = pci_config_access(ctx, (off >> 20) & 0xff, (off >> 15) & 0x1f, (off >> 12) & 7,
				  off & 0xfff, data, len, is_write);

	if (r < 0 && !is_write)
		memset(data, 0xff, len);
	return 0;
}

/* ---- KVM hooks for MSI-X ---- */

static int msix_route(void *ctx, uint32_t gsi, bool valid, uint64_t addr, uint32_t data)
{
	struct pci_root *root = ctx;

	return irq_msi_route_set(root->p.irq, gsi, valid, addr, data);
}

static int msix_attach(void *ctx, int fd, uint32_t gsi, bool attach)
{
	struct pci_root *root = ctx;

	return kvm_irqfd(root->p.kvm, fd, gsi, -1, !attach);
}

static const struct msix_ops msix_kvm_ops = {.route = msix_route, .attach = msix_attach};

/* ---- root ---- */

int pci_root_create(const struct pci_root_params *p, struct pci_root **out)
{
	struct pci_root *root = calloc(1, sizeof(*root));
	uint64_t size;
	int ret;

	if (!root)
		return -ENOMEM;
	root->p = *p;
	root->next_slot = 1;
	root->mmio32_next = LAYOUT_PCI_MMIO32_START;
	layout_mmio64(p->mem, &root->mmio64_next, &size);
	root->mmio64_end = root->mmio64_next + size;
	pthread_mutex_init(&root->lock, NULL);
	ret = bus_register(p->pio, LAYOUT_PORT_PCI_CONFIG, 8, config_port, root, 0, "pci-config");
	if (ret == 0)
		ret = bus_register(p->mmio, LAYOUT_PCIE_ECAM, LAYOUT_PCIE_ECAM_SIZE, ecam_handler,
				   root, 0, "pcie-ecam");
	if (ret < 0) {
		log_err(p->log, "cannot claim the PCI configuration ranges: %s", strerror(-ret));
		pci_root_destroy(root);
		return ret;
	}
	*out = root;
	return 0;
}

void pci_root_destroy(struct pci_root *root)
{
	if (!root)
		return;
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_fn *fn = root->fns[s];

		if (!fn)
			continue;
		pthread_mutex_destroy(&fn->lock);
		free(fn);
	}
	pthread_mutex_destroy(&root->lock);
	free(root);
}

int pci_next_slot(struct pci_root *root, unsigned *slot)
{
	if (root->next_slot >= PCI_MAX_SLOTS)
		return -ENOSPC;
	*slot = root->next_slot++;
	return 0;
}

int pci_alloc_irqs(struct pci_root *root, unsigned slot, unsigned nr_vectors, bool intx,
		   struct pci_irq_fds *fds)
{
	int ret = 0;

	memset(fds, 0, sizeof(*fds));
	fds->intx_fd = fds->intx_resample_fd = -1;
	for (unsigned i = 0; i < PCI_MAX_VECTORS; i++)
		fds->vector_fds[i] = -1;
	if (nr_vectors > PCI_MAX_VECTORS)
		return -EINVAL;
	for (unsigned i = 0; i < nr_vectors; i++) {
		fds->vector_fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds->vector_fds[i] < 0) {
			ret = -errno;
			goto err;
		}
		fds->nr_vectors = i + 1;
		ret = irq_alloc_msi_gsi(root->p.irq, &fds->vector_gsis[i]);
		if (ret < 0)
			goto err;
	}
	if (intx) {
		fds->intx_gsi = pci_intx_gsi(slot, 0);
		ret = irq_level_eventfd_create(root->p.kvm, fds->intx_gsi, &fds->intx_fd,
					       &fds->intx_resample_fd);
		if (ret < 0)
			goto err;
	}
	return 0;
err:
	for (unsigned i = 0; i < fds->nr_vectors; i++)
		close_fd(&fds->vector_fds[i]);
	close_fd(&fds->intx_fd);
	close_fd(&fds->intx_resample_fd);
	return ret;
}

/* Firmware-style placement: BARs below 4 GiB while the 32-bit window has room. */
static int place_bar(struct pci_root *root, const struct pci_bar_desc *d, uint64_t *addr)
{
	uint64_t a = ALIGN_UP(root->mmio32_next, d->size);

	if (a + d->size <= LAYOUT_PCI_MMIO32_END) {
		root->mmio32_next = a + d->size;
		*addr = a;
		return 0;
	}
	if (!d->mem64)
		return -ENOSPC;
	a = ALIGN_UP(root->mmio64_next, d->size);
	if (a + d->size > root->mmio64_end)
		return -ENOSPC;
	root->mmio64_next = a + d->size;
	*addr = a;
	return 0;
}

int pci_add_device(struct pci_root *root, unsigned slot, struct device *dev,
		   const struct pci_dev_desc *desc, const struct pci_irq_fds *irq)
{
	struct pci_fn *fn;
	int ret;

	if (slot == 0 || slot >= PCI_MAX_SLOTS || root->fns[slot] ||
	    desc->nr_ioevents > PCI_MAX_IOEVENTS || desc->msix_vectors > irq->nr_vectors)
		return -EINVAL;
	fn = calloc(1, sizeof(*fn));
	if (!fn)
		return -ENOMEM;
	fn->root = root;
	fn->dev = dev;
	fn->slot = slot;
	pthread_mutex_init(&fn->lock, NULL);
	memcpy(fn->bars, desc->bars, sizeof(fn->bars));
	for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
		const struct pci_bar_desc *d = &desc->bars[b];

		if (!d->size)
			continue;
		if (d->size < 16 || (d->size & (d->size - 1)) || (d->mem64 && b == 5)) {
			ret = -EINVAL;
			goto err;
		}
		ret = place_bar(root, d, &fn->bar_addr[b]);
		if (ret < 0) {
			log_err(root->p.log, "%s: no room for BAR%u (%llu bytes)", dev->name, b,
				(unsigned long long)d->size);
			goto err;
		}
	}
	memcpy(fn->ioevents, desc->ioevents, sizeof(fn->ioevents));
	fn->nr_ioevents = desc->nr_ioevents;
	fn->msix_bar = desc->msix_bar;
	fn->msix_table_off = desc->msix_table_off;
	fn->msix_pba_off = desc->msix_pba_off;
	msix_init(&fn->msix, desc->msix_vectors, irq->vector_fds, irq->vector_gsis, &msix_kvm_ops,
		  root);
	ret = build_config(fn, desc, irq->intx_gsi);
	if (ret < 0) {
		log_err(root->p.log, "%s: invalid PCI capability layout", dev->name);
		goto err;
	}
	root->fns[slot] = fn;
	return 0;
err:
	pthread_mutex_destroy(&fn->lock);
	free(fn);
	return ret;
}
