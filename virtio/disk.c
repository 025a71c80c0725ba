#include "virtio/disk.h"

#include <string.h>

#include "core/log.h"
#include "virtio/disk_raw.h"
#include "virtio/disk_uring.h"

int disk_open(const struct disk_config *cfg, const struct logger *lg, struct disk **out)
{
	struct disk *raw, *d;
	const char *why = NULL;
	int ret = disk_raw_open(cfg, lg, &raw);

	if (ret)
		return ret;
	if (cfg->engine == DISK_ENGINE_SYNC) {
		*out = raw;
		return 0;
	}
	ret = disk_uring_wrap(raw, lg, &d, &why);
	if (!ret) {
		log_debug(lg, "disk image %s: asynchronous I/O through a restricted io_uring",
			  raw->path);
		*out = d;
		return 0;
	}
	if (cfg->engine == DISK_ENGINE_URING) {
		log_err(lg, "disk image %s: async-executor=uring, but %s: %s", raw->path, why,
			strerror(-ret));
		disk_close(raw);
		return ret;
	}
	/* The one message about the choice, for this disk. */
	log_info(lg, "disk image %s: io_uring unavailable (%s: %s); synchronous I/O", raw->path,
		 why, strerror(-ret));
	*out = raw;
	return 0;
}
