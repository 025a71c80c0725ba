#include "ioapic.h"
#include "io.h"

#define IOREGSEL       0x00
#define IOWIN	       0x10
#define IOAPIC_VER     0x01
#define IOAPIC_REDTBL  0x10
#define RTE_MASKED     (1u << 16)
#define RTE_LEVEL      (1u << 15)
#define RTE_ACTIVE_LOW (1u << 13)

static uint32_t reg_read(uint64_t base, uint32_t reg)
{
	mmio_write32(base + IOREGSEL, reg);
	return mmio_read32(base + IOWIN);
}

static void reg_write(uint64_t base, uint32_t reg, uint32_t v)
{
	mmio_write32(base + IOREGSEL, reg);
	mmio_write32(base + IOWIN, v);
}

uint32_t ioapic_pins(uint64_t base)
{
	return ((reg_read(base, IOAPIC_VER) >> 16) & 0xff) + 1;
}

uint64_t ioapic_read_entry(uint64_t base, uint32_t pin)
{
	uint64_t lo = reg_read(base, IOAPIC_REDTBL + 2 * pin);
	uint64_t hi = reg_read(base, IOAPIC_REDTBL + 2 * pin + 1);

	return lo | (hi << 32);
}

static int find_ioapic(struct guest *g, uint32_t gsi, uint64_t *base, uint32_t *pin)
{
	const struct acpi_info *a = &g->acpi;

	for (uint32_t i = 0; i < a->nioapics; i++) {
		uint64_t b = a->ioapics[i].addr;

		if (!phys_range_ok(b, 0x20) || gsi < a->ioapics[i].gsi_base)
			continue;
		if (gsi - a->ioapics[i].gsi_base < ioapic_pins(b)) {
			*base = b;
			*pin = gsi - a->ioapics[i].gsi_base;
			return 0;
		}
	}
	if (!a->nioapics && gsi < ioapic_pins(IOAPIC_DEFAULT_BASE)) {
		/* No MADT: the PC default location with GSI base 0. */
		*base = IOAPIC_DEFAULT_BASE;
		*pin = gsi;
		return 0;
	}
	return -ENODEV;
}

int ioapic_route_isa(struct guest *g, uint8_t irq, uint8_t vector, uint32_t dest_apic,
		     struct ioapic_route *out)
{
	struct ioapic_route r = {0};
	uint16_t flags;
	uint32_t lo;
	int rc;

	acpi_isa_irq(&g->acpi, irq, &r.gsi, &flags);
	rc = find_ioapic(g, r.gsi, &r.base, &r.pin);
	if (rc)
		return rc;
	/* "Conforms to the bus" for ISA means edge triggered, active high. */
	r.level = (flags & MPS_TRIGGER_MASK) == MPS_TRIGGER_LEVEL;
	r.active_low = (flags & MPS_POLARITY_MASK) == MPS_POLARITY_LOW;
	lo = vector | (r.level ? RTE_LEVEL : 0) | (r.active_low ? RTE_ACTIVE_LOW : 0);
	reg_write(r.base, IOAPIC_REDTBL + 2 * r.pin, RTE_MASKED);
	reg_write(r.base, IOAPIC_REDTBL + 2 * r.pin + 1, dest_apic << 24);
	reg_write(r.base, IOAPIC_REDTBL + 2 * r.pin, lo);
	if (out)
		*out = r;
	return 0;
}

int ioapic_mask(const struct ioapic_route *r)
{
	uint32_t lo = reg_read(r->base, IOAPIC_REDTBL + 2 * r->pin);

	reg_write(r->base, IOAPIC_REDTBL + 2 * r->pin, lo | RTE_MASKED);
	return 0;
}
