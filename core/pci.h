/*
 * PCI: one host bridge (bus 0) reached through ports 0xcf8/0xcfc and PCIe ECAM, and the
 * generic part of every PCI function. The VMM's main process always owns this part: the
 * standard config header, BAR placement and decoding, the MSI-X capability with its table
 * and PBA, and the capability chain. A device (which may live in a sandboxed child) only
 * sees accesses to its BARs (device_io region = BAR number) and reads/writes of its own
 * capabilities that it declared writable; it raises interrupts by writing eventfds that
 * this layer wires to KVM.
 *
 * MSI-X masking is done on the KVM side: a masked vector's irqfd is detached from its GSI,
 * so writes from the device accumulate in the eventfd (the pending bit, visible in the PBA)
 * and are delivered by KVM when the irqfd is attached again on unmask.
 */
#ifndef CROSVM_CORE_PCI_H
#define CROSVM_CORE_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct bus;
struct device;
struct guest_mem;
struct irq_router;
struct kvm;
struct logger;
struct pci_root;
struct vm_events;

#define PCI_MAX_SLOTS	 32
#define PCI_CFG_SIZE	 256
#define PCI_NUM_BARS	 6
#define PCI_MAX_VECTORS	 64
#define PCI_MAX_IOEVENTS 32
#define PCI_MAX_CAPS	 8

struct pci_bar_desc {
	uint64_t size; /* 0: unused; else a power of two >= 16 */
	bool mem64;    /* 64-bit memory BAR (placed below 4 GiB while there is room) */
	bool prefetch;
};

/* A device-supplied capability: copied into config space and linked by this layer. */
struct pci_cap_desc {
	uint8_t id;	  /* e.g. 0x09 vendor specific */
	uint8_t len;	  /* total length including the id/next bytes */
	uint8_t body[64]; /* bytes from offset 2 (after id and next) */
	/* A config-space window onto BAR space (virtio's VIRTIO_PCI_CAP_PCI_CFG): the
	 * bar/offset/length fields at body offsets window_bar/.. are writable, and accesses
	 * to the 4-byte data field go to that BAR through the device. */
	bool window;
};

/* An ioeventfd on a BAR: KVM signals fd for guest writes of `len` bytes at bar+off. */
struct pci_ioevent_desc {
	uint8_t bar;
	uint64_t off;
	uint32_t len;
	bool datamatch;
	uint64_t data;
	int fd;
};

struct pci_dev_desc {
	uint16_t vendor_id, device_id, subsys_vendor_id, subsys_id;
	uint8_t revision, class_code, subclass, prog_if;
	struct pci_bar_desc bars[PCI_NUM_BARS];
	struct pci_cap_desc caps[PCI_MAX_CAPS];
	unsigned nr_caps;
	/* MSI-X: 0 vectors means none. Table and PBA live in BAR msix_bar. */
	unsigned msix_vectors;
	uint8_t msix_bar;
	uint32_t msix_table_off, msix_pba_off;
	bool intx; /* uses INTA# */
	struct pci_ioevent_desc ioevents[PCI_MAX_IOEVENTS];
	unsigned nr_ioevents;
};

/* Interrupt eventfds handed to a device (it writes them; this layer wires them to KVM). */
struct pci_irq_fds {
	int vector_fds[PCI_MAX_VECTORS];
	uint32_t vector_gsis[PCI_MAX_VECTORS]; /* for the PCI layer: the GSI of each vector */
	unsigned nr_vectors;
	int intx_fd;	      /* level: assert by writing; KVM deasserts at EOI... */
	int intx_resample_fd; /* ...and signals this, so the device re-asserts if still pending */
	uint32_t intx_gsi;
};

/* What the PCI root works with: the buses it claims ranges on, KVM, the routing table. */
struct pci_root_params {
	struct bus *pio, *mmio;
	struct kvm *kvm;
	struct irq_router *irq;
	const struct guest_mem *mem; /* where the 64-bit window starts */
	const struct vm_events *ev;  /* 0xcf9 resets the VM */
	const struct logger *log;
};

int pci_root_create(const struct pci_root_params *p, struct pci_root **out) MUST_CHECK;
void pci_root_destroy(struct pci_root *root);
/* The next free slot (1..31; slot 0 is the host bridge), for INTx pin routing. */
int pci_next_slot(struct pci_root *root, unsigned *slot) MUST_CHECK;
/* Creates the interrupt eventfds (and GSIs) a device will use, before the device exists. */
int pci_alloc_irqs(struct pci_root *root, unsigned slot, unsigned nr_vectors, bool intx,
		   struct pci_irq_fds *fds) MUST_CHECK;
/* Plugs dev in at slot with the given description; BARs are allocated here. The fds in
 * desc->ioevents and irq stay owned by the device (closed by it). */
int pci_add_device(struct pci_root *root, unsigned slot, struct device *dev,
		   const struct pci_dev_desc *desc, const struct pci_irq_fds *irq) MUST_CHECK;

/* INTx routing used by the ACPI _PRT: slot/pin (0 = INTA) to GSI. */
uint32_t pci_intx_gsi(unsigned slot, unsigned pin);

/* Config space access as the ports and ECAM see it (exposed for unit tests). */
int pci_config_access(struct pci_root *root, unsigned bus, unsigned slot, unsigned fn, uint32_t reg,
		      void *data, uint32_t len, bool is_write);

#endif
