/*
 * The x86-64 registers as gdb sees them: one table gives their order (the remote register
 * numbers of p/P and the layout of g/G), sizes and where each lives in KVM's structures, and
 * the target description (qXfer:features:read) is generated from the same table, so the two
 * cannot disagree. The features are gdb's i386 core (general, segment selectors, x87), sse
 * (xmm0-15, mxcsr) and segments (fs_base, gs_base), plus a system feature of ours
 * (k_gs_base, cr0, cr2, cr3, cr4, cr8, efer) that gdb shows as $cr3 and friends.
 */
#ifndef CROSVM_VCPU_GDB_REGS_H
#define CROSVM_VCPU_GDB_REGS_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

/* One vCPU's state, as the KVM ioctls give it. */
struct gdb_cpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	uint64_t kernel_gs_base; /* MSR_KERNEL_GS_BASE */
	bool have_kernel_gs_base;
};

/* The groups a write touched, i.e. what to give back to KVM. */
enum {
	GDB_REGS_GPR = 1,   /* KVM_SET_REGS */
	GDB_REGS_SREGS = 2, /* KVM_SET_SREGS */
	GDB_REGS_FPU = 4,   /* KVM_SET_FPU */
	GDB_REGS_MSR = 8,   /* MSR_KERNEL_GS_BASE */
};

#define GDB_MSR_KERNEL_GS_BASE 0xc0000102u

unsigned gdb_regs_count(void);
/* Bytes of the g packet's register block (before hex). */
size_t gdb_regs_size(void);
/* Register n's size in bytes; 0 when there is no register n. */
size_t gdb_reg_size(unsigned n);
/* Register n, little-endian, into buf (gdb_reg_size bytes): 0, -ENODATA (unavailable), -EINVAL. */
int gdb_reg_read(const struct gdb_cpu_state *st, unsigned n, uint8_t *buf) MUST_CHECK;
/*
 * Register n from buf (gdb_reg_size bytes); ORs the group it belongs to into *groups when the
 * value changed. -EINVAL (no such register), -ENOTSUP (a new segment selector: that would need
 * a descriptor load, which gdb cannot ask for), -ENODATA (an unavailable register).
 */
int gdb_reg_write(struct gdb_cpu_state *st, unsigned n, const uint8_t *buf,
		  unsigned *groups) MUST_CHECK;

/* The target description, NUL-terminated and allocated (free it). -ENOMEM. */
int gdb_regs_target_xml(char **xml, size_t *len) MUST_CHECK;

#endif
