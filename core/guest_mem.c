#include "core/guest_mem.h"
#include "core/layout.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

static const struct guest_region *find(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (range_wraps(gpa, len))
		return NULL;
	for (unsigned i = 0; i < m->nr; i++) {
		const struct guest_region *r = &m->regions[i];

		if (range_contains(r->gpa, r->size, gpa, len ? len : 1))
			return r;
	}
	return NULL;
}

int guest_mem_create_regions(struct guest_mem *m, const struct guest_region *layout, unsigned nr)
{
	uint64_t total = 0;
	int fd, ret;
	void *p;

	*m = (struct guest_mem){.fd = -1};
	if (nr == 0 || nr > GUEST_MEM_MAX_REGIONS)
		return -EINVAL;
	for (unsigned i = 0; i < nr; i++) {
		const struct guest_region *r = &layout[i];

		if (!r->size || !IS_ALIGNED(r->gpa | r->size, 4096) || range_wraps(r->gpa, r->size))
			return -EINVAL;
		if (i && r->gpa < layout[i - 1].gpa + layout[i - 1].size)
			return -EINVAL;
		if (total + r->size < total)
			return -EOVERFLOW;
		total += r->size;
	}
	fd = memfd_create("crosvm_guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)total) < 0) {
		ret = -errno;
		goto err_close;
	}
	/* The size can never change again: a device process cannot shrink memory under the VM. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		ret = -errno;
		goto err_close;
	}
	p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	/* Guest memory must not appear in core dumps of the VMM. */
	madvise(p, total, MADV_DONTDUMP);
	m->fd = fd;
	m->base = p;
	m->size = total;
	m->nr = nr;
	total = 0;
	for (unsigned i = 0; i < nr; i++) {
		m->regions[i] = layout[i];
		m->regions[i].offset = total;
		m->regions[i].hva = m->base + total;
		total += layout[i].size;
	}
	return 0;
err_close:
	close(fd);
	return ret;
}

int guest_mem_create(struct guest_mem *m, uint64_t ram_size)
{
	struct guest_region layout[2];
	unsigned nr = 0;
	uint64_t low = MIN(ram_size, LAYOUT_MEM_32BIT_GAP);

	*m = (struct guest_mem){.fd = -1};
	if (!ram_size || !IS_ALIGNED(ram_size, 4096))
		return -EINVAL;
	layout[nr++] = (struct guest_region){.gpa = 0, .size = low};
	if (ram_size > low)
		layout[nr++] = (struct guest_region){.gpa = LAYOUT_4G, .size = ram_size - low};
	return guest_mem_create_regions(m, layout, nr);
}

void guest_mem_destroy(struct guest_mem *m)
{
	if (m->base)
		munmap(m->base, m->size);
	close_fd(&m->fd);
	*m = (struct guest_mem){.fd = -1};
}

int guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len, void **hva)
{
	const struct guest_region *r = find(m, gpa, len);

	if (!r)
		return -EFAULT;
	*hva = r->hva + (gpa - r->gpa);
	return 0;
}

bool guest_mem_valid(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	return find(m, gpa, len) != NULL;
}

/* Walks [gpa, gpa+len) piecewise so that a copy may cross contiguous region boundaries. */
static int copy(const struct guest_mem *m, uint64_t gpa, void *buf, const void *src, int byte,
		uint64_t len)
{
	if (range_wraps(gpa, len))
		return -EFAULT;
	while (len) {
		const struct guest_region *r = find(m, gpa, 1);
		uint64_t n;
		uint8_t *p;

		if (!r)
			return -EFAULT;
		n = MIN(len, r->gpa + r->size - gpa);
		p = r->hva + (gpa - r->gpa);
		if (buf)
			memcpy(buf, p, n);
		else if (src)
			memcpy(p, src, n);
		else
			memset(p, byte, n);
		if (buf)
			buf = (uint8_t *)buf + n;
		if (src)
			src = (const uint8_t *)src + n;
		gpa += n;
		len -= n;
	}
	return 0;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len)
{
	return copy(m, gpa, buf, NULL, 0, len);
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len)
{
	return copy(m, gpa, NULL, buf, 0, len);
}

int guest_mem_fill(const struct guest_mem *m, uint64_t gpa, int byte, uint64_t len)
{
	return copy(m, gpa, NULL, NULL, byte, len);
}

int guest_mem_fd_offset(const struct guest_mem *m, uint64_t gpa, uint64_t len, uint64_t *off)
{
	const struct guest_region *r = find(m, gpa, len);

	if (!r)
		return -EFAULT;
	*off = r->offset + (gpa - r->gpa);
	return 0;
}

uint64_t guest_mem_end(const struct guest_mem *m)
{
	if (!m->nr)
		return 0;
	return m->regions[m->nr - 1].gpa + m->regions[m->nr - 1].size;
}

uint64_t guest_mem_below_4g(const struct guest_mem *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < m->nr; i++)
		if (m->regions[i].gpa < LAYOUT_4G)
			n += MIN(m->regions[i].size, LAYOUT_4G - m->regions[i].gpa);
	return n;
}

uint64_t guest_mem_above_4g(const struct guest_mem *m)
{
	return m->size - guest_mem_below_4g(m);
}
