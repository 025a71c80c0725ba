/*
 * pvpanic, QEMU's paravirtual panic notifier, in its two forms (the same register, one
 * byte): a read tells the guest which events the host understands; a write with PANICKED ends
 * the VM with the guest-panic status, CRASH_LOADED (a crash kernel took over) is only logged.
 *
 *  - the PCI function crosvm always has (1b36:0011, crosvm's IDs and class, the register at
 *    offset 0 of a 16-byte 32-bit memory BAR0): Linux's pvpanic-pci driver (5.12 on);
 *  - the ISA port (LAYOUT_PORT_PVPANIC, region 0) QEMU's isa-pvpanic has: Linux's
 *    pvpanic-mmio driver (which takes port I/O too) once ACPI describes it as QEMU0001, and
 *    Windows' and older kernels' drivers, which know only this form. Both stay: a guest with
 *    both drivers reports a panic twice, which ends the VM once.
 */
#ifndef CROSVM_LEGACY_PVPANIC_H
#define CROSVM_LEGACY_PVPANIC_H

#include "core/util.h"

struct device;
struct logger;
struct vm_events;

#define PVPANIC_PANICKED     0x01
#define PVPANIC_CRASH_LOADED 0x02

struct pci_dev_desc;

#define PVPANIC_PCI_VENDOR   0x1b36 /* Red Hat, Inc. (QEMU) */
#define PVPANIC_PCI_DEVICE   0x0011
#define PVPANIC_PCI_BAR_SIZE 0x10

/* ev (the VM's request handle, for the panic exit) must outlive the device. */
int pvpanic_create(const struct vm_events *ev, const struct logger *lg,
		   struct device **out) MUST_CHECK;
/* The PCI form: the device (its BAR0 is region 0) and its PCI description for pci_add_device. */
int pvpanic_pci_create(const struct vm_events *ev, const struct logger *lg, struct device **out,
		       struct pci_dev_desc *desc) MUST_CHECK;

#endif
