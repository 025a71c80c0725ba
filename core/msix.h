/*
 * MSI-X table and PBA emulation for one PCI function. KVM does the delivery: each vector is
 * a GSI with an MSI route and an irqfd the device writes. A vector is "attached" (its irqfd
 * bound to its GSI) only while MSI-X is enabled, the function is not masked, the vector is
 * not masked and its address is a valid x86 MSI address; otherwise the device's writes pile
 * up in the eventfd and show as the pending bit, and KVM delivers them when the irqfd is
 * attached again. The KVM side is behind two callbacks so this logic is unit-testable.
 * Not thread-safe: the PCI layer calls it under the function's lock.
 */
#ifndef CROSVM_CORE_MSIX_H
#define CROSVM_CORE_MSIX_H

#include <stdbool.h>
#include <stdint.h>
#include "core/pci.h"

#define MSIX_ENTRY_SIZE	  16
#define MSIX_CTRL_MASKBIT 1u

struct msix_ops {
	int (*route)(void *ctx, uint32_t gsi, bool valid, uint64_t addr, uint32_t data);
	int (*attach)(void *ctx, int fd, uint32_t gsi, bool attach);
};

struct msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl;
	uint32_t gsi;
	int fd;
	bool attached;
};

struct msix {
	unsigned nr;
	struct msix_vector vec[PCI_MAX_VECTORS];
	bool enabled;
	bool masked; /* function mask */
	const struct msix_ops *ops;
	void *ctx;
};

void msix_init(struct msix *m, unsigned nr, const int *fds, const uint32_t *gsis,
	       const struct msix_ops *ops, void *ctx);
/* Accesses inside the table (off < nr * 16) and the PBA; out-of-range reads give 0. */
int msix_table_access(struct msix *m, uint64_t off, void *data, uint32_t len, bool is_write);
int msix_pba_access(struct msix *m, uint64_t off, void *data, uint32_t len, bool is_write);
/* Message control register changes (enable bit 15, function mask bit 14). */
void msix_set_control(struct msix *m, bool enabled, bool masked);
uint32_t msix_table_size(const struct msix *m);
uint32_t msix_pba_size(const struct msix *m);

#endif
