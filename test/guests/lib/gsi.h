/*
 * Routing a GSI (not an ISA IRQ: see ioapic.h for those) on the IOAPIC that serves it, with
 * the trigger mode and polarity the caller knows from _PRT or the MADT, to the BSP.
 */
#ifndef GUEST_GSI_H
#define GUEST_GSI_H

#include "guest.h"

struct gsi_route {
	uint32_t gsi;
	uint8_t vector;
	bool level, active_low;
	uint64_t ioapic; /* filled by gsi_route / gsi_lookup */
	uint32_t pin;
};

/* Which IOAPIC pin serves gsi (MADT, else the PC default IOAPIC): 0 or -ENODEV. */
int gsi_lookup(const struct guest *g, uint32_t gsi, uint64_t *ioapic, uint32_t *pin);
/* Programs r (gsi, vector, level, active_low set by the caller) unmasked; fills ioapic/pin. */
int gsi_route(struct guest *g, struct gsi_route *r);
/* Writes the entry of an already looked-up route, masked or not. */
void gsi_program(const struct guest *g, const struct gsi_route *r, bool masked);
void gsi_mask(const struct gsi_route *r);
/* Remote IRR: a level interrupt was delivered and not yet acknowledged by an EOI. */
bool gsi_remote_irr(const struct gsi_route *r);

#endif
