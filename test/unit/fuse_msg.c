#include "test/unit/fuse_msg.h"

#include <string.h>

static size_t append(uint8_t *buf, size_t cap, size_t at, const void *p, size_t n)
{
	if (at > cap || n > cap - at)
		return SIZE_MAX;
	if (n)
		memcpy(buf + at, p, n);
	return at + n;
}

size_t fuse_msg_build(const struct fuse_msg *m, void *out, size_t cap)
{
	struct fuse_in_header h = {.opcode = m->opcode,
				   .unique = m->unique,
				   .nodeid = m->nodeid,
				   .uid = m->uid,
				   .gid = m->gid,
				   .pid = 1};
	uint8_t *buf = out;
	size_t at = sizeof(h);

	if (cap < sizeof(h))
		return 0;
	at = append(buf, cap, at, m->arg, m->arg_len);
	if (m->name && at != SIZE_MAX)
		at = append(buf, cap, at, m->name, strlen(m->name) + 1);
	if (m->name2 && at != SIZE_MAX)
		at = append(buf, cap, at, m->name2, strlen(m->name2) + 1);
	if (at != SIZE_MAX)
		at = append(buf, cap, at, m->data, m->data_len);
	if (at == SIZE_MAX)
		return 0;
	h.len = (uint32_t)at;
	memcpy(buf, &h, sizeof(h));
	return at;
}
