/*
 * Choosing how to reach PCI configuration space for a driver: ECAM (from the MCFG entry of
 * segment 0 that decodes bus 0) or the 0xcf8/0xcfc ports. The command-line key
 * pci.access=ecam|ports picks one (default: ECAM when there is one). When both exist, bus 0
 * is read both ways and the result reported as pci_ecam_ports_agree.
 */
#ifndef GUEST_PCI_ACCESS_H
#define GUEST_PCI_ACCESS_H

#include "guest.h"
#include "pci.h"

/* Fills *out. -ENODEV when neither mechanism exists or the one asked for is missing. */
int pci_access_open(struct guest *g, struct pci_cfg *out);
/* Enables memory decoding and bus mastering; sets or clears the INTx disable bit. */
void pci_enable_device(const struct pci_cfg *c, uint8_t dev, uint8_t fn, bool intx_off);

#define PCI_CMD_MASTER	     0x4
#define PCI_CMD_INTX_DISABLE 0x400

#endif
