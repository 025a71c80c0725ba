#include "core/boot/cmdline.h"

#include <stdlib.h>
#include <string.h>

int cmdline_init(struct cmdline *c, size_t cap)
{
	*c = (struct cmdline){0};
	if (cap == 0)
		return -EINVAL;
	c->buf = calloc(1, cap);
	if (!c->buf)
		return -ENOMEM;
	c->cap = cap;
	return 0;
}

void cmdline_free(struct cmdline *c)
{
	free(c->buf);
	*c = (struct cmdline){0};
}

int cmdline_append(struct cmdline *c, const char *s)
{
	size_t n, sep, room;

	if (!c->buf || !s)
		return -EINVAL;
	n = strlen(s);
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -EINVAL;
	sep = c->len ? 1 : 0;
	room = c->cap - 1 - c->len;
	if (n > room || sep > room - n)
		return -E2BIG;
	if (sep)
		c->buf[c->len++] = ' ';
	memcpy(c->buf + c->len, s, n + 1);
	c->len += n;
	return 0;
}
