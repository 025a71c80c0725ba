#include "core/device.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fd_list_add(struct fd_list *l, int fd)
{
	if (fd < 0)
		return 0;
	for (unsigned i = 0; i < l->nr; i++)
		if (l->fds[i] == fd)
			return 0;
	if (l->nr >= DEV_MAX_FDS)
		return -E2BIG;
	l->fds[l->nr++] = fd;
	return 0;
}

int device_io(struct device *d, unsigned region, uint64_t off, void *data, uint32_t len,
	      bool is_write)
{
	return d->ops->io(d->priv, region, off, data, len, is_write);
}

int device_bus_io(void *ctx, unsigned region, uint64_t off, void *data, uint32_t len, bool is_write)
{
	return device_io(ctx, region, off, data, len, is_write);
}

int device_start(struct device *d, struct event_base *eb)
{
	return d->ops->start ? d->ops->start(d->priv, eb) : 0;
}

void device_stop(struct device *d)
{
	if (d->ops->stop)
		d->ops->stop(d->priv);
}

void device_destroy(struct device *d)
{
	if (d->ops->destroy)
		d->ops->destroy(d->priv);
}

int device_fds(struct device *d, struct fd_list *out)
{
	return d->ops->fds ? d->ops->fds(d->priv, out) : 0;
}

void device_msix_state(struct device *d, bool enabled)
{
	if (d->ops->msix_state)
		d->ops->msix_state(d->priv, enabled);
}

void device_forked(struct device *d)
{
	if (d->ops->forked)
		d->ops->forked(d->priv);
}

int device_command(struct device *d, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx)
{
	if (!d->ops->command)
		return -EOPNOTSUPP;
	return d->ops->command(d->priv, cmd, done, done_ctx);
}

int device_jail(struct device *d, struct dev_jail *out)
{
	memset(out, 0, sizeof(*out));
	return d->ops->jail ? d->ops->jail(d->priv, out) : 0;
}

void dev_reply_ok(dev_reply_fn done, void *ctx)
{
	struct dev_reply r;

	memset(&r, 0, sizeof(r));
	done(ctx, &r);
}

void dev_reply_status(dev_reply_fn done, void *ctx, int err)
{
	struct dev_reply r;

	memset(&r, 0, sizeof(r));
	r.err = err;
	done(ctx, &r);
}

void dev_reply_error(dev_reply_fn done, void *ctx, int err, const char *fmt, ...)
{
	struct dev_reply r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.err = err < 0 ? err : -EIO;
	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	done(ctx, &r);
}
