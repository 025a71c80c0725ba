#include "core/bus.h"

#include <stdlib.h>
#include <string.h>

int bus_init(struct bus *b, const char *name)
{
	*b = (struct bus){.name = name};
	return -pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	pthread_rwlock_destroy(&b->lock);
	free(b->ranges);
	b->ranges = NULL;
	b->nr = b->cap = 0;
}

/* Index of the first range whose last byte is at or above addr (binary search). */
static size_t lower_bound(const struct bus *b, uint64_t addr)
{
	size_t lo = 0, hi = b->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];

		if (r->base + (r->len - 1) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_handler_fn fn, void *ctx,
		 unsigned region, const char *name)
{
	size_t i;
	int ret = 0;

	if (!len || range_wraps(base, len) || !fn)
		return -EINVAL;
	pthread_rwlock_wrlock(&b->lock);
	i = lower_bound(b, base);
	if (i < b->nr && ranges_overlap(b->ranges[i].base, b->ranges[i].len, base, len)) {
		ret = -EEXIST;
		goto out;
	}
	if (b->nr == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *n = realloc(b->ranges, cap * sizeof(*n));

		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		b->ranges = n;
		b->cap = cap;
	}
	memmove(&b->ranges[i + 1], &b->ranges[i], (b->nr - i) * sizeof(b->ranges[0]));
	b->ranges[i] = (struct bus_range){base, len, fn, ctx, region, name};
	b->nr++;
out:
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_unregister(struct bus *b, uint64_t base, void *ctx)
{
	int ret = -ENOENT;
	size_t i;

	pthread_rwlock_wrlock(&b->lock);
	i = lower_bound(b, base);
	if (i < b->nr && b->ranges[i].base == base && b->ranges[i].ctx == ctx) {
		memmove(&b->ranges[i], &b->ranges[i + 1], (b->nr - i - 1) * sizeof(b->ranges[0]));
		b->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_lookup(struct bus *b, uint64_t addr, struct bus_range *out)
{
	int ret = -ENOENT;
	size_t i;

	pthread_rwlock_rdlock(&b->lock);
	i = lower_bound(b, addr);
	if (i < b->nr && b->ranges[i].base <= addr) {
		*out = b->ranges[i];
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_access(struct bus *b, uint64_t addr, void *data, uint32_t len, bool is_write)
{
	struct bus_range r;

	if (!len || range_wraps(addr, len))
		return -EINVAL;
	if (bus_lookup(b, addr, &r) < 0)
		return -ENOENT;
	if (!range_contains(r.base, r.len, addr, len))
		return -ENOENT;
	return r.fn(r.ctx, r.region, addr - r.base, data, len, is_write);
}
