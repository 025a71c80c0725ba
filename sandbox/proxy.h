/*
 * The device proxy: what stands in the main process for a device that runs in a sandboxed
 * child. Two SOCK_SEQPACKET sockets connect them:
 *   - the I/O socket carries guest accesses from vCPU threads: a read waits for its reply,
 *     a write is posted (ordering is kept because the child serves the socket in order);
 *   - the control socket carries asynchronous control commands and their replies, and the
 *     child's last words when seccomp stops it (the syscall number), read by the main loop.
 */
#ifndef CROSVM_SANDBOX_PROXY_H
#define CROSVM_SANDBOX_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/device.h"

struct event_base;
struct event;
struct logger;

#define PROXY_MAX_PENDING 16

enum proxy_op {
	PROXY_IO_READ = 1,
	PROXY_IO_WRITE,
	PROXY_MSIX_STATE,
	PROXY_READY,  /* child -> parent: jailed and serving */
	PROXY_FAILED, /* child -> parent: could not start (val = errno) */
};

struct proxy_msg {
	uint32_t op;
	uint32_t region;
	uint64_t off;
	uint32_t len;
	int32_t val;
	uint8_t data[8];
};

/* Control socket messages, one fixed-size structure each. */
enum proxy_ctl_kind {
	PROXY_CTL_CMD = 1, /* parent -> child: a command (id, cmd) */
	PROXY_CTL_REPLY,   /* child -> parent: the reply to command id */
	PROXY_CTL_SIGSYS,  /* child -> parent: seccomp refused syscall sysno */
};

struct proxy_ctl {
	uint32_t kind;
	uint32_t id;
	union {
		struct dev_cmd cmd;
		struct dev_reply reply;
		int32_t sysno;
	} u;
};

struct proxy_pending {
	uint32_t id;
	dev_reply_fn done;
	void *ctx;
};

struct proxy {
	struct device *dev;
	int io_sock;
	int ctl_sock;
	pthread_mutex_t lock;
	const atomic_bool *cancel; /* the VM is stopping: give up on interrupted reads */
	const struct logger *log;
	struct event *ctl_ev;
	uint32_t next_id;
	struct proxy_pending pending[PROXY_MAX_PENDING];
	int sigsys_nr; /* syscall that made seccomp stop the child, -1 if none */
	bool dead;
};

/* Parent side. */
int proxy_init(struct proxy *p, struct device *dev, int io_sock, int ctl_sock,
	       const atomic_bool *cancel, const struct logger *lg) MUST_CHECK;
/* Watches the control socket on the main loop. */
int proxy_start(struct proxy *p, struct event_base *eb) MUST_CHECK;
/* Reads whatever the child left on the control socket (e.g. its SIGSYS report). */
void proxy_drain(struct proxy *p);
void proxy_destroy(struct proxy *p);
int proxy_io(struct proxy *p, unsigned region, uint64_t off, void *data, uint32_t len,
	     bool is_write);
void proxy_msix_state(struct proxy *p, bool enabled);
int proxy_command(struct proxy *p, const struct dev_cmd *cmd, dev_reply_fn done, void *done_ctx);

/*
 * Child side: serves both sockets on eb until the parent closes the I/O socket. `ready` runs
 * once everything is set up and before the first request is read (it installs the seccomp
 * filter and tells the parent); a negative return stops here.
 */
int proxy_serve(struct device *dev, int io_sock, int ctl_sock, struct event_base *eb,
		int (*ready)(void *ctx), void *ready_ctx);

#endif
