/* The e820 map of the crosvm x86_64 layout, derived from the guest's RAM regions. */
#include "core/boot/e820.h"
#include "core/layout.h"

#include <string.h>

struct e820_ctx {
	struct e820_entry *out;
	unsigned max, nr;
};

static int add(struct e820_ctx *c, uint64_t addr, uint64_t size, uint32_t type)
{
	if (!size)
		return 0;
	if (c->nr == c->max)
		return -ENOSPC;
	c->out[c->nr++] = (struct e820_entry){.addr = addr, .size = size, .type = type};
	return 0;
}

/* MMIO windows the guest must never treat as RAM. */
static const struct {
	uint64_t addr, size;
} reserved[] = {
	{LAYOUT_EBDA, LAYOUT_HIGH_MEM_START - LAYOUT_EBDA},
	{LAYOUT_PCIE_ECAM, LAYOUT_PCIE_ECAM_SIZE},
	{LAYOUT_IOAPIC, LAYOUT_4G - LAYOUT_IOAPIC},
};

/* Adds the part of [a, a+len) that lies within [lo, hi) as RAM. */
static int add_clipped(struct e820_ctx *c, uint64_t a, uint64_t len, uint64_t lo, uint64_t hi)
{
	uint64_t s = MAX(a, lo), e = MIN(a + len, hi);

	return e > s ? add(c, s, e - s, E820_RAM) : 0;
}

static void sort(struct e820_entry *e, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		struct e820_entry x = e[i];
		unsigned j = i;

		for (; j > 0 && e[j - 1].addr > x.addr; j--)
			e[j] = e[j - 1];
		e[j] = x;
	}
}

int e820_build(const struct guest_mem *m, struct e820_entry *out, unsigned max, unsigned *nr)
{
	struct e820_ctx c = {.out = out, .max = max};
	int ret;

	for (unsigned i = 0; i < m->nr; i++) {
		const struct guest_region *r = &m->regions[i];

		for (unsigned k = 1; k < ARRAY_SIZE(reserved); k++) {
			if (ranges_overlap(r->gpa, r->size, reserved[k].addr, reserved[k].size))
				return -EINVAL;
		}
		/* Below 1 MiB only conventional memory is RAM; the EBDA/BIOS area is not. */
		ret = add_clipped(&c, r->gpa, r->size, 0, LAYOUT_EBDA);
		if (ret < 0)
			return ret;
		ret = add_clipped(&c, r->gpa, r->size, LAYOUT_HIGH_MEM_START, UINT64_MAX);
		if (ret < 0)
			return ret;
	}
	for (unsigned k = 0; k < ARRAY_SIZE(reserved); k++) {
		ret = add(&c, reserved[k].addr, reserved[k].size, E820_RESERVED);
		if (ret < 0)
			return ret;
	}
	sort(out, c.nr);
	*nr = c.nr;
	return 0;
}
