#include "core/msix.h"

#include <poll.h>
#include <string.h>

#define MSI_ADDR_MASK 0xfff00000u
#define MSI_ADDR_BASE 0xfee00000u

void msix_init(struct msix *m, unsigned nr, const int *fds, const uint32_t *gsis,
	       const struct msix_ops *ops, void *ctx)
{
	memset(m, 0, sizeof(*m));
	m->nr = MIN(nr, (unsigned)PCI_MAX_VECTORS);
	m->ops = ops;
	m->ctx = ctx;
	for (unsigned i = 0; i < m->nr; i++) {
		/* Every vector starts masked (PCI spec: the mask bit resets to 1). */
		m->vec[i].ctrl = MSIX_CTRL_MASKBIT;
		m->vec[i].fd = fds[i];
		m->vec[i].gsi = gsis[i];
	}
}

uint32_t msix_table_size(const struct msix *m)
{
	return m->nr * MSIX_ENTRY_SIZE;
}

uint32_t msix_pba_size(const struct msix *m)
{
	return ((m->nr + 63) / 64) * 8;
}

static bool valid_addr(const struct msix_vector *v)
{
	return v->addr_hi == 0 && (v->addr_lo & MSI_ADDR_MASK) == MSI_ADDR_BASE;
}

/* Brings KVM in line with the vector's state: route first, then attach or detach. */
static void sync_vector(struct msix *m, struct msix_vector *v, bool route_changed)
{
	bool want = m->enabled && !m->masked && !(v->ctrl & MSIX_CTRL_MASKBIT) && valid_addr(v);

	if (route_changed || want)
		m->ops->route(m->ctx, v->gsi, valid_addr(v),
			      ((uint64_t)v->addr_hi << 32) | v->addr_lo, v->data);
	if (want != v->attached && m->ops->attach(m->ctx, v->fd, v->gsi, want) == 0)
		v->attached = want;
}

void msix_set_control(struct msix *m, bool enabled, bool masked)
{
	if (m->enabled == enabled && m->masked == masked)
		return;
	m->enabled = enabled;
	m->masked = masked;
	for (unsigned i = 0; i < m->nr; i++)
		sync_vector(m, &m->vec[i], false);
}

static uint32_t *field(struct msix_vector *v, unsigned dword)
{
	switch (dword) {
	case 0:
		return &v->addr_lo;
	case 1:
		return &v->addr_hi;
	case 2:
		return &v->data;
	default:
		return &v->ctrl;
	}
}

/* One aligned dword of the table. */
static void table_dword(struct msix *m, uint64_t off, uint32_t *val, bool is_write)
{
	struct msix_vector *v = &m->vec[off / MSIX_ENTRY_SIZE];
	unsigned dw = (unsigned)(off % MSIX_ENTRY_SIZE) / 4;
	uint32_t *f = field(v, dw);

	if (!is_write) {
		*val = *f;
		return;
	}
	if (dw == 3) {
		/* Only the mask bit is writable in vector control. */
		v->ctrl = *val & MSIX_CTRL_MASKBIT;
		sync_vector(m, v, false);
	} else if (*f != *val) {
		*f = *val;
		sync_vector(m, v, true);
	}
}

int msix_table_access(struct msix *m, uint64_t off, void *data, uint32_t len, bool is_write)
{
	uint8_t *p = data;

	if (len != 4 && len != 8) {
		/* The spec only allows dword and qword accesses; be lenient on reads. */
		if (!is_write)
			memset(data, 0, len);
		return 0;
	}
	if (off % 4 || off > msix_table_size(m) || len > msix_table_size(m) - off) {
		if (!is_write)
			memset(data, 0, len);
		return 0;
	}
	for (uint32_t i = 0; i < len; i += 4) {
		uint32_t v;

		if (is_write)
			memcpy(&v, p + i, 4);
		table_dword(m, off + i, &v, is_write);
		if (!is_write)
			memcpy(p + i, &v, 4);
	}
	return 0;
}

/* A detached vector is pending when its eventfd holds an undelivered interrupt. */
static bool pending(const struct msix_vector *v)
{
	struct pollfd pfd = {.fd = v->fd, .events = POLLIN};

	if (v->attached || v->fd < 0)
		return false;
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

int msix_pba_access(struct msix *m, uint64_t off, void *data, uint32_t len, bool is_write)
{
	uint8_t *p = data;

	if (is_write)
		return 0; /* the PBA is read-only */
	if (off > msix_pba_size(m) || len > msix_pba_size(m) - off) {
		memset(data, 0, len);
		return 0;
	}
	for (uint32_t i = 0; i < len; i++) {
		uint8_t b = 0;

		for (unsigned bit = 0; bit < 8; bit++) {
			uint64_t vec = (off + i) * 8 + bit;

			if (vec < m->nr && pending(&m->vec[vec]))
				b |= (uint8_t)(1u << bit);
		}
		p[i] = b;
	}
	return 0;
}
