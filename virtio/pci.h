/*
 * The virtio-pci transport (virtio 1.2, section 4.1), modern devices only: it wraps a virtio
 * device (virtio/virtio.h) into a PCI function with one 64-bit memory BAR laid out as crosvm
 * does:
 *
 *	0x0000 common configuration	0x3000 notifications (multiplier 4, one ioeventfd/queue)
 *	0x1000 ISR status		0x6000 MSI-X table (served by the PCI layer)
 *	0x2000 device configuration	0x7000 MSI-X PBA (served by the PCI layer)
 *
 * The transport owns the common configuration, feature negotiation, the device-status state
 * machine, the queues' setup and the interrupts (MSI-X vectors, or INTx with the ISR when the
 * driver leaves MSI-X disabled). Creation is split so that unit tests can drive a transport
 * without KVM or a PCI root: virtio_pci_transport_create builds the struct device and the
 * PCI description; virtio_pci_create (virtio/virtio.h) also allocates the slot and the
 * interrupts and plugs the result into the VM.
 *
 * Locking: io() runs on vCPU threads and the kicks on the device's event loop; interrupts may
 * be raised from any device thread. The transport never holds its state lock while calling
 * into the device, so a device may raise interrupts from under its own lock.
 */
#ifndef CROSVM_VIRTIO_PCI_H
#define CROSVM_VIRTIO_PCI_H

#include "core/pci.h"
#include "core/util.h"
#include "virtio/virtio.h"

struct device;
struct guest_mem;
struct logger;

/* BAR0 layout. */
#define VIRTIO_PCI_BAR		  0
#define VIRTIO_PCI_BAR_SIZE	  0x8000u
#define VIRTIO_PCI_COMMON_OFF	  0x0000u
#define VIRTIO_PCI_ISR_OFF	  0x1000u
#define VIRTIO_PCI_DEVICE_OFF	  0x2000u
#define VIRTIO_PCI_NOTIFY_OFF	  0x3000u
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x6000u
#define VIRTIO_PCI_MSIX_PBA_OFF	  0x7000u
#define VIRTIO_PCI_REGION_SIZE	  0x1000u /* each of the four virtio areas */
#define VIRTIO_PCI_NOTIFY_MULT	  4u
#define VIRTIO_PCI_VENDOR	  0x1af4
#define VIRTIO_PCI_DEVICE_BASE	  0x1040 /* + virtio device type */
#define VIRTIO_PCI_SUBSYS_BASE	  0x0040 /* + virtio device type */

struct virtio_pci_params {
	const struct virtio_dev_ops *ops;
	void *dev;
	const char *label; /* device name in logs, e.g. "virtio-rng0" */
	const struct guest_mem *mem;
	/* Vector eventfds (nr_vectors of them: the MSI-X table size, 0 for none) and the INTx
	 * pair (-1 if none). */
	const struct pci_irq_fds *irq;
	const struct logger *log;
};

/*
 * Builds the transport for p->dev and fills *desc with its PCI description (IDs, BAR0,
 * capabilities, MSI-X, one ioeventfd per queue). On success the returned device owns p->dev
 * (its destroy calls p->ops->destroy) and the eventfds in *p->irq; on failure nothing is
 * taken and the caller still owns both.
 */
int virtio_pci_transport_create(const struct virtio_pci_params *p, struct device **out,
				struct pci_dev_desc *desc) MUST_CHECK;

#endif
