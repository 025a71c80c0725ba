#include "core/layout.h"
#include "core/guest_mem.h"

void layout_mmio64(const struct guest_mem *m, uint64_t *base, uint64_t *size)
{
	*base = ALIGN_UP(MAX(guest_mem_end(m), LAYOUT_4G), GiB(1));
	*size = LAYOUT_PCI_MMIO64_SIZE;
}
