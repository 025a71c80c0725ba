/*
 * Legacy PCI interrupts (INTx) through the IOAPIC: level triggered, active low, to the BSP.
 * The GSI of a device's pin comes from a static _PRT package in the DSDT (as crosvm writes
 * it). Without one (QEMU's q35 computes _PRT in a method over link devices), every IOAPIC
 * pin at GSI 16..23 is routed until the device claims one of them: its first interrupt
 * tells the GSI, and the other pins are masked again.
 *
 * A device owns PCI_INTX_VECTORS vectors and GSI g always arrives on vec_base + (g & 7): the
 * vector of a pin never changes, so an interrupt still in flight when the pin is masked or
 * routed again lands on the right handler and its EOI clears the right Remote IRR.
 */
#ifndef GUEST_PCI_INTX_H
#define GUEST_PCI_INTX_H

#include "gsi.h"

#define PCI_INTX_VECTORS 8
#define PCI_GSI_FIRST	 16 /* PC convention: PCI INTx lines start above the ISA IRQs */
#define PCI_GSI_COUNT	 8  /* candidates when probing: GSI 16..23 */

/* Reads and acknowledges the device's interrupt status: true when it was interrupting. */
typedef bool (*pci_intx_claim_fn)(void *arg);

struct pci_intx;

struct pci_intx_pin {
	struct pci_intx *x;
	struct gsi_route r;
};

struct pci_intx {
	struct guest *g;
	pci_intx_claim_fn claim;
	void *arg;
	struct pci_intx_pin pins[PCI_GSI_COUNT];
	uint32_t npins;
	volatile int32_t gsi; /* -1 while probing and nothing claimed yet */
	bool from_prt;
	volatile uint32_t hits;	  /* interrupts the device claimed */
	volatile uint32_t strays; /* interrupts nobody claimed (e.g. a level re-delivery) */
};

/* GSI of pin (1 = INTA .. 4 = INTD) of device dev on bus 0 from a static _PRT: 0 or -ENOENT. */
int pci_intx_prt_gsi(const struct guest *g, uint8_t dev, uint8_t pin, uint32_t *gsi);
/*
 * Routes the device's INTx on vectors vec_base..+7: the _PRT GSI, else known_gsi when >= 0
 * (what an earlier probe found), else every candidate. Handlers stay installed after
 * teardown. -ENODEV when no IOAPIC pin can be used, -EINVAL for a bad pin number.
 */
int pci_intx_setup(struct guest *g, struct pci_intx *x, uint8_t dev, uint8_t pin, uint8_t vec_base,
		   int32_t known_gsi, pci_intx_claim_fn claim, void *arg);
/* Masks the pins. */
void pci_intx_teardown(struct pci_intx *x);

#endif
