#include "core/iov.h"

#include <string.h>

void iov_cursor_init(struct iov_cursor *cur, const struct iovec *iov, unsigned nr)
{
	size_t total = 0;

	for (unsigned i = 0; i < nr; i++) {
		/* Saturate: a cursor can only ever move what fits in size_t anyway. */
		if (total + iov[i].iov_len < total)
			total = SIZE_MAX;
		else
			total += iov[i].iov_len;
	}
	*cur = (struct iov_cursor){.iov = iov, .nr = nr, .remaining = total};
}

size_t iov_remaining(const struct iov_cursor *cur)
{
	return cur->remaining;
}

size_t iov_consumed(const struct iov_cursor *cur)
{
	return cur->consumed;
}

/*
 * Moves len bytes (the caller checked they remain): each piece is handed to copy (NULL:
 * just advance) with its host pointer and the byte offset of the piece within the move.
 */
static void advance(struct iov_cursor *cur, size_t len,
		    void (*copy)(void *ctx, uint8_t *p, size_t done, size_t n), void *ctx)
{
	size_t done = 0;

	cur->remaining -= len;
	cur->consumed += len;
	while (done < len) {
		size_t n = MIN(cur->iov->iov_len - cur->off, len - done);

		if (copy && n)
			copy(ctx, (uint8_t *)cur->iov->iov_base + cur->off, done, n);
		done += n;
		cur->off += n;
		if (cur->off == cur->iov->iov_len) {
			cur->iov++;
			cur->nr--;
			cur->off = 0;
		}
	}
}

static void copy_out(void *ctx, uint8_t *p, size_t done, size_t n)
{
	memcpy((uint8_t *)ctx + done, p, n);
}

static void copy_in(void *ctx, uint8_t *p, size_t done, size_t n)
{
	memcpy(p, (const uint8_t *)ctx + done, n);
}

static void zero(void *ctx, uint8_t *p, size_t done, size_t n)
{
	memset(p, 0, n);
}

int iov_read(struct iov_cursor *cur, void *buf, size_t len)
{
	if (len > cur->remaining)
		return -EMSGSIZE;
	advance(cur, len, copy_out, buf);
	return 0;
}

int iov_write(struct iov_cursor *cur, const void *buf, size_t len)
{
	if (len > cur->remaining)
		return -EMSGSIZE;
	advance(cur, len, copy_in, (void *)buf);
	return 0;
}

int iov_skip(struct iov_cursor *cur, size_t len)
{
	if (len > cur->remaining)
		return -EMSGSIZE;
	advance(cur, len, NULL, NULL);
	return 0;
}

int iov_zero(struct iov_cursor *cur, size_t len)
{
	if (len > cur->remaining)
		return -EMSGSIZE;
	advance(cur, len, zero, NULL);
	return 0;
}

struct take_ctx {
	struct iovec *out;
	unsigned nr;
};

static void take_one(void *ctx, uint8_t *p, size_t done, size_t n)
{
	struct take_ctx *t = ctx;

	t->out[t->nr++] = (struct iovec){.iov_base = p, .iov_len = n};
}

int iov_take(struct iov_cursor *cur, size_t len, struct iovec *out, unsigned max, unsigned *nr)
{
	struct take_ctx t = {.out = out};
	const struct iovec *v = cur->iov;
	size_t off = cur->off, left = len;
	unsigned need = 0;

	if (len > cur->remaining)
		return -EMSGSIZE;
	/* Count first so that running out of room moves nothing. */
	for (; left; v++, off = 0) {
		size_t n = MIN(v->iov_len - off, left);

		if (n)
			need++;
		left -= n;
	}
	if (need > max)
		return -E2BIG;
	advance(cur, len, take_one, &t);
	*nr = t.nr;
	return 0;
}

int iov_split(struct iov_cursor *cur, size_t len, struct iov_cursor *tail)
{
	struct iov_cursor t = *cur;

	if (len > cur->remaining)
		return -EMSGSIZE;
	advance(&t, len, NULL, NULL);
	t.consumed = 0;
	*tail = t;
	cur->remaining = len;
	return 0;
}
