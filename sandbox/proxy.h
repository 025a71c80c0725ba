/*
 * The device proxy: what stands in the main process for a device that runs in a sandboxed
 * child. It is itself a device, a decorator with the same ops as any (core/device.h):
 * proxy_attach puts its ops in the place of the device's own, in the same struct device, so
 * the buses, the PCI layer and the VM keep calling the device exactly as before and nothing
 * outside sandbox/ knows whether a device runs jailed.
 *
 * Two SOCK_SEQPACKET sockets connect the two halves:
 *   - the I/O socket carries guest accesses from vCPU threads (a read waits for its reply, a
 *     write is posted; order is kept because the child serves the socket in order) and the
 *     MSI-X state;
 *   - the control socket carries the device's commands and their replies, the requests the
 *     device makes of the VM (struct vm_events: exit, reset...), and the child's last words
 *     when seccomp stops it (the syscall number). Every message is one fixed-size struct
 *     proxy_ctl.
 * The child's lifetime goes through the same handles: start watches a pidfd on the loop, so
 * a child that dies ends the VM through its vm_events as a crash; stop closes the sockets,
 * which tells the child to stop its device and exit, waits for it briefly, kills it if it
 * has to and reaps it; destroy then destroys the parent's copy of the device.
 */
#ifndef CROSVM_SANDBOX_PROXY_H
#define CROSVM_SANDBOX_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "core/device.h"
#include "core/vm_event.h"

struct event_base;
struct logger;

/* I/O socket messages. */
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
	PROXY_CTL_REQUEST, /* child -> parent: the device asks the VM to end (exit) */
	PROXY_CTL_SIGSYS,  /* child -> parent: seccomp refused syscall sysno */
};

struct proxy_ctl {
	uint32_t kind;
	uint32_t id;
	union {
		struct dev_cmd cmd;
		struct dev_reply reply;
		int32_t exit;
		int32_t sysno;
	} u;
};

/* What the parent side works with besides the child's pid and sockets. */
struct proxy_params {
	pid_t pid;
	int io_sock, ctl_sock;	    /* taken over, also on failure */
	const atomic_bool *cancel;  /* the VM is stopping: give up on interrupted reads */
	const struct vm_events *ev; /* the device's requests, and its death (a crash) */
	unsigned reap_grace_ms;	    /* how long destroy waits before it kills the child */
	const struct logger *log;
};

/*
 * Parent side: turns dev into the proxy of its child process p->pid. dev keeps its name and
 * policy; its ops and priv become the proxy's, which keeps the originals and destroys them
 * last.
 */
int proxy_attach(struct device *dev, const struct proxy_params *p) MUST_CHECK;

/*
 * Child side: serves both sockets on eb until the parent closes the I/O socket. `ready` runs
 * once everything is set up and before the first request is read (it installs the seccomp
 * filter and tells the parent); a negative return stops here.
 */
int proxy_serve(struct device *dev, int io_sock, int ctl_sock, struct event_base *eb,
		int (*ready)(void *ctx), void *ready_ctx);

/*
 * Child side: makes the VM's request handle, as this process sees it, send its requests to
 * the parent over *ctl_fd (which must live as long as the process), which hands them to the
 * VM's.
 */
void proxy_forward_requests(struct vm_events *ev, const int *ctl_fd);

#endif
