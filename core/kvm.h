/*
 * The thin layer over /dev/kvm: every KVM ioctl of the VMM goes through here, so the rest of
 * the code deals in 0/-errno and plain values.
 */
#ifndef CROSVM_CORE_KVM_H
#define CROSVM_CORE_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct kvm {
	int dev_fd; /* /dev/kvm */
	int vm_fd;
	int run_size; /* mmap size of struct kvm_run */
	unsigned max_vcpus;
	struct kvm_cpuid2 *supported_cpuid;
	uint32_t *msr_list; /* KVM_GET_MSR_INDEX_LIST */
	unsigned nr_msrs;
	bool tsc_deadline;  /* KVM_CAP_TSC_DEADLINE_TIMER: the in-kernel LAPIC has the mode */
	bool kvmclock_ctrl; /* KVM_CAP_KVMCLOCK_CTRL: a guest can be told it was paused */
};

/* Opens the device (path, normally /dev/kvm), checks the API version, creates the VM. */
int kvm_open(struct kvm *k, const char *path) MUST_CHECK;
void kvm_close(struct kvm *k);
int kvm_check_extension(const struct kvm *k, long cap);
bool kvm_msr_supported(const struct kvm *k, uint32_t index);

int kvm_set_user_memory(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size,
			void *hva) MUST_CHECK;
/* In-kernel IRQ chip (PIC, IOAPIC, LAPIC) and PIT, TSS and identity-map addresses. */
int kvm_setup_platform(struct kvm *k, uint64_t tss_addr, uint64_t identity_map) MUST_CHECK;
/*
 * Wires eventfd fd to gsi: the one way devices interrupt the guest (edge, or level with a
 * resample eventfd KVM signals at the guest's EOI).
 */
int kvm_irqfd(struct kvm *k, int fd, uint32_t gsi, int resample_fd, bool deassign);
/* Registers (or removes) an ioeventfd on MMIO or PIO [addr, addr+len) with optional datamatch. */
int kvm_ioeventfd(struct kvm *k, int fd, uint64_t addr, uint32_t len, bool pio, bool datamatch,
		  uint64_t data, bool deassign);
int kvm_set_gsi_routing(struct kvm *k, const struct kvm_irq_routing_entry *e, unsigned nr);

/*
 * A vCPU: its fd and its shared struct kvm_run (k->run_size bytes), released with
 * kvm_destroy_vcpu (which takes the values kvm_create_vcpu left on failure too).
 */
int kvm_create_vcpu(struct kvm *k, unsigned id, int *fd, struct kvm_run **run) MUST_CHECK;
void kvm_destroy_vcpu(const struct kvm *k, int *fd, struct kvm_run **run);
/* One KVM_RUN: 0 after an exit to handle, -EINTR/-EAGAIN when kicked, other -errno. */
int kvm_vcpu_run(int fd);
int kvm_vcpu_get_regs(int fd, struct kvm_regs *r) MUST_CHECK;
int kvm_vcpu_set_regs(int fd, const struct kvm_regs *r) MUST_CHECK;
int kvm_vcpu_get_sregs(int fd, struct kvm_sregs *s) MUST_CHECK;
int kvm_vcpu_set_sregs(int fd, const struct kvm_sregs *s) MUST_CHECK;
int kvm_vcpu_set_fpu(int fd, const struct kvm_fpu *f) MUST_CHECK;
int kvm_vcpu_get_lapic(int fd, struct kvm_lapic_state *s) MUST_CHECK;
int kvm_vcpu_set_lapic(int fd, const struct kvm_lapic_state *s) MUST_CHECK;
int kvm_vcpu_set_cpuid(int fd, const struct kvm_cpuid2 *c) MUST_CHECK;
/* Sets one MSR: -EPERM when KVM refuses it. */
int kvm_vcpu_set_msr(int fd, uint32_t index, uint64_t value) MUST_CHECK;
/* Reads one MSR: -EPERM when KVM refuses it. */
int kvm_vcpu_get_msr(int fd, uint32_t index, uint64_t *value) MUST_CHECK;
/*
 * KVM_KVMCLOCK_CTRL: the guest's kvmclock page will say the vCPU was stopped (its
 * PVCLOCK_GUEST_STOPPED flag, set at the next entry). -EINVAL: the guest has no kvmclock.
 */
int kvm_vcpu_kvmclock_ctrl(int fd);
int kvm_vcpu_get_fpu(int fd, struct kvm_fpu *f) MUST_CHECK;
/*
 * The debugger's control of a vCPU (single step, hardware breakpoints in the debug registers):
 * the structure goes to KVM_SET_GUEST_DEBUG as it is; control 0 gives the guest its own debug
 * registers back.
 */
int kvm_vcpu_set_guest_debug(int fd, const struct kvm_guest_debug *d) MUST_CHECK;
/*
 * Every KVM_GUESTDBG_* flag this KVM accepts (KVM_CAP_SET_GUEST_DEBUG2), e.g. whether it has
 * KVM_GUESTDBG_BLOCKIRQ; 0 when it does not say (then only the basic ones are known).
 */
uint32_t kvm_guest_debug_flags(const struct kvm *k);

#endif
