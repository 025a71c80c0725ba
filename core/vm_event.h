/*
 * How a device or a vCPU asks the VM to end. The VM core owns the implementation (it wakes
 * the main loop through an eventfd); devices only hold this small handle, so they can be
 * unit-tested with a fake.
 */
#ifndef CROSVM_CORE_VM_EVENT_H
#define CROSVM_CORE_VM_EVENT_H

/* Ordered by severity: when several arrive, the most severe one is the VM's outcome. */
enum vm_exit_reason {
	VM_EXIT_NONE = 0,
	VM_EXIT_STOP,  /* power-off, control "stop", triple fault (as crosvm): status 0 */
	VM_EXIT_RESET, /* i8042 0xFE, 0xCF9, KVM system reset: status 32 */
	VM_EXIT_CRASH, /* vCPU error, emulation failure, device process died: status 33 */
	VM_EXIT_PANIC, /* guest panic (pvpanic): status 34 */
};

struct vm_events {
	void (*request_exit)(void *ctx, enum vm_exit_reason reason);
	void *ctx;
};

static inline void vm_events_exit(const struct vm_events *ev, enum vm_exit_reason reason)
{
	if (ev && ev->request_exit)
		ev->request_exit(ev->ctx, reason);
}

#endif
