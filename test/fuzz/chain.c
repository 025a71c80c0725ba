/* A descriptor chain shaped by the fuzzer's input (chain.h). */
#include "test/fuzz/chain.h"

#include <errno.h>
#include <string.h>

#include "core/util.h"

int fuzz_chain_build(struct virtq_chain *c, unsigned nr_out, unsigned nr_in, uint32_t max_len,
		     uint8_t *arena, size_t arena_len, const uint8_t **p, const uint8_t *end)
{
	size_t used = 0, fill;

	if ((size_t)(end - *p) < 2 * ((size_t)nr_out + nr_in))
		return -EINVAL;
	if ((size_t)nr_out + nr_in > c->iov_cap)
		return -ENOSPC;
	c->nr_out = nr_out;
	c->nr_in = nr_in;
	c->out_bytes = c->in_bytes = 0;
	for (unsigned i = 0; i < nr_out + nr_in; i++, *p += 2) {
		size_t len = get_le(*p, 2) % (max_len + 1);

		/* Empty buffers never reach a device: the queue drops them. */
		if (!len)
			len = 1;
		if (len > arena_len - used)
			return -ENOSPC;
		c->iov[i] = (struct iovec){.iov_base = arena + used, .iov_len = len};
		used += len;
		if (i < nr_out)
			c->out_bytes += (uint32_t)len;
		else
			c->in_bytes += (uint32_t)len;
	}
	fill = MIN((size_t)(end - *p), (size_t)c->out_bytes);
	memcpy(arena, *p, fill);
	*p += fill;
	return 0;
}
