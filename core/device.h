/*
 * The device model contract. A device is a small object behind an ops table; everything
 * talks to it only through the device_* calls below, so the same device code runs in the
 * main process (--disable-sandbox) or in its own jailed child process. In the latter case
 * the sandbox has put a proxy's ops in the device's place (sandbox/proxy.h), a decorator
 * with the same ops that forwards every call over a socket: nothing here knows about it.
 *
 * Threads: io() runs on vCPU threads (any of them, concurrently); everything else runs on
 * the event loop of the process the device lives in. A device protects its state with its
 * own lock.
 */
#ifndef CROSVM_CORE_DEVICE_H
#define CROSVM_CORE_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

struct event_base;
struct logger;

/* virtio-net with 8 queue pairs on vhost needs about 70. */
#define DEV_MAX_FDS 128

/* A list of file descriptors a device needs after it has been started. */
struct fd_list {
	int fds[DEV_MAX_FDS];
	unsigned nr;
};

/* Appends fd (ignored if negative); -E2BIG when full. */
int fd_list_add(struct fd_list *l, int fd) MUST_CHECK;

/*
 * Control commands the VM gives a device. The control server has turned the request into
 * this typed form once (control/); a device gets and answers fixed-size structures, which
 * cross into a sandboxed device process as they are. No text is parsed past control/.
 */
enum dev_cmd_op {
	DEV_CMD_POWER_BUTTON = 1, /* ACPI PM: press the power button */
	DEV_CMD_SLEEP_BUTTON,	  /* ACPI PM: press the sleep button */
	DEV_CMD_GPE,		  /* ACPI PM: raise general-purpose event `arg` */
	DEV_CMD_BALLOON_TARGET,	  /* virtio-balloon: the target size is `arg` bytes */
	DEV_CMD_BALLOON_STATS,	  /* virtio-balloon: the guest's statistics (reply.stats) */
	DEV_CMD_DISK_RESIZE,	  /* virtio-blk: resize the disk to `arg` bytes */
};

struct dev_cmd {
	uint32_t op; /* enum dev_cmd_op */
	uint32_t pad;
	uint64_t arg;
};

/* The virtio-balloon statistics, indexed by their virtio tag (VIRTIO_BALLOON_S_*). */
#define DEV_BALLOON_NR_STATS 10
struct dev_balloon_stats {
	uint64_t val[DEV_BALLOON_NR_STATS];
	uint32_t valid; /* bit n: the guest reported val[n] */
	uint32_t pad;
	uint64_t actual_bytes; /* the balloon's current size */
};

#define DEV_REPLY_MSG_LEN 256
struct dev_reply {
	int32_t err;			/* 0, or -errno: the command failed */
	char msg[DEV_REPLY_MSG_LEN];	/* with err: why, for people (empty: strerror says it) */
	struct dev_balloon_stats stats; /* DEV_CMD_BALLOON_STATS */
};

/* Completion of a command: exactly once per command; reply is only valid during the call. */
typedef void (*dev_reply_fn)(void *ctx, const struct dev_reply *reply);
/*
 * Answers success; err: 0 or a failure that strerror describes; or failure with err (-errno)
 * and a message (printf-style).
 */
