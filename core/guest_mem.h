/*
 * Guest physical memory: one sealed memfd mapped MAP_SHARED, split into regions around the
 * 32-bit PCI hole. Every translation checks the whole range [gpa, gpa+len) against a single
 * region and fails with -EFAULT otherwise; nothing here ever returns a pointer past a region.
 */
#ifndef CROSVM_CORE_GUEST_MEM_H
#define CROSVM_CORE_GUEST_MEM_H

#include <stdint.h>
#include "core/util.h"

#define GUEST_MEM_MAX_REGIONS 8

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t offset; /* offset in the memfd (and in the host mapping) */
	uint8_t *hva;
};

struct guest_mem {
	int fd;	       /* the memfd; -1 for anonymous memory built by tests */
	uint8_t *base; /* mapping of the whole backing object */
	uint64_t size; /* total bytes of RAM */
	unsigned nr;
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
};

/* Guest RAM of ram_size bytes laid out as on x86_64: below the 32-bit gap, rest above 4 GiB. */
int guest_mem_create(struct guest_mem *m, uint64_t ram_size) MUST_CHECK;
/*
 * Guest RAM with an explicit region list (sorted, non-overlapping, page aligned). Used by the
 * x86 layout above and by unit tests that need odd layouts (e.g. a region end to straddle).
 */
int guest_mem_create_regions(struct guest_mem *m, const struct guest_region *layout,
			     unsigned nr) MUST_CHECK;
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) if the whole range lies in one region; -EFAULT otherwise. */
int guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len, void **hva) MUST_CHECK;
/* Copies to/from guest memory; the range may span adjacent regions only if they are contiguous. */
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len) MUST_CHECK;
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *buf,
		    uint64_t len) MUST_CHECK;
int guest_mem_fill(const struct guest_mem *m, uint64_t gpa, int byte, uint64_t len) MUST_CHECK;
/* Offset in the memfd of [gpa, gpa+len) (one region), e.g. to punch holes for the balloon. */
int guest_mem_fd_offset(const struct guest_mem *m, uint64_t gpa, uint64_t len,
			uint64_t *off) MUST_CHECK;
/* True if [gpa, gpa+len) is RAM in one region. */
bool guest_mem_valid(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* One past the highest guest-physical RAM address. */
uint64_t guest_mem_end(const struct guest_mem *m);
/* RAM below 4 GiB / above 4 GiB (bytes), for CMOS and e820. */
uint64_t guest_mem_below_4g(const struct guest_mem *m);
uint64_t guest_mem_above_4g(const struct guest_mem *m);

#endif
