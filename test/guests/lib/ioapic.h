/*
 * IOAPIC redirection entries. Which IOAPIC serves a GSI and the override of an ISA IRQ come
 * from the MADT (acpi.h).
 */
#ifndef GUEST_IOAPIC_H
#define GUEST_IOAPIC_H

#include "guest.h"

#define IOAPIC_DEFAULT_BASE 0xfec00000ULL

struct ioapic_route {
	uint64_t base; /* IOAPIC MMIO base */
	uint32_t pin;  /* pin on that IOAPIC */
	uint32_t gsi;
	bool level, active_low;
};

/*
 * Routes ISA IRQ irq (honouring an interrupt source override) to vector on the CPU with
 * dest_apic, fixed delivery, physical destination, unmasked. Fills *out when non-NULL.
 * -ENODEV when no IOAPIC serves the GSI.
 */
int ioapic_route_isa(struct guest *g, uint8_t irq, uint8_t vector, uint32_t dest_apic,
		     struct ioapic_route *out);
int ioapic_mask(const struct ioapic_route *r);
/* Number of redirection entries of the IOAPIC at base. */
uint32_t ioapic_pins(uint64_t base);
uint64_t ioapic_read_entry(uint64_t base, uint32_t pin);

#endif
