#include "pci.h"
#include "io.h"

#define ENABLE_BIT (1u << 31)

bool pci_ports_present(void)
{
	/* Mechanism #1 latches what we write to 0xcf8; nothing there reads back all ones. */
	outl(PCI_CONFIG_ADDRESS, ENABLE_BIT);
	return inl(PCI_CONFIG_ADDRESS) == ENABLE_BIT;
}

static uint32_t port_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	return ENABLE_BIT | (uint32_t)bus << 16 | (uint32_t)(dev & 31) << 11 |
	       (uint32_t)(fn & 7) << 8 | (off & 0xfc);
}

static uint64_t ecam_addr(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn,
			  uint16_t off)
{
	return c->ecam + ((uint64_t)bus << 20 | (uint64_t)(dev & 31) << 15 |
			  (uint64_t)(fn & 7) << 12 | (off & 0xffc));
}

/* Buses outside the ECAM window, or config beyond 256 bytes through ports, read as absent. */
static bool reachable(const struct pci_cfg *c, uint8_t bus, uint16_t off)
{
	if (c->how == PCI_ACCESS_PORTS)
		return off < 256;
	return bus >= c->bus_start && bus <= c->bus_end && off < 4096 &&
	       phys_range_ok(ecam_addr(c, bus, 0, 0, 0), 1u << 20);
}

uint32_t pci_read32(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	if (!reachable(c, bus, off))
		return UINT32_MAX;
	if (c->how == PCI_ACCESS_ECAM)
		return mmio_read32(ecam_addr(c, bus, dev, fn, off));
	outl(PCI_CONFIG_ADDRESS, port_addr(bus, dev, fn, off));
	return inl(PCI_CONFIG_DATA);
}

void pci_write32(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off,
		 uint32_t v)
{
	if (!reachable(c, bus, off))
		return;
	if (c->how == PCI_ACCESS_ECAM) {
		mmio_write32(ecam_addr(c, bus, dev, fn, off), v);
		return;
	}
	outl(PCI_CONFIG_ADDRESS, port_addr(bus, dev, fn, off));
	outl(PCI_CONFIG_DATA, v);
}

int pci_bar_probe(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn, unsigned index,
		  struct pci_bar *bar)
{
	uint16_t off = (uint16_t)(PCI_BAR0 + 4 * index);
	uint32_t cmd, lo, lo_size, hi = 0, hi_size = 0xffffffff;

	if (index > 5)
		return -EINVAL;
	*bar = (struct pci_bar){0};
	cmd = pci_read32(c, bus, dev, fn, PCI_COMMAND);
	/* No decoding while the BAR holds the all-ones probe pattern. */
	pci_write32(c, bus, dev, fn, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEM) & 0xffff);
	lo = pci_read32(c, bus, dev, fn, off);
	pci_write32(c, bus, dev, fn, off, 0xffffffff);
	lo_size = pci_read32(c, bus, dev, fn, off);
	pci_write32(c, bus, dev, fn, off, lo);
	bar->io = lo & 1;
	bar->is64 = !bar->io && ((lo >> 1) & 3) == 2;
	if (bar->is64 && index < 5) {
		hi = pci_read32(c, bus, dev, fn, off + 4);
		pci_write32(c, bus, dev, fn, off + 4, 0xffffffff);
		hi_size = pci_read32(c, bus, dev, fn, off + 4);
		pci_write32(c, bus, dev, fn, off + 4, hi);
	}
	pci_write32(c, bus, dev, fn, PCI_COMMAND, cmd & 0xffff);

	if (bar->io) {
		uint32_t mask = lo_size & ~3u;

		bar->addr = lo & ~3u;
		bar->size = mask ? (uint64_t)((~mask + 1) & 0xffff) : 0;
	} else {
		uint64_t mask =
			((uint64_t)(bar->is64 ? hi_size : 0xffffffff) << 32) | (lo_size & ~0xfu);

		bar->prefetch = lo & 8;
		bar->addr = ((uint64_t)hi << 32) | (lo & ~0xfu);
		bar->size = (lo_size & ~0xfu) ? ~mask + 1 : 0;
	}
	bar->present = bar->size != 0;
	return 0;
}

int pci_caps(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn, uint8_t *ids,
	     uint8_t *offs, unsigned max)
{
	unsigned n = 0;
	uint8_t ptr;

	if (!((pci_read32(c, bus, dev, fn, PCI_COMMAND) >> 16) & PCI_STATUS_CAPS))
		return 0;
	ptr = (uint8_t)pci_read32(c, bus, dev, fn, PCI_CAP_PTR);
	for (unsigned steps = 0; ptr; steps++) {
		uint32_t hdr;

		/* Capabilities live dword-aligned after the standard header. */
		if (ptr < 0x40 || (ptr & 3) || steps == PCI_CAP_MAX)
			return -EINVAL;
		hdr = pci_read32(c, bus, dev, fn, ptr);
		if (n < max) {
			ids[n] = (uint8_t)hdr;
			offs[n] = ptr;
		}
		n++;
		ptr = (uint8_t)(hdr >> 8);
	}
	return (int)n;
}
