/*
 * The MSI-X capability: where the table is (a BAR the caller has already sized and checked)
 * and programming its entries for fixed delivery of a vector to one LAPIC.
 */
#ifndef GUEST_PCI_MSIX_H
#define GUEST_PCI_MSIX_H

#include "pci.h"

#define MSIX_ENTRY_SIZE	    16
#define MSIX_MAX_ENTRIES    2048
#define MSI_ADDRESS_BASE    0xfee00000u
#define MSIX_CTRL_ENABLE    (1u << 15)
#define MSIX_CTRL_FUNC_MASK (1u << 14)

struct pci_msix {
	uint8_t cap;   /* config offset of the capability; 0 when the function has none */
	uint16_t nvec; /* table size */
	uint8_t table_bar, pba_bar;
	uint64_t table; /* MMIO address of entry 0 */
	uint64_t pba;
};

/*
 * Reads the capability at cap_off and locates table and PBA in bars[]. -EINVAL when either
 * lies outside its BAR or the BAR is not a usable memory BAR.
 */
int pci_msix_init(const struct pci_cfg *c, uint8_t dev, uint8_t fn, uint8_t cap_off,
		  const struct pci_bar bars[6], struct pci_msix *m);
/* Entry -> message to apic_id with vector, masked or not. -EINVAL for a bad entry. */
int pci_msix_set(const struct pci_msix *m, uint16_t entry, uint32_t apic_id, uint8_t vector,
		 bool masked);
int pci_msix_mask(const struct pci_msix *m, uint16_t entry, bool masked);
/* Sets MSI-X enable (function mask off) or clears it. */
void pci_msix_enable(const struct pci_cfg *c, uint8_t dev, uint8_t fn, const struct pci_msix *m,
		     bool on);
bool pci_msix_pending(const struct pci_msix *m, uint16_t entry);

#endif
