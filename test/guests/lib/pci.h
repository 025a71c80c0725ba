/*
 * PCI configuration space access, through ECAM (the MCFG window) or the legacy config
 * ports 0xcf8/0xcfc, and the helpers the pci guest uses: BAR sizing and the capability list.
 */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include "util.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA	   0xcfc

#define PCI_VENDOR_ID	0x00
#define PCI_COMMAND	0x04
#define PCI_STATUS	0x06
#define PCI_CLASS_REV	0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0	0x10
#define PCI_CAP_PTR	0x34
#define PCI_INTERRUPT	0x3c /* line (byte 0), pin (byte 1) */
#define PCI_STATUS_CAPS 0x10
#define PCI_CMD_IO	0x1
#define PCI_CMD_MEM	0x2
#define PCI_CAP_MAX	48 /* 192 bytes of capability space / 4-byte minimum */

#define PCI_CAP_ID_MSI	  0x05
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_PCIE	  0x10
#define PCI_CAP_ID_MSIX	  0x11

enum pci_access { PCI_ACCESS_PORTS, PCI_ACCESS_ECAM };

struct pci_cfg {
	enum pci_access how;
	uint64_t ecam;	   /* base of bus 0 in the ECAM window */
	uint8_t bus_start; /* first bus the ECAM window decodes */
	uint8_t bus_end;
};

struct pci_bar {
	bool present;
	bool io, is64, prefetch;
	uint64_t addr, size;
};

/* True when something answers the 0xcf8/0xcfc mechanism. */
bool pci_ports_present(void);
uint32_t pci_read32(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off);
void pci_write32(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off,
		 uint32_t v);
/* Sizes BAR index (0..5) with decoding off, then restores it; -EINVAL for a bad index. */
int pci_bar_probe(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn, unsigned index,
		  struct pci_bar *bar);
/*
 * Walks the capability list into ids[]/offs[] (at most max): returns the count, or -ELOOP
 * style -EINVAL when a pointer is malformed or the list does not end.
 */
int pci_caps(const struct pci_cfg *c, uint8_t bus, uint8_t dev, uint8_t fn, uint8_t *ids,
	     uint8_t *offs, unsigned max);

#endif
