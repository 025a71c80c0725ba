#include "gsi.h"
#include "io.h"
#include "ioapic.h"

#define IOREGSEL       0x00
#define IOWIN	       0x10
#define IOAPIC_REDTBL  0x10
#define RTE_MASKED     (1u << 16)
#define RTE_LEVEL      (1u << 15)
#define RTE_REMOTE_IRR (1u << 14)
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

int gsi_lookup(const struct guest *g, uint32_t gsi, uint64_t *ioapic, uint32_t *pin)
{
	const struct acpi_info *a = &g->acpi;

	for (uint32_t i = 0; i < a->nioapics; i++) {
		uint64_t b = a->ioapics[i].addr;

		if (!phys_range_ok(b, 0x20) || gsi < a->ioapics[i].gsi_base)
			continue;
		if (gsi - a->ioapics[i].gsi_base < ioapic_pins(b)) {
			*ioapic = b;
			*pin = gsi - a->ioapics[i].gsi_base;
			return 0;
		}
	}
	if (!a->nioapics && gsi < ioapic_pins(IOAPIC_DEFAULT_BASE)) {
		*ioapic = IOAPIC_DEFAULT_BASE;
		*pin = gsi;
		return 0;
	}
	return -ENODEV;
}

void gsi_program(const struct guest *g, const struct gsi_route *r, bool masked)
{
	uint32_t lo = r->vector | (r->level ? RTE_LEVEL : 0) | (r->active_low ? RTE_ACTIVE_LOW : 0);

	/* Masked while the destination changes, so no half-written entry fires. */
	reg_write(r->ioapic, IOAPIC_REDTBL + 2 * r->pin, lo | RTE_MASKED);
	reg_write(r->ioapic, IOAPIC_REDTBL + 2 * r->pin + 1, g->bsp->apic_id << 24);
	if (!masked)
		reg_write(r->ioapic, IOAPIC_REDTBL + 2 * r->pin, lo);
}

int gsi_route(struct guest *g, struct gsi_route *r)
{
	int rc = gsi_lookup(g, r->gsi, &r->ioapic, &r->pin);

	if (rc)
		return rc;
	gsi_program(g, r, false);
	return 0;
}

void gsi_mask(const struct gsi_route *r)
{
	uint32_t lo = reg_read(r->ioapic, IOAPIC_REDTBL + 2 * r->pin);

	reg_write(r->ioapic, IOAPIC_REDTBL + 2 * r->pin, lo | RTE_MASKED);
}

bool gsi_remote_irr(const struct gsi_route *r)
{
	return reg_read(r->ioapic, IOAPIC_REDTBL + 2 * r->pin) & RTE_REMOTE_IRR;
}
