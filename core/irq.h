/*
 * GSI allocation and the KVM routing table. KVM_SET_GSI_ROUTING replaces the whole table, so
 * this module keeps all of it: the default irqchip routes for pins 0..23 plus one MSI route
 * per allocated GSI. Used from vCPU threads (MSI-X table writes) and the main loop.
 */
#ifndef CROSVM_CORE_IRQ_H
#define CROSVM_CORE_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct kvm;

#define IRQ_MAX_GSI 1024

struct irq_msi_route {
	bool used;  /* allocated */
	bool valid; /* has an address/data programmed */
	uint64_t addr;
	uint32_t data;
};

struct irq_router {
	pthread_mutex_t lock;
	struct kvm *kvm; /* NULL in unit tests: the table is kept but not pushed */
	struct irq_msi_route msi[IRQ_MAX_GSI];
	uint32_t next_gsi;
};

int irq_router_init(struct irq_router *r, struct kvm *kvm) MUST_CHECK;
void irq_router_destroy(struct irq_router *r);
/* Allocates a GSI for an MSI route (no route until irq_msi_route_set). */
int irq_alloc_msi_gsi(struct irq_router *r, uint32_t *gsi) MUST_CHECK;
/* Sets (valid) or clears (!valid) the MSI route of gsi and pushes the table to KVM. */
int irq_msi_route_set(struct irq_router *r, uint32_t gsi, bool valid, uint64_t addr, uint32_t data);

/* An eventfd wired to a GSI with KVM_IRQFD (edge: each write is one pulse). */
int irq_eventfd_create(struct kvm *k, uint32_t gsi, int *fd) MUST_CHECK;
/* Level-triggered: an eventfd plus a resample eventfd (KVM_IRQFD_FLAG_RESAMPLE). */
int irq_level_eventfd_create(struct kvm *k, uint32_t gsi, int *fd, int *resample_fd) MUST_CHECK;

#endif