void dev_reply_ok(dev_reply_fn done, void *ctx);
void dev_reply_status(dev_reply_fn done, void *ctx, int err);
void dev_reply_error(dev_reply_fn done, void *ctx, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * How a device's sandboxed process differs from the default jail, which is: an empty root
 * (--pivot-root), no user namespace unless the VMM is unprivileged, no capabilities, 1024 file
 * descriptors. Filled in by dev_ops.jail in the parent, before the process is made; the
 * strings must live as long as the device. Everything is optional (zero: the default).
 */
struct dev_jail {
	const char *root; /* a directory that becomes the process's root (mounts below included) */
	/*
	 * A user namespace with these maps ("inner outer count" lines, as /proc/PID/uid_map), in
	 * which the process is root when the maps have an inner 0.
	 */
	const char *uid_map, *gid_map;
	uint64_t caps;	 /* capabilities kept (bit n: capability n), within that namespace */
	unsigned nofile; /* RLIMIT_NOFILE */
	bool want_proc;	 /* entered() gets a /proc/self/fd of a proc that shows only itself */
	/*
	 * Called in the device's process once its root, namespaces and limits are in place, before
	 * its capabilities go, its seccomp filter is loaded and it starts: proc_self_fd (the
	 * callee's to close) is an O_PATH descriptor of its own /proc/self/fd, or -1.
	 */
	int (*entered)(void *ctx, int proc_self_fd);
	void *ctx;
};

struct dev_ops {
	/*
	 * A guest access to region `region` of the device (the index of one of its port
	 * ranges, or a PCI BAR number) at byte offset `off`. Reads fill data[0..len).
	 * Returns 0, or -errno for an access the device cannot decode (logged by the caller).
	 */
	int (*io)(void *dev, unsigned region, uint64_t off, void *data, uint32_t len,
		  bool is_write);
	/* Attaches the device's fds (ioeventfds, back ends) to the event loop `eb`. Optional. */
	int (*start)(void *dev, struct event_base *eb);
	/* Detaches from the loop and stops any worker; safe without a prior start. Optional. */
	void (*stop)(void *dev);
	/* Frees everything, closes every fd. */
	void (*destroy)(void *dev);
	/* Lists every fd the device uses once started (the sandbox keeps only these). Optional:
	 * a device without one uses no fd. */
	int (*fds)(void *dev, struct fd_list *out);
	/* PCI devices: MSI-X is now enabled (and the function not masked) or not. Optional. */
	void (*msix_state)(void *dev, bool enabled);
	/*
	 * A control command. Returns 0 and calls done exactly once (now or later, on the loop
	 * thread), or -errno (-EOPNOTSUPP for a command it does not know) without calling it.
	 * Optional.
	 */
	int (*command)(void *dev, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx);
	/*
	 * Called in the main process once the device runs in its own process: closes what
	 * only that process may hold (say, a pipe end whose far end must see it close when
	 * that process ends). Optional.
	 */
	void (*forked)(void *dev);
	/* What its sandboxed process needs beyond the default jail (struct dev_jail). Optional. */
	int (*jail)(void *dev, struct dev_jail *out);
};

struct device {
	char name[32];	    /* e.g. "serial0", "virtio-blk1": logs and process label */
	const char *policy; /* seccomp policy name, e.g. "serial_device"; NULL: never sandboxed */
	/*
	 * A host directory the device reaches by path once jailed (an absolute, canonical path,
	 * e.g. where vsock's UNIX sockets live), or NULL: its jail shows that directory alone,
	 * read-only, at the same path. The string outlives the device.
	 */
	const char *jail_dir;
	bool host_network; /* sandboxed, it keeps the VMM's network namespace (sandbox.h) */
	const struct dev_ops *ops;
	void *priv;
	/*
	 * Sandboxed, its process runs SCHED_BATCH: woken by work a vCPU thread just handed it
	 * (a console's bytes), it does not preempt that thread, and serves a burst in one go
	 * when the CPU is free instead of two context switches per byte.
	 */
	bool sched_batch;
};

/* The only way anything calls a device; a missing optional op does nothing. */
int device_io(struct device *d, unsigned region, uint64_t off, void *data, uint32_t len,
	      bool is_write);
/* A bus handler (core/bus.h) for a device's region: ctx is the struct device. */
int device_bus_io(void *ctx, unsigned region, uint64_t off, void *data, uint32_t len,
		  bool is_write);
int device_start(struct device *d, struct event_base *eb) MUST_CHECK;
void device_stop(struct device *d);
void device_destroy(struct device *d);
int device_fds(struct device *d, struct fd_list *out) MUST_CHECK;
void device_msix_state(struct device *d, bool enabled);
void device_forked(struct device *d);
int device_command(struct device *d, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx);
/* Fills *out (zeroed first) with the device's jail needs; a device without any leaves it zero. */
int device_jail(struct device *d, struct dev_jail *out) MUST_CHECK;

#endif
