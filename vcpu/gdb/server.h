/*
 * `--gdb PORT`: a GDB remote protocol server on 127.0.0.1:PORT, on the main event loop. It
 * holds every vCPU from the start, so the guest waits for a debugger before its first
 * instruction; one client at a time (another is accepted and closed at once); a client that
 * leaves, whatever way, lets the guest run on. The protocol is vcpu/gdb/stub.c's, over the real
 * vCPUs (vcpu/gdb/target.c).
 */
#ifndef CROSVM_VCPU_GDB_SERVER_H
#define CROSVM_VCPU_GDB_SERVER_H

#include <stdint.h>
#include "core/util.h"
#include "core/vm_event.h"

struct event_base;
struct guest_mem;
struct logger;
struct vcpus;

struct gdb_server_params {
	uint16_t port;
	struct event_base *eb;
	struct vcpus *vcpus; /* initialised (vcpus_init); its vCPUs may not exist yet */
	unsigned nr_cpus;    /* how many there will be */
	uint32_t kvm_debug_flags;
	const struct guest_mem *mem;
	const struct vm_events *ev;
	const struct logger *log;
};

struct gdb_server;

/*
 * Listens, and puts the vCPUs under the debugger's hold (vcpus_debug_init): call it before
 * vcpus_start, and before capabilities are dropped (a port below 1024 needs one). Logs what
 * failed.
 */
int gdb_server_create(const struct gdb_server_params *p, struct gdb_server **out) MUST_CHECK;
/* The VM has ended with exit status `status`: a client waiting for a stop hears it. */
void gdb_server_destroy(struct gdb_server *g, int status);

#endif
