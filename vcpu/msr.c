/*
 * Boot MSRs. Each one is set on its own and only if KVM lists it: on PVM hosts KVM refuses
 * some MSRs it advertises (PLATFORM.md: 0x10a), and a refused optional MSR must not stop the
 * VM, so it is skipped with a debug log.
 */
#include "vcpu/vcpu.h"
#include "core/kvm.h"
#include "core/log.h"

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR	      0xc0000081
#define MSR_LSTAR	      0xc0000082
#define MSR_CSTAR	      0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102
#define MSR_IA32_TSC	      0x10

#define MISC_ENABLE_FAST_STRING 1ull
#define MTRR_ENABLE		(1ull << 11)
#define MTRR_TYPE_WB		6ull

static const struct {
	uint32_t index;
	uint64_t value;
	bool bsp_only;
} boot_msrs[] = {
	{MSR_IA32_SYSENTER_CS, 0, false},
	{MSR_IA32_SYSENTER_ESP, 0, false},
	{MSR_IA32_SYSENTER_EIP, 0, false},
	{MSR_STAR, 0, false},
	{MSR_CSTAR, 0, false},
	{MSR_KERNEL_GS_BASE, 0, false},
	{MSR_SYSCALL_MASK, 0, false},
	{MSR_LSTAR, 0, false},
	{MSR_IA32_TSC, 0, true},
	{MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING, false},
	/* All memory write-back by default, as firmware would leave it. */
	{MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB, false},
};

int vcpu_msrs_setup(struct vcpu *v)
{
	for (unsigned i = 0; i < ARRAY_SIZE(boot_msrs); i++) {
		int r;

		if (boot_msrs[i].bsp_only && v->id != 0)
			continue;
		if (!kvm_msr_supported(v->set->env.kvm, boot_msrs[i].index)) {
			log_debug(v->set->env.log, "vcpu%u: MSR 0x%x not supported by KVM, skipped",
				  v->id, boot_msrs[i].index);
			continue;
		}
		r = kvm_vcpu_set_msr(v->fd, boot_msrs[i].index, boot_msrs[i].value);
		if (r < 0)
			log_debug(v->set->env.log, "vcpu%u: KVM refused MSR 0x%x, skipped", v->id,
				  boot_msrs[i].index);
	}
	return 0;
}
