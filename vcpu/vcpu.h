/*
 * vCPUs: one thread each, in a KVM_RUN loop that dispatches port-I/O and MMIO exits
 * synchronously to the buses. Kicked out of KVM_RUN with immediate_exit plus a signal, so a
 * kick is never lost whether or not the thread is inside KVM_RUN at that moment.
 */
#ifndef CROSVM_VCPU_VCPU_H
#define CROSVM_VCPU_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct vm;

/* How the boot vCPU enters the guest. */
enum vcpu_boot_mode {
	VCPU_BOOT_LONG64, /* ELF64 / bzImage 64-bit entry: RSI = zero page */
	VCPU_BOOT_PVH32,  /* PVH: 32-bit protected mode, paging off, EBX = hvm_start_info */
};

struct vcpu_boot {
	enum vcpu_boot_mode mode;
	uint64_t entry;
	uint64_t zero_page;  /* VCPU_BOOT_LONG64 */
	uint64_t start_info; /* VCPU_BOOT_PVH32 */
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
};

int vcpu_create(struct vm *vm, unsigned id, struct vcpu **out) MUST_CHECK;
/* CPUID, MSRs, FPU, LAPIC on every vCPU; registers and boot tables on the BSP (id 0) only:
 * the APs wait for INIT/SIPI from the guest. */
int vcpu_configure(struct vcpu *v, const struct vcpu_boot *boot) MUST_CHECK;
int vcpu_start(struct vcpu *v) MUST_CHECK;
/* Makes the vCPU leave KVM_RUN and look at the VM run state. Any thread. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

/* Installs the (empty) kick signal handler; call once before any vCPU thread exists. */
int vcpu_signal_setup(void) MUST_CHECK;

/* vcpu/cpuid.c: the CPUID table for vCPU `id` of `nr` from KVM's supported set. */
int vcpu_cpuid_build(const struct kvm_cpuid2 *supported, unsigned id, unsigned nr,
		     struct kvm_cpuid2 **out) MUST_CHECK;
/* vcpu/regs.c: writes the GDT/IDT (and page tables for long mode) into guest memory and
 * fills the initial register state. */
struct guest_mem;
int vcpu_boot_state(const struct guest_mem *m, const struct vcpu_boot *boot, struct kvm_regs *regs,
		    struct kvm_sregs *sregs) MUST_CHECK;
/* vcpu/msr.c */
int vcpu_msrs_setup(struct vcpu *v) MUST_CHECK;
/* Logs the register state of a vCPU (used for crash reports). */
void vcpu_dump_regs(struct vcpu *v, const char *why);

#endif
