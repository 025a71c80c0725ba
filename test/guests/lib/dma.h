/*
 * A bump allocator of zeroed, identity-mapped guest RAM for the structures devices read
 * and write (virtqueues, request headers, data buffers). Memory is never freed: a guest
 * allocates what it needs at start and reuses it. The pool checks its range against the
 * e820 map and the guest image, so a buffer never lands on something else.
 */
#ifndef GUEST_DMA_H
#define GUEST_DMA_H

#include "guest.h"

/* The default pool: above the image and its stacks, inside the RAM bootinfo checks. */
#define DMA_POOL_DEFAULT_BASE MiB(4)
#define DMA_POOL_DEFAULT_SIZE MiB(12)

struct dma_pool {
	uint64_t base, next, end;
};

/* -EINVAL when [base, base+size) is not all e820 RAM or overlaps the image. */
int dma_pool_init(struct guest *g, struct dma_pool *p, uint64_t base, uint64_t size);
/*
 * Zeroed memory of size bytes aligned to align (a power of two, at least 8): its physical
 * address (equal to its virtual one) in *phys. -ENOMEM when the pool is exhausted.
 */
int dma_alloc(struct dma_pool *p, uint64_t size, uint64_t align, uint64_t *phys);
/* The same, as a pointer (NULL when exhausted). */
void *dma_zalloc(struct dma_pool *p, uint64_t size, uint64_t align);

#endif
