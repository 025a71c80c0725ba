/*
 * Hardware breakpoints and watchpoints in the x86 debug registers: four slots (DR0-DR3), each
 * an address with a type (execute, write, read/write) and a length (1, 2, 4 or 8 bytes, aligned
 * to it), enabled in DR7. gdb's Z1/Z2/Z4 requests become slots (a watched range that is not
 * one aligned chunk takes several), the slots become the struct kvm_guest_debug that
 * KVM_SET_GUEST_DEBUG loads for every vCPU, and a KVM_EXIT_DEBUG's DR6 says which slot (or the
 * single step) stopped the vCPU.
 */
#ifndef CROSVM_VCPU_GDB_HWBP_H
#define CROSVM_VCPU_GDB_HWBP_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

#define HWBP_SLOTS 4

/* DR7's R/W field values (Intel SDM vol. 3, 18.2.4); x86 has no read-only data breakpoint. */
enum hwbp_type {
	HWBP_EXEC = 0,
	HWBP_WRITE = 1,
	HWBP_ACCESS = 3,
};

struct hwbp_slot {
	uint64_t addr;
	uint8_t len; /* 1, 2, 4 or 8; 0 when the slot is free */
	uint8_t type;
	unsigned refs; /* identical requests share a slot */
};

struct hwbp_set {
	struct hwbp_slot slot[HWBP_SLOTS];
};

/*
 * Adds [addr, addr+len) of type (an exec breakpoint covers one byte whatever len says):
 * 0, -EINVAL (len 0, a range that wraps), -ENOSPC (not enough free slots: nothing added).
 */
int hwbp_insert(struct hwbp_set *s, enum hwbp_type type, uint64_t addr, uint64_t len) MUST_CHECK;
/* Removes what the same hwbp_insert added; -ENOENT when it was not there. */
int hwbp_remove(struct hwbp_set *s, enum hwbp_type type, uint64_t addr, uint64_t len) MUST_CHECK;
void hwbp_clear(struct hwbp_set *s);
bool hwbp_any(const struct hwbp_set *s);

/*
 * The KVM_SET_GUEST_DEBUG argument for the slots, single-stepping or not. kvm_flags is what
 * the KVM accepts (kvm_guest_debug_flags): a step blocks interrupts when it can, so a stepi
 * runs the next instruction and not an interrupt handler. No slot and no step: control 0, the
 * guest's own debug registers.
 */
void hwbp_guest_debug(const struct hwbp_set *s, bool step, uint32_t kvm_flags,
		      struct kvm_guest_debug *out);

enum hwbp_hit_kind {
	HWBP_HIT_NONE,	 /* nothing of ours (a #DB KVM reported for another reason) */
	HWBP_HIT_STEP,	 /* the single step finished */
	HWBP_HIT_BREAK,	 /* an execute slot */
	HWBP_HIT_WATCH,	 /* a write slot */
	HWBP_HIT_AWATCH, /* a read/write slot */
};

struct hwbp_hit {
	enum hwbp_hit_kind kind;
	uint64_t addr; /* the slot's address */
};

/* What stopped a vCPU with KVM_EXIT_DEBUG; a data slot wins over the step it ended. */
void hwbp_decode(const struct hwbp_set *s, const struct kvm_debug_exit_arch *a,
		 struct hwbp_hit *hit);

#endif
