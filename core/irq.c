#include "core/irq.h"
#include "core/kvm.h"
#include "core/layout.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

int irq_router_init(struct irq_router *r, struct kvm *kvm)
{
	memset(r->msi, 0, sizeof(r->msi));
	r->kvm = kvm;
	r->next_gsi = LAYOUT_GSI_MSI_FIRST;
	return -pthread_mutex_init(&r->lock, NULL);
}

void irq_router_destroy(struct irq_router *r)
{
	pthread_mutex_destroy(&r->lock);
}

/* Rebuilds the full table: KVM's default irqchip routes plus every valid MSI route. */
static int push(struct irq_router *r)
{
	struct kvm_irq_routing_entry *e;
	unsigned n = 0;
	int ret;

	if (!r->kvm)
		return 0;
	e = calloc(LAYOUT_IOAPIC_PINS + 16 + IRQ_MAX_GSI, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (uint32_t pin = 0; pin < LAYOUT_IOAPIC_PINS; pin++) {
		if (pin < 16) {
			/* ISA IRQs reach both the PIC (master/slave) and the IOAPIC, as KVM's
			 * default. */
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = pin,
				.type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = {.irqchip = pin < 8 ? KVM_IRQCHIP_PIC_MASTER
								 : KVM_IRQCHIP_PIC_SLAVE,
					      .pin = pin % 8},
			};
		}
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = pin,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = pin},
		};
	}
	for (uint32_t gsi = LAYOUT_GSI_MSI_FIRST; gsi < r->next_gsi; gsi++) {
		const struct irq_msi_route *m = &r->msi[gsi];

		if (!m->used || !m->valid)
			continue;
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_MSI,
			.u.msi = {.address_lo = (uint32_t)m->addr,
				  .address_hi = (uint32_t)(m->addr >> 32),
				  .data = m->data},
		};
	}
	ret = kvm_set_gsi_routing(r->kvm, e, n);
	free(e);
	return ret;
}

int irq_alloc_msi_gsi(struct irq_router *r, uint32_t *gsi)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (r->next_gsi >= IRQ_MAX_GSI) {
		ret = -ENOSPC;
	} else {
		*gsi = r->next_gsi++;
		r->msi[*gsi] = (struct irq_msi_route){.used = true};
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_msi_route_set(struct irq_router *r, uint32_t gsi, bool valid, uint64_t addr, uint32_t data)
{
	struct irq_msi_route *m;
	int ret;

	if (gsi >= IRQ_MAX_GSI)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	m = &r->msi[gsi];
	if (!m->used) {
		ret = -ENOENT;
		goto out;
	}
	if (m->valid == valid && (!valid || (m->addr == addr && m->data == data))) {
		ret = 0;
		goto out;
	}
	m->valid = valid;
	m->addr = addr;
	m->data = data;
	ret = push(r);
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_eventfd_create(struct kvm *k, uint32_t gsi, int *fd)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int ret;

	if (efd < 0)
		return -errno;
	ret = kvm_irqfd(k, efd, gsi, -1, false);
	if (ret < 0) {
		close(efd);
		return ret;
	}
	*fd = efd;
	return 0;
}

int irq_level_eventfd_create(struct kvm *k, uint32_t gsi, int *fd, int *resample_fd)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int ret;

	if (efd < 0 || rfd < 0) {
		ret = -errno;
		goto err;
	}
	ret = kvm_irqfd(k, efd, gsi, rfd, false);
	if (ret < 0)
		goto err;
	*fd = efd;
	*resample_fd = rfd;
	return 0;
err:
	if (efd >= 0)
		close(efd);
	if (rfd >= 0)
		close(rfd);
	return ret;
}
