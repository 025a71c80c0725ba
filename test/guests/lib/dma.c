#include "dma.h"
#include "str.h"

int dma_pool_init(struct guest *g, struct dma_pool *p, uint64_t base, uint64_t size)
{
	*p = (struct dma_pool){0};
	if (!size || !phys_range_ok(base, size) ||
	    !bootinfo_range_is(&g->boot, base, size, E820_RAM))
		return -EINVAL;
	if (base < g->image_end && base + size > g->image_start)
		return -EINVAL;
	*p = (struct dma_pool){.base = base, .next = base, .end = base + size};
	return 0;
}

int dma_alloc(struct dma_pool *p, uint64_t size, uint64_t align, uint64_t *phys)
{
	uint64_t a;

	if (align < 8 || (align & (align - 1)) || !size)
		return -EINVAL;
	a = ALIGN_UP(p->next, align);
	if (a < p->next || a > p->end || size > p->end - a)
		return -ENOMEM;
	p->next = a + size;
	memset(phys_to_ptr(a), 0, size);
	*phys = a;
	return 0;
}

void *dma_zalloc(struct dma_pool *p, uint64_t size, uint64_t align)
{
	uint64_t a;

	return dma_alloc(p, size, align, &a) ? NULL : phys_to_ptr(a);
}
