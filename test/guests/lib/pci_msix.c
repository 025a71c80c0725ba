#include "pci_msix.h"
#include "io.h"

#define CTRL_TABLE_SIZE 0x7ff
#define BIR_MASK	0x7u

static bool in_bar(const struct pci_bar bars[6], uint8_t bir, uint64_t off, uint64_t len)
{
	const struct pci_bar *b;

	if (bir > 5)
		return false;
	b = &bars[bir];
	return b->present && !b->io && off <= b->size && len <= b->size - off &&
	       phys_range_ok(b->addr + off, len);
}

int pci_msix_init(const struct pci_cfg *c, uint8_t dev, uint8_t fn, uint8_t cap_off,
		  const struct pci_bar bars[6], struct pci_msix *m)
{
	uint32_t ctrl = pci_read32(c, 0, dev, fn, cap_off) >> 16;
	uint32_t table = pci_read32(c, 0, dev, fn, cap_off + 4);
	uint32_t pba = pci_read32(c, 0, dev, fn, cap_off + 8);
	struct pci_msix r = {
		.cap = cap_off,
		.nvec = (uint16_t)((ctrl & CTRL_TABLE_SIZE) + 1),
		.table_bar = table & BIR_MASK,
		.pba_bar = pba & BIR_MASK,
	};

	*m = (struct pci_msix){0};
	if (!in_bar(bars, r.table_bar, table & ~BIR_MASK, (uint64_t)r.nvec * MSIX_ENTRY_SIZE) ||
	    !in_bar(bars, r.pba_bar, pba & ~BIR_MASK, ALIGN_UP(r.nvec, 64) / 8))
		return -EINVAL;
	r.table = bars[r.table_bar].addr + (table & ~BIR_MASK);
	r.pba = bars[r.pba_bar].addr + (pba & ~BIR_MASK);
	*m = r;
	return 0;
}

int pci_msix_set(const struct pci_msix *m, uint16_t entry, uint32_t apic_id, uint8_t vector,
		 bool masked)
{
	uint64_t e = m->table + (uint64_t)entry * MSIX_ENTRY_SIZE;

	if (!m->cap || entry >= m->nvec)
		return -EINVAL;
	/* Mask while the message changes, so a half-written one is never sent. */
	mmio_write32(e + 12, 1);
	mmio_write32(e, MSI_ADDRESS_BASE | (apic_id & 0xff) << 12);
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, vector);
	mmio_write32(e + 12, masked ? 1 : 0);
	return 0;
}

int pci_msix_mask(const struct pci_msix *m, uint16_t entry, bool masked)
{
	if (!m->cap || entry >= m->nvec)
		return -EINVAL;
	mmio_write32(m->table + (uint64_t)entry * MSIX_ENTRY_SIZE + 12, masked ? 1 : 0);
	return 0;
}

void pci_msix_enable(const struct pci_cfg *c, uint8_t dev, uint8_t fn, const struct pci_msix *m,
		     bool on)
{
	uint32_t v, ctrl;

	if (!m->cap)
		return;
	v = pci_read32(c, 0, dev, fn, m->cap);
	ctrl = (v >> 16) & ~(MSIX_CTRL_ENABLE | MSIX_CTRL_FUNC_MASK);
	if (on)
		ctrl |= MSIX_CTRL_ENABLE;
	pci_write32(c, 0, dev, fn, m->cap, (v & 0xffff) | ctrl << 16);
}

bool pci_msix_pending(const struct pci_msix *m, uint16_t entry)
{
	if (!m->cap || entry >= m->nvec)
		return false;
	return (mmio_read64(m->pba + (entry / 64) * 8) >> (entry % 64)) & 1;
}
