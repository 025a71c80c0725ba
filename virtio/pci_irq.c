/*
 * The transport's interrupts (struct virtio_irq): an MSI-X vector per queue and for the
 * configuration, or, while the driver leaves MSI-X disabled, INTx with the ISR saying why and
 * the resample eventfd re-asserting it until the ISR is read.
 */
#include "virtio/pci_internal.h"

#include <linux/virtio_config.h>

#include "core/log.h"
#include "core/util.h"

#define ISR_QUEUE  0x1
#define ISR_CONFIG 0x2

/* Lock held. With MSI-X off the ISR says why and INTx is asserted (level, resampled). */
static void raise_irq_locked(struct vpci *vp, uint16_t vector, uint8_t isr_bit)
{
	int fd;

	if (vp->msix_enabled) {
		if (vector >= vp->irqfds.nr_vectors)
			return; /* VIRTIO_MSI_NO_VECTOR included */
		fd = vp->irqfds.vector_fds[vector];
	} else {
		vp->isr |= isr_bit;
		fd = vp->irqfds.intx_fd;
	}
	/* Only a saturated counter fails, and then an interrupt is pending anyway. */
	if (fd >= 0)
		(void)eventfd_signal(fd);
}

void virtio_pci_irq_set_needs_reset_locked(struct vpci *vp, const char *why)
{
	if (virtio_pci_first_time(vp, ONCE_NEEDS_RESET))
		log_err(vp->log, "%s: device needs reset: %s", vp->dev.name, why);
	vp->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	raise_irq_locked(vp, vp->msix_config, ISR_CONFIG);
}

static struct vpci *irq_vpci(struct virtio_irq *irq)
{
	return container_of(irq, struct vpci, irq);
}

void virtio_irq_queue(struct virtio_irq *irq, unsigned queue)
{
	struct vpci *vp = irq_vpci(irq);

	pthread_mutex_lock(&vp->lock);
	/* No used-buffer notification before DRIVER_OK or after a reset (spec 2.1.2). */
	if (queue < vp->nr_queues && (vp->status & VIRTIO_CONFIG_S_DRIVER_OK))
		raise_irq_locked(vp, vp->q[queue].msix_vector, ISR_QUEUE);
	pthread_mutex_unlock(&vp->lock);
}

int virtio_irq_queue_fd(struct virtio_irq *irq, unsigned queue)
{
	struct vpci *vp = irq_vpci(irq);
	int fd = -1;

	pthread_mutex_lock(&vp->lock);
	if (queue < vp->nr_queues && vp->msix_enabled &&
	    vp->q[queue].msix_vector < vp->irqfds.nr_vectors)
		fd = vp->irqfds.vector_fds[vp->q[queue].msix_vector];
	pthread_mutex_unlock(&vp->lock);
	return fd;
}

void virtio_irq_config(struct virtio_irq *irq)
{
	struct vpci *vp = irq_vpci(irq);

	pthread_mutex_lock(&vp->lock);
	vp->generation++;
	/* A driver not yet running reads the configuration when it starts. */
	if (vp->status & VIRTIO_CONFIG_S_DRIVER_OK)
		raise_irq_locked(vp, vp->msix_config, ISR_CONFIG);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_irq_needs_reset(struct virtio_irq *irq)
{
	struct vpci *vp = irq_vpci(irq);

	pthread_mutex_lock(&vp->lock);
	if ((vp->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(vp->status & VIRTIO_CONFIG_S_NEEDS_RESET))
		virtio_pci_irq_set_needs_reset_locked(vp, "reported by the device");
	pthread_mutex_unlock(&vp->lock);
}

/* Reading the ISR returns it and clears it, which also ends INTx re-assertion. */
void virtio_pci_irq_isr_read(struct vpci *vp, uint32_t off, uint8_t *data)
{
	if (off != 0)
		return;
	pthread_mutex_lock(&vp->lock);
	data[0] = vp->isr;
	vp->isr = 0;
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_irq_on_resample(evutil_socket_t fd, short what, void *arg)
{
	struct vpci *vp = arg;
	uint64_t n;

	if (eventfd_drain(fd, &n) < 0)
		return;
	pthread_mutex_lock(&vp->lock);
	if (!vp->msix_enabled && vp->isr && vp->irqfds.intx_fd >= 0)
		(void)eventfd_signal(vp->irqfds.intx_fd);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_irq_msix_state(void *opaque, bool enabled)
{
	struct vpci *vp = opaque;

	pthread_mutex_lock(&vp->lock);
	vp->msix_enabled = enabled;
	pthread_mutex_unlock(&vp->lock);
}
