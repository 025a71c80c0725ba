/*
 * The GDB remote serial protocol engine (all-stop): packets in, replies out, and the VM reached
 * only through a target (struct gdb_target_ops), so it runs the same over real vCPUs
 * (vcpu/gdb/target.c) and over a test's fake. Every vCPU is a thread (id = vCPU index + 1); a
 * stop, whatever stopped, stops every vCPU. It has no socket and no thread of its own: the
 * server (vcpu/gdb/server.c) feeds it bytes and tells it when the target has news.
 *
 * Supported: qSupported (PacketSize), ?, g/G, p/P, m/M/X (guest virtual addresses of the
 * current thread), Z1/z1 (hardware breakpoints), Z2/z2 and Z4/z4 (write and access
 * watchpoints), vCont (c, s and their signal forms, signals ignored), c/s with Hc, Ctrl-C,
 * H, T, qfThreadInfo/qsThreadInfo, qC, qThreadExtraInfo, qAttached, qXfer:features:read, D, k.
 * Z0 (software breakpoints) is refused with an error, so gdb says so instead of planting int3
 * itself; Z3 (read watchpoints) answers "not supported", so gdb uses an access watchpoint and
 * filters, because the debug registers cannot trap reads alone.
 */
#ifndef CROSVM_VCPU_GDB_STUB_H
#define CROSVM_VCPU_GDB_STUB_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"
#include "vcpu/gdb/regs.h"

struct logger;

/* The VM as the debugger drives it. Register and memory calls come only while it is stopped. */
struct gdb_target_ops {
	int (*get_regs)(void *ctx, unsigned cpu, struct gdb_cpu_state *st);
	/* Gives KVM back the groups (GDB_REGS_*) of st that a write changed. */
	int (*set_regs)(void *ctx, unsigned cpu, const struct gdb_cpu_state *st, unsigned groups);
	/*
	 * Guest virtual memory as vCPU cpu sees it now: up to len bytes, *done of them (reading
	 * stops at the first page that is not mapped RAM); -EFAULT when not even the first.
	 */
	int (*read_mem)(void *ctx, unsigned cpu, uint64_t addr, void *buf, size_t len,
			size_t *done);
	/* All of it or -EFAULT (then nothing past the first bad page was written). */
	int (*write_mem)(void *ctx, unsigned cpu, uint64_t addr, const void *buf, size_t len);
	/* KVM_SET_GUEST_DEBUG of vCPU cpu. */
	int (*set_debug)(void *ctx, unsigned cpu, const struct kvm_guest_debug *dbg);
	/* Asks every vCPU to stop; stopped() says when all have (news comes through poll). */
	void (*stop)(void *ctx);
	bool (*stopped)(void *ctx);
	/* Lets the vCPUs with run[cpu] go; the others stay stopped. */
	void (*resume)(void *ctx, const bool *run);
	/* vCPU cpu's debug exit that has not been reported yet, taken. */
	bool (*take_event)(void *ctx, unsigned cpu, struct kvm_debug_exit_arch *a);
	/* Ends the VM (gdb's kill). */
	void (*kill)(void *ctx);
};

struct gdb_stub_params {
	unsigned nr_cpus;
	uint32_t kvm_debug_flags; /* kvm_guest_debug_flags() of the KVM */
	const struct gdb_target_ops *ops;
	void *target;
	/* Writes bytes to the client (the server buffers them). */
	void (*send)(void *ctx, const void *data, size_t len);
	void *send_ctx;
	const struct logger *log;
};

struct gdb_stub;

/* A stub whose VM is stopped before its first instruction, with no client yet. */
int gdb_stub_create(const struct gdb_stub_params *p, struct gdb_stub **out) MUST_CHECK;
void gdb_stub_destroy(struct gdb_stub *s);

/* A client connected: the VM stops (if it was running) before its packets are read. */
void gdb_stub_connect(struct gdb_stub *s);
/*
 * Bytes from the client: returns how many were taken. While the VM is being stopped
 * (gdb_stub_busy) it takes none: give the rest again after the next gdb_stub_poll. *close
 * is set when the session ended (D, k): close the connection, then gdb_stub_disconnect.
 */
size_t gdb_stub_input(struct gdb_stub *s, const uint8_t *buf, size_t len, bool *close);
bool gdb_stub_busy(const struct gdb_stub *s);
/* The target has news: a vCPU stopped on a debug exit, or every vCPU has stopped. */
void gdb_stub_poll(struct gdb_stub *s);
/* The client is gone: breakpoints go, and the guest runs on. */
void gdb_stub_disconnect(struct gdb_stub *s);
/* The VM ends with this exit status: a client waiting for a stop is told (W). */
void gdb_stub_vm_exit(struct gdb_stub *s, int status);

#endif
