/* The initial ramdisk: read as-is into the highest page-aligned spot the kernel accepts. */
#include "core/boot/loader.h"
#include "core/layout.h"

#include <string.h>
#include <sys/stat.h>

#define INITRD_ALIGN 4096

/* End of the RAM region that holds the kernel, capped at 4 GiB: the initrd goes in there too. */
static uint64_t low_ram_end(const struct guest_mem *m, uint64_t kernel_start)
{
	for (unsigned i = 0; i < m->nr; i++) {
		const struct guest_region *r = &m->regions[i];

		if (range_contains(r->gpa, r->size, kernel_start, 1))
			return MIN(r->gpa + r->size, LAYOUT_4G);
	}
	return 0;
}

int initrd_load(const struct guest_mem *m, int fd, const struct kernel_info *ki, uint64_t *gpa,
		uint64_t *size, const struct logger *lg)
{
	uint64_t top, bottom, len, addr;
	struct stat st;
	void *p;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_err(lg, "initrd: cannot stat the file: %s", strerror(-ret));
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err(lg, "initrd: not a regular file");
		return -EINVAL;
	}
	if (st.st_size == 0) {
		log_err(lg, "initrd: the file is empty");
		return -EINVAL;
	}
	len = (uint64_t)st.st_size;
	/* initrd_addr_max is the last byte the initrd may use, hence the + 1. */
	top = MIN(ki->initrd_addr_max, LAYOUT_4G - 1) + 1;
	top = ALIGN_DOWN(MIN(top, low_ram_end(m, ki->start)), INITRD_ALIGN);
	bottom = ALIGN_UP(ki->end, INITRD_ALIGN);
	if (len > top) {
		log_err(lg,
			"initrd: %llu bytes do not fit below 0x%llx (initrd_addr_max / end of "
			"low memory)",
			(unsigned long long)len, (unsigned long long)top);
		return -EFBIG;
	}
	addr = ALIGN_DOWN(top - len, INITRD_ALIGN);
	if (addr < bottom || !guest_mem_valid(m, addr, len)) {
		log_err(lg,
			"initrd: %llu bytes do not fit between the kernel end 0x%llx and "
			"0x%llx",
			(unsigned long long)len, (unsigned long long)bottom,
			(unsigned long long)top);
		return -ENOSPC;
	}
	ret = guest_mem_ptr(m, addr, len, &p);
	if (ret < 0)
		return ret;
	ret = pread_full(fd, p, len, 0);
	if (ret < 0) {
		log_err(lg, "initrd: cannot read the file: %s", strerror(-ret));
		return ret;
	}
	*gpa = addr;
	*size = len;
	return 0;
}
