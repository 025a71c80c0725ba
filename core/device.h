/*
 * The device model contract. A device is a small object behind an ops table; the VM core
 * and the sandbox only ever talk to it through these calls, so the same device code runs
 * in the main process (--disable-sandbox) or in its own jailed child process, where the
 * parent keeps a proxy (sandbox/proxy.c) that forwards every call over a socket.
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
#include <sys/types.h>
#include "core/util.h"

struct event_base;
struct logger;
struct proxy;

#define DEV_MAX_FDS 64

/* A list of file descriptors a device needs after it has been started. */
struct fd_list {
	int fds[DEV_MAX_FDS];
	unsigned nr;
};

/* Appends fd (ignored if negative); -E2BIG when full. */
int fd_list_add(struct fd_list *l, int fd) MUST_CHECK;

/*
 * Completion of an asynchronous control command. `reply` is a JSON object text such as
 * {"ok":true} or {"ok":false,"error":"..."}; it is only valid during the call.
 */
typedef void (*dev_reply_fn)(void *ctx, const char *reply);

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
	/* A control command (JSON object text). Must call done exactly once. Optional. */
	int (*command)(void *dev, const char *req, dev_reply_fn done, void *done_ctx);
};

struct device {
	char name[32];	    /* e.g. "serial0", "virtio-blk1": logs and process label */
	const char *policy; /* seccomp policy name, e.g. "serial_device"; NULL: never sandboxed */
	const struct dev_ops *ops;
	void *priv;
	struct proxy *proxy; /* non-NULL when the device runs in a child process */
	pid_t pid;	     /* that child's pid, or 0 */
};

/*
 * The only way anything calls a device: these go to the proxy when the device runs in a
 * child, else to the device itself, and treat a missing optional op as doing nothing.
 */
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
int device_command(struct device *d, const char *req, dev_reply_fn done, void *done_ctx);

#endif
